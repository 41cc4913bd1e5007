import { errorSchema, PREFIX } from './api-v1.js';
import { randomUUID, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Ajv } from 'ajv';
import type { FastifyError, FastifyInstance, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type { ErrorCode } from '../error-codes.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { scanRequiredOnRegistration } from '../gate/scan-check.js';
import type { StageHistory } from '../gate/types.js';
import type { Identity } from '../git/repo.js';
import { mlflowEnvironment, readMLflowFolder } from '../lineage/mlflow.js';
import { FORMATS, STAGES, type Artifact, type ArtifactFile, type ArtifactFormat, type Lineage, type ModelVersion, type Stage } from '../manifest/types.js';
import { planRegistration, registrationChange } from '../commands/register.js';
import { applyChange, type Applied } from '../promote/apply-change.js';
import { registeredOnBranches, withPins, type Change } from '../promote/change.js';
import { changePlanner } from '../promote/command.js';
import { completeChange } from '../promote/pins.js';
import { planAliasSet, planStageChange, type ChangePlan } from '../promote/plan.js';
import { ALIAS_NAME, MODEL_NAME, parseStage } from '../registry/layout.js';
import { buildVersion, type VersionDraft } from '../registry/new-version.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import { scanStoredArtifactFiles } from '../scan/stored-artifact.js';
import { detectFormat } from '../store/digest.js';
import { directoryDigest, sortFiles } from '../store/directory-digest.js';
import { INDEX_THRESHOLD } from '../store/dir-index.js';
import { artifactUri, assertArtifactName, assertRelativePath, contentKey, registrationMarkKey, SHA256_HEX, stagingKey } from '../store/layout.js';
import { holds, storeFileAt } from '../store/put.js';
import type { ArtifactStore } from '../store/store.js';
import { commitOf } from './commit-hook.js';
import type { WriteMode } from './mlflow-writes.js';
import type { ServedRegistry } from './served-registry.js';

/**
 * The writes of serve's own API (SPEC v3 §10, §13): registration by upload, promotion and
 * aliases, for clients with no S3 credentials and no git (the Python package).
 *
 * A registration is three steps. The client hashes its files and declares them
 * (`POST /models/{model}/uploads`): serve writes the registration mark (SPEC v3 §14) and answers
 * which files the store does not hold at their content keys yet. The client streams those
 * (`PUT /uploads/{upload}?path=…`): each is written to serve's disk while hashed, refused unless
 * its sha256 and size are the declared ones, and then stored by the store code `register` uses.
 * Last (`POST /uploads/{upload}/register`) the artifact is scanned from the store with the gate's
 * scanner, and the version is planned and landed as every write is (`--writes`). What a broken
 * or abandoned upload leaves in the store is content under its mark: `gc` removes it.
 *
 * An upload lives in the store, not in one serve process: its declaration is written to the
 * upload's staging area (`<model>/.uploads/<upload>/upload.json`, the upload's id naming its
 * model) and which files are missing is what the store holds, so any replica behind a Service
 * can take a file or register the upload another one began. Registering or abandoning it removes
 * the declaration; one nobody finished is a stale staging area, which `gc` removes.
 */

/** A replica forgets what it learnt of an upload it has not seen for this long (the store keeps the upload). */
const UPLOAD_IDLE_MS = 60 * 60 * 1000;

/** The declaration's name in the upload's staging area. */
const DECLARATION = 'upload.json';

/** Initial stages a registration may choose, as for `register`. */
const INITIAL_STAGES: readonly Stage[] = ['None', 'Staging'];

const APPLY_MODE = { pr: 'pr', push: 'push', commit: 'local' } as const;

/** What the store keeps of an upload: its declaration. */
interface Declaration {
  model: string;
  identity: string;
  directory: boolean;
  /** The declared files, in path order; for a single file, its one entry named as the file. */
  files: ArtifactFile[];
  /** The artifact's digest: the file's sha256, or the directory digest of `files`. */
  sha256: string;
}

/** An upload as one replica knows it. */
interface Upload extends Declaration {
  id: string;
  /** Paths whose bytes this replica has not seen in the store (asked again before registering). */
  missing: Set<string>;
  store: ArtifactStore;
  touched: number;
  /** A registration of it is under way here: a second one would land a second version. */
  registering: boolean;
}

/** An upload's id: its model, a dot, a random UUID (the model says where its declaration is). */
const UPLOAD_ID = `^${MODEL_NAME.source.slice(1, -1)}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`;

function declarationKey(model: string, upload: string): string {
  return stagingKey(model, upload, DECLARATION);
}

/** The upload's declaration as the store holds it, or undefined when it holds none (never begun, finished, or gc'd). */
async function readDeclaration(store: ArtifactStore, upload: string): Promise<Declaration | undefined> {
  const model = upload.slice(0, upload.indexOf('.'));
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of await store.read(declarationKey(model, upload))) chunks.push(chunk as Buffer);
  } catch (e) {
    if (e instanceof ModelgateError && e.code === 'E_ARTIFACT_MISSING') return undefined;
    throw e;
  }
  const d = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Declaration;
  return d.model === model ? d : undefined;
}

/** Writes the declaration, through the store code every write uses (a local file put at its key). */
async function writeDeclaration(store: ArtifactStore, upload: string, d: Declaration): Promise<void> {
  const bytes = Buffer.from(JSON.stringify(d));
  const dir = await mkdtemp(join(tmpdir(), 'modelgate-upload-'));
  try {
    const local = join(dir, DECLARATION);
    await writeFile(local, bytes, { flag: 'wx' });
    const expected = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
    await storeFileAt(store, d.model, declarationKey(d.model, upload), local, DECLARATION, expected, upload);
    await store.flush?.();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Who sent a write: every write needs an authenticated caller (HTTP 401 otherwise). */
export function callerOf(request: FastifyRequest): string {
  if (request.identity === undefined)
    throw new ModelgateError('E_UNAUTHENTICATED', 'writes need an authenticated caller: send Authorization: Bearer <token>', ExitCode.usage);
  return request.identity;
}

const queues = new WeakMap<ServedRegistry, Promise<unknown>>();

/** Runs `land` after every write of `registry` before it: writes share one work tree and branch. */
export function serialWrite<T>(registry: ServedRegistry, land: () => Promise<T>): Promise<T> {
  const run = (queues.get(registry) ?? Promise.resolve()).then(land);
  queues.set(
    registry,
    run.catch(() => undefined),
  );
  return run;
}

/** The commit author a caller's identity becomes. */
export function authorOf(identity: string): Identity {
  return { name: identity, email: identity.includes('@') ? identity : `${identity}@users.noreply.github.com` };
}

/** What a landed write answers: the change, the commit, and the pull request that carries it. */
function landed(done: Applied) {
  return {
    summary: done.change.summary,
    changes: done.change.changes,
    commit: done.commit ?? null,
    pushed: done.pushed,
    pullRequest: done.pullRequest ? { number: done.pullRequest.number, url: done.pullRequest.url, created: done.pullRequest.created } : null,
  };
}

/** HTTP status of a refusal that is about the request's content, not serve. */
const REFUSAL_STATUS: Partial<Record<ErrorCode, number>> = { E_NO_CHANGE: 409, E_UPLOAD_INCOMPLETE: 409, E_UPLOAD_UNKNOWN: 404 };

const errors = {
  400: errorSchema,
  401: errorSchema,
  404: errorSchema,
  409: errorSchema,
  422: errorSchema,
  429: errorSchema,
  500: errorSchema,
  503: errorSchema,
} as const;

const pullRequest = {
  type: ['object', 'null'],
  required: ['number', 'url'],
  properties: { number: { type: 'integer' }, url: { type: 'string' }, created: { type: 'boolean' } },
} as const;

const landedSchema = {
  type: 'object',
  required: ['summary', 'changes', 'commit', 'pushed', 'pullRequest'],
  properties: {
    summary: { type: 'string' },
    changes: { type: 'array', items: { type: 'string' } },
    commit: { type: ['string', 'null'], description: 'the commit made; with --writes pr, the commit on the pull request branch' },
    pushed: { type: 'boolean' },
    pullRequest: { ...pullRequest, description: 'the pull request that carries the change (--writes pr); null when it landed directly' },
  },
} as const;

const SHA256 = SHA256_HEX.source;
const security = [{ bearer: [] }];

const uploadParams = { type: 'object', required: ['upload'], properties: { upload: { type: 'string', pattern: UPLOAD_ID } } } as const;

/** Bodies of a file's bytes are streams: Fastify's validator sees only the route's other parts. */
const ajv = new Ajv({ coerceTypes: 'array', removeAdditional: false, useDefaults: true, strict: false });
const streamBodyValidator: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  httpPart === 'body' ? () => true : (ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>);

export async function registerApiV1Writes(app: FastifyInstance, registry: ServedRegistry, mode: WriteMode): Promise<void> {
  const uploads = new Map<string, Upload>();
  const forget = () => {
    for (const u of uploads.values()) if (Date.now() - u.touched > UPLOAD_IDLE_MS && !u.registering) uploads.delete(u.id);
  };
  const sweep = setInterval(forget, 60_000);
  sweep.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweep);
    uploads.clear();
  });
  /** Ends an upload everywhere: its declaration (and on the file store its staging area) leaves the store. */
  const drop = async (u: Upload) => {
    uploads.delete(u.id);
    await u.store.remove(declarationKey(u.model, u.id));
    await u.store.discardStaging?.(u.model, u.id).catch(() => {});
  };
  /**
   * The caller's upload, as the store has it: its declaration must still be there (another
   * replica may have registered or abandoned it); one this replica has not seen is read from the
   * store, with which files the store lacks.
   */
  const uploadOf = async (request: FastifyRequest<{ Params: { upload: string } }>): Promise<Upload> => {
    const identity = callerOf(request);
    const id = request.params.upload;
    const { store } = commitOf(request);
    let u = uploads.get(id);
    // Registered or abandoned through another replica: its declaration has left the store.
    if (u && !(await u.store.stat(declarationKey(u.model, id)))) {
      uploads.delete(id);
      u = undefined;
    }
    if (!u) {
      const d = await readDeclaration(store, id);
      if (d) {
        const held = await Promise.all(d.files.map((f) => holds(store, contentKey(d.model, d.sha256, f.path), f.sha256, f.size)));
        u = { ...d, id, missing: new Set(d.files.filter((_, i) => !held[i]).map((f) => f.path)), store, touched: Date.now(), registering: false };
        uploads.set(id, u);
      }
    }
    // Another caller's upload is as unknown as one that never was.
    if (!u || u.identity !== identity) throw new ModelgateError('E_UPLOAD_UNKNOWN', `no upload ${id} of yours is under way`, ExitCode.usage);
    // The store of the commit served now (a changed storage setting closes the one before).
    u.store = store;
    u.touched = Date.now();
    return u;
  };

  const land = (request: FastifyRequest, plan: (snapshot: RegistrySnapshot | undefined, base: string | undefined) => Promise<Change>, extra = {}) => {
    const identity = callerOf(request);
    return serialWrite(registry, async () => {
      const done = await applyChange({
        repo: registry.repo,
        prefix: registry.prefix,
        mode: APPLY_MODE[mode],
        env: registry.env,
        baseBranch: registry.baseBranch,
        author: authorOf(identity),
        plan,
        bodyNote: `Requested through \`modelgate serve\` (/api/v1) by **${identity}**.`,
        ...extra,
      });
      await registry.refresh();
      return done;
    });
  };
  const change = (request: FastifyRequest, plan: (snapshot: RegistrySnapshot, history: StageHistory) => Promise<ChangePlan>) =>
    land(request, changePlanner(registry.repo, registry.prefix, plan));

  // Refusals about the request's content (a digest that differs, a rule of the registry) are
  // the caller's: 4xx with the code; everything else is answered as the rest of /api/v1.
  await app.register(async (scope) => {
    const parent = scope.errorHandler;
    scope.setErrorHandler((e: FastifyError, request, reply) => {
      const refused = e instanceof ModelgateError && e.exit === ExitCode.content && e.code !== 'E_NOT_FOUND' && e.code !== 'E_INTERNAL' ? 422 : undefined;
      const status = e instanceof ModelgateError ? (REFUSAL_STATUS[e.code] ?? refused) : undefined;
      if (e instanceof ModelgateError && status !== undefined)
        return reply
          .code(status)
          .type('application/json')
          .send({ error: { code: e.code, message: e.message } });
      return parent.call(scope, e, request, reply);
    });
    scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

    scope.post<{ Params: { model: string }; Body: { directory: boolean; files: Array<{ path: string; sha256: string; size: number }> } }>(
      `${PREFIX}/models/:model/uploads`,
      {
        schema: {
          summary: 'Begin a registration by upload: declare the artifact’s files (hashed by the client); serve answers which the store lacks',
          tags: ['register'],
          security,
          params: { type: 'object', required: ['model'], properties: { model: { type: 'string', pattern: MODEL_NAME.source } } },
          body: {
            type: 'object',
            required: ['directory', 'files'],
            additionalProperties: false,
            properties: {
              directory: { type: 'boolean', description: 'a folder artifact (an MLflow model folder, …); false: one file, named by its path' },
              files: {
                type: 'array',
                minItems: 1,
                maxItems: INDEX_THRESHOLD,
                items: {
                  type: 'object',
                  required: ['path', 'sha256', 'size'],
                  additionalProperties: false,
                  properties: {
                    path: { type: 'string', minLength: 1, maxLength: 1024, description: 'relative, with /' },
                    sha256: { type: 'string', pattern: SHA256 },
                    size: { type: 'integer', minimum: 0 },
                  },
                },
              },
            },
          },
          response: {
            201: {
              type: 'object',
              required: ['upload', 'sha256', 'missing'],
              properties: {
                upload: { type: 'string', pattern: UPLOAD_ID },
                sha256: { type: 'string', description: "the artifact's digest (a folder's: the directory digest of the files)" },
                missing: { type: 'array', items: { type: 'string' }, description: 'paths to send; the store holds the others already' },
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const identity = callerOf(request);
        const { model } = request.params;
        const { directory } = request.body;
        if (!directory && request.body.files.length !== 1) throw usageError('a single-file artifact declares exactly one file');
        const files = sortFiles(
          request.body.files.map((f) => ({ path: directory ? assertRelativePath(f.path) : assertArtifactName(f.path), sha256: f.sha256, size: f.size })),
        );
        for (let i = 1; i < files.length; i++) if (files[i]!.path === files[i - 1]!.path) throw usageError(`${files[i]!.path} is declared twice`);
        const sha256 = directory ? directoryDigest(files) : files[0]!.sha256;
        const { store } = commitOf(request);
        const id = `${model}.${randomUUID()}`;
        // The mark first: gc takes the bytes, reused or new, for a registration under way, and
        // for an upload whose manifest never came once the mark is old.
        await store.touch(registrationMarkKey(model, sha256, id));
        const declaration: Declaration = { model, identity, directory, files, sha256 };
        await writeDeclaration(store, id, declaration);
        const held = await Promise.all(files.map((f) => holds(store, contentKey(model, sha256, f.path), f.sha256, f.size)));
        const missing = files.filter((_, i) => !held[i]).map((f) => f.path);
        uploads.set(id, { ...declaration, id, missing: new Set(missing), store, touched: Date.now(), registering: false });
        return reply.code(201).send({ upload: id, sha256, missing });
      },
    );

    scope.put<{ Params: { upload: string }; Querystring: { path: string }; Body: Readable }>(
      `${PREFIX}/uploads/:upload`,
      {
        validatorCompiler: streamBodyValidator,
        schema: {
          summary: "Send one declared file's bytes; serve hashes them on arrival and refuses bytes other than the declared ones",
          tags: ['register'],
          security,
          params: uploadParams,
          querystring: { type: 'object', required: ['path'], properties: { path: { type: 'string', minLength: 1, maxLength: 1024 } } },
          consumes: ['application/octet-stream'],
          body: { type: 'string', format: 'binary', description: "the file's bytes" },
          response: {
            200: {
              type: 'object',
              required: ['path', 'sha256', 'size', 'missing'],
              properties: {
                path: { type: 'string' },
                sha256: { type: 'string' },
                size: { type: 'integer' },
                missing: {
                  type: 'array',
                  items: { type: 'string' },
                  description: 'paths still to send, as far as this replica of serve has seen (register asks the store)',
                },
              },
            },
            ...errors,
          },
        },
      },
      async (request) => {
        const u = await uploadOf(request);
        const file = u.files.find((f) => f.path === request.query.path);
        if (!file) throw usageError(`${request.query.path} is not a file this upload declared`);
        if (!request.body || typeof (request.body as Partial<Readable>).pipe !== 'function')
          throw usageError('send the bytes as the request body, with Content-Type: application/octet-stream');
        const dir = await mkdtemp(join(tmpdir(), 'modelgate-upload-'));
        const temp = join(dir, 'received');
        try {
          const received = await receive(request.body, temp, file.size);
          if (received.sha256 !== file.sha256 || received.size !== file.size)
            throw new ModelgateError(
              'E_UPLOAD_DIGEST',
              `${file.path}: received ${received.size} bytes with sha256 ${received.sha256}, not the declared ${file.size} bytes with sha256 ${file.sha256}; nothing was stored`,
              ExitCode.content,
            );
          await storeFileAt(u.store, u.model, contentKey(u.model, u.sha256, file.path), temp, file.path, file, u.id);
          await u.store.flush?.();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
        u.missing.delete(file.path);
        u.touched = Date.now();
        return { path: file.path, sha256: file.sha256, size: file.size, missing: [...u.missing] };
      },
    );

    scope.delete<{ Params: { upload: string } }>(
      `${PREFIX}/uploads/:upload`,
      {
        schema: {
          summary: 'Abandon an upload: serve drops what it holds of it; the bytes already stored are removed by `modelgate gc`',
          tags: ['register'],
          security,
          params: uploadParams,
          response: { 204: { type: 'null' }, ...errors },
        },
      },
      async (request, reply) => {
        await drop(await uploadOf(request));
        return reply.code(204).send();
      },
    );

    scope.post<{ Params: { upload: string }; Body: RegistrationBody }>(
      `${PREFIX}/uploads/:upload/register`,
      {
        schema: {
          summary:
            'Register the uploaded artifact as the next version: scanned from the store, then committed, pushed or proposed in a pull request (--writes)',
          tags: ['register'],
          security,
          params: uploadParams,
          body: registrationBody,
          response: {
            201: {
              type: 'object',
              required: ['model', 'version', 'ref', 'sha256', 'uri', 'size', 'summary', 'changes', 'commit', 'pushed', 'pullRequest', 'findings'],
              properties: {
                model: { type: 'string' },
                version: { type: 'integer' },
                ref: { type: 'string' },
                sha256: { type: 'string' },
                uri: { type: 'string' },
                size: { type: 'integer' },
                ...landedSchema.properties,
                findings: {
                  type: 'array',
                  description: "the pickle scan's findings (they refuse the registration where the policy asks for scan: pickle)",
                  items: {
                    type: 'object',
                    required: ['file', 'offset', 'kind'],
                    properties: {
                      file: { type: 'string' },
                      offset: { type: 'integer' },
                      kind: { type: 'string' },
                      global: { type: 'string' },
                      message: { type: 'string' },
                    },
                  },
                },
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const u = await uploadOf(request);
        // Files another replica took are in the store by now.
        for (const path of u.missing) {
          const f = u.files.find((file) => file.path === path)!;
          if (await holds(u.store, contentKey(u.model, u.sha256, path), f.sha256, f.size)) u.missing.delete(path);
        }
        if (u.missing.size)
          throw new ModelgateError('E_UPLOAD_INCOMPLETE', `send ${[...u.missing].join(', ')} first: the store does not hold them`, ExitCode.usage);
        if (u.registering) throw new ModelgateError('E_UPLOAD_UNKNOWN', `upload ${u.id} is being registered by another request`, ExitCode.usage);
        u.registering = true;
        try {
          const served = commitOf(request);
          const body = request.body;
          const stage = body.stage === undefined ? 'None' : parseStage(body.stage);
          if (!stage || !INITIAL_STAGES.includes(stage)) throw usageError(`stage ${body.stage}: a new version starts in None or Staging`);
          // The mark's time is when this registration last wanted the bytes: gc keeps them from here.
          await u.store.touch(registrationMarkKey(u.model, u.sha256, u.id));
          const draft = await draftOf(u, body, stage);
          // The one scanner, over the bytes the store holds now (every file, by content).
          const policy = await served.snapshot.policy();
          const { findings } = await scanStoredArtifactFiles(u.store, buildVersion(draft, 1), policy.scan?.allowGlobals ?? []);
          if (findings.length && scanRequiredOnRegistration(policy, u.model, stage))
            throw new ModelgateError(
              'E_PICKLE_SCAN',
              `${u.model}: the artifact's pickles import globals outside the allow list (${findings.map((f) => `${f.file}: ${f.global ?? f.message ?? f.kind}`).join('; ')}), and ${stage} asks for scan: pickle`,
              ExitCode.content,
            );
          const message = (version: number) => `register ${u.model}@${version}\n\nartifact ${draft.artifact.uri}\nsha256 ${u.sha256}\n`;
          const taken = async () =>
            mode === 'commit' ? new Set<number>() : new Set(registeredOnBranches(await registry.repo.remoteBranches('origin', 'modelgate/*'), u.model));
          const done = await land(
            request,
            async (snap) => {
              const manifest = registrationChange(await planRegistration(snap?.source, draft, await taken()), draft, message);
              return snap ? completeChange(snap.source, manifest) : withPins(manifest, { files: [], changes: [] });
            },
            { newBranch: mode === 'pr', claimBranch: true },
          );
          await drop(u);
          const version = done.change.versions[0]!.version;
          return reply.code(201).send({
            model: u.model,
            version,
            ref: `${u.model}@${version}`,
            sha256: u.sha256,
            uri: draft.artifact.uri,
            size: draft.artifact.size,
            ...landed(done),
            findings: findings.map((f) => ({ ...f })),
          });
        } finally {
          u.registering = false;
        }
      },
    );

    scope.post<{ Params: { model: string; version: number }; Body: { to: string } }>(
      `${PREFIX}/models/:model/versions/:version/stage`,
      {
        schema: {
          summary: 'Move a version to another stage (`modelgate promote`): a pull request the gate judges, or a commit where --writes allows',
          tags: ['promote'],
          security,
          params: {
            type: 'object',
            required: ['model', 'version'],
            properties: { model: { type: 'string', pattern: MODEL_NAME.source }, version: { type: 'integer', minimum: 1, maximum: 999999999 } },
          },
          body: {
            type: 'object',
            required: ['to'],
            additionalProperties: false,
            properties: { to: { type: 'string', enum: [...STAGES, ...STAGES.map((s) => s.toLowerCase())] } },
          },
          response: { 200: landedSchema, ...errors },
        },
      },
      async (request) => {
        const { model, version } = request.params;
        const to = parseStage(request.body.to)!;
        return landed(await change(request, (snap) => planStageChange(snap, model, version, to)));
      },
    );

    scope.put<{ Params: { model: string; alias: string }; Body: { version: number } }>(
      `${PREFIX}/models/:model/aliases/:alias`,
      {
        schema: {
          summary: 'Point an alias at a version (`modelgate alias set`): a pull request the gate judges, or a commit where --writes allows',
          tags: ['promote'],
          security,
          params: {
            type: 'object',
            required: ['model', 'alias'],
            properties: { model: { type: 'string', pattern: MODEL_NAME.source }, alias: { type: 'string', pattern: ALIAS_NAME.source } },
          },
          body: {
            type: 'object',
            required: ['version'],
            additionalProperties: false,
            properties: { version: { type: 'integer', minimum: 1, maximum: 999999999 } },
          },
          response: { 200: landedSchema, ...errors },
        },
      },
      async (request) => {
        const { model, alias } = request.params;
        return landed(await change(request, (snap) => planAliasSet(snap, model, request.body.version, alias)));
      },
    );
  });
}

/** Streams `body` into `temp` while hashing it; more bytes than `limit` end the read at once. */
async function receive(body: Readable, temp: string, limit: number): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, next) {
      size += chunk.length;
      if (size > limit) return next(new ModelgateError('E_UPLOAD_DIGEST', `more bytes than the declared ${limit}; nothing was stored`, ExitCode.content));
      hash.update(chunk);
      next(null, chunk);
    },
  });
  await pipeline(body, count, createWriteStream(temp, { flags: 'wx' }));
  return { sha256: hash.digest('hex'), size };
}

interface RegistrationBody {
  description?: string;
  format?: ArtifactFormat;
  framework?: { name: string; version?: string };
  metrics?: Record<string, number>;
  params?: Record<string, string | number | boolean>;
  lineage?: Lineage;
  stage?: string;
  annotations?: Record<string, string>;
}

const registrationBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    description: { type: 'string', maxLength: 4096 },
    format: { type: 'string', enum: [...FORMATS], description: 'default: detected from the file names, as `register` does' },
    framework: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, version: { type: 'string' } } },
    metrics: { type: 'object', additionalProperties: { type: 'number' } },
    params: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
    lineage: {
      type: 'object',
      description: 'code, data, run and environment, as the manifest records them (schemas/model-version.schema.json)',
      properties: {
        code: { type: 'object' },
        data: { type: 'array', items: { type: 'object' } },
        run: { type: 'object' },
        environment: { type: 'object' },
      },
    },
    stage: { type: 'string', enum: ['None', 'Staging', 'none', 'staging'] },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

/**
 * The version's draft, as `register` builds it: the artifact the upload stored, the caller's
 * metadata, and for an MLflow folder what its MLmodel says (read from the store) where the
 * caller said nothing.
 */
async function draftOf(u: Upload, body: RegistrationBody, stage: Stage): Promise<VersionDraft> {
  const location = u.store.location;
  const size = u.files.reduce((n, f) => n + f.size, 0);
  const artifact: Artifact = u.directory
    ? { uri: artifactUri(location, contentKey(u.model, u.sha256, '')), sha256: u.sha256, size, files: u.files }
    : { uri: artifactUri(location, contentKey(u.model, u.sha256, u.files[0]!.path)), sha256: u.sha256, size };
  const format =
    body.format ??
    detectFormat(
      u.files.map((f) => f.path),
      u.directory,
    );
  const lineage: Lineage = { ...body.lineage };
  let framework = body.framework;
  let signature: ModelVersion['signature'];
  const mlmodel = u.directory && format === 'mlflow' ? u.files.find((f) => f.path === 'MLmodel') : undefined;
  if (mlmodel) {
    const read = async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of await u.store.read(contentKey(u.model, u.sha256, 'MLmodel'))) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    };
    const folder = await readMLflowFolder('MLmodel', mlmodel.size, read, new Set(u.files.map((f) => f.path)));
    framework ??= folder.model.framework;
    signature = folder.model.signature;
    if (!lineage.run && folder.model.run) lineage.run = folder.model.run;
    const environment = mlflowEnvironment(folder, new Map(u.files.map((f) => [f.path, f.sha256])), lineage.environment);
    if (environment) lineage.environment = environment;
  }
  return {
    model: u.model,
    stage,
    createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    createdBy: u.identity,
    ...(body.description ? { description: body.description } : {}),
    artifact,
    format,
    ...(framework ? { framework } : {}),
    ...(body.metrics && Object.keys(body.metrics).length ? { metrics: body.metrics } : {}),
    ...(body.params && Object.keys(body.params).length ? { parameters: body.params } : {}),
    ...(signature ? { signature } : {}),
    ...(Object.keys(lineage).length ? { lineage } : {}),
    ...(body.annotations && Object.keys(body.annotations).length ? { annotations: body.annotations } : {}),
  };
}
