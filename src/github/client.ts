import { Octokit } from '@octokit/rest';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { ioTimeoutMs } from '../io-timeout.js';

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
 * An Octokit for the REST API at `baseUrl` (GITHUB_API_URL: GitHub Enterprise Server works),
 * with no retries (a failure fails the gate, it is not hidden) and a deadline on every request.
 */
export function createOctokit(opts: { token: string | undefined; baseUrl?: string; timeoutMs?: number; userAgent?: string }): Octokit {
  if (!opts.token) throw usageError('no GitHub token: set GITHUB_TOKEN (or GH_TOKEN), or the action input github-token');
  const timeoutMs = opts.timeoutMs ?? ioTimeoutMs();
  return new Octokit({
    auth: opts.token,
    baseUrl: (opts.baseUrl || 'https://api.github.com').replace(/(?<!\/)\/+$/, ''),
    userAgent: opts.userAgent ?? 'modelgate',
    log: { debug() {}, info() {}, warn() {}, error() {} },
    request: {
      retries: 0,
      fetch: (url: string, init: RequestInit) => fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
    },
  });
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
    const answered = (e as { response?: unknown }).response !== undefined;
    const raw = (e as { status?: unknown }).status;
    const status = answered && typeof raw === 'number' && raw > 0 ? raw : undefined;
    const names = [(e as Error)?.name, (e as { cause?: Error }).cause?.name];
    const why = status !== undefined ? `HTTP ${status}` : names.some((n) => n === 'TimeoutError' || n === 'AbortError') ? 'timed out' : 'no answer';
    throw new ModelgateError('E_GITHUB', `GitHub: ${what} failed (${why})`, ExitCode.service, { status });
  }
}
