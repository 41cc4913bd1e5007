import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ExitCode, ModelgateError } from '../errors.js';
import type { StageHistory } from '../gate/types.js';
import { applyChange, type ApplyMode, type ApplyOptions } from '../promote/apply-change.js';
import { changePlanner } from '../promote/command.js';
import { planAliasDelete, planAliasSet, planAnnotate, planModelDescription, planStageChange, type ChangePlan } from '../promote/plan.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import { DESCRIPTION_ANNOTATION, MlflowError, parseMlflowStage } from './mlflow.js';
import { aliasesByVersion, parseVersionNumber, registeredModel, versionRecord } from './mlflow-routes.js';
import { authorOf, callerOf, serialWrite } from './api-v1-writes.js';
import type { ServedCommit, ServedRegistry } from './served-registry.js';
import { commitOf } from './commit-hook.js';
import { planRegistration, registrationChange } from '../commands/register.js';
import { s3Sources, type MlflowTrackingClient } from '../mlflow/client.js';
import { copyMlflowModel } from '../mlflow/copy.js';
import { tagAnnotation, type NotCarried } from '../mlflow/records.js';
import { isModelName } from '../registry/layout.js';
import { findingText, scanRequiredOnRegistration } from '../gate/scan-check.js';
import { scanLocalPath } from '../scan/local.js';
import { registrationMarkKey } from '../store/layout.js';
import type { VersionDraft } from '../registry/new-version.js';

/**
 * The write half of MLflow's Model Registry REST API (SPEC v3 §10): an alias set or deleted, a
 * stage transition, a version tag set or description edited become the change the CLI's
 * `alias`, `promote` and `annotate` make (the same planners, the same pins, the same applier;
 * a model's description is an edit of its model.yaml), landed as `--writes`
 * says: a pull request (answered with an MLflow error naming it: nothing has changed until it
 * merges), a push, or a local commit (answered as MLflow answers, from the new commit). Deletes
 * are refused: versions are archived, never deleted.
 */

/** `--writes`: how an accepted write lands. */
export const WRITE_MODES = ['pr', 'push', 'commit'] as const;
export type WriteMode = (typeof WRITE_MODES)[number];

const APPLY_MODE: Record<WriteMode, ApplyMode> = { pr: 'pr', push: 'push', commit: 'local' };

const PREFIX = '/api/2.0/mlflow';

/** Lands changes one at a time (they share a work tree and a branch) and serves the commit each makes. */
class Writer {
  constructor(
    private readonly registry: ServedRegistry,
    private readonly mode: WriteMode,
  ) {}

  /**
   * Plans and lands one change for the request's caller. Resolves with the commit served once it
   * landed (a change that would change nothing lands nothing: MLflow's writes are idempotent);
   * with `pr`, rejects with the MLflow error naming the pull request.
   */
  async write(
    request: FastifyRequest,
    plan: (snapshot: RegistrySnapshot, history: StageHistory) => Promise<ChangePlan>,
    claim: Pick<ApplyOptions, 'newBranch' | 'claimBranch'> = {},
  ): Promise<ServedCommit> {
    const identity = callerOf(request);
    return serialWrite(this.registry, () => this.land(identity, plan, claim));
  }

  private async land(
    identity: string,
    plan: (snapshot: RegistrySnapshot, history: StageHistory) => Promise<ChangePlan>,
    claim: Pick<ApplyOptions, 'newBranch' | 'claimBranch'>,
  ): Promise<ServedCommit> {
    const { repo, prefix } = this.registry;
    try {
      const done = await applyChange({
        repo,
        prefix,
        mode: APPLY_MODE[this.mode],
        env: this.registry.env,
        baseBranch: this.registry.baseBranch,
        author: authorOf(identity),
        plan: changePlanner(repo, prefix, plan),
        ...claim,
        bodyNote: `Requested through \`modelgate serve\` (MLflow API) by **${identity}**.`,
      });
      if (done.pullRequest)
        throw new MlflowError(
          'INVALID_STATE',
          `modelgate opened pull request #${done.pullRequest.number} (${done.pullRequest.url}) for "${done.change.summary}": nothing has changed until it passes the gate and merges`,
        );
    } catch (e) {
      if (!(e instanceof ModelgateError) || e.code !== 'E_NO_CHANGE') throw asMlflowError(e);
    }
    return this.registry.refresh();
  }
}

/** A rule of the registry that refused the change (exit 1: an Archived target, …) is the caller's: MLflow's INVALID_STATE with modelgate's code. */
function asMlflowError(e: unknown): unknown {
  if (e instanceof ModelgateError && e.exit === ExitCode.content && e.code !== 'E_NOT_FOUND')
    return new MlflowError('INVALID_STATE', `${e.code}: ${e.message}`);
  return e;
}

/**
 * A registration's source that cannot be read (E_MLFLOW_SOURCE: nothing there is MLflow's
 * RESOURCE_DOES_NOT_EXIST, an unreadable one INVALID_PARAMETER_VALUE) or that the registry
 * refuses (exit 1: the scan, …) is the caller's; anything else stays serve's own failure.
 */
function sourceFailure(e: unknown): unknown {
  if (!(e instanceof ModelgateError)) return e;
  if (e.code === 'E_MLFLOW_SOURCE' && e.data.missing) return new MlflowError('RESOURCE_DOES_NOT_EXIST', `${e.code}: ${e.message}`);
  if (e.code === 'E_MLFLOW_SOURCE' || e.exit === ExitCode.content) return new MlflowError('INVALID_PARAMETER_VALUE', `${e.code}: ${e.message}`);
  return e;
}

/**
 * create_model_version's source, refused as MLflow's server refuses it: a path on serve's own
 * machine (`file:`, `/…`, no scheme) and relative parts (`..`), however they are encoded.
 */
function sourceArg(args: Record<string, unknown>): string {
  const source = stringArg(args, 'source');
  let decoded = source;
  for (let i = 0; i < 4 && decoded.includes('%'); i++) {
    try {
      decoded = decodeURIComponent(decoded);
    } catch {
      break;
    }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(source)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'file')
    throw new MlflowError('INVALID_PARAMETER_VALUE', `Invalid model version source: '${source}'. modelgate serve does not read paths on its own machine.`);
  if (decoded.includes('\0') || decoded.split('/').some((part) => part === '..'))
    throw new MlflowError('INVALID_PARAMETER_VALUE', `Invalid model version source: '${source}'. Relative path references (..) are not allowed.`);
  return source;
}

/** A write's arguments: MLflow's client sends JSON bodies (DELETE too); a query string is taken as well. */
function argsOf(request: FastifyRequest): Record<string, unknown> {
  const body = request.body && typeof request.body === 'object' ? (request.body as Record<string, unknown>) : {};
  return { ...(request.query as Record<string, unknown>), ...body };
}

function modelNameArg(args: Record<string, unknown>): string {
  const name = stringArg(args, 'name');
  if (!isModelName(name)) throw new MlflowError('INVALID_PARAMETER_VALUE', `${name}: modelgate model names are lowercase letters, digits and - (at most 63)`);
  return name;
}

function stringArg(args: Record<string, unknown>, key: string): string {
  const value = args[key];
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string' || value === '') throw new MlflowError('INVALID_PARAMETER_VALUE', `Missing value for required parameter '${key}'.`);
  return value;
}

/** Deletes: refused, with what to do instead. */
const REFUSED: Array<{ method: 'DELETE' | 'POST' | 'PATCH'; path: string; why: string }> = [
  { method: 'DELETE', path: 'registered-models/delete', why: 'models are retired in models/<model>/model.yaml, never deleted' },
  { method: 'DELETE', path: 'model-versions/delete', why: 'versions are archived (transition them to Archived), never deleted' },
  { method: 'DELETE', path: 'model-versions/delete-tag', why: 'annotations are history: set the tag to a new value instead' },
  { method: 'DELETE', path: 'registered-models/delete-tag', why: 'model tags are read from models/<model>/model.yaml; change it in a pull request' },
  { method: 'POST', path: 'registered-models/set-tag', why: 'model tags are read from models/<model>/model.yaml; change it in a pull request' },
  { method: 'POST', path: 'registered-models/rename', why: 'a model keeps its name: its history, pins and aliases are under it' },
];

/**
 * The write routes. `tracking` is the MLflow tracking server (`--mlflow-tracking-uri`) whose runs
 * and artifacts registration sources name; without it, create_model_version reads `s3://` sources
 * only (MLflow's S3 settings from serve's environment, see `s3Sources`).
 */
export function registerMlflowWriteRoutes(app: FastifyInstance, registry: ServedRegistry, mode: WriteMode, tracking?: MlflowTrackingClient): void {
  const writer = new Writer(registry, mode);
  const sources = tracking ?? s3Sources(registry.env);
  const answered = (reply: FastifyReply, served: ServedCommit) => reply.header('x-modelgate-commit', served.commit);

  // create_registered_model: a model comes into being with its first version (models/<model>/model.yaml
  // is written by that registration), so a new name is answered as MLflow does and nothing is written.
  app.post(`${PREFIX}/registered-models/create`, async (request) => {
    callerOf(request);
    const name = modelNameArg(argsOf(request));
    const { snapshot } = commitOf(request);
    if ((await snapshot.modelNames()).includes(name)) throw new MlflowError('RESOURCE_ALREADY_EXISTS', `Registered Model (name=${name}) already exists.`);
    const now = Date.now();
    return { registered_model: { name, creation_timestamp: now, last_updated_timestamp: now } };
  });

  // create_model_version ↔ `modelgate register`: the source's bytes copied by digest into the store
  // (from s3:// as MLflow's S3 settings say, or through the MLflow tracking server), its MLmodel
  // read and scanned as `register` does, its run read, then a registration like any write.
  app.post(`${PREFIX}/model-versions/create`, async (request, reply) => {
    const identity = callerOf(request);
    const args = argsOf(request);
    const name = modelNameArg(args);
    const source = sourceArg(args);
    const runId = typeof args.run_id === 'string' && args.run_id ? args.run_id : undefined;
    const tagged: Record<string, string> = {};
    for (const t of Array.isArray(args.tags) ? (args.tags as Array<{ key?: unknown; value?: unknown }>) : []) {
      const key = typeof t.key === 'string' ? tagAnnotation('mlflow-tag', t.key) : undefined;
      if (!key) throw new MlflowError('INVALID_PARAMETER_VALUE', `tag ${String(t.key)}: not an annotation name (lowercase letters, digits, _ . -)`);
      tagged[key] = typeof t.value === 'string' ? t.value : '';
    }
    const { store, snapshot } = commitOf(request);
    const policy = await snapshot.policy();
    const uploadId = randomUUID();
    const notCarried: NotCarried[] = [];
    let copied: Awaited<ReturnType<typeof copyMlflowModel>>;
    try {
      copied = await copyMlflowModel(
        sources,
        store,
        {
          model: name,
          source,
          ...(runId ? { runId } : {}),
          where: `${name} from ${source}`,
          // SPEC v3 §14, as `register`: the scan runs before any byte moves into the store.
          check: async (local, format) => {
            const { findings } = await scanLocalPath(local, { format, allowGlobals: policy.scan?.allowGlobals ?? [] });
            for (const f of findings) request.log.warn({ finding: findingText(f) }, 'scan finding');
            if (findings.length && scanRequiredOnRegistration(policy, name, 'None'))
              throw new ModelgateError(
                'E_PICKLE_SCAN',
                `${name}: the scan refuses ${source} (${findings.map(findingText).join('; ')}), and None asks for scan: pickle`,
                ExitCode.content,
              );
          },
          put: {
            uploadId,
            // Kept if anything fails from here: gc then takes what was stored for an upload whose manifest never came.
            mark: (sha256) => store.touch(registrationMarkKey(name, sha256, uploadId)),
          },
        },
        notCarried,
      );
    } catch (e) {
      throw sourceFailure(e);
    }
    for (const n of notCarried) request.log.warn({ what: n.what, reason: n.reason }, 'not carried over from MLflow');
    const annotations: Record<string, string> = { ...copied.fields.annotations, ...(source.length <= 4096 ? { 'mlflow/source': source } : {}), ...tagged };
    const draft: VersionDraft = {
      model: name,
      stage: 'None',
      createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      createdBy: identity,
      ...(typeof args.description === 'string' && args.description ? { description: args.description } : {}),
      ...copied.fields,
      annotations,
    };
    let number = 0;
    const served = await writer.write(
      request,
      async (snap) => {
        const planned = await planRegistration(snap.source, draft);
        number = planned.version;
        return registrationChange(planned, draft, (n) => `register ${name}@${n} (MLflow ${source})\n\nsha256 ${draft.artifact.sha256}\n`);
      },
      { newBranch: mode === 'pr', claimBranch: true },
    );
    answered(reply, served);
    const v = await served.snapshot.version(name, number);
    if (!v) throw new MlflowError('INTERNAL_ERROR', `${name}@${number} was registered but is not in the served commit ${served.commit}`);
    return { model_version: versionRecord(request, v, await aliasesByVersion(served.snapshot, name)) };
  });

  // set_registered_model_alias ↔ `modelgate alias set <model>@<N> <alias>`
  app.post(`${PREFIX}/registered-models/alias`, async (request, reply) => {
    const args = argsOf(request);
    const [name, alias] = [stringArg(args, 'name'), stringArg(args, 'alias')];
    const version = parseVersionNumber(stringArg(args, 'version'));
    answered(reply, await writer.write(request, (snap) => planAliasSet(snap, name, version, alias)));
    return {};
  });

  // delete_registered_model_alias ↔ `modelgate alias delete <model> <alias>`
  app.delete(`${PREFIX}/registered-models/alias`, async (request, reply) => {
    const args = argsOf(request);
    const [name, alias] = [stringArg(args, 'name'), stringArg(args, 'alias')];
    answered(reply, await writer.write(request, (snap) => planAliasDelete(snap, name, alias)));
    return {};
  });

  // transition_model_version_stage ↔ `modelgate promote <model>@<N> --to <stage>`; modelgate's own
  // rule archives the previous Production version, whatever archive_existing_versions says.
  app.post(`${PREFIX}/model-versions/transition-stage`, async (request, reply) => {
    const args = argsOf(request);
    const name = stringArg(args, 'name');
    const version = parseVersionNumber(stringArg(args, 'version'));
    const stageText = stringArg(args, 'stage');
    const stage = parseMlflowStage(stageText);
    if (!stage)
      throw new MlflowError('INVALID_PARAMETER_VALUE', `Invalid Model Version stage: ${stageText}. Value must be one of None, Staging, Production, Archived.`);
    const served = await writer.write(request, (snap) => planStageChange(snap, name, version, stage));
    answered(reply, served);
    const v = await served.snapshot.version(name, version);
    if (!v) throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `Model Version (name=${name}, version=${version}) not found`);
    return { model_version: versionRecord(request, v, await aliasesByVersion(served.snapshot, name)) };
  });

  // set_model_version_tag ↔ `modelgate annotate <model>@<N> <key>=<value>`
  app.post(`${PREFIX}/model-versions/set-tag`, async (request, reply) => {
    const args = argsOf(request);
    const name = stringArg(args, 'name');
    const version = parseVersionNumber(stringArg(args, 'version'));
    const key = stringArg(args, 'key');
    if (key.startsWith('modelgate.'))
      throw new MlflowError('INVALID_PARAMETER_VALUE', `tags under modelgate. are the manifest's own fields and cannot be set: ${key}`);
    const value = typeof args.value === 'string' || typeof args.value === 'number' ? String(args.value) : '';
    answered(reply, await writer.write(request, (snap) => planAnnotate(snap, name, version, [`${key}=${value}`])));
    return {};
  });

  // update_model_version ↔ `modelgate annotate <model>@<N> description=<text>`: the description
  // MLflow's client reads from then on (the manifest's own, set at registration, stays).
  app.patch(`${PREFIX}/model-versions/update`, async (request, reply) => {
    const args = argsOf(request);
    const name = stringArg(args, 'name');
    const version = parseVersionNumber(stringArg(args, 'version'));
    const description = typeof args.description === 'string' ? args.description : '';
    const served = await writer.write(request, (snap) => planAnnotate(snap, name, version, [`${DESCRIPTION_ANNOTATION}=${description}`]));
    answered(reply, served);
    const v = await served.snapshot.version(name, version);
    if (!v) throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `Model Version (name=${name}, version=${version}) not found`);
    return { model_version: versionRecord(request, v, await aliasesByVersion(served.snapshot, name)) };
  });

  // update_registered_model ↔ the description in models/<model>/model.yaml, judged by the policy's paths rules.
  app.patch(`${PREFIX}/registered-models/update`, async (request, reply) => {
    const args = argsOf(request);
    const name = stringArg(args, 'name');
    const description = typeof args.description === 'string' ? args.description : '';
    const served = await writer.write(request, (snap) => planModelDescription(snap, name, description));
    answered(reply, served);
    return { registered_model: await registeredModel(request, served.snapshot, name, await served.snapshot.versionNumbers(name)) };
  });

  for (const { method, path, why } of REFUSED) {
    app.route({
      method,
      url: `${PREFIX}/${path}`,
      handler: async (request) => {
        callerOf(request);
        throw new MlflowError('PERMISSION_DENIED', `modelgate refuses ${method} ${path}: ${why}`);
      },
    });
  }
}
