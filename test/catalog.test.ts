import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GitRepo } from '../src/git/repo.js';
import { sealAndStampCatalog } from './helpers/catalog.js';
import { catalogStagesIn, scanVersions } from '../src/registry/catalog.js';
import { RegistrySnapshot } from '../src/registry/snapshot.js';
import { CatalogTreeSource, GitTreeSource } from '../src/registry/source.js';
import { cacheKey, writeStamp } from '../src/registry/cache-file.js';
import { indexStat } from '../src/registry/stage-candidates.js';

const COMMIT = '8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b';

function manifest(model: string, version: number, stage: string): string {
  const sha = (version * 2654435761).toString(16).padStart(16, '0').slice(-16).repeat(4);
  return `apiVersion: modelgate.dev/v1
kind: ModelVersion
model: ${model}
version: ${version}
stage: ${stage}
createdAt: "2026-01-01T10:00:00Z"
createdBy: maria
artifact:
  uri: s3://ml-models/registry/${model}/sha256/${sha}/model.joblib
  sha256: "${sha}"
  size: ${version}
format: joblib
metrics: {auc: 0.9}
lineage:
  code: {repository: https://github.com/acme/fraud, commit: ${COMMIT}}
`;
}

function gitIn(dir: string, args: string[], input?: string): string {
  return execFileSync('git', args, {
    cwd: dir,
    encoding: 'utf8',
    input,
    maxBuffer: 1 << 30,
    env: { ...process.env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@x', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@x' },
  });
}

/** A registry with `models` models of `perModel` versions each; the last version of each is in Production. */
function registry(models: number, perModel: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'mg-catalog-'));
  gitIn(dir, ['init', '-q', '-b', 'main']);
  for (let m = 0; m < models; m++) {
    const name = `m${m}`;
    mkdirSync(join(dir, 'models', name, 'versions'), { recursive: true });
    writeFileSync(join(dir, 'models', name, 'model.yaml'), `apiVersion: modelgate.dev/v1\nkind: Model\nname: ${name}\n`);
    for (let v = 1; v <= perModel; v++)
      writeFileSync(join(dir, 'models', name, 'versions', `${v}.yaml`), manifest(name, v, v === perModel ? 'Production' : 'Archived'));
  }
  gitIn(dir, ['add', '-A']);
  gitIn(dir, ['commit', '-q', '-m', 'registry']);
  return dir;
}

const cacheFile = (dir: string) => join(dir, '.git/modelgate/versions.tsv');
/** The catalog's text with its seal replaced by a plain sha256 of the content, as anyone could compute it. */
const unkeyedReseal = (t: string) => {
  const content = t.replace(/end [0-9a-f]{64}\n$/, '');
  return `${content}end ${createHash('sha256').update(content).digest('hex')}\n`;
};
const ids = (vs: Array<{ model: string; version: number; stage: string }>) => vs.map((v) => `${v.model}@${v.version}:${v.stage}`);

describe('scanVersions at 200,000 versions', () => {
  let dir: string;
  beforeAll(() => {
    dir = registry(200, 1000);
  }, 600_000);
  // No afterAll: 200,000 files take longer to remove than a test worker may live after its last
  // hook, so the run's temporary folder (test/global-setup.ts) takes them with it at the end.

  it('lists every version cold and warm, without overflowing the stack', async () => {
    const cold = await scanVersions(dir);
    expect(cold.length).toBe(200_000);
    expect(cold[0]).toMatchObject({ model: 'm0', version: 1, stage: 'Archived' });
    expect(cold.at(-1)).toMatchObject({ model: 'm99', version: 1000, stage: 'Production' });
    const warm = await scanVersions(dir);
    expect(warm.length).toBe(200_000);
    const prod = await scanVersions(dir, { stage: 'Production' });
    expect(prod.length).toBe(200);
    expect(prod.every((v) => v.version === 1000)).toBe(true);
  }, 600_000);
});

describe('a damaged read cache is rebuilt, never believed', () => {
  let dir: string;
  let expected: string[];
  beforeAll(async () => {
    dir = registry(3, 4);
    expected = ids(await scanVersions(dir));
    expect(expected).toHaveLength(12);
  }, 360_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const damage: Array<[string, (text: string) => string]> = [
    ['truncated by one byte', (t) => t.slice(0, -1)],
    ['truncated mid-line', (t) => t.slice(0, Math.floor(t.length * 0.7))],
    ['cut in half at a line end', (t) => t.slice(0, t.indexOf('\n', t.length / 2) + 1)],
    ['emptied', () => ''],
    ['edited but well-formed (a stage rewritten)', (t) => t.replace(/\tArchived\t(\{[^\n]*)"stage":"Archived"/, '\tProduction\t$1"stage":"Production"')],
    ['edited but well-formed (a line dropped, seal kept)', (t) => t.replace(/\nmodels\/[^\n]*\n/, '\n')],
    ['edited but well-formed (seal recomputed wrongly)', (t) => t.replace(/end [0-9a-f]{64}\n$/, `end ${'0'.repeat(64)}\n`)],
    [
      'edited, its seal recomputed as a sha256 of the content (no key)',
      (t) => unkeyedReseal(t.replace(/\tArchived\t(\{[^\n]*)"stage":"Archived"/, '\tProduction\t$1"stage":"Production"')),
    ],
  ];

  it.each(damage)('%s', async (_, edit) => {
    await scanVersions(dir);
    const before = readFileSync(cacheFile(dir), 'utf8');
    const damaged = edit(before);
    expect(damaged).not.toBe(before);
    writeFileSync(cacheFile(dir), damaged);
    expect(ids(await scanVersions(dir))).toEqual(expected);
    expect(ids(await scanVersions(dir, { stage: 'Production' }))).toEqual(expected.filter((s) => s.endsWith(':Production')));
    // Rebuilt whole: the next run reads a sound cache with every entry.
    expect(readFileSync(cacheFile(dir), 'utf8')).toBe(before);
  });

  it('a cache whose check was stamped is checked in full again after any edit, even one of the same size', async () => {
    await scanVersions(dir);
    const before = readFileSync(cacheFile(dir), 'utf8');
    // A check is stamped only once the file's last change is out of the file clock's reach.
    await new Promise((r) => setTimeout(r, 2100));
    await scanVersions(dir);
    const stamp = `${cacheFile(dir)}.checked`;
    expect(readFileSync(stamp, 'utf8')).toMatch(/^modelgate-version-cache-checked 2 \d+ \d+ \d+ \d+ \d+ [0-9a-f]{64}\n$/);
    for (const edit of damage.map(([, e]) => e)) {
      writeFileSync(cacheFile(dir), edit(before));
      expect(ids(await scanVersions(dir))).toEqual(expected);
      expect(readFileSync(cacheFile(dir), 'utf8')).toBe(before);
    }
    // A stamp that does not match its file exactly is not believed either.
    writeFileSync(stamp, 'modelgate-version-cache-checked 2 0 0 0 0 0 0\n');
    writeFileSync(cacheFile(dir), damage[damage.length - 1]![1](before));
    expect(ids(await scanVersions(dir))).toEqual(expected);
  });

  it('a stage query on a cold cache parses only the prefilter candidates, and a later full scan completes the cache', async () => {
    rmSync(cacheFile(dir));
    expect(ids(await scanVersions(dir, { stage: 'Production' }))).toEqual(expected.filter((s) => s.endsWith(':Production')));
    expect(
      readFileSync(cacheFile(dir), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('models/')),
    ).toHaveLength(3);
    expect(ids(await scanVersions(dir))).toEqual(expected);
    expect(
      readFileSync(cacheFile(dir), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('models/')),
    ).toHaveLength(12);
  });
});

describe("a stage query's grep and the untracked-file check, kept while the index and folders are unchanged", () => {
  let dir: string;
  const modelgate = () => join(dir, '.git/modelgate');
  const candidates = () => join(modelgate(), 'candidates-Production');
  const production = async () => ids(await scanVersions(dir, { stage: 'Production' }));
  /** Writes the candidates file with `paths` and stamps it under the key, as stage-candidates.ts does: a file modelgate believes as its own. */
  const plantCandidates = (paths: string[]) => {
    const content = Buffer.from(paths.map((p) => `${p}\n`).join(''));
    writeFileSync(candidates(), content);
    const label = `modelgate-stage-candidates 1 Production models ${createHash('sha256').update(content).digest('hex')}`;
    writeStamp(`${candidates()}.checked`, label, cacheKey(modelgate())!, [indexStat(join(dir, '.git'))!]);
  };
  const writeVersion = (model: string, version: number, stage: string) =>
    writeFileSync(join(dir, 'models', model, 'versions', `${version}.yaml`), manifest(model, version, stage));

  beforeAll(async () => {
    dir = registry(3, 6);
    // A stamp is written only once what it names is out of the file clock's reach.
    await new Promise((r) => setTimeout(r, 2100));
  }, 360_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the candidates the grep found for this index and uses them without a catalog, but only under the key', async () => {
    expect(await production()).toEqual(['m0@6:Production', 'm1@6:Production', 'm2@6:Production']);
    expect(readFileSync(candidates(), 'utf8').split('\n').filter(Boolean)).toEqual([
      'models/m0/versions/6.yaml',
      'models/m1/versions/6.yaml',
      'models/m2/versions/6.yaml',
    ]);
    // Without the catalog, the kept candidates decide which files are read: one left out stays unread.
    const withoutCatalog = () => rmSync(cacheFile(dir), { force: true });
    plantCandidates(['models/m0/versions/6.yaml', 'models/m2/versions/6.yaml']);
    withoutCatalog();
    expect(await production()).toEqual(['m0@6:Production', 'm2@6:Production']);
    // The same file edited by anything without the key (its stamp no longer matches) is not believed.
    writeFileSync(candidates(), 'models/m0/versions/6.yaml\n');
    withoutCatalog();
    expect(await production()).toEqual(['m0@6:Production', 'm1@6:Production', 'm2@6:Production']);
  });

  it('greps again once the index changed, and reads what the work tree changed', async () => {
    await production();
    writeVersion('m0', 7, 'Production');
    gitIn(dir, ['add', 'models/m0/versions/7.yaml']);
    writeVersion('m1', 2, 'Production'); // edited, not staged
    rmSync(cacheFile(dir), { force: true });
    expect(await production()).toEqual(['m0@6:Production', 'm0@7:Production', 'm1@2:Production', 'm1@6:Production', 'm2@6:Production']);
    gitIn(dir, ['checkout', '--', 'models/m1/versions/2.yaml']);
    gitIn(dir, ['rm', '-q', '--cached', 'models/m0/versions/7.yaml']); // still in the work tree, now untracked
    expect(await production()).toEqual(['m0@6:Production', 'm0@7:Production', 'm1@6:Production', 'm2@6:Production']);
    rmSync(join(dir, 'models/m0/versions/7.yaml'));
  });

  it('skips the untracked-file listing only while no version file is untracked or ignored, and sees a new one', async () => {
    rmSync(join(modelgate(), 'untracked.checked'), { force: true });
    // An ignored version file: no stamp, so that dropping the rule that hides it is seen.
    writeFileSync(join(dir, '.gitignore'), 'models/m2/versions/9.yaml\n');
    writeVersion('m2', 9, 'Production');
    await new Promise((r) => setTimeout(r, 2100));
    expect(await production()).toEqual(['m0@6:Production', 'm1@6:Production', 'm2@6:Production']);
    expect(existsSync(join(modelgate(), 'untracked.checked'))).toBe(false);
    rmSync(join(dir, '.gitignore'));
    expect(await production()).toEqual(['m0@6:Production', 'm1@6:Production', 'm2@6:Production', 'm2@9:Production']);
    rmSync(join(dir, 'models/m2/versions/9.yaml'));
    await new Promise((r) => setTimeout(r, 2100));
    expect(await production()).toEqual(['m0@6:Production', 'm1@6:Production', 'm2@6:Production']);
    expect(readFileSync(join(modelgate(), 'untracked.checked'), 'utf8')).toMatch(/^modelgate-untracked 1 m0\/versions m1\/versions m2\/versions /);
    // Stamped: a new untracked version file changes its folder, and is listed.
    writeVersion('m1', 8, 'Production');
    expect(await production()).toEqual(['m0@6:Production', 'm1@6:Production', 'm1@8:Production', 'm2@6:Production']);
    rmSync(join(dir, 'models/m1/versions/8.yaml'));
  });
});

describe('streamed in model-name order with one model at a time in memory', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mg-catalog-order-'));
    gitIn(dir, ['init', '-q', '-b', 'main']);
    // Path order puts models/a-b/ and models/a-b-c/ before models/a/: name order must not.
    for (const name of ['a', 'a-b', 'a-b-c', 'a0', 'b']) {
      mkdirSync(join(dir, 'models', name, 'versions'), { recursive: true });
      for (const v of [1, 2, 10]) writeFileSync(join(dir, 'models', name, 'versions', `${v}.yaml`), manifest(name, v, v === 10 ? 'Production' : 'Archived'));
    }
    gitIn(dir, ['add', '-A']);
    gitIn(dir, ['commit', '-q', '-m', 'registry']);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sorts by model name then version, cold, warm and with untracked files', async () => {
    const want = ['a', 'a-b', 'a-b-c', 'a0', 'b'].flatMap((m) => [`${m}@1:Archived`, `${m}@2:Archived`, `${m}@10:Production`]);
    expect(ids(await scanVersions(dir))).toEqual(want);
    expect(ids(await scanVersions(dir))).toEqual(want);
    writeFileSync(join(dir, 'models', 'a', 'versions', '3.yaml'), manifest('a', 3, 'Staging'));
    mkdirSync(join(dir, 'models', 'a-a', 'versions'), { recursive: true });
    writeFileSync(join(dir, 'models', 'a-a', 'versions', '1.yaml'), manifest('a-a', 1, 'Production'));
    const withNew = ['a@1:Archived', 'a@2:Archived', 'a@3:Staging', 'a@10:Production', 'a-a@1:Production', ...want.slice(3)];
    expect(ids(await scanVersions(dir))).toEqual(withNew);
    expect(ids(await scanVersions(dir))).toEqual(withNew);
    expect(ids(await scanVersions(dir, { stage: 'Production' }))).toEqual(withNew.filter((s) => s.endsWith(':Production')));
  });

  it('a --model query uses the cache and keeps the other models in it', async () => {
    await scanVersions(dir);
    const before = readFileSync(cacheFile(dir), 'utf8');
    expect(ids(await scanVersions(dir, { model: 'a-b' }))).toEqual(['a-b@1:Archived', 'a-b@2:Archived', 'a-b@10:Production']);
    expect(readFileSync(cacheFile(dir), 'utf8')).toBe(before);
    writeFileSync(join(dir, 'models', 'a-b', 'versions', '2.yaml'), manifest('a-b', 2, 'Staging'));
    expect(ids(await scanVersions(dir, { model: 'a-b' }))).toEqual(['a-b@1:Archived', 'a-b@2:Staging', 'a-b@10:Production']);
    const after = readFileSync(cacheFile(dir), 'utf8').split('\n');
    // The edited file's line is replaced; every other model's lines are still there.
    expect(after.filter((l) => l.startsWith('models/'))).toHaveLength(before.split('\n').filter((l) => l.startsWith('models/')).length);
    expect(after.find((l) => l.startsWith('models/a-b/versions/2.yaml\t'))).toContain('\tStaging\t');
    expect(after.filter((l) => l.startsWith('models/b/'))).toHaveLength(3);
    expect(ids(await scanVersions(dir))).toContain('a-b@2:Staging');
  });
});

describe("a commit's stage lookups through the catalog (catalogStagesIn)", () => {
  let dir: string;
  let gitDir: string;
  /** This build's first catalog line. */
  let header: string;
  // Names whose paths share prefixes (m1, m10, m100): a folder's lines end where its prefix does.
  const MODELS = 120;
  const PER_MODEL = 40;
  beforeAll(async () => {
    dir = registry(MODELS, PER_MODEL);
    gitDir = join(dir, '.git');
    // Lines of very different lengths, so that bisection steps land inside a long line too.
    for (const [model, version] of [
      ['m3', 2],
      ['m60', 7],
      ['m60', 8],
      ['m61', 1],
      ['m88', 39],
    ] as const) {
      const parameters = Array.from({ length: 900 }, (_, i) => `  p${i}: ${'x'.repeat(100 + version)}`).join('\n');
      const long = manifest(model, version, 'Archived').replace('format: joblib', `parameters:\n${parameters}\nformat: joblib`);
      writeFileSync(join(dir, 'models', model, 'versions', `${version}.yaml`), long);
    }
    gitIn(dir, ['commit', '-q', '-am', 'long descriptions']);
    await scanVersions(dir);
    // The lookup believes only a stamped seal; a check is stamped once the file is out of the file clock's reach.
    await new Promise((r) => setTimeout(r, 2100));
    await scanVersions(dir);
    header = readFileSync(cacheFile(dir), 'utf8').split('\n')[0]!;
  }, 360_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const treeStages = (model: string) =>
    new Map(
      gitIn(dir, ['ls-tree', 'HEAD', `models/${model}/versions/`])
        .trim()
        .split('\n')
        .map((line) => {
          const [, , oid, path] = line.split(/\s+/);
          const name = path!.split('/').pop()!;
          return [name, { oid: oid!, stage: name === `${PER_MODEL}.yaml` ? 'Production' : 'Archived' }] as const;
        }),
    );

  it('reads one folder by bisection: first, last and prefix-sharing models, and folders it does not hold', () => {
    expect(statSync(cacheFile(dir)).size).toBeGreaterThan(1 << 20); // several bisection steps
    for (const model of ['m0', 'm1', 'm10', 'm100', 'm11', 'm119', 'm57', 'm99', 'm3', 'm60', 'm61', 'm62', 'm88', 'm89']) {
      expect(catalogStagesIn(gitDir, `models/${model}/versions`), model).toEqual(treeStages(model));
    }
    for (const folder of ['models/m/versions', 'models/m1/version', 'models/zz/versions', 'models/a/versions']) {
      expect(catalogStagesIn(gitDir, folder), folder).toEqual(new Map());
    }
  });

  it("answers a commit's stage queries reading only the files it does not know or that are wanted", async () => {
    const repo = new GitRepo(dir);
    const read = vi.spyOn(repo, 'readBlobs');
    const snapshot = new RegistrySnapshot(new CatalogTreeSource(repo, 'HEAD', ''));
    expect(ids(await snapshot.inStage('m7', 'Production'))).toEqual([`m7@${PER_MODEL}:Production`]);
    expect(read.mock.calls.flatMap(([oids]) => oids)).toHaveLength(1);
    // The same answer from the gate's plain commit source, which never consults the catalog: every file is read.
    read.mockClear();
    expect(ids(await new RegistrySnapshot(new GitTreeSource(repo, 'HEAD', '')).inStage('m8', 'Production'))).toEqual([`m8@${PER_MODEL}:Production`]);
    expect(read.mock.calls.flatMap(([oids]) => oids)).toHaveLength(PER_MODEL);
  });

  it('uses no entry for a blob the catalog has not loaded, and no catalog whose seal is not stamped', async () => {
    // A commit the catalog has not seen: version 3 of m5 promoted, the catalog still holding its old blob.
    const path = join(dir, 'models', 'm5', 'versions', '3.yaml');
    writeFileSync(path, manifest('m5', 3, 'Production'));
    gitIn(dir, ['commit', '-q', '-am', 'promote m5@3']);
    const snapshot = new RegistrySnapshot(new CatalogTreeSource(new GitRepo(dir), 'HEAD', ''));
    expect(ids(await snapshot.inStage('m5', 'Production'))).toEqual([`m5@${PER_MODEL}:Production`, 'm5@3:Production']);
    expect(ids(await snapshot.newestInStages('m5', ['Production', 'Staging']))).toEqual([`m5@${PER_MODEL}:Production`]);
    rmSync(`${cacheFile(dir)}.checked`);
    expect(catalogStagesIn(gitDir, 'models/m5/versions')).toBeUndefined();
    // Sealed and stamped by hand (the stamp's format is checked above): believed with this
    // build's header, not with another build's.
    const content = readFileSync(cacheFile(dir), 'utf8').replace(/end [0-9a-f]{64}\n$/, '');
    const sealAndStamp = (text: string) => sealAndStampCatalog(cacheFile(dir), text);
    sealAndStamp(content);
    expect(catalogStagesIn(gitDir, 'models/m5/versions')?.size).toBe(PER_MODEL);
    sealAndStamp(content.replace(/^modelgate-version-cache .*\n/, 'modelgate-version-cache 4 0.0.0 0000000000000000\n'));
    expect(catalogStagesIn(gitDir, 'models/m5/versions')).toBeUndefined();
  });

  it('finds every folder of catalogs whose lines are short and long, wherever bisection lands', () => {
    // Hand-made catalogs (sealed and stamped as above) of random layouts: the lookup reads only
    // path, blob id and stage, so the rest of a line is filler of random length, up to 5 windows.
    const names = ['a', 'a-b', 'a0', 'b', 'm', 'm1', 'm1-x', 'm10', 'm100', 'm11', 'm2', 'z'];
    let seed = 11;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const fake = mkdtempSync(join(tmpdir(), 'mg-catalog-fake-'));
    try {
      for (let layout = 0; layout < 200; layout++) {
        const want = new Map<string, Map<string, { oid: string; stage: string }>>();
        const lines: string[] = [];
        for (const model of names.filter(() => next() < 0.7)) {
          const files = new Map<string, { oid: string; stage: string }>();
          for (let v = 1; v <= 1 + Math.floor(next() * 12); v++) {
            const entry = { oid: createHash('sha1').update(`${layout} ${model} ${v}`).digest('hex'), stage: next() < 0.2 ? 'Production' : 'Archived' };
            files.set(`${v}.yaml`, entry);
            const filler = 'x'.repeat(next() < 0.15 ? Math.floor(next() * 5 * 65536) : Math.floor(next() * 300));
            lines.push(`models/${model}/versions/${v}.yaml\t${entry.oid}\t${entry.stage}\t{}\t${filler}`);
          }
          want.set(model, files);
        }
        lines.sort((x, y) => Buffer.compare(Buffer.from(x.split('\t')[0]!), Buffer.from(y.split('\t')[0]!)));
        mkdirSync(join(fake, 'modelgate'), { recursive: true });
        sealAndStampCatalog(join(fake, 'modelgate', 'versions.tsv'), [header, ...lines].map((l) => `${l}\n`).join(''));
        for (const model of names)
          expect(catalogStagesIn(fake, `models/${model}/versions`), `layout ${layout}, ${model}`).toEqual(want.get(model) ?? new Map());
      }
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });
});

describe('the build that wrote a catalog', () => {
  it('names its loader in the first line, so that a build with another loader rebuilds the catalog instead of trusting it', async () => {
    const dir = registry(3, 3);
    writeFileSync(join(dir, 'modelgate.yaml'), 'apiVersion: modelgate.dev/v1\nkind: Registry\nstorage: {uri: s3://ml-models/registry}\n');
    try {
      const header = () => readFileSync(cacheFile(dir), 'utf8').split('\n')[0]!;
      const list = () =>
        execFileSync(process.execPath, [join(import.meta.dirname, '../dist/cli.js'), '--registry', dir, '--json', 'list'], { encoding: 'utf8' });
      const built = list();
      // version, ModelVersion schema digest, then the digest of src/manifest and schemas/ (scripts/build.mjs)
      expect(header()).toMatch(/^modelgate-version-cache 5 \S+ [0-9a-f]{16} [0-9a-f]{16}$/);
      const fromBuild = header();
      await scanVersions(dir); // the sources as they are: another loader as far as the catalog can tell
      expect(header()).toMatch(/ sources$/);
      expect(list()).toBe(built);
      expect(header()).toBe(fromBuild);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the catalog is sealed with a key outside it and read from regular files only', () => {
  const CLI = join(import.meta.dirname, '../dist/cli.js');
  /** The built CLI; a read that waited on a FIFO would be killed (status null) rather than hang the run. */
  const run = (dir: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, '--registry', dir, ...args], { encoding: 'utf8', timeout: 90_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  let dir: string;
  let production: string;
  let all: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mg-catalog-seal-'));
    const init = spawnSync(process.execPath, [CLI, 'init', dir, '--example', '--store', `file://${dir}-store`], { encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    all = run(dir, '--json', 'list').stdout;
    production = run(dir, '--json', 'list', '--stage', 'Production').stdout;
    expect(JSON.parse(production)).toHaveLength(1);
  }, 360_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an edited stage with the seal recomputed without the key is not believed: list --stage Production prints the one Production version', () => {
    const file = cacheFile(dir);
    const text = readFileSync(file, 'utf8');
    const forged = unkeyedReseal(text.replace(/\tStaging\t(\{[^\n]*)"stage":"Staging"/, '\tProduction\t$1"stage":"Production"'));
    expect(forged).not.toBe(text);
    writeFileSync(file, forged);
    expect(run(dir, '--json', 'list', '--stage', 'Production').stdout).toBe(production);
    expect(readFileSync(file, 'utf8')).not.toBe(forged);
    // A lost key unseals the catalog: it is rebuilt under a new key, never believed.
    rmSync(join(dir, '.git/modelgate/cache.key'));
    writeFileSync(file, forged);
    expect(run(dir, '--json', 'list', '--stage', 'Production').stdout).toBe(production);
    expect(lstatSync(join(dir, '.git/modelgate/cache.key')).size).toBe(32);
    expect(lstatSync(join(dir, '.git/modelgate/cache.key')).mode & 0o777).toBe(0o600);
  });

  it.each(['versions.tsv', 'versions.tsv.checked', 'cache.key'])(
    'a FIFO at .git/modelgate/%s is neither waited on nor believed: list and sync --check answer',
    (name) => {
      const path = join(dir, '.git/modelgate', name);
      rmSync(path, { force: true });
      execFileSync('mkfifo', [path]);
      const list = run(dir, '--json', 'list');
      expect(list.status, list.stderr).toBe(0);
      expect(list.stdout).toBe(all);
      const sync = run(dir, 'sync', '--check');
      expect(sync.status, sync.stderr).toBe(0);
      expect(run(dir, '--json', 'list', '--stage', 'Production').stdout).toBe(production);
      if (name !== 'versions.tsv.checked') expect(lstatSync(path).isFile()).toBe(true); // replaced by a sound one
      rmSync(path, { force: true });
    },
    300_000,
  );

  it('a symlink at the catalog path is not followed, even to a FIFO', () => {
    const fifo = join(dir, '.git', 'elsewhere.fifo');
    execFileSync('mkfifo', [fifo]);
    rmSync(cacheFile(dir));
    symlinkSync(fifo, cacheFile(dir));
    const list = run(dir, '--json', 'list', '--stage', 'Production');
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toBe(production);
    expect(lstatSync(cacheFile(dir)).isFile()).toBe(true);
  }, 200_000);
});

describe('a cold scan of a registry big enough for the pool of parser threads (the built CLI)', () => {
  const CLI = join(import.meta.dirname, '../dist/cli.js');
  const run = (dir: string, ...args: string[]) => {
    // Two workers whatever the machine's load (by default a loaded machine gets none).
    const env = { ...process.env, MODELGATE_PARSE_THREADS: '2' };
    const r = spawnSync(process.execPath, [CLI, '--registry', dir, ...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 28, env });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** The catalog's lines, without its first (the build that wrote it) and its seal. */
  const body = (dir: string) => readFileSync(cacheFile(dir), 'utf8').split('\n').slice(1, -2);
  let dir: string;
  beforeAll(() => {
    dir = registry(2, 700); // 1,400 files: past the 512 parsed in the main thread before the pool starts
    writeFileSync(join(dir, 'modelgate.yaml'), 'apiVersion: modelgate.dev/v1\nkind: Registry\nstorage: {uri: s3://ml-models/registry}\n');
    gitIn(dir, ['add', '-A']);
    gitIn(dir, ['commit', '-qm', 'the registry file']);
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the same catalog lines as a scan in one thread, and lists the same versions cold and warm, filtered in the scan', async () => {
    await scanVersions(dir); // the sources: no pool (its workers load the built module), every file parsed here
    const inThread = body(dir);
    expect(inThread).toHaveLength(1400);
    rmSync(join(dir, '.git/modelgate'), { recursive: true, force: true });
    const where = ['--json', 'list', '--where', "version > 690 and stage != 'Production'"];
    const cold = run(dir, ...where);
    expect(cold.status, cold.stderr).toBe(0);
    expect(body(dir)).toEqual(inThread);
    const found = JSON.parse(cold.stdout) as Array<{ model: string; version: number }>;
    expect(found.map((v) => `${v.model}@${v.version}`)).toEqual(['m0', 'm1'].flatMap((m) => Array.from({ length: 9 }, (_, i) => `${m}@${691 + i}`)));
    const warm = run(dir, ...where);
    expect(warm.status, warm.stderr).toBe(0);
    expect(warm.stdout).toBe(cold.stdout);
  }, 600_000);

  it('an invalid manifest past the start of the pool fails the scan with E_INVALID_MANIFEST, and no catalog is written', () => {
    const file = join(dir, 'models/m1/versions/650.yaml');
    const text = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, text.replace('stage: Archived', 'stage: Retired'));
      gitIn(dir, ['commit', '-qam', 'an invalid stage']);
      rmSync(join(dir, '.git/modelgate'), { recursive: true, force: true });
      const r = run(dir, '--json', 'list', '--where', 'version > 690');
      expect(r.status).toBe(1);
      expect((JSON.parse(r.stdout) as { error: { code: string } }).error.code).toBe('E_INVALID_MANIFEST');
      expect(() => lstatSync(cacheFile(dir))).toThrow();
    } finally {
      writeFileSync(file, text);
      gitIn(dir, ['commit', '-qam', 'valid again']);
    }
  }, 600_000);
});
