import type { Model, ModelVersion, Stage } from '../manifest/types.js';
import { STAGES } from '../manifest/types.js';

/**
 * The MLflow Model Registry's records, as MLflow's own server answers them (the JSON of
 * `model_registry.proto` messages: snake_case fields, versions as strings, times in epoch
 * milliseconds), made from modelgate's: the one place where the two vocabularies meet. Pure:
 * records in, records out.
 */

export interface MlflowTag {
  key: string;
  value: string;
}

export interface MlflowModelVersion {
  name: string;
  version: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  user_id?: string;
  current_stage: string;
  description?: string;
  source: string;
  run_id?: string;
  run_link?: string;
  status: 'READY';
  tags: MlflowTag[];
  aliases: string[];
}

export interface MlflowRegisteredModel {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description?: string;
  latest_versions: MlflowModelVersion[];
  tags: MlflowTag[];
  aliases: Array<{ alias: string; version: string }>;
}

/** MLflow's error codes that serve answers with, and the HTTP status MLflow's server gives each. */
export const MLFLOW_ERROR_STATUS = {
  INVALID_PARAMETER_VALUE: 400,
  RESOURCE_ALREADY_EXISTS: 400,
  BAD_REQUEST: 400,
  INVALID_STATE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  RESOURCE_DOES_NOT_EXIST: 404,
  INTERNAL_ERROR: 500,
  ENDPOINT_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_LIMIT_EXCEEDED: 429,
  TEMPORARILY_UNAVAILABLE: 503,
} as const;

export type MlflowErrorCode = keyof typeof MLFLOW_ERROR_STATUS;

/** An answer in MLflow's error shape: `{"error_code": …, "message": …}` with its HTTP status. */
export class MlflowError extends Error {
  constructor(
    readonly errorCode: MlflowErrorCode,
    message: string,
  ) {
    super(message);
  }
  get status(): number {
    return MLFLOW_ERROR_STATUS[this.errorCode];
  }
  toJSON(): { error_code: string; message: string } {
    return { error_code: this.errorCode, message: this.message };
  }
}

/** What a version's MLflow record needs beside its manifest. */
export interface VersionContext {
  /** Where MLflow's client downloads the version from (`source`, and the download URI). */
  downloadUri: string;
  aliases?: readonly string[];
}

const millis = (iso: string): number => Date.parse(iso);

/**
 * The tags a version shows in MLflow: its annotations as they are (what `set_model_version_tag`
 * sets), and modelgate's facts under `modelgate.` (digest, size, store URI, format, framework,
 * metrics, parameters, lineage), so an MLflow user sees everything the manifest records.
 */
function versionTags(v: ModelVersion): MlflowTag[] {
  const tags: MlflowTag[] = Object.entries(v.annotations ?? {})
    .filter(([key]) => key !== DESCRIPTION_ANNOTATION)
    .map(([key, value]) => ({ key, value }));
  const add = (key: string, value: unknown) => {
    if (value !== undefined && value !== null) tags.push({ key: `modelgate.${key}`, value: typeof value === 'string' ? value : JSON.stringify(value) });
  };
  add('sha256', v.artifact.sha256);
  add('size', String(v.artifact.size));
  add('uri', v.artifact.uri);
  add('format', v.format);
  if (v.framework) add('framework', v.framework.version ? `${v.framework.name}==${v.framework.version}` : v.framework.name);
  for (const [k, value] of Object.entries(v.metrics ?? {})) add(`metrics.${k}`, String(value));
  for (const [k, value] of Object.entries(v.parameters ?? {})) add(`params.${k}`, String(value));
  const code = v.lineage?.code;
  if (code?.repository) add('lineage.code.repository', code.repository);
  if (code?.commit) add('lineage.code.commit', code.commit);
  for (const [i, d] of (v.lineage?.data ?? []).entries()) add(`lineage.data.${i}`, d);
  if (v.lineage?.run?.url) add('lineage.run.url', v.lineage.run.url);
  return tags;
}

/**
 * The annotation a version's description edited after registration is kept in (MLflow's
 * update_model_version): the manifest's own `description` stays as registered, and this
 * annotation, when set, is the description MLflow's client reads (not a tag).
 */
export const DESCRIPTION_ANNOTATION = 'description';

/** A modelgate version as MLflow's `ModelVersion`. */
export function toMlflowVersion(v: ModelVersion, context: VersionContext): MlflowModelVersion {
  const created = millis(v.createdAt);
  const out: MlflowModelVersion = {
    name: v.model,
    version: String(v.version),
    creation_timestamp: created,
    last_updated_timestamp: created,
    current_stage: v.stage,
    source: context.downloadUri,
    status: 'READY',
    tags: versionTags(v),
    aliases: [...(context.aliases ?? [])],
  };
  if (v.createdBy !== undefined) out.user_id = v.createdBy;
  const description = v.annotations?.[DESCRIPTION_ANNOTATION] ?? v.description;
  if (description !== undefined) out.description = description;
  if (v.lineage?.run?.id !== undefined) out.run_id = v.lineage.run.id;
  if (v.lineage?.run?.url !== undefined) out.run_link = v.lineage.run.url;
  return out;
}

/** What a registered model's MLflow record is made of. */
export interface ModelContext {
  name: string;
  model?: Model;
  /** The newest version in each stage that has one (MLflow's `latest_versions`), as MLflow records. */
  latest: MlflowModelVersion[];
  /** Creation time of the first version and of the newest, in epoch ms. */
  first?: number;
  last?: number;
  aliases?: ReadonlyArray<{ alias: string; version: number }>;
}

/** A modelgate model as MLflow's `RegisteredModel`. */
export function toMlflowRegisteredModel(m: ModelContext): MlflowRegisteredModel {
  const tags: MlflowTag[] = [];
  if (m.model?.owners?.length) tags.push({ key: 'modelgate.owners', value: m.model.owners.join(',') });
  if (m.model?.retired) tags.push({ key: 'modelgate.retired', value: 'true' });
  const out: MlflowRegisteredModel = {
    name: m.name,
    creation_timestamp: m.first ?? 0,
    last_updated_timestamp: m.last ?? m.first ?? 0,
    latest_versions: m.latest,
    tags,
    aliases: (m.aliases ?? []).map((a) => ({ alias: a.alias, version: String(a.version) })),
  };
  if (m.model?.description !== undefined) out.description = m.model.description;
  return out;
}

/**
 * A stage name as MLflow's client sends it (any case: `production`, `Production`), or undefined
 * for a name that is not a stage.
 */
export function parseMlflowStage(text: string): Stage | undefined {
  return STAGES.find((s) => s.toLowerCase() === text.trim().toLowerCase());
}

// ---------------------------------------------------------------------------------------------
// MLflow's search filter: `<key> <op> <value>` clauses joined by AND, as MLflow's server takes
// them for registered models (`name`, `tags.<key>`) and model versions (`name`, `run_id`,
// `version_number`, `source_path`, `tags.<key>`).

export type FilterOp = '=' | '!=' | 'LIKE' | 'ILIKE' | 'IN' | 'NOT IN' | '<' | '<=' | '>' | '>=';

export interface FilterClause {
  /** `name`, `run_id`, `version_number`, `source_path`, or `tags.<key>`. */
  key: string;
  op: FilterOp;
  /** One value, or the list of an IN. */
  value: string | number | Array<string | number>;
}

const TOKEN =
  /\s*(?:(`[^`]*`|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(!=|<=|>=|=|<|>|\(|\)|,)|([A-Za-z_][A-Za-z0-9_]*(?:\.(?:[A-Za-z0-9_]+|`[^`]*`))*)|(-?[0-9]+(?:\.[0-9]+)?))/y;

type Token = { kind: 'string' | 'punct' | 'word' | 'number'; text: string };

function tokenize(filter: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < filter.length) {
    if (/^\s*$/.test(filter.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(filter);
    if (!m) throw invalid(`Invalid filter '${filter}': cannot parse at position ${at}`);
    at = TOKEN.lastIndex;
    if (m[1] !== undefined) {
      const quote = m[1][0];
      if (quote === '`') out.push({ kind: 'word', text: m[1].slice(1, -1) });
      else out.push({ kind: 'string', text: m[1].slice(1, -1).replace(/\\(.)/g, '$1') });
    } else if (m[2] !== undefined) out.push({ kind: 'punct', text: m[2] });
    else if (m[3] !== undefined) out.push({ kind: 'word', text: m[3] });
    else out.push({ kind: 'number', text: m[4]! });
  }
  return out;
}

function invalid(message: string): MlflowError {
  return new MlflowError('INVALID_PARAMETER_VALUE', message);
}

/**
 * Parses an MLflow search filter into clauses (all must hold). `allowed` names the plain keys
 * the entity takes (tags are always allowed); anything else is MLflow's INVALID_PARAMETER_VALUE.
 */
export function parseMlflowFilter(filter: string | undefined, allowed: readonly string[]): FilterClause[] {
  if (filter === undefined || filter.trim() === '') return [];
  const tokens = tokenize(filter);
  const clauses: FilterClause[] = [];
  let i = 0;
  const next = () => tokens[i++];
  for (;;) {
    const keyToken = next();
    if (!keyToken || keyToken.kind !== 'word') throw invalid(`Invalid filter '${filter}': expected an attribute`);
    let key = keyToken.text;
    const tag = /^(?:tags?)\.(.+)$/.exec(key);
    if (tag) key = `tags.${tag[1]!.replace(/^`|`$/g, '')}`;
    else if (!allowed.includes(key)) throw invalid(`Invalid attribute key '${key}' specified. Valid keys are '${allowed.join("', '")}'`);
    let opToken = next();
    if (!opToken) throw invalid(`Invalid filter '${filter}': expected a comparison after '${key}'`);
    let op: FilterOp;
    if (opToken.kind === 'word' && opToken.text.toUpperCase() === 'NOT') {
      opToken = next();
      if (opToken?.kind !== 'word' || opToken.text.toUpperCase() !== 'IN') throw invalid(`Invalid filter '${filter}': expected IN after NOT`);
      op = 'NOT IN';
    } else if (opToken.kind === 'word' && ['LIKE', 'ILIKE', 'IN'].includes(opToken.text.toUpperCase())) op = opToken.text.toUpperCase() as FilterOp;
    else if (opToken.kind === 'punct' && ['=', '!=', '<', '<=', '>', '>='].includes(opToken.text)) op = opToken.text as FilterOp;
    else throw invalid(`Invalid comparator '${opToken.text}' in filter '${filter}'`);
    let value: FilterClause['value'];
    if (op === 'IN' || op === 'NOT IN') {
      if (next()?.text !== '(') throw invalid(`Invalid filter '${filter}': expected ( after ${op}`);
      const list: Array<string | number> = [];
      for (;;) {
        const v = next();
        if (!v || (v.kind !== 'string' && v.kind !== 'number')) throw invalid(`Invalid filter '${filter}': expected a value in the list`);
        list.push(v.kind === 'number' ? Number(v.text) : v.text);
        const sep = next();
        if (sep?.text === ')') break;
        if (sep?.text !== ',') throw invalid(`Invalid filter '${filter}': expected , or ) in the list`);
      }
      value = list;
    } else {
      const v = next();
      if (!v || (v.kind !== 'string' && v.kind !== 'number')) throw invalid(`Invalid filter '${filter}': expected a quoted string or a number after ${op}`);
      value = v.kind === 'number' ? Number(v.text) : v.text;
    }
    clauses.push({ key, op, value });
    const joiner = next();
    if (!joiner) return clauses;
    if (joiner.kind !== 'word' || joiner.text.toUpperCase() !== 'AND') throw invalid(`Invalid filter '${filter}': clauses are joined with AND`);
  }
}

/** SQL LIKE as MLflow's stores apply it: `%` any run, `_` one character; ILIKE ignores case. */
function like(text: string, pattern: string, ignoreCase: boolean): boolean {
  const re = pattern
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/%/g, '.*')
    .replace(/_/g, '.');
  return new RegExp(`^${re}$`, ignoreCase ? 'is' : 's').test(text);
}

/** Whether a value (undefined: the attribute or tag is absent) satisfies one clause. */
export function clauseHolds(clause: FilterClause, actual: string | number | undefined): boolean {
  const { op, value } = clause;
  // An absent attribute or tag differs from every value (MLflow's client excludes prompts with
  // tags.`mlflow.prompt.is_prompt` != 'true', which every model without that tag passes), and is
  // like, equal to or ordered against none.
  if (actual === undefined) return op === '!=' || op === 'NOT IN';
  if (op === 'IN' || op === 'NOT IN') {
    const found = (value as Array<string | number>).some((v) => String(v) === String(actual));
    return op === 'IN' ? found : !found;
  }
  if (op === 'LIKE' || op === 'ILIKE') return like(String(actual), String(value), op === 'ILIKE');
  if (typeof actual === 'number' || typeof value === 'number') {
    const [a, b] = [Number(actual), Number(value)];
    if (Number.isNaN(a) || Number.isNaN(b)) return false;
    return compare(a, b, op);
  }
  return compare(actual, value as string, op);
}

function compare<T extends string | number>(a: T, b: T, op: FilterOp): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    default:
      return a >= b;
  }
}

/** Whether an MLflow record satisfies every clause; `attribute` gives a plain key's value. */
export function matchesFilter(clauses: readonly FilterClause[], attribute: (key: string) => string | number | undefined, tags: readonly MlflowTag[]): boolean {
  return clauses.every((c) => {
    if (c.key.startsWith('tags.')) {
      const key = c.key.slice('tags.'.length);
      return clauseHolds(c, tags.find((t) => t.key === key)?.value);
    }
    return clauseHolds(c, attribute(c.key));
  });
}

/** The exact model name a filter pins (`name = 'x'`), for a search that then reads one model only. */
export function exactName(clauses: readonly FilterClause[]): string | undefined {
  const c = clauses.find((x) => x.key === 'name' && x.op === '=' && typeof x.value === 'string');
  return c?.value as string | undefined;
}

/** MLflow's page tokens: an opaque offset into the ordered results. */
export function parsePageToken(token: string | undefined): number {
  if (!token) return 0;
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const m = /^offset:([0-9]{1,9})$/.exec(text);
  if (!m) throw invalid(`Invalid page token '${token}'`);
  return Number(m[1]);
}

export function pageToken(offset: number): string {
  return Buffer.from(`offset:${offset}`, 'utf8').toString('base64url');
}
