import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { syncAndPush } from '../src/deploy/apply.js';
import { readPinInput } from '../src/deploy/input.js';
import { planSync } from '../src/deploy/plan.js';
import { gateSidesFromGit } from '../src/gate/from-git.js';
import { GitRepo } from '../src/git/repo.js';
import { serveGitHttp, type GitHttpServer } from '../src/local/git-http-backend.js';
import { git, gitAsync, initRepo, modelVersion, setStage, tempDir, write, writeModel, writeRegistry, type ModelSpec } from './helpers/pin-registry.js';

async function cli(cwd: string, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { cwd, env: {}, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), tty: false });
  return { code, stdout, stderr };
}

const fraud: ModelSpec = { deploy: {}, versions: [{ stage: 'Production' }, { stage: 'Staging' }] };
const scorer: ModelSpec = { deploy: { kind: 'Deployment', image: 'ghcr.io/acme/scorer:1' }, versions: [{ stage: 'Production' }] };
const pinOf = (dir: string, env: string, model: string) => parse(readFileSync(join(dir, 'deploy', env, `${model}.yaml`), 'utf8'));
const versionOf = (dir: string, env: string, model: string) => pinOf(dir, env, model).metadata.annotations['modelgate.dev/version'];

describe('modelgate sync on the work tree', () => {
  it('writes the pins, then finds them in sync and writes nothing', async () => {
    const dir = writeRegistry(tempDir('sync'), { 'fraud-detector': fraud, scorer });
    const first = await cli(dir, 'sync');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('fraud-detector production v1 (new pin)');
    expect(versionOf(dir, 'production', 'fraud-detector')).toBe('1');
    expect(versionOf(dir, 'staging', 'fraud-detector')).toBe('2');
    expect(parse(readFileSync(join(dir, 'deploy/production/kustomization.yaml'), 'utf8')).resources).toEqual(['fraud-detector.yaml', 'scorer.yaml']);
    const mtime = statSync(join(dir, 'deploy/production/fraud-detector.yaml')).mtimeMs;
    const second = await cli(dir, 'sync');
    expect(second).toMatchObject({ code: 0, stdout: 'deploy pins are in sync\n' });
    expect(statSync(join(dir, 'deploy/production/fraud-detector.yaml')).mtimeMs).toBe(mtime);
  });

  it('--check exits 1 with the diff when out of date, 0 when in sync; --dry-run writes nothing', async () => {
    const dir = writeRegistry(tempDir('check'), { 'fraud-detector': fraud });
    expect((await cli(dir, 'sync')).code).toBe(0);
    expect((await cli(dir, 'sync', '--check')).code).toBe(0);
    setStage(dir, 'fraud-detector', 1, 'Archived');
    setStage(dir, 'fraud-detector', 2, 'Production');
    const before = readFileSync(join(dir, 'deploy/production/fraud-detector.yaml'), 'utf8');
    const check = await cli(dir, 'sync', '--check');
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(`+      storageUri: ${modelVersion('fraud-detector', 2, { stage: 'Production' }).artifact.uri}`);
    expect(check.stdout).toContain('fraud-detector production v1 → v2');
    expect(check.stderr).toContain('out of date');
    const dry = await cli(dir, 'sync', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('would write 1 file(s)');
    expect(readFileSync(join(dir, 'deploy/production/fraud-detector.yaml'), 'utf8')).toBe(before);
    const json = await cli(dir, '--json', 'sync', '--check');
    expect(JSON.parse(json.stdout)).toMatchObject({
      inSync: false,
      files: ['deploy/production/fraud-detector.yaml'],
      changes: [{ fromVersion: 1, toVersion: 2 }],
    });
  });

  it('keeps hand-edited pins and kustomizations byte for byte, apart from the pinned scalars', async () => {
    const dir = writeRegistry(tempDir('hand'), { 'fraud-detector': fraud });
    await cli(dir, 'sync');
    const kpath = join(dir, 'deploy/production/kustomization.yaml');
    const kust = `# Platform team: network policy and limits are ours.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: models\nresources:\n  - 'networkpolicy.yaml'   # keep first\n  - fraud-detector.yaml\npatches:\n  - path: limits.yaml\n`;
    writeFileSync(kpath, kust);
    const ppath = join(dir, 'deploy/production/fraud-detector.yaml');
    const pin = readFileSync(ppath, 'utf8').replace('spec:\n', '# GPU nodes only\nspec:\n  # tuned by hand\n');
    writeFileSync(ppath, pin);
    writeModel(dir, 'aaa', { deploy: { modelFormat: 'onnx' }, versions: [{ stage: 'Production', format: 'onnx' }] });
    setStage(dir, 'fraud-detector', 1, 'Archived');
    setStage(dir, 'fraud-detector', 2, 'Production');
    expect((await cli(dir, 'sync')).code).toBe(0);
    expect(readFileSync(kpath, 'utf8')).toBe(kust.replace('  - fraud-detector.yaml\n', '  - fraud-detector.yaml\n  - aaa.yaml\n'));
    const v1 = modelVersion('fraud-detector', 1, { stage: 'Archived' });
    const v2 = modelVersion('fraud-detector', 2, { stage: 'Production' });
    expect(readFileSync(ppath, 'utf8')).toBe(
      pin.replaceAll(v1.artifact.uri, v2.artifact.uri).replaceAll(v1.artifact.sha256, v2.artifact.sha256).replaceAll('version: "1"', 'version: "2"'),
    );
  });

  it('refuses conflicting or unknown flags with exit 2', async () => {
    const dir = writeRegistry(tempDir('usage'), {});
    expect((await cli(dir, 'sync', '--check', '--push')).code).toBe(2);
    expect((await cli(dir, 'sync', '--check', '--dry-run')).code).toBe(2);
    expect((await cli(dir, 'sync', 'extra')).code).toBe(2);
    expect((await cli(dir, 'sync', '--frobnicate')).code).toBe(2);
    expect((await cli(dir, 'sync', '--branch', 'x')).code).toBe(2);
  });

  it('reports an invalid pin file as a content error naming the file', async () => {
    const dir = writeRegistry(tempDir('bad'), { 'fraud-detector': fraud });
    write(dir, 'deploy/production/fraud-detector.yaml', 'metadata: [oops\n');
    const r = await cli(dir, 'sync');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('deploy/production/fraud-detector.yaml');
  });

  it('--registry-ref derives the pins from a commit', async () => {
    const dir = writeRegistry(tempDir('ref'), { 'fraud-detector': fraud });
    initRepo(dir);
    const first = git(dir, 'rev-parse', 'HEAD').trim();
    setStage(dir, 'fraud-detector', 2, 'Production');
    git(dir, 'commit', '-qam', 'promote');
    expect((await cli(dir, 'sync', '--registry-ref', first)).code).toBe(0);
    expect(versionOf(dir, 'production', 'fraud-detector')).toBe('1');
    expect((await cli(dir, 'sync', '--registry-ref', 'HEAD')).code).toBe(0);
    expect(versionOf(dir, 'production', 'fraud-detector')).toBe('2');
    expect((await cli(dir, 'sync', '--registry-ref', 'no-such-rev')).code).toBe(1);
  });
});

describe('the pins a change carries read each version as the parser does', () => {
  it('the newest Staging version keeps its pin when its text holds a decoy stage line', async () => {
    const dir = writeRegistry(tempDir('decoy'), {
      'fraud-detector': { deploy: {}, versions: [{ stage: 'Staging' }, { stage: 'Staging' }, { stage: 'None' }] },
    });
    // Version 2 is written as one flow mapping whose annotations go on at column 0 with a
    // `stage: Archived` line: only a parser reads its stage right.
    const v2 = join(dir, 'models/fraud-detector/versions/2.yaml');
    const value = parse(readFileSync(v2, 'utf8'));
    expect(value.stage).toBe('Staging');
    writeFileSync(v2, `${JSON.stringify(value).slice(0, -1)},\n"annotations": {"note": "flow",\nstage: Archived\n}}\n`);
    expect((await cli(dir, 'validate')).code).toBe(0);
    expect((await cli(dir, 'sync')).code).toBe(0);
    expect(versionOf(dir, 'staging', 'fraud-detector')).toBe('2');
    initRepo(dir);
    const r = await cli(dir, 'promote', 'fraud-detector@3', '--to', 'Production', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('deploy/production/fraud-detector.yaml');
    expect(r.stdout).not.toContain('deploy/staging/fraud-detector.yaml');
  });
});

describe('sync refuses a registry that does not validate, in every mode, whether the catalog is warm or cold', () => {
  const versionPath = (dir: string) => join(dir, 'models/fraud-detector/versions/2.yaml');
  const edit = (dir: string, from: string | RegExp, to: string) => {
    const text = readFileSync(versionPath(dir), 'utf8');
    expect(text).toMatch(from);
    writeFileSync(versionPath(dir), text.replace(from, to));
  };
  const breakages: Record<string, (dir: string) => void> = {
    // Each file loads; only the rules across files see it.
    'two versions in Production': (dir) => edit(dir, /^stage: Staging$/m, 'stage: Production'),
    'an artifact on another host': (dir) => edit(dir, modelVersion('fraud-detector', 2, { stage: 'Staging' }).artifact.uri, 'https://evil.example/model.pkl'),
    'a manifest that does not load': (dir) => edit(dir, /^stage: Staging$/m, 'stage: Stagin'),
    // The versions stay as the catalog knows them: their facts must still meet the new config.
    'a store moved under every version': (dir) => {
      const config = join(dir, 'modelgate.yaml');
      const text = readFileSync(config, 'utf8');
      const uri = /uri: (\S+)/.exec(text)![1]!;
      writeFileSync(config, text.replace(uri, 's3://another-bucket/registry'));
    },
  };
  for (const [name, breakIt] of Object.entries(breakages))
    for (const warm of [true, false])
      it(`${name}, catalog ${warm ? 'warm' : 'cold'}: exit 1, nothing written`, async () => {
        const dir = writeRegistry(tempDir('refuse'), { 'fraud-detector': fraud });
        initRepo(dir);
        expect((await cli(dir, 'sync')).code).toBe(0); // reads every version, so the catalog knows them
        git(dir, 'add', '-A');
        git(dir, 'commit', '-qm', 'pins');
        const pins = () => ['production', 'staging'].map((env) => readFileSync(join(dir, 'deploy', env, 'fraud-detector.yaml'), 'utf8'));
        const before = pins();
        expect(existsSync(join(dir, '.git/modelgate/versions.tsv'))).toBe(true);
        breakIt(dir);
        for (const mode of [[], ['--check'], ['--dry-run']]) {
          if (!warm) rmSync(join(dir, '.git/modelgate'), { recursive: true, force: true });
          const r = await cli(dir, 'sync', ...mode);
          expect(r.code, `sync ${mode.join(' ')}`).toBe(1);
          expect(r.stderr).toContain('does not validate');
          expect(r.stderr).toContain('models/fraud-detector/versions/2.yaml');
        }
        git(dir, 'commit', '-qam', 'broken');
        const ref = await cli(dir, 'sync', '--registry-ref', 'HEAD');
        expect(ref.code).toBe(1);
        expect(ref.stderr).toContain('does not validate');
        expect(pins()).toEqual(before);
      });
});

describe('sync --push against a remote over git http-backend', () => {
  let server: GitHttpServer;
  let remoteRoot: string;
  let n = 0;
  beforeAll(async () => {
    remoteRoot = tempDir('remotes');
    server = await serveGitHttp(remoteRoot);
  });
  afterAll(() => server.close());

  /** A bare remote holding a registry whose pins are in sync; returns its URL. */
  async function remoteRegistry(models: Record<string, ModelSpec>, extra: (dir: string) => void = () => {}): Promise<string> {
    const seed = writeRegistry(tempDir('seed'), models);
    extra(seed);
    expect((await cli(seed, 'sync')).code).toBe(0);
    initRepo(seed);
    const name = `r${++n}.git`;
    git(remoteRoot, 'clone', '--quiet', '--bare', seed, name);
    return `${server.url}/${name}`;
  }

  async function clone(url: string): Promise<string> {
    const dir = join(tempDir('clone'), 'registry');
    await gitAsync(join(dir, '..'), 'clone', '--quiet', url, 'registry');
    return dir;
  }

  /** A person's merge on main: change the working copy, commit, push. */
  async function merge(url: string, message: string, change: (dir: string) => void): Promise<string> {
    const dir = await clone(url);
    change(dir);
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', message);
    await gitAsync(dir, 'push', '-q', 'origin', 'main');
    return git(dir, 'rev-parse', 'HEAD').trim();
  }

  async function remoteLog(url: string): Promise<{ dir: string; log: string[] }> {
    const dir = await clone(url);
    return { dir, log: git(dir, 'log', '--format=%an|%s', 'main').trim().split('\n') };
  }

  it('commits as modelgate[bot] naming the change, then is a no-op', async () => {
    const url = await remoteRegistry({ 'fraud-detector': fraud });
    await merge(url, 'Merge pull request #7 from acme/promote-fraud', (d) => {
      setStage(d, 'fraud-detector', 1, 'Archived');
      setStage(d, 'fraud-detector', 2, 'Production');
    });
    const repo = new GitRepo(await clone(url));
    const result = await syncAndPush({ repo });
    expect(result).toMatchObject({ status: 'pushed', attempts: 1, files: ['deploy/production/fraud-detector.yaml'] });
    const { dir, log } = await remoteLog(url);
    expect(log[0]).toBe('modelgate[bot]|deploy: fraud-detector production v1 → v2');
    expect(git(dir, 'rev-parse', 'HEAD').trim()).toBe(result.commit);
    expect(versionOf(dir, 'production', 'fraud-detector')).toBe('2');
    expect(pinOf(dir, 'production', 'fraud-detector').spec.predictor.model.storageUri).toBe(
      modelVersion('fraud-detector', 2, { stage: 'Production' }).artifact.uri,
    );
    const again = await syncAndPush({ repo });
    expect(again).toMatchObject({ status: 'in-sync', files: [] });
    expect((await remoteLog(url)).log).toHaveLength(log.length);
  });

  it('two syncs racing on one merge: one pushes, the other finds itself superseded', async () => {
    const url = await remoteRegistry({ 'fraud-detector': fraud });
    await merge(url, 'promote', (d) => setStage(d, 'fraud-detector', 2, 'Production'));
    const a = new GitRepo(await clone(url));
    const b = new GitRepo(await clone(url));
    // Both derive their commit from the same head before either pushes.
    let arrived = 0;
    let release!: () => void;
    const barrier = new Promise<void>((r) => (release = r));
    const beforePush = async (_c: string, attempt: number) => {
      if (attempt > 1) return;
      if (++arrived === 2) release();
      await barrier;
    };
    const results = await Promise.all([syncAndPush({ repo: a, beforePush }), syncAndPush({ repo: b, beforePush })]);
    expect(results.map((r) => r.status).sort()).toEqual(['pushed', 'superseded']);
    const { dir, log } = await remoteLog(url);
    expect(log.filter((l) => l.startsWith('modelgate[bot]'))).toHaveLength(1);
    expect(versionOf(dir, 'production', 'fraud-detector')).toBe('2');
  });

  it('a merge landing while a sync pushes: the sync re-derives on the new head and loses nothing', async () => {
    const url = await remoteRegistry({ 'fraud-detector': fraud, scorer });
    await merge(url, 'promote fraud', (d) => setStage(d, 'fraud-detector', 2, 'Production'));
    let other = '';
    const result = await syncAndPush({
      repo: new GitRepo(await clone(url)),
      beforePush: async (_c, attempt) => {
        if (attempt === 1) {
          other = await merge(url, 'new scorer version', (d) => {
            write(d, 'models/scorer/versions/2.yaml', stringify(modelVersion('scorer', 2, { stage: 'Staging' })));
            setStage(d, 'scorer', 2, 'Production');
          });
        }
      },
    });
    expect(result.status).toBe('pushed');
    expect(result.attempts).toBe(2);
    const { dir, log } = await remoteLog(url);
    expect(git(dir, 'merge-base', '--is-ancestor', other, 'HEAD')).toBe('');
    expect(log.slice(0, 2)).toEqual(['modelgate[bot]|deploy: 2 pin changes', 'maria|new scorer version']);
    expect(versionOf(dir, 'production', 'fraud-detector')).toBe('2');
    expect(versionOf(dir, 'production', 'scorer')).toBe('2');
    expect(pinOf(dir, 'production', 'scorer').spec.template.spec.containers[0].env[1].value).toBe(
      modelVersion('scorer', 2, { stage: 'Production' }).artifact.sha256,
    );
  });

  it('catches up merges whose sync never ran, in one commit naming each change', async () => {
    const url = await remoteRegistry({ 'fraud-detector': fraud, scorer });
    await merge(url, 'promote fraud', (d) => setStage(d, 'fraud-detector', 2, 'Production'));
    await merge(url, 'retire scorer', (d) =>
      write(d, 'models/scorer/model.yaml', readFileSync(join(d, 'models/scorer/model.yaml'), 'utf8') + 'retired: true\n'),
    );
    const result = await syncAndPush({ repo: new GitRepo(await clone(url)) });
    expect(result.status).toBe('pushed');
    const { dir } = await remoteLog(url);
    const message = git(dir, 'log', '-1', '--format=%B').trim();
    expect(message).toBe('deploy: 2 pin changes\n\n- fraud-detector production v1 → v2\n- scorer production retired (was v1)');
    expect(versionOf(dir, 'production', 'fraud-detector')).toBe('2');
    expect(() => statSync(join(dir, 'deploy/production/scorer.yaml'))).toThrow();
    expect(parse(readFileSync(join(dir, 'deploy/production/kustomization.yaml'), 'utf8')).resources).toEqual(['fraud-detector.yaml']);
  });

  it('modelgate sync --push from a clone pushes and fast-forwards the checkout', async () => {
    const url = await remoteRegistry({ 'fraud-detector': fraud });
    await merge(url, 'promote', (d) => setStage(d, 'fraud-detector', 2, 'Production'));
    const dir = await clone(url);
    const r = await cli(dir, 'sync', '--push');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('fraud-detector production v1 → v2');
    expect(versionOf(dir, 'production', 'fraud-detector')).toBe('2');
    expect(git(dir, 'status', '--porcelain')).toBe('');
    expect(await cli(dir, 'sync', '--push')).toMatchObject({ code: 0 });
  });

  it('syncs a registry kept in a subfolder of the repository', async () => {
    const seed = tempDir('sub');
    const reg = join(seed, 'registry');
    mkdirSync(reg);
    writeRegistry(reg, { 'fraud-detector': fraud });
    initRepo(seed);
    const name = `r${++n}.git`;
    git(remoteRoot, 'clone', '--quiet', '--bare', seed, name);
    const url = `${server.url}/${name}`;
    const result = await syncAndPush({ repo: new GitRepo(await clone(url)), registryPath: 'registry' });
    expect(result.status).toBe('pushed');
    const { dir } = await remoteLog(url);
    expect(versionOf(join(dir, 'registry'), 'production', 'fraud-detector')).toBe('1');
  });

  it('gives up after the bounded attempts when main keeps moving, without forcing or losing a merge', async () => {
    const url = await remoteRegistry({ 'fraud-detector': fraud, scorer });
    await merge(url, 'promote fraud', (d) => setStage(d, 'fraud-detector', 2, 'Production'));
    const others: string[] = [];
    const attempts: number[] = [];
    const run = syncAndPush({
      repo: new GitRepo(await clone(url)),
      maxAttempts: 2,
      beforePush: async (_c, attempt) => {
        attempts.push(attempt);
        const n = others.length + 2;
        others.push(
          await merge(url, `scorer v${n}`, (d) => write(d, `models/scorer/versions/${n}.yaml`, stringify(modelVersion('scorer', n, { stage: 'None' })))),
        );
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'E_PUSH_RACE', exit: 3, data: { attempts: 2 } });
    expect(attempts).toEqual([1, 2]);
    const { dir, log } = await remoteLog(url);
    expect(log.filter((l) => l.startsWith('modelgate[bot]'))).toEqual([]);
    for (const c of others) expect(git(dir, 'merge-base', '--is-ancestor', c, 'HEAD')).toBe('');
    expect(git(dir, 'rev-parse', 'HEAD').trim()).toBe(others.at(-1));
    // The next sync catches up.
    expect(await syncAndPush({ repo: new GitRepo(await clone(url)) })).toMatchObject({ status: 'pushed', attempts: 1 });
  });

  it('the deploy diff the gate shows for a pull request is exactly what the sync after its merge commits', async () => {
    const url = await remoteRegistry({ 'fraud-detector': fraud, scorer }, (seed) => {
      // Hand edits the platform team made: both must survive, and the gate must show them unchanged.
      write(
        seed,
        'deploy/production/kustomization.yaml',
        '# ours\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - "netpol.yaml" # first\n  - fraud-detector.yaml\n  - scorer.yaml\n',
      );
    });
    // The pull request: promote fraud-detector v2, a new deployed model, scorer retired.
    const dev = await clone(url);
    git(dev, 'checkout', '-q', '-b', 'promote');
    setStage(dev, 'fraud-detector', 1, 'Archived');
    setStage(dev, 'fraud-detector', 2, 'Production');
    writeModel(dev, 'aaa', { deploy: { modelFormat: 'onnx' }, versions: [{ stage: 'Production', format: 'onnx' }] });
    write(dev, 'models/scorer/model.yaml', readFileSync(join(dev, 'models/scorer/model.yaml'), 'utf8') + 'retired: true\n');
    git(dev, 'add', '-A');
    git(dev, 'commit', '-qm', 'promote');
    const headSha = git(dev, 'rev-parse', 'HEAD').trim();
    const baseSha = git(dev, 'rev-parse', 'origin/main').trim();

    // What the Action's check computes (src/action/main.ts deployDiff): the head's models with the base's config and deploy files.
    const sides = await gateSidesFromGit(new GitRepo(dev), baseSha, headSha);
    const gate = planSync(await readPinInput(sides.head, { registry: await sides.base.config(), deployFrom: sides.base.source }));
    expect(gate.diff).toContain('+  - aaa.yaml\n');
    expect(gate.diff).toContain('-  - scorer.yaml\n');

    git(dev, 'checkout', '-q', 'main');
    git(dev, 'merge', '-q', '--no-ff', '-m', 'Merge pull request #3 from acme/promote', 'promote');
    await gitAsync(dev, 'push', '-q', 'origin', 'main');
    const merged = git(dev, 'rev-parse', 'HEAD').trim();
    const result = await syncAndPush({ repo: new GitRepo(await clone(url)) });
    expect(result.status).toBe('pushed');
    expect(result.diff).toBe(gate.diff);
    expect(result.changes).toEqual(gate.changes);
    const { dir } = await remoteLog(url);
    expect(git(dir, 'diff', '--name-only', merged, result.commit!).trim().split('\n')).toEqual(gate.files.map((f) => f.path));
    for (const f of gate.files) {
      if (f.after === null) expect(() => statSync(join(dir, f.path))).toThrow();
      else expect(readFileSync(join(dir, f.path), 'utf8')).toBe(f.after);
    }
    expect(readFileSync(join(dir, 'deploy/production/kustomization.yaml'), 'utf8')).toBe(
      '# ours\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - "netpol.yaml" # first\n  - fraud-detector.yaml\n  - aaa.yaml\n',
    );
  });

  it('fails with exit 3 when the remote is unreachable', async () => {
    const dir = await clone(await remoteRegistry({ 'fraud-detector': fraud }));
    git(dir, 'remote', 'set-url', 'origin', 'http://127.0.0.1:1/nowhere.git');
    const r = await cli(dir, 'sync', '--push');
    expect(r.code).toBe(3);
  });
});
