import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { DestinationStream, LoggerOptions } from 'pino';
import { ModelgateError } from '../errors.js';
import { AccessDenied, installAccess, type TokenTable } from './access.js';
import { installCommitHook } from './commit-hook.js';
import { createMetrics, installMetricsHooks, type ServeMetrics } from './metrics.js';
import { MlflowError, type MlflowErrorCode } from './mlflow.js';
import { registerArtifactRoutes } from './mlflow-artifacts.js';
import { registerMlflowRoutes } from './mlflow-routes.js';
import type { ServedRegistry } from './served-registry.js';

export interface ServeOptions {
  registry: ServedRegistry;
  tokens: TokenTable;
  /** Reads need a token too (writes always do). */
  privateReads?: boolean;
  /** Requests per minute from one client address, for every route but the operations ones. */
  rateLimit?: number;
  /** Largest request body accepted, in bytes (uploads of artifacts stream and are not bound by it). */
  bodyLimit?: number;
  /** pino's options and where it writes; false for no log. */
  logger?: { options: LoggerOptions; stream?: DestinationStream } | false;
}

/** Headers pino must never write, whatever a log line holds. */
export const REDACTED_HEADERS = ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'];

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
    // MLflow's client sends repeated query keys (stages=A&stages=B) and JSON bodies.
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
  });
  const metrics = createMetrics();

  app.setErrorHandler((error, request, reply) => answerError(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    answerError(new MlflowError('ENDPOINT_NOT_FOUND', `No endpoint ${request.method} ${request.url.split('?')[0]}`), request, reply),
  );

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
  await app.register(rateLimit, {
    max: options.rateLimit ?? 600,
    timeWindow: '1 minute',
    allowList: (request) => !request.url.startsWith('/api/'),
  });
  installAccess(app, options.tokens, { privateReads: options.privateReads ?? false });
  installCommitHook(app, options.registry);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (!options.registry.ready) return reply.code(503).send({ status: 'loading', ready: false });
    return { status: 'ready', ready: true, commit: (await options.registry.current()).commit };
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  registerMlflowRoutes(app);
  registerArtifactRoutes(app, metrics);
  return { app, metrics };
}

/** The MLflow error code a failure is answered with. */
function mlflowCode(error: unknown): { status: number; code: MlflowErrorCode; message: string } {
  if (error instanceof MlflowError) return { status: error.status, code: error.errorCode, message: error.message };
  if (error instanceof AccessDenied)
    return { status: error.status, code: error.status === 401 ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED', message: error.message };
  if (error instanceof ModelgateError) {
    if (error.code === 'E_NOT_FOUND' || error.code === 'E_ARTIFACT_MISSING') return { status: 404, code: 'RESOURCE_DOES_NOT_EXIST', message: error.message };
    if (error.exit === 3) return { status: 503, code: 'TEMPORARILY_UNAVAILABLE', message: error.message };
    return { status: 500, code: 'INTERNAL_ERROR', message: `${error.code}: ${error.message}` };
  }
  const fastify = error as FastifyError;
  if (fastify.validation) return { status: 400, code: 'INVALID_PARAMETER_VALUE', message: fastify.message };
  if (fastify.statusCode === 429) return { status: 429, code: 'REQUEST_LIMIT_EXCEEDED', message: fastify.message };
  if (fastify.statusCode && fastify.statusCode >= 400 && fastify.statusCode < 500)
    return { status: fastify.statusCode, code: 'BAD_REQUEST', message: fastify.message };
  return { status: 500, code: 'INTERNAL_ERROR', message: 'internal error' };
}

function answerError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, code, message } = mlflowCode(error);
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  return reply.code(status).type('application/json').send({ error_code: code, message });
}
