// `modelgate pull <content-addressed-uri> <dest>`: the verifying storage initializer's entrypoint
// (KServe's contract: the URI and the destination folder), outside any registry, against the
// file store and the Swift S3 server, with tampered, extra and missing objects.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseContentAddress } from '../src/store/layout.js';
import { cli, makeRegistry, randomFile, sha256, tempDir } from './helpers/artifacts.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';

const ROOT = join(import.meta.dirname, '..');
const uriOf = (reg: string, model: string, n: number): string => parse(readFileSync(join(reg, `models/${model}/versions/${n}.yaml`), 'utf8')).artifact.uri;

/** Everything under `dir`, hidden entries included, as relative paths. */
const tree = (dir: string): string[] => (existsSync(dir) ? (readdirSync(dir, { recursive: true }) as string[]).map((p) => p.split('\\').join('/')).sort() : []);

/** A folder artifact as a Hugging Face model would be, with a nested file. */
function modelFolder(): string {
  const dir = tempDir('mg-hf-');
  writeFileSync(join(dir, 'config.json'), '{"model_type": "bert"}\n');
  mkdirSync(join(dir, 'tokenizer'));
  writeFileSync(join(dir, 'tokenizer', 'vocab.txt'), 'a\nb\n');
  randomFile(dir, 'model.safetensors', 40_000);
  return dir;
}

describe('parseContentAddress', () => {
  it('takes apart the URIs modelgate writes and refuses others (exit 2)', () => {
    const hex = 'ab'.repeat(32);
    expect(parseContentAddress(`s3://ml-models/registry/fraud/sha256/${hex}/model%20v1.onnx`)).toEqual({
      store: 's3://ml-models/registry',
      model: 'fraud',
      sha256: hex,
      fileName: 'model v1.onnx',
      key: `fraud/sha256/${hex}/model v1.onnx`,
    });
    expect(parseContentAddress(`s3://ml-models/fraud/sha256/${hex}/`)).toEqual({
      store: 's3://ml-models',
      model: 'fraud',
      sha256: hex,
      key: `fraud/sha256/${hex}/`,
    });
    expect(parseContentAddress(`file:///var/lib/mg/fraud/sha256/${hex}/m.joblib`)).toMatchObject({ store: 'file:///var/lib/mg', fileName: 'm.joblib' });
    for (const bad of [
      `s3://ml-models/registry/fraud/model.onnx`,
      `s3://ml-models/fraud/sha256/${hex.slice(2)}/m.onnx`,
      `s3://ml-models/fraud/sha256/${hex}/a/b.onnx`,
      `gs://ml-models/fraud/sha256/${hex}/m.onnx`,
      `s3://ml-models/fraud/sha256/${hex}/..`,
    ]) {
      expect(() => parseContentAddress(bad), bad).toThrow(expect.objectContaining({ exit: 2 }));
    }
  });
});

describe('pull <uri> <dest> on the file:// store, outside any registry', () => {
  it('fills the folder with the file or the folder the URI names, verified', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const m = randomFile(tempDir(), 'model.onnx', 70_000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    expect((await cli(reg, ['register', 'fraud', modelFolder()])).code).toBe(0);
    const elsewhere = tempDir('mg-nowhere-');

    const dest = join(tempDir('mg-mnt-'), 'models');
    const r = await cli(elsewhere, ['--json', 'pull', uriOf(reg, 'fraud', 1), dest]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ sha256: sha256(m.bytes), size: 70_000, files: ['model.onnx'] });
    expect(tree(dest)).toEqual(['model.onnx']);
    expect(sha256(readFileSync(join(dest, 'model.onnx')))).toBe(sha256(m.bytes));

    // KServe's emptyDir exists before the init container runs: an empty folder is filled.
    const mnt = tempDir('mg-mnt-');
    const d = await cli(elsewhere, ['pull', uriOf(reg, 'fraud', 2), mnt]);
    expect(d.code).toBe(0);
    expect(tree(mnt)).toEqual(['config.json', 'model.safetensors', 'tokenizer', 'tokenizer/vocab.txt']);
    expect(readFileSync(join(mnt, 'tokenizer/vocab.txt'), 'utf8')).toBe('a\nb\n');
    expect(d.stdout).toMatch(/\(3 file\(s\), \d+ bytes, sha256 [0-9a-f]{64} verified\)/);

    // What is already there is never replaced.
    const again = await cli(elsewhere, ['pull', uriOf(reg, 'fraud', 1), dest]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('model.onnx already exists');
    // A URI that is not content-addressed, and a missing destination, are command-line faults.
    expect((await cli(elsewhere, ['pull', `${pathToFileURL(storeRoot).href}/fraud/model.onnx`, mnt])).code).toBe(2);
    expect((await cli(elsewhere, ['pull', uriOf(reg, 'fraud', 1)])).code).toBe(2);
  });

  it('leaves nothing in <dest> when a byte changed, an object is extra, or one is missing', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const m = randomFile(tempDir(), 'model.onnx', 50_000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    expect((await cli(reg, ['register', 'fraud', modelFolder()])).code).toBe(0);
    const elsewhere = tempDir('mg-nowhere-');
    const expectRefused = async (uri: string, what: RegExp) => {
      const dest = tempDir('mg-mnt-');
      const r = await cli(elsewhere, ['pull', uri, dest]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(what);
      expect(tree(dest)).toEqual([]);
    };

    const file = fileURLToPath(uriOf(reg, 'fraud', 1));
    chmodSync(file, 0o644);
    const bytes = readFileSync(file);
    bytes[100] = bytes[100]! ^ 0x01;
    writeFileSync(file, bytes);
    await expectRefused(uriOf(reg, 'fraud', 1), /\(50000 bytes\): sha256 is [0-9a-f]{64}, the URI says [0-9a-f]{64}; nothing was written/);

    const folder = fileURLToPath(uriOf(reg, 'fraud', 2));
    chmodSync(folder, 0o755);
    writeFileSync(join(folder, 'extra.py'), 'import os\n');
    await expectRefused(uriOf(reg, 'fraud', 2), /\(4 objects under the prefix, canonical list digest\): sha256 is/);
    await import('node:fs/promises').then((fs) => fs.rm(join(folder, 'extra.py')));
    const vocab = join(folder, 'tokenizer', 'vocab.txt');
    chmodSync(dirname(vocab), 0o755);
    await import('node:fs/promises').then((fs) => fs.rm(vocab));
    await expectRefused(uriOf(reg, 'fraud', 2), /\(2 objects under the prefix, canonical list digest\)/);
  });

  it('runs as the storage initializer container does: the built CLI, <uri> <dest>, no registry, no git', () => {
    const storeRoot = tempDir('mg-store-');
    const hex = sha256('onnx bytes\n');
    const key = join(storeRoot, 'fraud', 'sha256', hex);
    mkdirSync(key, { recursive: true });
    writeFileSync(join(key, 'model.onnx'), 'onnx bytes\n');
    const dest = tempDir('mg-mnt-');
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'pull', `${pathToFileURL(storeRoot).href}/fraud/sha256/${hex}/model.onnx`, dest], {
      cwd: tempDir('mg-nowhere-'),
      encoding: 'utf8',
      env: { PATH: '/nonexistent', HOME: tempDir('mg-home-') },
    });
    // Only the progress line on stderr (the init container's log), the result on stdout.
    expect(r.stderr).toMatch(/^pulling fraud sha256:[0-9a-f]{12}: 100% \(11 B of 11 B\)\n$/);
    expect(r.stdout).toContain(`→ ${dest} (1 file(s), 11 bytes, sha256 ${hex} verified)`);
    expect(r.status).toBe(0);
    expect(readFileSync(join(dest, 'model.onnx'), 'utf8')).toBe('onnx bytes\n');
  });
});

describe.each(S3_BACKENDS)('pull <uri> <dest> against S3 ($name), credentials from the environment', (backend) => {
  const cfg = backend.config;
  // What KServe's S3 Secret puts in the storage initializer's environment.
  const kserveEnv = { AWS_ACCESS_KEY_ID: cfg.accessKeyId, AWS_SECRET_ACCESS_KEY: cfg.secretAccessKey, AWS_REGION: cfg.region, AWS_ENDPOINT_URL: cfg.endpoint };

  it('pulls a file and a folder, and refuses a tampered, an extra and a missing object leaving nothing', async () => {
    const admin = backend.client();
    const bucket = await createTestBucket('pull-uri', admin).finally(() => admin.destroy());
    const reg = makeRegistry({ uri: `s3://${bucket}/registry`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true });
    const env = { AWS_ACCESS_KEY_ID: cfg.accessKeyId, AWS_SECRET_ACCESS_KEY: cfg.secretAccessKey };
    const m = randomFile(tempDir(), 'model.onnx', 60_000);
    expect((await cli(reg, ['register', 'fraud', m.path], env)).code).toBe(0);
    expect((await cli(reg, ['register', 'fraud', modelFolder()], env)).code).toBe(0);
    const elsewhere = tempDir('mg-nowhere-');
    const fileUri = uriOf(reg, 'fraud', 1);
    const dirUri = uriOf(reg, 'fraud', 2);

    const dest = tempDir('mg-mnt-');
    const ok = await cli(elsewhere, ['pull', fileUri, dest], kserveEnv);
    // Progress lines as the bytes come (a slower server shows some before the last), ending at 100%.
    expect(ok.stderr).toMatch(/^(?:pulling fraud sha256:[0-9a-f]{12}: \d+% [^\n]*\n)*pulling fraud sha256:[0-9a-f]{12}: 100% [^\n]*\n$/);
    expect(ok.code).toBe(0);
    expect(sha256(readFileSync(join(dest, 'model.onnx')))).toBe(sha256(m.bytes));
    const dir = tempDir('mg-mnt-');
    expect((await cli(elsewhere, ['pull', dirUri, dir], kserveEnv)).code).toBe(0);
    expect(tree(dir)).toEqual(['config.json', 'model.safetensors', 'tokenizer', 'tokenizer/vocab.txt']);

    // No credentials: the AWS chain finds none, exit 3 naming why, nothing written.
    const none = tempDir('mg-mnt-');
    const noCreds = await cli(elsewhere, ['pull', fileUri, none], {
      AWS_ENDPOINT_URL: cfg.endpoint,
      AWS_REGION: cfg.region,
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      AWS_CONFIG_FILE: '/nonexistent',
    });
    expect(noCreds.code).toBe(3);
    expect(tree(none)).toEqual([]);

    const s3 = backend.client();
    const key = (uri: string) => uri.slice(`s3://${bucket}/`.length);
    const expectRefused = async (uri: string, what: RegExp) => {
      const target = tempDir('mg-mnt-');
      const r = await cli(elsewhere, ['pull', uri, target], kserveEnv);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(what);
      expect(tree(target)).toEqual([]);
    };
    try {
      const tampered = Buffer.from(m.bytes);
      tampered[7] = tampered[7]! ^ 0x80;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key(fileUri), Body: tampered }));
      await expectRefused(fileUri, /sha256 is [0-9a-f]{64}, the URI says/);

      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${key(dirUri)}extra.bin`, Body: Buffer.from('planted') }));
      await expectRefused(dirUri, /4 objects under the prefix/);
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${key(dirUri)}extra.bin` }));
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${key(dirUri)}config.json` }));
      await expectRefused(dirUri, /2 objects under the prefix/);
    } finally {
      s3.destroy();
    }
  });
});
