import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, ModelgateError } from '../errors.js';
import type { GitRepo } from '../git/repo.js';
import { LOAD_LIMITS } from '../manifest/limits.js';

/**
 * The bytes of a registry file in the work tree, undefined when it does not exist. Reads at most
 * one byte past the manifest size limit, so the loader reports E_TOO_LARGE without a huge file
 * (or a link to /dev/zero) ever being read whole; a folder, FIFO or device where a manifest
 * belongs is E_NOT_A_FILE (exit 1), never a hang.
 */
export function readRegistryFileSync(root: string, path: string): Buffer | undefined {
  let fd: number;
  try {
    // Non-blocking, so that opening a FIFO does not wait for a writer.
    fd = openSync(join(root, path), constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      const what = stat.isDirectory() ? 'a folder' : stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : 'a device';
      throw new ModelgateError('E_NOT_A_FILE', `${path}: is ${what}, not a file; registry manifests are plain files`, ExitCode.content, { file: path });
    }
    // The recorded size is a first guess only (files under /proc claim 0 bytes): grow until EOF or the cap.
    const cap = LOAD_LIMITS.maxBytes + 1;
    let buffer = Buffer.allocUnsafe(Math.min(stat.size + 1, cap));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length === cap) break;
        const grown = Buffer.allocUnsafe(Math.min(buffer.length * 4, cap));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/**
 * Read-only view of a registry's files: the work tree, or a commit's objects. Paths are
 * registry-relative with forward slashes. The gate reads a pull request's head through a
 * `GitTreeSource`, as data, never checking it out.
 */
export interface RegistrySource {
  /** For messages: "work tree" or a commit id. */
  readonly label: string;
  readFile(path: string): Promise<string | undefined>;
  /** Optional batch read, same answers as `readFile` per path, in order. */
  readFiles?(paths: string[]): Promise<Array<string | undefined>>;
  /** Names of the entries directly under `path` (files and folders); empty when absent. */
  listDir(path: string): Promise<string[]>;
  /** Optional hint: these files will be read next, so load them in one go. */
  prefetch?(paths: string[]): Promise<void>;
}

export class WorktreeSource implements RegistrySource {
  readonly label = 'work tree';
  constructor(readonly root: string) {}

  async readFile(path: string): Promise<string | undefined> {
    return readRegistryFileSync(this.root, path)?.toString('utf8');
  }

  /**
   * Synchronous reads on purpose: for the thousand small files of a stage lookup they are
   * several times faster than as many concurrent async reads, and a CLI has nothing else to do.
   */
  async readFiles(paths: string[]): Promise<Array<string | undefined>> {
    return paths.map((path) => readRegistryFileSync(this.root, path)?.toString('utf8'));
  }

  async listDir(path: string): Promise<string[]> {
    try {
      return await readdir(join(this.root, path));
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }
}

/** A commit of the repository, and where the registry sits in it: what both commit-backed sources share. */
abstract class CommitSource {
  constructor(
    readonly repo: GitRepo,
    readonly commit: string,
    /** Path of the registry inside the repository ('' for the root). */
    readonly prefix = '',
  ) {}

  get label(): string {
    return this.commit.slice(0, 12);
  }
}

/** A commit's tree, read from local git objects; the tree listing is loaded once per folder. */
export class GitTreeSource extends CommitSource implements RegistrySource {
  private readonly dirs = new Map<string, Promise<Map<string, { type: string; oid: string }>>>();

  private full(path: string): string {
    return this.prefix ? `${this.prefix}/${path}` : path;
  }

  private entries(path: string) {
    let p = this.dirs.get(path);
    if (!p) {
      // `<commit>:<dir>` with --full-tree: root-relative whatever folder git runs in, and '' is the root.
      p = this.repo.run(['ls-tree', '-z', '--full-tree', `${this.commit}:${this.full(path).replace(/\/$/, '')}`], { okCodes: [128] }).then((r) => {
        const map = new Map<string, { type: string; oid: string }>();
        if (r.code !== 0) return map;
        for (const line of r.stdout.split('\0')) {
          if (!line) continue;
          const tab = line.indexOf('\t');
          const [, type, oid] = line.slice(0, tab).split(' ');
          const name = line
            .slice(tab + 1)
            .split('/')
            .pop()!;
          map.set(name, { type: type!, oid: oid! });
        }
        return map;
      });
      this.dirs.set(path, p);
    }
    return p;
  }

  async readFile(path: string): Promise<string | undefined> {
    const slash = path.lastIndexOf('/');
    const entry = (await this.entries(slash < 0 ? '' : path.slice(0, slash))).get(path.slice(slash + 1));
    if (!entry || entry.type !== 'blob') return undefined;
    return (await this.repo.readBlobs([entry.oid])).get(entry.oid)?.toString('utf8');
  }

  /** All in one `git cat-file --batch`. */
  async readFiles(paths: string[]): Promise<Array<string | undefined>> {
    const oids = await Promise.all(
      paths.map(async (path) => {
        const slash = path.lastIndexOf('/');
        const entry = (await this.entries(slash < 0 ? '' : path.slice(0, slash))).get(path.slice(slash + 1));
        return entry?.type === 'blob' ? entry.oid : undefined;
      }),
    );
    const blobs = await this.repo.readBlobs([...new Set(oids.filter((o): o is string => o !== undefined))]);
    return oids.map((oid) => (oid === undefined ? undefined : blobs.get(oid)?.toString('utf8')));
  }

  async listDir(path: string): Promise<string[]> {
    return [...(await this.entries(path)).keys()];
  }

  /** Blob ids of the entries under `path`: a content-derived cache key for each file. */
  async blobIds(path: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const [name, e] of await this.entries(path)) if (e.type === 'blob') out.set(name, e.oid);
    return out;
  }
}

/**
 * A commit's whole tree read in bulk (where `GitTreeSource` lists folder by folder, for reads
 * that touch a few models): one `git ls-tree -r` lists it, `prefetch` loads many blobs in
 * one `git cat-file --batch`. Registries of thousands of models sync from a commit in one or
 * two git processes instead of one per file.
 */
export class CommitTreeSource extends CommitSource implements RegistrySource {
  private tree?: Promise<Map<string, string>>;
  private readonly dirs = new Map<string, Set<string>>();
  private readonly blobs = new Map<string, string>();

  private listing(): Promise<Map<string, string>> {
    this.tree ??= this.repo.run(['ls-tree', '-r', '-z', '--full-tree', this.commit, ...(this.prefix ? ['--', `${this.prefix}/`] : [])]).then((r) => {
      const map = new Map<string, string>();
      const cut = this.prefix ? this.prefix.length + 1 : 0;
      for (const line of r.stdout.split('\0')) {
        if (!line) continue;
        const tab = line.indexOf('\t');
        const [, type, oid] = line.slice(0, tab).split(' ');
        if (type !== 'blob') continue;
        const path = line.slice(tab + 1 + cut);
        map.set(path, oid!);
        const parts = path.split('/');
        for (let i = 0; i < parts.length - 1; i++) {
          const dir = parts.slice(0, i).join('/');
          let set = this.dirs.get(dir);
          if (!set) this.dirs.set(dir, (set = new Set()));
          set.add(parts[i]!);
        }
        const parent = parts.slice(0, -1).join('/');
        let set = this.dirs.get(parent);
        if (!set) this.dirs.set(parent, (set = new Set()));
        set.add(parts.at(-1)!);
      }
      return map;
    });
    return this.tree;
  }

  async prefetch(paths: string[]): Promise<void> {
    const tree = await this.listing();
    const wanted = paths.map((p) => tree.get(p)).filter((oid): oid is string => oid !== undefined && !this.blobs.has(oid));
    const read = await this.repo.readBlobs([...new Set(wanted)]);
    for (const [oid, buf] of read) this.blobs.set(oid, buf.toString('utf8'));
  }

  async readFile(path: string): Promise<string | undefined> {
    const oid = (await this.listing()).get(path);
    if (oid === undefined) return undefined;
    if (!this.blobs.has(oid)) await this.prefetch([path]);
    return this.blobs.get(oid);
  }

  async listDir(path: string): Promise<string[]> {
    await this.listing();
    return [...(this.dirs.get(path.replace(/\/$/, '')) ?? [])];
  }
}

/**
 * Where the registry sits inside its git repository, as commit-backed sources take it: the
 * folder of `repo` relative to the top, without a trailing slash ('' at the top). Outside git it
 * is '' too, unless `requireGit`: commands that read commits fail there with git's own error.
 */
export async function registryPrefix(repo: GitRepo, options: { requireGit?: boolean } = {}): Promise<string> {
  const r = await repo.run(['rev-parse', '--show-prefix'], { okCodes: options.requireGit ? [] : [128] });
  return r.stdout.trim().replace(/\/$/, '');
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
