// The S3 store against both loopback S3 servers that test/global-setup.ts starts (Swift s3api, Ceph RGW).
import { connect, createServer, type Server, type Socket } from 'node:net';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelgateError } from '../src/errors.js';
import { keyOfUri } from '../src/store/layout.js';
import { putArtifact } from '../src/store/put.js';
import { PART_SIZE } from '../src/store/s3-store.js';
import { openStore, presignGet, type ArtifactStore } from '../src/store/store.js';
import { cli, makeRegistry, randomFile, sha256, tempDir } from './helpers/artifacts.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';

async function readBack(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/**
 * Every key in the bucket but registration marks (SPEC v3 §14: empty objects that tell gc a
 * registration wanted those bytes; one the server cut off before it could be removed is gc's).
 */
async function listKeys(s3: S3Client, bucket: string): Promise<string[]> {
  return ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => !k.includes('/.modelgate/registrations/'))
    .sort();
}

/**
 * A loopback TCP proxy in front of the S3 server. `stop()` is the server going away: every
 * connection is cut mid-stream and new ones are refused.
 */
async function tcpProxy(target: URL, onBytes?: (total: number) => void): Promise<{ url: string; stop(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let stopped = false;
  let total = 0;
  const server: Server = createServer((client) => {
    if (stopped) return client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (b: Buffer) => {
      total += b.length;
      onBytes?.(total);
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const stop = () => {
    stopped = true;
    for (const s of sockets) s.destroy();
    server.close();
  };
  return { url: `http://127.0.0.1:${port}`, stop, close: async () => stop() };
}

describe.each(S3_BACKENDS)('S3Store on the loopback server ($name)', (backend) => {
  const cfg = backend.config;
  const env = backend.env;
  const storage = (bucket: string, endpoint = cfg.endpoint) => ({ uri: `s3://${bucket}/registry`, endpoint, region: cfg.region, forcePathStyle: true });
  let s3: S3Client;
  let bucket: string;
  let store: ArtifactStore;

  beforeAll(async () => {
    s3 = backend.client();
    bucket = await createTestBucket('store-s3', s3);
    store = await openStore(storage(bucket), env);
    await store.preflight();
  });
  afterAll(() => {
    store?.close();
    s3?.destroy();
  });

  it('uploads a small file straight to its content key, with sha256 metadata, read back identical', async () => {
    const src = randomFile(tempDir(), 'model.joblib', 100_000);
    const a = await putArtifact(store, 'fraud', src.path);
    expect(a.sha256).toBe(sha256(src.bytes));
    expect(a.uri).toBe(`s3://${bucket}/registry/fraud/sha256/${a.sha256}/model.joblib`);
    const key = `registry/fraud/sha256/${a.sha256}/model.joblib`;
    expect(sha256(await readBack(s3, bucket, key))).toBe(a.sha256);
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata?.sha256).toBe(a.sha256);
  });

  it('uploads a multipart file through staging, copies it to its content key and removes staging', async () => {
    const src = randomFile(tempDir(), 'big.safetensors', 2 * PART_SIZE + 12_345);
    const a = await putArtifact(store, 'llm', src.path);
    expect(a.sha256).toBe(sha256(src.bytes));
    expect(a.size).toBe(src.bytes.length);
    const key = `registry/llm/sha256/${a.sha256}/big.safetensors`;
    expect(sha256(await readBack(s3, bucket, key))).toBe(sha256(src.bytes));
    expect((await listKeys(s3, bucket)).filter((k) => k.includes('/.uploads/'))).toEqual([]);
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    // Same bytes again: reused, nothing copied over it.
    const again = await putArtifact(store, 'llm', src.path);
    expect(again.reused).toBe(true);
    expect(again.uri).toBe(a.uri);
  }, 360_000);

  it('stores a directory artifact file by file under the canonical digest', async () => {
    const dir = tempDir();
    randomFile(dir, 'saved_model.pb', 2000);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(`${dir}/variables`);
    const v = randomFile(`${dir}/variables`, 'variables.data-00000-of-00001', 50_000);
    const a = await putArtifact(store, 'tf', dir);
    expect(a.files!.map((f) => f.path)).toEqual(['saved_model.pb', 'variables/variables.data-00000-of-00001']);
    const back = await readBack(s3, bucket, `registry/tf/sha256/${a.sha256}/variables/variables.data-00000-of-00001`);
    expect(sha256(back)).toBe(sha256(v.bytes));
  });

  it('refuses a key that already holds different bytes (small and multipart), overwriting nothing', async () => {
    for (const size of [3000, PART_SIZE + 1]) {
      const src = randomFile(tempDir(), 'm.bin', size);
      const key = `registry/fraud/sha256/${sha256(src.bytes)}/m.bin`;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'impostor' }));
      const err = await putArtifact(store, 'fraud', src.path).catch((e) => e);
      expect(err).toMatchObject({ code: 'E_ARTIFACT_CONFLICT', exit: 1 });
      expect((await readBack(s3, bucket, key)).toString()).toBe('impostor');
    }
    // Same size, same-looking key, different bytes and no sha256 metadata: read and compared.
    const src = randomFile(tempDir(), 'n.bin', 4000);
    const key = `registry/fraud/sha256/${sha256(src.bytes)}/n.bin`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.alloc(4000, 1) }));
    await expect(putArtifact(store, 'fraud', src.path)).rejects.toMatchObject({ code: 'E_ARTIFACT_CONFLICT' });
    expect(await readBack(s3, bucket, key)).toEqual(Buffer.alloc(4000, 1));
  }, 180_000);

  it('presigns a GET that returns the bytes', async () => {
    const src = randomFile(tempDir(), 'p.onnx', 777);
    const a = await putArtifact(store, 'fraud', src.path);
    const url = await presignGet(storage(bucket), a.uri, 120, env);
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(sha256(Buffer.from(await r.arrayBuffer()))).toBe(a.sha256);
    await expect(presignGet(storage(bucket), a.uri, 0, env)).rejects.toMatchObject({ exit: 2 });
    await expect(presignGet(storage(bucket), 's3://elsewhere/x', 60, env)).rejects.toMatchObject({ code: 'E_FOREIGN_ARTIFACT' });
  });

  it('a wrong secret key is exit 3, E_S3_CREDENTIALS, and the secret is never printed', async () => {
    const secret = 'not-the-right-secret-4f9a';
    const reg = makeRegistry(storage(bucket));
    const src = randomFile(tempDir(), 'm.joblib', 1000);
    const r = await cli(reg, ['register', 'fraud', src.path, '--json'], { ...env, AWS_SECRET_ACCESS_KEY: secret });
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('E_S3_CREDENTIALS');
    expect(r.stderr).toMatch(/refused the credentials/);
    expect(r.stdout + r.stderr).not.toContain(secret);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a missing bucket and an unreachable endpoint are exit 3 with a sentence saying which', async () => {
    const reg1 = makeRegistry(storage('no-such-bucket-' + Date.now().toString(36)));
    const src = randomFile(tempDir(), 'm.joblib', 1000);
    const r1 = await cli(reg1, ['register', 'fraud', src.path, '--json'], env);
    expect(r1.code).toBe(3);
    expect(r1.json.error.code).toBe('E_S3_NO_BUCKET');
    expect(r1.stderr).toMatch(/bucket no-such-bucket-\S+ does not exist/);

    const dead = await tcpProxy(new URL(cfg.endpoint));
    dead.stop();
    const reg2 = makeRegistry(storage(bucket, dead.url));
    const r2 = await cli(reg2, ['register', 'fraud', src.path, '--json'], env);
    expect(r2.code).toBe(3);
    expect(r2.json.error.code).toBe('E_S3_UNREACHABLE');
    expect(r2.stderr).toMatch(/cannot reach the S3 endpoint/);
    // AWS_ENDPOINT_URL_S3 overrides the configured endpoint.
    const r3 = await cli(reg2, ['register', 'fraud', src.path, '--json'], { ...env, AWS_ENDPOINT_URL_S3: cfg.endpoint });
    expect(r3.code).toBe(0);
    expect(r3.json.version).toBe(1);
  });

  it('the server stopping in the middle of a multipart upload leaves no object, no staging copy and no manifest', async () => {
    const proxy: Awaited<ReturnType<typeof tcpProxy>> = await tcpProxy(new URL(cfg.endpoint), (total) => {
      if (total > PART_SIZE * 1.5) proxy.stop();
    });
    const reg = makeRegistry(storage(bucket, proxy.url));
    const src = randomFile(tempDir(), 'cut.bin', 4 * PART_SIZE);
    const before = await listKeys(s3, bucket);
    const r = await cli(reg, ['register', 'cut', src.path, '--json'], env);
    await proxy.close();
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('E_S3_UNREACHABLE');
    const after = await listKeys(s3, bucket);
    expect(after.filter((k) => k.includes('/cut/'))).toEqual([]);
    expect(after).toEqual(before);
    const { existsSync } = await import('node:fs');
    expect(existsSync(`${reg}/models/cut`)).toBe(false);
    // With the server back, the same registration goes through and reads back identical.
    const ok = await cli(reg, ['register', 'cut', src.path, '--json'], { ...env, AWS_ENDPOINT_URL_S3: cfg.endpoint });
    expect(ok.code).toBe(0);
    expect(sha256(await readBack(s3, bucket, keyOfUri({ scheme: 's3', uri: `s3://${bucket}`, bucket, prefix: '' }, ok.json.uri)!))).toBe(sha256(src.bytes));
  }, 360_000);

  it('wraps S3 failures in ModelgateError', async () => {
    const bad = await openStore(storage(bucket), { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' });
    const err = await bad.stat('fraud/x').catch((e) => e);
    bad.close();
    expect(err).toBeInstanceOf(ModelgateError);
    expect(err).toMatchObject({ code: 'E_S3_CREDENTIALS', exit: 3 });
  });
});
