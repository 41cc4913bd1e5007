import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_ATTEMPTS } from '../src/github/client.js';
import { serveGitHttp, type GitHttpServer } from '../src/local/git-http-backend.js';
import { runFromEnv } from '../src/lineage/ci.js';
import { parseCodeSpec, publicRepositoryUrl } from '../src/lineage/code.js';
import { parseDatasetSpec } from '../src/lineage/dataset.js';
import { parseMetrics, parseParams } from '../src/lineage/values.js';
import { stringify } from 'yaml';
import { cli, git, makeRegistry, randomFile, sha256, tempDir } from './helpers/artifacts.js';
import { POLICY, version as versionFixture } from './gate-fixtures.js';
import { prRemote, type PrRemote } from './helpers/pr-remote.js';

// The http-backend server runs in this process: clones against it must not block the event loop.
const gitAsync = promisify(execFile);
const fileStorage = () => ({ uri: pathToFileURL(tempDir('mg-store-')).href });
const noFiles = (p: string) => {
  throw new Error(`no file ${p}`);
};

describe('lineage parsing (pure)', () => {
  it('reads metrics from JSON files and k=v pairs; later values win', () => {
    const files: Record<string, string> = { 'm.json': '{"auc": 0.97, "loss": 1e-3}' };
    expect(parseMetrics(['m.json', 'auc=0.98', 'f1=.5'], (p) => files[p]!)).toEqual({ auc: 0.98, loss: 0.001, f1: 0.5 });
  });

  it('refuses metrics that are not finite numbers, naming the key', () => {
    expect(() => parseMetrics(['m.json'], () => '{"auc": "0.9"}')).toThrow(/metric "auc"/);
    expect(() => parseMetrics(['m.json'], () => '{"auc": null}')).toThrow(/"auc"/);
    expect(() => parseMetrics(['auc=abc'], noFiles)).toThrow(/auc must be a finite number/);
    expect(() => parseMetrics(['auc=Infinity'], noFiles)).toThrow();
    expect(() => parseMetrics(['auc=0x10'], noFiles)).toThrow();
    expect(() => parseMetrics(['m.json'], () => '[1]')).toThrow(/JSON object/);
    expect(() => parseMetrics(['nofile.json'], noFiles)).toThrow(/no such file/);
  });

  it('types k=v parameters and checks JSON parameters', () => {
    expect(parseParams(['depth=15', 'lr=1.10', 'balanced=true', 'name=rf'], noFiles)).toEqual({ depth: '15', lr: '1.10', balanced: 'true', name: 'rf' });
    expect(() => parseParams(['p.json'], () => '{"a": null}')).toThrow(/parameter "a"/);
  });

  it('reads the CI run from GitHub Actions and GitLab CI variables', () => {
    expect(runFromEnv({ GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '42', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/fraud' })).toEqual({
      id: '42',
      url: 'https://github.com/acme/fraud/actions/runs/42',
      system: 'github-actions',
    });
    expect(runFromEnv({ GITLAB_CI: 'true', CI_PIPELINE_ID: '7', CI_JOB_URL: 'https://gitlab.example/j/9' })).toEqual({
      id: '7',
      url: 'https://gitlab.example/j/9',
      system: 'gitlab-ci',
    });
    expect(runFromEnv({})).toBeUndefined();
  });

  it('drops credentials from repository URLs and parses --code and --dataset', () => {
    expect(publicRepositoryUrl('https://x-access-token:ghs_secret@github.com/acme/fraud.git')).toBe('https://github.com/acme/fraud');
    expect(publicRepositoryUrl('git@github.com:acme/fraud.git')).toBe('https://github.com/acme/fraud');
    expect(publicRepositoryUrl('https://oauth2:glpat-abc@gitlab.com/g/sub/p.git')).toBe('https://gitlab.com/g/sub/p');
    expect(publicRepositoryUrl('ssh://git:token@github.com:22/acme/fraud.git')).toBe('https://github.com/acme/fraud');
    expect(publicRepositoryUrl('https://ghp_onlytoken@github.com/acme/fraud')).toBe('https://github.com/acme/fraud');
    expect(parseCodeSpec(`https://github.com/acme/fraud@${'a'.repeat(40)}`)).toEqual({ repository: 'https://github.com/acme/fraud', commit: 'a'.repeat(40) });
    expect(() => parseCodeSpec('https://github.com/acme/fraud@main')).toThrow(/40-hex/);
    expect(parseDatasetSpec('id=txn,uri=s3://d/t.parquet')).toEqual({ id: 'txn', uri: 's3://d/t.parquet' });
    expect(() => parseDatasetSpec('uri=s3://d/t')).toThrow(/id=/);
    expect(() => parseDatasetSpec('id=a,colour=red')).toThrow();
  });
});

/** A training-code repository with one commit and `origin` (credentials included, to be dropped). */
function trainingRepo(origin: string): string {
  const work = tempDir('mg-train-');
  git(work, 'init', '-q', '-b', 'main');
  git(work, 'remote', 'add', 'origin', origin);
  writeFileSync(join(work, 'train.py'), 'print(1)\n');
  git(work, 'add', '-A');
  git(work, '-c', 'user.name=x', '-c', 'user.email=x@x', 'commit', '-q', '-m', 'train');
  return work;
}

describe('modelgate register (file:// store)', () => {
  it('uploads, writes the manifest in SPEC order with lineage, commits, and prints model@N', async () => {
    const reg = makeRegistry(fileStorage());
    const work = trainingRepo('https://bot:s3cr3t@github.com/acme/fraud.git');
    const head = git(work, 'rev-parse', 'HEAD').trim();
    writeFileSync(join(work, 'metrics.json'), JSON.stringify({ auc: 0.978, precision: 0.956 }));
    const data = randomFile(work, 'txn.csv', 1234);
    const model = randomFile(work, 'model.joblib', 200_000);
    const ciEnv = { GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '789', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/fraud' };

    const r = await cli(
      work,
      [
        '--registry',
        reg,
        'register',
        'fraud-detector',
        'model.joblib',
        '--metrics',
        'metrics.json',
        '--metrics',
        'recall=0.9',
        '--param',
        'n_estimators=200',
        '--stage',
        'staging',
        '--description',
        'RF on Q3',
        '--framework',
        'scikit-learn==1.3.0',
        '--code',
        'auto',
        '--dataset',
        'id=txn-q3,uri=s3://data/txn.csv,path=txn.csv',
      ],
      ciEnv,
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('fraud-detector@1\n');
    const text = readFileSync(join(reg, 'models/fraud-detector/versions/1.yaml'), 'utf8');
    const mv = parse(text);
    expect(Object.keys(mv)).toEqual([
      'apiVersion',
      'kind',
      'model',
      'version',
      'stage',
      'createdAt',
      'createdBy',
      'description',
      'artifact',
      'format',
      'framework',
      'metrics',
      'parameters',
      'lineage',
    ]);
    expect(text).toMatch(/^createdAt: "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"$/m);
    expect(mv).toMatchObject({
      version: 1,
      stage: 'Staging',
      createdBy: 'maria',
      format: 'joblib',
      artifact: { sha256: sha256(model.bytes), size: 200_000 },
      framework: { name: 'scikit-learn', version: '1.3.0' },
      metrics: { auc: 0.978, precision: 0.956, recall: 0.9 },
      parameters: { n_estimators: '200' },
      lineage: {
        code: { repository: 'https://github.com/acme/fraud', commit: head },
        data: [{ id: 'txn-q3', uri: 's3://data/txn.csv', sha256: sha256(data.bytes) }],
        run: { id: '789', url: 'https://github.com/acme/fraud/actions/runs/789' },
      },
    });
    expect(text).not.toContain('s3cr3t');
    expect(mv.lineage.code.dirty).toBeUndefined();
    // Committed on main, work tree moved along, model.yaml created for a new model.
    expect(git(reg, 'log', '-1', '--format=%s').trim()).toBe('register fraud-detector@1');
    expect(git(reg, 'status', '--porcelain').trim()).toBe('');
    expect(existsSync(join(reg, 'models/fraud-detector/model.yaml'))).toBe(true);

    // Second registration of the same bytes: version 2, same URI, the object reused.
    const r2 = await cli(work, ['--registry', reg, 'register', 'fraud-detector', 'model.joblib', '--json']);
    expect(r2.json).toMatchObject({ version: 2, reused: true, uri: mv.artifact.uri, pushed: false });
  });

  it('prints the result alone on stdout, progress with human sizes on stderr, and nothing but JSON with --json', async () => {
    const reg = makeRegistry(fileStorage());
    randomFile(reg, 'churn-v1.safetensors', 100);
    const r = await cli(reg, ['register', 'churn', 'churn-v1.safetensors']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('churn@1\n');
    expect(r.stderr).toBe('uploading churn-v1.safetensors: 100% (100 B of 100 B)\n');

    randomFile(reg, 'churn-v2.safetensors', 3 * 1024 * 1024 + 200_000);
    const big = await cli(reg, ['register', 'churn', 'churn-v2.safetensors']);
    expect(big.stdout).toBe('churn@2\n');
    expect(big.stderr.trim().split('\n').at(-1)).toBe('uploading churn-v2.safetensors: 100% (3.2 MiB of 3.2 MiB)');

    const json = await cli(reg, ['--json', 'register', 'churn', 'churn-v1.safetensors']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ model: 'churn', version: 3, ref: 'churn@3', size: 100, reused: true });
    expect(json.stderr).toBe('');
  });

  it('commits inside the registry folder when the registry is a subfolder of its repository', async () => {
    const top = tempDir('mg-mono-');
    git(top, 'init', '-q', '-b', 'main');
    git(top, 'config', 'user.name', 'maria');
    git(top, 'config', 'user.email', 'maria@example.com');
    mkdirSync(join(top, 'ml/registry'), { recursive: true });
    writeFileSync(join(top, 'ml/registry/modelgate.yaml'), stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Registry', storage: fileStorage() }));
    git(top, 'add', '-A');
    git(top, 'commit', '-q', '-m', 'registry');
    randomFile(top, 'm.onnx', 300);
    const r = await cli(top, ['--registry', 'ml/registry', 'register', 'vision', 'm.onnx']);
    expect(r.code, r.stderr).toBe(0);
    expect(git(top, 'show', '--name-only', '--format=', 'HEAD').trim().split('\n')).toEqual([
      'ml/registry/models/vision/model.yaml',
      'ml/registry/models/vision/versions/1.yaml',
    ]);
    expect(existsSync(join(top, 'models'))).toBe(false);
    expect((await cli(top, ['--registry', 'ml/registry', '--json', 'register', 'vision', 'm.onnx'])).json).toMatchObject({ version: 2 });
  });

  it('registers a directory (MLflow model) with every file listed', async () => {
    const reg = makeRegistry(fileStorage());
    const dir = tempDir('mg-mlflow-');
    writeFileSync(join(dir, 'MLmodel'), 'flavors: {}\n');
    mkdirSync(join(dir, 'data'));
    randomFile(join(dir, 'data'), 'model.pkl', 5000);
    const r = await cli(reg, ['register', 'churn', dir, '--json']);
    expect(r.code).toBe(0);
    const mv = parse(readFileSync(join(reg, 'models/churn/versions/1.yaml'), 'utf8'));
    expect(mv.format).toBe('mlflow');
    expect(mv.artifact.files.map((f: { path: string }) => f.path)).toEqual(['MLmodel', 'data/model.pkl']);
    expect(mv.artifact.uri).toMatch(/\/churn\/sha256\/[0-9a-f]{64}\/$/);
  });

  it('rejects bad input before uploading anything (exit 1 or 2), leaving no manifest', async () => {
    const storage = fileStorage();
    const reg = makeRegistry(storage);
    const m = randomFile(reg, 'm.onnx', 100);
    writeFileSync(join(reg, 'bad.json'), '{"auc": "0.9"}');
    const cases: Array<[string[], number, RegExp]> = [
      [['register', 'fraud', 'm.onnx', '--metrics', 'bad.json'], 1, /metric "auc"/],
      [['register', 'Fraud', 'm.onnx'], 2, /invalid model name/],
      [['register', 'fraud', 'missing.onnx'], 2, /no such file/],
      [['register', 'fraud', 'm.onnx', '--stage', 'Production'], 2, /None or Staging/],
      [['register', 'fraud', 'm.onnx', '--format', 'zip'], 2, /--format/],
      [['register', 'fraud', 'm.onnx', '--push', '--pr'], 2, /exclude/],
      [['register', 'fraud', 'm.onnx', '--code', 'nonsense'], 2, /--code/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(reg, args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(join(reg, 'models'))).toBe(false);
    expect(existsSync(new URL(storage.uri).pathname + '/fraud')).toBe(false);
    expect(m.bytes.length).toBe(100);
  });

  it('--code auto records a dirty tree with credentials dropped; GitLab CI and a hashed dataset land in the manifest', async () => {
    const reg = makeRegistry(fileStorage());
    const work = trainingRepo('https://oauth2:glpat-Secr3tToken@gitlab.example.com/ml/fraud.git');
    writeFileSync(join(work, 'train.py'), 'print(2)\n');
    const data = randomFile(work, 'txn.parquet', 4321);
    randomFile(work, 'model.pt', 1000);
    const gitlab = { GITLAB_CI: 'true', CI_PIPELINE_ID: '4242', CI_JOB_URL: 'https://gitlab.example.com/ml/fraud/-/jobs/99' };
    const r = await cli(work, ['--registry', reg, 'register', 'fraud', 'model.pt', '--code', 'auto', '--dataset', 'id=txn,path=txn.parquet', '--json'], gitlab);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(join(reg, 'models/fraud/versions/1.yaml'), 'utf8');
    expect(text).not.toContain('glpat-Secr3tToken');
    expect(text).not.toContain('oauth2');
    expect(parse(text).lineage).toEqual({
      code: { repository: 'https://gitlab.example.com/ml/fraud', commit: git(work, 'rev-parse', 'HEAD').trim(), dirty: true },
      data: [{ id: 'txn', sha256: sha256(data.bytes) }],
      run: { id: '4242', url: 'https://gitlab.example.com/ml/fraud/-/jobs/99', system: 'gitlab-ci' },
    });
    // Outside a git repository, --code auto is refused before any upload.
    const bare = tempDir('mg-nogit-');
    randomFile(bare, 'model.pt', 10);
    const outside = await cli(bare, ['--registry', reg, 'register', 'other', 'model.pt', '--code', 'auto']);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/--code auto: .* is not inside a git repository/);
    expect(existsSync(join(reg, 'models/other'))).toBe(false);
  });

  it('metric and dataset errors name the key: command-line values exit 2, file contents exit 1, nothing stored', async () => {
    const storage = fileStorage();
    const reg = makeRegistry(storage);
    randomFile(reg, 'm.onnx', 100);
    writeFileSync(join(reg, 'huge.json'), '{"auc": 0.9, "loss": 1e999}');
    writeFileSync(join(reg, 'text.json'), '{"auc": "high"}');
    writeFileSync(join(reg, 'null.json'), '{"recall": null}');
    const cases: Array<[string[], number, RegExp]> = [
      [['--metric', 'auc=NaN'], 2, /auc must be a finite number/],
      [['--metrics', 'f1=inf'], 2, /f1 must be a finite number/],
      [['--metric', 'auc='], 2, /auc must be a finite number/],
      [['--metrics', 'huge.json'], 1, /metric "loss" is Infinity; metrics must be finite numbers/],
      [['--metrics', 'text.json'], 1, /metric "auc" is "high"/],
      [['--metrics', 'null.json'], 1, /metric "recall" is null/],
      [['--dataset', 'id=txn,path=missing.parquet'], 2, /--dataset txn: cannot read missing.parquet/],
      [['--dataset', 'id=txn,sha256=XYZ'], 2, /sha256 must be 64 lowercase hex/],
    ];
    for (const [extra, code, message] of cases) {
      const r = await cli(reg, ['register', 'fraud', 'm.onnx', ...extra]);
      expect(r.code, extra.join(' ')).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n'), extra.join(' ')).toHaveLength(1);
    }
    const j = await cli(reg, ['register', 'fraud', 'm.onnx', '--metrics', 'text.json', '--json']);
    expect(j.json.error).toMatchObject({ code: 'E_METRIC_VALUE', key: 'auc' });
    expect(existsSync(join(reg, 'models'))).toBe(false);
    expect(existsSync(new URL(storage.uri).pathname + '/fraud')).toBe(false);
  });

  it('the same bytes registered again on the file store write nothing: no staging, the object untouched', async () => {
    const storage = fileStorage();
    const root = new URL(storage.uri).pathname;
    const reg = makeRegistry(storage);
    const m = randomFile(tempDir(), 'model.onnx', 300_000);
    const dir = tempDir('mg-mlflow-');
    writeFileSync(join(dir, 'MLmodel'), 'flavors: {}\n');
    randomFile(dir, 'model.pkl', 2000);
    for (const [model, src] of [
      ['one', m.path],
      ['many', dir],
    ] as const) {
      const first = await cli(reg, ['register', model, src, '--json']);
      expect(first.code, first.stderr).toBe(0);
      const objects = readdirSync(join(root, model, 'sha256'), { recursive: true })
        .map(String)
        .sort();
      const stamp = (p: string) => {
        const s = statSync(p);
        return [s.ino, s.mtimeMs, s.ctimeMs, s.nlink];
      };
      const before = [stamp(join(root, model, '.uploads')), ...objects.map((o) => stamp(join(root, model, 'sha256', o)))];
      const second = await cli(reg, ['register', model, src, '--json']);
      expect(second.json).toMatchObject({ version: 2, reused: true, uri: first.json.uri });
      expect(
        readdirSync(join(root, model, 'sha256'), { recursive: true })
          .map(String)
          .sort(),
      ).toEqual(objects);
      expect([stamp(join(root, model, '.uploads')), ...objects.map((o) => stamp(join(root, model, 'sha256', o)))]).toEqual(before);
    }
  });

  it('--dry-run prints the manifest it would write and changes nothing', async () => {
    const storage = fileStorage();
    const reg = makeRegistry(storage);
    const m = randomFile(tempDir(), 'm.pt', 1000);
    const r = await cli(reg, ['register', 'vision', m.path, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('# would write models/vision/versions/1.yaml');
    expect(r.stdout).toContain(`sha256: ${sha256(m.bytes)}`);
    expect(existsSync(join(reg, 'models'))).toBe(false);
    expect(existsSync(new URL(storage.uri).pathname + '/vision')).toBe(false);
  });
});

describe('register --push against a git http-backend remote', () => {
  let server: GitHttpServer | undefined;
  afterAll(async () => server?.close());

  it('two concurrent registrations of one model end with two distinct versions, both on main', async () => {
    const storage = fileStorage();
    const seed = makeRegistry(storage);
    const root = tempDir('mg-remote-');
    execFileSync('git', ['clone', '-q', '--bare', seed, join(root, 'registry.git')]);
    server = await serveGitHttp(root);
    const url = `${server.url}/registry.git`;
    const clones = [tempDir('mg-a-'), tempDir('mg-b-')];
    for (const d of clones) {
      await gitAsync('git', ['clone', '-q', url, d]);
      git(d, 'config', 'user.name', 'ci');
      git(d, 'config', 'user.email', 'ci@example.com');
    }
    const files = clones.map((d, i) => randomFile(tempDir(), `model-${i}.joblib`, 50_000 + i));
    const results = await Promise.all(clones.map((d, i) => cli(d, ['register', 'fraud', files[i]!.path, '--push', '--json'])));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(results.map((r) => r.json.version).sort()).toEqual([1, 2]);
    expect(results.every((r) => r.json.pushed)).toBe(true);

    const check = tempDir('mg-check-');
    await gitAsync('git', ['clone', '-q', url, check]);
    const log = git(check, 'log', '--format=%s', 'main').trim().split('\n');
    expect(log.filter((l) => l.startsWith('register fraud@')).sort()).toEqual(['register fraud@1', 'register fraud@2']);
    const shas = [1, 2].map((n) => parse(readFileSync(join(check, `models/fraud/versions/${n}.yaml`), 'utf8')).artifact.sha256).sort();
    expect(shas).toEqual(files.map((f) => sha256(f.bytes)).sort());
  }, 180_000);
});

describe('register --pr against a git http-backend remote and the GitHub emulator', () => {
  let remote: PrRemote | undefined;
  afterAll(async () => {
    await remote?.close();
  });

  it('uploads, pushes a branch with the manifest numbered against origin/main, and opens a pull request showing what the gate sees', async () => {
    const store = tempDir('mg-store-');
    remote = await prRemote({ uri: pathToFileURL(store).href }, POLICY, {
      'models/fraud-detector/model.yaml': stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector' }),
      'models/fraud-detector/versions/1.yaml': stringify(versionFixture(1, 'Production')),
    });
    const { url, work, gh, ghRepo, env } = remote;

    // main moves on after this clone was made: v2 lands there, so the PR must carry v3.
    const other = tempDir('mg-other-');
    await gitAsync('git', ['clone', '-q', url, other]);
    writeFileSync(join(other, 'models/fraud-detector/versions/2.yaml'), stringify(versionFixture(2, 'Staging')));
    git(other, 'add', '-A');
    git(other, '-c', 'user.name=ci', '-c', 'user.email=ci@example.com', 'commit', '-q', '-m', 'register fraud-detector@2');
    await gitAsync('git', ['-C', other, 'push', '-q', 'origin', 'main']);

    const head = git(work, 'rev-parse', 'HEAD').trim();

    const model = randomFile(tempDir(), 'model.joblib', 4096);
    const code = `https://github.com/acme/fraud@${'c'.repeat(40)}`;
    const r = await cli(
      work,
      [
        '--json',
        'register',
        'fraud-detector',
        model.path,
        '--stage',
        'Staging',
        '--metric',
        'auc=0.971',
        '--metric',
        'recall=0.91',
        '--code',
        code,
        '--dataset',
        'id=txn-2023-q3-v5,uri=s3://data/txn.parquet',
        '--pr',
      ],
      env,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const branch = 'modelgate/fraud-detector-v3-register';
    expect(r.json).toMatchObject({
      model: 'fraud-detector',
      version: 3,
      ref: 'fraud-detector@3',
      sha256: sha256(model.bytes),
      size: 4096,
      pushed: true,
      branch,
      pullRequest: { created: true },
      gate: 'pass',
    });

    // The branch: one commit on origin/main adding the manifest; nothing committed locally.
    const look = tempDir('mg-look-');
    await gitAsync('git', ['clone', '-q', '--no-checkout', url, look]);
    const main = git(look, 'rev-parse', 'origin/main').trim();
    expect(git(look, 'rev-parse', `origin/${branch}^`).trim()).toBe(main);
    expect(git(look, 'diff', '--name-status', main, `origin/${branch}`).trim()).toBe('A\tmodels/fraud-detector/versions/3.yaml');
    const mv = parse(git(look, 'show', `origin/${branch}:models/fraud-detector/versions/3.yaml`));
    expect(mv).toMatchObject({
      model: 'fraud-detector',
      version: 3,
      stage: 'Staging',
      artifact: { sha256: sha256(model.bytes), size: 4096 },
      metrics: { auc: 0.971, recall: 0.91 },
    });
    expect(existsSync(new URL(mv.artifact.uri).pathname)).toBe(true);
    expect(git(work, 'rev-parse', 'HEAD').trim()).toBe(head);
    expect(existsSync(join(work, 'models/fraud-detector/versions/3.yaml'))).toBe(false);
    expect(git(work, 'status', '--porcelain').trim()).toBe('');

    // The pull request: what the version is and which rules apply to it.
    const pull = gh.getPull(ghRepo, r.json.pullRequest.number)!;
    expect(pull.title).toBe('Register fraud-detector@3 in Staging');
    expect(pull.head.ref).toBe(branch);
    expect(pull.base.ref).toBe('main');
    expect(pull.body).toContain(sha256(model.bytes));
    expect(pull.body).toContain('c'.repeat(40));
    expect(pull.body).toContain('txn\\-2023\\-q3\\-v5');
    expect(pull.body).toMatch(/\| auc \| 0\.971 \|/);
    expect(pull.body).toMatch(/\| recall \| 0\.91 \|/);
    expect(pull.body).toContain('to\\-staging');
    expect(pull.body).toContain('Who must approve');

    // A second registration while the first is open gets the next number and its own pull request;
    // a new model's pull request adds its model.yaml too.
    const again = await cli(work, ['--json', 'register', 'fraud-detector', model.path, '--pr'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toMatchObject({ version: 4, branch: 'modelgate/fraud-detector-v4-register', reused: true, pullRequest: { created: true } });
    expect(again.json.pullRequest.number).not.toBe(r.json.pullRequest.number);
    const churn = await cli(work, ['register', 'churn', model.path, '--pr'], env);
    expect(churn.code, churn.stderr).toBe(0);
    expect(churn.stdout).toMatch(/^churn@1\npull request #\d+ opened: \S+\n$/);
    await gitAsync('git', ['-C', look, 'fetch', '-q', 'origin']);
    expect(git(look, 'diff', '--name-only', main, 'origin/modelgate/churn-v1-register').trim().split('\n')).toEqual([
      'models/churn/model.yaml',
      'models/churn/versions/1.yaml',
    ]);
    expect(gh.getPull(ghRepo, Number(/#(\d+)/.exec(churn.stdout)![1]))!.title).toBe('Register churn@1');

    // Without a token, or without github.repository, nothing is uploaded or pushed.
    const fresh = randomFile(tempDir(), 'fresh.joblib', 100);
    const noToken = await cli(work, ['register', 'fraud-detector', fresh.path, '--pr'], { GITHUB_API_URL: gh.url });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/GITHUB_TOKEN/);
    writeFileSync(join(work, 'modelgate.yaml'), stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Registry', storage: { uri: pathToFileURL(store).href } }));
    const noRepo = await cli(work, ['--json', 'register', 'fraud-detector', fresh.path, '--pr'], env);
    expect(noRepo.code).toBe(1);
    expect(noRepo.json.error.code).toBe('E_NO_GITHUB');
    expect(existsSync(join(store, 'fraud-detector/sha256', sha256(fresh.bytes)))).toBe(false);
    expect((await gitAsync('git', ['ls-remote', '--heads', url])).stdout.trim().split('\n')).toHaveLength(4);
    expect(gh.validator.violations).toEqual([]);
  }, 180_000);
});

describe('register --pr when GitHub fails after the push', () => {
  let remote: PrRemote | undefined;
  afterAll(() => remote?.close());

  it('deletes the branch it pushed, exits 3 naming GitHub, and a retry gets the same version number', async () => {
    remote = await prRemote(fileStorage(), POLICY);
    const { work, gh, env } = remote;
    const model = randomFile(tempDir(), 'model.joblib', 2048);
    const fault = gh.inject('POST /repos/{owner}/{repo}/pulls', { status: 500 });
    const failed = await cli(work, ['--json', 'register', 'fraud-detector', model.path, '--pr'], env);
    expect(failed.code, failed.stderr).toBe(3);
    expect(failed.json.error.code).toBe('E_GITHUB');
    expect(failed.json.error.message).toMatch(/opening a pull request .*HTTP 500/);
    // A 5xx is asked again (the pull request is looked for before each new POST), then reported.
    expect(fault.hits).toBe(MAX_ATTEMPTS);
    expect(await remote.branches()).toEqual(['main']);
    fault.remove();

    const retry = await cli(work, ['--json', 'register', 'fraud-detector', model.path, '--pr'], env);
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.json).toMatchObject({ version: 1, branch: 'modelgate/fraud-detector-v1-register', pullRequest: { created: true } });
    expect(await remote.branches()).toEqual(['main', 'modelgate/fraud-detector-v1-register']);

    // A branch that was there before the run (promote --pr updating its pull request) is never deleted.
    expect((await cli(work, ['register', 'churn', model.path, '--push'], env)).code).toBe(0);
    const promoted = await cli(work, ['--json', 'promote', 'churn', '1', '--to', 'Staging', '--pr'], env);
    expect(promoted.code, promoted.stderr).toBe(0);
    const branches = await remote.branches();
    expect(branches).toContain(promoted.json.branch);
    const update = gh.inject('PATCH /repos/{owner}/{repo}/pulls/{pull_number}', { status: 500 });
    const again = await cli(work, ['--json', 'promote', 'churn', '1', '--to', 'Staging', '--pr'], env);
    expect(again.code, again.stderr).toBe(3);
    expect(update.hits).toBe(MAX_ATTEMPTS);
    update.remove();
    expect(await remote.branches()).toEqual(branches);
    expect(gh.validator.violations).toEqual([]);
  }, 180_000);
});
