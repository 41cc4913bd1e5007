import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, chmodSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ModelgateError } from '../src/errors.js';
import { detectFormat, directoryDigest, hashComparing, readHashing } from '../src/store/digest.js';
import { open } from 'node:fs/promises';
import { contentKey, keyOfUri, parseStoreUri } from '../src/store/layout.js';
import { putArtifact } from '../src/store/put.js';
import { openStore, presignGet } from '../src/store/store.js';
import { hashObject } from '../src/store/fetch.js';
import { randomFile, sha256, tempDir } from './helpers/artifacts.js';

const fileStore = async (root: string) => openStore({ uri: pathToFileURL(root).href });

describe('store layout', () => {
  it('parses s3 and file URIs and refuses others', () => {
    expect(parseStoreUri('s3://ml-models/registry/')).toMatchObject({ scheme: 's3', bucket: 'ml-models', prefix: 'registry', uri: 's3://ml-models/registry' });
    expect(parseStoreUri('s3://ml-models')).toMatchObject({ bucket: 'ml-models', prefix: '' });
    expect(parseStoreUri('file:///var/lib/x/')).toMatchObject({ scheme: 'file', root: '/var/lib/x' });
    for (const bad of ['http://x/y', 's3://UPPER/x', '/var/lib', 'file://host/x']) {
      expect(() => parseStoreUri(bad), bad).toThrow(ModelgateError);
    }
  });

  it('builds content keys only from valid names and refuses paths that escape', () => {
    const hex = 'a'.repeat(64);
    expect(contentKey('fraud', hex, 'model.joblib')).toBe(`fraud/sha256/${hex}/model.joblib`);
    expect(() => contentKey('Fraud', hex, 'm')).toThrow(/invalid model name/);
    expect(() => contentKey('fraud', 'abc', 'm')).toThrow(/not a sha256/);
    expect(() => contentKey('fraud', hex, '../x')).toThrow();
    expect(() => contentKey('fraud', hex, 'a//b')).toThrow();
    const loc = parseStoreUri('s3://bkt/p');
    expect(keyOfUri(loc, `s3://bkt/p/fraud/sha256/${hex}/m`)).toBe(`fraud/sha256/${hex}/m`);
    expect(keyOfUri(loc, `s3://bkt/other/fraud/x`)).toBeUndefined();
    expect(keyOfUri(loc, `s3://bkt/p/../x`)).toBeUndefined();
  });

  it('defines the directory digest as sha256 of sorted "<sha256>  <size>  <path>" lines', () => {
    const files = [
      { path: 'b.txt', sha256: sha256('b'), size: 1 },
      { path: 'a/ä.bin', sha256: sha256('x'), size: 1 },
      { path: 'a/z.bin', sha256: sha256('z'), size: 1 },
    ];
    // UTF-8 byte order: "a/z" (0x7a) sorts before "a/ä" (0xc3).
    const text = `${sha256('z')}  1  a/z.bin\n${sha256('x')}  1  a/ä.bin\n${sha256('b')}  1  b.txt\n`;
    expect(directoryDigest(files)).toBe(sha256(text));
    expect(directoryDigest([...files].reverse())).toBe(directoryDigest(files));
  });

  it('detects formats from file names', () => {
    expect(detectFormat(['MLmodel', 'model.pkl'], true)).toBe('mlflow');
    expect(detectFormat(['saved_model.pb', 'variables/variables.index'], true)).toBe('savedmodel');
    expect(detectFormat(['config.json', 'model.safetensors'], true)).toBe('safetensors');
    expect(detectFormat(['m.onnx'], false)).toBe('onnx');
    expect(detectFormat(['m.joblib'], false)).toBe('joblib');
    expect(detectFormat(['m.pkl'], false)).toBe('pickle');
    expect(detectFormat(['m.pth'], false)).toBe('pt');
    expect(detectFormat(['weights.bin'], false)).toBe('other');
  });
});

describe('readHashing (the one read)', () => {
  it('hands every chunk to the sink exactly once, in reused buffers, and hashes the whole file', async () => {
    for (const size of [0, 1, 999, 1000, 1001, 10_000, 12_345]) {
      const src = randomFile(tempDir(), 'f.bin', size);
      const out = Buffer.alloc(size);
      let calls = 0;
      const fh = await open(src.path, 'r');
      // Sinks finish out of order; a buffer reused too early would corrupt `out`.
      const r = await readHashing(
        fh,
        [Buffer.alloc(1000), Buffer.alloc(1000), Buffer.alloc(1000)],
        async (chunk, offset) => {
          calls++;
          await new Promise((res) => setTimeout(res, (offset / 1000) % 3));
          chunk.copy(out, offset);
        },
        { inFlight: 2 },
      ).finally(() => fh.close());
      expect(r).toEqual({ sha256: sha256(src.bytes), size });
      expect(out.equals(src.bytes), `size ${size}`).toBe(true);
      expect(calls).toBe(Math.ceil(size / 1000));
    }
  });

  it('rejects with the sink failure after every sink settled, and refuses too few buffers', async () => {
    const src = randomFile(tempDir(), 'f.bin', 5000);
    const fh = await open(src.path, 'r');
    let settled = 0;
    const err = await readHashing(
      fh,
      [Buffer.alloc(1000), Buffer.alloc(1000), Buffer.alloc(1000)],
      async (_chunk, offset) => {
        await new Promise((res) => setTimeout(res, 5));
        settled++;
        if (offset === 1000) throw new Error('sink broke');
      },
      { inFlight: 2 },
    ).catch((e) => e);
    expect(err.message).toBe('sink broke');
    const atFailure = settled;
    await new Promise((res) => setTimeout(res, 20));
    expect(settled).toBe(atFailure);
    await expect(readHashing(fh, [Buffer.alloc(10)], async () => {}, { inFlight: 1 })).rejects.toThrow(/buffers/);
    await fh.close();
  });
});

describe('FileStore', () => {
  it('stores a file larger than one read chunk (several 8 MiB chunks) byte for byte, read-only', async () => {
    const root = tempDir();
    const store = await fileStore(root);
    const src = randomFile(tempDir(), 'big.safetensors', 2 * 8 * 1024 * 1024 + 4321);
    const a = await putArtifact(store, 'llm', src.path);
    expect(a.sha256).toBe(sha256(src.bytes));
    const stored = join(root, 'llm', 'sha256', a.sha256, 'big.safetensors');
    expect(sha256(readFileSync(stored))).toBe(a.sha256);
    expect(statSync(stored).mode & 0o777).toBe(0o444);
    expect(readdirSync(join(root, 'llm', '.uploads'))).toEqual([]);
  });

  it('stores a file under its sha256, reads it back identical, and leaves no staging files', async () => {
    const root = tempDir();
    const src = randomFile(tempDir(), 'model.joblib', 300_000);
    const store = await fileStore(root);
    const a = await putArtifact(store, 'fraud', src.path);
    expect(a.sha256).toBe(sha256(src.bytes));
    expect(a.size).toBe(src.bytes.length);
    expect(a.uri).toBe(`${pathToFileURL(root).href}/fraud/sha256/${a.sha256}/model.joblib`);
    expect(a.reused).toBe(false);
    const back = readFileSync(join(root, 'fraud', 'sha256', a.sha256, 'model.joblib'));
    expect(sha256(back)).toBe(sha256(src.bytes));
    expect((await hashObject(store, keyOfUri(store.location, a.uri)!)).sha256).toBe(a.sha256);
    expect(readdirSync(join(root, 'fraud', '.uploads'))).toEqual([]);
  });

  it('reuses the object when the same bytes are registered twice', async () => {
    const root = tempDir();
    const src = randomFile(tempDir(), 'm.onnx', 10_000);
    const store = await fileStore(root);
    const first = await putArtifact(store, 'fraud', src.path);
    const second = await putArtifact(store, 'fraud', src.path);
    expect(second).toEqual({ ...first, reused: true });
  });

  it('registers bytes it already holds from one read of each: the stored copy is compared, not trusted', async () => {
    const root = tempDir();
    const src = randomFile(tempDir(), 'm.onnx', 9 << 20);
    const store = await fileStore(root);
    const first = await putArtifact(store, 'fraud', src.path);
    const known = [{ uri: first.uri, sha256: first.sha256, size: first.size }];
    expect(await putArtifact(store, 'fraud', src.path, { known })).toEqual({ ...first, reused: true });
    // The stored copy damaged in place, same size: not reused, refused as a conflict, kept as found.
    const stored = join(root, 'fraud', 'sha256', first.sha256, 'm.onnx');
    chmodSync(stored, 0o644);
    const damaged = Buffer.from(src.bytes);
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 1) ^ 1, damaged.length - 1);
    writeFileSync(stored, damaged);
    const err = await putArtifact(store, 'fraud', src.path, { known }).catch((e) => e);
    expect(err.code).toBe('E_ARTIFACT_CONFLICT');
    expect(readFileSync(stored).equals(damaged)).toBe(true);
  });

  it('finds bytes it holds under an older version of the same name and size, not only the newest', async () => {
    const root = tempDir();
    const store = await fileStore(root);
    const a = randomFile(tempDir(), 'w.bin', 4 << 20);
    const b = randomFile(tempDir(), 'w.bin', 4 << 20);
    const first = await putArtifact(store, 'fraud', a.path);
    const second = await putArtifact(store, 'fraud', b.path);
    const known = [first, second].map(({ uri, sha256, size }) => ({ uri, sha256, size }));
    expect(await putArtifact(store, 'fraud', a.path, { known })).toEqual({ ...first, reused: true });
    expect(await putArtifact(store, 'fraud', b.path, { known })).toEqual({ ...second, reused: true });
  });

  it('hashComparing tells equal bytes from a changed byte, a shorter or a longer copy, whatever the chunks', async () => {
    const src = randomFile(tempDir(), 'x.bin', 5 << 20);
    const chunks = (b: Buffer, size: number) =>
      (async function* () {
        for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
      })();
    const flipped = Buffer.from(src.bytes);
    flipped.writeUInt8(flipped.readUInt8(3 << 20) ^ 0x80, 3 << 20);
    const cases: Array<[string, Buffer, boolean]> = [
      ['equal', src.bytes, true],
      ['a changed byte', flipped, false],
      ['shorter', src.bytes.subarray(0, src.bytes.length - 1), false],
      ['longer', Buffer.concat([src.bytes, Buffer.from('!')]), false],
      ['empty', Buffer.alloc(0), false],
    ];
    for (const [name, other, same] of cases)
      for (const size of [7, 1 << 20, 8 << 20]) {
        const r = await hashComparing(src.path, chunks(other, size));
        expect({ name, size, same: r.same }).toEqual({ name, size, same });
        expect(r.sha256).toBe(sha256(src.bytes));
        expect(r.size).toBe(src.bytes.length);
      }
  });

  it('refuses (E_ARTIFACT_CONFLICT) when the key already holds different bytes, and overwrites nothing', async () => {
    const root = tempDir();
    const src = randomFile(tempDir(), 'm.bin', 5000);
    const digest = sha256(src.bytes);
    const dir = join(root, 'fraud', 'sha256', digest);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'm.bin'), 'something else');
    const store = await fileStore(root);
    const err = await putArtifact(store, 'fraud', src.path).catch((e) => e);
    expect(err).toBeInstanceOf(ModelgateError);
    expect(err.code).toBe('E_ARTIFACT_CONFLICT');
    expect(err.exit).toBe(1);
    expect(readFileSync(join(dir, 'm.bin'), 'utf8')).toBe('something else');
    expect(readdirSync(join(root, 'fraud', '.uploads'))).toEqual([]);
  });

  it('stores a directory: every file under the canonical digest, listed in files', async () => {
    const root = tempDir();
    const model = tempDir();
    mkdirSync(join(model, 'artifacts', 'sub'), { recursive: true });
    writeFileSync(join(model, 'MLmodel'), 'flavors: {}\n');
    writeFileSync(join(model, 'artifacts', 'sub', 'model.pkl'), Buffer.alloc(70_000, 7));
    writeFileSync(join(model, 'conda.yaml'), '');
    const store = await fileStore(root);
    const a = await putArtifact(store, 'churn', model);
    expect(a.files!.map((f) => f.path)).toEqual(['MLmodel', 'artifacts/sub/model.pkl', 'conda.yaml']);
    expect(a.files![2]).toEqual({ path: 'conda.yaml', sha256: sha256(''), size: 0 });
    expect(a.sha256).toBe(directoryDigest(a.files!));
    expect(a.size).toBe(70_000 + 12);
    expect(a.uri.endsWith(`/churn/sha256/${a.sha256}/`)).toBe(true);
    for (const f of a.files!) {
      expect(sha256(readFileSync(join(root, 'churn', 'sha256', a.sha256, ...f.path.split('/'))))).toBe(f.sha256);
    }
    expect((await putArtifact(store, 'churn', model)).reused).toBe(true);
  });

  it('copies a large file that is not racily new in the kernel while hashing it: the same bytes, read-only, sealed', async () => {
    const root = tempDir();
    const store = await fileStore(root);
    const src = randomFile(tempDir(), 'weights.bin', 20 * 1024 * 1024 + 7);
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(src.path, hourAgo, hourAgo);
    const a = await putArtifact(store, 'llm', src.path);
    expect(a.sha256).toBe(sha256(src.bytes));
    const stored = join(root, 'llm', 'sha256', a.sha256, 'weights.bin');
    expect(readFileSync(stored).equals(src.bytes)).toBe(true);
    expect(statSync(stored).mode & 0o777).toBe(0o444);
    expect(readdirSync(join(root, 'llm', '.uploads'))).toEqual([]);
    // The seal gives the digest from a stat; a change to the object (here its mode) voids it.
    const key = keyOfUri(store.location, a.uri)!;
    expect(await store.stat(key)).toEqual({ size: src.bytes.length, sha256: a.sha256 });
    chmodSync(stored, 0o400);
    expect(await store.stat(key)).toEqual({ size: src.bytes.length });
    // Compared once more (read back, equal): sealed again, and reused.
    const known = [{ uri: a.uri, sha256: a.sha256, size: a.size }];
    expect(await putArtifact(store, 'llm', src.path, { known })).toEqual({ ...a, reused: true });
    expect(await putArtifact(store, 'llm', src.path)).toEqual({ ...a, reused: true });
    expect(await store.stat(key)).toEqual({ size: src.bytes.length, sha256: a.sha256 });
  });

  it('stores the small files of an indexed directory in batches; a key holding other bytes is a conflict, overwritten nowhere', async () => {
    const root = tempDir();
    const store = await fileStore(root);
    const dir = tempDir();
    for (let i = 0; i < 1003; i++) {
      mkdirSync(join(dir, `d${i % 7}`), { recursive: true });
      writeFileSync(join(dir, `d${i % 7}`, `f${i}.bin`), `file ${i}\n`);
    }
    writeFileSync(join(dir, 'd0', 'same.bin'), 'twice');
    writeFileSync(join(dir, 'd1', 'same.bin'), 'twice');
    const a = await putArtifact(store, 'many', dir);
    expect(a.index?.count).toBe(1005);
    expect(a.reused).toBe(false);
    const one = join(root, 'many', 'sha256', sha256(Buffer.from('file 500\n')), 'f500.bin');
    expect(readFileSync(one, 'utf8')).toBe('file 500\n');
    expect(statSync(one).mode & 0o777).toBe(0o444);
    expect(readFileSync(join(root, 'many', 'sha256', sha256(Buffer.from('twice')), 'same.bin'), 'utf8')).toBe('twice');
    expect(readdirSync(join(root, 'many', '.uploads'))).toEqual([]);
    expect(await putArtifact(store, 'many', dir)).toEqual({ ...a, reused: true });
    // A new file whose key holds other bytes already.
    writeFileSync(join(dir, 'd2', 'new.bin'), 'new bytes');
    const taken = join(root, 'many', 'sha256', sha256(Buffer.from('new bytes')));
    mkdirSync(taken);
    writeFileSync(join(taken, 'new.bin'), 'something else');
    const err = await putArtifact(store, 'many', dir).catch((e) => e);
    expect(err).toMatchObject({ code: 'E_ARTIFACT_CONFLICT', exit: 1 });
    expect(readFileSync(join(taken, 'new.bin'), 'utf8')).toBe('something else');
    expect(readdirSync(join(root, 'many', '.uploads'))).toEqual([]);
  });

  it('fails on a missing source and on an empty folder, writing nothing', async () => {
    const root = tempDir();
    const store = await fileStore(root);
    await expect(putArtifact(store, 'fraud', join(root, 'nope'))).rejects.toMatchObject({ code: 'E_USAGE', exit: 2 });
    await expect(putArtifact(store, 'fraud', tempDir())).rejects.toMatchObject({ code: 'E_USAGE' });
    expect(existsSync(join(root, 'fraud', 'sha256'))).toBe(false);
  });

  it('cannot presign: exit 2 with a sentence saying S3 is needed', async () => {
    const root = tempDir();
    const err = await presignGet({ uri: pathToFileURL(root).href }, `${pathToFileURL(root).href}/fraud/sha256/${'a'.repeat(64)}/m`, 60).catch((e) => e);
    expect(err).toMatchObject({ code: 'E_PRESIGN_UNSUPPORTED', exit: 2 });
    expect(err.message).toMatch(/S3/);
  });

  it('reports a store folder it cannot create as an outside failure (exit 3)', async () => {
    const parent = tempDir();
    writeFileSync(join(parent, 'file'), 'x');
    const store = await fileStore(join(parent, 'file', 'store'));
    await expect(store.preflight()).rejects.toMatchObject({ exit: 3 });
    chmodSync(parent, 0o755);
  });
});
