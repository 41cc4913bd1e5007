import { createHmac, randomUUID } from 'node:crypto';
import { ioTimeoutMs, retryAfterMs } from '../io-timeout.js';
import type { PinChange } from '../deploy/plan.js';
import type { WebhookConfig } from '../manifest/types.js';

/** What a webhook receives for one pin change (Standard Webhooks envelope: type, timestamp, data). */
export interface PinEvent {
  type: 'modelgate.pin.changed' | 'modelgate.pin.retired';
  timestamp: string;
  data: {
    model: string;
    environment: string;
    stage: string;
    previousVersion: number | null;
    version: number | null;
    sha256: string | null;
    artifactUri: string | null;
    commit: string;
    repository: string | null;
    pullRequest: number | null;
  };
}

export interface DeliveryReport {
  /** Which webhook, without its URL path or query (Slack URLs carry their secret there). */
  target: string;
  event: { model: string; environment: string; version: number | null };
  ok: boolean;
  attempts: number;
  status?: number;
  error?: string;
}

export interface DeliveryOptions {
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
  /** Attempts per delivery, the first included (default 4). */
  maxAttempts?: number;
  /** Backoff base in ms (default 500); Retry-After is honoured up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => Date;
}

/**
 * The HMAC key of a Standard Webhooks secret: `whsec_<base64>` is decoded as the spec says;
 * any other value is used as its UTF-8 bytes.
 */
export function webhookKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the Standard Webhooks signature. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', webhookKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The message id a receiver deduplicates on; the same across retries of one delivery. */
function messageId(): string {
  return `msg_${randomUUID().replaceAll('-', '')}`;
}

/** Slack incoming-webhook payload for one event. */
function slackMessage(e: PinEvent): { text: string; blocks: unknown[] } {
  const d = e.data;
  const change =
    e.type === 'modelgate.pin.retired'
      ? `*${d.model}* retired from *${d.environment}*`
      : `*${d.model}* in *${d.environment}*: ${d.previousVersion ? `v${d.previousVersion} → ` : ''}v${d.version}`;
  const details = [
    d.sha256 ? `sha256 \`${d.sha256.slice(0, 12)}…\`` : undefined,
    `commit \`${d.commit.slice(0, 12)}\``,
    d.pullRequest ? `PR #${d.pullRequest}` : undefined,
  ].filter(Boolean);
  const text = `${change} (${details.join(', ')})`;
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
}

function targetName(url: string, index: number): string {
  try {
    return `webhook ${index + 1} (${new URL(url).host})`;
  } catch {
    return `webhook ${index + 1} (invalid URL)`;
  }
}

const sleepFor = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function deliverOne(hook: WebhookConfig, index: number, event: PinEvent, opts: DeliveryOptions): Promise<DeliveryReport> {
  const target = targetName(hook.url, index);
  const report: DeliveryReport = {
    target,
    event: { model: event.data.model, environment: event.data.environment, version: event.data.version },
    ok: false,
    attempts: 0,
  };
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? sleepFor;
  const now = opts.now ?? (() => new Date());
  const maxAttempts = opts.maxAttempts ?? 4;
  const base = opts.baseDelayMs ?? 500;
  const cap = opts.maxDelayMs ?? 30_000;
  const slack = hook.format === 'slack';
  let secret: string | undefined;
  if (!slack && hook.secretEnv) {
    secret = (opts.env ?? process.env)[hook.secretEnv];
    if (!secret) return { ...report, error: `secret environment variable ${hook.secretEnv} is not set; not sent` };
  }
  const body = JSON.stringify(slack ? slackMessage(event) : event);
  const id = messageId();
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    report.attempts = attempt;
    const timestamp = Math.floor(now().getTime() / 1000);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'modelgate' };
    if (!slack) {
      headers['webhook-id'] = id;
      headers['webhook-timestamp'] = String(timestamp);
      if (secret) headers['webhook-signature'] = signWebhook(secret, id, timestamp, body);
    }
    let wait: number | undefined;
    try {
      const res = await doFetch(hook.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(opts.timeoutMs ?? ioTimeoutMs(opts.env ?? process.env)),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      report.status = res.status;
      if (res.status >= 200 && res.status < 300) return { ...report, ok: true, error: undefined };
      if (res.status !== 429 && res.status < 500) return { ...report, error: `HTTP ${res.status}` };
      report.error = `HTTP ${res.status}`;
      wait = retryAfterMs(res.headers.get('retry-after'), now());
    } catch (e) {
      // Only the error's kind: fetch messages can repeat the URL, which may hold a token.
      report.error = (e as Error)?.name === 'TimeoutError' ? 'timed out' : 'network error';
    }
    if (attempt < maxAttempts) await sleep(Math.min(cap, wait ?? Math.random() * base * 2 ** (attempt - 1)));
  }
  return report;
}

/**
 * Posts every event to every webhook, each delivery retried on 429, 5xx and network errors with
 * jittered backoff (Retry-After honoured, bounded). Never throws: failures come back in the
 * reports, because a notification must not undo or block the sync that caused it.
 */
export async function deliverEvents(webhooks: WebhookConfig[], events: PinEvent[], opts: DeliveryOptions = {}): Promise<DeliveryReport[]> {
  const jobs = webhooks.flatMap((hook, i) => events.map((event) => deliverOne(hook, i, event, opts)));
  return Promise.all(jobs);
}

/** One line per delivery that finally failed: the CLI's warnings, the Action's warnings and job summary. */
export function failedDeliveries(deliveries: DeliveryReport[]): string[] {
  return deliveries
    .filter((d) => !d.ok)
    .map((d) => `${d.target}: ${d.event.model} ${d.event.environment} not delivered after ${d.attempts} attempt(s): ${d.error ?? 'failed'}`);
}

/** The pull request a merge commit names: `Merge pull request #12 …` or a squash subject `… (#12)`. */
export function pullRequestOf(commitMessage: string): number | undefined {
  const m = /^Merge pull request #(\d+)/m.exec(commitMessage) ?? /\(#(\d+)\)\s*$/m.exec(commitMessage.split('\n')[0] ?? '');
  return m ? Number(m[1]) : undefined;
}

/** One event per pin change of a sync commit. */
export function pinEvents(
  changes: PinChange[],
  context: { commit: string; repository?: string; pullRequest?: (change: PinChange) => number | undefined; now?: Date },
): PinEvent[] {
  const timestamp = (context.now ?? new Date()).toISOString();
  return changes.map((c) => ({
    type: c.action === 'retire' ? 'modelgate.pin.retired' : 'modelgate.pin.changed',
    timestamp,
    data: {
      model: c.model,
      environment: c.environment,
      stage: c.stage,
      previousVersion: c.fromVersion ?? null,
      version: c.toVersion ?? null,
      sha256: c.sha256 ?? null,
      artifactUri: c.artifactUri ?? null,
      commit: context.commit,
      repository: context.repository ?? null,
      pullRequest: context.pullRequest?.(c) ?? null,
    },
  }));
}
