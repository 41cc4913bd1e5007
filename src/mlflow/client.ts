import { createWriteStream } from 'node:fs';
import { cp, mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { ioTimeoutMs, stallError } from '../io-timeout.js';
import { openStore } from '../store/store.js';
import { downloadObject } from '../store/fetch.js';
import type { MlflowModelVersion, MlflowRegisteredModel, MlflowRun } from './records.js';

/**
 * What a registration's source is read through (SPEC v3 §10, §12): MLflow's artifact locations,
 * and the tracking server that resolves `runs:/` and `models:/` and knows the runs, when there is
 * one. MlflowTrackingClient is the whole of it; `s3Sources` reads `s3://` alone, for a serve
 * started without a tracking server.
 */
export interface MlflowSources {
  /** The tracking server's URL, without a trailing slash; undefined when there is none. */
  readonly url: string | undefined;
  /** The location a source names, resolved to one MLflow itself reads. */
  resolveSource(source: string): Promise<string>;
  /** Copies what `location` holds into the new folder `dest`; resolves with the local path of the artifact. */
  download(location: string, dest: string, onBytes?: (n: number) => void): Promise<string>;
  /** A run, or undefined when there is no tracking server or it does not know the run. */
  run(runId: string): Promise<MlflowRun | undefined>;
}

/**
 * Registration sources without a tracking server: `s3://` locations only, read as MLflow reads
 * them (see downloadS3); anything else is E_MLFLOW_SOURCE, and no run is known.
 */
export function s3Sources(env: NodeJS.ProcessEnv = process.env): MlflowSources {
  return {
    url: undefined,
    resolveSource: async (source) => {
      if (!source.startsWith('s3://'))
        throw sourceError(
          source,
          'modelgate serve was started without --mlflow-tracking-uri: it reads s3:// sources only (runs:/, models:/ and mlflow-artifacts: need the tracking server)',
        );
      return source;
    },
    download: async (location, dest, onBytes) => {
      await mkdir(dest, { recursive: true });
      return downloadS3(location, dest, env, onBytes);
    },
    run: async () => undefined,
  };
}

/**
 * A client of a real MLflow tracking server's REST API (SPEC v3 §10, §12): the registry's
 * models and versions, runs, and the bytes a version's `source` names, read through MLflow's own
 * artifact access (the server's artifact proxy, `s3://` through the store code, a local path).
 * Every request is bounded by MODELGATE_IO_TIMEOUT without progress; failures are ModelgateErrors
 * (E_MLFLOW: the server answered an error, or did not answer; E_MLFLOW_SOURCE: a source that
 * cannot be read), carrying MLflow's error code in `data.errorCode`.
 */
export class MlflowTrackingClient implements MlflowSources {
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(
    trackingUri: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    let url: URL;
    try {
      url = new URL(trackingUri);
    } catch {
      url = new URL('invalid:');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw usageError(`--tracking-uri ${trackingUri}: expected the http(s) URL of an MLflow tracking server`);
    this.base = trimSlashes(url.href);
    this.timeoutMs = ioTimeoutMs(env);
    const token = env.MLFLOW_TRACKING_TOKEN;
    const user = env.MLFLOW_TRACKING_USERNAME;
    this.headers = token
      ? { authorization: `Bearer ${token}` }
      : user
        ? { authorization: `Basic ${Buffer.from(`${user}:${env.MLFLOW_TRACKING_PASSWORD ?? ''}`).toString('base64')}` }
        : {};
  }

  /** The tracking server's URL, without a trailing slash. */
  get url(): string {
    return this.base;
  }

  /** Every registered model, in name order; `names` restricts them. */
  async registeredModels(names?: readonly string[]): Promise<MlflowRegisteredModel[]> {
    const out: MlflowRegisteredModel[] = [];
    let token: string | undefined;
    do {
      const page = await this.get<{ registered_models?: MlflowRegisteredModel[]; next_page_token?: string }>('registered-models/search', {
        max_results: '1000',
        ...(token ? { page_token: token } : {}),
      });
      out.push(...(page.registered_models ?? []));
      token = page.next_page_token || undefined;
    } while (token);
    const wanted = names?.length ? new Set(names) : undefined;
    return out.filter((m) => !wanted || wanted.has(m.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Every version of a model MLflow lists (deleted ones are gone), in version order. */
  async modelVersions(name: string): Promise<MlflowModelVersion[]> {
    const out: MlflowModelVersion[] = [];
    let token: string | undefined;
    do {
      const page = await this.get<{ model_versions?: MlflowModelVersion[]; next_page_token?: string }>('model-versions/search', {
        filter: `name = '${name.replace(/'/g, "\\'")}'`,
        max_results: '10000',
        ...(token ? { page_token: token } : {}),
      });
      out.push(...(page.model_versions ?? []).filter((v) => v.name === name));
      token = page.next_page_token || undefined;
    } while (token);
    return out.sort((a, b) => Number(a.version) - Number(b.version));
  }

  /** One model version (`model-versions/get`). */
  async modelVersion(name: string, version: string): Promise<MlflowModelVersion> {
    return (await this.get<{ model_version: MlflowModelVersion }>('model-versions/get', { name, version })).model_version;
  }

  /** A run, or undefined when the server does not know it. */
  async run(runId: string): Promise<MlflowRun | undefined> {
    try {
      return (await this.get<{ run: MlflowRun }>('runs/get', { run_id: runId })).run;
    } catch (e) {
      if (e instanceof ModelgateError && e.data.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw e;
    }
  }

  /**
   * The artifact location a version's or a registration's source names, resolved to one MLflow
   * itself reads: `runs:/<run>/<path>` through the run's artifact URI, `models:/<name>/<version>`
   * (or `@alias`) through the registry's download URI, `models:/<model-id>` through the logged
   * model; `mlflow-artifacts:`, `s3://`, `file://` and local paths stay as they are.
   */
  async resolveSource(source: string, depth = 0): Promise<string> {
    if (depth > 4) throw sourceError(source, 'names other sources more than four levels deep');
    const runs = /^runs:\/+([^/]+)(?:\/(.*))?$/.exec(source);
    if (runs) {
      const run = await this.run(runs[1]!);
      if (!run?.info.artifact_uri) throw sourceError(source, `the tracking server knows no run ${runs[1]}`);
      return this.resolveSource(joinUri(run.info.artifact_uri, runs[2] ?? ''), depth + 1);
    }
    const models = /^models:\/+([^/@]+)(?:\/([^/]+)|@([^/]+))?\/?$/.exec(source);
    if (models) {
      const [, name, version, alias] = models;
      if (version === undefined && alias === undefined) {
        const logged = await this.get<{ model?: { info?: { artifact_uri?: string } } }>(`logged-models/${encodeURIComponent(name!)}`, {});
        if (!logged.model?.info?.artifact_uri) throw sourceError(source, `the tracking server knows no logged model ${name}`);
        return this.resolveSource(logged.model.info.artifact_uri, depth + 1);
      }
      const n =
        version ?? (await this.get<{ model_version: MlflowModelVersion }>('registered-models/alias', { name: name!, alias: alias! })).model_version.version;
      const { artifact_uri } = await this.get<{ artifact_uri: string }>('model-versions/get-download-uri', { name: name!, version: n });
      return this.resolveSource(artifact_uri, depth + 1);
    }
    return source;
  }

  /**
   * Copies what `location` (a resolved source) holds into the new folder `dest`, each file
   * streamed to disk as it arrives. Resolves with the local path that holds the artifact: `dest`
   * for a folder, the file inside it for a source naming one file.
   */
  async download(location: string, dest: string, onBytes?: (n: number) => void): Promise<string> {
    await mkdir(dest, { recursive: true });
    const proxied = /^mlflow-artifacts:(?:\/\/[^/]*)?(\/.*)?$/.exec(location);
    if (proxied) return this.downloadProxied(trimSlashes(decodeURIComponent(proxied[1] ?? '')).replace(/^\/+/, ''), dest, onBytes);
    if (location.startsWith('s3://')) return downloadS3(location, dest, this.env, onBytes);
    if (location.startsWith('file:') || location.startsWith('/')) {
      const path = location.startsWith('file:') ? fileURLToPath(location) : location;
      const s = await stat(path).catch(() => undefined);
      if (!s) throw sourceError(location, 'no such file or folder on this machine');
      if (s.isDirectory()) {
        await cp(path, dest, { recursive: true });
        return dest;
      }
      const out = join(dest, basename(path));
      await cp(path, out);
      return out;
    }
    throw sourceError(location, 'not a location modelgate reads (mlflow-artifacts:, runs:/, models:/, s3://, file://)');
  }

  private async downloadProxied(root: string, dest: string, onBytes?: (n: number) => void): Promise<string> {
    const files: string[] = [];
    const walk = async (path: string) => {
      const { files: entries = [] } = await this.request<{ files?: Array<{ path: string; is_dir?: boolean }> }>(
        `${this.base}/api/2.0/mlflow-artifacts/artifacts?${new URLSearchParams({ path })}`,
        `listing ${path}`,
      );
      for (const e of entries) {
        const full = path ? `${path}/${e.path.split('/').pop()}` : e.path;
        if (e.is_dir) await walk(full);
        else files.push(full);
      }
    };
    await walk(root);
    if (!files.length) {
      // A source naming one file lists as nothing: fetch it as a file.
      const out = join(dest, root.split('/').pop()!);
      await this.fetchProxied(root, out, onBytes);
      return out;
    }
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const file = files[next++]!;
        const rel = file.slice(root.length).replace(/^\/+/, '');
        await this.fetchProxied(file, safeJoin(dest, rel, file), onBytes);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, files.length) }, worker));
    return dest;
  }

  private async fetchProxied(path: string, out: string, onBytes?: (n: number) => void): Promise<void> {
    const url = `${this.base}/api/2.0/mlflow-artifacts/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`;
    const { response, progress, done } = await this.send(url, `downloading ${path}`);
    if (!response.ok || !response.body) throw await answerError(response, `downloading ${path}`);
    await mkdir(dirname(out), { recursive: true });
    const counted = new Transform({
      transform: (chunk: Buffer, _e, next) => {
        progress();
        onBytes?.(chunk.length);
        next(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>), counted, createWriteStream(out, { flags: 'wx' }));
    } catch (e) {
      throw this.failure(e, `downloading ${path}`);
    } finally {
      done();
    }
  }

  private async get<T>(rpc: string, query: Record<string, string>): Promise<T> {
    return this.request<T>(`${this.base}/api/2.0/mlflow/${rpc}?${new URLSearchParams(query)}`, rpc);
  }

  private async request<T>(url: string, operation: string): Promise<T> {
    const { response, done } = await this.send(url, operation);
    try {
      if (!response.ok) throw await answerError(response, operation);
      return (await response.json()) as T;
    } catch (e) {
      throw this.failure(e, operation);
    } finally {
      done();
    }
  }

  /** One GET, abandoned after MODELGATE_IO_TIMEOUT without progress (`progress` restarts the clock). */
  private async send(url: string, operation: string): Promise<{ response: Response; progress: () => void; done: () => void }> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const progress = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(stallError('MLflow', operation, this.timeoutMs / 1000, { url: this.base })), this.timeoutMs);
    };
    progress();
    try {
      const response = await fetch(url, { headers: this.headers, signal: controller.signal });
      return { response, progress, done: () => clearTimeout(timer) };
    } catch (e) {
      clearTimeout(timer);
      throw this.failure(controller.signal.aborted ? controller.signal.reason : e, operation);
    }
  }

  private failure(e: unknown, operation: string): ModelgateError {
    if (e instanceof ModelgateError) return e;
    return new ModelgateError('E_MLFLOW', `MLflow at ${this.base} failed while ${operation}: ${(e as Error).message}`, ExitCode.service, {
      url: this.base,
      operation,
    });
  }
}

/** MLflow's error answer (`{error_code, message}`) as E_MLFLOW, with its code; exit 3 but for RESOURCE_DOES_NOT_EXIST (exit 1). */
async function answerError(response: Response, operation: string): Promise<ModelgateError> {
  const text = await response.text().catch(() => '');
  let body: { error_code?: string; message?: string } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not MLflow's JSON: the status says it
  }
  const errorCode = body.error_code ?? `HTTP_${response.status}`;
  return new ModelgateError(
    'E_MLFLOW',
    `MLflow answered ${response.status} ${errorCode} while ${operation}${body.message ? `: ${body.message.slice(0, 500)}` : ''}`,
    errorCode === 'RESOURCE_DOES_NOT_EXIST' ? ExitCode.content : ExitCode.service,
    { status: response.status, errorCode, operation },
  );
}

/** E_MLFLOW_SOURCE: exit 1, but exit 3 for an S3 failure (`cause`) other than a missing bucket or object. */
function sourceError(source: string, why: string, data: { missing?: true; cause?: string } = {}): ModelgateError {
  return new ModelgateError('E_MLFLOW_SOURCE', `MLflow source ${source}: ${why}`, data.cause && !data.missing ? ExitCode.service : ExitCode.content, {
    source,
    ...data,
  });
}

/**
 * Copies what an `s3://` location holds into `dest`: the objects under it as a folder, else the
 * one object it names. Read through the store's S3 code, configured as MLflow's own S3 access is:
 * the endpoint from MLFLOW_S3_ENDPOINT_URL, else boto3's AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL
 * (none: AWS S3); path-style addressing with an endpoint, unless MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE
 * is virtual; credentials and region from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, AWS_REGION or AWS_DEFAULT_REGION (else the AWS SDK's chain). A location that
 * holds nothing is E_MLFLOW_SOURCE with `data.missing`; one S3 refuses or that cannot be reached,
 * E_MLFLOW_SOURCE with the S3 code in `data.cause` (exit 3: S3, not the source, failed).
 */
async function downloadS3(location: string, dest: string, env: NodeJS.ProcessEnv, onBytes?: (n: number) => void): Promise<string> {
  // MLflow's server refuses sources with relative parts; an S3 key may hold them literally.
  if (
    location
      .slice('s3://'.length)
      .split('/')
      .some((s) => s === '.' || s === '..')
  )
    throw sourceError(location, 'names a relative path (. or ..)');
  const endpoint = env.MLFLOW_S3_ENDPOINT_URL || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const style = env.MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE;
  const forcePathStyle = style === 'path' || (style !== 'virtual' && endpoint !== undefined);
  // The store takes AWS_ENDPOINT_URL_S3 over its settings' endpoint: the source's goes there.
  const storeEnv = { ...env, AWS_ENDPOINT_URL_S3: endpoint ?? '' };
  const open = (uri: string) =>
    openStore({ uri, forcePathStyle }, storeEnv).catch((e: unknown) => {
      throw e instanceof ModelgateError && e.code === 'E_STORE_URI' ? sourceError(location, 'not an s3://bucket/path location') : e;
    });
  const uri = trimSlashes(location);
  const store = await open(uri);
  try {
    const keys = (await store.list('')).filter((k) => !k.endsWith('/'));
    if (keys.length) {
      for (const key of keys) {
        const out = safeJoin(dest, key, location);
        await mkdir(dirname(out), { recursive: true });
        await downloadObject(store, key, out, undefined, onBytes);
      }
      return dest;
    }
    const cut = uri.lastIndexOf('/');
    if (cut < 's3://'.length) throw sourceError(location, 'the bucket holds no objects', { missing: true });
    const name = uri.slice(cut + 1);
    const parent = await open(uri.slice(0, cut));
    try {
      if (!(await parent.stat(name))) throw sourceError(location, 'no object is there, nor under it', { missing: true });
      await downloadObject(parent, name, join(dest, name), undefined, onBytes);
    } finally {
      parent.close();
    }
    return join(dest, name);
  } catch (e) {
    throw s3SourceError(location, e);
  } finally {
    store.close();
  }
}

/** S3's refusals of a source as E_MLFLOW_SOURCE (a bucket or object that is not there: `missing`); anything else as it is. */
function s3SourceError(location: string, e: unknown): unknown {
  if (!(e instanceof ModelgateError) || e.code === 'E_MLFLOW_SOURCE') return e;
  if (e.code === 'E_S3_NO_BUCKET' || e.code === 'E_ARTIFACT_MISSING') return sourceError(location, `${e.code}: ${e.message}`, { missing: true, cause: e.code });
  if (['E_S3', 'E_S3_CREDENTIALS', 'E_S3_UNREACHABLE', 'E_IO_TIMEOUT', 'E_DOWNLOAD'].includes(e.code))
    return sourceError(location, `${e.code}: ${e.message}`, { cause: e.code });
  return e;
}

function joinUri(base: string, path: string): string {
  return path ? `${trimSlashes(base)}/${path.replace(/^\/+/, '')}` : base;
}

/** `rel` under `dest`; a path that would leave it (`..`, absolute) is refused. */
function safeJoin(dest: string, rel: string, source: string): string {
  const out = resolve(dest, rel);
  if (!out.startsWith(resolve(dest) + sep)) throw sourceError(source, `lists ${rel}, a path outside the artifact folder`);
  return out;
}

/** Without its trailing slashes. */
function trimSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text[end - 1] === '/') end--;
  return text.slice(0, end);
}
