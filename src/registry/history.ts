import type { GitRepo } from '../git/repo.js';
import { STAGES, type Stage } from '../manifest/types.js';
import { aliasesFile, parseManifestPath, quickStage, versionsDir } from './layout.js';

/** The commit on the first-parent line of the current branch that made a change. */
export interface ChangeCommit {
  /** Committer date of the commit that made the change (the merge, for a pull request). */
  date: string;
  author: string;
  email: string;
  commit: string;
  /** Tree of `commit`: where its decision records are stored (SPEC v3 §14; a record proves the move from the first parent's tree to this one). */
  tree: string;
  pullRequest: number | null;
}

/** One stage change of one version. */
export interface StageChange extends ChangeCommit {
  version: number;
  /** null: the version was registered by this change. */
  from: Stage | null;
  /** null: the version file was removed. */
  to: Stage | null;
}

const NULL_OID = /^0+$/;

/** `Merge pull request #12 from …` (a merge) or `Title (#12)` (a squash merge). */
function pullRequestNumber(message: string): number | null {
  const merge = /^Merge pull request #(\d+) from /.exec(message);
  if (merge) return Number(merge[1]);
  const squash = /\(#(\d+)\)\s*$/.exec(message.split('\n', 1)[0] ?? '');
  return squash ? Number(squash[1]) : null;
}

/** One file's change in one commit of the first-parent line: the blob before and after it. */
interface FileChange extends ChangeCommit {
  path: string;
  /** undefined: the file was added (oldOid) or deleted (newOid). */
  oldOid?: string;
  newOid?: string;
}

/** The commit part of a file change. */
function commitOf(c: FileChange): ChangeCommit {
  return { date: c.date, author: c.author, email: c.email, commit: c.commit, tree: c.tree, pullRequest: c.pullRequest };
}

/** The blobs, before and after, that `changes` name (each once). */
function blobIds(changes: readonly FileChange[]): string[] {
  return [...new Set(changes.flatMap((c) => [c.oldOid, c.newOid].filter((o): o is string => o !== undefined)))];
}

/**
 * Every change to the files under `pathspecs` on the first-parent line from `rev` back, oldest
 * first and in path order within a commit: one `git log` with raw diffs. Stage history and alias
 * history both read from it.
 */
async function fileChanges(repo: GitRepo, pathspecs: readonly string[], rev: string): Promise<FileChange[]> {
  const log = await repo.firstParentRawLog(rev, pathspecs);
  if (log === undefined) return [];
  const changes: FileChange[] = [];
  // git log lists newest first; changes are reported oldest first.
  for (const record of log.split('\x1e').reverse()) {
    if (!record) continue;
    const [commit, tree, author, email, date, message, rest = ''] = record.split('\x1f');
    const pullRequest = pullRequestNumber(message ?? '');
    const when = utc(date!);
    const raw = /:\d{6} \d{6} ([0-9a-f]+) ([0-9a-f]+) [A-Z]\d*\0([^\0]*)\0/g;
    for (let m = raw.exec(rest); m; m = raw.exec(rest)) {
      changes.push({
        commit: commit!,
        tree: tree!,
        author: author!,
        email: email!,
        date: when,
        pullRequest,
        path: m[3]!,
        oldOid: NULL_OID.test(m[1]!) ? undefined : m[1],
        newOid: NULL_OID.test(m[2]!) ? undefined : m[2],
      });
    }
  }
  return changes;
}

/**
 * A model's stage changes and alias moves (stageHistory and aliasHistory) from one `git log` over
 * its versions folder and aliases file: what `history` shows.
 */
export async function modelChanges(repo: GitRepo, model: string, rev = 'HEAD'): Promise<{ stages: StageChange[]; aliases: AliasChange[] }> {
  const changes = await fileChanges(repo, [`${versionsDir(model)}/`, aliasesFile(model)], rev);
  const [stages, aliases] = await Promise.all([stagesOf(repo, model, changes), aliasMoves(repo, model, changes)]);
  return { stages, aliases };
}

/**
 * Every stage change of `model`'s versions, oldest first: one `git log` over the versions folder
 * with raw diffs, then one `git cat-file --batch` for the old and new blobs. From `rev` back (default HEAD).
 */
export async function stageHistory(repo: GitRepo, model: string, rev = 'HEAD'): Promise<StageChange[]> {
  return stagesOf(repo, model, await fileChanges(repo, [`${versionsDir(model)}/`], rev));
}

/** The stage changes among `found` (those of `model`'s version files). */
async function stagesOf(repo: GitRepo, model: string, found: readonly FileChange[]): Promise<StageChange[]> {
  const raws: Array<FileChange & { version: number }> = [];
  for (const change of found) {
    const parsed = parseManifestPath(change.path);
    if (parsed?.kind === 'ModelVersion' && parsed.model === model) raws.push({ ...change, version: parsed.version });
  }
  const blobs = await repo.readBlobs(blobIds(raws));
  const stages = new Map<string, Stage | null>();
  let loader: Promise<typeof import('../manifest/load.js')> | undefined;
  for (const r of raws) {
    for (const oid of [r.oldOid, r.newOid]) {
      if (!oid || stages.has(oid)) continue;
      const blob = blobs.get(oid);
      // Latin-1 for the line scan: it only looks at ASCII, which UTF-8 never uses inside a character.
      const quick = blob === undefined ? null : quickStage(blob.toString('latin1'));
      // The parser is loaded only for a blob the line scan cannot answer for.
      stages.set(oid, quick !== undefined ? quick : stageOf(await (loader ??= import('../manifest/load.js')), blob!.toString('utf8'), r.path));
    }
  }
  const changes: StageChange[] = [];
  for (const r of raws) {
    const from = r.oldOid ? (stages.get(r.oldOid) ?? null) : null;
    const to = r.newOid ? (stages.get(r.newOid) ?? null) : null;
    if (r.oldOid && r.newOid && from === to) continue;
    changes.push({ ...commitOf(r), version: r.version, from, to });
  }
  return changes;
}

/** One move of one alias (set, moved or deleted). */
export interface AliasChange extends ChangeCommit {
  alias: string;
  /** null: the alias was set by this change. */
  from: number | null;
  /** null: the alias was deleted. */
  to: number | null;
}

/**
 * Every move of `model`'s aliases, oldest first (SPEC v3 §9): one `git log` over
 * models/<model>/aliases.yaml with raw diffs, then one `git cat-file --batch` for its blobs. From `rev` back (default HEAD).
 */
export async function aliasHistory(repo: GitRepo, model: string, rev = 'HEAD'): Promise<AliasChange[]> {
  return aliasMoves(repo, model, await fileChanges(repo, [aliasesFile(model)], rev));
}

/** The alias moves among `found` (those of `model`'s aliases file). */
async function aliasMoves(repo: GitRepo, model: string, found: readonly FileChange[]): Promise<AliasChange[]> {
  const file = aliasesFile(model);
  const raws = found.filter((c) => c.path === file);
  if (raws.length === 0) return [];
  const blobs = await repo.readBlobs(blobIds(raws));
  // The parser loads only for a model whose aliases file has a history.
  const { loadManifest } = await import('../manifest/load.js');
  // A historical file the current schema refuses counts as no aliases: nothing is guessed from it.
  const aliasesOf = (oid: string | undefined): Record<string, number> => {
    const blob = oid === undefined ? undefined : blobs.get(oid);
    return blob === undefined ? {} : (loadManifest(blob.toString('utf8'), file, 'ModelAliases').value?.aliases ?? {});
  };
  const changes: AliasChange[] = [];
  for (const r of raws) {
    const before = aliasesOf(r.oldOid);
    const after = aliasesOf(r.newOid);
    const at = (m: Record<string, number>, a: string) => (Object.hasOwn(m, a) ? m[a]! : null);
    for (const alias of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
      const from = at(before, alias);
      const to = at(after, alias);
      if (from === to) continue;
      changes.push({ ...commitOf(r), alias, from, to });
    }
  }
  return changes;
}

/**
 * The stage a historical blob records. Old commits may hold documents the current schema
 * rejects; their `stage` still counts when it names a stage (STAGE_LINE, the first such line).
 */
function stageOf(load: typeof import('../manifest/load.js'), text: string, path: string): Stage | null {
  const loaded = load.loadManifest(text, path, 'ModelVersion');
  if (loaded.value) return loaded.value.stage;
  return stageFromLine(text);
}

const STAGE_LINE = /^stage:[ \t]*["']?([A-Za-z]+)["']?[ \t]*(?:#.*)?$/m;

/** The answer for a document the loader refuses: its first `stage:` line, when that names a stage. */
export function stageFromLine(text: string): Stage | null {
  const m = STAGE_LINE.exec(text);
  return STAGES.find((s) => s === m?.[1]) ?? null;
}

/** `2026-03-05T12:00:00Z` from git's ISO form with any offset. */
export function utc(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
