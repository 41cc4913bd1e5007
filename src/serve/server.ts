import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { DestinationStream, LoggerOptions } from 'pino';
import type { ErrorCode } from '../error-codes.js';
import { ExitCode, ModelgateError } from '../errors.js';
import { registerPagesRoutes } from '../pages/routes.js';
import pkg from '../../package.json' with { type: 'json' };
import { installAccess, type TokenTable } from './access.js';
import { registerApiV1Routes } from './api-v1.js';
import { registerApiV1Writes } from './api-v1-writes.js';
import { installCommitHook } from './commit-hook.js';
import { createMetrics, installMetricsHooks, type ServeMetrics } from './metrics.js';
import { MlflowError, type MlflowErrorCode } from './mlflow.js';
import { artifactOfUrl, registerArtifactRoutes } from './mlflow-artifacts.js';
import { registerMlflowRoutes } from './mlflow-routes.js';
import { registerMlflowWriteRoutes, type WriteMode } from './mlflow-writes.js';
import type { ServedRegistry } from './served-registry.js';
import type { MlflowTrackingClient } from '../mlflow/client.js';

export interface ServeOptions {
  registry: ServedRegistry;
  tokens: TokenTable;
  /** How an accepted write lands (default pr: a pull request, answered with an error naming it). */
  writes?: WriteMode;
  /** Reads need a token too (writes always do). */
  privateReads?: boolean;
  /** Requests per minute from one client address, for every route but the operations ones (default 600; 0: no limit). */
  rateLimit?: number;
  /** Largest request body accepted, in bytes (uploads of artifacts stream and are not bound by it). */
  bodyLimit?: number;
  /** The MLflow tracking server registration sources are read from (`--mlflow-tracking-uri`). */
  tracking?: MlflowTrackingClient;
  /** pino's options and where it writes; false for no log. */
  logger?: { options: LoggerOptions; stream?: DestinationStream } | false;
}

/** The rate limit's window: `rateLimit` requests per client in it. */
const RATE_WINDOW_MS = 60_000;

/**
 * The artifact downloads (client and artifact) already counted by the rate limit inside its
 * window, bounded: past `max` entries the oldest is forgotten (its next file counts again).
 */
class DownloadsCounted {
  private readonly until = new Map<string, number>();
  constructor(
    private readonly windowMs: number,
    private readonly max = 10_000,
  ) {}

  has(key: string): boolean {
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.until.delete(key);
    return false;
  }

  /** Marks a download counted for the rest of the window it started in. */
  counted(key: string): void {
    if (this.has(key)) return;
    if (this.until.size >= this.max) this.until.delete(this.until.keys().next().value!);
    this.until.set(key, Date.now() + this.windowMs);
  }
}

/** Largest request line and headers, in bytes. */
const MAX_HEADER_BYTES = 256 << 10;

/** Headers pino must never write, whatever a log line holds. */
const REDACTED_HEADERS = ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'];

/**
 * The HTTP server of `modelgate serve`: the MLflow Model Registry and artifact APIs, answered
 * from one commit of the registry per request, and the operations endpoints (/healthz,
 * /readyz, /metrics). Built, not started: the command listens, tests inject or listen on port 0.
 */
export async function buildServer(options: ServeOptions): Promise<{ app: FastifyInstance; metrics: ServeMetrics }> {
  const logger = options.logger
    ? {
        ...options.logger.options,
        redact: { paths: REDACTED_HEADERS, censor: '[redacted]' },
        ...(options.logger.stream ? { stream: options.logger.stream } : {}),
      }
    : false;
  const app = Fastify({
    logger,
    bodyLimit: options.bodyLimit ?? 1 << 20,
    // Behind a Kubernetes Service and ingress: the client's address and scheme come from X-Forwarded-*.
    trustProxy: true,
    return503OnClosing: true,
    // Long enough for any query a schema refuses by itself (a 4,096-character `where` is up to
    // 48 KiB percent-encoded), so that those get the schema's 400, not the parser's 431.
    http: { maxHeaderSize: MAX_HEADER_BYTES },
    // What Node's parser refuses before any route sees it (a URL or headers over that: 431,
    // a malformed request: 400) is answered in the error shape of /api/v1 too, and the connection closed.
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify(
        v1Error('E_USAGE', status === 431 ? `the request line and headers exceed ${MAX_HEADER_BYTES >> 10} KiB` : 'malformed HTTP request'),
      );
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      } else socket.destroy(error);
    },
    // MLflow's client sends repeated query keys (stages=A&stages=B) and JSON bodies.
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allowUnionTypes: true } },
  });
  const metrics = createMetrics();

  // A path that exists under other methods answers 405 with Allow, one that does not 404.
  const routes: Array<{ method: string; path: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = route.url
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/:[A-Za-z_]+/g, '[^/]+')
      .replace(/\*/g, '.*');
    for (const method of [route.method].flat()) routes.push({ method, path: new RegExp(`^${pattern}$`) });
  });
  const unrouted = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((r) => r.path.test(path)).map((r) => r.method))];
    if (allowed.length === 0) return answerError(new MlflowError('ENDPOINT_NOT_FOUND', `No endpoint ${request.method} ${path}`), request, reply);
    reply.header('allow', allowed.join(', '));
    return answerError(new MlflowError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`), request, reply);
  };
  // A request that matched no route fails there, or earlier (a body without a content type): either way, unrouted.
  app.setErrorHandler((error, request, reply) => (request.is404 ? unrouted(request, reply) : answerError(error, request, reply)));
  app.setNotFoundHandler(unrouted);

  installMetricsHooks(app, metrics);
  // Graceful shutdown: close() lets the requests in flight finish, then ends their connections
  // (a kept-alive one would otherwise hold the close open until its keep-alive timeout) and
  // tells the rest of the answers under way to close theirs.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request) => {
    if (closing) request.raw.socket?.end();
  });
  // A download is one request to the limit, however many files it has: MLflow's client lists an
  // artifact and then fetches each of its files, and only the first request of those (the first
  // answered without a 429) counts; the rest of the same artifact from the same client, inside
  // the window, pass.
  const downloads = new DownloadsCounted(RATE_WINDOW_MS);
  const downloadKey = (request: FastifyRequest) => {
    const artifact = artifactOfUrl(request.url);
    return artifact === undefined ? undefined : `${request.ip} ${artifact}`;
  };
  app.addHook('onResponse', async (request, reply) => {
    const key = downloadKey(request);
    if (key !== undefined && reply.statusCode !== 429) downloads.counted(key);
  });
  if (options.rateLimit !== 0)
    await app.register(rateLimit, {
      max: options.rateLimit ?? 600,
      timeWindow: RATE_WINDOW_MS,
      allowList: (request) => {
        if (!request.url.startsWith('/api/')) return true;
        const key = downloadKey(request);
        return key !== undefined && downloads.has(key);
      },
      errorResponseBuilder: (_request, context) =>
        Object.assign(new ModelgateError('E_RATE_LIMITED', `more than ${context.max} requests in ${context.after}; retry later`, ExitCode.usage), {
          statusCode: 429,
        }),
    });
  // The OpenAPI 3.1 document of /api/v1, generated from its routes' schemas (the MLflow routes keep theirs out of it).
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'modelgate serve', version: pkg.version, description: 'The registry read from one commit per request (X-Modelgate-Commit).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: ({ schema, url }) => ({ schema: url.startsWith('/api/v1/') ? schema : { ...schema, hide: true }, url }),
  });
  installAccess(app, options.tokens, { privateReads: options.privateReads ?? false });
  installCommitHook(app, options.registry);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (!options.registry.ready) return reply.code(503).send({ status: 'loading', ready: false });
    return { status: 'ready', ready: true, commit: (await options.registry.current()).commit };
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  registerApiV1Routes(app, options.registry);
  await registerApiV1Writes(app, options.registry, options.writes ?? 'pr');
  registerMlflowRoutes(app);
  registerMlflowWriteRoutes(app, options.registry, options.writes ?? 'pr', options.tracking);
  registerArtifactRoutes(app, metrics);
  // The registry pages (SPEC v3 §11): with --private-reads only for a request with a token (a browser sends none: a 401 page says so).
  registerPagesRoutes(app, options.registry, options.privateReads ? options.tokens : undefined);
  return { app, metrics };
}

/** A failure as both route families present it: HTTP status, MLflow's error code, modelgate's code. */
interface Failure {
  status: number;
  mlflow: MlflowErrorCode;
  modelgate: ErrorCode;
  message: string;
}

/** modelgate codes that are the caller's fault (HTTP 400), beside E_NOT_FOUND (404). */
const BAD_REQUEST_CODES: ReadonlySet<ErrorCode> = new Set(['E_USAGE', 'E_WHERE_SYNTAX', 'E_BARE_MODEL_REF']);

function classify(error: unknown): Failure {
  if (error instanceof MlflowError)
    return { status: error.status, mlflow: error.errorCode, modelgate: error.status === 404 ? 'E_NOT_FOUND' : 'E_USAGE', message: error.message };
  if (error instanceof ModelgateError) {
    const { code, message } = error;
    if (code === 'E_NOT_FOUND' || code === 'E_ARTIFACT_MISSING') return { status: 404, mlflow: 'RESOURCE_DOES_NOT_EXIST', modelgate: code, message };
    if (code === 'E_UNAUTHENTICATED') return { status: 401, mlflow: 'UNAUTHENTICATED', modelgate: code, message };
    if (code === 'E_RATE_LIMITED') return { status: 429, mlflow: 'REQUEST_LIMIT_EXCEEDED', modelgate: code, message };
    if (BAD_REQUEST_CODES.has(code)) return { status: 400, mlflow: 'INVALID_PARAMETER_VALUE', modelgate: code, message };
    if (error.exit === 3) return { status: 503, mlflow: 'TEMPORARILY_UNAVAILABLE', modelgate: code, message };
    return { status: 500, mlflow: 'INTERNAL_ERROR', modelgate: code, message: `${code}: ${message}` };
  }
  const fastify = error as FastifyError;
  if (fastify.validation) return { status: 400, mlflow: 'INVALID_PARAMETER_VALUE', modelgate: 'E_USAGE', message: fastify.message };
  if (fastify.statusCode && fastify.statusCode >= 400 && fastify.statusCode < 500)
    return { status: fastify.statusCode, mlflow: 'BAD_REQUEST', modelgate: 'E_USAGE', message: fastify.message };
  return { status: 500, mlflow: 'INTERNAL_ERROR', modelgate: 'E_INTERNAL', message: 'internal error' };
}

/** An error as /api/v1 answers it. */
function v1Error(code: ErrorCode, message: string): { error: { code: ErrorCode; message: string } } {
  return { error: { code, message } };
}

/** MLflow's shape under /api/2.0 (what its client parses), modelgate's under /api/v1. */
function answerError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const failure = classify(error);
  if (failure.status >= 500) request.log.error({ err: error }, 'request failed');
  const body = request.url.startsWith('/api/v1') ? v1Error(failure.modelgate, failure.message) : { error_code: failure.mlflow, message: failure.message };
  return reply.code(failure.status).type('application/json').send(body);
}
