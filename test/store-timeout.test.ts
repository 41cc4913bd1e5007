// MODELGATE_IO_TIMEOUT: a service that accepts and never answers, or stops mid-body, ends the
// operation with E_IO_TIMEOUT (exit 3) naming the service and the operation, within the bound.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, ModelgateError } from '../src/errors.js';
import { GitRepo } from '../src/git/repo.js';
import { createOctokit, github } from '../src/github/client.js';
import { parseStoreUri } from '../src/store/layout.js';
import { S3Store } from '../src/store/s3-store.js';
import { hashStream } from '../src/store/digest.js';
import { cli, git, makeRegistry, randomFile, tempDir } from './helpers/artifacts.js';

const ENV = { MODELGATE_IO_TIMEOUT: '1', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' };
/**
 * What "within the bound" means with a 1 s timeout: far below anything the clients would wait
 * on their own (forever), far above what a loaded machine adds to the 1 s.
 */
const BOUND_MS = 60_000;

let silent: Server;
let silentPort = 0;
const sockets: Socket[] = [];
let midBody: HttpServer;
let midBodyPort = 0;

beforeAll(async () => {
  // Accepts every connection, reads what it is sent, never writes a byte.
  silent = createServer((s) => {
    sockets.push(s);
    s.on('data', () => {});
    s.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as { port: number }).port;
  // Answers every request with headers and the first 100 of 1,000 promised bytes, then stalls.
  midBody = createHttpServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': '1000', 'content-type': 'application/octet-stream', etag: '"x"' });
    res.write(Buffer.alloc(100, 7));
  });
  midBody.on('connection', (s) => sockets.push(s));
  await new Promise<void>((r) => midBody.listen(0, '127.0.0.1', r));
  midBodyPort = (midBody.address() as { port: number }).port;
});

afterAll(() => {
  for (const s of sockets) s.destroy();
  silent.close();
  midBody.close();
});

function store(port: number): S3Store {
  const uri = 's3://bucket/models';
  return new S3Store(
    parseStoreUri(uri) as Extract<ReturnType<typeof parseStoreUri>, { scheme: 's3' }>,
    { uri, endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true },
    ENV,
  );
}

async function stalled(op: () => Promise<unknown>): Promise<{ error: ModelgateError; ms: number }> {
  const start = Date.now();
  const error = await op().then(
    () => undefined,
    (e: unknown) => e,
  );
  const ms = Date.now() - start;
  expect(error).toBeInstanceOf(ModelgateError);
  return { error: error as ModelgateError, ms };
}

describe('MODELGATE_IO_TIMEOUT bounds every outside call', () => {
  it('an S3 server that accepts and never answers: HEAD bucket, upload and read end with E_IO_TIMEOUT, exit 3', async () => {
    const s = store(silentPort);
    try {
      const head = await stalled(() => s.preflight());
      expect(head.error.code).toBe('E_IO_TIMEOUT');
      expect(head.error.exit).toBe(ExitCode.service);
      expect(head.error.message).toMatch(/^S3 at http:\/\/127\.0\.0\.1:\d+ made no progress for 1 s while checking access to bucket bucket/);
      expect(head.ms).toBeLessThan(BOUND_MS);
      const f = randomFile(tempDir(), 'model.bin', 20_000);
      const staged = await s.stage(f.path, { model: 'fraud', path: 'model.bin', uploadId: 'u1' });
      const put = await stalled(() => staged.commit('fraud/sha256/abc/model.bin'));
      expect(put.error.code).toBe('E_IO_TIMEOUT');
      expect(put.error.message).toMatch(/while reading fraud\/sha256\/abc\/model\.bin|while writing/);
      expect(put.ms).toBeLessThan(BOUND_MS);
    } finally {
      s.close();
    }
  }, 180_000);

  it('an S3 server that stops mid-body: the read fails with E_IO_TIMEOUT instead of hanging', async () => {
    const s = store(midBodyPort);
    try {
      const body = await s.read('fraud/sha256/abc/model.bin');
      const r = await stalled(() => hashStream(body));
      expect(r.error.code).toBe('E_IO_TIMEOUT');
      expect(r.error.message).toMatch(/made no progress for 1 s while reading fraud\/sha256\/abc\/model\.bin/);
      expect(r.ms).toBeLessThan(BOUND_MS);
    } finally {
      s.close();
    }
  }, 180_000);

  it('register against a silent S3 endpoint exits 3 within the bound', async () => {
    const reg = makeRegistry({ uri: 's3://bucket/models', endpoint: `http://127.0.0.1:${silentPort}`, forcePathStyle: true });
    const f = randomFile(tempDir(), 'model.bin', 5000);
    const start = Date.now();
    const r = await cli(reg, ['register', 'fraud', f.path], ENV);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/made no progress for 1 s while/);
    expect(Date.now() - start).toBeLessThan(BOUND_MS);
  }, 180_000);

  it('gc against a silent S3 endpoint exits 3 with E_IO_TIMEOUT, removing nothing', async () => {
    const reg = makeRegistry({ uri: 's3://bucket/models', endpoint: `http://127.0.0.1:${silentPort}`, forcePathStyle: true });
    for (const args of [['gc'], ['gc', '--unreferenced', '--dry-run']]) {
      const r = await cli(reg, ['--json', ...args], ENV);
      expect(r.code).toBe(3);
      expect(r.json.error.code).toBe('E_IO_TIMEOUT');
    }
  }, 30_000);

  it('git fetch and push to a remote that accepts and never answers end with E_IO_TIMEOUT', async () => {
    const dir = tempDir('mg-git-');
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'remote', 'add', 'origin', `http://127.0.0.1:${silentPort}/registry.git`);
    const before = process.env.MODELGATE_IO_TIMEOUT;
    process.env.MODELGATE_IO_TIMEOUT = '1';
    try {
      const repo = new GitRepo(dir);
      const f = await stalled(() => repo.fetchBranch('origin', 'main'));
      expect(f.error.code).toBe('E_IO_TIMEOUT');
      expect(f.error.exit).toBe(ExitCode.service);
      expect(f.error.message).toMatch(/^the git remote made no progress for 1 s while running git fetch/);
      expect(f.ms).toBeLessThan(BOUND_MS);
      git(dir, '-c', 'user.name=a', '-c', 'user.email=a@b', 'commit', '-q', '--allow-empty', '-m', 'x');
      const p = await stalled(() => repo.push('origin', 'HEAD', 'main'));
      expect(p.error.code).toBe('E_IO_TIMEOUT');
      expect(p.error.message).toMatch(/while running git push/);
    } finally {
      if (before === undefined) delete process.env.MODELGATE_IO_TIMEOUT;
      else process.env.MODELGATE_IO_TIMEOUT = before;
    }
  }, 180_000);

  it('a GitHub API that never answers fails with E_GITHUB (exit 3) naming the call, within MODELGATE_IO_TIMEOUT', async () => {
    const before = process.env.MODELGATE_IO_TIMEOUT;
    process.env.MODELGATE_IO_TIMEOUT = '1';
    try {
      const octokit = createOctokit({ token: 't', baseUrl: `http://127.0.0.1:${silentPort}` });
      const r = await stalled(() => github('reading pull request 1', () => octokit.rest.pulls.get({ owner: 'o', repo: 'r', pull_number: 1 })));
      expect(r.error.code).toBe('E_GITHUB');
      expect(r.error.exit).toBe(ExitCode.service);
      expect(r.error.message).toMatch(/reading pull request 1 failed \(timed out\)/);
      expect(r.ms).toBeLessThan(BOUND_MS);
    } finally {
      if (before === undefined) delete process.env.MODELGATE_IO_TIMEOUT;
      else process.env.MODELGATE_IO_TIMEOUT = before;
    }
  }, 180_000);
});

describe('multipart geometry', () => {
  it('the part size grows with the object so that any S3 object fits in 10,000 parts', async () => {
    const { partSizeFor, PART_SIZE, MAX_PARTS } = await import('../src/store/s3-store.js');
    expect(partSizeFor(1)).toBe(PART_SIZE);
    expect(partSizeFor(100 * 1024 ** 3)).toBe(PART_SIZE);
    for (const size of [157 * 1024 ** 3, 1024 ** 4, 48.8 * 1024 ** 4, 5 * 1024 ** 4]) {
      const part = partSizeFor(size);
      expect(Math.ceil(size / part)).toBeLessThanOrEqual(MAX_PARTS);
      expect(part % 2 ** 20).toBe(0);
      expect(part).toBeLessThanOrEqual(5 * 1024 ** 3);
    }
    expect(partSizeFor(1024 ** 4)).toBeGreaterThan(PART_SIZE);
  });
});
