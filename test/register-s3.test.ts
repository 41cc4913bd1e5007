// register / pull / verify through the CLI against both loopback S3 servers (test/global-setup.ts:
// Swift s3api and Ceph RGW), with an HTTP proxy in between that records every request and can
// inject failures.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEMORY_BUDGET, PART_SIZE } from '../src/store/s3-store.js';
import { cli, makeRegistry, randomFile, sha256, tempDir } from './helpers/artifacts.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';
import { prRemote, type PrRemote } from './helpers/pr-remote.js';
import type { PromotionPolicy } from '../src/manifest/types.js';

interface Seen {
  method: string;
  url: string;
}

/**
 * A loopback HTTP proxy in front of the S3 server that records each request (method and path
 * with query). `refuse(req)` answers a request with an S3 error instead of forwarding it;
 * `beforeForward` runs before a request goes on to the server, `beforeAnswer` after the server
 * answered it and before the client hears the answer.
 */
async function recordingProxy(
  target: URL,
  refuse?: (req: IncomingMessage) => boolean | { status: number; code: string },
  beforeForward?: (req: IncomingMessage) => Promise<void> | void,
  beforeAnswer?: (req: IncomingMessage) => Promise<void> | void,
): Promise<{ url: string; seen: Seen[]; open(): number; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method!, url: req.url! });
    const expectContinue = /100-continue/i.test(String(req.headers.expect ?? ''));
    const refused = refuse?.(req);
    if (refused) {
      const { status, code } = refused === true ? { status: 400, code: 'InvalidArgument' } : refused;
      const answer = () => {
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`);
      };
      // A client waiting for 100-continue sends no body: answer at once, as a server would.
      if (expectContinue) answer();
      else req.on('end', answer);
      req.resume();
      return;
    }
    await beforeForward?.(req);
    // A fresh upstream connection per request: a pooled one the server closed while idle would
    // reset a request of the test, which is a fault of this proxy, not of what is tested.
    const up = request({ host: target.hostname, port: Number(target.port), method: req.method, path: req.url, headers: req.headers, agent: false }, (r) => {
      void Promise.resolve(beforeAnswer?.(req)).then(() => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
        if (expectContinue && !req.readableEnded) req.resume();
      });
    });
    up.on('error', () => res.destroy());
    if (expectContinue) {
      // Pass `Expect: 100-continue` through: the body is sent only once the server asked for it,
      // so a server that answers early (Swift's 501 for a conditional PUT) is heard, not reset.
      up.flushHeaders();
      up.on('continue', () => {
        res.writeContinue();
        req.pipe(up);
      });
    } else req.pipe(up);
  };
  const server: Server = createServer((req, res) => void handle(req, res));
  server.on('checkContinue', (req, res) => void handle(req, res));
  let open = 0;
  server.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  // Longer than any test: an idle client connection closed by the proxy mid-reuse reads as ECONNRESET.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    open: () => open,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A registration's mark (SPEC v3 §14): an empty object whose time tells gc the bytes are wanted; not artifact bytes. */
const isMark = (key: string) => key.includes('/.modelgate/registrations/');

/** Requests that write bytes or objects: PUT (objects, parts, copies) and POST (multipart create/complete); marks aside. */
const writes = (seen: Seen[]) => seen.filter((s) => (s.method === 'PUT' || s.method === 'POST') && !isMark(decodeURIComponent(s.url)));

/** Every key in the bucket but the registration marks. */
async function listKeys(s3: S3Client, bucket: string): Promise<string[]> {
  return ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => !isMark(k))
    .sort();
}

async function readBack(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

describe.each(S3_BACKENDS)('register against S3 through a recording proxy ($name)', (backend) => {
  const { config: cfg, env } = backend;
  let s3: S3Client;
  let bucket: string;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let failPart: number | undefined;
  /** Answers CompleteMultipartUpload with `If-None-Match` as a store without conditional writes does. */
  let noConditionalComplete = false;
  /** Runs (once) right before the first request of kind `at` on that bucket key is forwarded. */
  let race: { key: string; at: 'part' | 'complete' | 'completed'; run: () => Promise<void> } | undefined;
  const storage = () => ({ uri: `s3://${bucket}/registry`, endpoint: proxy.url, region: cfg.region, forcePathStyle: true });
  const completes = (req: IncomingMessage, key?: string) => {
    const url = new URL(req.url!, 'http://x');
    return req.method === 'POST' && url.searchParams.has('uploadId') && (key === undefined || decodeURIComponent(url.pathname) === `/${bucket}/${key}`);
  };
  /** An UploadPart (or UploadPartCopy) of a multipart upload onto `key`. */
  const sendsPart = (req: IncomingMessage, key: string) => {
    const url = new URL(req.url!, 'http://x');
    return req.method === 'PUT' && url.searchParams.has('partNumber') && decodeURIComponent(url.pathname) === `/${bucket}/${key}`;
  };

  const noLeftovers = async () => {
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    expect((await listKeys(s3, bucket)).filter((k) => k.includes('/.uploads/'))).toEqual([]);
  };

  beforeAll(async () => {
    s3 = backend.client();
    bucket = await createTestBucket('register-s3', s3);
    proxy = await recordingProxy(
      new URL(cfg.endpoint),
      (req) => {
        if (noConditionalComplete && completes(req) && req.headers['if-none-match']) return { status: 501, code: 'NotImplemented' };
        return failPart !== undefined && req.method === 'PUT' && new URL(req.url!, 'http://x').searchParams.get('partNumber') === String(failPart);
      },
      async (req) => {
        const r = race;
        if (r && r.at !== 'completed' && (r.at === 'complete' ? completes(req, r.key) : sendsPart(req, r.key))) {
          race = undefined;
          await r.run();
        }
      },
      async (req) => {
        const r = race;
        if (r && r.at === 'completed' && completes(req, r.key)) {
          race = undefined;
          await r.run();
        }
      },
    );
  });
  afterAll(async () => {
    await proxy?.close();
    s3?.destroy();
  });

  it('the same bytes registered twice are uploaded once: the second registration writes nothing to the store', async () => {
    const reg = makeRegistry(storage());
    const small = randomFile(tempDir(), 'model.joblib', 100_000);
    const big = randomFile(tempDir(), 'llm.safetensors', PART_SIZE + 54_321);
    const dir = tempDir('mg-hf-');
    writeFileSync(join(dir, 'config.json'), '{"model_type": "bert"}');
    mkdirSync(join(dir, 'tokenizer'));
    writeFileSync(join(dir, 'tokenizer', 'vocab.txt'), 'a\nb\n');
    randomFile(dir, 'model.safetensors', 40_000);

    for (const [i, path] of [small.path, big.path, dir].entries()) {
      const model = ['small', 'big', 'folder'][i]!;
      const first = await cli(reg, ['register', model, path, '--json'], env);
      expect(first.code, first.stderr).toBe(0);
      expect(first.json.reused).toBe(false);
      const firstKeys = (await listKeys(s3, bucket)).filter((k) => k.startsWith(`registry/${model}/`));
      expect(firstKeys.length).toBeGreaterThan(0);
      const modified = await Promise.all(firstKeys.map(async (Key) => (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }))).LastModified?.getTime()));

      proxy.seen.length = 0;
      const second = await cli(reg, ['register', model, path, '--json'], env);
      expect(second.code, second.stderr).toBe(0);
      expect(second.json).toMatchObject({ version: 2, reused: true, uri: first.json.uri, sha256: first.json.sha256 });
      expect(proxy.seen.length).toBeGreaterThan(0); // it did ask the store
      expect(writes(proxy.seen), model).toEqual([]);
      // The objects are the very same ones, not rewritten.
      expect((await listKeys(s3, bucket)).filter((k) => k.startsWith(`registry/${model}/`))).toEqual(firstKeys);
      expect(await Promise.all(firstKeys.map(async (Key) => (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }))).LastModified?.getTime()))).toEqual(
        modified,
      );
      const v2 = parse(readFileSync(join(reg, `models/${model}/versions/2.yaml`), 'utf8'));
      expect(v2.artifact).toEqual(parse(readFileSync(join(reg, `models/${model}/versions/1.yaml`), 'utf8')).artifact);
    }

    // Same name and size, different bytes: not taken for the known artifact; uploaded as new.
    const twin = randomFile(tempDir(), 'model.joblib', 100_000);
    proxy.seen.length = 0;
    const r = await cli(reg, ['register', 'small', twin.path, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ version: 3, reused: false, sha256: sha256(twin.bytes) });
    expect(writes(proxy.seen).length).toBeGreaterThan(0);
    expect(sha256(await readBack(s3, bucket, r.json.uri.slice(`s3://${bucket}/`.length)))).toBe(sha256(twin.bytes));
  }, 360_000);

  it('a failure after some parts aborts the multipart upload: no parts, no object, no manifest, exit 3 naming the upload', async () => {
    const reg = makeRegistry(storage());
    const src = randomFile(tempDir(), 'cut.bin', 4 * PART_SIZE + 1000);
    const before = await listKeys(s3, bucket);
    proxy.seen.length = 0;
    failPart = 3;
    let r;
    try {
      r = await cli(reg, ['register', 'cut', src.path, '--json'], env);
    } finally {
      failPart = undefined;
    }
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('E_S3');
    expect(r.json.error.message).toMatch(/while uploading cut\.bin: InvalidArgument \(HTTP 400\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // Parts were uploaded before the failure, and the upload was aborted afterwards.
    const parts = proxy.seen.filter((s) => s.method === 'PUT' && /[?&]partNumber=/.test(s.url));
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(proxy.seen.some((s) => s.method === 'DELETE' && /[?&]uploadId=/.test(s.url))).toBe(true);
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    expect(await listKeys(s3, bucket)).toEqual(before);
    expect(existsSync(join(reg, 'models'))).toBe(false);
  }, 360_000);

  it('a key that appears while a large object is uploaded to it is never replaced: conflict, or the same bytes reused', async () => {
    // Larger than one part: hashed first, then a multipart upload straight to its content key.
    // The other object lands while the parts are sent; the HEAD before the complete finds it.
    const size = 2 * PART_SIZE + 4321;
    const reg = makeRegistry(storage());
    const src = randomFile(tempDir(), 'race.bin', size);
    const key = `registry/race/sha256/${sha256(src.bytes)}/race.bin`;
    const other = randomBytes(size);
    race = {
      key,
      at: 'part',
      run: async () => void (await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: other, Metadata: { sha256: sha256(other) } }))),
    };
    const r = await cli(reg, ['register', 'race', src.path, '--json'], env);
    expect(race).toBeUndefined(); // the racer ran
    expect(r.code, r.stderr).toBe(1);
    expect(r.json.error.code).toBe('E_ARTIFACT_CONFLICT');
    expect(sha256(await readBack(s3, bucket, key))).toBe(sha256(other));
    await noLeftovers();
    expect(existsSync(join(reg, 'models'))).toBe(false);

    // The same bytes written by someone else meanwhile: theirs is kept and reused.
    const twin = randomFile(tempDir(), 'twin.bin', size);
    const twinKey = `registry/twin/sha256/${sha256(twin.bytes)}/twin.bin`;
    race = {
      key: twinKey,
      at: 'part',
      run: async () =>
        void (await s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: twinKey, Body: twin.bytes, Metadata: { sha256: sha256(twin.bytes), writer: 'racer' } }),
        )),
    };
    const t = await cli(reg, ['register', 'twin', twin.path, '--json'], env);
    expect(race).toBeUndefined();
    expect(t.code, t.stderr).toBe(0);
    expect(t.json).toMatchObject({ version: 1, reused: true, sha256: sha256(twin.bytes) });
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: twinKey }))).Metadata?.writer).toBe('racer');
    await noLeftovers();
  }, 360_000);

  it(`a key written in the instant of the CompleteMultipartUpload: ${backend.conditionalComplete === 'honoured' ? 'refused by If-None-Match, conflict, theirs kept' : 'If-None-Match ignored, so the key ends with the bytes it names and the registry verifies'}`, async () => {
    // After the HEAD that precedes the complete, before the complete reaches the server: only the
    // server's own If-None-Match check can see this writer (the window S3Store.completeOnto notes).
    const size = 2 * PART_SIZE + 777;
    const reg = makeRegistry(storage());
    const src = randomFile(tempDir(), 'instant.bin', size);
    const key = `registry/instant/sha256/${sha256(src.bytes)}/instant.bin`;
    const other = randomBytes(size);
    race = {
      key,
      at: 'complete',
      run: async () => void (await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: other, Metadata: { sha256: sha256(other) } }))),
    };
    const r = await cli(reg, ['register', 'instant', src.path, '--json'], env);
    expect(race).toBeUndefined();
    if (backend.conditionalComplete === 'honoured') {
      expect(r.code, r.stderr).toBe(1);
      expect(r.json.error.code).toBe('E_ARTIFACT_CONFLICT');
      expect(sha256(await readBack(s3, bucket, key))).toBe(sha256(other));
      expect(existsSync(join(reg, 'models'))).toBe(false);
    } else {
      // The foreign object, wrong for its key, is replaced by the bytes the key names: the
      // registry records a digest the store holds.
      expect(r.code, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ version: 1, sha256: sha256(src.bytes) });
      expect(sha256(await readBack(s3, bucket, key))).toBe(sha256(src.bytes));
      const verify = await cli(reg, ['verify', '--full'], env);
      expect(verify.code, verify.stderr).toBe(0);
    }
    await noLeftovers();
  }, 360_000);

  it('a key rewritten with other bytes right after the upload completed is caught by the check that follows: conflict, no manifest', async () => {
    const size = PART_SIZE + 999;
    const reg = makeRegistry(storage());
    const src = randomFile(tempDir(), 'after.bin', size);
    const key = `registry/after/sha256/${sha256(src.bytes)}/after.bin`;
    const other = randomBytes(size);
    race = {
      key,
      at: 'completed',
      run: async () => void (await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: other, Metadata: { sha256: sha256(other) } }))),
    };
    const r = await cli(reg, ['register', 'after', src.path, '--json'], env);
    expect(race).toBeUndefined();
    expect(r.code, r.stderr).toBe(1);
    expect(r.json.error.code).toBe('E_ARTIFACT_CONFLICT');
    expect(sha256(await readBack(s3, bucket, key))).toBe(sha256(other));
    expect(existsSync(join(reg, 'models'))).toBe(false);
    await noLeftovers();
  }, 360_000);

  it('a store that answers 501 to a conditional CompleteMultipartUpload gets an unconditional one after a HEAD check', async () => {
    const reg = makeRegistry(storage());
    const src = randomFile(tempDir(), 'plain.bin', 2 * PART_SIZE + 99);
    const key = `registry/plain/sha256/${sha256(src.bytes)}/plain.bin`;
    proxy.seen.length = 0;
    noConditionalComplete = true;
    let r;
    try {
      r = await cli(reg, ['register', 'plain', src.path, '--json'], env);
    } finally {
      noConditionalComplete = false;
    }
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(await readBack(s3, bucket, key))).toBe(sha256(src.bytes));
    // Refused once with the condition, then completed without it.
    const onKey = proxy.seen.filter((s) => s.method === 'POST' && s.url.startsWith(`/${bucket}/${key}?uploadId=`));
    expect(onKey).toHaveLength(2);
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  }, 360_000);

  it('a folder of files larger than the memory budget is hashed first and sent straight to its content keys: no staging, no copy', async () => {
    const reg = makeRegistry(storage());
    const dir = tempDir('mg-shards-');
    const n = Math.floor(MEMORY_BUDGET / (12 * 1024 * 1024)) + 2;
    const shards = Array.from({ length: n }, (_, i) => randomFile(dir, `shard-${String(i).padStart(2, '0')}.bin`, 12 * 1024 * 1024));
    proxy.seen.length = 0;
    const r = await cli(reg, ['register', 'shards', dir, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    // Each shard went to its final key only (one PUT each: 12 MiB is one part, plus the
    // conditional PUTs Swift refuses with 501 before it is known); nothing staged, no copy.
    const key = r.json.uri.slice(`s3://${bucket}/`.length);
    expect(proxy.seen.filter((s) => s.url.includes('/.uploads/'))).toEqual([]);
    const puts = proxy.seen.filter((s) => s.method === 'PUT' && !isMark(decodeURIComponent(s.url)));
    for (const p of puts) expect(p.url).toContain(`/${key}`);
    expect(new Set(puts.map((p) => p.url)).size).toBe(n);
    expect(puts.length).toBeLessThanOrEqual(2 * n);
    // A store that honours a conditional PUT needs no second try.
    if (backend.conditionalPut === 'honoured') expect(puts.length).toBe(n);
    for (const s of shards) expect(sha256(await readBack(s3, bucket, `${key}${s.path.slice(dir.length + 1)}`))).toBe(sha256(s.bytes));
    expect((await listKeys(s3, bucket)).filter((k) => k.includes('/.uploads/'))).toEqual([]);
  }, 360_000);
});

describe.each(S3_BACKENDS)('directory artifacts end to end on S3 (SavedModel, Hugging Face folder) ($name)', (backend) => {
  const { config: cfg, env } = backend;
  let s3: S3Client;
  let bucket: string;
  beforeAll(async () => {
    s3 = backend.client();
    bucket = await createTestBucket('dir-e2e', s3);
  });
  afterAll(() => s3?.destroy());

  it('registers, pulls every file verified, and verify/pull catch a changed or missing file in a folder', async () => {
    const reg = makeRegistry({ uri: `s3://${bucket}/reg`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true });
    const saved = tempDir('mg-savedmodel-');
    randomFile(saved, 'saved_model.pb', 3000);
    mkdirSync(join(saved, 'variables'));
    randomFile(join(saved, 'variables'), 'variables.data-00000-of-00001', PART_SIZE + 777);
    randomFile(join(saved, 'variables'), 'variables.index', 500);
    mkdirSync(join(saved, 'assets'));
    const hf = tempDir('mg-hf-');
    writeFileSync(join(hf, 'config.json'), '{"model_type": "bert"}');
    randomFile(hf, 'model.safetensors', 60_000);
    mkdirSync(join(hf, 'tokenizer'));
    writeFileSync(join(hf, 'tokenizer', 'vocab.txt'), 'hello\nworld\n');

    const a = await cli(reg, ['register', 'tf', saved, '--json'], env);
    expect(a.code, a.stderr).toBe(0);
    const b = await cli(reg, ['register', 'bert', hf, '--json'], env);
    expect(b.code, b.stderr).toBe(0);
    const tf = parse(readFileSync(join(reg, 'models/tf/versions/1.yaml'), 'utf8'));
    expect(tf.format).toBe('savedmodel');
    expect(tf.artifact.files.map((f: { path: string }) => f.path)).toEqual([
      'saved_model.pb',
      'variables/variables.data-00000-of-00001',
      'variables/variables.index',
    ]);
    expect(parse(readFileSync(join(reg, 'models/bert/versions/1.yaml'), 'utf8')).format).toBe('safetensors');

    const out = tempDir('mg-out-');
    for (const [model, src] of [
      ['tf', saved],
      ['bert', hf],
    ] as const) {
      const r = await cli(reg, ['pull', `${model}@1`, '-o', join(out, model)], env);
      expect(r.code, r.stderr).toBe(0);
      const mv = parse(readFileSync(join(reg, `models/${model}/versions/1.yaml`), 'utf8'));
      for (const f of mv.artifact.files) {
        expect(sha256(readFileSync(join(out, model, f.path)))).toBe(sha256(readFileSync(join(src, f.path))));
      }
    }
    expect((await cli(reg, ['verify', '--full'], env)).code).toBe(0);

    // The last file of the HF folder altered (same size, metadata kept); a file of the SavedModel removed.
    const bertKey = b.json.uri.slice(`s3://${bucket}/`.length);
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${bertKey}tokenizer/vocab.txt`, Body: 'hello\nWORLD\n', Metadata: { sha256: sha256('hello\nworld\n') } }),
    );
    const tfKey = a.json.uri.slice(`s3://${bucket}/`.length);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${tfKey}variables/variables.index` }));

    const quick = await cli(reg, ['verify'], env);
    expect(quick.code).toBe(1);
    expect(quick.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tf@1: .*variables\/variables\.index is missing$/)]);
    const full = await cli(reg, ['verify', '--full', '--json'], env);
    expect(full.code).toBe(1);
    expect(full.json.broken).toEqual([
      { ref: 'bert@1', problem: expect.stringMatching(/tokenizer\/vocab\.txt has sha256 [0-9a-f]{64}, the manifest says/) },
      { ref: 'tf@1', problem: expect.stringMatching(/is missing$/) },
    ]);
    const fullText = await cli(reg, ['verify', '--full'], env);
    expect(fullText.stderr).toMatch(/^bert@1: /m);
    expect(fullText.stderr).toMatch(/^tf@1: /m);

    const pulls = tempDir('mg-refused-');
    for (const model of ['bert', 'tf']) {
      const r = await cli(reg, ['pull', `${model}@1`, '-o', join(pulls, model)], env);
      expect(r.code, model).toBe(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(readdirSync(pulls)).toEqual([]);
  }, 360_000);

  it('wrong credentials, a missing bucket and an unreachable endpoint make pull and verify exit 3 with one sentence, no secret, no stack', async () => {
    const reg = makeRegistry({ uri: `s3://${bucket}/creds`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true });
    const m = randomFile(tempDir(), 'm.onnx', 2000);
    expect((await cli(reg, ['register', 'fraud', m.path], env)).code).toBe(0);
    const secret = 'definitely-wrong-secret-77b1';
    const bad = { ...env, AWS_SECRET_ACCESS_KEY: secret };
    const target = join(tempDir(), 'm.onnx');
    const cases: Array<[string[], NodeJS.ProcessEnv, string, RegExp]> = [
      [['pull', 'fraud@1', '-o', target], bad, 'E_S3_CREDENTIALS', /refused the credentials while reading /],
      [['verify'], bad, 'E_S3_CREDENTIALS', /refused the credentials while checking access to bucket /],
      [
        ['verify', '--full'],
        { ...env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' },
        'E_S3_UNREACHABLE',
        /cannot reach the S3 endpoint http:\/\/127\.0\.0\.1:9 /,
      ],
      [['pull', 'fraud@1', '-o', target], { ...env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' }, 'E_S3_UNREACHABLE', /cannot reach the S3 endpoint/],
    ];
    for (const [args, e, code, message] of cases) {
      const r = await cli(reg, args, e);
      expect(r.code, args.join(' ')).toBe(3);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toContain(secret);
      const j = await cli(reg, [...args, '--json'], e);
      expect(j.json.error.code).toBe(code);
      expect(existsSync(target)).toBe(false);
      expect(readdirSync(dirname(target))).toEqual([]);
    }
    const gone = makeRegistry({ uri: `s3://no-such-bucket-${Date.now().toString(36)}/x`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true });
    const v = await cli(gone, ['verify'], env);
    expect(v.code).toBe(3);
    expect(v.stderr).toMatch(/^modelgate: .*bucket no-such-bucket-\S+ does not exist at http:\/\/127\.0\.0\.1:\d+\n$/);
  }, 180_000);
});

describe('register --pr with an S3 store (Swift)', () => {
  const backend = S3_BACKENDS[0]!;
  const { config: cfg, env } = backend;
  let remote: PrRemote | undefined;
  let proxy: Awaited<ReturnType<typeof recordingProxy>> | undefined;
  afterAll(async () => {
    await remote?.close();
    await proxy?.close();
  });

  it('closes every store it opened, the one the pull request body checks the artifact with too: no connection is left open', async () => {
    const s3 = backend.client();
    const bucket = await createTestBucket('register-pr', s3);
    s3.destroy();
    proxy = await recordingProxy(new URL(cfg.endpoint));
    const policy: PromotionPolicy = {
      apiVersion: 'modelgate.dev/v1',
      kind: 'PromotionPolicy',
      rules: [
        { name: 'register', to: 'None', artifact: 'exists' },
        { name: 'new-models', paths: ['models/*/model.yaml'] },
      ],
    };
    remote = await prRemote({ uri: `s3://${bucket}/registry`, endpoint: proxy.url, region: cfg.region, forcePathStyle: true }, policy);
    const model = randomFile(tempDir(), 'model.onnx', 3000);
    const r = await cli(remote.work, ['--json', 'register', 'fraud', model.path, '--pr'], { ...env, ...remote.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.gate).toBe('pass');
    // The gate view asked the store for the artifact (the rule checks it), then let go of the connection.
    const heads = proxy.seen.filter((s) => s.method === 'HEAD' && s.url.includes('/registry/fraud/sha256/'));
    expect(heads.length).toBeGreaterThanOrEqual(2);
    await expect.poll(() => proxy!.open(), { timeout: 20_000 }).toBe(0);
  }, 180_000);
});
