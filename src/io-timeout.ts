import { ExitCode, ModelgateError } from './errors.js';

/** Default bound, in seconds without progress, on one network operation (SPEC v2 §4). */
const DEFAULT_IO_TIMEOUT = 120;

/**
 * `MODELGATE_IO_TIMEOUT`: seconds an S3 request, git network operation, GitHub call or webhook
 * may go without progress before it is abandoned. Positive numbers only; anything else is the default.
 */
export function ioTimeoutSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.MODELGATE_IO_TIMEOUT;
  const n = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_IO_TIMEOUT;
}

export const ioTimeoutMs = (env: NodeJS.ProcessEnv = process.env): number => Math.round(ioTimeoutSeconds(env) * 1000);

/** The stall error: exit 3, naming the service and the operation that stopped making progress. */
export function stallError(service: string, operation: string, seconds: number, data: Record<string, unknown> = {}): ModelgateError {
  return new ModelgateError(
    'E_IO_TIMEOUT',
    `${service} made no progress for ${seconds} s while ${operation} (MODELGATE_IO_TIMEOUT=${seconds})`,
    ExitCode.service,
    { service, operation, seconds, ...data },
  );
}

/** A `Retry-After` header (seconds, or an HTTP date) as milliseconds from `now`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now: Date): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}
