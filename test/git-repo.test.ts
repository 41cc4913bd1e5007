import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GitRepo } from '../src/git/repo.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

function remoteAndClone() {
  const root = mkdtempSync(join(tmpdir(), 'mg-gitrepo-'));
  const bare = join(root, 'remote.git');
  git(root, 'init', '--quiet', '--bare', '-b', 'main', bare);
  const work = join(root, 'work');
  git(root, 'init', '--quiet', '-b', 'main', work);
  git(work, 'config', 'user.name', 'maria');
  git(work, 'config', 'user.email', 'maria@example.com');
  writeFileSync(join(work, 'a.txt'), 'a\n');
  git(work, 'add', '.');
  git(work, 'commit', '--quiet', '-m', 'first');
  git(work, 'remote', 'add', 'origin', bare);
  git(work, 'push', '--quiet', 'origin', 'main');
  return { bare, work, repo: new GitRepo(work) };
}

describe('GitRepo.push', () => {
  it('answers rejected (retry after a fetch) when the remote moved on, up-to-date when it holds the commit already', async () => {
    const { bare, work, repo } = remoteAndClone();
    const base = git(work, 'rev-parse', 'HEAD');
    const ours = await repo.commitChanges({ parent: base, files: { 'b.txt': 'b\n' }, message: 'ours' });
    const theirs = await repo.commitChanges({ parent: base, files: { 'c.txt': 'c\n' }, message: 'theirs' });
    expect(await repo.push('origin', theirs, 'main')).toBe('pushed');
    expect(await repo.push('origin', ours, 'main')).toBe('rejected');
    expect(git(bare, 'rev-parse', 'main')).toBe(theirs);
    // The very commit another run pushed first: nothing of this run's landed.
    expect(await repo.push('origin', theirs, 'main')).toBe('up-to-date');
  });

  it('answers rejected when another push holds the remote ref lock, instead of failing as an outage', async () => {
    const { bare, work, repo } = remoteAndClone();
    const ours = await repo.commitChanges({ parent: git(work, 'rev-parse', 'HEAD'), files: { 'b.txt': 'b\n' }, message: 'ours' });
    writeFileSync(join(bare, 'refs', 'heads', 'main.lock'), '');
    expect(await repo.push('origin', ours, 'main')).toBe('rejected');
  });

  it('throws a typed exit-3 error, with credentials redacted, when the remote cannot be reached', async () => {
    const { work, repo } = remoteAndClone();
    git(work, 'remote', 'set-url', 'origin', 'http://user:s3cret@127.0.0.1:9/nowhere.git');
    const err = await repo.push('origin', git(work, 'rev-parse', 'HEAD'), 'main').catch((e) => e);
    expect(err.code).toBe('E_GIT_REMOTE');
    expect(err.exit).toBe(3);
    expect(err.message).not.toContain('s3cret');
  });
});

describe('GitRepo.commitChanges', () => {
  it('builds a commit from the parent tree plus the changes, leaving the work tree and index alone', async () => {
    const { work, repo } = remoteAndClone();
    const head = git(work, 'rev-parse', 'HEAD');
    const commit = await repo.commitChanges({
      parent: head,
      files: { 'dir/new.txt': 'new\n', 'a.txt': null },
      message: 'change',
      author: { name: 'bot', email: 'bot@example.com' },
    });
    expect(git(work, 'ls-tree', '-r', '--name-only', commit)).toBe('dir/new.txt');
    expect(git(work, 'log', '-1', '--format=%an|%s', commit)).toBe('bot|change');
    expect(git(work, 'rev-parse', 'HEAD')).toBe(head);
    expect(git(work, 'status', '--porcelain')).toBe('');
  });
});

describe('a commit identity that always works (CI runners have none)', () => {
  const CLI = join(import.meta.dirname, '../dist/cli.js');
  /** A runner-like environment: an empty HOME, no system config, no GIT_* identity. */
  const runnerEnv = (home: string, extra: Record<string, string> = {}) => ({ PATH: process.env.PATH!, HOME: home, GIT_CONFIG_NOSYSTEM: '1', ...extra });

  it('register --push after the upload commits as the CI actor and records the registrant', async () => {
    const root = mkdtempSync(join(tmpdir(), 'mg-ident-'));
    const bare = join(root, 'remote.git');
    const seed = join(root, 'seed');
    git(root, 'init', '--quiet', '--bare', '-b', 'main', bare);
    git(root, 'init', '--quiet', '-b', 'main', seed);
    writeFileSync(
      join(seed, 'modelgate.yaml'),
      `apiVersion: modelgate.dev/v1\nkind: Registry\nstorage:\n  uri: ${JSON.stringify(pathToFileURL(join(root, 'store')).href)}\n`,
    );
    git(seed, 'add', '.');
    execFileSync('git', ['-c', 'user.name=seed', '-c', 'user.email=seed@example.com', 'commit', '--quiet', '-m', 'registry'], { cwd: seed });
    git(seed, 'push', '--quiet', bare, 'main');
    const home = mkdtempSync(join(tmpdir(), 'mg-emptyhome-'));
    const work = join(root, 'work');
    execFileSync('git', ['clone', '--quiet', bare, work], { env: runnerEnv(home) });
    // git itself refuses to commit here: the state every CI runner starts in.
    expect(() => execFileSync('git', ['var', 'GIT_AUTHOR_IDENT'], { cwd: work, env: runnerEnv(home), stdio: 'pipe' })).toThrow();
    writeFileSync(join(root, 'm.bin'), 'weights');
    const out = execFileSync(process.execPath, [CLI, 'register', 'churn', join(root, 'm.bin'), '--push', '--json'], {
      cwd: work,
      env: runnerEnv(home, { GITHUB_ACTOR: 'octo-ci' }),
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toMatchObject({ ref: 'churn@1', pushed: true });
    expect(git(bare, 'log', '-1', '--format=%an <%ae>|%cn', 'main')).toBe('octo-ci <octo-ci@users.noreply.github.com>|octo-ci');
    expect(git(bare, 'show', 'main:models/churn/versions/1.yaml')).toMatch(/^createdBy: octo-ci$/m);
    // Without a CI actor: `modelgate`.
    writeFileSync(join(root, 'm2.bin'), 'weights 2');
    execFileSync(process.execPath, [CLI, 'register', 'churn', join(root, 'm2.bin'), '--push'], { cwd: work, env: runnerEnv(home), encoding: 'utf8' });
    expect(git(bare, 'log', '-1', '--format=%an <%ae>', 'main')).toBe('modelgate <modelgate@users.noreply.github.com>');
  });
});

describe('GitRepo.readBlobs', () => {
  it('answers a blob read before from memory, and still reads the others from git', async () => {
    const { work, repo } = remoteAndClone();
    const a = git(work, 'rev-parse', 'HEAD:a.txt');
    const b = execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: work, input: 'b\n', encoding: 'utf8' }).trim();
    expect((await repo.readBlobs([a])).get(a)?.toString()).toBe('a\n');
    // With the object gone from the repository, only the cache can still answer for `a`.
    const path = join(work, '.git', 'objects', a.slice(0, 2), a.slice(2));
    rmSync(path);
    const again = await repo.readBlobs([a, b]);
    expect(again.get(a)?.toString()).toBe('a\n');
    expect(again.get(b)?.toString()).toBe('b\n');
    expect((await new GitRepo(work).readBlobs([a])).has(a)).toBe(false);
  });
});

describe('the object stream (one git cat-file --batch-command per repository)', () => {
  it('reads blobs, rev:path, folders and commits in order, binary and large ones whole, and answers undefined for what is absent', async () => {
    const { work, repo } = remoteAndClone();
    const big = Buffer.alloc(3 << 20, 7); // several pipe chunks
    const binary = Buffer.from([0, 10, 13, 255, 10, 0]);
    writeFileSync(join(work, 'big.bin'), big);
    writeFileSync(join(work, 'bin.dat'), binary);
    git(work, 'add', '.');
    git(work, 'commit', '--quiet', '-m', 'second');
    const head = git(work, 'rev-parse', 'HEAD');
    // Asked all at once, before any answer: one batch, answered in order.
    const [a, b, gone, bigBlob] = await Promise.all([
      repo.readFileAt('HEAD', 'a.txt'),
      repo.readBlob(git(work, 'rev-parse', 'HEAD:bin.dat')),
      repo.readFileAt('HEAD', 'nope.txt'),
      repo.readBlob(git(work, 'rev-parse', 'HEAD:big.bin')),
    ]);
    expect(a).toBe('a\n');
    expect(b?.equals(binary)).toBe(true);
    expect(gone).toBeUndefined();
    expect(bigBlob?.equals(big)).toBe(true);
    expect(await repo.resolve('HEAD')).toBe(head);
    expect(await repo.resolve('no-such-branch')).toBeUndefined();
    expect(await repo.treeOf(head)).toBe(git(work, 'rev-parse', 'HEAD^{tree}'));
    const root = await repo.treeEntries(head, '');
    expect([...root.keys()].sort()).toEqual(['a.txt', 'big.bin', 'bin.dat']);
    expect(root.get('a.txt')).toEqual({ type: 'blob', oid: git(work, 'rev-parse', 'HEAD:a.txt') });
    expect((await repo.treeEntries(head, 'a.txt')).size).toBe(0); // a file is no folder
    // A folder is not a file, and a name with a line break is no object.
    expect(await repo.readFileAt('HEAD', '')).toBeUndefined();
    expect(await repo.readFileAt('HEAD', 'a.txt\ninfo HEAD')).toBeUndefined();
  });

  it('answers undefined in a folder that is no repository (as rev-parse --verify --quiet does), and works again once it is one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-norepo-'));
    const repo = new GitRepo(dir);
    expect(await repo.resolve('HEAD')).toBeUndefined();
    expect(await repo.readFileAt('HEAD', 'a.txt')).toBeUndefined();
    git(dir, 'init', '-q');
    writeFileSync(join(dir, 'a.txt'), 'a\n');
    git(dir, 'add', 'a.txt');
    git(dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'a');
    expect(await repo.readFileAt('HEAD', 'a.txt')).toBe('a\n');
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads 3,000 blobs asked together, and a command using it exits by itself when done', async () => {
    const { work } = remoteAndClone();
    const oids = execFileSync('git', ['hash-object', '-w', '--stdin-paths'], {
      cwd: work,
      input: Array.from({ length: 3000 }, (_, i) => {
        const f = join(work, `f${i}`);
        writeFileSync(f, `file ${i}\n`.repeat(i % 7));
        return f;
      }).join('\n'),
      encoding: 'utf8',
    })
      .trim()
      .split('\n');
    const blobs = await new GitRepo(work).readBlobs(oids);
    expect(oids.every((oid, i) => blobs.get(oid)?.toString() === `file ${i}\n`.repeat(i % 7))).toBe(true);
    // A Node process that read through the stream ends without being told to: an idle stream holds nothing open.
    // (The built library, dist/index.js, as a program using it imports it.)
    const script = `import { GitRepo } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../dist/index.js')).href)};
      const r = new GitRepo(${JSON.stringify(work)});
      console.log((await r.readFileAt('HEAD', 'a.txt')).trim());`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(out.trim()).toBe('a');
  });
});

describe('GitRepo: the named commands that replaced raw git lists', () => {
  it('reads commits: parents and first-parent tree (none for a root), the last commit touching a path, the blob at a path, the date', async () => {
    const { work, repo } = remoteAndClone();
    const root = git(work, 'rev-parse', 'HEAD');
    const second = await repo.commitChanges({
      parent: root,
      files: { 'models/m/versions/1.yaml': 'v: 1\n' },
      message: 'register m@1 (#7)',
      author: { name: 'ana', email: 'ana@example.com' },
      committer: { name: 'bot', email: 'bot@example.com' },
      date: '2026-11-27T10:00:00+01:00',
    });
    expect(await repo.parentsOf(root)).toEqual([]);
    expect(await repo.parentsOf(second)).toEqual([root]);
    expect(await repo.firstParentTree(root)).toBeUndefined();
    expect(await repo.firstParentTree(second)).toBe(await repo.treeOf(root));
    expect(await repo.lastCommitTouching(second, ['models/m/versions/1.yaml'], { firstParent: true })).toEqual({
      commit: second,
      author: { name: 'ana', email: 'ana@example.com' },
      committer: { name: 'bot', email: 'bot@example.com' },
      message: 'register m@1 (#7)\n',
    });
    expect(await repo.lastCommitTouching(second, ['models/m/versions/1.yaml'], { exclude: second })).toBeUndefined();
    expect(await repo.lastCommitTouching('no-such-rev', ['a.txt'])).toBeUndefined();
    expect(await repo.firstParentCommitsTouching(second, 'a.txt')).toEqual([root]);
    expect(await repo.blobIdAt(second, 'models/m/versions/1.yaml')).toBe(git(work, 'rev-parse', `${second}:models/m/versions/1.yaml`));
    expect(await repo.blobIdAt(second, 'models/m')).toBeUndefined();
    expect(Date.parse(await repo.commitDate(second))).toBe(Date.parse('2026-11-27T10:00:00+01:00'));
    expect(await repo.lastCommitBefore(second, Date.parse('2026-11-27T08:59:59Z') / 1000)).toBeUndefined();
    expect(await repo.lastCommitBefore(second, Date.parse('2026-11-27T09:00:00Z') / 1000)).toBe(second);
    const reached = new Map<string, string>();
    git(work, 'update-ref', 'refs/heads/side', second);
    for await (const batch of repo.reachableObjects()) for (const o of batch) reached.set(o.path, o.oid);
    expect(reached.get('models/m/versions/1.yaml')).toBe(await repo.blobIdAt(second, 'models/m/versions/1.yaml'));
  });

  it('merges two commits as git merge-tree does: the tree, or the conflicted paths', async () => {
    const { work, repo } = remoteAndClone();
    const base = git(work, 'rev-parse', 'HEAD');
    const ours = await repo.commitChanges({ parent: base, files: { 'a.txt': 'ours\n' }, message: 'ours' });
    const theirs = await repo.commitChanges({ parent: base, files: { 'a.txt': 'theirs\n' }, message: 'theirs' });
    const other = await repo.commitChanges({ parent: base, files: { 'b.txt': 'b\n' }, message: 'other' });
    expect(await repo.mergeTrees(ours, theirs)).toEqual({ conflicts: ['a.txt'] });
    const merged = await repo.mergeTrees(ours, other);
    expect('tree' in merged && (await repo.changedFiles(ours, merged.tree))).toEqual([{ status: 'A', path: 'b.txt' }]);
  });

  it('reads the work tree against the index: modified, untracked and staged files, and a tracked change', async () => {
    const { work, repo } = remoteAndClone();
    expect(await repo.hasTrackedChanges()).toBe(false);
    writeFileSync(join(work, 'a.txt'), 'changed\n');
    writeFileSync(join(work, 'new.txt'), 'new\n');
    expect(await repo.modifiedFiles('.')).toEqual(['a.txt']);
    expect(await repo.untrackedFiles('.')).toEqual(['new.txt']);
    expect(await repo.hasTrackedChanges()).toBe(true);
    const containing: string[] = [];
    for await (const chunk of repo.indexFilesContaining('.', ['a\n'])) containing.push(...chunk);
    expect(containing).toEqual(['a.txt']);
    const entries: string[] = [];
    for await (const chunk of repo.indexEntries('.')) entries.push(...chunk);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatch(/^H 100644 [0-9a-f]{40} 0\ta\.txt$/);
    expect(await repo.remoteUrl('origin')).toMatch(/remote\.git$/);
    expect(await repo.remoteUrl('upstream')).toBeUndefined();
  });
});
