import { setTimeout as sleep } from 'node:timers/promises';
import { Octokit } from '@octokit/rest';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { ioTimeoutMs, retryAfterMs } from '../io-timeout.js';

export interface GitHubConnection {
  octokit: Octokit;
  owner: string;
  repo: string;
}

/** `owner/name`, validated: it ends up in request paths. */
export function parseRepository(text: string | undefined): { owner: string; repo: string } {
  const m = /^([A-Za-z0-9-]{1,39})\/([A-Za-z0-9._-]{1,100})$/.exec(text ?? '');
  if (!m || m[2] === '.' || m[2] === '..') throw usageError(`invalid GitHub repository ${JSON.stringify(text ?? '')}: expected owner/name`);
  return { owner: m[1]!, repo: m[2]! };
}

/**
 * An Octokit for the REST API at `baseUrl` (GITHUB_API_URL: GitHub Enterprise Server works).
 * Every request, retries included, ends within the deadline (MODELGATE_IO_TIMEOUT): a rate limit
 * or a 5xx is asked again as `retryingFetch` says, anything else fails the call (and the gate).
 */
export function createOctokit(opts: { token: string | undefined; baseUrl?: string; timeoutMs?: number; userAgent?: string }): Octokit {
  if (!opts.token) throw usageError('no GitHub token: set GITHUB_TOKEN (or GH_TOKEN), or the action input github-token');
  return new Octokit({
    auth: opts.token,
    baseUrl: (opts.baseUrl || 'https://api.github.com').replace(/(?<!\/)\/+$/, ''),
    userAgent: opts.userAgent ?? 'modelgate',
    log: { debug() {}, info() {}, warn() {}, error() {} },
    request: { retries: 0, fetch: retryingFetch(opts.timeoutMs ?? ioTimeoutMs()) },
  });
}

/** Requests per call, the first included: a GitHub that keeps failing is reported, not hammered. */
export const MAX_ATTEMPTS = 5;
/** The n-th retry waits a jittered 125·2ⁿ⁻¹ to 250·2ⁿ⁻¹ ms, or longer when GitHub says so. */
const BACKOFF_BASE_MS = 250;
/** Set on the failed answer handed to Octokit, so the error can say how often GitHub was asked. */
const ATTEMPTS_HEADER = 'x-modelgate-attempts';
/** The one POST that does nothing new when repeated: a commit status (the newest per context counts). */
const REPEATABLE_POST = /\/repos\/[^/]+\/[^/]+\/statuses\/[^/]+$/;

const backoffMs = (retry: number) => BACKOFF_BASE_MS * 2 ** (retry - 1) * (0.5 + Math.random() / 2);

/**
 * How long GitHub asks to wait before the request may be sent again, or undefined when it must
 * not be. A rate limit (429, or a 403 with Retry-After or no requests remaining) was not carried
 * out, so any request may be repeated, after Retry-After or at x-ratelimit-reset. A 5xx may come
 * after the work was done, so only a request that does the same thing twice is repeated: reads,
 * PUT, PATCH and DELETE, and a commit status; a POST that creates (a comment, a pull request) is
 * left to `createOnce`, which looks for what it may have created first.
 */
function retryWaitMs(method: string, url: string, status: number, headers: Headers, now: number): number | undefined {
  const after = retryAfterMs(headers.get('retry-after'), new Date(now));
  const exhausted = headers.get('x-ratelimit-remaining') === '0';
  if (status === 429 || (status === 403 && (after !== undefined || exhausted))) {
    const reset = Number(headers.get('x-ratelimit-reset'));
    return after ?? (exhausted && reset > 0 ? Math.max(0, reset * 1000 - now) : 0);
  }
  const repeatable = method !== 'POST' || REPEATABLE_POST.test(new URL(url).pathname);
  return status >= 500 && status <= 599 && repeatable ? (after ?? 0) : undefined;
}

/**
 * `fetch` for Octokit that asks GitHub again on a rate limit or a 5xx (`retryWaitMs`), up to
 * MAX_ATTEMPTS times and only while the wait ends before the deadline, `timeoutMs` after the
 * first request: every attempt shares it. A wait past the deadline is not begun; the answer
 * stands, and the error names it and the number of attempts.
 */
function retryingFetch(timeoutMs: number): typeof fetch {
  return async (input, init = {}) => {
    const method = (init.method ?? 'GET').toUpperCase();
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const replayable = init.body === undefined || init.body === null || typeof init.body === 'string';
    const deadline = Date.now() + timeoutMs;
    // The room a retry needs to be worth sending: without it the retry could only time out.
    const room = Math.min(1000, timeoutMs / 4);
    for (let attempt = 1; ; attempt++) {
      const timeout = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
      const res = await fetch(input, { ...init, signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout });
      const hinted = attempt < MAX_ATTEMPTS && replayable ? retryWaitMs(method, url, res.status, res.headers, Date.now()) : undefined;
      const wait = hinted === undefined ? undefined : Math.max(hinted, backoffMs(attempt));
      if (wait === undefined || Date.now() + wait + room > deadline) return attempt === 1 || res.ok ? res : withAttempts(res, attempt);
      await res.body?.cancel();
      await sleep(wait);
    }
  };
}

function withAttempts(res: Response, attempts: number): Response {
  const headers = new Headers(res.headers);
  headers.set(ATTEMPTS_HEADER, String(attempts));
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

/**
 * Runs one GitHub call and turns any failure into E_GITHUB (exit 3) naming the operation and
 * the HTTP status: Octokit's own errors carry the request (and so the token's headers) and are
 * never shown.
 */
export async function github<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof ModelgateError) throw e;
    // Octokit labels a request that got no response (timeout, refused connection) as status
    // 500 too: only an error carrying a response is an answer from GitHub.
    const response = (e as { response?: { headers?: Record<string, string> } }).response;
    const raw = (e as { status?: unknown }).status;
    const status = response !== undefined && typeof raw === 'number' && raw > 0 ? raw : undefined;
    const attempts = Number(response?.headers?.[ATTEMPTS_HEADER] ?? 1);
    const names = [(e as Error)?.name, (e as { cause?: Error }).cause?.name];
    const why = status !== undefined ? `HTTP ${status}` : names.some((n) => n === 'TimeoutError' || n === 'AbortError') ? 'timed out' : 'no answer';
    throw new ModelgateError('E_GITHUB', `GitHub: ${what} failed (${why})${attempts > 1 ? ` after ${attempts} attempts` : ''}`, ExitCode.service, {
      status,
      attempts,
    });
  }
}

/**
 * Creates what GitHub would create twice if asked twice (a comment, a pull request). A 5xx may
 * come after GitHub did the work, so before the POST is sent again `find` looks for what it may
 * have made; the first answer found (or created) is returned. Up to MAX_ATTEMPTS POSTs, within
 * the deadline; a rate limit is already retried by `retryingFetch`.
 */
export async function createOnce<T>(what: string, find: () => Promise<T | undefined>, create: () => Promise<T>, timeoutMs = ioTimeoutMs()): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await github(what, create);
    } catch (e) {
      const status = (e as ModelgateError).data.status;
      const wait = backoffMs(attempt);
      const late = Date.now() + wait > deadline;
      if (!(typeof status === 'number' && status >= 500) || (attempt === 1 && late)) throw e;
      if (attempt >= MAX_ATTEMPTS || late) {
        throw new ModelgateError('E_GITHUB', `GitHub: ${what} failed (HTTP ${status}) after ${attempt} attempts`, ExitCode.service, {
          status,
          attempts: attempt,
        });
      }
      await sleep(wait);
      const found = await find();
      if (found !== undefined) return found;
    }
  }
}
