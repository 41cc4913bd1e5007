import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { dvcCachePaths, parseDvcDirListing, parseDvcFile } from '../src/import/dvc.js';
import { parseArtifactsYaml, parseGtoTag, parseStageMap, planGtoImport } from '../src/import/gto.js';
import { cli, git, makeRegistry, sha256, tempDir } from './helpers/artifacts.js';

// GTO itself (PyPI, pinned in python/requirements-import.txt) in a virtual environment of its own.
const ROOT = resolve(import.meta.dirname, '..');
const VENV = join(ROOT, '.venv-import');
const REQUIREMENTS = join(ROOT, 'python/requirements-import.txt');
const GTO = join(VENV, 'bin/gto');

function gtoEnv(): void {
  const stamp = join(VENV, '.requirements.sha256');
  const want = sha256(readFileSync(REQUIREMENTS));
  if (existsSync(GTO) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  if (!existsSync(join(VENV, 'bin/python'))) execFileSync(process.env.PYTHON ?? 'python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(join(VENV, 'bin/python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS], { stdio: 'inherit' });
  writeFileSync(stamp, want);
}

/**
 * Runs the gto CLI in `dir` as `who`. GTO (dulwich) dates its tags by the clock, in whole
 * seconds, and orders by that time: each writing call waits for the next second.
 */
function gto(dir: string, who: string, ...args: string[]): string {
  if (['register', 'assign', 'deprecate'].includes(args[0]!)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1100);
  return execFileSync(GTO, args, {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GIT_COMMITTER_NAME: who, GIT_COMMITTER_EMAIL: `${who}@example.com`, NO_COLOR: '1' },
  });
}

interface GtoEvent {
  timestamp: string;
  artifact: string;
  event: string;
  version: string;
  stage: string | null;
  author: string;
  ref: string;
}

describe('GTO tags and stages (pure)', () => {
  it('reads every tag form of GTO 1.10 and nothing else', () => {
    expect(parseGtoTag('churn@v1.2.3')).toEqual({ action: 'register', artifact: 'churn', version: 'v1.2.3' });
    expect(parseGtoTag('churn@v1.2.3-rc.1+b5!')).toEqual({ action: 'deregister', artifact: 'churn', version: 'v1.2.3-rc.1+b5' });
    expect(parseGtoTag('churn#prod#4')).toEqual({ action: 'assign', artifact: 'churn', stage: 'prod', counter: 4 });
    expect(parseGtoTag('churn#prod')).toEqual({ action: 'assign', artifact: 'churn', stage: 'prod' });
    expect(parseGtoTag('churn#prod!#5')).toEqual({ action: 'unassign', artifact: 'churn', stage: 'prod', counter: 5 });
    expect(parseGtoTag('churn@deprecated#6')).toEqual({ action: 'deprecate', artifact: 'churn', counter: 6 });
    expect(parseGtoTag('models/nlp=bert@v0.1.0')).toEqual({ action: 'register', artifact: 'models/nlp:bert', version: 'v0.1.0' });
    for (const other of ['v1.0.0', 'churn@1.0.0', 'churn@v01.0.0', 'churn#', '#prod#1', 'churn@vx', 'churn@created'])
      expect(parseGtoTag(other)).toBeUndefined();
  });

  it('reads artifacts.yaml: type, path, labels, description; a path that leaves the repository is dropped', () => {
    const text = 'a:\n  type: model\n  path: models/a/\n  labels: [x, 1, y]\n  description: A\nb:\n  path: ../../etc/passwd\nc:\n  path: /abs\nd: 7\n';
    expect(parseArtifactsYaml(text)).toEqual({ a: { type: 'model', path: 'models/a/', labels: ['x', 'y'], description: 'A' }, b: {}, c: {} });
    expect(parseArtifactsYaml('[unclosed')).toEqual({});
    expect(parseArtifactsYaml(undefined)).toEqual({});
  });

  it('maps prod/production and stage/staging by default, --stages replaces the table, other stages are aliases', () => {
    const map = parseStageMap(undefined) as Exclude<ReturnType<typeof parseStageMap>, string>;
    expect([map('prod'), map('production'), map('stage'), map('staging'), map('dev')]).toEqual([
      { stage: 'Production' },
      { stage: 'Production' },
      { stage: 'Staging' },
      { stage: 'Staging' },
      { alias: 'dev' },
    ]);
    const custom = parseStageMap('live=Production,dev=staging') as Exclude<ReturnType<typeof parseStageMap>, string>;
    expect([custom('live'), custom('dev'), custom('prod')]).toEqual([{ stage: 'Production' }, { stage: 'Staging' }, { alias: 'prod' }]);
    expect(typeof parseStageMap('prod=Archived')).toBe('string');
    expect(typeof parseStageMap('=Production')).toBe('string');
  });

  it('orders by time, a registration before an assignment of the same second; an assignment of an unregistered commit registers it', () => {
    const by = { name: 'maria', email: 'm@example.com' };
    const { steps } = planGtoImport(
      [
        { name: 'a#prod#2', commit: 'c1', tagger: by, date: '2024-01-01T00:00:00Z', message: '' },
        { name: 'a@v1.0.0', commit: 'c1', tagger: by, date: '2024-01-01T00:00:00Z', message: '' },
        { name: 'a#staging#1', commit: 'c2', tagger: by, date: '2023-12-31T00:00:00Z', message: '' },
        { name: 'a@v9.9.9', commit: 'c9', message: '' },
      ],
      parseStageMap(undefined) as Exclude<ReturnType<typeof parseStageMap>, string>,
    );
    expect(steps.map((s) => [s.kind, s.tag, 'version' in s ? s.version : ''])).toEqual([
      ['register', 'a#staging#1', 'c2'],
      ['stage', 'a#staging#1', 'c2'],
      ['register', 'a@v1.0.0', 'v1.0.0'],
      ['stage', 'a#prod#2', 'v1.0.0'],
    ]);
  });
});

describe('DVC records (pure)', () => {
  it("reads a .dvc file's one output, and refuses anything else", () => {
    expect(parseDvcFile('outs:\n- md5: 8f64e242c4362de33d7def0f73381b44\n  size: 10\n  hash: md5\n  path: big.bin\n')).toEqual({
      md5: '8f64e242c4362de33d7def0f73381b44',
      directory: false,
    });
    expect(parseDvcFile('outs:\n- md5: 6ea46d53348e675e87743182f72de908.dir\n  path: folder\n')).toEqual({
      md5: '6ea46d53348e675e87743182f72de908',
      directory: true,
    });
    for (const bad of [undefined, '', 'outs: []', 'outs:\n- md5: ../../etc\n', 'outs:\n- md5: a\n- md5: b\n', '[unclosed'])
      expect(parseDvcFile(bad)).toBeUndefined();
    expect(dvcCachePaths('8f64e242c4362de33d7def0f73381b44')).toEqual([
      '.dvc/cache/files/md5/8f/64e242c4362de33d7def0f73381b44',
      '.dvc/cache/8f/64e242c4362de33d7def0f73381b44',
    ]);
  });

  it('refuses a .dir listing whose paths leave the folder', () => {
    const md5 = '60b725f10c9c85c70d97880dfe8191b3';
    expect(parseDvcDirListing(JSON.stringify([{ md5, relpath: 'sub/a.txt' }]))).toEqual([{ md5, relpath: 'sub/a.txt' }]);
    for (const relpath of ['../a', 'a/../../b', '/abs', 'a//b', '.']) expect(parseDvcDirListing(JSON.stringify([{ md5, relpath }]))).toBeUndefined();
    expect(parseDvcDirListing('{"not": "a list"}')).toBeUndefined();
  });
});

describe('modelgate import gto (a real GTO repository made with the gto CLI)', () => {
  let repo: string;
  const bytes = { churn1: 'churn model one\n', churn2: 'churn model two\n' };

  beforeAll(() => {
    gtoEnv();
    repo = tempDir('mg-gto-');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'config', 'user.name', 'maria');
    git(repo, 'config', 'user.email', 'maria@example.com');
    const artifacts = [
      'churn:',
      '  type: model',
      '  path: models/churn.pkl',
      '  description: Churn classifier',
      '  labels: [tabular, gbm]',
      'nlp:',
      '  type: model',
      '  path: models/nlp',
      'my_model:',
      '  type: model',
      '  path: models/churn.pkl',
      '',
    ].join('\n');
    mkdirSync(join(repo, 'models/nlp'), { recursive: true });
    writeFileSync(join(repo, 'artifacts.yaml'), artifacts);
    writeFileSync(join(repo, 'models/churn.pkl'), bytes.churn1);
    writeFileSync(join(repo, 'models/nlp/config.json'), '{"layers": 2}\n');
    writeFileSync(join(repo, 'models/nlp/weights.bin'), 'weights\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'first models');
    gto(repo, 'maria', 'register', 'churn', '--version', 'v1.0.0');
    gto(repo, 'carol', 'assign', 'churn', '--version', 'v1.0.0', '--stage', 'staging');
    writeFileSync(join(repo, 'models/churn.pkl'), bytes.churn2);
    git(repo, 'commit', '-q', '-am', 'churn retrained');
    gto(repo, 'maria', 'register', 'churn', '--bump-minor');
    gto(repo, 'maria', 'register', 'nlp', '--version', 'v0.1.0');
    gto(repo, 'dave', 'assign', 'churn', '--version', 'v1.1.0', '--stage', 'prod');
    gto(repo, 'carol', 'assign', 'churn', '--version', 'v1.0.0', '--stage', 'dev');
    gto(repo, 'carol', 'deprecate', 'churn', 'v1.0.0', 'staging');
    gto(repo, 'dave', 'assign', 'nlp', '--version', 'v0.1.0', '--stage', 'production');
    gto(repo, 'dave', 'deprecate', 'nlp');
    gto(repo, 'maria', 'register', 'my_model', '--version', 'v1.0.0');
    gto(repo, 'carol', 'deprecate', 'churn', 'v1.0.0');
  }, 900_000);

  it('carries over versions, assignments and deprecations in order, by the tagger at the tag time, and re-running imports nothing', async () => {
    const registry = makeRegistry({ uri: pathToFileURL(tempDir('mg-store-')).href });
    const first = await cli(registry, ['import', 'gto', repo, '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json.imported.map((i: { tag: string }) => i.tag)).toEqual([
      'churn@v1.0.0',
      'churn#staging#1',
      'churn@v1.1.0',
      'nlp@v0.1.0',
      'churn#prod#2',
      'churn#dev#3',
      'churn#staging!#4',
      'nlp#production#1',
      'nlp@deprecated',
      // The deregistration: the alias dev (GTO's stage dev) leaves the version, then it is archived.
      'churn@v1.0.0!',
      'churn@v1.0.0!',
    ]);
    expect(first.json.notCarried.map((n: { tag: string }) => n.tag)).toEqual(['my_model@v1.0.0']);

    // gto show: the latest version of each artifact and what each mapped stage holds.
    const show = JSON.parse(gto(repo, 'maria', 'show', '--json')) as Record<string, { version: string; stage: Record<string, string> }>;
    const list = (await cli(registry, ['list', '--json'])).json as Array<{
      model: string;
      version: number;
      stage: string;
      annotations: Record<string, string>;
    }>;
    const byGto = (model: string, gtoVersion: string) => list.find((v) => v.model === model && v.annotations['gto.version'] === gtoVersion)!;
    expect(show.churn!.version).toBe('v1.1.0');
    expect(byGto('churn', show.churn!.version)).toBeDefined();
    expect(show.churn!.stage.prod).toBe('v1.1.0');
    expect(list.filter((v) => v.model === 'churn' && v.stage === 'Production').map((v) => v.annotations['gto.version'])).toEqual([show.churn!.stage.prod]);
    expect(show.churn!.stage.staging).toBeUndefined();
    expect(show.churn!.stage.dev).toBeUndefined();
    expect(list.filter((v) => v.stage === 'Staging')).toEqual([]);
    expect((await cli(registry, ['show', 'churn@dev'])).code).toBe(1);
    // A deprecated artifact has no version left in a stage.
    expect(list.filter((v) => v.model === 'nlp').map((v) => v.stage)).toEqual(['Archived']);
    expect(list.some((v) => v.model === 'my_model')).toBe(false);

    // gto history: every carried-over event, at its time, by its tagger.
    const history = (JSON.parse(gto(repo, 'maria', 'history', 'churn', '--json')) as GtoEvent[]).reverse();
    const mg = (await cli(registry, ['history', 'churn', '--json'])).json as Array<{
      date: string;
      author: string;
      version: number;
      alias?: string;
      from: string | number | null;
      to: string | number | null;
    }>;
    const number = (v: string) => byGto('churn', v).version;
    const stageOf = (e: GtoEvent) =>
      e.event === 'registration'
        ? 'None'
        : e.event === 'unassignment'
          ? 'None'
          : e.event === 'deregistration'
            ? 'Archived'
            : e.stage === 'prod'
              ? 'Production'
              : 'Staging';
    const expected = history
      .filter((e) => ['registration', 'deregistration'].includes(e.event) || (['assignment', 'unassignment'].includes(e.event) && e.stage !== 'dev'))
      .map((e) => ({ date: e.timestamp.replace('+00:00', 'Z'), author: e.author, version: number(e.version), to: stageOf(e) }));
    expect(mg.filter((e) => e.alias === undefined).map(({ date, author, version, to }) => ({ date, author, version, to }))).toEqual(expected);
    // GTO's stage dev is the alias dev: set by its assignment, gone with the version's deregistration.
    const dev = history.filter((e) => e.stage === 'dev' || e.event === 'deregistration');
    expect(mg.filter((e) => e.alias === 'dev').map(({ date, author, from, to }) => ({ date, author, from, to }))).toEqual([
      { date: dev[0]!.timestamp.replace('+00:00', 'Z'), author: 'carol', from: null, to: number('v1.0.0') },
      { date: dev[1]!.timestamp.replace('+00:00', 'Z'), author: 'carol', from: number('v1.0.0'), to: null },
    ]);
    // The deregistration of v1.0.0 finds it archived already (by its unassignment): nothing more to record.
    expect(history.filter((e) => e.event === 'deregistration').map((e) => e.version)).toEqual(['v1.0.0']);
    expect(byGto('churn', 'v1.0.0').stage).toBe('Archived');

    // `show --at` answers what GTO's stages held then.
    const when = (ref: string) => history.find((e) => e.ref === ref)!.timestamp;
    const prodThen = await cli(registry, ['show', 'churn@production', '--at', when('churn#prod#2'), '--json']);
    expect(prodThen.json.annotations['gto.version']).toBe('v1.1.0');
    expect((await cli(registry, ['show', 'churn@production', '--at', when('churn@v1.1.0')])).code).toBe(1);
    expect((await cli(registry, ['show', 'churn@staging', '--at', when('churn#staging#1'), '--json'])).json.annotations['gto.version']).toBe('v1.0.0');
    expect((await cli(registry, ['show', 'churn@dev', '--at', when('churn#dev#3'), '--json'])).json.annotations['gto.version']).toBe('v1.0.0');

    // The bytes are GTO's at the tagged commit, under their digest; a folder artifact keeps its files.
    const v1 = (await cli(registry, ['show', `churn@${number('v1.0.0')}`, '--json'])).json;
    expect(v1.artifact.sha256).toBe(sha256(bytes.churn1));
    expect(v1.description).toBe('Churn classifier');
    expect(v1.createdBy).toBe('maria');
    expect(v1.createdAt).toBe(history[0]!.timestamp.replace('+00:00', 'Z'));
    expect(v1.annotations).toMatchObject({ 'gto.version': 'v1.0.0', 'gto.tag': 'churn@v1.0.0', 'gto.type': 'model', 'gto.labels': 'tabular,gbm' });
    expect((await cli(registry, ['show', `churn@${number('v1.1.0')}`, '--json'])).json.artifact.sha256).toBe(sha256(bytes.churn2));
    const nlp = (await cli(registry, ['show', 'nlp@1', '--json'])).json;
    expect(nlp.artifact.files.map((f: { path: string }) => f.path)).toEqual(['config.json', 'weights.bin']);
    const pulled = tempDir('mg-pull-');
    const pull = await cli(registry, ['pull', `churn@${number('v1.1.0')}`, '-o', join(pulled, 'm.pkl')]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(readFileSync(join(pulled, 'm.pkl'), 'utf8')).toBe(bytes.churn2);

    // One commit per change, authored by the tagger at the tag's time.
    const log = git(registry, 'log', '--reverse', '--format=%an %aI %cI').trim().split('\n').slice(1);
    const tagged = (ref: string) => history.find((e) => e.ref === ref)!;
    expect(log[0]).toBe(`maria ${tagged('churn@v1.0.0').timestamp} ${tagged('churn@v1.0.0').timestamp}`);
    expect(log[4]).toBe(`dave ${tagged('churn#prod#2').timestamp} ${tagged('churn#prod#2').timestamp}`);
    expect((await cli(registry, ['validate'])).code).toBe(0);

    const head = git(registry, 'rev-parse', 'HEAD');
    const again = await cli(registry, ['import', 'gto', repo, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json.imported).toEqual([]);
    expect(git(registry, 'rev-parse', 'HEAD')).toBe(head);
  }, 300_000);

  it('--push lands every commit on the remote main, and a re-run reads what is there', async () => {
    const registry = makeRegistry({ uri: pathToFileURL(tempDir('mg-store-')).href });
    const remote = tempDir('mg-remote-');
    git(remote, 'init', '-q', '--bare', '-b', 'main');
    git(registry, 'remote', 'add', 'origin', remote);
    git(registry, 'push', '-q', 'origin', 'main');
    const first = await cli(registry, ['import', 'gto', repo, '--push', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json.imported).toHaveLength(11);
    expect(git(remote, 'log', '--format=%an', 'main').trim().split('\n')).toHaveLength(12);
    const tip = git(remote, 'rev-parse', 'main');
    const again = await cli(registry, ['import', 'gto', repo, '--push', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json.imported).toEqual([]);
    expect(git(remote, 'rev-parse', 'main')).toBe(tip);
  }, 300_000);

  it('a later run imports only what GTO recorded since, on top of what is there', async () => {
    const registry = makeRegistry({ uri: pathToFileURL(tempDir('mg-store-')).href });
    expect((await cli(registry, ['import', 'gto', repo])).code).toBe(0);
    gto(repo, 'carol', 'assign', 'churn', '--version', 'v1.1.0', '--stage', 'dev');
    writeFileSync(join(repo, 'models/churn.pkl'), 'churn model three\n');
    git(repo, 'commit', '-q', '-am', 'churn retrained again');
    gto(repo, 'maria', 'register', 'churn', '--version', 'v2.0.0');
    gto(repo, 'dave', 'assign', 'churn', '--version', 'v2.0.0', '--stage', 'production');
    const next = await cli(registry, ['import', 'gto', repo, '--json']);
    expect(next.code, next.stderr).toBe(0);
    // Production holds one version: v1.1.0 is archived by the promotion of v2.0.0, and loses the alias dev first.
    expect(next.json.imported.map((i: { tag: string; change: string }) => [i.tag, i.change])).toEqual([
      ['churn#dev#5', 'Set churn@dev to version 2'],
      ['churn@v2.0.0', 'Register churn@3'],
      ['churn#production#6', 'Delete churn@dev (was version 2)'],
      ['churn#production#6', 'Promote churn@3 to Production'],
    ]);
    const list = (await cli(registry, ['list', '--model', 'churn', '--json'])).json as Array<{
      version: number;
      stage: string;
      annotations: Record<string, string>;
    }>;
    expect(list.map((v) => [v.version, v.annotations['gto.version'], v.stage])).toEqual([
      [1, 'v1.0.0', 'Archived'],
      [2, 'v1.1.0', 'Archived'],
      [3, 'v2.0.0', 'Production'],
    ]);
  }, 300_000);

  it('refuses a stage table it cannot read and a path that is no git repository, before writing anything', async () => {
    const registry = makeRegistry({ uri: pathToFileURL(tempDir('mg-store-')).href });
    const head = git(registry, 'rev-parse', 'HEAD');
    const bad = await cli(registry, ['import', 'gto', repo, '--stages', 'prod=Archived']);
    expect(bad.code).toBe(2);
    const none = await cli(registry, ['import', 'gto', tempDir('mg-empty-')]);
    expect(none.code).toBe(2);
    expect(git(registry, 'rev-parse', 'HEAD')).toBe(head);
  });
});

describe('modelgate import gto with DVC (the bytes from DVC cache, made with the dvc CLI)', () => {
  const DVC = join(VENV, 'bin/dvc');
  const dvc = (dir: string, ...args: string[]) => execFileSync(DVC, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, DVC_NO_ANALYTICS: '1' } });

  it('copies a DVC-tracked file and folder at each version, checks them against DVC, and reports an object the cache lacks', async () => {
    gtoEnv();
    const repo = tempDir('mg-gto-dvc-');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'config', 'user.name', 'maria');
    git(repo, 'config', 'user.email', 'maria@example.com');
    dvc(repo, 'init', '-q');
    mkdirSync(join(repo, 'data/folder'), { recursive: true });
    writeFileSync(join(repo, 'data/model.bin'), 'weights one\n');
    writeFileSync(join(repo, 'data/folder/a.txt'), 'a\n');
    writeFileSync(join(repo, 'data/folder/b.txt'), 'b\n');
    writeFileSync(join(repo, 'artifacts.yaml'), 'tracked:\n  type: model\n  path: data/model.bin\nfolder:\n  type: model\n  path: data/folder\n');
    dvc(repo, 'add', '-q', 'data/model.bin', 'data/folder');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'dvc-tracked models');
    gto(repo, 'maria', 'register', 'tracked', '--version', 'v1.0.0');
    gto(repo, 'maria', 'register', 'folder', '--version', 'v1.0.0');
    writeFileSync(join(repo, 'data/model.bin'), 'weights two\n');
    dvc(repo, 'add', '-q', 'data/model.bin');
    git(repo, 'commit', '-q', '-am', 'retrained');
    gto(repo, 'carol', 'register', 'tracked', '--bump-major');
    gto(repo, 'carol', 'assign', 'tracked', '--version', 'v2.0.0', '--stage', 'staging');
    // The cache loses the first weights: v1.0.0 cannot be carried over, and nothing is written for it.
    const oldMd5 = git(repo, 'show', 'HEAD~1:data/model.bin.dvc').match(/md5: ([0-9a-f]{32})/)![1]!;
    execFileSync('rm', [join(repo, `.dvc/cache/files/md5/${oldMd5.slice(0, 2)}/${oldMd5.slice(2)}`)]);

    const registry = makeRegistry({ uri: pathToFileURL(tempDir('mg-store-')).href });
    const run = await cli(registry, ['import', 'gto', repo, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json.imported.map((i: { tag: string }) => i.tag)).toEqual(['folder@v1.0.0', 'tracked@v2.0.0', 'tracked#staging#1']);
    expect(run.json.notCarried.map((n: { tag: string }) => n.tag)).toEqual(['tracked@v1.0.0']);
    const tracked = (await cli(registry, ['show', 'tracked@1', '--json'])).json;
    expect(tracked.annotations['gto.version']).toBe('v2.0.0');
    expect(tracked.stage).toBe('Staging');
    expect(tracked.artifact.sha256).toBe(sha256('weights two\n'));
    const folder = (await cli(registry, ['show', 'folder@1', '--json'])).json;
    expect(folder.artifact.files.map((f: { path: string; sha256: string }) => [f.path, f.sha256])).toEqual([
      ['a.txt', sha256('a\n')],
      ['b.txt', sha256('b\n')],
    ]);
    expect((await cli(registry, ['verify', 'tracked@1', '--full'])).code).toBe(0);
  }, 600_000);
});
