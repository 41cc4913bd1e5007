import { cancelled, onCancel } from '../cancel.js';
import { parseCommand, type Command, type Misuse } from '../cli/context.js';
import { usageError } from '../errors.js';
import { isRegistryUrl, locateRegistry } from '../registry/snapshot.js';
import { TokenTable } from '../serve/access.js';
import { ServedRegistry } from '../serve/served-registry.js';
import { buildServer } from '../serve/server.js';
import { WRITE_MODES, type WriteMode } from '../serve/mlflow-writes.js';
import { MlflowTrackingClient } from '../mlflow/client.js';

const isWriteMode = (text: string): text is WriteMode => (WRITE_MODES as readonly string[]).includes(text);

/** `host:port`, `:port` or `port`; the host defaults to loopback. */
function parseListen(text: string, misuse: Misuse): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:]*):)?([0-9]{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw misuse(`--listen ${text}: expected host:port (0.0.0.0:8080, 127.0.0.1:0)`);
  return { host: (m[1] || '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

/**
 * `modelgate serve`: listens until SIGTERM or SIGINT, then stops taking requests, lets those in
 * flight finish and exits 143 or 130, as every command cancelled by those signals. Logs are JSON lines on stdout (pino), tokens redacted.
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('serve', ctx.argv);
  if (positionals.length) throw misuse(`unexpected argument ${positionals[0]}`);
  const { host, port } = parseListen(values.listen ?? '127.0.0.1:8080', misuse);
  const refresh = values.refresh === undefined ? 10 : /^[0-9]+(\.[0-9]+)?$/.test(values.refresh) ? Number(values.refresh) : NaN;
  if (!(refresh >= 0.1 && refresh <= 86_400)) throw usageError(`--refresh ${values.refresh}: expected seconds from 0.1 to 86400`);
  const writes = values.writes ?? 'pr';
  if (!isWriteMode(writes)) throw misuse(`--writes ${writes}: expected ${WRITE_MODES.join(', ')}`);
  const trackingUri = values['mlflow-tracking-uri'] ?? ctx.env.MLFLOW_TRACKING_URI;
  // MLFLOW_TRACKING_URI may name a database (sqlite:///…): only a server is a source of registrations.
  const tracking = trackingUri && /^https?:\/\//.test(trackingUri) ? new MlflowTrackingClient(trackingUri, ctx.env) : undefined;
  if (values['mlflow-tracking-uri'] !== undefined && !tracking)
    throw misuse(`--mlflow-tracking-uri ${trackingUri}: expected the http(s) URL of an MLflow tracking server`);
  const rateLimit = values['rate-limit'] === undefined ? undefined : /^[0-9]{1,9}$/.test(values['rate-limit']) ? Number(values['rate-limit']) : NaN;
  if (Number.isNaN(rateLimit)) throw usageError(`--rate-limit ${values['rate-limit']}: expected a number of requests per minute (0: no limit)`);
  const tokens = values.tokens === undefined ? TokenTable.empty() : await TokenTable.fromFile(values.tokens);
  const registry = isRegistryUrl(ctx.registry)
    ? await ServedRegistry.remote(ctx.registry!, ctx.env)
    : await ServedRegistry.local(locateRegistry(ctx.cwd, ctx.registry), ctx.env);

  if (writes === 'commit' && registry.isOwnClone) {
    await registry.close();
    throw usageError('--writes commit needs a local registry: a remote one takes --writes push or pr');
  }
  const { app, metrics } = await buildServer({
    registry,
    tokens,
    writes,
    privateReads: values['private-reads'] ?? false,
    ...(tracking ? { tracking } : {}),
    rateLimit,
    logger: { options: { level: ctx.quiet ? 'warn' : 'info' } },
  });
  const refreshNow = () =>
    registry.refresh().then(
      () => metrics.commitTime.set(Date.now() / 1000),
      (e: unknown) => {
        metrics.refreshFailures.inc();
        app.log.error({ err: e }, 'refreshing the registry failed; the commit served before stays');
      },
    );
  const timer = setInterval(() => void refreshNow(), refresh * 1000);
  // SIGTERM or SIGINT cancels the CLI (src/cancel.ts): its handler waits for this shutdown
  // (at most its undo time) before the process exits 143 or 130.
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      app.log.info({ signal: cancelled() }, 'shutting down: finishing the requests in flight');
      clearInterval(timer);
      await app.close();
      await registry.close();
    })());
  const off = onCancel(stop);
  try {
    await app.listen({ host, port });
    await refreshNow();
    await new Promise<void>((resolve) => app.server.once('close', resolve));
    await stop();
  } finally {
    off();
  }
  return 0;
};
