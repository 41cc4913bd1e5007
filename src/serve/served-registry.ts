import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitRepo } from '../git/repo.js';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Registry } from '../manifest/types.js';
import { RegistrySnapshot, type DocumentCache } from '../registry/snapshot.js';
import { CatalogTreeSource, registryPrefix } from '../registry/source.js';
import { openStore, type ArtifactStore } from '../store/store.js';

/** One commit of the registry, as every request is answered from it. */
export interface ServedCommit {
  commit: string;
  /** The commit read, shared by its requests: its tree listings and version numbers, its parsed documents (bounded, DocumentLru). */
  snapshot: RegistrySnapshot;
  config: Registry;
  store: ArtifactStore;
}

/**
 * Parsed documents (manifests, aliases, model files) kept per served commit: a search of a
 * model of 1,000 versions parses them once, not at every request, and memory stays bounded
 * whatever the registry's size (about 2 KB a manifest: some 20 MB).
 */
const DOCUMENTS_KEPT = 10_000;

/** A cache of the documents most recently read, at most `max` of them (a Map keeps insertion order: the oldest go first). */
class DocumentLru implements DocumentCache {
  private readonly entries = new Map<string, Promise<unknown>>();
  constructor(private readonly max: number) {}

  get(path: string): Promise<unknown> | undefined {
    const found = this.entries.get(path);
    if (found !== undefined) {
      this.entries.delete(path);
      this.entries.set(path, found);
    }
    return found;
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  set(path: string, document: Promise<unknown>): this {
    this.entries.delete(path);
    this.entries.set(path, document);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    return this;
  }
}

/** serve's own clone of a remote registry: a bare, single-branch copy in a folder it removes on close. */
interface OwnClone {
  /** The branch served, as a full ref (`refs/heads/main`): the remote's default branch. */
  branch: string;
  dir: string;
}

/**
 * The registry `serve` answers from: a local clone whose branch head is read again every
 * refresh, or serve's own clone of a remote, fetched every refresh. Each request takes `current()` once and answers from that commit only, so an answer
 * never mixes two commits; a refresh that finds a new head swaps in a new snapshot (the old
 * one is dropped with its caches when the requests holding it end), so memory follows what
 * the requests read, not the registry's size.
 */
export class ServedRegistry {
  private served?: ServedCommit;
  private refreshing?: Promise<ServedCommit>;

  private constructor(
    readonly repo: GitRepo,
    /** The registry's folder inside the repository ('' at the top). */
    readonly prefix: string,
    /** The revision served: the branch the clone has checked out, by default. */
    readonly rev: string,
    /** The environment the store and git are reached with. */
    readonly env: NodeJS.ProcessEnv,
    private readonly clone?: OwnClone,
  ) {}

  /** serve's own clone of a remote (writes cannot be local commits there), or a local clone. */
  get isOwnClone(): boolean {
    return this.clone !== undefined;
  }

  /** The branch a write pushes to or opens its pull request against: the remote's default for serve's own clone, else main (as the CLI). */
  get baseBranch(): string {
    return this.clone ? this.clone.branch.replace(/^refs\/heads\//, '') : 'main';
  }

  /** A local clone (or the work tree of one) at `dir`, serving `rev` (default HEAD). */
  static async local(dir: string, env: NodeJS.ProcessEnv, rev = 'HEAD'): Promise<ServedRegistry> {
    const repo = new GitRepo(dir);
    const prefix = await registryPrefix(repo, { requireGit: true });
    return new ServedRegistry(repo, prefix, rev, env);
  }

  /**
   * A remote registry (`https://…` or `http://…`, credentials in the URL or git's helpers),
   * cloned bare and single-branch (its default branch) into a temporary folder; each refresh
   * fetches that branch. The registry is the repository's top folder.
   */
  static async remote(url: string, env: NodeJS.ProcessEnv): Promise<ServedRegistry> {
    const dir = await mkdtemp(join(tmpdir(), 'modelgate-serve-'));
    try {
      const repo = await GitRepo.cloneBare(url, dir);
      const branch = await repo.headRef();
      if (!branch) throw new ModelgateError('E_GIT', `${url}: the clone has no default branch`, ExitCode.content);
      return new ServedRegistry(repo, '', branch, env, { branch, dir });
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** True once a commit is loaded: what /readyz answers. */
  get ready(): boolean {
    return this.served !== undefined;
  }

  /** The commit requests are answered from now; loads the first one when none is. */
  async current(): Promise<ServedCommit> {
    return this.served ?? (await this.refresh());
  }

  /**
   * Reads the revision's commit again and, when it moved, loads it (its configuration and
   * store); concurrent calls share one refresh. A failure keeps the commit served before.
   */
  refresh(): Promise<ServedCommit> {
    this.refreshing ??= this.load().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async load(): Promise<ServedCommit> {
    if (this.clone) await this.repo.mirrorBranch('origin', this.clone.branch);
    const commit = await this.repo.resolve(this.rev);
    if (!commit) throw new ModelgateError('E_NO_COMMIT', `${this.repo.dir}: ${this.rev} names no commit`, ExitCode.content);
    if (this.served?.commit === commit) return this.served;
    const snapshot = new RegistrySnapshot(new CatalogTreeSource(this.repo, commit, this.prefix), new DocumentLru(DOCUMENTS_KEPT));
    const config = await snapshot.config();
    const previous = this.served;
    const store = previous && sameStorage(previous.config, config) ? previous.store : await openStore(config.storage, this.env);
    this.served = { commit, snapshot, config, store };
    if (previous && previous.store !== store) previous.store.close();
    return this.served;
  }

  async close(): Promise<void> {
    this.served?.store.close();
    if (this.clone) await rm(this.clone.dir, { recursive: true, force: true });
  }
}

function sameStorage(a: Registry, b: Registry): boolean {
  return JSON.stringify(a.storage) === JSON.stringify(b.storage);
}
