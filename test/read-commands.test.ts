import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';

const SHA = (c: string) => c.repeat(64);
const COMMIT = '8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b';

function manifest(model: string, version: number, stage: string, extra: { metrics?: string; data?: string; params?: string; files?: boolean } = {}): string {
  const sha = SHA(String(version % 10));
  const artifact = extra.files
    ? `artifact:
  uri: s3://ml-models/registry/${model}/sha256/${sha}/
  sha256: "${sha}"
  size: 412
  files:
    - {path: MLmodel, sha256: ${SHA('c')}, size: 312}
    - {path: model.pkl, sha256: ${SHA('d')}, size: 100}
format: mlflow`
    : `artifact:
  uri: s3://ml-models/registry/${model}/sha256/${sha}/model.joblib
  sha256: "${sha}"
  size: ${1000 * version}
format: joblib`;
  return `apiVersion: modelgate.dev/v1
kind: ModelVersion
model: ${model}
version: ${version}
stage: ${stage}
createdAt: "2026-0${version}-01T10:00:00Z"
createdBy: maria
${artifact}
metrics: ${extra.metrics ?? '{auc: 0.9}'}
parameters: ${extra.params ?? '{n_estimators: 100}'}
lineage:
  code: {repository: https://github.com/acme/fraud, commit: ${COMMIT}}
  data: [{id: ${extra.data ?? 'txn-2023-q2-v1'}}]
annotations: {validation_status: passed}
`;
}

const REGISTRY = `apiVersion: modelgate.dev/v1
kind: Registry
storage: {uri: s3://ml-models/registry}
github: {repository: acme/model-registry}
`;

let dir: string;
const commits: Record<string, string> = {};

function git(args: string[], who = 'alice', date = '2026-01-10T12:00:00Z'): string {
  return execFileSync('git', args, {
    cwd: dir,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: who,
      GIT_AUTHOR_EMAIL: `${who}@example.com`,
      GIT_COMMITTER_NAME: who,
      GIT_COMMITTER_EMAIL: `${who}@example.com`,
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
    },
  }).trim();
}

function write(path: string, text: string): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), text);
}

function commit(name: string, message: string, who: string, date: string): void {
  git(['add', '--all'], who, date);
  git(['commit', '--quiet', '-m', message], who, date);
  commits[name] = git(['rev-parse', 'HEAD']);
}

async function cli(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['--registry', dir, ...args], {
    cwd: dir,
    env: process.env,
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    tty: false,
  });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

const FRAUD = 'models/fraud-detector/versions';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'modelgate-read-'));
  git(['init', '--quiet', '-b', 'main']);
  write('modelgate.yaml', REGISTRY);
  write('models/fraud-detector/model.yaml', 'apiVersion: modelgate.dev/v1\nkind: Model\nname: fraud-detector\n');
  write(`${FRAUD}/1.yaml`, manifest('fraud-detector', 1, 'Staging', { metrics: '{auc: 0.91, precision: 0.8}' }));
  write('models/churn/model.yaml', 'apiVersion: modelgate.dev/v1\nkind: Model\nname: churn\n');
  write('models/churn/versions/1.yaml', manifest('churn', 1, 'None', { metrics: '{auc: 0.7}' }));
  commit('c1', 'Register fraud-detector v1 and churn v1', 'alice', '2026-01-10T12:00:00Z');

  write(`${FRAUD}/1.yaml`, manifest('fraud-detector', 1, 'Production', { metrics: '{auc: 0.91, precision: 0.8}' }));
  write(`${FRAUD}/2.yaml`, manifest('fraud-detector', 2, 'Staging', { metrics: '{auc: 0.93, precision: 0.85}', data: 'txn-2023-q3-v5' }));
  commit('c2', 'Promote fraud-detector v1 to Production', 'bob', '2026-02-01T12:00:00Z');

  write(
    `${FRAUD}/3.yaml`,
    manifest('fraud-detector', 3, 'Staging', {
      metrics: '{auc: 0.978, precision: 0.956, recall: 0.9}',
      data: 'txn-2023-q3-v5',
      params: '{n_estimators: 200, max_depth: 15}',
      files: true,
    }),
  );
  commit('c3', 'Register fraud-detector v3 (#11)', 'maria', '2026-02-15T12:00:00Z');

  git(['checkout', '--quiet', '-b', 'modelgate/fraud-v3-production'], 'dave', '2026-03-01T12:00:00Z');
  write(
    `${FRAUD}/3.yaml`,
    manifest('fraud-detector', 3, 'Production', {
      metrics: '{auc: 0.978, precision: 0.956, recall: 0.9}',
      data: 'txn-2023-q3-v5',
      params: '{n_estimators: 200, max_depth: 15}',
      files: true,
    }),
  );
  write(`${FRAUD}/1.yaml`, manifest('fraud-detector', 1, 'Archived', { metrics: '{auc: 0.91, precision: 0.8}' }));
  commit('branch', 'Promote fraud-detector v3 to Production', 'dave', '2026-03-01T12:00:00Z');

  git(['checkout', '--quiet', 'main'], 'dave', '2026-03-02T12:00:00Z');
  write('models/churn/versions/2.yaml', manifest('churn', 2, 'Staging', { metrics: '{auc: 0.75}' }));
  commit('c4', 'Register churn v2', 'carol', '2026-03-02T12:00:00Z');

  git(
    [
      'merge',
      '--no-ff',
      '--quiet',
      '-m',
      'Merge pull request #12 from acme/modelgate/fraud-v3-production\n\nPromote fraud-detector v3 to Production',
      'modelgate/fraud-v3-production',
    ],
    'erin',
    '2026-03-05T12:00:00Z',
  );
  commits.merge = git(['rev-parse', 'HEAD']);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('list', () => {
  it('lists every version, sorted, as a stable JSON array', async () => {
    const r = await cli('--json', 'list');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = r.json();
    // Streamed one version at a time, byte for byte what JSON.stringify writes for the array.
    expect(r.stdout).toBe(JSON.stringify(rows, null, 2) + '\n');
    expect((await cli('--json', 'list', '--stage', 'Live-never')).code).toBe(2);
    expect((await cli('--json', 'list', '--model', 'churn', '--stage', 'Production')).stdout).toBe('[]\n');
    expect(rows.map((v: { model: string; version: number; stage: string }) => `${v.model}@${v.version}:${v.stage}`)).toEqual([
      'churn@1:None',
      'churn@2:Staging',
      'fraud-detector@1:Archived',
      'fraud-detector@2:Staging',
      'fraud-detector@3:Production',
    ]);
    expect(Object.keys(rows[0])).toEqual(['model', 'version', 'stage', 'createdAt', 'createdBy', 'format', 'artifact', 'metrics', 'parameters', 'annotations']);
    expect(rows[4].metrics).toEqual({ auc: 0.978, precision: 0.956, recall: 0.9 });
  });

  it('filters by model, stage (case-insensitively) and --where', async () => {
    const ids = async (...args: string[]) => {
      const r = await cli('--json', 'list', ...args);
      expect(r.stderr).toBe('');
      return r.json().map((v: { model: string; version: number }) => `${v.model}@${v.version}`);
    };
    expect(await ids('--stage', 'production')).toEqual(['fraud-detector@3']);
    expect(await ids('--stage', 'Staging')).toEqual(['churn@2', 'fraud-detector@2']);
    expect(await ids('--model', 'churn')).toEqual(['churn@1', 'churn@2']);
    expect(await ids('--model', 'fraud-detector', '--where', 'metrics.auc > 0.92')).toEqual(['fraud-detector@2', 'fraud-detector@3']);
    expect(await ids('--where', "metrics.auc > 0.95 and lineage.data.id = 'txn-2023-q3-v5'")).toEqual(['fraud-detector@3']);
    expect(await ids('--where', "lineage.data.id = 'txn-2023-q3-v5'")).toEqual(['fraud-detector@2', 'fraud-detector@3']);
    expect(await ids('--where', "stage = 'staging' and params.n_estimators >= 100")).toEqual(['churn@2', 'fraud-detector@2']);
    expect(await ids('--where', "model LIKE 'ch%' or metrics.recall > 0")).toEqual(['churn@1', 'churn@2', 'fraud-detector@3']);
    expect(await ids('--stage', 'Archived', '--where', 'metrics.auc > 0.95')).toEqual([]);
  });

  it('prints a table with model, version, stage, created and key metrics', async () => {
    const r = await cli('list', '--model', 'fraud-detector');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^MODEL\s+VERSION\s+STAGE\s+CREATED\s+METRICS$/);
    expect(lines[3]).toMatch(/^fraud-detector\s+3\s+Production\s+2026-03-01 10:00\s+auc=0.978 precision=0.956 recall=0.9$/);
    expect((await cli('list', '--stage', 'Archived', '--where', 'metrics.auc > 2')).stdout).toBe('no versions match\n');
  });

  it('rejects an unknown model (exit 1), a bad stage and a malformed --where (exit 2)', async () => {
    const unknown = await cli('list', '--model', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown model nope');
    const stage = await cli('list', '--stage', 'Live');
    expect(stage.code).toBe(2);
    expect(stage.stderr).toContain('--stage Live');
    const where = await cli('--json', 'list', '--where', 'metrics.auc > 0.9 and (stage = ');
    expect(where.code).toBe(2);
    expect(where.json().error).toMatchObject({ code: 'E_WHERE_SYNTAX', column: 32 });
    expect(where.stderr).toContain("expected a value after '=' at column 32");
    expect(where.stderr).toContain(`\n  ${' '.repeat(31)}^`);
  });

  it('never serves a stale cache: edits, new files and commits show up', async () => {
    const prod = async () =>
      (await cli('--json', 'list', '--stage', 'Production')).json().map((v: { model: string; version: number }) => `${v.model}@${v.version}`);
    const all = async () =>
      (await cli('--json', 'list')).json().map((v: { model: string; version: number; stage: string }) => `${v.model}@${v.version}:${v.stage}`);
    expect(await prod()).toEqual(['fraud-detector@3']);
    expect(await all()).toContain('fraud-detector@3:Production');
    expect(existsSync(join(dir, '.git/modelgate/versions.tsv'))).toBe(true);
    const v3 = manifest('fraud-detector', 3, 'Production', {
      metrics: '{auc: 0.978, precision: 0.956, recall: 0.9}',
      data: 'txn-2023-q3-v5',
      params: '{n_estimators: 200, max_depth: 15}',
      files: true,
    });
    try {
      // Same size: only the stage word changes.
      write(`${FRAUD}/3.yaml`, v3.replace('stage: Production', 'stage: Archived  '));
      expect(await prod()).toEqual([]);
      expect(await all()).toContain('fraud-detector@3:Archived');
      write('models/churn/versions/3.yaml', manifest('churn', 3, 'Production'));
      expect(await prod()).toEqual(['churn@3']);
      write(`${FRAUD}/3.yaml`, v3.replace('stage: Production', 'stage: "Pr\\x6Fduction"'));
      expect(await prod()).toEqual(['churn@3', 'fraud-detector@3']);
      git(['add', '--all'], 'frank', '2026-03-06T12:00:00Z');
      expect(await prod()).toEqual(['churn@3', 'fraud-detector@3']);
      rmSync(join(dir, 'models/churn/versions/3.yaml'));
      expect(await prod()).toEqual(['fraud-detector@3']);
      git(['reset', '--quiet', 'HEAD', '--', 'models'], 'frank', '2026-03-06T12:00:00Z');
      write(`${FRAUD}/3.yaml`, v3);
      expect(await prod()).toEqual(['fraud-detector@3']);
      // An entry git is told not to check must not be vouched for by the cache either.
      git(['update-index', '--assume-unchanged', `${FRAUD}/3.yaml`]);
      write(`${FRAUD}/3.yaml`, v3.replace('stage: Production', 'stage: Staging'));
      expect(await prod()).toEqual([]);
      git(['update-index', '--no-assume-unchanged', `${FRAUD}/3.yaml`]);
      write(`${FRAUD}/3.yaml`, 'stage: [Production');
      const broken = await cli('list', '--stage', 'Production');
      expect(broken.code).toBe(1);
      expect(broken.stderr).toContain(`${FRAUD}/3.yaml`);
    } finally {
      write(`${FRAUD}/3.yaml`, v3);
      git(['reset', '--quiet', 'HEAD', '--', 'models'], 'frank', '2026-03-06T12:00:00Z');
      rmSync(join(dir, 'models/churn/versions/3.yaml'), { force: true });
    }
    expect(await prod()).toEqual(['fraud-detector@3']);
    expect(git(['status', '--porcelain'])).toBe('');
  });

  it('works in a registry folder that is not a git repository', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'modelgate-nogit-'));
    try {
      cpSync(dir, copy, { recursive: true, filter: (src) => !src.includes('/.git') });
      let stdout = '';
      const code = await runCli(['--json', 'list', '--stage', 'production'], {
        cwd: copy,
        env: process.env,
        stdout: (t) => void (stdout += t),
        stderr: () => {},
        tty: false,
      });
      expect(code).toBe(0);
      expect(JSON.parse(stdout).map((v: { model: string; version: number }) => `${v.model}@${v.version}`)).toEqual(['fraud-detector@3']);
      expect(existsSync(join(copy, '.git'))).toBe(false);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe('show', () => {
  it('shows a version by number, by stage and the latest', async () => {
    expect((await cli('--json', 'show', 'fraud-detector@2')).json()).toMatchObject({ model: 'fraud-detector', version: 2, stage: 'Staging' });
    expect((await cli('--json', 'show', 'fraud-detector@PRODUCTION')).json()).toMatchObject({ version: 3, stage: 'Production' });
    expect((await cli('--json', 'show', 'fraud-detector@latest')).json()).toMatchObject({ version: 3 });
    expect((await cli('--json', 'show', 'churn@staging')).json()).toMatchObject({ model: 'churn', version: 2 });
  });

  it('prints a readable block', async () => {
    const r = await cli('show', 'fraud-detector@production');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^fraud-detector@3 {2}Production\n/);
    for (const line of [
      /^artifact$/m,
      /^ {2}uri +s3:\/\/ml-models\/registry\/fraud-detector\/sha256\/3{64}\/$/m,
      /^ {2}size +412 bytes$/m,
      /^ {4}MLmodel +312 bytes/m,
      /^metrics$/m,
      /^ {2}auc +0\.978$/m,
      /^parameters$/m,
      /^ {2}max_depth +15$/m,
      /^lineage$/m,
      /^ {2}data\[0\]\.id +txn-2023-q3-v5$/m,
      /^ {2}code\.commit +8a7b6c5d/m,
      /^annotations$/m,
      /^ {2}validation_status +passed$/m,
    ]) {
      expect(r.stdout).toMatch(line);
    }
  });

  it('--at a commit or a date shows what was in a stage then', async () => {
    const at = async (when: string) => {
      const r = await cli('--json', 'show', 'fraud-detector@production', '--at', when);
      expect(r.stderr).toBe('');
      return r.json().version;
    };
    expect(await at(commits.c2!)).toBe(1);
    expect(await at(commits.c2!.slice(0, 10))).toBe(1);
    expect(await at('HEAD~1')).toBe(1);
    expect(await at(commits.merge!)).toBe(3);
    expect(await at('2026-02-20')).toBe(1);
    expect(await at('2026-03-05')).toBe(3);
    expect(await at('2026-03-05T11:59:59Z')).toBe(1);
    expect(await at('2026-03-05T12:00:00Z')).toBe(3);
    expect(await at('2026-03-05T13:30:00+02:00')).toBe(1);
    // The branch commit (2026-03-01) is not on the first-parent line of main.
    expect(await at('2026-03-03')).toBe(1);

    const human = await cli('show', 'fraud-detector@production', '--at', '2026-02-20');
    expect(human.stdout).toMatch(new RegExp(`^as of ${commits.c3!.slice(0, 12)} \\(2026-02-15T12:00:00Z\\)\\nfraud-detector@1 {2}Production`));

    const none = await cli('show', 'fraud-detector@production', '--at', '2026-01-11');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('fraud-detector has no version in Production');
    const before = await cli('show', 'fraud-detector@latest', '--at', '2025-12-31');
    expect(before.code).toBe(1);
    expect(before.stderr).toContain('no commit on the current branch at or before 2025-12-31');
    const bad = await cli('show', 'fraud-detector@latest', '--at', 'no-such-rev');
    expect(bad.code).toBe(2);
    expect((await cli('show', 'fraud-detector@latest', '--at', '2026-13-45')).code).toBe(2);
    // Days that do not exist are usage errors, not rolled over into the next month.
    for (const day of ['2026-02-30', '2026-02-29', '2026-04-31T10:00:00Z', '2026-06-31 08:00']) {
      const r = await cli('--json', 'show', 'fraud-detector@latest', '--at', day);
      expect({ day, code: r.code, error: r.json().error.code }).toEqual({ day, code: 2, error: 'E_USAGE' });
    }
    expect(await at('2028-02-29')).toBe(3);
  });

  it('unknown model or version → exit 1; malformed ref → exit 2', async () => {
    const unknown = await cli('show', 'nope@latest');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('nope');
    const missing = await cli('--json', 'show', 'fraud-detector@9');
    expect(missing.code).toBe(1);
    expect(missing.json().error.code).toBe('E_NOT_FOUND');
    expect((await cli('show', 'churn@production')).code).toBe(1);
    expect((await cli('show', 'Fraud')).code).toBe(2);
    expect((await cli('show', 'fraud-detector@Live')).code).toBe(2);
    // A well-formed alias the model does not have is unknown content (SPEC v3 §9).
    expect((await cli('show', 'fraud-detector@live')).code).toBe(1);
    expect((await cli('show')).code).toBe(2);
    expect((await cli('show', 'a', 'b')).code).toBe(2);
  });
});

describe('history', () => {
  it('reports every stage change with when, who, commit and pull request', async () => {
    const r = await cli('--json', 'history', 'fraud-detector');
    expect(r.code).toBe(0);
    expect(r.json()).toEqual([
      {
        date: '2026-01-10T12:00:00Z',
        author: 'alice',
        email: 'alice@example.com',
        commit: commits.c1,
        pullRequest: null,
        version: 1,
        from: null,
        to: 'Staging',
        decision: { record: 'not-a-pull-request' },
      },
      {
        date: '2026-02-01T12:00:00Z',
        author: 'bob',
        email: 'bob@example.com',
        commit: commits.c2,
        pullRequest: null,
        version: 1,
        from: 'Staging',
        to: 'Production',
        decision: { record: 'not-a-pull-request' },
      },
      {
        date: '2026-02-01T12:00:00Z',
        author: 'bob',
        email: 'bob@example.com',
        commit: commits.c2,
        pullRequest: null,
        version: 2,
        from: null,
        to: 'Staging',
        decision: { record: 'not-a-pull-request' },
      },
      {
        date: '2026-02-15T12:00:00Z',
        author: 'maria',
        email: 'maria@example.com',
        commit: commits.c3,
        pullRequest: 11,
        version: 3,
        from: null,
        to: 'Staging',
        decision: { record: 'unavailable' },
      },
      {
        date: '2026-03-05T12:00:00Z',
        author: 'erin',
        email: 'erin@example.com',
        commit: commits.merge,
        pullRequest: 12,
        version: 1,
        from: 'Production',
        to: 'Archived',
        decision: { record: 'unavailable' },
      },
      {
        date: '2026-03-05T12:00:00Z',
        author: 'erin',
        email: 'erin@example.com',
        commit: commits.merge,
        pullRequest: 12,
        version: 3,
        from: 'Staging',
        to: 'Production',
        decision: { record: 'unavailable' },
      },
    ]);
  });

  it('prints a table', async () => {
    const r = await cli('history', 'fraud-detector');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^DATE\s+VERSION\s+CHANGE\s+AUTHOR\s+COMMIT\s+PR\s+APPROVERS$/);
    expect(lines[1]).toMatch(/^2026-01-10 12:00\s+1\s+\(new\) → Staging\s+alice\s+[0-9a-f]{10}$/);
    expect(lines[6]).toMatch(
      new RegExp(`^2026-03-05 12:00\\s+3\\s+Staging → Production\\s+erin\\s+${commits.merge!.slice(0, 10)}\\s+#12\\s+\\(store unavailable\\)$`),
    );
  });

  it('unknown model → exit 1, invalid name → exit 2', async () => {
    expect((await cli('history', 'nope')).code).toBe(1);
    expect((await cli('history', 'No_Pe')).code).toBe(2);
    expect((await cli('history')).code).toBe(2);
  });
});

describe('diff', () => {
  it('compares metrics with deltas, parameters and lineage', async () => {
    const r = await cli('--json', 'diff', 'fraud-detector@1', 'fraud-detector@production');
    expect(r.code).toBe(0);
    const d = r.json();
    expect(d.a).toEqual({ model: 'fraud-detector', version: 1, stage: 'Archived' });
    expect(d.b).toEqual({ model: 'fraud-detector', version: 3, stage: 'Production' });
    expect(d.metrics).toEqual([
      { name: 'auc', a: 0.91, b: 0.978, delta: 0.068, changed: true },
      { name: 'precision', a: 0.8, b: 0.956, delta: 0.156, changed: true },
      { name: 'recall', a: null, b: 0.9, changed: true },
    ]);
    expect(d.parameters).toEqual([
      { name: 'n_estimators', a: 100, b: 200, changed: true },
      { name: 'max_depth', a: null, b: 15, changed: true },
    ]);
    expect(d.lineage).toContainEqual({ name: 'data[0].id', a: 'txn-2023-q2-v1', b: 'txn-2023-q3-v5', changed: true });
    expect(d.lineage).toContainEqual({ name: 'code.commit', a: COMMIT, b: COMMIT, changed: false });

    const human = await cli('diff', 'fraud-detector@1', 'fraud-detector@3');
    expect(human.stdout).toMatch(/^METRIC\s+fraud-detector@1\s+fraud-detector@3\s+DELTA$/m);
    expect(human.stdout).toMatch(/^auc\s+0\.91\s+0\.978\s+\+0\.068$/m);
    expect(human.stdout).toMatch(/^recall\s+—\s+0\.9$/m);
  });

  it('needs two valid references', async () => {
    expect((await cli('diff', 'fraud-detector@1')).code).toBe(2);
    expect((await cli('diff', 'fraud-detector@1', 'fraud-detector@99')).code).toBe(1);
  });
});

describe('resolve', () => {
  it('gives uri, sha256, size and the files of a directory artifact', async () => {
    const r = await cli('--json', 'resolve', 'fraud-detector@production');
    expect(r.code).toBe(0);
    expect(r.json()).toEqual({
      model: 'fraud-detector',
      version: 3,
      stage: 'Production',
      uri: `s3://ml-models/registry/fraud-detector/sha256/${SHA('3')}/`,
      sha256: SHA('3'),
      size: 412,
      files: [
        { path: 'MLmodel', sha256: SHA('c'), size: 312 },
        { path: 'model.pkl', sha256: SHA('d'), size: 100 },
      ],
    });
    const file = (await cli('--json', 'resolve', 'fraud-detector@2')).json();
    expect(file).toEqual({
      model: 'fraud-detector',
      version: 2,
      stage: 'Staging',
      uri: `s3://ml-models/registry/fraud-detector/sha256/${SHA('2')}/model.joblib`,
      sha256: SHA('2'),
      size: 2000,
    });
    const human = await cli('resolve', 'fraud-detector@2');
    expect(human.stdout).toContain(`sha256   ${SHA('2')}\n`);
  });

  it('--presign validates its seconds and refuses a directory artifact (exit 2)', async () => {
    const r = await cli('--json', 'resolve', 'fraud-detector@production', '--presign', '300');
    expect(r.code).toBe(2);
    expect(r.json().error.code).toBe('E_PRESIGN_DIRECTORY');
    expect((await cli('resolve', 'fraud-detector@latest', '--presign', 'soon')).code).toBe(2);
    expect((await cli('resolve', 'fraud-detector@latest', '--presign', '9999999')).code).toBe(2);
    expect((await cli('resolve', 'nope@latest')).code).toBe(1);
  });
});
