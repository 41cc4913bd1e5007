import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { ExitCode, ModelgateError } from '../errors.js';
import { GitRepo } from '../git/repo.js';
import { loadManifest } from '../manifest/load.js';
import { formatProblem } from '../manifest/problem.js';
import { schemas } from '../manifest/schemas.js';
import type { ModelVersion, Stage } from '../manifest/types.js';
import { isModelName, mayHaveStage, MODELS_DIR, parseManifestPath, versionsDir } from './layout.js';
import { readRegistryFileSync } from './source.js';

/**
 * Every version in a registry's work tree, fast enough for 100,000 manifests.
 *
 * Parsing that many YAML documents takes seconds, so two things avoid it:
 * - a cache of parsed versions in `.git/modelgate/`, keyed by git blob id: content-addressed, so
 *   an entry can never describe other bytes than the file has now. Files that differ from the
 *   index (`git diff-files`) or are untracked are read from disk and keyed by their own hash;
 * - for a stage query, a textual prefilter: a file can only hold `stage: Production` if its text
 *   contains `Production` or a backslash (an escape). `git grep --cached` finds those; the real
 *   loader still decides for each candidate. Its answer is cached for the set of blobs it searched.
 */
export interface VersionQuery {
  model?: string;
  stage?: Stage;
}

/** Entries were validated against the ModelVersion schema of the build that wrote them. */
const CACHE_FORMAT = `modelgate-version-cache 2 ${createHash('sha256').update(JSON.stringify(schemas.ModelVersion)).digest('hex').slice(0, 16)}`;
const PREFILTER_FORMAT = 'modelgate-stage-prefilter 2';

/**
 * A cache file ends with `end <sha256 of everything before that line>`: a file cut short, cut
 * in half, or edited (even into another well-formed file) fails the check and is rebuilt, so a
 * damaged cache costs time, never a wrong answer.
 */
function sealed(content: string): string {
  return `${content}end ${createHash('sha256').update(content).digest('hex')}\n`;
}

/** The content of a sealed file, or undefined when it is missing or damaged. */
function unseal(text: string | undefined): string | undefined {
  if (!text || !text.endsWith('\n')) return undefined;
  const at = text.lastIndexOf('\nend ', text.length - 2);
  if (at < 0) return undefined;
  const content = text.slice(0, at + 1);
  const digest = text.slice(at + 5, text.length - 1);
  return digest.length === 64 && createHash('sha256').update(content).digest('hex') === digest ? content : undefined;
}

interface Entry {
  path: string;
  /** Blob id for files identical to the index; undefined for edited or untracked files. */
  oid?: string;
}

/** Versions in the work tree matching `query`, sorted by model then version. Throws E_INVALID_MANIFEST. */
export async function scanVersions(root: string, query: VersionQuery = {}): Promise<ModelVersion[]> {
  const scope = query.model ? versionsDir(query.model) : MODELS_DIR;
  const repo = new GitRepo(root);
  const gitDir = await findGitDir(repo, root);
  const cacheDir = gitDir ? join(gitDir, 'modelgate') : undefined;
  let found: Entry[];
  let prefilter: Promise<Set<string>> | undefined;
  let cache: VersionCache;
  if (cacheDir) {
    const staged = await repo.out(['ls-files', '-s', '-v', '-z', '--', scope]);
    // The prefilter depends on the index alone: it runs while git compares the work tree.
    if (query.stage) prefilter = stageCandidates(repo, cacheDir, scope, query.stage, staged);
    const [modified, untracked, opened] = await Promise.all([
      repo.out(['diff-files', '--name-only', '-z', '--relative', '--', scope]),
      repo.out(['ls-files', '-o', '--exclude-standard', '-z', '--', scope]),
      VersionCache.open(cacheDir),
    ]);
    found = entriesFromGit(staged, modified, untracked);
    cache = opened;
  } else {
    found = await listWithFs(root, scope);
    cache = new VersionCache(undefined, new Map());
  }
  const entries = found.filter((e) => parseManifestPath(e.path)?.kind === 'ModelVersion');

  const out: ModelVersion[] = [];
  const wanted = (stageColumn: string) => !query.stage || stageColumn === query.stage;
  const toRead: Entry[] = [];
  const unknownClean: Entry[] = [];
  for (const e of entries) {
    const hit = e.oid ? cache.get(e.oid) : undefined;
    if (hit) {
      if (wanted(hit.stage)) out.push(hit.value());
    } else if (e.oid) unknownClean.push(e);
    else toRead.push(e);
  }

  if (prefilter) {
    const candidates = await prefilter;
    for (const e of unknownClean) if (candidates.has(e.oid!)) toRead.push(e);
  } else for (const e of unknownClean) toRead.push(e);

  const texts = await readAll(root, toRead.map((e) => e.path));
  for (let i = 0; i < toRead.length; i++) {
    const e = toRead[i]!;
    const bytes = texts[i];
    if (bytes === undefined) continue;
    const text = bytes.toString('utf8');
    if (query.stage && !mayHaveStage(text, query.stage)) continue;
    const version = parseVersion(text, e.path);
    cache.put(e.oid ?? blobId(bytes), version);
    if (wanted(version.stage)) out.push(version);
  }
  await cache.save();
  return out.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.version - b.version));
}

function parseVersion(text: string, path: string): ModelVersion {
  const loaded = loadManifest(text, path, 'ModelVersion');
  if (!loaded.value) {
    throw new ModelgateError('E_INVALID_MANIFEST', loaded.problems.map(formatProblem).join('\n'), ExitCode.content, { problems: loaded.problems });
  }
  return loaded.value;
}

async function findGitDir(repo: GitRepo, root: string): Promise<string | undefined> {
  try {
    const r = await repo.run(['rev-parse', '--is-inside-work-tree', '--git-dir'], { okCodes: [128] });
    const [inside, dir] = r.stdout.trim().split('\n');
    if (r.code !== 0 || inside !== 'true' || !dir) return undefined;
    return isAbsolute(dir) ? dir : join(root, dir);
  } catch {
    return undefined;
  }
}

function splitZ(text: string): string[] {
  return text.split('\0').filter(Boolean);
}

/** Index entries, minus those the work tree changed, plus untracked files. */
function entriesFromGit(staged: string, modified: string, untracked: string): Entry[] {
  const dirty = new Set(splitZ(modified));
  const entries = new Map<string, Entry>();
  for (const line of splitZ(staged)) {
    const tab = line.indexOf('\t');
    const [tag, , oid, stageNumber] = line.slice(0, tab).split(' ');
    const path = line.slice(tab + 1);
    // Only a plain cached entry ('H') is vouched for by diff-files: assume-unchanged (lowercase)
    // and skip-worktree ('S') entries may differ unseen, and unmerged entries have no single blob.
    const clean = tag === 'H' && stageNumber === '0' && !dirty.has(path);
    entries.set(path, clean ? { path, oid: oid! } : { path });
  }
  for (const path of splitZ(untracked)) entries.set(path, { path });
  return [...entries.values()];
}

async function listWithFs(root: string, scope: string): Promise<Entry[]> {
  const models = scope === MODELS_DIR ? (await readdir(join(root, MODELS_DIR)).catch(() => [] as string[])).filter(isModelName) : [scope.split('/')[1]!];
  const entries: Entry[] = [];
  for (const m of models) {
    const dir = versionsDir(m);
    for (const name of await readdir(join(root, dir)).catch(() => [] as string[])) entries.push({ path: `${dir}/${name}` });
  }
  return entries;
}

/** Synchronous reads: far faster than concurrent async reads for many small files. */
async function readAll(root: string, paths: string[]): Promise<Array<Buffer | undefined>> {
  return paths.map((path) => readRegistryFileSync(root, path));
}

/** git's blob id of `bytes` (SHA-1 form): the cache key of a file that is not in the index as is. */
function blobId(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

/**
 * Blob ids under `scope` whose text may hold `stage`, by `git grep` over the index. The answer
 * depends only on the set of blobs searched, so it is cached under a hash of that set.
 */
async function stageCandidates(repo: GitRepo, cacheDir: string, scope: string, stage: Stage, staged: string): Promise<Set<string>> {
  const key = createHash('sha256').update(`${scope}\0${stage}\0`).update(staged).digest('hex');
  const file = join(cacheDir, `prefilter-${stage.toLowerCase()}.txt`);
  const cached = unseal(await readFile(file, 'utf8').catch(() => undefined));
  if (cached) {
    const [format, cachedKey, ...oids] = cached.split('\n');
    if (format === PREFILTER_FORMAT && cachedKey === key) return new Set(oids.filter(Boolean));
  }
  const r = await repo.run(['grep', '--cached', '-l', '-z', '-F', '-e', stage, '-e', '\\', '--', scope], { okCodes: [1] });
  const byPath = new Map<string, string>();
  for (const line of splitZ(staged)) {
    const tab = line.indexOf('\t');
    byPath.set(line.slice(tab + 1), line.slice(0, tab).split(' ')[2]!);
  }
  const oids = new Set<string>();
  for (const path of splitZ(r.stdout)) {
    const oid = byPath.get(path);
    if (oid) oids.add(oid);
  }
  const parts = [PREFILTER_FORMAT, key];
  for (const oid of oids) parts.push(oid);
  await writeAtomic(file, sealed(parts.join('\n') + '\n'));
  return oids;
}

/** Parsed versions by blob id, one line each: `oid <TAB> stage <TAB> json`; JSON is parsed only on use. */
class VersionCache {
  private readonly added = new Map<string, string>();

  constructor(
    private readonly dir: string | undefined,
    private readonly lines: Map<string, string>,
  ) {}

  static async open(dir: string): Promise<VersionCache> {
    const lines = new Map<string, string>();
    const text = unseal(await readFile(join(dir, 'versions.tsv'), 'utf8').catch(() => undefined)) ?? '';
    if (text.startsWith(CACHE_FORMAT + '\n')) {
      let pos = CACHE_FORMAT.length + 1;
      while (pos < text.length) {
        let end = text.indexOf('\n', pos);
        if (end < 0) end = text.length;
        const tab = text.indexOf('\t', pos);
        if (tab > pos && tab < end) lines.set(text.slice(pos, tab), text.slice(tab + 1, end));
        pos = end + 1;
      }
    }
    return new VersionCache(dir, lines);
  }

  get(oid: string): { stage: string; value: () => ModelVersion } | undefined {
    const line = this.lines.get(oid);
    if (line === undefined) return undefined;
    const tab = line.indexOf('\t');
    return { stage: line.slice(0, tab), value: () => JSON.parse(line.slice(tab + 1)) as ModelVersion };
  }

  put(oid: string, version: ModelVersion): void {
    if (this.lines.has(oid)) return;
    const line = `${version.stage}\t${JSON.stringify(version)}`;
    this.lines.set(oid, line);
    this.added.set(oid, line);
  }

  /** Best effort: a read-only .git only costs speed. */
  async save(): Promise<void> {
    if (!this.dir || this.added.size === 0) return;
    const parts = [CACHE_FORMAT];
    for (const [oid, line] of this.lines) parts.push(`${oid}\t${line}`);
    await writeAtomic(join(this.dir, 'versions.tsv'), sealed(parts.join('\n') + '\n'));
  }
}

async function writeAtomic(file: string, content: string): Promise<void> {
  try {
    await mkdir(join(file, '..'), { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, content);
    await rename(tmp, file);
  } catch {
    // The cache is an optimisation; failing to write it must not fail the command.
  }
}
