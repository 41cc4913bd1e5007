import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { GitRepo } from '../git/repo.js';
import type { DocumentKind, KindMap } from '../manifest/load.js';
import type { Model, ModelVersion, PromotionPolicy, Registry, Stage } from '../manifest/types.js';
import {
  aliasesFile,
  isModelName,
  mayHaveStage,
  modelFile,
  quickStage,
  MODELS_DIR,
  POLICY_FILE,
  REGISTRY_FILE,
  versionFile,
  versionsDir,
  type ModelRef,
} from './layout.js';
import { utc } from './history.js';
import { GitTreeSource, registryPrefix, WorktreeSource, type RegistrySource } from './source.js';

/** Where a snapshot keeps the documents it parsed, by registry-relative path (a Map, or a bounded cache). */
export interface DocumentCache {
  get(path: string): Promise<unknown> | undefined;
  set(path: string, document: Promise<unknown>): unknown;
  has(path: string): boolean;
}

/**
 * A registry as of one source (the work tree or a commit): typed, validated documents, loaded
 * lazily and once. Invalid documents throw E_INVALID_MANIFEST (exit 1) naming file, line and column.
 */
export class RegistrySnapshot {
  /**
   * @param cache the parsed documents by path, kept for the snapshot's life by default; a
   * long-running reader of one commit (serve) passes a bounded one shared between snapshots.
   */
  constructor(
    readonly source: RegistrySource,
    private readonly cache: DocumentCache = new Map(),
  ) {}

  /** A commit's version numbers by model (versionNumbers). */
  private readonly numbers = new Map<string, Promise<readonly number[]>>();

  private load<K extends DocumentKind>(path: string, kind: K, text?: string): Promise<KindMap[K] | undefined> {
    let p = this.cache.get(path) as Promise<KindMap[K] | undefined> | undefined;
    if (!p) {
      p = (text !== undefined ? Promise.resolve(text) : this.source.readFile(path)).then(async (t) =>
        t === undefined ? undefined : parseDocument(await loader(), t, path, kind),
      );
      this.cache.set(path, p);
    }
    return p;
  }

  /** Many files at once: one `git cat-file` for a commit's tree, parallel reads in the work tree. */
  private readMany(paths: string[]): Promise<Array<string | undefined>> {
    if (this.source.readFiles) return this.source.readFiles(paths);
    return Promise.all(paths.map((p) => this.source.readFile(p)));
  }

  async config(): Promise<Registry> {
    const c = await this.load(REGISTRY_FILE, 'Registry');
    if (!c) throw new ModelgateError('E_NO_REGISTRY', `${REGISTRY_FILE} not found in ${this.source.label}`);
    return c;
  }

  /** The promotion policy; a registry without one has an empty policy, under which nothing passes. */
  async policy(): Promise<PromotionPolicy> {
    return (await this.load(POLICY_FILE, 'PromotionPolicy')) ?? { apiVersion: 'modelgate.dev/v1', kind: 'PromotionPolicy', rules: [] };
  }

  /** Model folders with a valid name, sorted. Folders with invalid names are reported by `validate`. */
  async modelNames(): Promise<string[]> {
    return (await this.source.listDir(MODELS_DIR)).filter(isModelName).sort();
  }

  model(name: string): Promise<Model | undefined> {
    return this.load(modelFile(name), 'Model');
  }

  /**
   * Version numbers present for a model, ascending. A commit's are worked out once per model
   * and shared (serve asks for them at nearly every request: 1,000 names parsed and sorted each
   * time was most of a get-by-alias); the work tree's are listed again at each call.
   */
  versionNumbers(model: string): Promise<readonly number[]> {
    if (!(this.source instanceof GitTreeSource)) return this.listVersionNumbers(model);
    let p = this.numbers.get(model);
    if (!p) {
      p = this.listVersionNumbers(model).then((numbers) => Object.freeze(numbers));
      this.numbers.set(model, p);
    }
    return p;
  }

  private async listVersionNumbers(model: string): Promise<number[]> {
    const names = await this.source.listDir(versionsDir(model));
    return names
      .map((n) => /^([1-9][0-9]{0,8})\.yaml$/.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  version(model: string, version: number): Promise<ModelVersion | undefined> {
    return this.load(versionFile(model, version), 'ModelVersion');
  }

  /** Every version of `model`, ascending; the files not parsed yet are read in one batch (one git process for a commit). */
  async versions(model: string): Promise<ModelVersion[]> {
    const paths = (await this.versionNumbers(model)).map((n) => versionFile(model, n));
    const unread = paths.filter((p) => !this.cache.has(p));
    const texts = unread.length > 1 ? await this.readMany(unread) : [];
    const text = new Map(unread.map((p, i) => [p, texts[i]]));
    const all = await Promise.all(paths.map((p) => this.load(p, 'ModelVersion', text.get(p))));
    return all.filter((v): v is ModelVersion => v !== undefined);
  }

  /**
   * Versions of `model` in `stage`, newest first (all of them, or the first `limit`); see
   * `withStages` for what is read and parsed.
   */
  async inStage(model: string, stage: Stage, limit = Infinity): Promise<ModelVersion[]> {
    const found: ModelVersion[] = [];
    if (limit <= 0) return found;
    // Without a limit every candidate is read anyway: in one batch (one git process).
    for await (const v of this.withStages(model, new Set([stage]), limit === Infinity ? Infinity : 8)) {
      found.push(v);
      if (found.length >= limit) break;
    }
    return found;
  }

  /** The newest version of `model` in each of `stages` (those that have one): what the pins need. */
  async newestInStages(model: string, stages: Iterable<Stage>): Promise<ModelVersion[]> {
    const wanted = new Set(stages);
    const found: ModelVersion[] = [];
    for await (const v of this.withStages(model, new Set(wanted), 8)) {
      if (!wanted.delete(v.stage)) continue;
      found.push(v);
      if (wanted.size === 0) break;
    }
    return found;
  }

  /**
   * The versions of `model` whose stage is one of `stages`, newest first, at the cost of what
   * must be read: a file whose stage is known without reading it (`knownStages`: the catalog,
   * for a commit's blobs) is read only when that stage is wanted; the rest are read in batches
   * that grow from `first` (×4, up to 1024: what is wanted is usually among the newest few), and
   * parsed only when the text could hold a wanted stage (`mayHaveStage`) and its lines do not
   * say exactly that it holds another (`quickStage`). The parsed manifest decides.
   */
  private async *withStages(model: string, stages: ReadonlySet<Stage>, first: number): AsyncGenerator<ModelVersion> {
    const dir = versionsDir(model);
    const [numbers, known] = await Promise.all([this.versionNumbers(model), this.source.knownStages?.(dir)]);
    const files = numbers
      .toReversed()
      .map((n) => ({ path: versionFile(model, n), stage: known?.get(`${n}.yaml`) }))
      .filter((f) => f.stage === undefined || stages.has(f.stage));
    const wanted = [...stages];
    for (let at = 0, size = first; at < files.length; at += size, size = Math.min(size * 4, 1024)) {
      const batch = files.slice(at, at + size);
      const texts = await this.readMany(batch.map((f) => f.path));
      for (const [i, { path, stage }] of batch.entries()) {
        const text = texts[i];
        if (text === undefined) continue;
        if (stage === undefined) {
          if (!wanted.some((s) => mayHaveStage(text, s))) continue;
          const plain = quickStage(text);
          if (plain !== undefined && !stages.has(plain)) continue; // exact: no parse needed to know
        }
        const v = await this.load(path, 'ModelVersion', text);
        if (v && stages.has(v.stage)) yield v;
      }
    }
  }

  /** The model's aliases (models/<model>/aliases.yaml), name → version; none when it has no such file. */
  async aliases(model: string): Promise<Record<string, number>> {
    return (await this.load(aliasesFile(model), 'ModelAliases'))?.aliases ?? {};
  }

  /** The version a reference names: latest, a number, the newest in a stage, or an alias's target. Throws E_NOT_FOUND (exit 1). */
  async resolveRef(ref: ModelRef): Promise<ModelVersion> {
    // An alias names its version: no listing of the model's versions is needed.
    if (ref.selector === 'alias') {
      const aliases = await this.aliases(ref.model);
      const target = Object.hasOwn(aliases, ref.alias) ? aliases[ref.alias] : undefined;
      const names = Object.keys(aliases).sort();
      if (target === undefined) throw notFound(`${ref.model} has no alias ${ref.alias} (aliases: ${names.length ? names.join(', ') : 'none'})`);
      const v = await this.version(ref.model, target);
      if (!v) throw notFound(`${ref.model}@${ref.alias} points at version ${target}, which does not exist`);
      return v;
    }
    const numbers = await this.versionNumbers(ref.model);
    if (numbers.length === 0) throw notFound(`model ${ref.model} has no versions (or does not exist)`);
    if (ref.selector === 'version') {
      const v = await this.version(ref.model, ref.version);
      if (!v) throw notFound(`${ref.model}@${ref.version} does not exist (versions: 1–${numbers.at(-1)})`);
      return v;
    }
    if (ref.selector === 'latest') return (await this.version(ref.model, numbers.at(-1)!))!;
    const [v] = await this.inStage(ref.model, ref.stage, 1);
    if (!v) throw notFound(`${ref.model} has no version in ${ref.stage}`);
    return v;
  }
}

/** The parser and the schemas load on the first document read, not with the module: `history` rarely needs them. */
let loading: Promise<[typeof import('../manifest/load.js'), typeof import('../manifest/problem.js')]> | undefined;
function loader() {
  return (loading ??= Promise.all([import('../manifest/load.js'), import('../manifest/problem.js')]));
}

function parseDocument<K extends DocumentKind>(
  [{ loadManifest }, { formatProblem }]: Awaited<ReturnType<typeof loader>>,
  text: string,
  path: string,
  kind: K,
): KindMap[K] {
  const loaded = loadManifest(text, path, kind);
  if (!loaded.value) {
    throw new ModelgateError('E_INVALID_MANIFEST', loaded.problems.map(formatProblem).join('\n'), ExitCode.content, {
      problems: loaded.problems,
    });
  }
  return loaded.value;
}

function notFound(message: string): ModelgateError {
  return new ModelgateError('E_NOT_FOUND', message, ExitCode.content);
}

/** `--registry https://…` or `http://…`: a git remote read in-process, not a folder. */
export function isRegistryUrl(value: string | undefined): boolean {
  return value !== undefined && /^https?:\/\//i.test(value);
}

/** The read commands that take `--registry <git-url>` (SPEC v2 §4), named in the refusal the others give. */
const REMOTE_READ_COMMANDS = ['list', 'show', 'diff', 'resolve', 'pull', 'verify', 'validate'] as const;

/** Exit 2 for what a shallow read of one commit cannot answer, saying what can. */
export function remoteUnsupported(what: string): ModelgateError {
  return usageError(`${what} needs a clone of the registry (its history or work tree); --registry <git-url> works with ${REMOTE_READ_COMMANDS.join(', ')}`);
}

/** The registry folder: `--registry`, or the nearest folder upward holding modelgate.yaml. */
export function locateRegistry(cwd: string, explicit?: string): string {
  if (isRegistryUrl(explicit)) throw remoteUnsupported('this command');
  if (explicit) {
    const dir = resolve(cwd, explicit);
    if (!existsSync(join(dir, REGISTRY_FILE))) throw usageError(`--registry ${explicit}: no ${REGISTRY_FILE} there`);
    return dir;
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, REGISTRY_FILE))) return dir;
    if (dirname(dir) === dir) throw usageError(`no ${REGISTRY_FILE} in ${cwd} or any folder above it; use --registry <dir> or modelgate init`);
  }
}

export interface OpenRegistry {
  root: string;
  repo: GitRepo;
  snapshot: RegistrySnapshot;
}

/** Opens the registry a command works on, reading the work tree. */
export function openRegistry(ctx: { cwd: string; registry?: string }): OpenRegistry {
  const root = locateRegistry(ctx.cwd, ctx.registry);
  return { root, repo: new GitRepo(root), snapshot: new RegistrySnapshot(new WorktreeSource(root)) };
}

/** What a read command works on: the local registry, or a remote's tip fetched into the cache (`remote` set). */
export interface ReadRegistry {
  snapshot: RegistrySnapshot;
  remote?: { url: string; commit: string; cacheDir: string };
}

/**
 * Opens the registry for a read command: `--registry <git-url>` fetches the remote's tip with
 * isomorphic-git (src/registry/remote-source.ts, loaded only then), anything else is `openRegistry`.
 */
export async function openReadRegistry(ctx: { cwd: string; registry?: string; env: NodeJS.ProcessEnv }): Promise<ReadRegistry> {
  if (ctx.registry === undefined || !isRegistryUrl(ctx.registry)) return { snapshot: openRegistry(ctx).snapshot };
  const { fetchRemoteRegistry } = await import('./remote-source.js');
  const r = await fetchRemoteRegistry(ctx.registry, ctx.env);
  return { snapshot: new RegistrySnapshot(r.source), remote: { url: r.url, commit: r.commit, cacheDir: r.cacheDir } };
}

/** A registry snapshot as of a past commit, with the commit and its date. */
export interface PastSnapshot {
  snapshot: RegistrySnapshot;
  commit: string;
  date: string;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * The registry at `at`: a commit-ish, or a date (`2026-01-01`, meaning the end of that day in
 * UTC, or an ISO datetime, UTC unless it has an offset), for which the last commit on the current
 * branch's first-parent line at or before it is used. Throws E_USAGE (exit 2) for an unknown
 * revision or malformed date, E_NOT_FOUND (exit 1) when nothing was committed by then.
 */
export async function snapshotAt(open: OpenRegistry, at: string): Promise<PastSnapshot> {
  let commit: string | undefined;
  if (ISO_DATE.test(at) || ISO_DATETIME.test(at)) {
    const text = ISO_DATE.test(at) ? `${at}T23:59:59.999Z` : /(Z|[+-]\d{2}:?\d{2})$/i.test(at) ? at.replace(' ', 'T') : `${at.replace(' ', 'T')}Z`;
    const ms = Date.parse(text);
    if (Number.isNaN(ms) || !isCalendarDate(at.slice(0, 10))) throw usageError(`--at ${at}: not a valid date`);
    commit = await open.repo.lastCommitBefore('HEAD', Math.floor(ms / 1000));
    if (!commit) throw new ModelgateError('E_NOT_FOUND', `no commit on the current branch at or before ${at}`, ExitCode.content);
  } else {
    if (at.startsWith('-')) throw usageError(`--at ${at}: expected a date or a commit`);
    commit = await open.repo.resolve(at);
    if (!commit) throw usageError(`--at ${at}: neither a date (YYYY-MM-DD or ISO datetime) nor a commit of this repository`);
  }
  const prefix = await registryPrefix(open.repo);
  const date = utc(await open.repo.commitDate(commit));
  return { snapshot: new RegistrySnapshot(new GitTreeSource(open.repo, commit, prefix)), commit, date };
}

/** `YYYY-MM-DD` names a day that exists; Date.parse would roll 2026-02-30 over into March. */
function isCalendarDate(ymd: string): boolean {
  const [y, m, d] = ymd.split('-').map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, m - 1, d));
  return day.getUTCFullYear() === y && day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
}

/** Throws E_NOT_FOUND (exit 1) when the work tree has no folder for `model`. */
export function assertModelExists(root: string, model: string): void {
  if (!existsSync(join(root, modelFile(model))) && !existsSync(join(root, versionsDir(model)))) {
    throw notFound(`unknown model ${model}: no ${MODELS_DIR}/${model}/ in the registry`);
  }
}
