import { execFileSync } from 'node:child_process';

/**
 * The few git plumbing reads and writes the GitHub emulator needs in a bare repository.
 * Synchronous on purpose: the emulator answers one request at a time, like a tiny GitHub,
 * and the control API (`pull.head.sha`) stays a plain property read.
 */
export class BareRepo {
  constructor(readonly gitDir: string) {}

  private git(args: string[], env: Record<string, string> = {}): string {
    return execFileSync('git', ['--git-dir', this.gitDir, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
  }

  private tryGit(args: string[]): { ok: boolean; stdout: string } {
    try {
      return { ok: true, stdout: this.git(args) };
    } catch (err) {
      const stdout = (err as { stdout?: string }).stdout;
      return { ok: false, stdout: typeof stdout === 'string' ? stdout : '' };
    }
  }

  /** The commit a branch points at, or undefined when there is no such branch. */
  branchSha(branch: string): string | undefined {
    const r = this.tryGit(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`]);
    return r.ok ? r.stdout.trim() : undefined;
  }

  /** The commit `rev` names (a sha, a branch, any revision), or undefined. */
  resolve(rev: string): string | undefined {
    const r = this.tryGit(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
    return r.ok ? r.stdout.trim() : undefined;
  }

  hasCommit(sha: string): boolean {
    return this.tryGit(['cat-file', '-e', `${sha}^{commit}`]).ok;
  }

  setBranch(branch: string, sha: string): void {
    this.setRef(`refs/heads/${branch}`, sha);
  }

  setRef(ref: string, sha: string): void {
    this.git(['update-ref', ref, sha]);
  }

  /** Copies `ref` of another repository into `localRef` of this one (GitHub's refs/pull/N/head). */
  fetchInto(otherGitDir: string, ref: string, localRef: string): void {
    this.git(['fetch', '--quiet', '--no-tags', otherGitDir, `+${ref}:${localRef}`]);
  }

  mergeBase(a: string, b: string): string | undefined {
    const r = this.tryGit(['merge-base', a, b]);
    return r.ok ? r.stdout.trim() : undefined;
  }

  /** Commits reachable from `head` but not from `base`. */
  countCommits(base: string, head: string): number {
    return Number.parseInt(this.git(['rev-list', '--count', `${base}..${head}`]).trim(), 10);
  }

  /** Commits reachable from `head` but not from `base`, oldest first, as GitHub lists a pull request's. */
  commits(base: string, head: string): GitCommit[] {
    const out = this.git(['log', '--reverse', '-z', '--format=%H%x1f%T%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%B', `${base}..${head}`]);
    return out
      .split('\0')
      .filter(Boolean)
      .map((record) => {
        const [sha, tree, parents, an, ae, ad, cn, ce, cd, message] = record.split('\x1f');
        return {
          sha: sha!.trim(),
          tree: tree!,
          parents: parents ? parents.split(' ') : [],
          author: { name: an!, email: ae!, date: ad! },
          committer: { name: cn!, email: ce!, date: cd! },
          message: message!.replace(/\n$/, ''),
        };
      });
  }

  /** The tree of merging `theirs` into `ours`, or undefined when the merge conflicts. */
  mergeTree(ours: string, theirs: string): string | undefined {
    const r = this.tryGit(['merge-tree', '--write-tree', '--no-messages', ours, theirs]);
    if (!r.ok) return undefined;
    return r.stdout.split('\n')[0]?.trim() || undefined;
  }

  treeOf(commit: string): string {
    return this.git(['rev-parse', `${commit}^{tree}`]).trim();
  }

  commitTree(tree: string, parents: string[], message: string, author: { name: string; email: string; date: string }): string {
    const args = ['commit-tree', tree, ...parents.flatMap((p) => ['-p', p]), '-m', message];
    return this.git(args, {
      GIT_AUTHOR_NAME: author.name,
      GIT_AUTHOR_EMAIL: author.email,
      GIT_AUTHOR_DATE: author.date,
      GIT_COMMITTER_NAME: 'GitHub',
      GIT_COMMITTER_EMAIL: 'noreply@github.com',
      GIT_COMMITTER_DATE: author.date,
    }).trim();
  }

  /** Moves a branch only if it still points at `expected`; false when someone moved it first. */
  compareAndSwap(branch: string, sha: string, expected: string): boolean {
    return this.tryGit(['update-ref', `refs/heads/${branch}`, sha, expected]).ok;
  }

  /** The changed files between two commits, as `git diff --raw --numstat` reports them. */
  diff(from: string, to: string): DiffFile[] {
    const raw = this.git(['diff', '--raw', '-z', '--no-abbrev', '-M', from, to]).split('\0');
    const files: DiffFile[] = [];
    for (let i = 0; i + 1 < raw.length;) {
      const meta = raw[i++]!;
      if (!meta.startsWith(':')) continue;
      const [, , oldSha, newSha, code] = meta.slice(1).split(' ');
      const letter = code![0]!;
      const renamed = letter === 'R' || letter === 'C';
      const first = raw[i++]!;
      const second = renamed ? raw[i++]! : undefined;
      files.push({
        filename: second ?? first,
        previousFilename: renamed ? first : undefined,
        status: STATUS[letter] ?? 'modified',
        sha: /^0+$/.test(newSha!) ? oldSha! : newSha!,
        additions: 0,
        deletions: 0,
      });
    }
    const numstat = this.git(['diff', '--numstat', '-z', '-M', from, to]).split('\0');
    let n = 0;
    for (let i = 0; i < numstat.length && n < files.length;) {
      const entry = numstat[i++]!;
      if (!entry) continue;
      const [add, del, path] = entry.split('\t');
      if (path === '') i += 2; // a rename: the two names follow as separate fields
      const file = files[n++]!;
      file.additions = add === '-' ? 0 : Number(add);
      file.deletions = del === '-' ? 0 : Number(del);
    }
    return files;
  }
}

export interface DiffFile {
  filename: string;
  previousFilename?: string;
  status: 'added' | 'removed' | 'modified' | 'renamed' | 'copied' | 'changed';
  sha: string;
  additions: number;
  deletions: number;
}

const STATUS: Record<string, DiffFile['status']> = {
  A: 'added',
  D: 'removed',
  M: 'modified',
  R: 'renamed',
  C: 'copied',
  T: 'changed',
};

export interface GitCommit {
  sha: string;
  tree: string;
  parents: string[];
  author: { name: string; email: string; date: string };
  committer: { name: string; email: string; date: string };
  message: string;
}
