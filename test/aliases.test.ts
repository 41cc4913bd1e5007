import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';

const TEMPLATE = join(import.meta.dirname, '../registry-template');
const ALIASES = 'models/fraud-detector/aliases.yaml';
const temps: string[] = [];
afterAll(() => Promise.all(temps.map((d) => rm(d, { recursive: true, force: true }))));

async function registry(edit?: (root: string) => Promise<void>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'mg-aliases-'));
  temps.push(root);
  await cp(TEMPLATE, root, { recursive: true });
  await edit?.(root);
  return root;
}

const aliasesText = (aliases: Record<string, number>) =>
  `apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: fraud-detector\naliases:\n${Object.entries(aliases)
    .map(([k, v]) => `  ${k}: ${v}\n`)
    .join('')}`;

async function cli(cwd: string, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { cwd, env: {}, tty: false, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

describe('aliases.yaml in validate', () => {
  it('accepts aliases that point at existing, unarchived versions', async () => {
    const root = await registry((r) => writeFile(join(r, ALIASES), aliasesText({ champion: 1, challenger: 2 })));
    const r = await cli(root, 'validate', '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true, problems: [] });
    expect(r.code).toBe(0);
  });

  it('refuses an alias at a missing version, an Archived one and a reserved name, each where it is written', async () => {
    const root = await registry(async (r) => {
      await writeFile(join(r, ALIASES), aliasesText({ champion: 1, challenger: 9, staging: 2 }));
      const v1 = join(r, 'models/fraud-detector/versions/1.yaml');
      await writeFile(v1, (await readFile(v1, 'utf8')).replace('stage: Production', 'stage: Archived'));
    });
    const r = await cli(root, 'validate', '--json');
    expect(r.code).toBe(1);
    const problems = JSON.parse(r.stdout).problems as Array<{ file: string; code: string; line: number }>;
    expect(problems.map((p) => [p.file, p.code, p.line])).toEqual([[ALIASES, 'E_ALIAS_NAME', 7]]);
    // The reserved name stops the file loading; with it gone the targets are judged.
    await writeFile(join(root, ALIASES), aliasesText({ champion: 1, challenger: 9 }));
    const again = JSON.parse((await cli(root, 'validate', '--json')).stdout).problems as Array<{ file: string; code: string; line: number }>;
    expect(again.map((p) => [p.file, p.code, p.line])).toEqual([
      [ALIASES, 'E_ALIAS_TARGET', 5],
      [ALIASES, 'E_ALIAS_TARGET', 6],
    ]);
  });

  it('reports an archived alias target when only the version file is validated (the gate validates the changed files)', async () => {
    const root = await registry(async (r) => {
      await writeFile(join(r, ALIASES), aliasesText({ challenger: 2 }));
      const v2 = join(r, 'models/fraud-detector/versions/2.yaml');
      await writeFile(v2, (await readFile(v2, 'utf8')).replace('stage: Staging', 'stage: Archived'));
    });
    const r = await cli(root, 'validate', '--json', 'models/fraud-detector/versions/2.yaml');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems.map((p: { code: string }) => p.code)).toEqual(['E_ALIAS_TARGET']);
  });
});

const gitEnv = { GIT_AUTHOR_NAME: 'Maria', GIT_AUTHOR_EMAIL: 'maria@example.com', GIT_COMMITTER_NAME: 'Maria', GIT_COMMITTER_EMAIL: 'maria@example.com' };
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...gitEnv } }).trim();
const CANARY = '  canary: {alias: challenger, path: deploy/canary, namespace: models-canary}\n';

/** The template with a canary environment following challenger, committed. */
async function committed(): Promise<string> {
  const root = await registry(async (r) => {
    const config = join(r, 'modelgate.yaml');
    const text = await readFile(config, 'utf8');
    await writeFile(config, text.replace(/( {2}production: \{stage: Production[^\n]*\n)/, `$1${CANARY}`));
  });
  git(root, 'init', '-q', '-b', 'main');
  git(root, 'add', '-A');
  git(root, 'commit', '-qm', 'registry');
  return root;
}

describe('modelgate alias', () => {
  it('sets an alias with the canary pin in the same commit, resolves it, moves it and deletes it', async () => {
    const root = await committed();
    const dry = await cli(root, 'alias', 'set', 'fraud-detector@2', 'challenger', '--dry-run', '--json');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.files).toEqual([ALIASES, 'deploy/canary/fraud-detector.yaml', 'deploy/canary/kustomization.yaml']);
    expect(plan.diff).toContain('+  challenger: 2');
    expect(existsSync(join(root, ALIASES))).toBe(false);

    const set = await cli(root, 'alias', 'set', 'fraud-detector@2', 'challenger', '--json');
    expect(set.code).toBe(0);
    expect(git(root, 'show', '--name-only', '--format=%s', 'HEAD').split('\n')).toEqual([
      'Set fraud-detector@challenger to version 2',
      '',
      'deploy/canary/fraud-detector.yaml',
      'deploy/canary/kustomization.yaml',
      ALIASES,
    ]);
    expect(git(root, 'status', '--porcelain')).toBe('');
    const pin = await readFile(join(root, 'deploy/canary/fraud-detector.yaml'), 'utf8');
    const v2 = await readFile(join(root, 'models/fraud-detector/versions/2.yaml'), 'utf8');
    const sha = /sha256: "?([0-9a-f]{64})/.exec(v2)![1]!;
    expect(pin).toContain(sha);
    expect(pin).toContain('modelgate.dev/version: "2"');

    const resolved = JSON.parse((await cli(root, 'resolve', 'fraud-detector@challenger', '--json')).stdout);
    expect(resolved).toMatchObject({ model: 'fraud-detector', version: 2, sha256: sha });
    expect((await cli(root, 'validate')).code).toBe(0);

    // Moving champion onto v1, then challenger: one line each.
    expect((await cli(root, 'alias', 'set', 'fraud-detector@1', 'champion')).code).toBe(0);
    const moved = await cli(root, 'alias', 'set', 'fraud-detector@champion', 'challenger', '--json');
    expect(moved.code).toBe(0);
    expect(git(root, 'show', '--format=', '-U0', 'HEAD', '--', ALIASES)).toMatch(/- {2}challenger: 2\n\+ {2}challenger: 1/);
    expect(JSON.parse((await cli(root, 'alias', 'list', '--json')).stdout)).toEqual([
      { model: 'fraud-detector', alias: 'challenger', version: 1, stage: 'Production' },
      { model: 'fraud-detector', alias: 'champion', version: 1, stage: 'Production' },
    ]);

    const listed = JSON.parse((await cli(root, 'list', '--where', "alias = 'champion'", '--json')).stdout);
    expect(listed.map((v: { version: number; aliases: string[] }) => [v.version, v.aliases])).toEqual([[1, ['challenger', 'champion']]]);
    expect((await cli(root, 'list', '--model', 'fraud-detector')).stdout).toMatch(/Production @challenger @champion/);

    const again = await cli(root, 'alias', 'set', 'fraud-detector@1', 'champion', '--json');
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout).error.code).toBe('E_NO_CHANGE');

    // Archiving an alias's target is refused, naming the alias.
    const archive = await cli(root, 'archive', 'fraud-detector@1', '--json');
    expect(archive.code).toBe(1);
    expect(JSON.parse(archive.stdout).error.code).toBe('E_ALIAS_TARGET');

    expect((await cli(root, 'alias', 'delete', 'fraud-detector', 'champion')).code).toBe(0);
    expect(await readFile(join(root, ALIASES), 'utf8')).toBe(
      'apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: fraud-detector\naliases:\n  challenger: 1\n',
    );
    expect((await cli(root, 'validate')).code).toBe(0);
  });

  it('refuses a bare model, a reserved alias and an Archived target', async () => {
    const root = await committed();
    expect((await cli(root, 'alias', 'set', 'fraud-detector', 'champion')).code).toBe(2);
    expect((await cli(root, 'alias', 'set', 'fraud-detector@1', 'production')).code).toBe(2);
    expect((await cli(root, 'alias', 'set', 'fraud-detector@1', 'v1')).code).toBe(2);
    expect((await cli(root, 'alias', 'delete', 'fraud-detector', 'champion')).code).toBe(1);
    expect(JSON.parse((await cli(root, 'alias', 'list', 'nope', '--json')).stdout).error.code).toBe('E_NOT_FOUND');
    expect(JSON.parse((await cli(root, 'alias', 'list', 'fraud-detector', '--json')).stdout)).toEqual([]);
    const unknown = await cli(root, 'resolve', 'fraud-detector@champion', '--json');
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout).error.code).toBe('E_NOT_FOUND');
    const reserved = await cli(root, 'alias', 'set', 'fraud-detector@1', 'latest', '--json');
    expect(JSON.parse(reserved.stdout).error.code).toBe('E_USAGE');
  });
});

describe('alias history, show --at and verify --decisions', () => {
  it('lists alias moves beside stage changes, resolves an alias as it was, and flags a move no record proves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-aliases-hist-'));
    temps.push(dir);
    const root = join(dir, 'r');
    const store = `file://${join(dir, 'store')}`;
    const io = { env: { ...process.env, ...gitEnv } };
    const run = async (...args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(args, { cwd: root, ...io, tty: false, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
      return { code, stdout, stderr };
    };
    expect(await runCli(['init', root, '--store', store, '--example'], { cwd: dir, ...io, tty: false, stdout: () => undefined, stderr: () => undefined })).toBe(
      0,
    );
    expect((await run('alias', 'set', 'fraud-detector@1', 'champion')).code).toBe(0);
    const before = git(root, 'rev-parse', 'HEAD');
    expect((await run('alias', 'set', 'fraud-detector@2', 'champion')).code).toBe(0);

    const history = JSON.parse((await run('history', 'fraud-detector', '--json')).stdout) as Array<Record<string, unknown>>;
    expect(history.filter((c) => 'alias' in c).map((c) => [c.alias, c.from, c.to, c.version])).toEqual([
      ['champion', null, 1, 1],
      ['champion', 1, 2, 2],
    ]);
    expect(history.filter((c) => 'alias' in c).map((c) => (c.decision as { record: string }).record)).toEqual(['not-a-pull-request', 'not-a-pull-request']);

    expect(JSON.parse((await run('show', 'fraud-detector@champion', '--at', before, '--json')).stdout).version).toBe(1);
    expect(JSON.parse((await run('show', 'fraud-detector@champion', '--json')).stdout).version).toBe(2);

    const verify = await run('verify', '--decisions', '--json');
    expect(verify.code).toBe(1);
    const verdicts = JSON.parse(verify.stdout).verdicts as Array<{ model: string; version: number; stage: string; ok: boolean; commit: string }>;
    expect(verdicts.find((v) => v.stage === '@champion')).toMatchObject({
      model: 'fraud-detector',
      version: 2,
      ok: false,
      commit: git(root, 'rev-parse', 'HEAD'),
    });
  });
});
