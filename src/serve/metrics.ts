import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** What serve counts for Prometheus (`/metrics`), in a registry of its own (not prom-client's global one). */
export interface ServeMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
  integrityFailures: Counter;
  refreshFailures: Counter;
  commitTime: Gauge;
}

export function createMetrics(): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'modelgate_serve_' });
  return {
    registry,
    requests: new Counter({
      name: 'modelgate_serve_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'modelgate_serve_request_duration_seconds',
      help: 'Time to answer an HTTP request (to the last byte), by method and route pattern',
      labelNames: ['method', 'route'],
      registers: [registry],
    }),
    integrityFailures: new Counter({
      name: 'modelgate_serve_artifact_integrity_failures_total',
      help: 'Artifact downloads aborted because the bytes did not match their recorded sha256',
      registers: [registry],
    }),
    refreshFailures: new Counter({
      name: 'modelgate_serve_refresh_failures_total',
      help: 'Refreshes of the registry that failed (the commit served before stays)',
      registers: [registry],
    }),
    commitTime: new Gauge({
      name: 'modelgate_serve_commit_loaded_timestamp_seconds',
      help: 'When the commit now served was loaded',
      registers: [registry],
    }),
  };
}

/** Counts every answer by its route pattern (never the raw URL: model names would explode the label set). */
export function installMetricsHooks(app: FastifyInstance, metrics: ServeMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
}
