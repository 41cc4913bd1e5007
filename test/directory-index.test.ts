// SPEC v2 §5 `artifact.index`: directories of more than 1,000 files keep their file list in the
// store. Register, pull (by ref and by URI), verify, validate, gc and re-registration with one
// changed file, on the file store and on both S3 servers; and parallel ranged GETs of a large file.
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, git, makeRegistry, randomFile, sha256, tempDir } from './helpers/artifacts.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';
import { directoryDigest } from '../src/store/digest.js';

const manifest = (reg: string, n: number) => parse(readFileSync(join(reg, `models/big/versions/${n}.yaml`), 'utf8'));

/** A folder of `n` small files in nested folders, with names that need encoding. */
function bigFolder(n: number): string {
  const dir = tempDir('mg-big-');
  for (let i = 0; i < n; i++) {
    const sub = join(dir, `shard-${i % 7}`, i % 2 ? 'odd' : 'even');
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, i === 5 ? 'modèle final #5.json' : `f${i}.bin`), `file ${i} ${'x'.repeat(i % 50)}\n`);
  }
  return dir;
}

/** Every file under `dir` with its bytes' digest, as the canonical list would say it. */
function listing(dir: string): Array<{ path: string; sha256: string; size: number }> {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const abs = join(e.parentPath, e.name);
      const bytes = readFileSync(abs);
      return { path: abs.slice(dir.length + 1), sha256: sha256(bytes), size: bytes.length };
    });
}

const fileKeys = (root: string) =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.parentPath.includes('.uploads') && !e.parentPath.includes('.modelgate'))
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();

describe('indexed directories on the file:// store', () => {
  it('register 1,100 files: the manifest holds the index, the index is the canonical list; pull, verify and validate pass', async () => {
    const root = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(root).href });
    const dir = bigFolder(1100);
    const r = await cli(reg, ['register', 'big', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { artifact } = manifest(reg, 1);
    expect(artifact.files).toBeUndefined();
    const local = listing(dir);
    const digest = directoryDigest(local);
    expect(artifact.sha256).toBe(digest);
    expect(artifact.index).toEqual({ uri: `${artifact.uri}modelgate.index`, sha256: digest, count: 1100 });
    expect(artifact.size).toBe(local.reduce((n, f) => n + f.size, 0));
    const index = readFileSync(fileURLToPath(artifact.index.uri));
    expect(sha256(index)).toBe(digest);
    expect(index.toString().split('\n')).toHaveLength(1101);
    // One object per distinct file at its own content key, plus the index; no staging left.
    const keys = fileKeys(root);
    expect(keys).toHaveLength(1101);
    expect(readdirSync(join(root, 'big', '.uploads'))).toEqual([]);
    expect(keys).toContain(`big/sha256/${sha256('file 5 xxxxx\n')}/modèle final #5.json`);

    expect((await cli(reg, ['validate'])).code).toBe(0);
    const v = await cli(reg, ['verify', '--full']);
    expect(v.code, v.stderr).toBe(0);
    const out = join(tempDir('mg-out-'), 'm');
    const p = await cli(reg, ['pull', 'big@1', '-o', out]);
    expect(p.code, p.stderr).toBe(0);
    expect(listing(out)).toEqual(local);
    const dest = tempDir('mg-init-');
    const u = await cli(reg, ['pull', artifact.uri, dest, '--json']);
    expect(u.code, u.stderr).toBe(0);
    expect(u.json.sha256).toBe(digest);
    expect(listing(dest)).toEqual(local);
    const show = await cli(reg, ['show', 'big@1']);
    expect(show.stdout).toContain('1,100 files');
  }, 360_000);

  it('a new version with one changed file stores that file and an index only; the same folder again stores nothing', async () => {
    const root = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(root).href });
    const dir = bigFolder(1050);
    expect((await cli(reg, ['register', 'big', dir])).code).toBe(0);
    const before = fileKeys(root);
    writeFileSync(join(dir, 'shard-0', 'even', 'f0.bin'), 'changed weights\n');
    const r2 = await cli(reg, ['register', 'big', dir, '--json']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.json.reused).toBe(false);
    const added = fileKeys(root).filter((k) => !before.includes(k));
    expect(added.sort()).toEqual([`big/sha256/${sha256('changed weights\n')}/f0.bin`, `big/sha256/${manifest(reg, 2).artifact.sha256}/modelgate.index`].sort());
    const after2 = fileKeys(root);
    const r3 = await cli(reg, ['register', 'big', dir, '--json']);
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.json.reused).toBe(true);
    expect(fileKeys(root)).toEqual(after2);
    // gc keeps every file an index references (they are named by no manifest), removes a true orphan.
    const orphan = join(root, 'big', 'sha256', 'ab'.repeat(32));
    mkdirSync(orphan);
    writeFileSync(join(orphan, 'x.bin'), 'nobody');
    const gc = await cli(reg, ['gc', '--unreferenced', '--older-than', '0s', '--json']);
    expect(gc.code, gc.stderr).toBe(0);
    // (and the registrations' marks, done with: their directories are referenced)
    expect(gc.json.removed.filter((g: { kind: string }) => g.kind !== 'mark').map((g: { key: string }) => g.key)).toEqual([`big/sha256/${'ab'.repeat(32)}/`]);
    expect(fileKeys(root)).toEqual(after2);
    expect((await cli(reg, ['verify', '--full'])).code).toBe(0);
  }, 360_000);

  it('a changed file, a changed index or an edited manifest is caught; pull leaves nothing behind', async () => {
    const root = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(root).href });
    const dir = bigFolder(1010);
    expect((await cli(reg, ['register', 'big', dir])).code).toBe(0);
    const { artifact } = manifest(reg, 1);
    const victim = join(root, 'big', 'sha256', sha256('file 9 xxxxxxxxx\n'), 'f9.bin');
    chmodSync(victim, 0o644);
    writeFileSync(victim, 'file 9 yyyyyyyyy\n');
    const v = await cli(reg, ['verify', '--full']);
    expect(v.code).toBe(1);
    expect(v.stderr).toContain('f9.bin');
    const dest = tempDir('mg-init-');
    const u = await cli(reg, ['pull', artifact.uri, dest]);
    expect(u.code).toBe(1);
    expect(u.stderr).toContain('sha256 is');
    expect(readdirSync(dest)).toEqual([]);
    writeFileSync(victim, 'file 9 xxxxxxxxx\n');
    expect((await cli(reg, ['verify', '--full'])).code).toBe(0);

    // An index whose bytes are not the digest: by ref refused, by URI not taken as an index.
    const indexFile = fileURLToPath(artifact.index.uri);
    const good = readFileSync(indexFile);
    chmodSync(indexFile, 0o644);
    writeFileSync(indexFile, good.subarray(0, good.length - 80));
    const p = await cli(reg, ['pull', 'big@1', '-o', join(tempDir(), 'm')]);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain('modelgate.index');
    expect((await cli(reg, ['pull', artifact.uri, tempDir('mg-init-')])).code).toBe(1);
    const gc = await cli(reg, ['gc', '--unreferenced', '--older-than', '0s', '--dry-run']);
    expect(gc.code).toBe(1);
    expect(gc.stderr).toContain('nothing was removed');
    writeFileSync(indexFile, good);

    const file = join(reg, 'models/big/versions/1.yaml');
    const doc = manifest(reg, 1);
    writeFileSync(file, stringify({ ...doc, artifact: { ...doc.artifact, index: { ...doc.artifact.index, sha256: 'cd'.repeat(32), count: 7 } } }));
    git(reg, 'commit', '-qam', 'edit');
    const val = await cli(reg, ['validate']);
    expect(val.code).toBe(1);
    expect(val.stdout + val.stderr).toMatch(/artifact\.index\.sha256[\s\S]*artifact\.index\.count|artifact\.index\.count[\s\S]*artifact\.index\.sha256/);
  }, 360_000);

  it('pulls a large file as parallel ranges, verified; a changed byte in the middle fails', async () => {
    const root = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(root).href });
    const m = randomFile(tempDir(), 'weights.safetensors', (64 << 20) + 12_345);
    expect((await cli(reg, ['register', 'big', m.path])).code).toBe(0);
    const out = join(tempDir(), 'w');
    expect((await cli(reg, ['pull', 'big@1', '-o', out])).code).toBe(0);
    expect(sha256(readFileSync(out))).toBe(sha256(m.bytes));
    const stored = fileURLToPath(manifest(reg, 1).artifact.uri);
    chmodSync(stored, 0o644);
    const bytes = Buffer.from(m.bytes);
    bytes[40 << 20] = bytes[40 << 20]! ^ 1;
    writeFileSync(stored, bytes);
    const p = await cli(reg, ['pull', 'big@1', '-o', join(tempDir(), 'w')]);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain('weights.safetensors (67121209 bytes): sha256 is');
  }, 360_000);
});

describe.each(S3_BACKENDS)('indexed directories on S3 ($name)', (backend) => {
  const { config: cfg, env } = backend;
  let s3: S3Client;
  let bucket: string;
  beforeAll(async () => {
    s3 = backend.client();
    bucket = await createTestBucket('dir-index', s3);
  });
  afterAll(() => s3?.destroy());
  const keys = async () => {
    const out: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'reg/', ContinuationToken }));
      // Registration marks (SPEC v3 §14) are not artifact bytes.
      out.push(...(r.Contents ?? []).map((o) => o.Key!).filter((k) => !k.includes('/.modelgate/')));
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out.sort();
  };

  it('registers 1,020 files in parallel, pulls and verifies them, sends only the changed file again', async () => {
    const reg = makeRegistry({ uri: `s3://${bucket}/reg`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true });
    const dir = bigFolder(1020);
    const r = await cli(reg, ['register', 'big', dir], env);
    expect(r.code, r.stderr).toBe(0);
    const { artifact } = manifest(reg, 1);
    expect(artifact.index.count).toBe(1020);
    const before = await keys();
    expect(before).toHaveLength(1021);
    expect((await cli(reg, ['verify', '--full'], env)).code).toBe(0);
    const dest = tempDir('mg-init-');
    const u = await cli(reg, ['pull', artifact.uri, dest], { ...env, AWS_ENDPOINT_URL: cfg.endpoint });
    expect(u.code, u.stderr).toBe(0);
    expect(listing(dest)).toEqual(listing(dir));

    writeFileSync(join(dir, 'shard-1', 'odd', 'f1.bin'), 'new shard\n');
    expect((await cli(reg, ['register', 'big', dir], env)).code).toBe(0);
    const added = (await keys()).filter((k) => !before.includes(k));
    expect(added.sort()).toEqual(
      [`reg/big/sha256/${sha256('new shard\n')}/f1.bin`, `reg/big/sha256/${manifest(reg, 2).artifact.sha256}/modelgate.index`].sort(),
    );

    // A file replaced in the store behind modelgate's back fails verify and pull by ref.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `reg/big/sha256/${sha256('new shard\n')}/f1.bin`, Body: 'old shard\n' }));
    expect((await cli(reg, ['verify', '--full', 'big@2'], env)).code).toBe(1);
    expect((await cli(reg, ['pull', 'big@2', '-o', join(tempDir(), 'm')], env)).code).toBe(1);
    expect((await cli(reg, ['verify', '--full', 'big@1'], env)).code).toBe(0);
  }, 300_000);

  it('pulls a 70 MiB file as parallel ranged GETs, verified', async () => {
    const reg = makeRegistry({ uri: `s3://${bucket}/reg`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true });
    const m = randomFile(tempDir(), 'weights.bin', 70 << 20);
    expect((await cli(reg, ['register', 'ranged', m.path], env)).code).toBe(0);
    const out = join(tempDir(), 'w.bin');
    const p = await cli(reg, ['pull', 'ranged@1', '-o', out], env);
    expect(p.code, p.stderr).toBe(0);
    expect(sha256(readFileSync(out))).toBe(sha256(m.bytes));
  }, 300_000);
});
