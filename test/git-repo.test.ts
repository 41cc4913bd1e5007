import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  it('answers false (retry after a fetch) when the remote moved on', async () => {
    const { bare, work, repo } = remoteAndClone();
    const base = git(work, 'rev-parse', 'HEAD');
    const ours = await repo.commitChanges({ parent: base, files: { 'b.txt': 'b\n' }, message: 'ours' });
    const theirs = await repo.commitChanges({ parent: base, files: { 'c.txt': 'c\n' }, message: 'theirs' });
    expect(await repo.push('origin', theirs, 'main')).toBe(true);
    expect(await repo.push('origin', ours, 'main')).toBe(false);
    expect(git(bare, 'rev-parse', 'main')).toBe(theirs);
  });

  it('answers false when another push holds the remote ref lock, instead of failing as an outage', async () => {
    const { bare, work, repo } = remoteAndClone();
    const ours = await repo.commitChanges({ parent: git(work, 'rev-parse', 'HEAD'), files: { 'b.txt': 'b\n' }, message: 'ours' });
    writeFileSync(join(bare, 'refs', 'heads', 'main.lock'), '');
    expect(await repo.push('origin', ours, 'main')).toBe(false);
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
    const commit = await repo.commitChanges({ parent: head, files: { 'dir/new.txt': 'new\n', 'a.txt': null }, message: 'change', author: { name: 'bot', email: 'bot@example.com' } });
    expect(git(work, 'ls-tree', '-r', '--name-only', commit)).toBe('dir/new.txt');
    expect(git(work, 'log', '-1', '--format=%an|%s', commit)).toBe('bot|change');
    expect(git(work, 'rev-parse', 'HEAD')).toBe(head);
    expect(git(work, 'status', '--porcelain')).toBe('');
  });
});
