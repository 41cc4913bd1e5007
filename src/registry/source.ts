import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { GitRepo } from '../git/repo.js';
import type { Stage } from '../manifest/types.js';
import { isMissing, readRegistryFileSync } from './read-file.js';

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
  /**
   * Optional: the stages of version files in folder `dir` that are known without reading them
   * (the catalog's, for the blobs it has loaded), by file name; files it leaves out are read.
   */
  knownStages?(dir: string): Promise<ReadonlyMap<string, Stage>>;
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
  private readonly dirs = new Map<string, Promise<ReadonlyMap<string, { type: string; oid: string }>>>();

  private full(path: string): string {
    return this.prefix ? `${this.prefix}/${path}` : path;
  }

  private entries(path: string) {
    let p = this.dirs.get(path);
    if (!p) {
      // The folder's tree object, read through the repository's object stream ('' is the root).
      p = this.repo.treeEntries(this.commit, this.full(path));
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
 * A commit's tree whose stage lookups take what the work tree's catalog knows of its blobs
 * (`catalogStagesIn`, content-addressed by blob id): the planners' view (promote, rollback,
 * archive, annotate), so that planning a change to a model of 1,000 versions reads the few in
 * a wanted stage, not all of them. The gate reads plain `GitTreeSource`s: its verdict never
 * rests on a cache in the local .git, which another build of modelgate may have written.
 */
export class CatalogTreeSource extends GitTreeSource {
  private readonly stages = new Map<string, Promise<ReadonlyMap<string, Stage>>>();

  /** The catalog's stages for the blobs of `dir` this commit holds. */
  knownStages(dir: string): Promise<ReadonlyMap<string, Stage>> {
    let p = this.stages.get(dir);
    if (!p) {
      // The catalog's module (and node:crypto, which seals it) loads only for such a lookup: not with show or history.
      p = Promise.all([this.blobIds(dir), this.repo.location(), import('./catalog.js')]).then(([blobs, where, { catalogStagesIn }]) => {
        const catalog = where && catalogStagesIn(where.gitDir, dir);
        const known = new Map<string, Stage>();
        if (catalog) for (const [name, oid] of blobs) if (catalog.get(name)?.oid === oid) known.set(name, catalog.get(name)!.stage);
        return known;
      });
      this.stages.set(dir, p);
    }
    return p;
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
    this.tree ??= this.repo.listTree(this.commit, this.prefix ? `${this.prefix}/` : '').then((entries) => {
      const map = new Map<string, string>();
      const cut = this.prefix ? this.prefix.length + 1 : 0;
      for (const entry of entries) {
        const path = entry.path.slice(cut);
        map.set(path, entry.oid);
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
  const where = await repo.location();
  if (where) return where.prefix;
  if (!options.requireGit) return '';
  // Not in a work tree: git's own error (a bare repository has no prefix to give either).
  return repo.workTreePrefix();
}
