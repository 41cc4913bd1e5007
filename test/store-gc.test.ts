// modelgate gc (SPEC v3 §14): removes staging data, incomplete multipart uploads and uploads whose
// manifest never came; with --unreferenced, artifacts no manifest references. It fetches every
// branch and pull request head of the remote first, refuses shallow and partial clones, keeps what
// registrations wrote or reused within --older-than, and reports the bytes it really freed.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, git, makeRegistry, randomFile, tempDir, type CliResult } from './helpers/artifacts.js';
import { POLICY } from './gate-fixtures.js';
import { prRemote, type PrRemote } from './helpers/pr-remote.js';
import { createTestBucket, S3_BACKENDS } from './helpers/s3.js';

// The http-backend server runs in this process: clones against it must not block the event loop.
const gitAsync = promisify(execFile);

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
      // A killed upload's parts hold bytes too: they count in what gc reclaims.
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'models/fraud/.uploads/dead/big.bin' }));
      const part = 5 * 1024 * 1024 + 3;
      await s3.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: 'models/fraud/.uploads/dead/big.bin',
          UploadId,
          PartNumber: 1,
          Body: Buffer.alloc(part),
          ContentLength: part,
        }),
      );
      await new Promise((res) => setTimeout(res, 1100));
      const dry = await cli(reg, ['gc', '--older-than', '0s', '--unreferenced', '--dry-run', '--json'], env);
      expect(dry.json.bytes).toBe(700 + part);
      const gc = await cli(reg, ['gc', '--older-than', '0s', '--unreferenced', '--json'], env);
      expect(gc.code, gc.stderr).toBe(0);
      // The registration's mark goes too: its artifact is referenced.
      expect(gc.json.removed.map((g: { kind: string }) => g.kind).sort()).toEqual(['mark', 'multipart', 'staging']);
      expect(gc.json.bytes).toBe(700 + part);
      const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key);
      expect(keys).toEqual([r.json.uri.slice(`s3://${bucket}/`.length)]);
      expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
      expect((await cli(reg, ['verify', '--full'], env)).code).toBe(0);
    } finally {
      s3.destroy();
    }
  });
});

/** Everything in the store written three days ago (registration marks included): only references protect it now. */
function age(root: string): void {
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) utimesSync(join(e.parentPath, e.name), old, old);
}

async function cloneOf(url: string): Promise<string> {
  const dir = tempDir('mg-clone-');
  await gitAsync('git', ['clone', '-q', url, dir]);
  git(dir, 'config', 'user.name', 'maria');
  git(dir, 'config', 'user.email', 'maria@example.com');
  return dir;
}

/** `<kind> <key>` of what a `gc --json` run removed, of the kinds wanted, sorted. */
const kinds = (r: CliResult, ...wanted: string[]): string[] =>
  (r.json.removed as Array<{ kind: string; key: string }>)
    .filter((g) => wanted.includes(g.kind))
    .map((g) => `${g.kind} ${g.key}`)
    .sort();

describe('gc on S3: uploads whose manifest never came', () => {
  it.each(S3_BACKENDS)('$name: plain gc removes them and their marks, and reports the bytes it freed', async (backend) => {
    const c = backend.config;
    const s3 = backend.client();
    const bucket = await createTestBucket('gc-uncommitted', s3);
    const reg = makeRegistry({ uri: `s3://${bucket}/models`, endpoint: c.endpoint, region: c.region, forcePathStyle: true });
    const env = { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey };
    try {
      const kept = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'kept.bin', 1000).path, '--json'], env);
      const lost = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'lost.bin', 3_000_000).path, '--json'], env);
      expect(kept.code + lost.code).toBe(0);
      git(reg, 'reset', '-q', '--hard', 'HEAD~1');
      // Within --older-than, the marks keep the bytes: a registration may be about to commit.
      expect(kinds(await cli(reg, ['gc', '--json', '--unreferenced'], env), 'uncommitted', 'unreferenced', 'mark')).toEqual([]);
      await new Promise((res) => setTimeout(res, 1100));
      const gc = await cli(reg, ['gc', '--older-than', '0s', '--json'], env);
      expect(gc.code, gc.stderr).toBe(0);
      expect(kinds(gc, 'uncommitted', 'unreferenced')).toEqual([`uncommitted fraud/sha256/${lost.json.sha256}/`]);
      expect(kinds(gc, 'mark')).toHaveLength(2);
      expect(gc.json.bytes).toBe(3_000_000);
      const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key);
      expect(keys).toEqual([kept.json.uri.slice(`s3://${bucket}/`.length)]);
      expect((await cli(reg, ['verify', '--full'], env)).code).toBe(0);
    } finally {
      s3.destroy();
    }
  });
});

describe('gc against a remote (git http-backend and the GitHub emulator)', () => {
  let remote: PrRemote | undefined;
  afterAll(async () => remote?.close());

  it('keeps what any branch or pull request head of the remote references, in a clone that had not fetched; refuses shallow and partial clones', async () => {
    const storeRoot = tempDir('mg-store-');
    remote = await prRemote({ uri: pathToFileURL(storeRoot).href }, POLICY);
    const { url, work, env, ghRepo } = remote;
    // The clone gc runs in: made now, never fetched by hand afterwards.
    const stale = await cloneOf(url);
    const open = await cli(work, ['--json', 'register', 'fraud', randomFile(tempDir(), 'open.bin', 3000).path, '--pr'], env);
    expect(open.code, open.stderr).toBe(0);
    // A pull request whose branch was deleted: only GitHub's refs/pull/<n>/head holds its manifest.
    const gone = await cli(work, ['--json', 'register', 'fraud', randomFile(tempDir(), 'gone.bin', 4000).path, '--pr'], env);
    expect(gone.code, gone.stderr).toBe(0);
    git(ghRepo.gitDir!, 'update-ref', '-d', `refs/heads/${gone.json.branch}`);
    expect(git(ghRepo.gitDir!, 'show-ref')).toContain(`refs/pull/${gone.json.pullRequest.number}/head`);
    // Another clone's registration, pushed to main.
    const pushed = await cli(await cloneOf(url), ['--json', 'register', 'fraud', randomFile(tempDir(), 'pushed.bin', 5000).path, '--push'], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    const orphan = join(storeRoot, 'fraud', 'sha256', 'f'.repeat(64));
    mkdirSync(orphan, { recursive: true });
    writeFileSync(join(orphan, 'orphan.bin'), Buffer.alloc(500));
    age(storeRoot);

    const gc = await cli(stale, ['--json', 'gc', '--unreferenced'], env);
    expect(gc.code, gc.stderr).toBe(0);
    expect(kinds(gc, 'unreferenced', 'uncommitted')).toEqual([`unreferenced fraud/sha256/${'f'.repeat(64)}/`]);
    expect(kinds(gc, 'mark')).toHaveLength(3);
    expect(gc.json.bytes).toBe(500);
    for (const r of [open, gone, pushed]) expect(existsSync(fileURLToPath(r.json.uri)), r.json.uri).toBe(true);
    // The open pull request's branch and main still verify from the clone gc ran in.
    git(stale, 'checkout', '-q', open.json.branch);
    expect((await cli(stale, ['verify', '--full'], env)).code).toBe(0);
    git(stale, 'checkout', '-q', 'main');
    git(stale, 'merge', '-q', '--ff-only', 'origin/main');
    expect((await cli(stale, ['verify', '--full'], env)).code).toBe(0);

    // A clone that lacks history cannot know what its missing commits reference.
    const shallow = tempDir('mg-shallow-');
    await gitAsync('git', ['clone', '-q', '--depth', '1', url, shallow]);
    const refusedShallow = await cli(shallow, ['--json', 'gc', '--unreferenced', '--dry-run'], env);
    expect(refusedShallow.code).toBe(1);
    expect(refusedShallow.json.error).toMatchObject({ code: 'E_INCOMPLETE_CLONE', shallow: true });
    git(ghRepo.gitDir!, 'config', 'uploadpack.allowFilter', 'true');
    const partial = tempDir('mg-partial-');
    await gitAsync('git', ['clone', '-q', '--filter=blob:none', url, partial]);
    const refusedPartial = await cli(partial, ['--json', 'gc'], env);
    expect(refusedPartial.code).toBe(1);
    expect(refusedPartial.json.error).toMatchObject({ code: 'E_INCOMPLETE_CLONE', partial: true });
    expect(existsSync(fileURLToPath(open.json.uri))).toBe(true);
  }, 120_000);
});

describe('gc and registrations', () => {
  it('plain gc removes an upload whose manifest was never committed, and reports the bytes it freed', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const kept = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'kept.bin', 1000).path, '--json']);
    const lost = await cli(reg, ['register', 'fraud', randomFile(tempDir(), 'lost.bin', 2_000_000).path, '--json']);
    expect(kept.code + lost.code).toBe(0);
    // The upload finished, the manifest never landed (a register killed before its commit).
    git(reg, 'reset', '-q', '--hard', 'HEAD~1');
    age(storeRoot);
    const gc = await cli(reg, ['gc', '--json']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(kinds(gc, 'uncommitted', 'unreferenced')).toEqual([`uncommitted fraud/sha256/${lost.json.sha256}/`]);
    // Both marks are done with: one's bytes are referenced, the other's are gone.
    expect(kinds(gc, 'mark')).toHaveLength(2);
    expect(gc.json.bytes).toBe(2_000_000);
    expect(existsSync(fileURLToPath(lost.json.uri))).toBe(false);
    expect(existsSync(fileURLToPath(kept.json.uri))).toBe(true);
    expect((await cli(reg, ['verify', '--full'])).code).toBe(0);
    const again = await cli(reg, ['gc', '--json', '--unreferenced']);
    expect(again.json.removed).toEqual([]);
  });

  it('a registration that reuses stored bytes refreshes them: gc elsewhere keeps them while the registration is under way', async () => {
    const storeRoot = tempDir('mg-store-');
    const seed = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const bare = join(tempDir('mg-remote-'), 'registry.git');
    execFileSync('git', ['clone', '-q', '--bare', seed, bare]);
    const [a, b] = [await cloneOf(bare), await cloneOf(bare)];
    const file = randomFile(tempDir(), 'model.bin', 300_000);
    // Bytes a killed register left three days ago.
    const first = await cli(a, ['register', 'fraud', file.path, '--json']);
    git(a, 'reset', '-q', '--hard', 'HEAD~1');
    age(storeRoot);
    expect(kinds(await cli(b, ['gc', '--json', '--dry-run']), 'uncommitted')).toEqual([`uncommitted fraud/sha256/${first.json.sha256}/`]);

    // The same bytes registered again: reused, committed in clone a, not pushed yet.
    const again = await cli(a, ['register', 'fraud', file.path, '--json']);
    expect(again.json).toMatchObject({ sha256: first.json.sha256, reused: true });
    const gc = await cli(b, ['gc', '--json', '--unreferenced']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(kinds(gc, 'uncommitted', 'unreferenced')).toEqual([]);
    git(a, 'push', '-q', 'origin', 'main');
    git(b, 'pull', '-q', '--ff-only');
    expect((await cli(b, ['verify', '--full'])).code).toBe(0);
  });

  it('gc running while registrations are under way leaves every registered artifact in place', async () => {
    const storeRoot = tempDir('mg-store-');
    const seed = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const bare = join(tempDir('mg-remote-'), 'registry.git');
    execFileSync('git', ['clone', '-q', '--bare', seed, bare]);
    const clones = [await cloneOf(bare), await cloneOf(bare), await cloneOf(bare)];
    const files = [randomFile(tempDir(), 'a.bin', 3_000_000), randomFile(tempDir(), 'b.bin', 2_000_000)];
    // b.bin's bytes are an old leftover (the reuse case); a.bin is new.
    const leftover = await cli(clones[2]!, ['register', 'fraud', files[1]!.path, '--json']);
    git(clones[2]!, 'reset', '-q', '--hard', 'HEAD~1');
    age(storeRoot);
    for (let round = 0; round < 3; round++) {
      const [r0, r1, gc] = await Promise.all([
        cli(clones[0]!, ['register', 'fraud', files[0]!.path, '--push', '--json']),
        cli(clones[1]!, ['register', 'fraud', files[1]!.path, '--push', '--json']),
        cli(clones[2]!, ['gc', '--json', '--unreferenced']),
      ]);
      expect(r0.code + r1.code + gc.code, r0.stderr + r1.stderr + gc.stderr).toBe(0);
    }
    git(clones[2]!, 'pull', '-q', '--ff-only');
    expect((await cli(clones[2]!, ['verify', '--full'])).code).toBe(0);
    expect(existsSync(fileURLToPath(leftover.json.uri))).toBe(true);
  }, 120_000);
});
