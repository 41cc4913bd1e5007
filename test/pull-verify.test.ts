import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { cli, makeRegistry, randomFile, sha256, tempDir } from './helpers/artifacts.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';

describe('pull and verify on the file:// store', () => {
  it('pulls identical bytes, refuses to overwrite without --force, and catches an altered object', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const m = randomFile(tempDir(), 'model.joblib', 100_000);
    const dir = tempDir('mg-dir-');
    mkdirSync(join(dir, 'tokenizer'));
    writeFileSync(join(dir, 'tokenizer', 'vocab.txt'), 'a\nb\n');
    randomFile(dir, 'model.safetensors', 30_000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    const d = await cli(reg, ['register', 'fraud', dir, '--json']);
    expect(d.json.version).toBe(2);

    const out = tempDir('mg-out-');
    const r1 = await cli(reg, ['pull', 'fraud@1', '-o', join(out, 'model.joblib')]);
    expect(r1.code).toBe(0);
    expect(sha256(readFileSync(join(out, 'model.joblib')))).toBe(sha256(m.bytes));
    const r2 = await cli(reg, ['pull', 'fraud@latest', '-o', join(out, 'hf')]);
    expect(r2.code).toBe(0);
    expect(readFileSync(join(out, 'hf', 'tokenizer', 'vocab.txt'), 'utf8')).toBe('a\nb\n');

    const again = await cli(reg, ['pull', 'fraud@1', '-o', join(out, 'model.joblib')]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    expect((await cli(reg, ['pull', 'fraud@1', '-o', join(out, 'model.joblib'), '--force'])).code).toBe(0);

    expect((await cli(reg, ['verify', '--full'])).code).toBe(0);

    // Alter one byte of version 1's object: size still matches, so only --full and pull see it.
    const uri = readFileSync(join(reg, 'models/fraud/versions/1.yaml'), 'utf8').match(/uri: (\S+)/)![1]!;
    const path = fileURLToPath(uri);
    chmodSync(path, 0o644);
    const bytes = readFileSync(path);
    bytes[5] = bytes[5]! ^ 0xff;
    writeFileSync(path, bytes);

    expect((await cli(reg, ['verify'])).code).toBe(0);
    const full = await cli(reg, ['verify', '--full', '--json']);
    expect(full.code).toBe(1);
    expect(full.json.broken).toEqual([{ ref: 'fraud@1', problem: expect.stringMatching(/sha256 [0-9a-f]{64}, the manifest says/) }]);

    const target = join(out, 'tampered.joblib');
    const bad = await cli(reg, ['pull', 'fraud@1', '-o', target]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/sha256 is [0-9a-f]{64}, the manifest says/);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(out).filter((n) => n.includes('partial'))).toEqual([]);

    // A missing file of the directory artifact: verify names the version; pull leaves nothing.
    const dirUri = readFileSync(join(reg, 'models/fraud/versions/2.yaml'), 'utf8').match(/uri: (\S+)/)![1]!;
    const vocab = join(fileURLToPath(dirUri), 'tokenizer', 'vocab.txt');
    chmodSync(dirname(vocab), 0o755);
    writeFileSync(vocab, 'a\nb\nc\n');
    const v2 = await cli(reg, ['verify', '--json']);
    expect(v2.code).toBe(1);
    expect(v2.json.broken.map((b: { ref: string }) => b.ref)).toEqual(['fraud@2']);
    const pulled = await cli(reg, ['pull', 'fraud@2', '-o', join(out, 'hf2')]);
    expect(pulled.code).toBe(1);
    expect(existsSync(join(out, 'hf2'))).toBe(false);
  });

  it('reports unknown versions (exit 1) and bad usage (exit 2)', async () => {
    const reg = makeRegistry({ uri: pathToFileURL(tempDir()).href });
    expect((await cli(reg, ['pull', 'fraud@3', '-o', join(tempDir(), 'x')])).code).toBe(1);
    expect((await cli(reg, ['pull', 'fraud@3'])).code).toBe(2);
    expect((await cli(reg, ['verify', 'nope@1'])).code).toBe(1);
    expect((await cli(reg, ['verify'])).code).toBe(0);
  });
});

describe('pull, verify and resolve --presign on S3', () => {
  it.each(S3_BACKENDS)(
    '$name: catches an object altered after registration',
    async (backend) => {
      const cfg = backend.config;
      const env = { AWS_ACCESS_KEY_ID: cfg.accessKeyId, AWS_SECRET_ACCESS_KEY: cfg.secretAccessKey };
      const s3 = backend.client();
      const bucket = await createTestBucket('pull-verify', s3);
      const reg = makeRegistry({ uri: `s3://${bucket}/reg`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true });
      const m = randomFile(tempDir(), 'model.onnx', 20 * 1024 * 1024);
      const r = await cli(reg, ['register', 'fraud', m.path, '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      const out = join(tempDir(), 'model.onnx');
      expect((await cli(reg, ['pull', 'fraud@1', '-o', out], env)).code).toBe(0);
      expect(sha256(readFileSync(out))).toBe(sha256(m.bytes));
      expect((await cli(reg, ['verify', '--full'], env)).code).toBe(0);

      const presigned = await cli(reg, ['resolve', 'fraud@1', '--presign', '300', '--json'], env);
      expect(presigned.code, presigned.stderr).toBe(0);
      {
        const url = JSON.stringify(presigned.json).match(/"(http[^"]+X-Amz-Signature[^"]+)"/)?.[1];
        expect(url).toBeDefined();
        expect(sha256(Buffer.from(await (await fetch(url!)).arrayBuffer()))).toBe(sha256(m.bytes));
      }

      const key = r.json.uri.slice(`s3://${bucket}/`.length);
      const altered = Buffer.from(m.bytes);
      altered[1000] = altered[1000]! ^ 1;
      // Same size, metadata kept: only re-hashing can tell.
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: altered, Metadata: { sha256: r.json.sha256 } }));
      expect((await cli(reg, ['verify'], env)).code).toBe(0);
      const full = await cli(reg, ['verify', '--full'], env);
      expect(full.code).toBe(1);
      expect(full.stderr).toMatch(/^fraud@1: .* has sha256/m);
      const target = join(tempDir(), 'again.onnx');
      expect((await cli(reg, ['pull', 'fraud@1', '-o', target], env)).code).toBe(1);
      expect(existsSync(target)).toBe(false);
      s3.destroy();
    },
    60_000,
  );
});

describe('resolve --presign on the file:// store', () => {
  it('says presigning needs S3 (exit 2)', async () => {
    const reg = makeRegistry({ uri: pathToFileURL(tempDir()).href });
    const m = randomFile(tempDir(), 'm.onnx', 100);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    const r = await cli(reg, ['resolve', 'fraud@1', '--presign', '60']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/presigned URLs need an S3 store/);
  });
});
