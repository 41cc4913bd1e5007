import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { onCancel } from '../cancel.js';
import { ModelgateError } from '../errors.js';
import { GitRepo } from '../git/repo.js';
import type { ModelVersion, Stage } from '../manifest/types.js';
import type { VersionFacts } from '../manifest/semantic.js';
import { matchWhere, type Expr } from '../query/where.js';
// The schema as data only (not schemas.ts, which brings the validators): a warm `list` loads no parser.
import modelVersionSchema from '../../schemas/model-version.schema.json' with { type: 'json' };
import pkg from '../../package.json' with { type: 'json' };
import { cacheKey, openRegularFile, sealer, stampHolds, writeStamp } from './cache-file.js';
import { isModelName, mayHaveStage, MODELS_DIR, parseManifestPath, versionsDir } from './layout.js';
import { readRegistryFileSync } from './read-file.js';
import { indexStat, sameIndex, StagePrefilter, storedCandidates } from './stage-candidates.js';
import { untrackedFiles } from './untracked.js';
import type { ParsedVersion, VersionParsers } from './parse-pool.js';

/**
 * Every version in a registry's work tree, streamed: memory stays bounded by one model's
 * versions, not by the registry (a million manifests pass through, never held at once).
 *
 * Parsing that many YAML documents takes seconds, so two things avoid it:
 * - a cache of parsed versions in `.git/modelgate/versions.tsv`, one line per version file in
 *   path order (`path <TAB> blob id <TAB> stage <TAB> artifact json <TAB> json`), read in step with the index
 *   listing (`git ls-files`, the same order), like a merge. Content-addressed: an entry never
 *   describes other bytes than the file has now. Files that differ from the index (`git
 *   diff-files`) or are untracked are read from disk and keyed by their own hash;
 * - for a stage query without a cache, a textual prefilter: a file can only hold
 *   `stage: Production` if its text contains `Production` or a backslash (an escape).
 *   `git grep --cached` finds those; the real loader still decides for each candidate.
 */
export interface VersionQuery {
  model?: string;
  stage?: Stage;
  /** Only the versions matching this `--where` filter (without `alias`, which the files do not hold). */
  where?: Expr;
}

/** A digest of the loader's sources (with the path rules of layout.ts) and the schemas, set by the build (scripts/build.mjs); absent when the sources run as they are (tests). */
declare const __MODELGATE_LOADER_ID__: string | undefined;

/**
 * Entries were loaded by the build that wrote them: its version, ModelVersion schema and loader
 * are in the first line, so a cache written under other rules is rebuilt, never trusted
 * (validation takes a cached entry as a file that loads without a problem), even by a build of
 * the same version whose loader changed.
 */
const CACHE_FORMAT = `modelgate-version-cache 5 ${pkg.version} ${createHash('sha256').update(JSON.stringify(modelVersionSchema)).digest('hex').slice(0, 16)} ${
  typeof __MODELGATE_LOADER_ID__ === 'string' ? __MODELGATE_LOADER_ID__ : 'sources'
}`;

interface Entry {
  path: string;
  model: string;
  /** Blob id for files identical to the index; undefined for edited or untracked files. */
  oid?: string;
}

/** Files missing from the cache after which a stage query asks `git grep` which may hold the stage. */
const PREFILTER_AFTER = 256;

const byVersion = (a: CatalogEntry, b: CatalogEntry) => a.version - b.version;

/** Versions in the work tree matching `query`, sorted by model then version. Throws E_INVALID_MANIFEST. */
export async function scanVersions(root: string, query: VersionQuery = {}): Promise<ModelVersion[]> {
  const out: ModelVersion[] = [];
  for await (const batch of versionBatches(root, query)) for (const v of batch) out.push(v);
  return out;
}

/**
 * The versions matching `query`, one model at a time (sorted by version), models in name order.
 * Throws E_INVALID_MANIFEST at the first invalid manifest, after the models before it.
 */
export async function* versionBatches(root: string, query: VersionQuery = {}): AsyncGenerator<ModelVersion[]> {
  for await (const batch of versionFileBatches(root, query)) yield batch.map((e) => e.value());
}

/**
 * A version file that loads without a problem at its path: its stage and artifact at once, the
 * whole value when asked (a cached one is parsed from JSON only then).
 */
export interface CatalogEntry {
  path: string;
  version: number;
  stage: Stage;
  artifact: ModelVersion['artifact'];
  value: () => ModelVersion;
}

/** `versionBatches` with each version's file: what validation needs to trust the cache in its place. */
async function* versionFileBatches(root: string, query: VersionQuery = {}): AsyncGenerator<CatalogEntry[]> {
  const scope = query.model ? versionsDir(query.model) : MODELS_DIR;
  const repo = new GitRepo(root);
  const gitDir = (await repo.location().catch(() => undefined))?.gitDir;
  const wanted = (stage: string) => !query.stage || stage === query.stage;
  const order = new ModelOrder(root);
  let model: string | undefined;
  let batch: CatalogEntry[] = [];

  if (!gitDir) {
    // Outside a git work tree: the files by folder listing, parsed here, no catalog kept.
    const parsers = new (await parserModule()).VersionParsers(query.where, false);
    for (const e of await listWithFs(root, scope)) {
      if (e.model !== model) {
        if (model !== undefined) yield* order.add(model, batch.sort(byVersion));
        [model, batch] = [e.model, []];
      }
      const bytes = readRegistryFileSync(root, e.path);
      if (bytes === undefined) continue;
      if (query.stage && !mayHaveStage(bytes.toString('utf8'), query.stage)) continue;
      const p = await parsers.parse(e.path, bytes);
      if (wanted(p.stage) && p.matches) batch.push(parsedEntry(e.path, p));
    }
    if (model !== undefined) yield* order.add(model, batch.sort(byVersion));
    yield* order.end();
    return;
  }

  // The index listing starts with the two work-tree checks (the first chunk is asked for now).
  const index = indexStat(gitDir);
  const staged = repo.indexEntries(scope);
  const first = staged.next();
  first.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile
  const cache = VersionCache.open(catalogFile(gitDir), `${scope}/`);
  // The stage prefilter spares reading and parsing most files when the cache knows few of them:
  // what an earlier grep found for this very index (the listing must have read the same one), else
  // a grep from the start without a cache (beside the work-tree checks, the listing read as the
  // grep decides it), else once PREFILTER_AFTER files were not in it (until then, a file the
  // cache does not know is read and checked with mayHaveStage).
  const stored = query.stage ? storedCandidates(gitDir, query.stage, scope, index) : undefined;
  const grep = (stage: Stage) => Promise.resolve(StagePrefilter.grep(repo, gitDir, scope, stage));
  let pending =
    query.stage && stored
      ? first.then(() => (sameIndex(indexStat(gitDir), index) ? StagePrefilter.of(stored) : StagePrefilter.grep(repo, gitDir, scope, query.stage!)))
      : query.stage && cache.empty
        ? grep(query.stage)
        : undefined;
  pending?.catch(() => {}); // awaited below
  let prefilter: StagePrefilter | undefined;
  let misses = 0;
  // Files the cache does not know are read through the object stream and parsed (by a pool of
  // threads on a big registry) while the scan goes on: each takes a slot, in path order, and its
  // catalog line a place in the new file; the slots are settled in that order, at most
  // IN_FLIGHT ahead of the oldest, so memory stays bounded whatever the registry's size.
  const slots: Array<{ model: string; entry: CatalogEntry | undefined | Promise<CatalogEntry | undefined> } | undefined> = [];
  let head = 0;
  const settle = async function* (keep: number): AsyncGenerator<CatalogEntry[]> {
    while (slots.length - head > keep) {
      const slot = slots[head]!;
      slots[head++] = undefined;
      if (head >= IN_FLIGHT) {
        slots.splice(0, head);
        head = 0;
      }
      if (slot.model !== model) {
        if (model !== undefined) yield* order.add(model, batch.sort(byVersion));
        [model, batch] = [slot.model, []];
      }
      const entry = await slot.entry;
      if (entry) batch.push(entry);
    }
  };
  const fromCache = (hit: CachedVersion, path: string) => {
    if (!wanted(hit.stage)) return undefined;
    const entry = hit.entry(path);
    return !query.where || matchWhere(query.where, entry.value()) ? entry : undefined;
  };
  let parsers: Promise<VersionParsers> | undefined;
  const parse = async (
    path: string,
    oid: string,
    bytes: Buffer | undefined | Promise<Buffer | undefined>,
    line: Reserved,
  ): Promise<CatalogEntry | undefined> => {
    const b = await bytes;
    if (b === undefined || (query.stage && !mayHaveStage(b.toString('utf8'), query.stage))) return (line.fill(''), undefined);
    const p = await (await (parsers ??= parserModule().then((m) => new m.VersionParsers(query.where)))).parse(path, b);
    line.fill(`${path}\t${oid}\t${p.stage}\t${p.record}\n`);
    return wanted(p.stage) && p.matches ? parsedEntry(path, p) : undefined;
  };
  try {
    const [modified, untracked] = await Promise.all([repo.modifiedFiles(scope), untrackedFiles(repo, root, gitDir, scope, index)]);
    const listing = (async function* () {
      try {
        for (let r = await first; !r.done; r = await staged.next()) yield r.value;
      } finally {
        await staged.return(undefined);
      }
    })();
    for await (const chunk of entries(listing, new Set(modified), untracked)) {
      for (const e of chunk) {
        let entry: CatalogEntry | undefined | Promise<CatalogEntry | undefined>;
        if (e.oid) {
          const hit = cache.take(e.path, e.oid);
          if (hit) entry = fromCache(hit, e.path);
          else {
            if (query.stage && !pending && ++misses >= PREFILTER_AFTER) pending = grep(query.stage);
            if (pending) prefilter ??= await pending;
            if (!prefilter || (prefilter.decided(e.path) ?? (await prefilter.has(e.path)))) entry = parse(e.path, e.oid, repo.readBlob(e.oid), cache.reserve());
          }
        } else {
          const bytes = readRegistryFileSync(root, e.path);
          const oid = bytes && blobId(bytes);
          const hit = oid && cache.take(e.path, oid);
          if (hit) entry = fromCache(hit, e.path);
          else if (oid) entry = parse(e.path, oid, bytes, cache.reserve());
        }
        // Settled in order below; a failure meanwhile must not count as unhandled.
        if (entry instanceof Promise) entry.catch(() => {});
        slots.push({ model: e.model, entry });
        if (slots.length - head > IN_FLIGHT) yield* settle(IN_FLIGHT / 2);
      }
    }
    yield* settle(0);
    if (model !== undefined) yield* order.add(model, batch.sort(byVersion));
    yield* order.end();
    cache.save();
  } finally {
    void parsers?.then((p) => p.close());
    cache.close();
  }
}

/**
 * Version files read or being parsed ahead of the one the scan waits for, at most: enough to
 * keep git and each worker thread busy; more keeps parsed versions alive long enough to reach
 * V8's old generation (at 100,000 versions, 2,048 cost validate 20% more CPU and 550 MiB).
 */
const IN_FLIGHT = 256 * Math.max(1, availableParallelism() - 1);

function parsedEntry(path: string, p: ParsedVersion): CatalogEntry {
  const value = p.value;
  return {
    path,
    version: versionOfPath(path),
    stage: p.stage,
    artifact: value ? value.artifact : (JSON.parse(p.record.slice(0, p.artifactLength)) as ModelVersion['artifact']),
    value: value ? () => value : () => JSON.parse(p.record.slice(p.artifactLength + 1)) as ModelVersion,
  };
}

/** A version file's number, from its name (`<number>.yaml`): the loader checked they agree. */
const versionOfPath = (p: string) => Number(p.slice(p.lastIndexOf('/') + 1, -'.yaml'.length));

const catalogFile = (gitDir: string) => join(gitDir, 'modelgate', 'versions.tsv');

/** Bisection stops once the range is this small, and reads the rest in order. */
const BISECT_WINDOW = 1 << 16;

/**
 * What the catalog knows of the version files in folder `dir` (registry-relative, a model's
 * `versions` folder): by file name, the blob id of each and the stage the loader found in it
 * (a file is in the catalog only if it loaded without a problem). Only that folder's lines are
 * read, found by bisection of the path-ordered file, so a lookup costs the model's lines, not
 * the registry's. Undefined when there is no catalog, it is of another format or build, or its
 * seal is not stamped as checked: a lookup never hashes the whole file (the scans that write it
 * do). Content-addressed like every use of the catalog: an answer describes the blob it names,
 * whatever commit or work tree holds it.
 */
export function catalogStagesIn(gitDir: string, dir: string): Map<string, { oid: string; stage: Stage }> | undefined {
  const file = catalogFile(gitDir);
  const key = cacheKey(dirname(file));
  const fd = key && openRegularFile(file);
  if (key === undefined || fd === undefined) return undefined;
  try {
    const limit = stampedLength(fd, file, key);
    if (limit === undefined) return undefined;
    const header = lineFrom(fd, 0, limit);
    if (header?.text !== CACHE_FORMAT) return undefined;
    // Paths compare as bytes, the order git lists them in (latin1 keeps one character per byte).
    const target = Buffer.from(`${dir}/`, 'utf8').toString('latin1');
    // Every line starting before `lo` has a path before the folder's.
    let lo = header.end;
    let hi = limit;
    while (hi - lo > BISECT_WINDOW) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const line = lineFrom(fd, mid, limit);
      if (!line || line.start >= hi) hi = mid;
      else if (line.text.slice(0, line.text.indexOf('\t')) < target) lo = line.end;
      else hi = line.start;
    }
    const found = new Map<string, { oid: string; stage: Stage }>();
    const buf = Buffer.allocUnsafe(CHUNK);
    let rest = '';
    for (let at = lo; at < limit;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, limit - at), at);
      if (n === 0) break;
      at += n;
      const text = rest + buf.toString('latin1', 0, n);
      let from = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; from = nl + 1, nl = text.indexOf('\n', from)) {
        // `path <TAB> oid <TAB> stage <TAB> …`: only the first three fields are read.
        const tab1 = text.indexOf('\t', from);
        const path = text.slice(from, tab1);
        if (path < target) continue;
        if (!path.startsWith(target)) return found;
        const tab2 = text.indexOf('\t', tab1 + 1);
        // A version file's name is `<number>.yaml`: ASCII, the same in latin1 as in UTF-8.
        found.set(path.slice(target.length), { oid: text.slice(tab1 + 1, tab2), stage: text.slice(tab2 + 1, text.indexOf('\t', tab2 + 1)) as Stage });
      }
      rest = text.slice(from);
    }
    return found;
  } catch {
    return undefined; // unreadable: the files are read instead
  } finally {
    closeSync(fd);
  }
}

/**
 * The first line of `fd` that starts at or after `pos` and before `limit` (latin1, without its
 * newline), with where it starts and where the next begins.
 */
function lineFrom(fd: number, pos: number, limit: number): { text: string; start: number; end: number } | undefined {
  const start = pos === 0 ? 0 : indexOfNewline(fd, pos - 1, limit) + 1;
  if (start === 0 && pos !== 0) return undefined;
  if (start >= limit) return undefined;
  const nl = indexOfNewline(fd, start, limit);
  const stop = nl < 0 ? limit : nl;
  const buf = Buffer.allocUnsafe(stop - start);
  readSync(fd, buf, 0, buf.length, start);
  return { text: buf.toString('latin1'), start, end: stop + 1 };
}

/** Offset of the first newline at or after `pos` and before `limit`, or -1. */
function indexOfNewline(fd: number, pos: number, limit: number): number {
  const buf = Buffer.allocUnsafe(1 << 14);
  for (let at = pos; at < limit; at += buf.length) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, limit - at), at);
    if (n === 0) return -1;
    const i = buf.subarray(0, n).indexOf(10);
    if (i >= 0) return at + i;
  }
  return -1;
}

/** What validation and the pins take from the catalog in place of parsing every version. */
export interface CatalogFacts {
  /** Every version file's facts for the rules across files, by path. */
  known: Map<string, VersionFacts>;
  /** Each model's newest version in each of the stages asked for. */
  newest: Map<string, ModelVersion[]>;
}

/**
 * Every version of the work tree through the catalog, streamed a model at a time: the facts
 * the cross-file rules check and each model's newest version in each of `stages`. Undefined
 * when a version does not load (validation then reads everything, to report every problem).
 */
export async function catalogFacts(root: string, stages: ReadonlySet<string>): Promise<CatalogFacts | undefined> {
  const known = new Map<string, VersionFacts>();
  const newest = new Map<string, ModelVersion[]>();
  try {
    for await (const batch of versionFileBatches(root)) {
      const model = batch[0]!.path.split('/')[1]!; // a version's model is its folder's name, or it would not load
      const found = new Map<string, CatalogEntry>();
      for (const e of batch) {
        known.set(e.path, { model, version: e.version, stage: e.stage, artifact: e.artifact });
        if (stages.has(e.stage)) found.set(e.stage, e); // ascending: the last one is the newest
      }
      newest.set(
        model,
        [...found.values()].map((e) => e.value()),
      );
    }
  } catch (e) {
    if (e instanceof ModelgateError && e.code === 'E_INVALID_MANIFEST') return undefined;
    throw e;
  }
  return { known, newest };
}

/**
 * Index entries under the scope, minus what the work tree changed, plus untracked files: version
 * files only, in path order (both listings are sorted), one entry per path. Fed the index
 * listing a chunk at a time; gives back the entries complete so far.
 */
class Entries {
  private readonly extra: string[];
  private next = 0;
  private held: Entry | undefined;

  constructor(
    private readonly dirty: Set<string>,
    untracked: string[],
  ) {
    this.extra = untracked.filter((p) => parseManifestPath(p)?.kind === 'ModelVersion').sort();
  }

  push(lines: string[]): Entry[] {
    const out: Entry[] = [];
    for (const line of lines) {
      const tab = line.indexOf('\t');
      const path = line.slice(tab + 1);
      if (this.held?.path === path) {
        this.held.oid = undefined; // an unmerged path: several index stages, no single blob
        continue;
      }
      const parsed = parseManifestPath(path);
      if (parsed?.kind !== 'ModelVersion') continue;
      if (this.held) this.release(out, this.held);
      // `<tag> <mode> <oid> <stage>`: tag and mode are fixed-width, the oid ends at the next space.
      const oidEnd = line.indexOf(' ', 9);
      // Only a plain cached entry ('H') is vouched for by diff-files: assume-unchanged (lowercase)
      // and skip-worktree ('S') entries may differ unseen, and unmerged entries have no single blob.
      const clean = line.startsWith('H ') && line.startsWith(' 0', oidEnd) && oidEnd + 2 === tab && !this.dirty.has(path);
      this.held = { path, model: parsed.model, oid: clean ? line.slice(9, oidEnd) : undefined };
    }
    return out;
  }

  end(): Entry[] {
    const out: Entry[] = [];
    if (this.held) this.release(out, this.held);
    this.extraBefore(out, undefined);
    return out;
  }

  private release(out: Entry[], entry: Entry): void {
    this.extraBefore(out, entry.path);
    out.push(entry);
  }

  private extraBefore(out: Entry[], path: string | undefined): void {
    while (this.next < this.extra.length && (path === undefined || this.extra[this.next]! < path)) {
      const p = this.extra[this.next++]!;
      out.push({ path: p, model: parseManifestPath(p)!.model });
    }
  }
}

async function* entries(staged: AsyncIterable<string[]>, dirty: Set<string>, untracked: string[]): AsyncGenerator<Entry[]> {
  const merge = new Entries(dirty, untracked);
  for await (const lines of staged) yield merge.push(lines);
  yield merge.end();
}

/**
 * Puts per-model batches, which come in path order (`models/a-b/` before `models/a/`), back in
 * model-name order. Path order and name order differ only where one name is another's prefix
 * followed by `-`, so a batch waits only while a model of such a shorter name exists (has a
 * versions folder in the work tree: only files there are listed) and has not come yet.
 */
class ModelOrder {
  private readonly pending: Array<{ model: string; batch: CatalogEntry[] }> = [];
  private readonly exists = new Map<string, boolean>();

  constructor(private readonly root: string) {}

  /** Whether a model named like a prefix of `model` (`a` for `a-b`) could still come after path key `at`. */
  private mayStillCome(model: string, at: string): boolean {
    for (let i = model.indexOf('-'); i > 0; i = model.indexOf('-', i + 1)) {
      const prefix = model.slice(0, i);
      if (!isModelName(prefix) || `${prefix}/` < at) continue;
      let found = this.exists.get(prefix);
      if (found === undefined) this.exists.set(prefix, (found = existsSync(join(this.root, versionsDir(prefix)))));
      if (found) return true;
    }
    return false;
  }

  *add(model: string, batch: CatalogEntry[]): Generator<CatalogEntry[]> {
    this.pending.push({ model, batch });
    yield* this.flush(`${model}/`);
  }

  *end(): Generator<CatalogEntry[]> {
    yield* this.flush(undefined);
  }

  /** `at`: the path key of the latest batch; every model whose key sorts before it has come. */
  private *flush(at: string | undefined): Generator<CatalogEntry[]> {
    if (this.pending.length > 1) this.pending.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
    while (this.pending.length > 0) {
      const first = this.pending[0]!;
      if (at !== undefined && this.mayStillCome(first.model, at)) return;
      this.pending.shift();
      if (first.batch.length > 0) yield first.batch;
    }
  }
}

/** The parser loads on the first file to parse: a warm `list` never needs it. */
let parserLoading: Promise<typeof import('./parse-pool.js')> | undefined;
const parserModule = () => (parserLoading ??= import('./parse-pool.js'));

/** Version files by folder listing (no git), models in name order. */
async function listWithFs(root: string, scope: string): Promise<Entry[]> {
  const models = scope === MODELS_DIR ? (await readdir(join(root, MODELS_DIR)).catch(() => [] as string[])).filter(isModelName).sort() : [scope.split('/')[1]!];
  const out: Entry[] = [];
  for (const model of models) {
    const dir = versionsDir(model);
    for (const name of await readdir(join(root, dir)).catch(() => [] as string[])) {
      const path = `${dir}/${name}`;
      if (parseManifestPath(path)?.kind === 'ModelVersion') out.push({ path, model });
    }
  }
  return out;
}

/** git's blob id of `bytes` (SHA-1 form): the cache key of a file that is not in the index as is. */
function blobId(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

const CHUNK = 1 << 20;

interface Output {
  fd: number;
  tmp: string;
  seal: ReturnType<typeof sealer>;
  /** Lines not written yet, in file order: text, or a place reserved for a line (`text` once filled). */
  parts: Array<string | { text?: string }>;
  /** Characters of the filled parts. */
  size: number;
}

/** A catalog line's place, reserved in file order before its version is parsed. */
interface Reserved {
  fill(text: string): void;
}

/** The place of a line that is not kept (no catalog). */
const UNKEPT: Reserved = { fill: () => {} };

/** A version file the catalog knows by path and blob id. */
interface CachedVersion {
  stage: string;
  entry: (path: string) => CatalogEntry;
}

/**
 * The read cache: the old file read line by line in step with the index listing (both in path
 * order), and a new file written only once something differs, the unchanged head copied as bytes.
 * The file ends with `end <seal of everything before that line>`, an HMAC-SHA256 under the key in
 * `.git/modelgate/cache.key` (src/registry/cache-file.ts), checked in a first pass over the same
 * open file before any line is believed (or known unchanged since such a check, by its stat: see
 * checkedLength): a file cut short, cut in half, edited (even into another well-formed file with
 * a seal recomputed by anything without the key), or not a regular file is ignored and rebuilt,
 * so a damaged cache costs time, never a wrong answer. Lines outside `scope` (a `--model` query)
 * are kept as they are.
 */
class VersionCache {
  private fd: number | undefined;
  /** Bytes of the old file before its seal line. */
  private limit = 0;
  /** File offset read up to, and the bytes read but not yet made into lines: chunk[chunkAt, chunkEnd). */
  private pos = 0;
  private chunk = Buffer.alloc(0);
  private chunkAt = 0;
  private chunkEnd = 0;
  /** The current old line (undefined past the last) and the byte offset where it starts. */
  private line: string | undefined;
  private lineStart = 0;
  private out: Output | undefined;
  private failed = false;
  /** Unregisters the removal of the new file on a cancellation (src/cancel.ts). */
  private offCancel: (() => void) | undefined;

  private constructor(
    private readonly file: string,
    private readonly scope: string,
    /** The seal's key; without one the cache is neither read nor written. */
    private readonly key: Buffer | undefined,
  ) {}

  static open(file: string, scope: string): VersionCache {
    const c = new VersionCache(file, scope, cacheKey(dirname(file)));
    try {
      if (!c.key) throw new Error('no key');
      c.fd = openRegularFile(file);
      if (c.fd === undefined) throw new Error('not a regular file');
      const limit = checkedLength(c.fd, file, c.key);
      if (limit === undefined) throw new Error('unsealed');
      c.limit = limit;
      c.advance();
      if (c.line !== CACHE_FORMAT) throw new Error('another format');
      c.advance();
    } catch {
      if (c.fd !== undefined) closeSync(c.fd);
      c.fd = undefined;
      c.line = undefined;
    }
    return c;
  }

  get empty(): boolean {
    return this.fd === undefined;
  }

  /** The cached version of `path` as blob `oid`, or undefined; old lines of paths passed are dropped. */
  take(path: string, oid: string): CachedVersion | undefined {
    for (;;) {
      const line = this.line;
      if (line === undefined) return undefined;
      const tab1 = line.indexOf('\t');
      const linePath = line.slice(0, tab1);
      if (linePath > path) return undefined;
      if (linePath === path) {
        const tab2 = line.indexOf('\t', tab1 + 1);
        if (line.slice(tab1 + 1, tab2) !== oid) {
          this.drop();
          return undefined;
        }
        const tab3 = line.indexOf('\t', tab2 + 1);
        const tab4 = line.indexOf('\t', tab3 + 1);
        this.keep();
        const stage = line.slice(tab2 + 1, tab3) as Stage;
        let value: ModelVersion | undefined;
        return {
          stage,
          entry: (p) => ({
            path: p,
            version: versionOfPath(p),
            stage,
            artifact: JSON.parse(line.slice(tab3 + 1, tab4)) as ModelVersion['artifact'],
            value: () => (value ??= JSON.parse(line.slice(tab4 + 1)) as ModelVersion),
          }),
        };
      }
      if (linePath.startsWith(this.scope)) this.drop();
      else this.keep();
    }
  }

  /** The place of the next line in the new file, filled once its version is parsed: lines are written in order, up to the first unfilled. */
  reserve(): Reserved {
    this.change();
    const out = this.out;
    if (!out) return UNKEPT;
    const place: Reserved & { text?: string } = {
      fill: (text) => {
        place.text = text;
        out.size += text.length;
        if (out.size >= CHUNK) this.flush();
      },
    };
    out.parts.push(place);
    return place;
  }

  /** Finishes the new file when anything changed; best effort: a read-only .git only costs speed. */
  save(): void {
    while (this.line !== undefined) {
      if (this.line.startsWith(this.scope)) this.drop();
      else if (!this.out && this.line > this.scope)
        break; // only other models' lines remain, unchanged
      else this.keep();
    }
    const out = this.out;
    if (!out) return;
    try {
      this.flush();
      if (out.parts.length) throw new Error('a line was never filled');
      writeSync(out.fd, `end ${out.seal.digest('hex')}\n`);
      closeSync(out.fd);
      this.out = undefined;
      renameSync(out.tmp, this.file);
      this.offCancel?.();
    } catch {
      this.abandon();
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.abandon();
  }

  private abandon(): void {
    this.offCancel?.();
    const out = this.out;
    this.out = undefined;
    this.failed = true;
    if (!out) return;
    try {
      closeSync(out.fd);
    } catch {
      // already closed
    }
    rmSync(out.tmp, { force: true });
  }

  private keep(): void {
    if (this.out) this.write(this.line! + '\n');
    this.advance();
  }

  private drop(): void {
    this.change();
    this.advance();
  }

  /** At the first difference a new file starts, with the old one's bytes up to the current line. */
  private change(): void {
    if (this.out || this.failed || !this.key) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.${Date.now()}.tmp`;
      const out: Output = { fd: openSync(tmp, 'wx'), tmp, seal: sealer(this.key), parts: [], size: 0 };
      this.out = out;
      this.offCancel = onCancel(() => this.abandon());
      if (this.fd === undefined) {
        this.write(CACHE_FORMAT + '\n');
        return;
      }
      const end = this.line === undefined ? this.limit : this.lineStart;
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let at = 0; at < end;) {
        const n = readSync(this.fd, buf, 0, Math.min(CHUNK, end - at), at);
        if (n === 0) throw new Error('the old cache shrank');
        out.seal.update(buf.subarray(0, n));
        writeSync(out.fd, buf, 0, n);
        at += n;
      }
    } catch {
      this.abandon();
    }
  }

  private write(text: string): void {
    const out = this.out;
    if (!out) return;
    out.parts.push(text);
    out.size += text.length;
    if (out.size >= CHUNK) this.flush();
  }

  /** Writes the parts up to the first place not filled yet. */
  private flush(): void {
    const out = this.out;
    if (!out || out.parts.length === 0) return;
    let n = 0;
    let text = '';
    for (; n < out.parts.length; n++) {
      const part = out.parts[n]!;
      const t = typeof part === 'string' ? part : part.text;
      if (t === undefined) break;
      text += t;
    }
    if (n === 0) return;
    out.parts = n === out.parts.length ? [] : out.parts.slice(n);
    out.size -= text.length;
    try {
      out.seal.update(text);
      writeSync(out.fd, text);
    } catch {
      this.abandon();
    }
  }

  /** Moves to the next old line (undefined at the seal). Each line is decoded from the bytes on its own. */
  private advance(): void {
    if (this.fd === undefined) {
      this.line = undefined;
      return;
    }
    for (;;) {
      const nl = this.chunk.indexOf(10, this.chunkAt);
      if (nl >= 0 && nl < this.chunkEnd) {
        this.line = this.chunk.toString('utf8', this.chunkAt, nl);
        this.lineStart = this.pos - this.chunkEnd + this.chunkAt;
        this.chunkAt = nl + 1;
        return;
      }
      if (this.pos >= this.limit) {
        this.line = undefined;
        return;
      }
      // Keep the partial line, read more behind it (a longer line than the buffer grows it).
      const rest = this.chunkEnd - this.chunkAt;
      const size = Math.max(CHUNK, rest * 2);
      const next = size > this.chunk.length ? Buffer.allocUnsafe(size) : this.chunk;
      this.chunk.copy(next, 0, this.chunkAt, this.chunkEnd);
      this.chunk = next;
      this.chunkAt = 0;
      this.chunkEnd = rest;
      const n = readSync(this.fd, this.chunk, rest, Math.min(this.chunk.length - rest, this.limit - this.pos), this.pos);
      if (n === 0) {
        this.line = undefined;
        return;
      }
      this.pos += n;
      this.chunkEnd += n;
    }
  }
}

/** Length of the seal line `end <64 hex>\n`. */
const SEAL_LINE = 69;

const STAMP_FORMAT = 'modelgate-version-cache-checked 2';

/** The content length the stamp `<file>.checked` vouches for (the file unchanged since a full check), else undefined. */
function stampedLength(fd: number, file: string, key: Buffer): number | undefined {
  const stat = fstatSync(fd, { bigint: true });
  return stat.size >= SEAL_LINE && stampHolds(`${file}.checked`, STAMP_FORMAT, key, [stat]) ? Number(stat.size) - SEAL_LINE : undefined;
}

/**
 * `sealedLength`, without reading the file again while it is unchanged since a check: the
 * check is stamped (cache-file.ts, writeStamp), and a file with the stamped stat was not written
 * since, so its seal still holds.
 */
function checkedLength(fd: number, file: string, key: Buffer): number | undefined {
  const stamped = stampedLength(fd, file, key);
  if (stamped !== undefined) return stamped;
  const limit = sealedLength(fd, key);
  if (limit !== undefined) writeStamp(`${file}.checked`, STAMP_FORMAT, key, [fstatSync(fd, { bigint: true })]);
  return limit;
}

/**
 * The length of a sealed file's content (everything before its `end <seal>` line), after
 * checking the seal under `key` in one pass; undefined when the seal is missing or does not match.
 */
function sealedLength(fd: number, key: Buffer): number | undefined {
  const size = fstatSync(fd).size;
  const tailLength = Math.min(size, 70);
  const tail = Buffer.alloc(tailLength);
  readSync(fd, tail, 0, tailLength, size - tailLength);
  const m = /(?:^|\n)end ([0-9a-f]{64})\n$/.exec(tail.toString('latin1'));
  if (!m) return undefined;
  const limit = size - SEAL_LINE;
  const hash = sealer(key);
  const buf = Buffer.allocUnsafe(CHUNK);
  for (let at = 0; at < limit;) {
    const n = readSync(fd, buf, 0, Math.min(CHUNK, limit - at), at);
    if (n === 0) return undefined;
    hash.update(buf.subarray(0, n));
    at += n;
  }
  return hash.digest('hex') === m[1] ? limit : undefined;
}
