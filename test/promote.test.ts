// promote / rollback / archive / annotate / check through the CLI, on real git repositories
// with a bare remote, and `--pr` against the loopback GitHub emulator.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import type { EmulatedRepo, GitHubEmulator } from '../src/local/github-emulator.js';
import { startValidatedGitHubEmulator, type GitHubResponseValidator } from './helpers/github.js';
import { MemorySource, POLICY, version } from './gate-fixtures.js';
import { plannedSource } from '../src/promote/pins.js';
import { RegistrySnapshot } from '../src/registry/snapshot.js';
import { git as pinGit, initRepo as pinInit, tempDir as pinTemp, writeRegistry } from './helpers/pin-registry.js';

const env = { GIT_AUTHOR_NAME: 'Maria', GIT_AUTHOR_EMAIL: 'maria@example.com', GIT_COMMITTER_NAME: 'Maria', GIT_COMMITTER_EMAIL: 'maria@example.com' };
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...env } }).trim();

/** v3 written by hand: comments, quoting and key order must survive a promotion. */
const V3 = (stage: string) => `# fraud detector, third try
apiVersion: modelgate.dev/v1
kind: ModelVersion
model: fraud-detector
version: 3
stage: ${stage}   # set by promotions
createdAt: "2026-11-27T10:00:00Z"
createdBy: 'maria'
artifact:
  uri: ${storeUri}/fraud-detector/sha256/${'3'.repeat(64)}/model.joblib
  sha256: "${'3'.repeat(64)}"
  size: 1003
format: joblib
metrics: {auc: 0.96, recall: 0.9, latency_p95_ms: 40}
lineage:
  code: {repository: "https://github.com/acme/fraud", commit: ${'c'.repeat(40)}}
  data:
    - id: txn-2023-q3-v5
`;

let tmp: string;
/** This registry's file:// store; the fixtures' s3:// artifact URIs are moved into it as they are written. */
let storeUri: string;
let bare: string;
let work: string;
let gh: GitHubEmulator & { validator: GitHubResponseValidator };
let repo: EmulatedRepo;

async function write(path: string, content: string) {
  await mkdir(dirname(join(work, path)), { recursive: true });
  await writeFile(join(work, path), content.replaceAll('s3://ml-models/registry/', `${storeUri}/`));
}
const v = (n: number) => `models/fraud-detector/versions/${n}.yaml`;
const read = (p: string) => readFile(join(work, p), 'utf8');

async function cli(args: string[], extraEnv: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    cwd: work,
    env: { ...process.env, ...env, GITHUB_TOKEN: 'token-maria', GITHUB_API_URL: gh.url, ...extraEnv },
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    tty: false,
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  gh = await startValidatedGitHubEmulator();
  for (const u of ['maria', 'gina']) gh.addUser(u);
  gh.addTeam('acme', 'ml-governance', ['gina']);
});

afterAll(async () => {
  await gh?.close();
});

beforeEach(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
  tmp = await mkdtemp(join(tmpdir(), 'modelgate-promote-'));
  bare = join(tmp, 'registry.git');
  work = join(tmp, 'work');
  storeUri = pathToFileURL(join(tmp, 'store')).href;
  git(tmp, 'init', '-q', '--bare', '-b', 'main', bare);
  git(tmp, 'clone', '-q', bare, work);
  git(work, 'checkout', '-q', '-b', 'main');
  await write(
    'modelgate.yaml',
    stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Registry', storage: { uri: storeUri }, github: { repository: 'acme/model-registry' } }),
  );
  await write('policies/promotion.yaml', stringify(POLICY));
  await write('models/fraud-detector/model.yaml', stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector' }));
  await write(v(1), stringify(version(1, 'Production')));
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'fraud-detector@1 in Production');
  await write(v(1), stringify(version(1, 'Archived')));
  await write(v(2), stringify(version(2, 'Production', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 } })));
  await write(v(3), V3('Staging'));
  await write(v(4), stringify(version(4, 'Archived')));
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'fraud-detector@2 in Production');
  git(work, 'push', '-q', 'origin', 'main');
  repo = gh.getRepo('acme/model-registry') ?? gh.addRepo('acme', 'model-registry', { gitDir: bare });
  Object.assign(repo, { gitDir: bare });
});

describe('promote', () => {
  it('changes only the stage scalar, byte for byte, and archives the previous Production version in the same commit', async () => {
    const before2 = await read(v(2));
    const r = await cli(['promote', 'fraud-detector', '3', '--to', 'production']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await read(v(3))).toBe(V3('Production'));
    expect(await read(v(2))).toBe(before2.replace('stage: Production', 'stage: Archived'));
    expect(git(work, 'show', '--name-only', '--format=%s', 'HEAD').split('\n')).toEqual(['Promote fraud-detector@3 to Production', '', v(2), v(3)]);
    expect(git(work, 'status', '--porcelain')).toBe('');
  });

  it('prints the plan and changes nothing with --dry-run', async () => {
    const head = git(work, 'rev-parse', 'HEAD');
    const r = await cli(['--json', 'promote', 'fraud-detector', '3', '--to', 'Production', '--pr', '--dry-run']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      dryRun: true,
      branch: 'modelgate/fraud-detector-v3-production',
      changes: ['fraud-detector@3: Staging → Production', 'fraud-detector@2: Production → Archived'],
    });
    expect(git(work, 'rev-parse', 'HEAD')).toBe(head);
  });

  it('pushes to main with --push', async () => {
    const r = await cli(['archive', 'fraud-detector', '3', '--push']);
    expect(r.code).toBe(0);
    expect(git(bare, 'show', `main:${v(3)}`) + '\n').toBe(V3('Archived'));
  });

  it('pushes the branch and opens a pull request with --pr, then updates that same pull request', async () => {
    const r = await cli(['--json', 'promote', 'fraud-detector', '3', '--to', 'Production', '--pr']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ branch: 'modelgate/fraud-detector-v3-production', pullRequest: { created: true }, gate: 'fail' });
    expect(git(bare, 'show', `modelgate/fraud-detector-v3-production:${v(3)}`) + '\n').toBe(V3('Production'));
    const pull = gh.getPull(repo, out.pullRequest.number)!;
    expect(pull.title).toBe('Promote fraud-detector@3 to Production');
    expect(pull.body).toContain('Who must approve');
    expect(pull.body).toMatch(/1 more from team ml\\-governance/);
    expect(pull.body).toContain('3'.repeat(64));
    expect(pull.body).toMatch(/champion/);
    // What a reviewer needs: metrics against thresholds and the champion, lineage, digest, rules.
    expect(pull.body).toContain('| metric | value | threshold | champion (v2) |');
    expect(pull.body).toContain('| auc | 0.96 | ≥ 0\\.95 ✅ | 0.97 |');
    expect(pull.body).toContain('| recall | 0.9 | ≥ 0\\.88 ✅ | 0.9 |');
    expect(pull.body).toContain(`- code: https&#58;//github\\.com/acme/fraud @ ${'c'.repeat(40)}`);
    expect(pull.body).toContain('- data: txn\\-2023\\-q3\\-v5');
    expect(pull.body).toContain(`- sha256: ${'3'.repeat(64)} (1003 bytes)`);
    expect(pull.body).toMatch(
      /^\| to\\-production \| champion auc \\\(max regression 0\\\.02\\\) \| ✅ \| auc = 0\\\.96 vs champion fraud\\-detector&#64;2 0\\\.97 \|$/m,
    );
    expect(pull.body).toMatch(/^\| models\\\.fraud\\-detector&#58; Production \| metric recall ≥ 0\\\.88 \| ✅ \|/m);
    // Entities stay entities: a backslash before their `#` would print `&#64;` instead of `@`.
    expect(pull.body).toContain('### fraud\\-detector&#64;3&#58; Staging → Production');
    expect(pull.body).not.toContain('&\\#');
    const again = await cli(['--json', 'promote', 'fraud-detector', '3', '--to', 'Production', '--pr']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).pullRequest).toMatchObject({ number: out.pullRequest.number, created: false });
    expect(gh.validator.violations).toEqual([]);
  });

  it('refuses a model name that tries to escape its folder, and a version that does not exist', async () => {
    expect((await cli(['promote', '../../etc', '1', '--to', 'Production'])).code).toBe(2);
    expect((await cli(['promote', 'fraud-detector', '1/../2', '--to', 'Production'])).code).toBe(2);
    expect((await cli(['promote', 'fraud-detector', '9', '--to', 'Production'])).code).toBe(1);
    expect((await cli(['promote', 'fraud-detector', '2', '--to', 'Production'])).stderr).toMatch(/already in Production/);
  });
});

describe('rollback', () => {
  it('returns Production to the newest version git history proves was there', async () => {
    const [before1, before2] = [await read(v(1)), await read(v(2))];
    const r = await cli(['rollback', 'fraud-detector']);
    expect(r.code).toBe(0);
    expect(await read(v(1))).toBe(before1.replace('stage: Archived', 'stage: Production'));
    expect(await read(v(2))).toBe(before2.replace('stage: Production', 'stage: Archived'));
  });

  it('refuses a version that never was in Production', async () => {
    const head = git(work, 'rev-parse', 'HEAD');
    const r = await cli(['--json', 'rollback', 'fraud-detector', '--to', '4']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('E_NEVER_PRODUCTION');
    expect(git(work, 'rev-parse', 'HEAD')).toBe(head);
  });
});

describe('annotate', () => {
  it('adds and updates annotations in place', async () => {
    const r = await cli(['annotate', 'fraud-detector@3', 'performance_alert=true', 'validation_status=passed']);
    expect(r.code).toBe(0);
    expect(await read(v(3))).toBe(`${V3('Staging')}annotations:\n  performance_alert: "true"\n  validation_status: passed\n`);
    expect((await cli(['annotate', 'fraud-detector@3', 'performance_alert=false'])).code).toBe(0);
    expect(await read(v(3))).toBe(`${V3('Staging')}annotations:\n  performance_alert: "false"\n  validation_status: passed\n`);
    expect((await cli(['annotate', 'fraud-detector@3', 'bad key=x'])).code).toBe(2);
  });

  it('refuses a key given twice (which value was meant is unknown) and changes nothing', async () => {
    const before = await read(v(3));
    const r = await cli(['--json', 'annotate', 'fraud-detector@3', 'owner=a', 'owner=b']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe('E_USAGE');
    expect(await read(v(3))).toBe(before);
  });

  it('opens a pull request through the same path, naming the approvals the policy asks for that key', async () => {
    const before = await read(v(2));
    const r = await cli(['--json', 'annotate', 'fraud-detector@production', 'performance_alert=true', '--pr']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ branch: 'modelgate/fraud-detector-v2-annotate-performance-alert', pullRequest: { created: true }, gate: 'pending' });
    expect(git(bare, 'show', `${out.branch}:${v(2)}`) + '\n').toBe(`${before}annotations:\n  performance_alert: "true"\n`);
    const body = gh.getPull(repo, out.pullRequest.number)!.body!;
    expect(body).toContain('### fraud\\-detector&#64;2&#58; annotations performance\\_alert');
    expect(body).toContain('- alerts&#58; 1 more from team oncall');
    expect(await read(v(2))).toBe(before);
  });
});

describe('check', () => {
  it('passes without approvals under --no-approvals, is pending (exit 1) otherwise, and fails uncovered files', async () => {
    git(work, 'checkout', '-q', '-b', 'promo');
    expect((await cli(['promote', 'fraud-detector', '3', '--to', 'Production'])).code).toBe(0);
    // `artifact: full` needs the bytes: this registry's store is empty, so use a policy without it.
    const noStore = await cli(['--json', 'check', '--base', 'main', '--head', 'promo', '--no-approvals']);
    expect(noStore.code).toBe(1);
    expect(
      JSON.parse(noStore.stdout)
        .transitions.flatMap((t: { rules: Array<{ results: Array<{ check: string; status: string }> }> }) => t.rules.flatMap((x) => x.results))
        .filter((c: { status: string }) => c.status === 'fail')
        .map((c: { check: string }) => c.check),
    ).toEqual(['artifact (full)']);

    git(work, 'checkout', '-q', 'main');
    await write('policies/promotion.yaml', stringify({ ...POLICY, rules: POLICY.rules.map((r) => ({ ...r, artifact: undefined })) }));
    git(work, 'commit', '-q', '-am', 'no artifact check');
    git(work, 'checkout', '-q', '-B', 'promo2');
    expect((await cli(['promote', 'fraud-detector', '3', '--to', 'Production'])).code).toBe(0);
    const ok = await cli(['check', '--base', 'main', '--head', 'promo2', '--no-approvals']);
    expect(ok.stdout).toMatch(/^pass: /m);
    expect(ok.code).toBe(0);
    const pending = await cli(['--json', 'check', '--base', 'main', '--head', 'promo2']);
    expect(pending.code).toBe(1);
    expect(JSON.parse(pending.stdout).decision).toBe('pending');

    await write('scripts/x.sh', 'echo\n');
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', 'script');
    const uncovered = await cli(['--json', 'check', '--base', 'main', '--head', 'HEAD', '--no-approvals']);
    expect(uncovered.code).toBe(1);
    expect(JSON.parse(uncovered.stdout).uncovered).toEqual(['scripts/x.sh']);
    expect((await cli(['check', '--base', 'main'])).code).toBe(2);
  });

  it('takes --pr as digits only: a hex or exponent form is not read as another pull request', async () => {
    for (const bad of ['0x10', '1e3', ' 7', '0', '-1']) {
      const r = await cli(['--json', 'check', '--base', 'main', '--head', 'main', `--pr=${bad}`]);
      expect(r.code, bad).toBe(2);
      expect(JSON.parse(r.stdout).error.code, bad).toBe('E_USAGE');
    }
  });
});

describe('plannedSource (the head the promotion pull request preview judges)', () => {
  it('lists the files a plan adds, in new and existing folders, and reads edits over the base', async () => {
    const base = new MemorySource(
      new Map([
        ['models/fraud-detector/versions/1.yaml', 'one'],
        ['modelgate.yaml', 'cfg'],
      ]),
    );
    const src = plannedSource(base, [
      { path: 'models/fraud-detector/versions/2.yaml', after: 'two' },
      { path: 'models/churn/model.yaml', after: 'churn' },
      { path: 'models/churn/versions/1.yaml', after: 'churn one' },
    ]);
    expect((await src.listDir('models/fraud-detector/versions')).sort()).toEqual(['1.yaml', '2.yaml']);
    expect((await src.listDir('models')).sort()).toEqual(['churn', 'fraud-detector']);
    expect((await src.listDir('models/churn/versions/')).sort()).toEqual(['1.yaml']);
    expect(await src.readFile('models/fraud-detector/versions/2.yaml')).toBe('two');
    expect(await src.readFile('models/fraud-detector/versions/1.yaml')).toBe('one');
    // The new version counts in the merged view: a second Production version would be seen.
    const snap = new RegistrySnapshot(src);
    expect(await snap.versionNumbers('fraud-detector')).toEqual([1, 2]);
  });
});

describe('the change carries the pins it moves (SPEC v2 §4)', () => {
  const run = async (cwd: string, args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(args, { cwd, env: { ...process.env, ...env }, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), tty: false });
    return { code, stdout, stderr };
  };

  it('promote writes the manifest and deploy/production/<model>.yaml in one commit; --dry-run prints both diffs; other models are not read', async () => {
    const dir = pinTemp('carry');
    writeRegistry(dir, {
      fraud: { deploy: {}, versions: [{ stage: 'Production' }, { stage: 'Staging' }] },
      scorer: { deploy: {}, versions: [{ stage: 'Production' }] },
    });
    pinInit(dir);
    expect((await run(dir, ['sync'])).code).toBe(0);
    pinGit(dir, 'add', '-A');
    pinGit(dir, 'commit', '--quiet', '-m', 'pins');
    // A broken manifest of another model: rendering the change must not read it.
    await writeFile(join(dir, 'models/scorer/versions/1.yaml'), 'stage: [broken\n');
    pinGit(dir, 'commit', '--quiet', '-am', 'break scorer');

    const dry = await run(dir, ['promote', 'fraud', '2', '--to', 'Production', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as { files: string[]; diff: string };
    expect([...plan.files].sort()).toEqual(['deploy/production/fraud.yaml', 'models/fraud/versions/1.yaml', 'models/fraud/versions/2.yaml']);
    expect(plan.diff).toContain('+++ b/deploy/production/fraud.yaml');
    expect(plan.diff).toMatch(/^-stage: Staging\n\+stage: Production$/m);
    expect(pinGit(dir, 'status', '--porcelain')).toBe('');

    const done = await run(dir, ['promote', 'fraud', '2', '--to', 'Production']);
    expect(done.code, done.stderr).toBe(0);
    const changed = pinGit(dir, 'show', '--name-only', '--format=', 'HEAD').trim().split('\n').sort();
    expect(changed).toEqual(['deploy/production/fraud.yaml', 'models/fraud/versions/1.yaml', 'models/fraud/versions/2.yaml']);
    expect(await readFile(join(dir, 'deploy/production/fraud.yaml'), 'utf8')).toContain('modelgate.dev/version: "2"');
    expect(pinGit(dir, 'log', '-1', '--format=%B')).toContain('deploy: fraud production v1 → v2');
  });
});
