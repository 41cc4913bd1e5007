import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ModelgateError, ExitCode, serviceError } from '../errors.js';
import { ioTimeoutSeconds, stallError } from '../io-timeout.js';
import { ObjectStream } from './object-stream.js';

export interface GitRunOptions {
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  /** Exit codes that are answers rather than failures (e.g. 1 for `diff --quiet`). */
  okCodes?: number[];
}

export interface GitResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Identity {
  name: string;
  email: string;
}

export const BOT_IDENTITY: Identity = { name: 'modelgate[bot]', email: 'modelgate[bot]@users.noreply.github.com' };

/** Blobs kept in memory once read: manifest-sized ones, up to a total that a CLI can spare. */
const BLOB_CACHE = { maxBlob: 1 << 20, maxBytes: 16 << 20 };

/** One change to a file in a commit: new content, or `null` to delete it. */
export type FileChanges = Record<string, string | null>;

/** An annotated tag as `annotatedTags` reads it (`tagger` and `date` absent for a lightweight tag). */
export interface TagRecord {
  name: string;
  /** The commit the tag points to. */
  commit: string;
  tagger?: Identity;
  /** ISO 8601 with the tagger's offset. */
  date?: string;
  message: string;
}

/**
 * The registry repository, through the git command line. git is on every CI runner and is far
 * faster than walking objects in-process on registries of 100,000 manifests; every call goes
 * through `run`, which turns failures into typed errors without echoing credentials.
 */
export class GitRepo {
  private readonly blobCache = new Map<string, Buffer>();
  private blobCacheBytes = 0;
  private located?: Promise<{ prefix: string; gitDir: string } | undefined>;
  private stream?: ObjectStream;

  constructor(readonly dir: string) {}

  /** The repository's one object stream (`git cat-file --batch-command`), started on first use. */
  private get objects(): ObjectStream {
    return (this.stream ??= new ObjectStream(this.dir, { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' }));
  }

  run(args: string[], options: GitRunOptions = {}): Promise<GitResult> {
    const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', ...options.env };
    // Network operations are bounded by MODELGATE_IO_TIMEOUT without progress: curl's low-speed
    // limit ends an HTTP transfer that moves under 1 byte/s for that long, and a timer reset by
    // any output ends a process (ssh, a stalled helper) that goes silent for that long.
    const network = REMOTE_OPS.includes(args[0] ?? '');
    const seconds = ioTimeoutSeconds(env);
    const argv = network ? ['-c', 'http.lowSpeedLimit=1', '-c', `http.lowSpeedTime=${Math.max(1, Math.ceil(seconds))}`, ...args] : args;
    return new Promise((resolve, reject) => {
      const child = spawn('git', argv, { cwd: this.dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let stalled = false;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        if (!network) return;
        clearTimeout(timer);
        // The process timer allows curl's own bound to fire first and be reported.
        timer = setTimeout(
          () => {
            stalled = true;
            child.kill('SIGKILL');
          },
          seconds * 1000 + 2000,
        );
      };
      arm();
      child.stdout.on('data', (b: Buffer) => (out.push(b), arm()));
      child.stderr.on('data', (b: Buffer) => (err.push(b), arm()));
      child.on('error', (e) => (clearTimeout(timer), reject(serviceError('E_GIT', `git could not be started: ${e.message}`, e))));
      child.on('close', (code) => {
        clearTimeout(timer);
        const result = { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? -1 };
        if (stalled || (network && code !== 0 && /Operation too slow|Operation timed out|timed out after/i.test(result.stderr))) {
          reject(stallError('the git remote', `running git ${args[0]}`, seconds, { exitCode: result.code }));
        } else if (code === 0 || options.okCodes?.includes(result.code)) resolve(result);
        else reject(gitError(args, result));
      });
      child.stdin.on('error', () => {});
      child.stdin.end(options.input ?? '');
    });
  }

  async out(args: string[], options?: GitRunOptions): Promise<string> {
    return (await this.run(args, options)).stdout;
  }

  /**
   * The output of a local git command as it comes, as the `separator`-ended records of each chunk
   * read (NUL for `-z` listings): a listing of a million entries is never held whole. Throws E_GIT
   * (after the records it produced) when git fails, unless its exit code is one of `okCodes`.
   */
  async *records(args: string[], separator = '\0', okCodes: readonly number[] = []): AsyncGenerator<string[]> {
    const child = spawn('git', args, { cwd: this.dir, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const exited = new Promise<number>((resolve, reject) => {
      child.on('error', (e) => reject(serviceError('E_GIT', `git could not be started: ${e.message}`, e)));
      child.on('close', (code) => resolve(code ?? -1));
    });
    let carry = '';
    // A chunk may end inside a UTF-8 character: the decoder keeps its first bytes for the next one.
    const decoder = new StringDecoder('utf8');
    try {
      for await (const chunk of child.stdout) {
        const parts = (carry + decoder.write(chunk as Buffer)).split(separator);
        carry = parts.pop()!;
        if (parts.length) yield parts;
      }
    } finally {
      // A consumer that stops early ends git too.
      if (child.exitCode === null) child.kill();
    }
    const code = await exited;
    if (code !== 0 && !okCodes.includes(code)) throw gitError(args, { stdout: '', stderr: Buffer.concat(err).toString('utf8'), code });
    if (carry) yield [carry];
  }

  /** Full object id of a revision, or undefined when it does not exist. */
  async resolve(rev: string): Promise<string | undefined> {
    if (rev.startsWith('-')) return undefined;
    return (await this.objects.info(`${rev}^{commit}`))?.oid;
  }

  /** A file's content at a revision, or undefined when the path does not exist there. */
  async readFileAt(rev: string, path: string): Promise<string | undefined> {
    const o = await this.objects.read(`${rev}:${path}`);
    return o?.type === 'blob' ? o.bytes!.toString('utf8') : undefined;
  }

  /**
   * The entries directly in folder `path` of `rev` (root-relative, '' for the top), by name, with
   * their type and id: the tree object read through the object stream, no process of its own.
   * Empty when there is no such folder.
   */
  async treeEntries(rev: string, path: string): Promise<Map<string, { type: string; oid: string }>> {
    const o = await this.objects.read(`${rev}:${path.replace(/(?<!\/)\/+$/, '')}`);
    const map = new Map<string, { type: string; oid: string }>();
    if (o?.type !== 'tree') return map;
    // `<octal mode> <name>\0<raw id>` per entry; the id's length is the object id's.
    const raw = o.bytes!;
    const idLength = o.oid.length / 2;
    for (let at = 0; at < raw.length;) {
      const space = raw.indexOf(32, at);
      const nul = raw.indexOf(0, space);
      const mode = raw.toString('latin1', at, space);
      const name = raw.toString('utf8', space + 1, nul);
      const oid = raw.toString('hex', nul + 1, nul + 1 + idLength);
      map.set(name, { type: mode === '40000' ? 'tree' : mode === '160000' ? 'commit' : 'blob', oid });
      at = nul + 1 + idLength;
    }
    return map;
  }

  /** The bytes of blob `oid` through the object stream (undefined when absent); not kept. */
  async readBlob(oid: string): Promise<Buffer | undefined> {
    const o = await this.objects.read(oid);
    return o?.type === 'blob' ? o.bytes : undefined;
  }

  /** Entries under `path` at `rev` (recursive), with blob ids: a cache key that changes with content. */
  async listTree(rev: string, path: string): Promise<Array<{ path: string; oid: string }>> {
    const r = await this.run(['ls-tree', '-r', '-z', '--full-tree', rev, '--', path], { okCodes: [128] });
    if (r.code !== 0) return [];
    const entries: Array<{ path: string; oid: string }> = [];
    for (const line of r.stdout.split('\0')) {
      if (!line) continue;
      const tab = line.indexOf('\t');
      const [, type, oid] = line.slice(0, tab).split(' ');
      if (type === 'blob') entries.push({ path: line.slice(tab + 1), oid: oid! });
    }
    return entries;
  }

  /** Reads many blobs (by id or `<rev>:<path>`) through the object stream, asked all at once. */
  async readBlobs(oids: string[]): Promise<Map<string, Buffer>> {
    const result = new Map<string, Buffer>();
    // Objects are named by their content, so a blob read once is the answer for the rest of the
    // process: the gate reads the touched model's versions from the base, the merged tree and
    // each rule, mostly the same blobs, and only the first read costs a request.
    const wanted: string[] = [];
    for (const oid of oids) {
      const hit = this.blobCache.get(oid);
      if (hit) result.set(oid, hit);
      else wanted.push(oid);
    }
    const read = await Promise.all(wanted.map((oid) => this.objects.read(oid)));
    wanted.forEach((oid, i) => {
      const o = read[i];
      if (!o?.bytes) return;
      result.set(oid, o.bytes);
      if (o.size <= BLOB_CACHE.maxBlob && this.blobCacheBytes + o.size <= BLOB_CACHE.maxBytes) {
        this.blobCache.set(oid, o.bytes);
        this.blobCacheBytes += o.size;
      }
    });
    return result;
  }

  /** Paths changed between two revisions, with their status letter (A, M, D, R…). */
  async changedFiles(base: string, head: string): Promise<Array<{ status: string; path: string }>> {
    const out = await this.out(['diff', '--name-status', '-z', '--no-renames', base, head]);
    const parts = out.split('\0');
    const files: Array<{ status: string; path: string }> = [];
    for (let i = 0; i + 1 < parts.length; i += 2) files.push({ status: parts[i]!, path: parts[i + 1]! });
    return files;
  }

  /** Who commits here: git's author identity (GIT_AUTHOR_* or user.name/email), or undefined when none is set. */
  async identity(kind: 'AUTHOR' | 'COMMITTER' = 'AUTHOR'): Promise<Identity | undefined> {
    const r = await this.run(['var', `GIT_${kind}_IDENT`], { okCodes: [128] });
    const m = /^(.*?) <(.*)> \d+ [+-]\d{4}$/.exec(r.stdout.trim());
    return r.code === 0 && m && m[1] ? { name: m[1], email: m[2] || `${m[1]}@users.noreply.github.com` } : undefined;
  }

  /**
   * Creates a commit on top of `parent` (or a root commit) that applies `files`, without
   * touching the work tree or the index: a private index file is built from the parent's tree.
   * Retrying against a new parent after a rejected push is just calling this again.
   */
  async commitChanges(opts: {
    parent?: string;
    files: FileChanges;
    message: string;
    author?: Identity;
    committer?: Identity;
    /** The commit's time (ISO 8601), author and committer date alike: an import keeps the original time. */
    date?: string;
  }): Promise<string> {
    const tmp = await mkdtemp(join(tmpdir(), 'modelgate-index-'));
    const env: Record<string, string> = { GIT_INDEX_FILE: join(tmp, 'index') };
    if (opts.date) Object.assign(env, { GIT_AUTHOR_DATE: opts.date, GIT_COMMITTER_DATE: opts.date });
    if (opts.author) Object.assign(env, { GIT_AUTHOR_NAME: opts.author.name, GIT_AUTHOR_EMAIL: opts.author.email });
    const committer = opts.committer ?? opts.author;
    if (committer) Object.assign(env, { GIT_COMMITTER_NAME: committer.name, GIT_COMMITTER_EMAIL: committer.email });
    try {
      if (opts.parent) await this.run(['read-tree', opts.parent], { env });
      const lines: string[] = [];
      for (const [path, content] of Object.entries(opts.files)) {
        if (content === null) {
          lines.push(`0 ${'0'.repeat(40)}\t${path}`);
        } else {
          const oid = (await this.out(['hash-object', '-w', '--stdin'], { input: content })).trim();
          lines.push(`100644 ${oid}\t${path}`);
        }
      }
      await this.run(['update-index', '-z', '--index-info'], { env, input: lines.map((l) => l + '\0').join('') });
      const tree = (await this.out(['write-tree'], { env })).trim();
      const args = ['commit-tree', tree, '-F', '-'];
      if (opts.parent) args.push('-p', opts.parent);
      return (await this.out(args, { env, input: opts.message })).trim();
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * The annotated tags of the repository, oldest first: name, the commit it points to, the tagger,
   * the time and the message. Lightweight tags (no tagger, no time) are listed with `tagger` undefined.
   */
  async annotatedTags(): Promise<TagRecord[]> {
    const fields = [
      '%(refname:strip=2)',
      '%(objecttype)',
      '%(*objectname)',
      '%(objectname)',
      '%(taggername)',
      '%(taggeremail:trim)',
      '%(taggerdate:iso-strict)',
      '%(contents)',
    ];
    const out = await this.out(['for-each-ref', 'refs/tags', '--sort=taggerdate', `--format=${fields.join('%1f')}%1e`]);
    const tags: TagRecord[] = [];
    for (const record of out.split('\x1e')) {
      const [name, type, peeled, object, tagger, email, date, message] = record.replace(/^\n/, '').split('\x1f');
      if (!name) continue;
      if (type !== 'tag') {
        tags.push({ name, commit: object!, message: '' });
        continue;
      }
      tags.push({ name, commit: peeled!, tagger: { name: tagger!, email: email!.replace(/^<|>$/g, '') }, date: date!, message: message!.trimEnd() });
    }
    return tags;
  }

  /**
   * Writes the file or folder `path` of commit `rev` under `dest` (same relative path), blob by
   * blob, streamed; answers false when `rev` has no such path.
   */
  async exportPath(rev: string, path: string, dest: string): Promise<boolean> {
    const entries = await this.listTree(rev, path);
    const clean = path.replace(/(?<!\/)\/+$/, '');
    const inside = entries.filter((e) => e.path === clean || e.path.startsWith(`${clean}/`));
    if (inside.length === 0) return false;
    for (const e of inside) {
      const file = join(dest, e.path);
      await mkdir(dirname(file), { recursive: true });
      await new Promise<void>((resolve, reject) => {
        const child = spawn('git', ['cat-file', 'blob', e.oid], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
        const sink = createWriteStream(file);
        child.stdout.pipe(sink);
        child.on('error', (err) => reject(serviceError('E_GIT', `git could not be started: ${err.message}`, err)));
        let code: number | null = null;
        let closed = false;
        const settle = () => {
          if (code === null || !closed) return;
          if (code === 0) resolve();
          else reject(serviceError('E_GIT', `git cat-file blob ${e.oid} failed (${rev}:${e.path})`));
        };
        child.on('close', (c) => ((code = c ?? -1), settle()));
        sink.on('close', () => ((closed = true), settle()));
        sink.on('error', reject);
      });
    }
    return true;
  }

  /** Every value of the commit-message trailer `key` in the history of `rev` (none before the first commit). */
  async trailerValues(rev: string, key: string): Promise<Set<string>> {
    if (!(await this.resolve(rev))) return new Set();
    const out = await this.out(['log', `--format=%(trailers:key=${key},valueonly,separator=%x00)%x00`, rev]);
    return new Set(
      out
        .split('\0')
        .map((v) => v.trim())
        .filter(Boolean),
    );
  }

  /** Tree id of a commit: equal trees mean a commit would change nothing. */
  async treeOf(commit: string): Promise<string> {
    const o = await this.objects.info(`${commit}^{tree}`);
    if (!o) throw new ModelgateError('E_GIT', `git rev-parse failed: no tree for ${commit}`, ExitCode.content);
    return o.oid;
  }

  /**
   * Moves the checked-out branch forward to `commit`, updating only the files that differ.
   * Refuses (exit 1) when local changes would be overwritten.
   */
  async fastForward(commit: string): Promise<void> {
    await this.run(['merge', '--ff-only', '--quiet', commit]);
  }

  /**
   * Where this folder sits in its work tree (the path from the top, '' there) and the
   * repository's git folder, asked once; undefined outside a work tree.
   */
  location(): Promise<{ prefix: string; gitDir: string } | undefined> {
    this.located ??= this.run(['rev-parse', '--is-inside-work-tree', '--show-prefix', '--absolute-git-dir'], { okCodes: [128] }).then((r) => {
      const [inside, prefix, gitDir] = r.stdout.split('\n');
      return r.code === 0 && inside === 'true' && gitDir ? { prefix: prefix!.replace(/\/$/, ''), gitDir } : undefined;
    });
    return this.located;
  }

  /**
   * The files under `pathspec` whose blob in the index contains any of `words` (fixed strings),
   * as git finds them: in index order (path order), a chunk at a time.
   */
  indexFilesContaining(pathspec: string, words: readonly string[]): AsyncGenerator<string[]> {
    return this.records(['grep', '--cached', '-l', '-z', '-F', ...words.flatMap((w) => ['-e', w]), '--', pathspec], '\0', [1]);
  }

  /**
   * Files under `pathspec` (relative to this folder) that the index does not track, as paths
   * relative to this folder; those git ignores (.gitignore, info/exclude, core.excludesFile) are
   * left out unless `withIgnored`.
   */
  async untrackedFiles(pathspec: string, options: { withIgnored?: boolean } = {}): Promise<string[]> {
    const out = await this.out(['ls-files', '-o', ...(options.withIgnored ? [] : ['--exclude-standard']), '-z', '--', pathspec]);
    return out.split('\0').filter(Boolean);
  }

  /** The work tree's top folder (the repository root). */
  async topLevel(): Promise<string> {
    return (await this.out(['rev-parse', '--show-toplevel'])).trim();
  }

  /** How many commits `head` holds that `base` does not (`base..head`). */
  async commitsAhead(base: string, head: string): Promise<number> {
    return Number((await this.out(['rev-list', '--count', `${base}..${head}`])).trim());
  }

  /** Whether `a` is an ancestor of (or equal to) `b`. */
  async isAncestor(a: string, b: string): Promise<boolean> {
    return (await this.run(['merge-base', '--is-ancestor', a, b], { okCodes: [1] })).code === 0;
  }

  /** Points an unborn checked-out branch at `commit` and checks it out (a registry's first commit). */
  async checkoutUnborn(commit: string): Promise<void> {
    const branch = (await this.run(['symbolic-ref', '--quiet', 'HEAD'], { okCodes: [1] })).stdout.trim() || 'refs/heads/main';
    await this.run(['update-ref', branch, commit]);
    await this.run(['reset', '--quiet', '--keep', commit]).catch(() => {});
  }

  /**
   * Branch names on `remote` under `pattern` (e.g. `modelgate/*`), from `git ls-remote`:
   * what other clones have pushed and not merged. Empty when the remote cannot be asked.
   */
  async remoteBranches(remote: string, pattern: string): Promise<string[]> {
    const r = await this.run(['ls-remote', '--heads', remote, `refs/heads/${pattern}`], { okCodes: [1, 2, 128] });
    if (r.code !== 0) return [];
    return r.stdout
      .split('\n')
      .map((l) => l.split('\t')[1]?.replace(/^refs\/heads\//, ''))
      .filter((b): b is string => !!b);
  }

  async currentBranch(): Promise<string | undefined> {
    const r = await this.run(['symbolic-ref', '--quiet', '--short', 'HEAD'], { okCodes: [1, 128] });
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  /**
   * Pushes `commit` to `remote`'s `branch`, never forcing: `rejected` when the remote moved on
   * (non-fast-forward), so the caller can fetch, rebuild and retry; `up-to-date` when the branch
   * was at `commit` already (porcelain flag `=`): another run made the very same commit (same
   * tree, parent, author and second) and pushed it first.
   */
  async push(remote: string, commit: string, branch: string): Promise<'pushed' | 'rejected' | 'up-to-date'> {
    const r = await this.run(['push', '--porcelain', remote, `${commit}:refs/heads/${branch}`], { okCodes: [1] });
    if (r.code === 0) return /^=\t/m.test(r.stdout) ? 'up-to-date' : 'pushed';
    if (/\[rejected\]|non-fast-forward|fetch first|stale info|cannot lock ref/.test(r.stdout + r.stderr)) return 'rejected';
    throw gitError(['push', remote, branch], r);
  }

  /**
   * Moves `remote`'s `branch` to `commit` only while it still points at `expected` (a lease):
   * replaces a branch modelgate owns (the repair branch) without ever clobbering a newer push.
   */
  async pushReplacing(remote: string, commit: string, branch: string, expected: string): Promise<boolean> {
    const ref = `refs/heads/${branch}`;
    const r = await this.run(['push', '--porcelain', `--force-with-lease=${ref}:${expected}`, remote, `${commit}:${ref}`], { okCodes: [1] });
    if (r.code === 0) return true;
    if (/\[rejected\]|stale info|cannot lock ref/.test(r.stdout + r.stderr)) return false;
    throw gitError(['push', remote, branch], r);
  }

  /**
   * Deletes `remote`'s `branch` only while it still points at `commit` (a lease: a branch someone
   * else moved is left alone). False when the remote refused.
   */
  async deleteRemoteBranch(remote: string, branch: string, commit: string): Promise<boolean> {
    const ref = `refs/heads/${branch}`;
    const r = await this.run(['push', '--porcelain', `--force-with-lease=${ref}:${commit}`, remote, `:${ref}`], { okCodes: [1] });
    if (r.code === 0) return true;
    if (/\[rejected\]|stale info|cannot lock ref/.test(r.stdout + r.stderr)) return false;
    throw gitError(['push', remote, branch], r);
  }

  /**
   * Pushes `commit` as the new branch `branch` of `remote`: false when a branch of that name
   * exists already (an empty lease), whoever made it. Claims a name (a registration's number).
   */
  async pushNewBranch(remote: string, commit: string, branch: string): Promise<boolean> {
    const ref = `refs/heads/${branch}`;
    const r = await this.run(['push', '--porcelain', `--force-with-lease=${ref}:`, remote, `${commit}:${ref}`], { okCodes: [1] });
    if (r.code === 0) return !/^=\t/m.test(r.stdout);
    if (/\[rejected\]|stale info|cannot lock ref|already exists/.test(r.stdout + r.stderr)) return false;
    throw gitError(['push', remote, branch], r);
  }

  /** Whether this clone lacks history: shallow (`--depth`) or partial (`--filter`, objects left on the remote). */
  async missingHistory(): Promise<{ shallow: boolean; partial: boolean }> {
    const shallow = (await this.out(['rev-parse', '--is-shallow-repository'])).trim() === 'true';
    const promisor = await this.run(['config', '--get-regexp', '^(remote\\..*\\.promisor|remote\\..*\\.partialclonefilter|extensions\\.partialclone)$'], {
      okCodes: [1],
    });
    const partial = promisor.stdout.split('\n').some((l) => /^\S+\s+(?!false$)\S/.test(l));
    return { shallow, partial };
  }

  /** Names of the configured remotes. */
  async remotes(): Promise<string[]> {
    return (await this.out(['remote'])).split('\n').filter(Boolean);
  }

  /**
   * Fetches every branch of `remote` and every pull request head it publishes (GitHub's
   * `refs/pull/<n>/head`, into `refs/modelgate/<remote>/pull/<n>`), pruning what the remote
   * deleted: afterwards `rev-list --all` sees every commit the remote's branches and pull
   * requests hold.
   */
  async fetchEveryHead(remote: string): Promise<void> {
    await this.run([
      'fetch',
      '--quiet',
      '--no-tags',
      '--prune',
      remote,
      `+refs/heads/*:refs/remotes/${remote}/*`,
      `+refs/pull/*/head:refs/modelgate/${remote}/pull/*`,
    ]);
  }

  /** Fetches `branch` from `remote` and returns the commit it points at (undefined when absent). */
  async fetchBranch(remote: string, branch: string): Promise<string | undefined> {
    const r = await this.run(['fetch', '--quiet', '--no-tags', remote, `+refs/heads/${branch}:refs/remotes/${remote}/${branch}`], { okCodes: [128] });
    if (r.code !== 0) {
      if (/couldn't find remote ref/i.test(r.stderr)) return undefined;
      throw gitError(['fetch', remote, branch], r);
    }
    return this.resolve(`refs/remotes/${remote}/${branch}`);
  }
}

/**
 * The identity a commit is made with when git has none (the default on CI runners): the CI
 * actor (`GITHUB_ACTOR` → `<actor>@users.noreply.github.com`), else `modelgate`. Returns what
 * to pass to `commitChanges`: nothing when git has both identities, so git's own are used.
 */
export async function commitIdentity(repo: GitRepo, env: NodeJS.ProcessEnv): Promise<{ author?: Identity; committer?: Identity }> {
  const [author, committer] = await Promise.all([repo.identity('AUTHOR'), repo.identity('COMMITTER')]);
  if (author && committer) return {};
  const actor = env.GITHUB_ACTOR && /^[A-Za-z0-9][A-Za-z0-9-]{0,38}(\[bot\])?$/.test(env.GITHUB_ACTOR) ? env.GITHUB_ACTOR : undefined;
  const fallback: Identity = actor
    ? { name: actor, email: `${actor}@users.noreply.github.com` }
    : { name: 'modelgate', email: 'modelgate@users.noreply.github.com' };
  return { author: author ?? fallback, committer: committer ?? author ?? fallback };
}

/** Strips credentials that a remote URL may carry before a message is shown. */
export function redactUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}

const REMOTE_OPS = ['push', 'fetch', 'clone', 'ls-remote', 'pull'];

function gitError(args: string[], result: GitResult): ModelgateError {
  const remoteOp = REMOTE_OPS.includes(args[0] ?? '');
  const detail = redactUrl(result.stderr.trim().split('\n').filter(Boolean).slice(-3).join('; '));
  return new ModelgateError(
    remoteOp ? 'E_GIT_REMOTE' : 'E_GIT',
    `git ${args[0]} failed${detail ? `: ${detail}` : ''}`,
    remoteOp ? ExitCode.service : ExitCode.content,
    { exitCode: result.code },
  );
}

/** Bounded, jittered backoff for retrying a rejected push. */
export async function backoff(attempt: number, baseMs = 100, capMs = 3000): Promise<void> {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  await new Promise((r) => setTimeout(r, Math.random() * ceiling));
}
