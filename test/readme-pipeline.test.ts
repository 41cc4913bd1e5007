// The README's training-pipeline example, run as written: the package packed with `npm pack`,
// installed as a global command from the tarball, and the workflow's `run:` steps executed by a
// shell the way a GitHub runner does — with no git identity, against a registry cloned over
// `git http-backend`, the Swift S3 server and the GitHub emulator.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { git, sha256, tempDir } from './helpers/artifacts.js';
import { prRemote, type PrRemote } from './helpers/pr-remote.js';
import { createTestBucket, s3Config, s3TestClient } from './helpers/s3.js';
import { POLICY } from './gate-fixtures.js';

const ROOT = resolve(import.meta.dirname, '..');
// The git remote and the GitHub emulator answer in this process: anything that talks to them runs asynchronously.
const run = promisify(execFile);

/** The YAML block of README.md's "Register from a training pipeline" section, parsed. */
function readmeWorkflow(): { steps: Array<{ run?: string; env?: Record<string, string> }> } {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### 3. Register from a training pipeline'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
  const doc = parse(block) as { steps: Array<{ run?: string; env?: Record<string, string> }> };
  return doc;
}

let remote: PrRemote;
let tarball: string;
let prefix: string;

beforeAll(async () => {
  // npm test has built dist/: pack it as a user would, then install the tarball globally.
  const packs = tempDir('mg-pack-');
  execFileSync('npm', ['pack', '--pack-destination', packs, '--silent'], { cwd: ROOT, encoding: 'utf8' });
  tarball = join(
    packs,
    readdirSync(packs).find((f) => f.endsWith('.tgz'))!,
  );
  prefix = tempDir('mg-prefix-');
}, 360_000);

afterAll(async () => {
  await remote?.close();
});

describe("README's training-pipeline workflow", () => {
  it('installs from the packed tarball and registers as written, on a runner with no git identity', async () => {
    const cfg = s3Config();
    const s3 = s3TestClient();
    const bucket = await createTestBucket('readme-pipeline', s3);
    s3.destroy();
    remote = await prRemote({ uri: `s3://${bucket}/registry`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true }, POLICY);
    remote.gh.addUser('registry-app[bot]', { type: 'Bot', token: 'ghs_registry_app' });

    // The runner's workspace: the training checkout with its outputs, the registry checkout in
    // `registry/` (actions/checkout leaves no git identity behind), the packed tarball in vendor/.
    const ws = tempDir('mg-runner-');
    git(ws, 'init', '-q', '-b', 'main');
    writeFileSync(join(ws, 'train.py'), 'print("training")\n');
    git(ws, 'add', '-A');
    git(ws, '-c', 'user.name=ci', '-c', 'user.email=ci@example.com', 'commit', '-q', '-m', 'training code');
    git(ws, 'remote', 'add', 'origin', 'https://github.com/acme/fraud-training.git');
    mkdirSync(join(ws, 'out'));
    const model = Buffer.from('joblib bytes of a trained model');
    writeFileSync(join(ws, 'out/model.joblib'), model);
    writeFileSync(join(ws, 'out/metrics.json'), JSON.stringify({ auc: 0.96, recall: 0.9, latency_p95_ms: 40 }));
    await run('git', ['clone', '-q', remote.url, join(ws, 'registry')]);
    mkdirSync(join(ws, 'vendor'));
    copyFileSync(tarball, join(ws, 'vendor', 'modelgate-0.1.0.tgz'));

    const home = tempDir('mg-home-');
    const env: NodeJS.ProcessEnv = {
      // Node 24 from the devDependency, as setup-node would put it first; then the global prefix's bin.
      PATH: [join(prefix, 'bin'), dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
      HOME: home,
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_NOSYSTEM: '1',
      NPM_CONFIG_PREFIX: prefix,
      NPM_CONFIG_CACHE: join(process.env.HOME ?? home, '.npm'),
      NPM_CONFIG_PREFER_OFFLINE: 'true',
      NPM_CONFIG_AUDIT: 'false',
      NPM_CONFIG_FUND: 'false',
      GITHUB_ACTIONS: 'true',
      GITHUB_ACTOR: 'train-bot',
      GITHUB_REPOSITORY: 'acme/fraud-training',
      GITHUB_RUN_ID: '9001',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: remote.gh.url,
      // What aws-actions/configure-aws-credentials exports.
      AWS_ACCESS_KEY_ID: cfg.accessKeyId,
      AWS_SECRET_ACCESS_KEY: cfg.secretAccessKey,
      AWS_REGION: cfg.region,
    };
    const steps = readmeWorkflow().steps.filter((s) => s.run);
    expect(steps.map((s) => s.run!.split(' ').slice(0, 2).join(' '))).toEqual(['npm install', 'modelgate --registry']);
    for (const step of steps) {
      // `${{ steps.app.outputs.token }}`: the App token the step before would have made.
      const stepEnv = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, v.replace('${{ steps.app.outputs.token }}', 'ghs_registry_app')]));
      await run('bash', ['-e', '-c', step.run!], { cwd: ws, env: { ...env, ...stepEnv }, encoding: 'utf8', timeout: 240_000 }).catch(
        (e: { stderr?: string; message: string }) => {
          throw new Error(`README step failed: ${step.run}\n${e.stderr ?? e.message}`);
        },
      );
    }

    // One pull request, from the registration branch, whose commit is the actor's.
    const branch = (await remote.branches()).find((b) => b.startsWith('modelgate/fraud-detector-v1'));
    expect(branch).toBeDefined();
    const look = tempDir('mg-look-');
    await run('git', ['clone', '-q', '--branch', branch!, remote.url, look]);
    expect(git(look, 'log', '-1', '--format=%an <%ae>').trim()).toBe('train-bot <train-bot@users.noreply.github.com>');
    const manifest = parse(readFileSync(join(look, 'models/fraud-detector/versions/1.yaml'), 'utf8'));
    expect(manifest).toMatchObject({
      stage: 'Staging',
      createdBy: 'train-bot',
      artifact: { sha256: sha256(model), uri: `s3://${bucket}/registry/fraud-detector/sha256/${sha256(model)}/model.joblib` },
      metrics: { auc: 0.96 },
      lineage: { run: { id: '9001' }, data: [{ id: 'txn-2026-q3', uri: 's3://data/txn.parquet' }] },
    });
    expect(manifest.lineage.code.repository).toBe('https://github.com/acme/fraud-training');
    const pull = remote.gh.getPull('acme/model-registry', 1)!;
    expect(pull.head.ref).toBe(branch);
  }, 400_000);
});
