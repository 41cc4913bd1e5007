import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ModelVersion, Stage } from '../manifest/types.js';
import { STAGES } from '../manifest/types.js';
import { isModelName } from '../registry/layout.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import {
  exactName,
  matchesFilter,
  MlflowError,
  pageToken,
  parseMlflowFilter,
  parseMlflowStage,
  parsePageToken,
  toMlflowRegisteredModel,
  toMlflowVersion,
  type MlflowModelVersion,
  type MlflowRegisteredModel,
} from './mlflow.js';
import { artifactRoot } from './mlflow-artifacts.js';
import { commitOf } from './commit-hook.js';

/**
 * The read half of MLflow's Model Registry REST API (`/api/2.0/mlflow/…`), answered from the
 * request's commit: parse the request as MLflow's client sends it, read through the registry
 * snapshot, present through the mapping in mlflow.ts.
 */

const PREFIX = '/api/2.0/mlflow';

/** MLflow's defaults and ceilings for a page of search results. */
const REGISTERED_MODELS_PAGE = { default: 100, max: 1000 };
const MODEL_VERSIONS_PAGE = { default: 10_000, max: 200_000 };

const nameQuery = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 1024 } },
} as const;

const versionQuery = {
  type: 'object',
  required: ['name', 'version'],
  properties: { name: { type: 'string', maxLength: 1024 }, version: { type: 'string', maxLength: 32 } },
} as const;

const searchQuery = {
  type: 'object',
  properties: {
    filter: { type: 'string', maxLength: 4096 },
    max_results: { type: 'integer', minimum: 1 },
    order_by: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    page_token: { type: 'string', maxLength: 256 },
  },
} as const;

interface SearchArgs {
  filter?: string;
  max_results?: number;
  order_by?: string | string[];
  page_token?: string;
}

/** The artifact URI MLflow's client downloads a version from: serve's own artifact API. */
function downloadUri(request: FastifyRequest, model: string, version: number): string {
  return `${request.protocol}://${request.host}/api/2.0/mlflow-artifacts/artifacts/${artifactRoot(model, version)}`;
}

function notFoundModel(name: string): MlflowError {
  return new MlflowError('RESOURCE_DOES_NOT_EXIST', `Registered Model with name=${name} not found`);
}

function notFoundVersion(name: string, version: string): MlflowError {
  return new MlflowError('RESOURCE_DOES_NOT_EXIST', `Model Version (name=${name}, version=${version}) not found`);
}

/** A version number as MLflow sends it (a string of digits); anything else is MLflow's INVALID_PARAMETER_VALUE. */
export function parseVersionNumber(text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text.trim())) throw new MlflowError('INVALID_PARAMETER_VALUE', `Parameter 'version' must be an integer, got '${text}'.`);
  return Number(text.trim());
}

function pageSize(requested: number | undefined, limits: { default: number; max: number }): number {
  const size = requested ?? limits.default;
  if (size > limits.max)
    throw new MlflowError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value for request parameter max_results. It must be at most ${limits.max}, but got value ${size}`,
    );
  return size;
}

/** The model's versions of a name MLflow's client sent, or the MLflow error saying there is no such model. */
async function modelOrThrow(snapshot: RegistrySnapshot, name: string): Promise<{ numbers: readonly number[] }> {
  if (!isModelName(name)) throw notFoundModel(name);
  const [model, numbers] = await Promise.all([snapshot.model(name), snapshot.versionNumbers(name)]);
  if (!model && numbers.length === 0) throw notFoundModel(name);
  return { numbers };
}

async function versionOrThrow(snapshot: RegistrySnapshot, name: string, version: string): Promise<ModelVersion> {
  const number = parseVersionNumber(version);
  if (!isModelName(name)) throw notFoundVersion(name, version);
  const v = await snapshot.version(name, number);
  if (!v) throw notFoundVersion(name, version);
  return v;
}

/** A model's aliases as MLflow shows them on each version: version number → its alias names, sorted. */
export async function aliasesByVersion(snapshot: RegistrySnapshot, name: string): Promise<Map<number, string[]>> {
  const byVersion = new Map<number, string[]>();
  const aliases = await snapshot.aliases(name);
  for (const alias of Object.keys(aliases).sort()) byVersion.set(aliases[alias]!, [...(byVersion.get(aliases[alias]!) ?? []), alias]);
  return byVersion;
}

/** A registered model's MLflow record: its model.yaml, its newest version per stage, its first and newest creation times, its aliases. */
export async function registeredModel(
  request: FastifyRequest,
  snapshot: RegistrySnapshot,
  name: string,
  numbers: readonly number[],
): Promise<MlflowRegisteredModel> {
  const [model, latest, first, last, aliases] = await Promise.all([
    snapshot.model(name),
    snapshot.newestInStages(name, STAGES),
    numbers.length ? snapshot.version(name, numbers[0]!) : undefined,
    numbers.length ? snapshot.version(name, numbers.at(-1)!) : undefined,
    snapshot.aliases(name),
  ]);
  const byVersion = await aliasesByVersion(snapshot, name);
  const inStageOrder = STAGES.flatMap((s) => latest.filter((v) => v.stage === s));
  return toMlflowRegisteredModel({
    name,
    model,
    latest: inStageOrder.map((v) => versionRecord(request, v, byVersion)),
    first: first ? Date.parse(first.createdAt) : undefined,
    last: last ? Date.parse(last.createdAt) : undefined,
    aliases: Object.keys(aliases)
      .sort()
      .map((alias) => ({ alias, version: aliases[alias]! })),
  });
}

/** A version's MLflow record; `aliases` from aliasesByVersion for its model. */
export function versionRecord(request: FastifyRequest, v: ModelVersion, aliases: ReadonlyMap<number, string[]>): MlflowModelVersion {
  return toMlflowVersion(v, { downloadUri: downloadUri(request, v.model, v.version), aliases: aliases.get(v.version) ?? [] });
}

/** Stages as MLflow's client sends them to get-latest-versions; an unknown one is MLflow's INVALID_PARAMETER_VALUE. */
function parseStages(raw: string | string[] | undefined): Stage[] {
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return list.map((s) => {
    const stage = parseMlflowStage(s);
    if (!stage) throw new MlflowError('INVALID_PARAMETER_VALUE', `Invalid Model Version stage: ${s}. Value must be one of ${STAGES.join(', ')}.`);
    return stage;
  });
}

/** The order MLflow's stores use when a search names none: registered models by name; versions by name, then newest first. */
function rejectOrderBy(orderBy: string | string[] | undefined): void {
  const list = orderBy === undefined ? [] : Array.isArray(orderBy) ? orderBy : [orderBy];
  if (list.length) throw new MlflowError('INVALID_PARAMETER_VALUE', `order_by is not supported by modelgate serve yet (got ${list.join(', ')})`);
}

export function registerMlflowRoutes(app: FastifyInstance): void {
  app.get<{ Querystring: { name: string } }>(`${PREFIX}/registered-models/get`, { schema: { querystring: nameQuery } }, async (request) => {
    const { snapshot } = commitOf(request);
    const { numbers } = await modelOrThrow(snapshot, request.query.name);
    return { registered_model: await registeredModel(request, snapshot, request.query.name, numbers) };
  });

  app.get<{ Querystring: SearchArgs }>(`${PREFIX}/registered-models/search`, { schema: { querystring: searchQuery } }, async (request) => {
    const { snapshot } = commitOf(request);
    const clauses = parseMlflowFilter(request.query.filter, ['name']);
    rejectOrderBy(request.query.order_by);
    const size = pageSize(request.query.max_results, REGISTERED_MODELS_PAGE);
    const offset = parsePageToken(request.query.page_token);
    const nameClauses = clauses.filter((c) => c.key === 'name');
    const tagClauses = clauses.filter((c) => c.key !== 'name');
    const names = (await snapshot.modelNames()).filter((n) => matchesFilter(nameClauses, () => n, []));
    const found: MlflowRegisteredModel[] = [];
    let at = 0;
    let more = false;
    for (const name of names) {
      const numbers = await snapshot.versionNumbers(name);
      const record = await registeredModel(request, snapshot, name, numbers);
      if (!matchesFilter(tagClauses, () => undefined, record.tags)) continue;
      if (at++ < offset) continue;
      if (found.length === size) {
        more = true;
        break;
      }
      found.push(record);
    }
    return more ? { registered_models: found, next_page_token: pageToken(offset + size) } : { registered_models: found };
  });

  const latestVersions = async (request: FastifyRequest, name: string, rawStages: string | string[] | undefined) => {
    const { snapshot } = commitOf(request);
    await modelOrThrow(snapshot, name);
    const stages = parseStages(rawStages);
    const wanted = stages.length ? stages : [...STAGES];
    const [newest, aliases] = await Promise.all([snapshot.newestInStages(name, wanted), aliasesByVersion(snapshot, name)]);
    // In the order asked for, as MLflow's stores answer.
    const ordered = wanted.flatMap((s) => newest.filter((v) => v.stage === s));
    return { model_versions: ordered.map((v) => versionRecord(request, v, aliases)) };
  };
  const latestSchema = {
    type: 'object',
    required: ['name'],
    properties: {
      name: { type: 'string', maxLength: 1024 },
      stages: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 16 }] },
    },
  } as const;
  app.get<{ Querystring: { name: string; stages?: string | string[] } }>(
    `${PREFIX}/registered-models/get-latest-versions`,
    { schema: { querystring: latestSchema } },
    (request) => latestVersions(request, request.query.name, request.query.stages),
  );
  app.post<{ Body: { name: string; stages?: string | string[] } }>(
    `${PREFIX}/registered-models/get-latest-versions`,
    { schema: { body: latestSchema } },
    (request) => latestVersions(request, request.body.name, request.body.stages),
  );

  app.get<{ Querystring: { name: string; alias: string } }>(
    `${PREFIX}/registered-models/alias`,
    { schema: { querystring: { type: 'object', required: ['name', 'alias'], properties: { name: { type: 'string' }, alias: { type: 'string' } } } } },
    async (request) => {
      const { snapshot } = commitOf(request);
      const { name, alias } = request.query;
      await modelOrThrow(snapshot, name);
      const aliases = await snapshot.aliases(name);
      const target = Object.hasOwn(aliases, alias) ? aliases[alias] : undefined;
      const v = target === undefined ? undefined : await snapshot.version(name, target);
      if (!v) throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `Registered model alias ${alias} not found.`);
      return { model_version: versionRecord(request, v, await aliasesByVersion(snapshot, name)) };
    },
  );

  app.get<{ Querystring: { name: string; version: string } }>(`${PREFIX}/model-versions/get`, { schema: { querystring: versionQuery } }, async (request) => {
    const { snapshot } = commitOf(request);
    const v = await versionOrThrow(snapshot, request.query.name, request.query.version);
    return { model_version: versionRecord(request, v, await aliasesByVersion(snapshot, v.model)) };
  });

  app.get<{ Querystring: { name: string; version: string } }>(
    `${PREFIX}/model-versions/get-download-uri`,
    { schema: { querystring: versionQuery } },
    async (request) => {
      const { snapshot } = commitOf(request);
      const v = await versionOrThrow(snapshot, request.query.name, request.query.version);
      return { artifact_uri: downloadUri(request, v.model, v.version) };
    },
  );

  app.get<{ Querystring: SearchArgs }>(`${PREFIX}/model-versions/search`, { schema: { querystring: searchQuery } }, async (request) => {
    const { snapshot } = commitOf(request);
    const clauses = parseMlflowFilter(request.query.filter, ['name', 'run_id', 'version_number', 'source_path']);
    rejectOrderBy(request.query.order_by);
    const size = pageSize(request.query.max_results, MODEL_VERSIONS_PAGE);
    const offset = parsePageToken(request.query.page_token);
    const pinned = exactName(clauses);
    const nameClauses = clauses.filter((c) => c.key === 'name');
    const names =
      pinned !== undefined ? (isModelName(pinned) ? [pinned] : []) : (await snapshot.modelNames()).filter((n) => matchesFilter(nameClauses, () => n, []));
    const found: MlflowModelVersion[] = [];
    let at = 0;
    let more = false;
    outer: for (const name of names) {
      const [versions, aliases] = await Promise.all([snapshot.versions(name), aliasesByVersion(snapshot, name)]);
      for (const v of versions.reverse()) {
        const record = versionRecord(request, v, aliases);
        if (!matchesFilter(clauses, versionAttribute(record), record.tags)) continue;
        if (at++ < offset) continue;
        if (found.length === size) {
          more = true;
          break outer;
        }
        found.push(record);
      }
    }
    return more ? { model_versions: found, next_page_token: pageToken(offset + size) } : { model_versions: found };
  });
}

/** The plain keys MLflow's model-version filter takes, read from a record. */
function versionAttribute(record: MlflowModelVersion): (key: string) => string | number | undefined {
  return (key) => {
    switch (key) {
      case 'name':
        return record.name;
      case 'run_id':
        return record.run_id;
      case 'version_number':
        return Number(record.version);
      case 'source_path':
        return record.source;
      default:
        return undefined;
    }
  };
}
