import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import fs from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import git, { type HttpClient } from 'isomorphic-git';
import { onCancel } from '../cancel.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { ioTimeoutSeconds, stallError } from '../io-timeout.js';
import { cacheKey, openRegularFile, readRegularFile, sealer, stampHolds, writeStamp } from './cache-file.js';
import type { RegistrySource } from './source.js';

/** The URL as it may be printed and hashed: no user, no password; `#branch` kept apart. */
function parseRemoteUrl(value: string): { url: string; display: string; branch?: string; auth?: { username: string; password: string } } {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw usageError(`--registry ${redact(value)}: not a valid URL`);
  }
  const branch = u.hash ? decodeURIComponent(u.hash.slice(1)) : undefined;
  if (branch !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(branch)) throw usageError(`--registry …#${branch}: not a branch name`);
  const auth = u.username || u.password ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : undefined;
  u.hash = '';
  u.username = '';
  u.password = '';
  const url = u.href;
  return { url, display: url, ...(branch ? { branch } : {}), ...(auth ? { auth } : {}) };
}

function redact(value: string): string {
  return value.replace(/\/\/[^/@]*@/, '//***@');
}

/** Where fetched objects of remote registries are kept: `$MODELGATE_CACHE`, else `$XDG_CACHE_HOME/modelgate`, else `~/.cache/modelgate`. */
function remoteCacheDir(url: string, branch: string | undefined, env: NodeJS.ProcessEnv): string {
  const base = env.MODELGATE_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'modelgate');
  return join(
    base,
    'remotes',
    createHash('sha256')
      .update(`${url}#${branch ?? ''}`)
      .digest('hex')
      .slice(0, 32),
  );
}

/**
 * An isomorphic-git HTTP client on node:http(s) whose sockets give up after `seconds` without a
 * byte (MODELGATE_IO_TIMEOUT): the request and the response body are both bounded.
 */
function boundedHttp(seconds: number, display: string): HttpClient {
  return {
    async request({ url, method = 'GET', headers = {}, body }) {
      const chunks: Buffer[] = [];
      if (body) for await (const c of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
      const payload = Buffer.concat(chunks);
      const target = new URL(url);
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const stalled = () => stallError('git remote', `fetching ${display}`, seconds);
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = send(target, { method, headers: { ...headers, ...(payload.length ? { 'content-length': String(payload.length) } : {}) } }, resolve);
        req.setTimeout(seconds * 1000, () => req.destroy(stalled()));
        req.on('error', reject);
        req.end(payload);
      });
      res.setTimeout(seconds * 1000, () => res.destroy(stalled()));
      return {
        url,
        method,
        statusCode: res.statusCode ?? 0,
        statusMessage: res.statusMessage ?? '',
        headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v ?? '')])),
        body: res[Symbol.asyncIterator]() as AsyncIterableIterator<Uint8Array>,
      };
    },
  };
}

/** What one `--registry <git-url>` read fetched: the commit read and the source over it. */
export interface RemoteRegistry {
  url: string;
  commit: string;
  /** Where its objects are kept between calls. */
  cacheDir: string;
  source: RemoteTreeSource;
}

/** Local branch the last fetched commit is kept under: the "have" that makes the next fetch incremental. */
const TIP_REF = 'refs/heads/modelgate-tip';

/**
 * Brings the remote's branch (its default branch, or `#branch`) into the cache folder with a
 * shallow, single-branch fetch of depth 1, and opens that commit. The first call downloads the
 * tip's objects; later calls tell the server which commit they have, so only what changed since
 * comes down. Credentials: those in the URL, else MODELGATE_GIT_TOKEN or GITHUB_TOKEN, as HTTP
 * basic auth, sent only when the server answers 401; never printed, never part of the cache key. No git binary is involved.
 */
export async function fetchRemoteRegistry(value: string, env: NodeJS.ProcessEnv): Promise<RemoteRegistry> {
  const remote = parseRemoteUrl(value);
  const gitdir = remoteCacheDir(remote.url, remote.branch, env);
  try {
    return await openRemote(remote, gitdir, env);
  } catch (e) {
    if (!(e instanceof CacheDamaged)) throw e;
    // The cache repairs itself: what it held is fetched again, once.
    fs.rmSync(gitdir, { recursive: true, force: true });
    try {
      return await openRemote(remote, gitdir, env);
    } catch (again) {
      throw again instanceof CacheDamaged ? remoteError(again.cause, remote.display, remote.branch) : again;
    }
  }
}

/** A failure of the cache folder rather than of the remote: the folder is discarded and filled again. */
class CacheDamaged extends Error {
  constructor(cause: unknown) {
    super('the remote-read cache is damaged', { cause });
  }
}

/** What a failed fetch says of the remote itself (HTTP, the network, a stall): never a reason to discard the cache. */
const REMOTE_FAULTS = new Set([
  'HttpError',
  'SmartHttpError',
  'UrlParseError',
  'UnknownTransportError',
  'EmptyServerResponseError',
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

function remoteFault(e: unknown): boolean {
  return e instanceof ModelgateError || REMOTE_FAULTS.has(String((e as { code?: unknown })?.code));
}

async function openRemote(
  { url, display, branch, auth: inUrl }: ReturnType<typeof parseRemoteUrl>,
  gitdir: string,
  env: NodeJS.ProcessEnv,
): Promise<RemoteRegistry> {
  const cache = {};
  const seconds = ioTimeoutSeconds(env);
  const token = env.MODELGATE_GIT_TOKEN || env.GITHUB_TOKEN || undefined;
  const auth = inUrl ?? (token ? { username: 'x-access-token', password: token } : undefined);
  const local = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (e) {
      throw new CacheDamaged(e);
    }
  };
  await local(async () => {
    fs.mkdirSync(gitdir, { recursive: true });
    if (!fs.existsSync(join(gitdir, 'config'))) {
      await git.init({ fs: cacheFs, gitdir, bare: true, defaultBranch: 'modelgate-tip' });
      await git.addRemote({ fs: cacheFs, gitdir, remote: 'origin', url, force: true });
    }
  });
  // The first fetch is shallow (depth 1). Later ones send the commit they have and no depth:
  // upload-pack given a depth again re-sends the whole tip, while without one it stops at the
  // commit we have, so only the commits since and the objects they changed come down.
  const have = await git.resolveRef({ fs: cacheFs, gitdir, ref: TIP_REF }).catch(() => undefined);
  const packsBefore = new Set(packNames(gitdir));
  let fetched;
  try {
    fetched = await git.fetch({
      fs: cacheFs,
      http: boundedHttp(seconds, display),
      gitdir,
      cache,
      url,
      ref: 'modelgate-tip',
      remoteRef: branch ?? 'HEAD',
      singleBranch: true,
      ...(have ? {} : { depth: 1 }),
      tags: false,
      // Asked only on a 401; returning nothing then makes isomorphic-git give up with the HttpError.
      ...(auth ? { onAuth: () => auth } : {}),
    });
  } catch (e) {
    // A fetch that failed on what the cache holds (its shallow list, its refs, an object it
    // reads to tell the server what it has) is the cache's fault; anything else is the remote's.
    if (have && !remoteFault(e)) throw new CacheDamaged(e);
    throw remoteError(e, display, branch);
  }
  const head = fetched.fetchHead;
  if (!head) throw new ModelgateError('E_REMOTE_EMPTY', `git remote ${display} has no commits`, ExitCode.service, { url: display });
  const tree = await local(async () => {
    await git.writeRef({ fs: cacheFs, gitdir, ref: TIP_REF, value: head, force: true });
    checkPacks(
      gitdir,
      packNames(gitdir).filter((p) => !packsBefore.has(p)),
    );
    await loosenTrees(gitdir, head, cache);
    return (await git.readCommit({ fs: cacheFs, gitdir, cache, oid: head })).commit.tree;
  });
  return { url: display, commit: head, cacheDir: gitdir, source: new RemoteTreeSource(gitdir, tree, head, cache) };
}

/**
 * The cache folder's file system as isomorphic-git gets it: a file is read only when it is a
 * regular file (anything else reads as absent: a FIFO never blocks, a symlink never leads out),
 * and every write goes to a new file renamed into place, so a write never lands in a FIFO or
 * through a symlink and a killed process never leaves half a pack under a pack's name.
 */
const cacheFs = {
  ...fs,
  promises: {
    ...fs.promises,
    async readFile(path: string, options?: Parameters<typeof fs.promises.readFile>[1]) {
      let handle: fs.promises.FileHandle;
      try {
        handle = await fs.promises.open(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw notThere(path);
        throw e;
      }
      try {
        if (!(await handle.stat()).isFile()) throw notThere(path);
        return await handle.readFile(options ?? null);
      } finally {
        await handle.close();
      }
    },
    async writeFile(path: string, data: Parameters<typeof fs.promises.writeFile>[1], options?: Parameters<typeof fs.promises.writeFile>[2]) {
      const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      const off = onCancel(() => fs.promises.rm(tmp, { force: true }));
      try {
        await fs.promises.writeFile(tmp, data, typeof options === 'string' ? { encoding: options, flag: 'wx' } : { ...options, flag: 'wx' });
        await fs.promises.rename(tmp, path);
      } finally {
        off();
        await fs.promises.rm(tmp, { force: true });
      }
    },
  },
};

function notThere(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${path} is not a regular file`), { code: 'ENOENT' });
}

const PACK_STAMP = 'modelgate-pack-checked 1';

/** The packs in the cache folder, by their id (`pack-<sha1>`), from their packs or their indexes. */
function packNames(gitdir: string): string[] {
  const dir = join(gitdir, 'objects', 'pack');
  const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  return [...new Set(names.map((n) => /^(pack-[0-9a-f]{40})\.(?:pack|idx)$/.exec(n)?.[1]).filter((n) => n !== undefined))];
}

/** The seal that says modelgate itself fetched pack `name`, under the cache's key. */
const fetchedSeal = (key: Buffer, name: string) => sealer(key).update(`modelgate fetched ${name}`).digest('hex');

/**
 * Every pack is one this cache fetched (`fetched`, the packs the fetch just wrote, are sealed as
 * such under the cache's key; a pack without that seal was put there by something else) and is
 * whole with its index: regular files, the index's own SHA-1 trailer right, and the pack's
 * trailer (its name) equal to the one the index records and to the SHA-1 of the pack's bytes.
 * isomorphic-git reads a pack only when an object is asked of it and would fail then, halfway
 * through a command; checked here, a flipped byte, a cut pack or a planted one makes the cache
 * be fetched again before anything is answered. A checked pair is stamped (cache-file.ts), so an
 * unchanged cache is not hashed again.
 */
function checkPacks(gitdir: string, fetched: string[]): void {
  const dir = join(gitdir, 'objects', 'pack');
  const key = cacheKey(join(gitdir, 'modelgate'));
  if (!key) return; // a folder where no key can be kept holds no cache to trust: the fetch just wrote it
  for (const name of fetched) {
    const seal = join(gitdir, 'modelgate', `${name}.fetched`);
    fs.writeFileSync(`${seal}.${process.pid}.tmp`, fetchedSeal(key, name), { flag: 'wx' });
    fs.renameSync(`${seal}.${process.pid}.tmp`, seal);
  }
  for (const name of packNames(gitdir)) {
    if (readRegularFile(join(gitdir, 'modelgate', `${name}.fetched`))?.toString('latin1') !== fetchedSeal(key, name)) {
      throw new Error(`${name} was not fetched into this cache`);
    }
    const pack = join(dir, `${name}.pack`);
    const idx = join(dir, `${name}.idx`);
    const fds = [openRegularFile(pack), openRegularFile(idx)];
    try {
      if (fds.some((fd) => fd === undefined)) throw new Error(`${name}: not a regular pack and index`);
      const stats = fds.map((fd) => fs.fstatSync(fd!, { bigint: true }));
      const stamp = join(gitdir, 'modelgate', `${name}.checked`);
      if (stampHolds(stamp, PACK_STAMP, key, stats)) continue;
      const [packSum, packTrailer] = sha1AndTrailer(fds[0]!);
      const [idxSum, idxTrailer, recordedPack] = sha1AndTrailer(fds[1]!, true);
      if (packSum !== packTrailer || packTrailer !== name.slice('pack-'.length) || idxSum !== idxTrailer || recordedPack !== packTrailer) {
        throw new Error(`${name}: its bytes do not match its checksums`);
      }
      writeStamp(stamp, PACK_STAMP, key, stats);
    } finally {
      for (const fd of fds) if (fd !== undefined) fs.closeSync(fd);
    }
  }
}

/** The SHA-1 of a file's bytes before its 20-byte trailer, the trailer, and (an index's) the 20 bytes before the trailer, in hex. */
function sha1AndTrailer(fd: number, withPrevious = false): string[] {
  const size = fs.fstatSync(fd).size;
  if (size < 40) throw new Error('too short for a pack or an index');
  const hash = createHash('sha1');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let at = 0; at < size - 20;) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - 20 - at), at);
    if (n === 0) throw new Error('cut short');
    hash.update(buf.subarray(0, n));
    at += n;
  }
  const tail = Buffer.alloc(40);
  fs.readSync(fd, tail, 0, 40, size - 40);
  return [hash.digest('hex'), tail.subarray(20).toString('hex'), ...(withPrevious ? [tail.subarray(0, 20).toString('hex')] : [])];
}

const looseObjectPath = (gitdir: string, oid: string) => join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));

/**
 * Writes the tip's commit and every tree under it as loose objects (a few hundred small files
 * at 100,000 versions). isomorphic-git looks for a loose object before it opens a pack, and
 * opening one reads the whole pack and its index into memory: with the trees loose and folder
 * texts in `FolderTexts`, a call on an unchanged remote never opens the pack.
 */
async function loosenTrees(gitdir: string, commitOid: string, cache: object): Promise<void> {
  if (fs.existsSync(looseObjectPath(gitdir, commitOid))) return;
  const copy = async (oid: string): Promise<void> => {
    if (fs.existsSync(looseObjectPath(gitdir, oid))) return;
    const { type, object } = await git.readObject({ fs: cacheFs, gitdir, oid, cache, format: 'content' });
    if (type === 'tree') {
      const { tree } = await git.readTree({ fs: cacheFs, gitdir, oid, cache });
      for (const e of tree) if (e.type === 'tree') await copy(e.oid);
    }
    const written = await git.writeObject({ fs: cacheFs, gitdir, type: type as 'tree' | 'commit', object, format: 'content' });
    if (written !== oid) throw new Error(`object ${oid} was rewritten as ${written}`);
  };
  const { commit } = await git.readCommit({ fs: cacheFs, gitdir, cache, oid: commitOid });
  await copy(commit.tree);
  // The commit last: its presence says the trees under it are all loose.
  await copy(commitOid);
}

/**
 * The texts of a folder's files, kept in the cache folder under the folder's tree id: the tree
 * id fixes every blob id in it, so an entry can only describe these bytes. Gzipped JSON sealed
 * under the cache's key (cache-file.ts) with the tree id; an entry that is not a regular file or
 * whose seal does not verify is read again from the objects and rewritten.
 */
class FolderTexts {
  private readonly key: Buffer | undefined;

  constructor(private readonly dir: string) {
    this.key = cacheKey(dirname(dir));
  }

  private file(treeOid: string): string {
    return join(this.dir, `${treeOid}.json.gz`);
  }

  private seal(treeOid: string, texts: Record<string, string>): string {
    return sealer(this.key!)
      .update(`${treeOid}\n${JSON.stringify(texts)}`)
      .digest('hex');
  }

  get(treeOid: string): Record<string, string> | undefined {
    const bytes = this.key && readRegularFile(this.file(treeOid));
    if (!bytes) return undefined;
    try {
      const { seal, texts } = JSON.parse(gunzipSync(bytes).toString('utf8')) as { seal: string; texts: Record<string, string> };
      return this.seal(treeOid, texts) === seal ? texts : undefined;
    } catch {
      return undefined;
    }
  }

  /** Best effort: a read-only cache only costs speed. */
  put(treeOid: string, texts: Record<string, string>): void {
    if (!this.key) return;
    const tmp = `${this.file(treeOid)}.${process.pid}.tmp`;
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      fs.writeFileSync(tmp, gzipSync(JSON.stringify({ seal: this.seal(treeOid, texts), texts }), { level: 1 }), { flag: 'wx' });
      fs.renameSync(tmp, this.file(treeOid));
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  }
}

/** isomorphic-git's errors (stable `code`, `data`) and socket errors as exit-3 ModelgateErrors that name the remote, never a credential. */
function remoteError(e: unknown, display: string, branch: string | undefined): ModelgateError {
  if (e instanceof ModelgateError) return e;
  const err = e as { code?: string; data?: { statusCode?: number; statusMessage?: string }; message?: string };
  const where = `git remote ${display}`;
  if (err.code === 'HttpError') {
    const status = err.data?.statusCode;
    const hint =
      status === 401 || status === 403
        ? ' (set MODELGATE_GIT_TOKEN or GITHUB_TOKEN to a token that can read it)'
        : status === 404
          ? ' (no such repository?)'
          : '';
    return new ModelgateError('E_REMOTE', `${where}: HTTP ${status} ${err.data?.statusMessage ?? ''}`.trimEnd() + hint, ExitCode.service, {
      url: display,
      status,
    });
  }
  if (err.code === 'NotFoundError') {
    return new ModelgateError('E_REMOTE', `${where}: no branch ${branch ?? 'HEAD'}`, ExitCode.service, { url: display });
  }
  const why = err.code && /^E[A-Z]+$/.test(err.code) ? err.code : (err.message ?? String(e)).split('\n')[0]!.replace(/\/\/[^/@\s]*@/g, '//***@');
  return new ModelgateError('E_REMOTE', `${where}: cannot fetch: ${why}`, ExitCode.service, { url: display });
}

/**
 * A fetched commit's tree, read from the cache folder's objects with isomorphic-git: each
 * folder's listing once, blobs by id, all through one shared object cache.
 */
export class RemoteTreeSource implements RegistrySource {
  private readonly dirs = new Map<string, Promise<Map<string, { type: string; oid: string }>>>();
  private readonly folders: FolderTexts;

  constructor(
    private readonly gitdir: string,
    private readonly rootTree: string,
    readonly commit: string,
    private readonly cache: object,
  ) {
    this.folders = new FolderTexts(join(gitdir, 'modelgate', 'folders'));
  }

  get label(): string {
    return this.commit.slice(0, 12);
  }

  private entries(path: string): Promise<Map<string, { type: string; oid: string }>> {
    const key = path.replace(/\/$/, '');
    let p = this.dirs.get(key);
    if (!p) {
      p = (async () => {
        let oid = this.rootTree;
        if (key) {
          const slash = key.lastIndexOf('/');
          const entry = (await this.entries(slash < 0 ? '' : key.slice(0, slash))).get(key.slice(slash + 1));
          if (!entry || entry.type !== 'tree') return new Map();
          oid = entry.oid;
        }
        const { tree } = await this.healing(oid, () => git.readTree({ fs: cacheFs, gitdir: this.gitdir, oid, cache: this.cache }));
        return new Map(tree.map((e) => [e.path, { type: e.type, oid: e.oid }]));
      })();
      this.dirs.set(key, p);
    }
    return p;
  }

  /**
   * A read of object `oid`. The trees are also kept loose (loosenTrees): a loose copy that does
   * not read (a flipped byte) is removed, and the object is read from its pack, checked whole.
   */
  private async healing<T>(oid: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (e) {
      const loose = looseObjectPath(this.gitdir, oid);
      if (!fs.existsSync(loose)) throw e;
      fs.rmSync(loose, { force: true });
      return read();
    }
  }

  async readFile(path: string): Promise<string | undefined> {
    const slash = path.lastIndexOf('/');
    const entry = (await this.entries(slash < 0 ? '' : path.slice(0, slash))).get(path.slice(slash + 1));
    if (!entry || entry.type !== 'blob') return undefined;
    const { blob } = await git.readBlob({ fs: cacheFs, gitdir: this.gitdir, oid: entry.oid, cache: this.cache });
    return Buffer.from(blob).toString('utf8');
  }

  /**
   * Many files of one folder (a stage lookup reads every version of a model): the folder's texts
   * come from the `FolderTexts` cache when it has this tree, else from the objects, and are kept.
   */
  async readFiles(paths: string[]): Promise<Array<string | undefined>> {
    const byDir = new Map<string, string[]>();
    for (const p of paths) {
      const dir = p.slice(0, Math.max(0, p.lastIndexOf('/')));
      byDir.set(dir, [...(byDir.get(dir) ?? []), p]);
    }
    const texts = new Map<string, string | undefined>();
    for (const [dir, inDir] of byDir) {
      if (inDir.length < 2 || !dir) {
        for (const p of inDir) texts.set(p, await this.readFile(p));
        continue;
      }
      const slash = dir.lastIndexOf('/');
      const treeOid = (await this.entries(slash < 0 ? '' : dir.slice(0, slash))).get(dir.slice(slash + 1))?.oid;
      let folder = treeOid ? this.folders.get(treeOid) : undefined;
      if (treeOid && !folder) {
        folder = Object.create(null) as Record<string, string>;
        // In order, one at a time: isomorphic-git resolves deltas through the shared cache, and parallel reads only contend for it.
        for (const [name, e] of await this.entries(dir)) {
          if (e.type === 'blob')
            folder[name] = Buffer.from((await git.readBlob({ fs: cacheFs, gitdir: this.gitdir, oid: e.oid, cache: this.cache })).blob).toString('utf8');
        }
        this.folders.put(treeOid, folder);
      }
      for (const p of inDir) {
        const name = p.slice(dir.length + 1);
        texts.set(p, folder && Object.hasOwn(folder, name) ? folder[name] : undefined);
      }
    }
    return paths.map((p) => texts.get(p));
  }

  async listDir(path: string): Promise<string[]> {
    return [...(await this.entries(path)).keys()];
  }
}
