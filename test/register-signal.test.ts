// A cancelled register (SIGTERM, SIGINT) aborts its multipart uploads and removes its staging
// data before exiting 143 / 130; a killed one (SIGKILL) leaves only what `gc` removes. A
// cancelled pull, in both forms, leaves nothing at its path or in its folder.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync, closeSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cli, makeRegistry, tempDir } from './helpers/artifacts.js';
import { createTestBucket, s3Config, s3TestClient } from './helpers/s3.js';

const CLI = resolve('dist/cli.js');

function bigFile(mib: number, path = join(tempDir(), 'model.bin')): string {
  const fd = openSync(path, 'w');
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  closeSync(fd);
  return path;
}

async function until(what: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('register cancelled by a signal on S3', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGKILL', null],
  ] as const) {
    it(`${signal} mid-upload: ${code === null ? 'what is left, gc removes' : `exit ${code}, no open upload and no staging object`}`, async () => {
      const c = s3Config();
      const s3 = s3TestClient();
      const bucket = await createTestBucket('signal', s3);
      const reg = makeRegistry({ uri: `s3://${bucket}/models`, endpoint: c.endpoint, region: c.region, forcePathStyle: true });
      const env = { ...process.env, AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey };
      const file = bigFile(400);
      try {
        const child = spawn(process.execPath, [CLI, 'register', 'fraud', file], { cwd: reg, env, stdio: 'ignore' });
        const exited = new Promise<number | null>((r) => child.on('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
        await until(async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length > 0);
        child.kill(signal);
        const exit = await exited;
        const uploads = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
        const objects = async () => (await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [];
        if (code !== null) {
          expect(exit).toBe(code);
          expect(await uploads()).toEqual([]);
          expect(await objects()).toEqual([]);
        } else {
          expect(exit).toBe(-1);
          expect((await uploads()).length + (await objects()).length).toBeGreaterThan(0);
          await new Promise((r) => setTimeout(r, 1100));
          const gc = await cli(reg, ['gc', '--older-than', '0s'], { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey });
          expect(gc.code, gc.stderr).toBe(0);
          expect(await uploads()).toEqual([]);
          expect(await objects()).toEqual([]);
        }
      } finally {
        s3.destroy();
      }
    }, 270_000);
  }
});

describe('register cancelled on the file:// store', () => {
  it('SIGTERM while the file is copied into staging: exit 143, the staging area removed', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: `file://${storeRoot}` });
    const file = bigFile(600);
    const child = spawn(process.execPath, [CLI, 'register', 'fraud', file], { cwd: reg, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const uploads = join(storeRoot, 'fraud', '.uploads');
    await until(async () => existsSync(uploads) && readdirSync(uploads).length > 0);
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(existsSync(uploads) ? readdirSync(uploads) : []).toEqual([]);
    expect(existsSync(join(storeRoot, 'fraud', 'sha256')) ? readdirSync(join(storeRoot, 'fraud', 'sha256')) : []).toEqual([]);
  }, 270_000);
});

/**
 * A loopback HTTP proxy in front of the S3 server that passes everything through, except that
 * the body of an object GET stops after its first MiB and the response then hangs, as a slow
 * link would: a pull through it is reliably mid-transfer when the test sends its signal.
 */
async function stallingProxy(upstream: string): Promise<{ url: string; stalled: () => number; close: () => void }> {
  const target = new URL(upstream);
  let stalled = 0;
  const held: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    const object = req.method === 'GET' && new URL(req.url!, 'http://x').pathname.split('/').filter(Boolean).length > 1;
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode!, ur.headers);
      if (!object || (ur.statusCode !== 200 && ur.statusCode !== 206)) return void ur.pipe(res);
      let sent = 0;
      ur.on('data', (chunk: Buffer) => {
        if (sent >= 1 << 20) return;
        res.write(chunk);
        sent += chunk.length;
        if (sent >= 1 << 20) {
          stalled++;
          ur.pause();
          held.push(ur);
        }
      });
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stalled: () => stalled,
    close: () => {
      for (const h of held) h.destroy();
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Everything under `dir`, hidden entries included. */
const tree = (dir: string): string[] => (existsSync(dir) ? (readdirSync(dir, { recursive: true }) as string[]).sort() : []);

describe('pull cancelled by a signal mid-download on S3', () => {
  const c = s3Config();
  const creds = { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, AWS_REGION: c.region };
  let reg: string;
  let proxy: Awaited<ReturnType<typeof stallingProxy>>;
  const uri = (n: number): string => parse(readFileSync(join(reg, `models/fraud/versions/${n}.yaml`), 'utf8')).artifact.uri;

  beforeAll(async () => {
    const bucket = await createTestBucket('pull-signal');
    reg = makeRegistry({ uri: `s3://${bucket}/models`, endpoint: c.endpoint, region: c.region, forcePathStyle: true });
    const folder = tempDir('mg-folder-');
    mkdirSync(join(folder, 'tokenizer'));
    for (const name of ['a.bin', 'b.bin', 'tokenizer/c.bin']) bigFile(2, join(folder, name));
    // 1: one object fetched as one GET; 2: one fetched as parallel ranged GETs (64 MiB and up); 3: a folder.
    for (const path of [bigFile(4), bigFile(65), folder]) expect((await cli(reg, ['register', 'fraud', path], creds)).code).toBe(0);
    proxy = await stallingProxy(c.endpoint);
  }, 300_000);
  afterAll(() => proxy?.close());

  /** Runs the built CLI through the proxy, sends `signal` once a transfer stalled and `partial()` holds, and returns the exit code. */
  async function cancelled(args: string[], cwd: string, signal: 'SIGTERM' | 'SIGINT', partial: () => boolean): Promise<number | null> {
    const before = proxy.stalled();
    const env = { ...process.env, ...creds, AWS_ENDPOINT_URL_S3: proxy.url, MODELGATE_IO_TIMEOUT: '600' };
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
    await until(async () => proxy.stalled() > before && partial(), 120_000);
    child.kill(signal);
    return exited;
  }

  for (const [signal, code, n] of [
    ['SIGTERM', 143, 1],
    ['SIGINT', 130, 2],
    ['SIGTERM', 143, 3],
  ] as const) {
    it(`pull <ref> -o <path> of version ${n}, ${signal}: exit ${code}, nothing at <path> or beside it`, async () => {
      const out = tempDir('mg-out-');
      const partial = () => readdirSync(out).some((f) => f.endsWith('.partial'));
      expect(await cancelled(['pull', `fraud@${n}`, '-o', join(out, 'model')], reg, signal, partial)).toBe(code);
      expect(readdirSync(out)).toEqual([]);
    }, 180_000);
  }

  for (const [signal, code, n] of [
    ['SIGINT', 130, 1],
    ['SIGTERM', 143, 3],
  ] as const) {
    it(`pull <content-addressed-uri> <dest> of version ${n}, ${signal}: exit ${code}, nothing in <dest>`, async () => {
      const dest = tempDir('mg-mnt-');
      const partial = () => readdirSync(dest).some((f) => f.endsWith('.partial'));
      expect(await cancelled(['pull', uri(n), dest], tempDir('mg-nowhere-'), signal, partial)).toBe(code);
      expect(tree(dest)).toEqual([]);
    }, 180_000);
  }
});
