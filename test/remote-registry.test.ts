// `--registry <git-url>`: the read commands against a registry served by `git http-backend`, read
// in-process by isomorphic-git through the built CLI with no git on PATH; the cache folder keeps
// the objects, so a second call fetches only what changed on the remote.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGitHttp, type GitHttpServer } from '../src/local/git-http-backend.js';
import { cli, makeRegistry, randomFile, tempDir } from './helpers/artifacts.js';

const CLI = join(import.meta.dirname, '..', 'dist/cli.js');
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

let server: GitHttpServer;
let reg: string;
let bare: string;
let cache: string;

/** The built CLI with PATH pointing nowhere: no git binary can be found. Asynchronous: the server runs in this process. */
function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; json?: any }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: tempDir('mg-nowhere-'),
    env: { PATH: '/nonexistent', HOME: tempDir('mg-home-'), MODELGATE_CACHE: cache, MODELGATE_IO_TIMEOUT: '20', ...env },
    // A read that waited on a FIFO in the cache is killed rather than left to hang the run.
    timeout: 90_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr, json: args.includes('--json') && stdout ? JSON.parse(stdout) : undefined })),
  );
}

/** Packs in the cache folder, each with its object count (from the .idx fan-out table's last entry). */
function packs(): Array<{ name: string; objects: number }> {
  const [remote] = readdirSync(join(cache, 'remotes'));
  const dir = join(cache, 'remotes', remote!, 'objects', 'pack');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.idx'))
    .map((f) => ({ name: f, objects: readFileSync(join(dir, f)).readUInt32BE(8 + 255 * 4) }));
}

beforeAll(async () => {
  const store = tempDir('mg-store-');
  reg = makeRegistry({ uri: pathToFileURL(store).href });
  for (const stage of ['None', 'Staging']) {
    const a = randomFile(tempDir(), 'model.onnx', 2_000);
    expect((await cli(reg, ['register', 'fraud', a.path, '--stage', stage, '--metric', 'auc=0.9'])).code).toBe(0);
  }
  const root = tempDir('mg-srv-');
  bare = join(root, 'registry.git');
  git(root, 'clone', '-q', '--bare', reg, bare);
  server = await serveGitHttp(root);
  cache = tempDir('mg-cache-');
});
afterAll(() => server?.close());

describe('--registry <git-url> with no git on PATH', () => {
  it('shows, lists, resolves and validates the remote tip, then fetches only what changed', { timeout: 360_000 }, async () => {
    const url = `${server.url}/registry.git`;
    expect(spawnSync('git', ['--version'], { env: { PATH: '/nonexistent' } }).error).toBeDefined();

    const show = await run(['--json', 'show', 'fraud@staging', '--registry', url]);
    expect(show.stderr).toBe('');
    expect(show.code).toBe(0);
    expect(show.json).toMatchObject({ model: 'fraud', version: 2, stage: 'Staging', metrics: { auc: 0.9 } });
    const first = packs();
    expect(first).toHaveLength(1);

    // The folder texts kept beside the objects are sealed under the cache's key: a tampered entry,
    // resealed as anyone without the key could, is read again, never believed.
    const [remote] = readdirSync(join(cache, 'remotes'));
    const folders = join(cache, 'remotes', remote!, 'modelgate', 'folders');
    const kept = readdirSync(folders);
    expect(kept.length).toBeGreaterThan(0);
    for (const f of kept) {
      const texts = JSON.parse(gunzipSync(readFileSync(join(folders, f))).toString('utf8')).texts;
      for (const name of Object.keys(texts)) texts[name] = texts[name].replace(/stage: \w+/, 'stage: Production');
      const seal = createHash('sha256')
        .update(`${f.replace(/\.json\.gz$/, '')}\n${JSON.stringify(texts)}`)
        .digest('hex');
      writeFileSync(join(folders, f), gzipSync(JSON.stringify({ seal, texts })));
    }
    expect((await run(['--json', 'show', 'fraud@staging', '--registry', url])).json).toMatchObject({ version: 2, stage: 'Staging' });
    expect((await run(['show', 'fraud@production', '--registry', url])).code).toBe(1);

    const list = await run(['--json', 'list', '--registry', url]);
    expect(list.code).toBe(0);
    expect(list.json.map((v: { version: number; stage: string }) => `${v.version}:${v.stage}`)).toEqual(['1:None', '2:Staging']);
    expect((await run(['--json', 'list', '--stage', 'Staging', '--registry', url])).json.map((v: { version: number }) => v.version)).toEqual([2]);
    const local = await cli(reg, ['--json', 'resolve', 'fraud@1']);
    expect((await run(['--json', 'resolve', 'fraud@1', '--registry', url])).json).toEqual(local.json);
    expect(await run(['validate', '--registry', url])).toMatchObject({ code: 0, stdout: expect.stringMatching(/files? checked, all valid/) });
    expect((await run(['--json', 'diff', 'fraud@1', 'fraud@2', '--registry', url])).code).toBe(0);
    // Nothing changed on the remote: no pack came down for any of those calls.
    expect(packs()).toEqual(first);

    // A new version on the remote is seen, and only the objects it changed are fetched.
    const before = git(reg, 'rev-parse', 'HEAD');
    const a = randomFile(tempDir(), 'model.onnx', 2_000);
    expect((await cli(reg, ['register', 'fraud', a.path])).code).toBe(0);
    git(reg, 'push', '-q', bare, 'main');
    const changed = git(reg, 'rev-list', '--objects', `${before}..HEAD`).split('\n').length;
    const latest = await run(['--json', 'show', 'fraud@latest', '--registry', url]);
    expect(latest.stderr).toBe('');
    expect(latest.code).toBe(0);
    expect(latest.json).toMatchObject({ version: 3, stage: 'None' });
    const after = packs();
    expect(after).toHaveLength(2);
    const added = after.find((p) => !first.some((f) => f.name === p.name))!;
    expect(added.objects).toBeLessThanOrEqual(changed);
    expect(added.objects).toBeLessThan(first[0]!.objects);
  });

  it('refuses what a shallow read cannot answer (exit 2), and names a failed remote (exit 3) without the token', { timeout: 180_000 }, async () => {
    const url = `${server.url}/registry.git`;
    for (const args of [
      ['history', 'fraud'],
      ['show', 'fraud@1', '--at', '2026-01-01'],
      ['promote', 'fraud@1', '--to', 'Staging'],
      ['verify', '--decisions'],
      ['validate', 'models'],
    ]) {
      const r = await run([...args, '--registry', url]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/needs a clone|whole registry/);
    }

    // A bare model name is refused before the remote is read.
    for (const args of [
      ['resolve', 'fraud'],
      ['pull', 'fraud', '-o', join(tempDir(), 'm')],
      ['show', 'fraud'],
    ]) {
      const r = await run(['--json', ...args, '--registry', `${server.url}/nope.git`]);
      expect({ args, code: r.code, error: r.json.error.code }).toEqual({ args, code: 2, error: 'E_BARE_MODEL_REF' });
    }

    const missing = await run(['show', 'fraud@1', '--registry', `${server.url}/nope.git`], { MODELGATE_GIT_TOKEN: 'sekrit-token-123' });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(new RegExp(`git remote ${server.url}/nope.git: HTTP 404`));
    expect(missing.stderr).not.toContain('sekrit');

    const refused = await run(['show', 'fraud@1', '--registry', 'http://127.0.0.1:9/registry.git']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/git remote http:\/\/127\.0\.0\.1:9\/registry\.git: cannot fetch: ECONNREFUSED/);

    // A remote that accepts the connection and never answers: given up after MODELGATE_IO_TIMEOUT seconds.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const started = Date.now();
    const stalled = await run(['show', 'fraud@1', '--registry', `http://127.0.0.1:${(silent.address() as AddressInfo).port}/registry.git`], {
      MODELGATE_IO_TIMEOUT: '1',
    });
    silent.close();
    expect(stalled.code).toBe(3);
    expect(stalled.stderr).toMatch(/git remote made no progress for 1 s while fetching http:\/\/127\.0\.0\.1:\d+\/registry\.git/);
    // Far below what a socket waits on its own (forever), far above what a loaded machine adds to the 1 s.
    expect(Date.now() - started).toBeLessThan(60_000);

    const branch = await run(['show', 'fraud@1', '--registry', `${url}#no-such-branch`]);
    expect(branch.code).toBe(3);
    expect(branch.stderr).toMatch(/no branch no-such-branch/);
  });
});

describe('the remote-read cache repairs itself', () => {
  /** The one remote's folder in cache folder `dir`. */
  const gitdir = (dir: string) => join(dir, 'remotes', readdirSync(join(dir, 'remotes'))[0]!);
  const packFile = (dir: string, ext: string) => {
    const packs = join(gitdir(dir), 'objects', 'pack');
    return join(
      packs,
      readdirSync(packs).find((f) => f.endsWith(ext))!,
    );
  };
  const looseTree = (dir: string) => {
    const objects = join(gitdir(dir), 'objects');
    const sub = readdirSync(objects).find((d) => /^[0-9a-f]{2}$/.test(d))!;
    return join(objects, sub, readdirSync(join(objects, sub))[0]!);
  };
  const flip = (path: string) => {
    const bytes = readFileSync(path);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(path, bytes);
  };
  const fifo = (path: string) => {
    rmSync(path);
    execFileSync('mkfifo', [path]);
  };
  const damage: Array<[string, (dir: string) => void]> = [
    ['a flipped byte in the pack', (dir) => flip(packFile(dir, '.pack'))],
    ['a flipped byte in the pack index', (dir) => flip(packFile(dir, '.idx'))],
    ['a pack cut short', (dir) => writeFileSync(packFile(dir, '.pack'), readFileSync(packFile(dir, '.pack')).subarray(0, 100))],
    ['a flipped byte in a loose object', (dir) => flip(looseTree(dir))],
    ['a FIFO in place of the pack', (dir) => fifo(packFile(dir, '.pack'))],
    [
      'a pack it did not fetch, beside its own',
      (dir) => void execFileSync('git', ['pack-objects', '--revs', '-q', join(gitdir(dir), 'objects', 'pack', 'pack')], { cwd: reg, input: 'HEAD\n' }),
    ],
    ['a FIFO in place of the ref of the fetched tip', (dir) => fifo(join(gitdir(dir), 'refs', 'heads', 'modelgate-tip'))],
  ];

  it.each(damage)('%s: the next command answers, and so does the one after', { timeout: 300_000 }, async (_, harm) => {
    const url = `${server.url}/registry.git`;
    const dir = tempDir('mg-cache-');
    const list = () => run(['--json', 'list', '--registry', url], { MODELGATE_CACHE: dir });
    const sound = await list();
    expect(sound.code, sound.stderr).toBe(0);
    harm(dir);
    const packs = () => readdirSync(join(gitdir(dir), 'objects', 'pack')).sort();
    const after: string[][] = [];
    for (let i = 0; i < 2; i++) {
      const r = await list();
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.json).toEqual(sound.json);
      after.push(packs());
    }
    // Repaired once for good: the call after the repair fetched nothing again.
    expect(after[1]).toEqual(after[0]);
  });
});
