import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ModelVersion } from '../manifest/types.js';
import { isModelName } from '../registry/layout.js';
import { artifactObjects, type ArtifactObject } from '../store/fetch.js';
import { commitOf } from './commit-hook.js';
import { MlflowError } from './mlflow.js';
import type { ServeMetrics } from './metrics.js';

/**
 * MLflow's artifact API (`/api/2.0/mlflow-artifacts/artifacts…`, what MLflow's
 * HttpArtifactRepository lists and downloads), over the store: a version's artifact lives at
 * `<model>/<version>/…` there. Every file streams from the store through a check of its
 * sha256; the last chunk is held back until the digest is known, so a client never receives a
 * complete file that did not verify (a mismatch ends the response short and the client fails).
 */

const PREFIX = '/api/2.0/mlflow-artifacts/artifacts';

/** Where a version's artifact sits in the artifact API's paths. */
export function artifactRoot(model: string, version: number): string {
  return `${model}/${version}`;
}

/**
 * The artifact (`<model>/<version>`) a request of the artifact API reads, listing or file, or
 * undefined for any other URL: what the rate limit counts once per download.
 */
export function artifactOfUrl(url: string): string | undefined {
  const [path = '', query = ''] = url.split('?', 2);
  let raw: string | null | undefined;
  try {
    if (path === PREFIX) raw = new URLSearchParams(query).get('path');
    else if (path.startsWith(`${PREFIX}/`)) raw = decodeURIComponent(path.slice(PREFIX.length + 1));
  } catch {
    return undefined;
  }
  if (!raw) return undefined;
  const [model, version] = raw.split('/').filter((s) => s !== '');
  return model && version && isModelName(model) && /^[1-9][0-9]{0,8}$/.test(version) ? `${model}/${version}` : undefined;
}

/** One file of a version's artifact, at its path inside the artifact's folder. */
interface ArtifactEntry extends ArtifactObject {
  path: string;
}

/** A single-file artifact is a folder of one file, named as in its URI: what MLflow's client expects of an artifact root. */
function fileName(v: ModelVersion): string {
  const last = v.artifact.uri.split('/').pop() ?? 'artifact';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

function notFound(path: string): MlflowError {
  return new MlflowError('RESOURCE_DOES_NOT_EXIST', `No artifact at '${path}'`);
}

/** `<model>/<version>[/<path inside>]`, checked: no empty, `.` or `..` segment reaches a lookup. */
function parseArtifactPath(raw: string): { model: string; version: number; inner: string } {
  const segments = raw.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '.' || s === '..')) throw new MlflowError('INVALID_PARAMETER_VALUE', `Invalid path '${raw}'`);
  const [model, version, ...rest] = segments;
  if (!model || !isModelName(model) || !version || !/^[1-9][0-9]{0,8}$/.test(version)) throw notFound(raw);
  return { model, version: Number(version), inner: rest.join('/') };
}

/** Holds the last chunk back until the bytes' sha256 and size are known to be the expected ones. */
class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private held?: Buffer;
  private bytes = 0;
  constructor(
    private readonly expected: { sha256: string; size: number },
    private readonly onMismatch: () => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    const out = this.held;
    this.held = chunk;
    done(null, out);
  }
  override _flush(done: TransformCallback): void {
    const sha256 = this.hash.digest('hex');
    if (sha256 !== this.expected.sha256 || this.bytes !== this.expected.size) {
      this.onMismatch();
      done(new Error(`sha256 ${sha256} (${this.bytes} bytes) where ${this.expected.sha256} (${this.expected.size} bytes) is recorded`));
      return;
    }
    done(null, this.held);
  }
}

export function registerArtifactRoutes(app: FastifyInstance, metrics: ServeMetrics): void {
  /** The files of a version's artifact at the request's commit, by path inside the artifact. */
  const entries = async (request: Parameters<typeof commitOf>[0], model: string, version: number, raw: string): Promise<ArtifactEntry[]> => {
    const { snapshot, store } = commitOf(request);
    const v = await snapshot.version(model, version);
    if (!v) throw notFound(raw);
    const objects = await artifactObjects(store, v.artifact);
    return objects.map((o) => ({ ...o, path: o.path ?? fileName(v) }));
  };

  app.get<{ Querystring: { path?: string } }>(
    PREFIX,
    { schema: { querystring: { type: 'object', properties: { path: { type: 'string', maxLength: 4096 } } } } },
    async (request) => {
      const raw = request.query.path ?? '';
      const { model, version, inner } = parseArtifactPath(raw);
      const files = await entries(request, model, version, raw);
      const dir = inner === '' ? '' : `${inner}/`;
      if (inner !== '' && files.some((f) => f.path === inner)) return { files: [] }; // a file lists nothing, as MLflow's stores answer
      const listed = new Map<string, { path: string; is_dir: boolean; file_size?: number }>();
      for (const f of files) {
        if (!f.path.startsWith(dir)) continue;
        const rest = f.path.slice(dir.length);
        const slash = rest.indexOf('/');
        if (slash < 0) listed.set(rest, { path: rest, is_dir: false, file_size: f.size });
        else listed.set(rest.slice(0, slash), { path: rest.slice(0, slash), is_dir: true });
      }
      if (inner !== '' && listed.size === 0) return { files: [] };
      return { files: [...listed.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
    },
  );

  app.get<{ Params: { '*': string } }>(`${PREFIX}/*`, async (request, reply) => {
    const raw = request.params['*'];
    const { model, version, inner } = parseArtifactPath(raw);
    const file = (await entries(request, model, version, raw)).find((f) => f.path === inner);
    if (!file) throw notFound(raw);
    const { store } = commitOf(request);
    const source = await store.read(file.key);
    const verifying = new VerifyingStream(file, () => {
      metrics.integrityFailures.inc();
      request.log.error({ model, version, path: file.path, key: file.key }, 'artifact failed its sha256 check while streaming; response aborted');
    });
    source.on('error', (e) => verifying.destroy(e));
    verifying.on('error', () => reply.raw.destroy());
    reply.header('content-type', 'application/octet-stream');
    reply.header('content-length', String(file.size));
    reply.header('x-modelgate-sha256', file.sha256);
    return reply.send(source.pipe(verifying));
  });
}
