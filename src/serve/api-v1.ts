import type { FastifyInstance } from 'fastify';
import { ModelgateError } from '../errors.js';
import { STAGES, type ModelVersion } from '../manifest/types.js';
import { summarize } from '../query/present.js';
import { matchWhere, parseWhere, requiredStage } from '../query/where.js';
import { ALIAS_NAME, MODEL_NAME, parseModelRef, parseStage } from '../registry/layout.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { modelHistory } from '../commands/history.js';
import { environmentsOf } from '../deploy/render.js';
import { servingOf } from '../pages/read-model.js';
import { commitOf } from './commit-hook.js';
import type { ServedRegistry } from './served-registry.js';

/**
 * serve's own API, `/api/v1`: the registry's read models as the CLI's `--json` gives them
 * (`list`'s version summaries, `show`'s manifests), with request and response schemas from
 * which the OpenAPI 3.1 document at `/api/v1/openapi.json` is generated. Failures are
 * `{"error": {"code": "E_…", "message": …}}` with modelgate's stable codes.
 */

/** Where serve's own API is mounted. */
export const PREFIX = '/api/v1';

/** The body of every failure: `{"error": {"code", "message"}}`. */
export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

const versionSummary = {
  type: 'object',
  required: ['model', 'version', 'stage', 'createdAt', 'createdBy', 'format', 'artifact', 'metrics', 'parameters', 'annotations'],
  properties: {
    model: { type: 'string' },
    version: { type: 'integer', minimum: 1 },
    stage: { type: 'string', enum: [...STAGES] },
    createdAt: { type: 'string' },
    createdBy: { type: ['string', 'null'] },
    format: { type: 'string' },
    artifact: {
      type: 'object',
      required: ['uri', 'sha256', 'size'],
      properties: { uri: { type: 'string' }, sha256: { type: 'string' }, size: { type: 'integer', minimum: 0 } },
    },
    metrics: { type: 'object', additionalProperties: { type: 'number' } },
    parameters: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

const environmentPin = {
  type: 'object',
  required: ['environment'],
  properties: {
    environment: { type: 'string' },
    stage: { type: 'string', enum: [...STAGES], description: 'the stage the environment follows' },
    alias: { type: 'string', description: 'the alias the environment follows' },
    version: { type: 'integer', minimum: 1, description: 'the version its committed pin names; absent: no pin' },
  },
} as const;

const historyEntry = {
  type: 'object',
  required: ['date', 'author', 'email', 'commit', 'pullRequest', 'version', 'from', 'to', 'decision'],
  properties: {
    date: { type: 'string' },
    author: { type: 'string' },
    email: { type: 'string' },
    commit: { type: 'string' },
    pullRequest: { type: ['integer', 'null'] },
    alias: { type: 'string', description: 'present for an alias move: from and to are then version numbers' },
    version: { type: 'integer' },
    from: { type: ['string', 'integer', 'null'], description: 'the stage (or, for an alias move, the version) before; null: new' },
    to: { type: ['string', 'integer', 'null'], description: 'the stage (or, for an alias move, the version) after; null: removed' },
    decision: {
      type: 'object',
      required: ['record'],
      properties: {
        record: { type: 'string', enum: ['valid', 'none', 'not-a-pull-request', 'unavailable', 'unproven', 'invalid'] },
        approvers: {
          type: 'array',
          items: {
            type: 'object',
            required: ['login', 'group'],
            properties: {
              login: { type: 'string' },
              reviewId: { type: 'integer' },
              rule: { type: 'string' },
              group: { type: 'integer' },
              team: { type: 'string' },
            },
          },
        },
        reason: { type: 'string' },
      },
    },
  },
} as const;

const modelParams = {
  type: 'object',
  required: ['model'],
  properties: { model: { type: 'string', pattern: MODEL_NAME.source } },
} as const;

/** What follows `<model>@` in a version reference: a number, `latest`, a stage (lower, upper or capitalized), or an alias. */
const VERSION_REF = `^(?:[1-9][0-9]{0,8}|latest|${STAGES.flatMap((s) => [s, s.toLowerCase(), s.toUpperCase()]).join('|')}|${ALIAS_NAME.source.slice(1, -1)})$`;

const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 429: errorSchema, 431: errorSchema, 500: errorSchema, 503: errorSchema } as const;

/** The model's versions, or E_NOT_FOUND for a model the commit does not hold. */
async function versionNumbersOf(snapshot: RegistrySnapshot, model: string): Promise<readonly number[]> {
  const [m, numbers] = await Promise.all([snapshot.model(model), snapshot.versionNumbers(model)]);
  if (!m && numbers.length === 0) throw new ModelgateError('E_NOT_FOUND', `unknown model ${model}`);
  return numbers;
}

export function registerApiV1Routes(app: FastifyInstance, registry: ServedRegistry): void {
  app.get(
    `${PREFIX}/models`,
    {
      schema: {
        summary: 'Every model, with its version count and newest version',
        tags: ['models'],
        response: {
          200: {
            type: 'object',
            required: ['models'],
            properties: {
              models: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['name', 'versions', 'latest'],
                  properties: {
                    name: { type: 'string' },
                    description: { type: 'string' },
                    versions: { type: 'integer', minimum: 0 },
                    latest: { type: ['integer', 'null'] },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { snapshot } = commitOf(request);
      const models = [];
      for (const name of await snapshot.modelNames()) {
        const [model, numbers] = await Promise.all([snapshot.model(name), snapshot.versionNumbers(name)]);
        models.push({
          name,
          ...(model?.description !== undefined ? { description: model.description } : {}),
          versions: numbers.length,
          latest: numbers.at(-1) ?? null,
        });
      }
      return { models };
    },
  );

  app.get<{ Params: { model: string } }>(
    `${PREFIX}/models/:model`,
    {
      schema: {
        summary: 'One model: its description, owners, version numbers, the newest version in each stage and its aliases',
        tags: ['models'],
        params: modelParams,
        response: {
          200: {
            type: 'object',
            required: ['name', 'owners', 'retired', 'versions', 'stages'],
            properties: {
              name: { type: 'string' },
              description: { type: 'string' },
              owners: { type: 'array', items: { type: 'string' } },
              retired: { type: 'boolean' },
              versions: { type: 'array', items: { type: 'integer' } },
              stages: { type: 'object', additionalProperties: { type: 'integer' } },
              aliases: { type: 'object', description: 'alias → version number (models/<model>/aliases.yaml)', additionalProperties: { type: 'integer' } },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { snapshot } = commitOf(request);
      const name = request.params.model;
      const numbers = await versionNumbersOf(snapshot, name);
      const [model, newest, aliases] = await Promise.all([snapshot.model(name), snapshot.newestInStages(name, STAGES), snapshot.aliases(name)]);
      return {
        name,
        ...(model?.description !== undefined ? { description: model.description } : {}),
        owners: model?.owners ?? [],
        retired: model?.retired ?? false,
        versions: numbers,
        stages: Object.fromEntries(newest.map((v) => [v.stage, v.version])),
        aliases,
      };
    },
  );

  app.get<{ Params: { model: string } }>(
    `${PREFIX}/models/:model/versions`,
    {
      schema: {
        summary: "A model's versions, newest first (the rows of `modelgate list --model`)",
        tags: ['versions'],
        params: modelParams,
        response: { 200: { type: 'object', required: ['versions'], properties: { versions: { type: 'array', items: versionSummary } } }, ...errors },
      },
    },
    async (request) => {
      const { snapshot } = commitOf(request);
      await versionNumbersOf(snapshot, request.params.model);
      return { versions: (await snapshot.versions(request.params.model)).reverse().map(summarize) };
    },
  );

  app.get<{ Params: { model: string; ref: string } }>(
    `${PREFIX}/models/:model/versions/:ref`,
    {
      schema: {
        summary: "One version's manifest, by number, `latest`, stage name (any case) or alias",
        tags: ['versions'],
        params: {
          type: 'object',
          required: ['model', 'ref'],
          properties: { model: { type: 'string', pattern: MODEL_NAME.source }, ref: { type: 'string', pattern: VERSION_REF } },
        },
        response: {
          200: {
            description: 'The ModelVersion manifest as JSON (schemas/model-version.schema.json)',
            type: 'object',
            required: ['apiVersion', 'kind', 'model', 'version', 'stage', 'createdAt', 'artifact', 'format'],
            additionalProperties: true,
            properties: { model: { type: 'string' }, version: { type: 'integer' }, stage: { type: 'string', enum: [...STAGES] } },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { snapshot } = commitOf(request);
      return snapshot.resolveRef(parseModelRef(`${request.params.model}@${request.params.ref}`));
    },
  );

  app.get<{ Querystring: { where?: string; model?: string; stage?: string } }>(
    `${PREFIX}/versions`,
    {
      schema: {
        summary: 'Search versions with the `modelgate list --where` grammar, by model and stage',
        tags: ['versions'],
        querystring: {
          type: 'object',
          properties: {
            where: { type: 'string', maxLength: 4096, description: "e.g. metrics.auc > 0.9 and lineage.data.id = 'txn-q3'" },
            model: { type: 'string', pattern: MODEL_NAME.source },
            stage: { type: 'string', enum: [...STAGES, ...STAGES.map((s) => s.toLowerCase())] },
          },
        },
        response: { 200: { type: 'object', required: ['versions'], properties: { versions: { type: 'array', items: versionSummary } } }, ...errors },
      },
    },
    async (request) => {
      const { snapshot } = commitOf(request);
      const where = request.query.where === undefined ? undefined : parseWhere(request.query.where);
      const stage = request.query.stage === undefined ? undefined : parseStage(request.query.stage);
      const prefilter = stage ?? (where ? parseStage(requiredStage(where) ?? '') : undefined);
      const names = request.query.model !== undefined ? [request.query.model] : await snapshot.modelNames();
      const found: ModelVersion[] = [];
      for (const name of names) {
        const versions = prefilter ? await snapshot.inStage(name, prefilter) : (await snapshot.versions(name)).reverse();
        for (const v of versions) if ((!stage || v.stage === stage) && (!where || matchWhere(where, v))) found.push(v);
      }
      return { versions: found.map(summarize) };
    },
  );
  app.get<{ Params: { model: string } }>(
    `${PREFIX}/models/:model/history`,
    {
      schema: {
        summary:
          "A model's history, oldest first: every stage change and alias move, with the approvers its decision record proves (`modelgate history --json`)",
        tags: ['history'],
        params: modelParams,
        response: { 200: { type: 'object', required: ['history'], properties: { history: { type: 'array', items: historyEntry } } }, ...errors },
      },
    },
    async (request) => {
      const { snapshot, commit } = commitOf(request);
      await versionNumbersOf(snapshot, request.params.model);
      return { history: await modelHistory(registry.repo, snapshot, request.params.model, registry.env, commit) };
    },
  );

  app.get<{ Params: { model: string } }>(
    `${PREFIX}/models/:model/pins`,
    {
      schema: {
        summary: 'What each environment serves of the model: the version its committed pin (deploy/<environment>/<model>.yaml) names',
        tags: ['pins'],
        params: modelParams,
        response: { 200: { type: 'object', required: ['pins'], properties: { pins: { type: 'array', items: environmentPin } } }, ...errors },
      },
    },
    async (request) => {
      const { snapshot, config } = commitOf(request);
      await versionNumbersOf(snapshot, request.params.model);
      return { pins: await servingOf({ snapshot, environments: environmentsOf(config) }, request.params.model) };
    },
  );

  app.get(
    `${PREFIX}/pins`,
    {
      schema: {
        summary: 'Every environment with the version of each model its committed pins name',
        tags: ['pins'],
        response: {
          200: {
            type: 'object',
            required: ['environments'],
            properties: {
              environments: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['environment', 'models'],
                  properties: {
                    environment: { type: 'string' },
                    stage: { type: 'string', enum: [...STAGES] },
                    alias: { type: 'string' },
                    models: { type: 'object', description: 'model → pinned version', additionalProperties: { type: 'integer' } },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { snapshot, config } = commitOf(request);
      const reader = { snapshot, environments: environmentsOf(config) };
      const models = reader.environments.map((): Record<string, number> => ({}));
      for (const name of await snapshot.modelNames()) {
        for (const [i, serving] of (await servingOf(reader, name)).entries()) if (serving.version !== undefined) models[i]![name] = serving.version;
      }
      const out = reader.environments.map((env, i) => ({
        environment: env.name,
        ...(env.stage ? { stage: env.stage } : {}),
        ...(env.alias ? { alias: env.alias } : {}),
        models: models[i]!,
      }));
      return { environments: out };
    },
  );
}
