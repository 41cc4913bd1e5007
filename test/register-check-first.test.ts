// Check first (SPEC v2 §4): every refusal of a register comes before any byte reaches the store,
// on the file:// store and on the loopback S3 server; file names that need percent-encoding work.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { cli, git, makeRegistry, randomFile, sha256, tempDir } from './helpers/artifacts.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';

/** Every file under `root`, recursively (the file store's whole content), registration marks aside (SPEC v3 §14). */
function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !join(e.parentPath, e.name).includes('/.modelgate/'))
    .map((e) => join(e.parentPath, e.name));
}

function bigDirectory(count: number, nameLength = 0): string {
  const dir = tempDir('mg-many-');
  for (let i = 0; i < count; i++)
    writeFileSync(join(dir, `shard-${String(i).padStart(5, '0')}-of-a-rather-long-file-name${'x'.repeat(nameLength)}.bin`), `file ${i}\n`);
  return dir;
}

/** The refusals, each with what the command line or the repository gets wrong. */
function refusals(reg: string) {
  const small = randomFile(tempDir(), 'model.bin', 50_000).path;
  const manyMetrics = join(tempDir(), 'metrics.json');
  writeFileSync(manyMetrics, JSON.stringify(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`m${i}`, i]))));
  return [
    // 1,000 files stay inline in the manifest (more go to artifact.index, SPEC v2 §5): long names make it too large.
    {
      what: 'a directory whose manifest would exceed 256 KiB',
      args: ['register', 'fraud', bigDirectory(1000, 200)],
      code: 1,
      stderr: /would be invalid|256|too large|bytes/i,
    },
    { what: '10,000 metrics', args: ['register', 'fraud', small, '--metrics', manyMetrics], code: 1, stderr: /metrics|1000|properties/i },
    { what: 'a bad metric name', args: ['register', 'fraud', small, '--metric', 'bad name=1'], code: null, stderr: /bad name|metric/i },
    {
      what: 'a stale .git/index.lock',
      setup: () => writeFileSync(join(reg, '.git', 'index.lock'), ''),
      args: ['register', 'fraud', small],
      code: 1,
      stderr: /index\.lock exists/,
    },
    {
      what: '--push with a remote that does not answer',
      setup: () => git(reg, 'remote', 'add', 'origin', 'http://127.0.0.1:9/registry.git'),
      args: ['register', 'fraud', small, '--push'],
      code: 3,
      stderr: /git ls-remote failed/,
    },
  ];
}

describe('register refuses before any byte is stored', () => {
  it('on the file:// store: limits, metrics, lock file, unreachable remote — the store stays empty', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    for (const r of refusals(reg)) {
      r.setup?.();
      const out = await cli(reg, r.args);
      if (r.code === null) expect(out.code, r.what).not.toBe(0);
      else expect(out.code, `${r.what}: ${out.stderr}`).toBe(r.code);
      expect(out.stderr, r.what).toMatch(r.stderr);
      // Refused before the upload: the store is empty (no timed assertion, the machines are shared).
      expect(filesUnder(storeRoot), r.what).toEqual([]);
      if (r.what.includes('index.lock')) {
        // Removing the stale lock lets the same registration through.
        (await import('node:fs')).rmSync(join(reg, '.git', 'index.lock'));
      }
    }
    expect(git(reg, 'log', '--oneline').trim().split('\n')).toHaveLength(1);
  }, 360_000);

  it('a pin KServe could not load is refused before the upload: a lone .safetensors as huggingface, file:// without storage.pvc', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    mkdirSync(join(reg, 'models', 'llm'), { recursive: true });
    writeFileSync(join(reg, 'models', 'llm', 'model.yaml'), 'apiVersion: modelgate.dev/v1\nkind: Model\nname: llm\ndeploy: {modelFormat: huggingface}\n');
    mkdirSync(join(reg, 'models', 'scorer'), { recursive: true });
    writeFileSync(join(reg, 'models', 'scorer', 'model.yaml'), 'apiVersion: modelgate.dev/v1\nkind: Model\nname: scorer\ndeploy: {}\n');
    git(reg, 'add', '-A');
    git(reg, 'commit', '-q', '-m', 'models');
    const weights = randomFile(tempDir(), 'model.safetensors', 20_000).path;
    const hf = await cli(reg, ['register', 'llm', weights, '--stage', 'Staging']);
    expect(hf.code).toBe(1);
    expect(hf.stderr).toContain('cannot be served as KServe model format huggingface (deploy.modelFormat)');
    const onnx = await cli(reg, ['register', 'scorer', randomFile(tempDir(), 'model.onnx', 20_000).path, '--stage', 'Staging']);
    expect(onnx.code).toBe(1);
    expect(onnx.stderr).toContain('modelgate.yaml: models/scorer would be pinned into an InferenceService as file://');
    expect(filesUnder(storeRoot)).toEqual([]);
    expect(git(reg, 'log', '--oneline').trim().split('\n')).toHaveLength(2);
    // Not entering a deployed stage, nothing is pinned: the registration goes through.
    expect((await cli(reg, ['register', 'scorer', randomFile(tempDir(), 'model.onnx', 20_000).path])).code).toBe(0);
  });

  it('without a committer identity: commits as the CI actor (or as modelgate), not refused, nothing stored twice', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    git(reg, 'config', '--unset', 'user.name');
    git(reg, 'config', '--unset', 'user.email');
    git(reg, 'config', 'user.useConfigOnly', 'true');
    const saved = {
      g: process.env.GIT_CONFIG_GLOBAL,
      n: process.env.GIT_AUTHOR_NAME,
      e: process.env.GIT_AUTHOR_EMAIL,
      cn: process.env.GIT_COMMITTER_NAME,
      ce: process.env.GIT_COMMITTER_EMAIL,
    };
    process.env.GIT_CONFIG_GLOBAL = '/dev/null';
    for (const k of ['GIT_AUTHOR_NAME', 'GIT_AUTHOR_EMAIL', 'GIT_COMMITTER_NAME', 'GIT_COMMITTER_EMAIL']) delete process.env[k];
    try {
      const asActor = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'model.bin', 1000).path], { GITHUB_ACTOR: 'train-bot' });
      expect(asActor.code, asActor.stderr).toBe(0);
      expect(git(reg, 'log', '-1', '--format=%an <%ae>|%cn <%ce>').trim()).toBe(
        'train-bot <train-bot@users.noreply.github.com>|train-bot <train-bot@users.noreply.github.com>',
      );
      expect(readFileSync(join(reg, 'models/fraud/versions/1.yaml'), 'utf8')).toMatch(/^createdBy: train-bot$/m);
      // Not a GitHub login (a shell injection, say): the fallback identity, never the text.
      const asModelgate = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'model.bin', 1000).path], { GITHUB_ACTOR: '$(id)' });
      expect(asModelgate.code).toBe(0);
      expect(git(reg, 'log', '-1', '--format=%an <%ae>').trim()).toBe('modelgate <modelgate@users.noreply.github.com>');
      expect(filesUnder(storeRoot)).toHaveLength(2);
    } finally {
      for (const [k, v] of [
        ['GIT_CONFIG_GLOBAL', saved.g],
        ['GIT_AUTHOR_NAME', saved.n],
        ['GIT_AUTHOR_EMAIL', saved.e],
        ['GIT_COMMITTER_NAME', saved.cn],
        ['GIT_COMMITTER_EMAIL', saved.ce],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it.each(S3_BACKENDS)(
    'on S3 ($name): no object and no open multipart upload after each refusal',
    async (backend) => {
      const c = backend.config;
      const s3 = backend.client();
      const bucket = await createTestBucket('check-first', s3);
      const reg = makeRegistry({ uri: `s3://${bucket}/models`, endpoint: c.endpoint, region: c.region, forcePathStyle: true });
      const env = { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey };
      try {
        for (const r of refusals(reg)) {
          r.setup?.();
          const out = await cli(reg, r.args, env);
          expect(out.code, r.what).not.toBe(0);
          expect(out.stderr, r.what).toMatch(r.stderr);
          const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
          expect(listed.KeyCount ?? 0, r.what).toBe(0);
          const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          expect(uploads.Uploads ?? [], r.what).toEqual([]);
          if (r.what.includes('index.lock')) (await import('node:fs')).rmSync(join(reg, '.git', 'index.lock'));
        }
      } finally {
        s3.destroy();
      }
    },
    120_000,
  );
});

describe('file names that need percent-encoding in the URI', () => {
  it('`modèle final.json` and `model#1.onnx` register with encoded URIs, pull back identical and verify', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const dir = tempDir();
    const a = randomFile(dir, 'modèle final.json', 2000);
    const b = randomFile(dir, 'model#1.onnx', 3000);
    const ra = await cli(reg, ['register', 'fraud', a.path, '--json']);
    expect(ra.code, ra.stderr).toBe(0);
    expect(ra.json.uri).toMatch(/\/sha256\/[0-9a-f]{64}\/mod%C3%A8le%20final\.json$/);
    const rb = await cli(reg, ['register', 'fraud', b.path, '--json']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.json.uri).toMatch(/\/model%231\.onnx$/);
    expect(readFileSync(join(reg, 'models/fraud/versions/2.yaml'), 'utf8')).not.toMatch(/model#1/);
    // Stored under the plain name, so other tools see the file as it was called.
    expect(filesUnder(storeRoot).map((p) => p.split('/').pop())).toEqual(expect.arrayContaining(['modèle final.json', 'model#1.onnx']));
    const out = tempDir('mg-out-');
    expect((await cli(reg, ['pull', 'fraud@1', '-o', join(out, 'a')])).code).toBe(0);
    expect(sha256(readFileSync(join(out, 'a')))).toBe(sha256(a.bytes));
    expect((await cli(reg, ['pull', 'fraud@2', '-o', join(out, 'b')])).code).toBe(0);
    expect(sha256(readFileSync(join(out, 'b')))).toBe(sha256(b.bytes));
    const v = await cli(reg, ['verify', '--full']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // The same name inside a directory artifact.
    const d = tempDir('mg-dir-');
    mkdirSync(join(d, 'sous dossier'));
    writeFileSync(join(d, 'sous dossier', 'poids#2 é.bin'), 'x');
    const rd = await cli(reg, ['register', 'fraud', d, '--json']);
    expect(rd.code, rd.stderr).toBe(0);
    expect((await cli(reg, ['pull', 'fraud@3', '-o', join(out, 'd')])).code).toBe(0);
    expect(readFileSync(join(out, 'd', 'sous dossier', 'poids#2 é.bin'), 'utf8')).toBe('x');
  });
});
