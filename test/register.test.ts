import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { serveGitHttp, type GitHttpServer } from '../src/local/git-http-backend.js';
import { runFromEnv } from '../src/lineage/ci.js';
import { parseCodeSpec, publicRepositoryUrl } from '../src/lineage/code.js';
import { parseDatasetSpec } from '../src/lineage/dataset.js';
import { parseMetrics, parseParams } from '../src/lineage/values.js';
import { cli, git, makeRegistry, randomFile, sha256, tempDir } from './helpers/artifacts.js';

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
    expect(parseParams(['depth=15', 'lr=0.1', 'balanced=true', 'name=rf'], noFiles)).toEqual({ depth: 15, lr: 0.1, balanced: true, name: 'rf' });
    expect(() => parseParams(['p.json'], () => '{"a": {"b": 1}}')).toThrow(/parameter "a"/);
  });

  it('reads the CI run from GitHub Actions and GitLab CI variables', () => {
    expect(runFromEnv({ GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '42', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/fraud' })).toEqual({
      id: '42', url: 'https://github.com/acme/fraud/actions/runs/42', system: 'github-actions',
    });
    expect(runFromEnv({ GITLAB_CI: 'true', CI_PIPELINE_ID: '7', CI_JOB_URL: 'https://gitlab.example/j/9' })).toEqual({ id: '7', url: 'https://gitlab.example/j/9', system: 'gitlab-ci' });
    expect(runFromEnv({})).toBeUndefined();
  });

  it('drops credentials from repository URLs and parses --code and --dataset', () => {
    expect(publicRepositoryUrl('https://x-access-token:ghs_secret@github.com/acme/fraud.git')).toBe('https://github.com/acme/fraud');
    expect(publicRepositoryUrl('git@github.com:acme/fraud.git')).toBe('https://github.com/acme/fraud');
    expect(parseCodeSpec(`https://github.com/acme/fraud@${'a'.repeat(40)}`)).toEqual({ repository: 'https://github.com/acme/fraud', commit: 'a'.repeat(40) });
    expect(() => parseCodeSpec('https://github.com/acme/fraud@main')).toThrow(/40-hex/);
    expect(parseDatasetSpec('id=txn,uri=s3://d/t.parquet')).toEqual({ id: 'txn', uri: 's3://d/t.parquet' });
    expect(() => parseDatasetSpec('uri=s3://d/t')).toThrow(/id=/);
    expect(() => parseDatasetSpec('id=a,colour=red')).toThrow();
  });
});

describe('modelgate register (file:// store)', () => {
  it('uploads, writes the manifest in SPEC order with lineage, commits, and prints model@N', async () => {
    const reg = makeRegistry(fileStorage());
    const work = tempDir('mg-train-');
    git(work, 'init', '-q', '-b', 'main');
    git(work, 'remote', 'add', 'origin', 'https://bot:s3cr3t@github.com/acme/fraud.git');
    writeFileSync(join(work, 'train.py'), 'print(1)\n');
    git(work, 'add', '-A');
    git(work, '-c', 'user.name=x', '-c', 'user.email=x@x', 'commit', '-q', '-m', 'train');
    const head = git(work, 'rev-parse', 'HEAD').trim();
    writeFileSync(join(work, 'metrics.json'), JSON.stringify({ auc: 0.978, precision: 0.956 }));
    const data = randomFile(work, 'txn.csv', 1234);
    const model = randomFile(work, 'model.joblib', 200_000);
    const ciEnv = { GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '789', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'acme/fraud' };

    const r = await cli(work, ['--registry', reg, 'register', 'fraud-detector', 'model.joblib', '--metrics', 'metrics.json', '--metrics', 'recall=0.9',
      '--param', 'n_estimators=200', '--stage', 'staging', '--description', 'RF on Q3', '--framework', 'scikit-learn==1.3.0',
      '--code', 'auto', '--dataset', 'id=txn-q3,uri=s3://data/txn.csv,path=txn.csv'], ciEnv);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('fraud-detector@1\n');
    const text = readFileSync(join(reg, 'models/fraud-detector/versions/1.yaml'), 'utf8');
    const mv = parse(text);
    expect(Object.keys(mv)).toEqual(['apiVersion', 'kind', 'model', 'version', 'stage', 'createdAt', 'createdBy', 'description', 'artifact', 'format', 'framework', 'metrics', 'parameters', 'lineage']);
    expect(text).toMatch(/^createdAt: "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"$/m);
    expect(mv).toMatchObject({
      version: 1, stage: 'Staging', createdBy: 'maria', format: 'joblib',
      artifact: { sha256: sha256(model.bytes), size: 200_000 },
      framework: { name: 'scikit-learn', version: '1.3.0' },
      metrics: { auc: 0.978, precision: 0.956, recall: 0.9 },
      parameters: { n_estimators: 200 },
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
  }, 60_000);
});
