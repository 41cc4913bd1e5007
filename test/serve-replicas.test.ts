// serve's upload sessions across replicas (the template's Deployment runs several behind one
// Service): two serve instances, each over its own clone of the registry, with the registry's store
// on a real S3 server (Swift, Ceph RGW). An upload begun on one replica takes its files on either
// and registers on the other; its declaration lives in the store until then, and once it is
// registered (or abandoned) no replica knows it any more.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenTable } from '../src/serve/access.js';
import { ServedRegistry } from '../src/serve/served-registry.js';
import { buildServer } from '../src/serve/server.js';
import { cli, git, makeRegistry, tempDir } from './helpers/artifacts.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';

const MARIA = 'tok-maria-0123456789abcdef';
const BOB = 'tok-bob-0123456789abcdefgh';
const as = (token: string) => ({ authorization: `Bearer ${token}` });
const sha256 = (bytes: string) => createHash('sha256').update(bytes).digest('hex');

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

describe.each(S3_BACKENDS)('serve upload sessions across replicas, store on $name', (backend) => {
  async function replicas() {
    const s3 = backend.client();
    closers.push(async () => s3.destroy());
    const bucket = await createTestBucket('mg-replicas', s3);
    const { endpoint, region } = backend.config;
    const first = makeRegistry({ uri: `s3://${bucket}/registry`, endpoint, region, forcePathStyle: true });
    const second = join(tempDir('mg-replica-'), 'registry');
    git(first, 'clone', '-q', first, second);
    const env = { ...process.env, ...backend.env };
    const tokens = TokenTable.parse(`maria ${MARIA}\nbob ${BOB}\n`, 'tokens');
    const serve = async (dir: string) => {
      const registry = await ServedRegistry.local(dir, env);
      const { app } = await buildServer({ registry, tokens, writes: 'commit', logger: false });
      closers.push(async () => {
        await app.close();
        await registry.close();
      });
      return app;
    };
    const declared = async (upload: string) => {
      const key = `registry/${upload.slice(0, upload.indexOf('.'))}/.uploads/${upload}/upload.json`;
      return s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
        () => true,
        (e: { $metadata?: { httpStatusCode?: number } }) => (e.$metadata?.httpStatusCode === 404 ? false : Promise.reject(e as Error)),
      );
    };
    return { a: await serve(first), b: await serve(second), first, second, env, declared };
  }

  it('begins on one replica, takes files on both and registers on the other; then no replica knows it', async () => {
    const { a, b, second, declared } = await replicas();
    const files = { MLmodel: 'flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n', 'conf/params.json': '{"depth": 6}' };
    const payload = { directory: true, files: Object.entries(files).map(([path, text]) => ({ path, sha256: sha256(text), size: Buffer.byteLength(text) })) };
    const begun = await a.inject({ method: 'POST', url: '/api/v1/models/fraud/uploads', headers: as(MARIA), payload });
    expect(begun.statusCode).toBe(201);
    const { upload, sha256: digest } = begun.json<{ upload: string; sha256: string }>();
    expect(upload.startsWith('fraud.')).toBe(true);
    expect(await declared(upload)).toBe(true);

    const put = (app: typeof a, path: keyof typeof files, token = MARIA) =>
      app.inject({
        method: 'PUT',
        url: `/api/v1/uploads/${upload}?path=${encodeURIComponent(path)}`,
        headers: { ...as(token), 'content-type': 'application/octet-stream' },
        payload: Buffer.from(files[path]),
      });
    const onB = await put(b, 'MLmodel');
    expect([onB.statusCode, onB.json().missing]).toEqual([200, ['conf/params.json']]);
    // Another caller cannot use it, on any replica.
    const bob = await put(b, 'conf/params.json', BOB);
    expect([bob.statusCode, bob.json().error.code]).toEqual([404, 'E_UPLOAD_UNKNOWN']);
    const onA = await put(a, 'conf/params.json');
    expect(onA.statusCode).toBe(200);

    // Replica b never saw the params arrive: the store says they are there.
    const done = await b.inject({ method: 'POST', url: `/api/v1/uploads/${upload}/register`, headers: as(MARIA), payload: { metrics: { auc: 0.9 } } });
    expect(done.statusCode).toBe(201);
    expect([done.json().ref, done.json().sha256]).toEqual(['fraud@1', digest]);
    expect(git(second, 'show', 'HEAD:models/fraud/versions/1.yaml')).toContain(`sha256: ${digest}`);
    expect(await declared(upload)).toBe(false);

    // Replica a, which began it, knows it is over: a second registration or an abandon is refused.
    const again = await a.inject({ method: 'POST', url: `/api/v1/uploads/${upload}/register`, headers: as(MARIA), payload: {} });
    expect([again.statusCode, again.json().error.code]).toEqual([404, 'E_UPLOAD_UNKNOWN']);
    const abandon = await a.inject({ method: 'DELETE', url: `/api/v1/uploads/${upload}`, headers: as(MARIA) });
    expect([abandon.statusCode, abandon.json().error.code]).toEqual([404, 'E_UPLOAD_UNKNOWN']);
  }, 120_000);

  it('is abandoned on another replica than the one it began on, and its declaration leaves the store', async () => {
    const { a, b, declared } = await replicas();
    const text = 'weights';
    const begun = await a.inject({
      method: 'POST',
      url: '/api/v1/models/gone/uploads',
      headers: as(MARIA),
      payload: { directory: false, files: [{ path: 'm.bin', sha256: sha256(text), size: text.length }] },
    });
    const { upload } = begun.json<{ upload: string }>();
    expect((await b.inject({ method: 'DELETE', url: `/api/v1/uploads/${upload}`, headers: as(MARIA) })).statusCode).toBe(204);
    expect(await declared(upload)).toBe(false);
    const late = await a.inject({
      method: 'PUT',
      url: `/api/v1/uploads/${upload}?path=m.bin`,
      headers: { ...as(MARIA), 'content-type': 'application/octet-stream' },
      payload: Buffer.from(text),
    });
    expect([late.statusCode, late.json().error.code]).toEqual([404, 'E_UPLOAD_UNKNOWN']);
  }, 120_000);

  it('left unfinished, is a staging area that gc removes', async () => {
    const { a, first, env, declared } = await replicas();
    const begun = await a.inject({
      method: 'POST',
      url: '/api/v1/models/left/uploads',
      headers: as(MARIA),
      payload: { directory: false, files: [{ path: 'm.bin', sha256: sha256('never sent'), size: 10 }] },
    });
    const { upload } = begun.json<{ upload: string }>();
    expect(await declared(upload)).toBe(true);
    // S3 keeps an object's time in whole seconds: one later, --older-than 0s takes it.
    await new Promise((res) => setTimeout(res, 1100));
    const gc = await cli(first, ['gc', '--older-than', '0s', '--json'], env);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.json.removed.map((g: { kind: string; key: string }) => `${g.kind} ${g.key}`)).toContain(`staging left/.uploads/${upload}/`);
    expect(await declared(upload)).toBe(false);
  }, 120_000);
});
