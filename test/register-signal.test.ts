// A cancelled register (SIGTERM, SIGINT) aborts its multipart uploads and removes its staging
// data before exiting 143 / 130; a killed one (SIGKILL) leaves only what `gc` removes.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, readdirSync, writeSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { cli, makeRegistry, tempDir } from './helpers/artifacts.js';
import { createTestBucket, s3Config, s3TestClient } from './helpers/s3.js';

const CLI = resolve('dist/cli.js');

function bigFile(mib: number): string {
  const path = join(tempDir(), 'model.bin');
  const fd = openSync(path, 'w');
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  closeSync(fd);
  return path;
}

async function until(what: () => Promise<boolean>, ms = 30_000): Promise<void> {
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
    }, 90_000);
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
  }, 90_000);
});
