import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ModelgateError, ExitCode, serviceError } from '../errors.js';
import { ioTimeoutSeconds, stallError } from '../io-timeout.js';
import { ObjectStream } from './object-stream.js';

interface GitRunOptions {
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  /** Exit codes that are answers rather than failures (e.g. 1 for `diff --quiet`). */
  okCodes?: number[];
}

interface GitResult {
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

  private run(args: string[], options: GitRunOptions = {}): Promise<GitResult> {
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

  private async out(args: string[], options?: GitRunOptions): Promise<string> {
    return (await this.run(args, options)).stdout;
  }

  /**
   * The output of a local git command as it comes, as the `separator`-ended records of each chunk
   * read (NUL for `-z` listings): a listing of a million entries is never held whole. Throws E_GIT
   * (after the records it produced) when git fails, unless its exit code is one of `okCodes`.
   */
  private async *records(args: string[], separator = '\0', okCodes: readonly number[] = []): AsyncGenerator<string[]> {
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

  /** Files under `path` at `rev` ('' for all; recursive, paths from the top), with blob ids: a cache key that changes with content. Empty when `rev` does not exist. */
  async listTree(rev: string, path: string): Promise<Array<{ path: string; oid: string }>> {
    const r = await this.run(['ls-tree', '-r', '-z', '--full-tree', rev, ...(path ? ['--', path] : [])], { okCodes: [128] });
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

  /** Paths changed between two commits or trees, with their status letter (A, M, D…), renames as a delete and an add. */
  async changedFiles(base: string, head: string): Promise<Array<{ status: string; path: string }>> {
    // Two trees, no work tree: git would still load the checkout's index (100,000 entries, most
    // of the time on a big registry), so it is pointed at an index that does not exist.
    const noIndex = { GIT_INDEX_FILE: join(tmpdir(), `modelgate-no-index-${process.pid}`) };
    const out = await this.out(['diff-tree', '-r', '-z', '--no-renames', '--name-status', base, head], { env: noIndex });
    const parts = out.split('\0');
    const files: Array<{ status: string; path: string }> = [];
    for (let i = 0; i + 1 < parts.length; i += 2) files.push({ status: parts[i]!, path: parts[i + 1]! });
    return files;
  }

  /**
   * The tree that merging `head` into `base` gives (`git merge-tree --write-tree`, the merge
   * GitHub performs), or the conflicted paths when they conflict. E_GIT when git is older than 2.38.
   */
  async mergeTrees(base: string, head: string): Promise<{ tree: string } | { conflicts: string[] }> {
    const r = await this.run(['merge-tree', '--write-tree', '--name-only', '--no-messages', base, head], { okCodes: [1] });
    const [tree, ...conflicted] = r.stdout.split('\n').filter(Boolean);
    if (r.code === 1) return { conflicts: [...new Set(conflicted)] };
    if (!tree || !/^[0-9a-f]{40,64}$/.test(tree))
      throw new ModelgateError('E_GIT', 'git merge-tree gave no tree id (git 2.38 or newer is needed)', ExitCode.service);
    return { tree };
  }

  /** The patch from `from` to `to` (commits or trees) of the files under `path`, without colour. */
  async diffText(from: string, to: string, path: string): Promise<string> {
    return this.out(['diff', '--no-color', from, to, '--', path]);
  }

  /** The commits on the first-parent line of `rev` that changed `path`, newest first. */
  async firstParentCommitsTouching(rev: string, path: string): Promise<string[]> {
    return (await this.out(['log', '--first-parent', '--format=%H', rev, '--', path])).split('\n').filter(Boolean);
  }

  /**
   * The newest commit of `rev` that changed one of `paths` (on the first-parent line only with
   * `firstParent`; none that `exclude` reaches): who wrote and committed it and its message.
   * Undefined when no commit did or `rev` does not exist.
   */
  async lastCommitTouching(rev: string, paths: string[], options: { firstParent?: boolean; exclude?: string } = {}): Promise<CommitSummary | undefined> {
    const r = await this.run(
      [
        'log',
        '-1',
        ...(options.firstParent ? ['--first-parent'] : []),
        '--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%B',
        rev,
        ...(options.exclude ? ['--not', options.exclude] : []),
        '--',
        ...paths,
      ],
      { okCodes: [128] },
    );
    const [commit, an, ae, cn, ce, ...message] = r.stdout.split('\0');
    if (r.code !== 0 || !commit) return undefined;
    return { commit, author: { name: an ?? '', email: ae ?? '' }, committer: { name: cn ?? '', email: ce ?? '' }, message: message.join('\0') };
  }

  /**
   * The first-parent history of `rev` for the files under `pathspecs` (relative to this folder),
   * newest first: for each commit `\x1e`, then its id, tree, author name, author email, committer
   * date (ISO 8601) and message, each ended by `\x1f`, then its raw diff against the first parent
   * (`--raw --no-abbrev -z`, no renames). Undefined when `rev` does not exist.
   */
  async firstParentRawLog(rev: string, pathspecs: readonly string[]): Promise<string | undefined> {
    const log = await this.run(
      [
        'log',
        '--first-parent',
        '--diff-merges=first-parent',
        '--no-renames',
        '--raw',
        '--no-abbrev',
        '-z',
        '--relative',
        '--format=%x1e%H%x1f%T%x1f%an%x1f%ae%x1f%cI%x1f%B%x1f',
        rev,
        '--',
        ...pathspecs,
      ],
      { okCodes: [128] },
    );
    return log.code === 0 ? log.stdout : undefined;
  }

  /** The last commit on the first-parent line of `rev` made at or before `seconds` (Unix time); undefined when none was or `rev` does not exist. */
  async lastCommitBefore(rev: string, seconds: number): Promise<string | undefined> {
    const r = await this.run(['rev-list', '-1', '--first-parent', `--before=@${seconds}`, rev], { okCodes: [128] });
    return r.code === 0 ? r.stdout.trim() || undefined : undefined;
  }

  /** The committer date of `commit`, ISO 8601 with the committer's offset. */
  async commitDate(commit: string): Promise<string> {
    return (await this.out(['show', '-s', '--format=%cI', commit])).trim();
  }

  /** The parents of `commit` as its commit object records them (none for a root commit); E_GIT when there is no such commit. */
  async parentsOf(commit: string): Promise<string[]> {
    const o = await this.objects.read(`${commit}^{commit}`);
    if (!o?.bytes) throw new ModelgateError('E_GIT', `no commit ${commit}`, ExitCode.content);
    const header = o.bytes.toString('utf8', 0, Math.max(0, o.bytes.indexOf('\n\n')));
    return [...header.matchAll(/^parent ([0-9a-f]+)$/gm)].map((m) => m[1]!);
  }

  /** The tree of `commit`'s first parent; undefined for a root commit or one at the edge of a shallow clone. */
  async firstParentTree(commit: string): Promise<string | undefined> {
    const o = await this.objects.info(`${commit}^1^{tree}`);
    return o?.type === 'tree' ? o.oid : undefined;
  }

  /** The id of the blob at `path` of `rev`, or undefined when there is none. */
  async blobIdAt(rev: string, path: string): Promise<string | undefined> {
    const o = await this.objects.info(`${rev}:${path}`);
    return o?.type === 'blob' ? o.oid : undefined;
  }

  /**
   * The index entries under `scope` as `git ls-files -s -v` lists them (`<tag> <mode> <id>
   * <stage>\t<path>`, paths relative to this folder), a chunk at a time: a listing of a million
   * entries is never held whole. E_GIT (after the entries) when git fails.
   */
  indexEntries(scope: string): AsyncGenerator<string[]> {
    return this.records(['ls-files', '-s', '-v', '-z', '--', scope]);
  }

  /** Files under `scope` whose work-tree copy differs from the index (`git diff-files`), relative to this folder. */
  async modifiedFiles(scope: string): Promise<string[]> {
    return splitZ(await this.out(['diff-files', '--name-only', '-z', '--relative', '--', scope]));
  }

  /** Whether tracked files differ from HEAD, staged or not (`git status`, untracked files left out). */
  async hasTrackedChanges(): Promise<boolean> {
    return (await this.out(['status', '--porcelain', '--untracked-files=no'])).trim() !== '';
  }

  /**
   * Every object reachable from any ref (branches, remote-tracking branches, fetched pull request
   * heads, tags) with the path it was reached by ('' for a commit), a batch at a time.
   */
  async *reachableObjects(): AsyncGenerator<Array<{ oid: string; path: string }>> {
    for await (const lines of this.records(['rev-list', '--all', '--objects'], '\n')) {
      yield lines.map((line) => {
        const space = line.indexOf(' ');
        return space < 0 ? { oid: line, path: '' } : { oid: line.slice(0, space), path: line.slice(space + 1) };
      });
    }
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

  /**
   * The path from the work tree's top to this folder, without a trailing slash ('' at the top and
   * in a bare repository); git's own error (E_GIT) outside a repository.
   */
  async workTreePrefix(): Promise<string> {
    return (await this.out(['rev-parse', '--show-prefix'])).trim().replace(/\/$/, '');
  }

  /** Where git keeps `name` of this repository (`git rev-parse --git-path`), relative to this folder; undefined outside a repository. */
  async gitPath(name: string): Promise<string | undefined> {
    const r = await this.run(['rev-parse', '--git-path', name], { okCodes: [128] });
    return r.code === 0 ? r.stdout.trim() || undefined : undefined;
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

  /** The full name of the branch HEAD points at (`refs/heads/…`, born or not), undefined when HEAD is detached. */
  async headRef(): Promise<string | undefined> {
    return (await this.run(['symbolic-ref', '--quiet', 'HEAD'], { okCodes: [1] })).stdout.trim() || undefined;
  }

  /** Makes this (existing) folder a new repository whose first branch is `branch`. */
  async init(branch: string): Promise<void> {
    await this.run(['init', '--quiet', '-b', branch]);
  }

  /** Stages every file of the work tree, new, changed or deleted (`git add --all`). */
  async addAll(): Promise<void> {
    await this.run(['add', '--all']);
  }

  /** Commits the index as `identity` (author and committer, no hooks run) and returns the new commit. */
  async commitIndex(message: string, identity: Identity): Promise<string> {
    await this.run(['-c', `user.name=${identity.name}`, '-c', `user.email=${identity.email}`, 'commit', '--quiet', '--no-verify', '-m', message]);
    return (await this.out(['rev-parse', 'HEAD'])).trim();
  }

  /** Points an unborn checked-out branch at `commit` and checks it out (a registry's first commit). */
  async checkoutUnborn(commit: string): Promise<void> {
    const branch = (await this.headRef()) ?? 'refs/heads/main';
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

  /** The URL of `remote`, or undefined when there is no such remote (or no repository). */
  async remoteUrl(remote: string): Promise<string | undefined> {
    const r = await this.run(['remote', 'get-url', remote], { okCodes: [2, 128] });
    return r.code === 0 ? r.stdout.trim() || undefined : undefined;
  }

  /** Asks `remote` for its main branch: E_GIT_REMOTE when it does not answer (checked before work that ends in a push). */
  async probeRemote(remote: string): Promise<void> {
    await this.run(['ls-remote', '--heads', remote, 'refs/heads/main']);
  }

  /**
   * Clones `url` bare, its default branch only and no tags, into the folder `dir` (absent or
   * empty): a mirror that `mirrorBranch` keeps up to date.
   */
  static async cloneBare(url: string, dir: string): Promise<GitRepo> {
    await new GitRepo(tmpdir()).run(['clone', '--quiet', '--bare', '--single-branch', '--no-tags', url, dir]);
    return new GitRepo(dir);
  }

  /** Fetches the branch `ref` (a full name) of `remote` into the same ref here, forced: a bare mirror's refresh. */
  async mirrorBranch(remote: string, ref: string): Promise<void> {
    await this.run(['fetch', '--quiet', '--no-tags', remote, `+${ref}:${ref}`]);
  }

  /**
   * Fetches `refspec` (or a commit id) from `remote`, without tags, and answers whether git
   * succeeded: the caller checks what arrived. `env` adds to git's environment (an auth header).
   */
  async tryFetch(remote: string, refspec: string, env: Record<string, string> = {}): Promise<boolean> {
    return (await this.run(['fetch', '--quiet', '--no-tags', remote, refspec], { env, okCodes: [1, 128] })).code === 0;
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

/** A commit as `lastCommitTouching` reads it. */
export interface CommitSummary {
  commit: string;
  author: Identity;
  committer: Identity;
  message: string;
}

function splitZ(text: string): string[] {
  return text.split('\0').filter(Boolean);
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
