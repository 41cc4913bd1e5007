import { describeChange, formatDiff, type FileChange, type PinChange, type SyncPlan } from '../deploy/plan.js';
import type { ModelVersion, Stage } from '../manifest/types.js';

/**
 * The change pipeline's plain data (pure: no fs, no git). Every writing command (register,
 * promote, rollback, archive, annotate, sync) plans one `Change`: the manifest edits plus the
 * re-rendered `deploy/<env>/` pins they move, a message and a branch name. `applyChange`
 * (src/promote/apply-change.ts) turns it into a local commit, a push or a pull request.
 */
export interface Change {
  kind: ChangeKind;
  summary: string;
  /** One line per manifest or pin touched, e.g. `fraud@3: Staging → Production`. */
  changes: string[];
  /** Every file the change writes, registry-relative, sorted: manifests first, then pins. `after` null deletes. */
  files: FileChange[];
  /** The pins the change moves (a subset of `files` is their text). */
  pins: PinChange[];
  /** The versions after the change, for the pull request body. */
  versions: ModelVersion[];
  /** From `branchName`. */
  branch: string;
  message: string;
}

export type ChangeKind = 'register' | 'promote' | 'rollback' | 'archive' | 'annotate' | 'alias' | 'sync';

/** What a branch name encodes; `branchName` and `parseBranch` are each other's inverse. */
export type BranchSpec =
  | { kind: 'register'; model: string; version: number }
  | { kind: 'stage'; model: string; version: number; stage: Stage }
  | { kind: 'annotate'; model: string; version: number; keys: string[] }
  | { kind: 'alias'; model: string; alias: string }
  | { kind: 'model'; model: string }
  | { kind: 'sync' };

const BRANCH_PREFIX = 'modelgate/';
const SYNC_BRANCH = `${BRANCH_PREFIX}sync`;
/** The one branch of `import mlflow --pr`: every imported version on it, one pull request. */
export const MLFLOW_IMPORT_BRANCH = `${BRANCH_PREFIX}import/mlflow`;
const STAGES: readonly Stage[] = ['None', 'Staging', 'Production', 'Archived'];

/**
 * The one place branch names are built: `modelgate/<model>-v<N>-register|<stage>|annotate-<keys>`,
 * `modelgate/alias/<model>/<alias>` (one branch per alias: a second move updates its pull request),
 * `modelgate/model/<model>` (an edit of its model.yaml), `modelgate/sync`.
 */
export function branchName(spec: BranchSpec): string {
  switch (spec.kind) {
    case 'sync':
      return SYNC_BRANCH;
    case 'register':
      return `${BRANCH_PREFIX}${spec.model}-v${spec.version}-register`;
    case 'alias':
      return `${BRANCH_PREFIX}alias/${spec.model}/${spec.alias}`;
    case 'model':
      return `${BRANCH_PREFIX}model/${spec.model}`;
    case 'stage':
      return `${BRANCH_PREFIX}${spec.model}-v${spec.version}-${spec.stage.toLowerCase()}`;
    case 'annotate':
      return `${BRANCH_PREFIX}${spec.model}-v${spec.version}-annotate-${spec.keys
        .join('-')
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, '-')}`.slice(0, 200);
  }
}

const NAMED = /^modelgate\/(.+)-v([1-9][0-9]{0,8})-(register|none|staging|production|archived|annotate-.*)$/;

const ALIAS_BRANCH = /^modelgate\/alias\/([a-z0-9-]+)\/([a-z][a-z0-9_-]*)$/;

const MODEL_BRANCH = /^modelgate\/model\/([a-z0-9-]+)$/;

/** The one place branch names are read back; undefined for a branch modelgate did not name. */
export function parseBranch(name: string): BranchSpec | undefined {
  const ref = name.replace(/^refs\/heads\//, '');
  if (ref === SYNC_BRANCH) return { kind: 'sync' };
  const alias = ALIAS_BRANCH.exec(ref);
  if (alias) return { kind: 'alias', model: alias[1]!, alias: alias[2]! };
  const modelEdit = MODEL_BRANCH.exec(ref);
  if (modelEdit) return { kind: 'model', model: modelEdit[1]! };
  const m = NAMED.exec(ref);
  if (!m) return undefined;
  const model = m[1]!;
  const version = Number(m[2]);
  const tail = m[3]!;
  if (tail === 'register') return { kind: 'register', model, version };
  if (tail.startsWith('annotate-')) return { kind: 'annotate', model, version, keys: tail.slice('annotate-'.length).split('-').filter(Boolean) };
  return { kind: 'stage', model, version, stage: STAGES.find((s) => s.toLowerCase() === tail)! };
}

/** The highest version number of `model` that `branches` (names or refs) hold for a registration. */
export function registeredOnBranches(branches: readonly string[], model: string): number[] {
  const out: number[] = [];
  for (const b of branches) {
    const spec = parseBranch(b);
    if (spec?.kind === 'register' && spec.model === model) out.push(spec.version);
  }
  return out;
}

/** The manifest part of a change, as the planners in plan.ts produce it. */
export interface ManifestChange {
  kind: ChangeKind;
  summary: string;
  changes: string[];
  edits: Array<{ path: string; before?: string; after: string }>;
  versions: ModelVersion[];
  branch: string;
  message: string;
}

/**
 * Joins the manifest edits and the pins they move into one change. The pins' lines are added
 * to the message so the commit names what Argo CD will deploy.
 */
export function withPins(manifest: ManifestChange, pins: Pick<SyncPlan, 'files' | 'changes'>): Change {
  const manifestFiles: FileChange[] = manifest.edits
    .filter((e) => e.before !== e.after)
    .map((e) => ({ path: e.path, ...(e.before !== undefined && e.before !== '' ? { before: e.before } : {}), after: e.after }));
  const pinLines = pins.changes.map((c) => `deploy: ${describeChange(c)}`);
  const message = pinLines.length ? `${manifest.message.trimEnd()}\n\n${pinLines.map((l) => `- ${l}`).join('\n')}\n` : manifest.message;
  return {
    kind: manifest.kind,
    summary: manifest.summary,
    changes: [...manifest.changes, ...pinLines],
    files: [...manifestFiles, ...pins.files],
    pins: pins.changes,
    versions: manifest.versions,
    branch: manifest.branch,
    message,
  };
}

/** The unified diff of every file the change writes (what `--dry-run` prints). */
export function changeDiff(change: Pick<Change, 'files'>): string {
  return formatDiff(change);
}

/** The models a change's manifest edits touch: the only ones whose pins it can move. */
export function touchedModels(paths: readonly string[]): string[] {
  const names = new Set<string>();
  for (const p of paths) {
    const m = /^models\/([^/]+)\//.exec(p);
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}

/** `sync`'s change: the full rendering's files on the repair branch `modelgate/sync`. */
export function syncChange(plan: Pick<SyncPlan, 'files' | 'changes'>, message: string): Change {
  const lines = plan.changes.map(describeChange);
  return {
    kind: 'sync',
    summary: message.split('\n')[0]!,
    changes: lines,
    files: plan.files,
    pins: plan.changes,
    versions: [],
    branch: branchName({ kind: 'sync' }),
    message,
  };
}
