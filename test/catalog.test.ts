import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanVersions } from '../src/registry/catalog.js';

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
const ids = (vs: Array<{ model: string; version: number; stage: string }>) => vs.map((v) => `${v.model}@${v.version}:${v.stage}`);

describe('scanVersions at 200,000 versions', () => {
  let dir: string;
  beforeAll(() => {
    dir = registry(200, 1000);
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const damage: Array<[string, (text: string) => string]> = [
    ['truncated by one byte', (t) => t.slice(0, -1)],
    ['truncated mid-line', (t) => t.slice(0, Math.floor(t.length * 0.7))],
    ['cut in half at a line end', (t) => t.slice(0, t.indexOf('\n', t.length / 2) + 1)],
    ['emptied', () => ''],
    ['edited but well-formed (a stage rewritten)', (t) => t.replace(/\tArchived\t(\{[^\n]*)"stage":"Archived"/, '\tProduction\t$1"stage":"Production"')],
    ['edited but well-formed (a line dropped, seal kept)', (t) => t.replace(/\n[0-9a-f]{40}\t[^\n]*\n/, '\n')],
    ['edited but well-formed (seal recomputed wrongly)', (t) => t.replace(/end [0-9a-f]{64}\n$/, `end ${'0'.repeat(64)}\n`)],
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

  it('a damaged stage prefilter is rebuilt too', async () => {
    expect(ids(await scanVersions(dir, { stage: 'Production' }))).toHaveLength(3);
    rmSync(cacheFile(dir));
    const file = join(dir, '.git/modelgate/prefilter-production.txt');
    const text = readFileSync(file, 'utf8');
    for (const damaged of [text.slice(0, text.indexOf('\n', text.indexOf('\n') + 1) + 1), text.replace(/\n[0-9a-f]{40}\n/, '\n')]) {
      writeFileSync(file, damaged);
      rmSync(cacheFile(dir), { force: true });
      expect(ids(await scanVersions(dir, { stage: 'Production' }))).toEqual(expected.filter((s) => s.endsWith(':Production')));
    }
  });
});
