// modelgate gc: removes staging data and incomplete multipart uploads; with --unreferenced,
// objects no manifest in any commit of any branch references; never a referenced one.
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { cli, git, makeRegistry, randomFile, tempDir } from './helpers/artifacts.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';

const old = new Date(Date.now() - 3 * 86_400_000);

describe('gc on the file:// store', () => {
  it('removes old staging areas and, with --unreferenced, only objects no commit of any branch references', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const r1 = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'a.bin', 1000).path, '--json']);
    const r2 = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'b.bin', 2000).path, '--json']);
    expect(r1.code + r2.code).toBe(0);
    // Version 2 stays referenced only by the branch `old`, no longer by main.
    git(reg, 'branch', 'old');
    git(reg, 'reset', '-q', '--hard', 'HEAD~1');
    const p1 = fileURLToPath(r1.json.uri);
    const p2 = fileURLToPath(r2.json.uri);
    // An object nothing references, a stale staging area, and a fresh one (an upload in progress).
    const orphanDir = join(storeRoot, 'fraud', 'sha256', 'f'.repeat(64));
    mkdirSync(orphanDir, { recursive: true });
    writeFileSync(join(orphanDir, 'orphan.bin'), Buffer.alloc(500));
    const stale = join(storeRoot, 'fraud', '.uploads', 'dead-upload');
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, 'model.bin'), Buffer.alloc(300));
    const fresh = join(storeRoot, 'fraud', '.uploads', 'live-upload');
    mkdirSync(fresh, { recursive: true });
    writeFileSync(join(fresh, 'model.bin'), Buffer.alloc(100));
    for (const p of [p1, p2, join(orphanDir, 'orphan.bin'), orphanDir, join(stale, 'model.bin'), stale]) utimesSync(p, old, old);

    const dry = await cli(reg, ['gc', '--unreferenced', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json.removed.map((g: { kind: string; key: string }) => `${g.kind} ${g.key}`).sort()).toEqual([
      'staging fraud/.uploads/dead-upload/',
      `unreferenced fraud/sha256/${'f'.repeat(64)}/`,
    ]);
    expect(dry.json.bytes).toBe(800);
    expect(existsSync(stale) && existsSync(orphanDir)).toBe(true);

    const gc = await cli(reg, ['gc', '--unreferenced']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(/removed 2 item\(s\), 800 bytes reclaimed/);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(orphanDir)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(p1) && existsSync(p2)).toBe(true);
    expect((await cli(reg, ['verify', '--full'])).code).toBe(0);
    expect((await cli(reg, ['gc', '--older-than', 'soon'])).code).toBe(2);
  });
});

describe('gc on S3', () => {
  it.each(S3_BACKENDS)('$name: aborts incomplete multipart uploads and deletes staging objects, keeping every referenced object', async (backend) => {
    const c = backend.config;
    const s3 = backend.client();
    const bucket = await createTestBucket('gc', s3);
    const reg = makeRegistry({ uri: `s3://${bucket}/models`, endpoint: c.endpoint, region: c.region, forcePathStyle: true });
    const env = { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey };
    try {
      const r = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'a.bin', 1000).path, '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/fraud/.uploads/dead/model.bin', Body: Buffer.alloc(700) }));
      await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'models/fraud/.uploads/dead/big.bin' }));
      await new Promise((res) => setTimeout(res, 1100));
      const gc = await cli(reg, ['gc', '--older-than', '0s', '--unreferenced', '--json'], env);
      expect(gc.code, gc.stderr).toBe(0);
      expect(gc.json.removed.map((g: { kind: string }) => g.kind).sort()).toEqual(['multipart', 'staging']);
      expect(gc.json.bytes).toBe(700);
      const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key);
      expect(keys).toEqual([r.json.uri.slice(`s3://${bucket}/`.length)]);
      expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
      expect((await cli(reg, ['verify', '--full'], env)).code).toBe(0);
    } finally {
      s3.destroy();
    }
  });
});
