import type { Stage } from '../manifest/types.js';
import { isAliasName } from '../registry/layout.js';

/**
 * MLflow's records as its tracking server's REST API answers them (mlflow/protos/service.proto,
 * model_registry.proto), and what modelgate makes of them (pure: no HTTP, no store, no git).
 */

export interface MlflowTag {
  key: string;
  value?: string;
}

export interface MlflowAlias {
  alias: string;
  version: string;
}

/** A registered model (`registered-models/search`). */
export interface MlflowRegisteredModel {
  name: string;
  creation_timestamp?: number | string;
  last_updated_timestamp?: number | string;
  description?: string;
  tags?: MlflowTag[];
  aliases?: MlflowAlias[];
}

/** A model version (`model-versions/search`). */
export interface MlflowModelVersion {
  name: string;
  version: string;
  creation_timestamp?: number | string;
  last_updated_timestamp?: number | string;
  user_id?: string;
  current_stage?: string;
  description?: string;
  source?: string;
  run_id?: string;
  status?: string;
  tags?: MlflowTag[];
  aliases?: string[];
}

/** A run (`runs/get`). */
export interface MlflowRun {
  info: { run_id: string; experiment_id?: string; run_name?: string; user_id?: string; artifact_uri?: string; lifecycle_stage?: string };
  data?: { metrics?: Array<{ key: string; value: number | string }>; params?: MlflowTag[]; tags?: MlflowTag[] };
}

/** The annotation that names the MLflow version an imported version came from: what makes a re-run skip it. */
export const MLFLOW_VERSION_ANNOTATION = 'mlflow/model-version';

/** `<name>/<version>`: the value of MLFLOW_VERSION_ANNOTATION. */
export const mlflowVersionKey = (name: string, version: string | number): string => `${name}/${version}`;

/** An MLflow timestamp (milliseconds, sent as a number or a string) as a manifest time, in UTC with seconds. */
export function mlflowTime(ms: number | string | undefined): string | undefined {
  const n = Number(ms);
  if (ms === undefined || !Number.isFinite(n) || n <= 0) return undefined;
  return new Date(n).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const STAGES: Record<string, Stage> = { none: 'None', staging: 'Staging', production: 'Production', archived: 'Archived' };

/** MLflow's stage names (any case) as modelgate's. */
const stageOf = (mlflowStage: string | undefined): Stage => STAGES[(mlflowStage ?? 'None').toLowerCase()] ?? 'None';

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
const ANNOTATION_NAME = /^[a-z0-9](?:[a-z0-9_.-]{0,61}[a-z0-9])?$/;

/** Something MLflow records that modelgate cannot carry, with the reason. */
export interface NotCarried {
  what: string;
  reason: string;
}

/** What a run adds to a version: metrics (latest value per key), params as their text, lineage and run annotations. */
export interface RunValues {
  metrics: Record<string, number>;
  parameters: Record<string, string>;
  annotations: Record<string, string>;
  code?: { repository: string; commit: string };
}

/** The run's metrics, params and tags as manifest fields; keys a manifest cannot hold are reported. */
export function runValues(run: MlflowRun, where: string, notCarried: NotCarried[]): RunValues {
  const metrics: Record<string, number> = {};
  for (const m of run.data?.metrics ?? []) {
    const value = Number(m.value);
    if (!FIELD_NAME.test(m.key)) notCarried.push({ what: `${where} metric ${m.key}`, reason: 'not a metric name a manifest holds' });
    else if (!Number.isFinite(value)) notCarried.push({ what: `${where} metric ${m.key}`, reason: `${String(m.value)} is not a finite number` });
    else metrics[m.key] = value;
  }
  const parameters: Record<string, string> = {};
  for (const p of run.data?.params ?? []) {
    if (FIELD_NAME.test(p.key)) parameters[p.key] = p.value ?? '';
    else notCarried.push({ what: `${where} param ${p.key}`, reason: 'not a parameter name a manifest holds' });
  }
  const tags = Object.fromEntries((run.data?.tags ?? []).map((t) => [t.key, t.value ?? '']));
  const annotations: Record<string, string> = {};
  if (run.info.run_name) annotations['mlflow/run-name'] = run.info.run_name;
  if (run.info.experiment_id) annotations['mlflow/experiment-id'] = run.info.experiment_id;
  // MLflow's own tags (mlflow.user, mlflow.source.*, mlflow.log-model.history …) are MLflow's
  // bookkeeping; the user's tags are kept.
  for (const [key, value] of Object.entries(tags)) {
    if (key.startsWith('mlflow.')) continue;
    const annotation = tagAnnotation('mlflow-run', key);
    if (annotation) annotations[annotation] = value.slice(0, 4096);
    else notCarried.push({ what: `${where} run tag ${key}`, reason: 'not an annotation name (lowercase letters, digits, _ . -)' });
  }
  const commit = tags['mlflow.source.git.commit'];
  const repository = tags['mlflow.source.git.repoURL'];
  const code = commit && /^[0-9a-f]{40}$/.test(commit) && repository ? { repository, commit } : undefined;
  return { metrics, parameters, annotations, ...(code ? { code } : {}) };
}

/** `<prefix>/<key>` when `key` is a name an annotation may have, else undefined. */
export function tagAnnotation(prefix: string, key: string): string | undefined {
  return ANNOTATION_NAME.test(key) ? `${prefix}/${key}` : undefined;
}

/** The annotations of a version: where it came from, and its MLflow tags. */
export function versionAnnotations(v: MlflowModelVersion, where: string, notCarried: NotCarried[]): Record<string, string> {
  const out: Record<string, string> = { [MLFLOW_VERSION_ANNOTATION]: mlflowVersionKey(v.name, v.version) };
  if (v.source && v.source.length <= 4096) out['mlflow/source'] = v.source;
  for (const t of v.tags ?? []) {
    const key = tagAnnotation('mlflow-tag', t.key);
    if (key) out[key] = (t.value ?? '').slice(0, 4096);
    else notCarried.push({ what: `${where} tag ${t.key}`, reason: 'not an annotation name (lowercase letters, digits, _ . -)' });
  }
  return out;
}

/** One stage or alias move the import makes after the versions are in. */
export type MlflowMove =
  { kind: 'stage'; model: string; version: number; to: Stage; at?: string } | { kind: 'alias'; model: string; version: number; alias: string };

/**
 * The stage and alias moves that bring imported versions where MLflow has them. modelgate keeps
 * one version in Production: when MLflow has several, the one updated last stays and the others
 * are archived (reported). Production comes last (promoting archives whatever holds it);
 * aliases last of all, each on a version that is not archived.
 */
export function planMoves(
  model: MlflowRegisteredModel,
  versions: readonly MlflowModelVersion[],
  imported: ReadonlyMap<string, number>,
  notCarried: NotCarried[],
): MlflowMove[] {
  const mine = versions.filter((v) => imported.has(v.version));
  const production = mine
    .filter((v) => stageOf(v.current_stage) === 'Production')
    .sort((a, b) => Number(a.last_updated_timestamp ?? 0) - Number(b.last_updated_timestamp ?? 0) || Number(a.version) - Number(b.version));
  const winner = production.at(-1);
  const target = (v: MlflowModelVersion): Stage => {
    const stage = stageOf(v.current_stage);
    if (stage !== 'Production' || v === winner) return stage;
    notCarried.push({
      what: `${model.name} version ${v.version}`,
      reason: `in Production beside version ${winner!.version}: modelgate keeps one version in Production, so it is Archived`,
    });
    return 'Archived';
  };
  const targets = new Map(mine.map((v) => [v, target(v)]));
  const moves: MlflowMove[] = [];
  const ordered = [...mine].sort((a, b) => Number(a.last_updated_timestamp ?? 0) - Number(b.last_updated_timestamp ?? 0));
  for (const v of [...ordered.filter((v) => v !== winner), ...(winner ? [winner] : [])]) {
    const at = mlflowTime(v.last_updated_timestamp);
    moves.push({ kind: 'stage', model: model.name, version: imported.get(v.version)!, to: targets.get(v)!, ...(at ? { at } : {}) });
  }
  for (const a of model.aliases ?? []) {
    const n = imported.get(a.version);
    const v = mine.find((m) => m.version === a.version);
    if (n === undefined || !v) notCarried.push({ what: `${model.name} alias ${a.alias}`, reason: `version ${a.version} was not carried over` });
    else if (!isAliasName(a.alias)) notCarried.push({ what: `${model.name} alias ${a.alias}`, reason: 'not an alias name modelgate accepts' });
    else if (targets.get(v) === 'Archived')
      notCarried.push({ what: `${model.name} alias ${a.alias}`, reason: `version ${a.version} is archived, and an archived version keeps no alias` });
    else moves.push({ kind: 'alias', model: model.name, version: n, alias: a.alias });
  }
  return moves;
}

/**
 * Versions MLflow numbers but no longer lists: deleted (MLflow numbers versions 1, 2, 3 … and a
 * deleted one leaves its number unused).
 */
export function deletedVersions(versions: readonly MlflowModelVersion[]): number[] {
  const numbers = new Set(versions.map((v) => Number(v.version)));
  const top = Math.max(0, ...numbers);
  const out: number[] = [];
  for (let n = 1; n < top; n++) if (!numbers.has(n)) out.push(n);
  return out;
}
