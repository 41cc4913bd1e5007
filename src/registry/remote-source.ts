import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as fs from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import git, { type HttpClient } from 'isomorphic-git';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { ioTimeoutSeconds, stallError } from '../io-timeout.js';
import type { RegistrySource } from './source.js';

/** The URL as it may be printed and hashed: no user, no password; `#branch` kept apart. */
export function parseRemoteUrl(value: string): { url: string; display: string; branch?: string; auth?: { username: string; password: string } } {
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
export function remoteCacheDir(url: string, branch: string | undefined, env: NodeJS.ProcessEnv): string {
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
  const { url, display, branch, auth: inUrl } = parseRemoteUrl(value);
  const gitdir = remoteCacheDir(url, branch, env);
  const cache = {};
  const seconds = ioTimeoutSeconds(env);
  const token = env.MODELGATE_GIT_TOKEN || env.GITHUB_TOKEN || undefined;
  const auth = inUrl ?? (token ? { username: 'x-access-token', password: token } : undefined);
  fs.mkdirSync(gitdir, { recursive: true });
  if (!fs.existsSync(join(gitdir, 'config'))) {
    await git.init({ fs, gitdir, bare: true, defaultBranch: 'modelgate-tip' });
    await git.addRemote({ fs, gitdir, remote: 'origin', url, force: true });
  }
  // The first fetch is shallow (depth 1). Later ones send the commit they have and no depth:
  // upload-pack given a depth again re-sends the whole tip, while without one it stops at the
  // commit we have, so only the commits since and the objects they changed come down.
  const have = await git.resolveRef({ fs, gitdir, ref: TIP_REF }).catch(() => undefined);
  let fetched;
  try {
    fetched = await git.fetch({
      fs,
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
    throw remoteError(e, display, branch);
  }
  if (!fetched.fetchHead) throw new ModelgateError('E_REMOTE_EMPTY', `git remote ${display} has no commits`, ExitCode.service, { url: display });
  await git.writeRef({ fs, gitdir, ref: TIP_REF, value: fetched.fetchHead, force: true });
  await loosenTrees(gitdir, fetched.fetchHead, cache);
  const { commit } = await git.readCommit({ fs, gitdir, cache, oid: fetched.fetchHead });
  return { url: display, commit: fetched.fetchHead, cacheDir: gitdir, source: new RemoteTreeSource(gitdir, commit.tree, fetched.fetchHead, cache) };
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
    const { type, object } = await git.readObject({ fs, gitdir, oid, cache, format: 'content' });
    if (type === 'tree') {
      const { tree } = await git.readTree({ fs, gitdir, oid, cache });
      for (const e of tree) if (e.type === 'tree') await copy(e.oid);
    }
    const written = await git.writeObject({ fs, gitdir, type: type as 'tree' | 'commit', object, format: 'content' });
    if (written !== oid) throw new Error(`object ${oid} was rewritten as ${written}`);
  };
  const { commit } = await git.readCommit({ fs, gitdir, cache, oid: commitOid });
  await copy(commit.tree);
  // The commit last: its presence says the trees under it are all loose.
  await copy(commitOid);
}

/**
 * The texts of a folder's files, kept in the cache folder under the folder's tree id: the tree
 * id fixes every blob id in it, so an entry can only describe these bytes. Gzipped JSON with a
 * sha256 of the content; a damaged entry is read again from the objects and rewritten.
 */
class FolderTexts {
  constructor(private readonly dir: string) {}

  private file(treeOid: string): string {
    return join(this.dir, `${treeOid}.json.gz`);
  }

  get(treeOid: string): Record<string, string> | undefined {
    try {
      const { sha256, texts } = JSON.parse(gunzipSync(fs.readFileSync(this.file(treeOid))).toString('utf8')) as {
        sha256: string;
        texts: Record<string, string>;
      };
      return createHash('sha256').update(JSON.stringify(texts)).digest('hex') === sha256 ? texts : undefined;
    } catch {
      return undefined;
    }
  }

  /** Best effort: a read-only cache only costs speed. */
  put(treeOid: string, texts: Record<string, string>): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      const sha256 = createHash('sha256').update(JSON.stringify(texts)).digest('hex');
      const tmp = `${this.file(treeOid)}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, gzipSync(JSON.stringify({ sha256, texts }), { level: 1 }));
      fs.renameSync(tmp, this.file(treeOid));
    } catch {
      // ignored on purpose
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
        const { tree } = await git.readTree({ fs, gitdir: this.gitdir, oid, cache: this.cache });
        return new Map(tree.map((e) => [e.path, { type: e.type, oid: e.oid }]));
      })();
      this.dirs.set(key, p);
    }
    return p;
  }

  async readFile(path: string): Promise<string | undefined> {
    const slash = path.lastIndexOf('/');
    const entry = (await this.entries(slash < 0 ? '' : path.slice(0, slash))).get(path.slice(slash + 1));
    if (!entry || entry.type !== 'blob') return undefined;
    const { blob } = await git.readBlob({ fs, gitdir: this.gitdir, oid: entry.oid, cache: this.cache });
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
            folder[name] = Buffer.from((await git.readBlob({ fs, gitdir: this.gitdir, oid: e.oid, cache: this.cache })).blob).toString('utf8');
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
