// GitHub calls retry a rate limit (429, or a 403 that says so) and a 5xx within MODELGATE_IO_TIMEOUT,
// honouring Retry-After; a POST that creates is never sent twice for one thing. Against the
// GitHub emulator's fault injection (src/local/github-emulator.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelgateError } from '../src/errors.js';
import { createOctokit, MAX_ATTEMPTS, type GitHubConnection } from '../src/github/client.js';
import { openOrUpdatePullRequest } from '../src/github/promotion-pr.js';
import { getPullRequest, setCommitStatus, upsertComment } from '../src/github/pull-requests.js';
import type { EmulatedPull, GitHubEmulator } from '../src/local/github-emulator.js';
import { startValidatedGitHubEmulator, type GitHubResponseValidator } from './helpers/github.js';

let gh: GitHubEmulator & { validator: GitHubResponseValidator };
let pull: EmulatedPull;
const BOT = 'github-actions[bot]';
const PULL = 'GET /repos/{owner}/{repo}/pulls/{pull_number}';
const COMMENTS = 'POST /repos/{owner}/{repo}/issues/{issue_number}/comments';

const connect = (timeoutMs?: number, token = `token-${BOT}`): GitHubConnection => ({
  octokit: createOctokit({ token, baseUrl: gh.url, timeoutMs }),
  owner: 'acme',
  repo: 'model-registry',
});
const failure = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('the call succeeded'),
    (e: unknown) => e as ModelgateError,
  );
const mine = (n: number) => gh.comments.filter((c) => c.issue_number === n && c.user === BOT);

beforeAll(async () => {
  gh = await startValidatedGitHubEmulator();
  gh.addUser('maria');
  gh.addUser(BOT, { type: 'Bot' });
  const repo = gh.addRepo('acme', 'model-registry');
  pull = gh.createPull({ repo, head: 'promote', user: 'maria', headSha: 'a'.repeat(40), baseSha: 'b'.repeat(40) });
});

afterAll(async () => {
  await gh?.close();
});

describe('reads', () => {
  it('waits as Retry-After says after a 429, then succeeds', { timeout: 60_000 }, async () => {
    const fault = gh.inject(PULL, { status: 429, headers: { 'retry-after': '1' }, times: 2 });
    const started = Date.now();
    expect((await getPullRequest(connect(), pull.number)).number).toBe(pull.number);
    expect(fault.hits).toBe(2);
    // A lower bound only: a loaded machine makes it longer, never shorter.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  });

  it('waits for x-ratelimit-reset when a 403 says no requests remain; a plain 403 is not asked again', { timeout: 60_000 }, async () => {
    const reset = () => String(Math.ceil(Date.now() / 1000) + 1);
    const limited = gh.inject(PULL, { status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset() }, times: 1 });
    expect((await getPullRequest(connect(), pull.number)).number).toBe(pull.number);
    expect(limited.hits).toBe(1);
    const forbidden = gh.inject(PULL, { status: 403 });
    try {
      const err = await failure(getPullRequest(connect(), pull.number));
      expect(err).toMatchObject({ code: 'E_GITHUB', exit: 3, data: { status: 403, attempts: 1 } });
      expect(forbidden.hits).toBe(1);
    } finally {
      forbidden.remove();
    }
  });

  it('asks again after a 502 or 503 and gives up after MAX_ATTEMPTS, exit 3 naming GitHub and the operation', { timeout: 60_000 }, async () => {
    const flaky = gh.inject(PULL, { status: 502, times: 2 });
    expect((await getPullRequest(connect(), pull.number)).number).toBe(pull.number);
    expect(flaky.hits).toBe(2);
    const down = gh.inject(PULL, { status: 503 });
    try {
      const err = await failure(getPullRequest(connect(), pull.number));
      expect(err).toBeInstanceOf(ModelgateError);
      expect(err).toMatchObject({ code: 'E_GITHUB', exit: 3, data: { status: 503, attempts: MAX_ATTEMPTS } });
      expect(err.message).toBe(`GitHub: reading pull request #${pull.number} failed (HTTP 503) after ${MAX_ATTEMPTS} attempts`);
      expect(down.hits).toBe(MAX_ATTEMPTS);
    } finally {
      down.remove();
    }
  });

  it('does not begin a wait that would end past MODELGATE_IO_TIMEOUT', async () => {
    const fault = gh.inject(PULL, { status: 429, headers: { 'retry-after': '3600' } });
    try {
      const err = await failure(getPullRequest(connect(5_000), pull.number));
      expect(err).toMatchObject({ code: 'E_GITHUB', exit: 3, data: { status: 429, attempts: 1 } });
      expect(fault.hits).toBe(1);
    } finally {
      fault.remove();
    }
  });
});

describe('writes', () => {
  it('sets a commit status again after a 5xx (one more status changes nothing) and after a 429', { timeout: 60_000 }, async () => {
    const sha = pull.head.sha;
    const fault = gh.inject('POST /repos/{owner}/{repo}/statuses/{sha}', { status: 502, times: 1 });
    const limited = gh.inject('POST /repos/{owner}/{repo}/statuses/{sha}', { status: 429, headers: { 'retry-after': '0' }, times: 1 });
    await setCommitStatus(connect(), sha, 'success', 'all rules pass');
    expect(fault.hits + limited.hits).toBe(2);
    expect(gh.statuses.filter((s) => s.sha === sha).map((s) => s.state)).toEqual(['success']);
  });

  it('creates one comment when GitHub created it but answered 502: it looks before posting again', { timeout: 60_000 }, async () => {
    const p = gh.createPull({ repo: 'acme/model-registry', head: 'lost-answer', user: 'maria', headSha: 'a'.repeat(40), baseSha: 'b'.repeat(40) });
    const fault = gh.inject(COMMENTS, { status: 502, times: 1, afterHandling: true });
    const r = await upsertComment(connect(), p.number, 'report');
    expect(fault.hits).toBe(1);
    expect(mine(p.number)).toHaveLength(1);
    expect(r).toEqual({ id: mine(p.number)[0]!.id, created: true });
    expect(gh.requests.filter((q) => q.method === 'POST' && q.path.endsWith(`/issues/${p.number}/comments`))).toHaveLength(1);
  });

  it('posts the comment again when the failed POST created nothing, and after a 429', { timeout: 60_000 }, async () => {
    const p = gh.createPull({ repo: 'acme/model-registry', head: 'not-created', user: 'maria', headSha: 'a'.repeat(40), baseSha: 'b'.repeat(40) });
    const fault = gh.inject(COMMENTS, { status: 500, times: 1 });
    const limited = gh.inject(COMMENTS, { status: 429, headers: { 'retry-after': '0' }, times: 1 });
    const r = await upsertComment(connect(), p.number, 'report');
    expect(fault.hits + limited.hits).toBe(2);
    expect(mine(p.number)).toHaveLength(1);
    expect(r.created).toBe(true);
    const down = gh.inject(COMMENTS, { status: 500 });
    try {
      const q = gh.createPull({ repo: 'acme/model-registry', head: 'never-created', user: 'maria', headSha: 'a'.repeat(40), baseSha: 'b'.repeat(40) });
      const err = await failure(upsertComment(connect(), q.number, 'report'));
      expect(err).toMatchObject({ code: 'E_GITHUB', exit: 3, data: { status: 500, attempts: MAX_ATTEMPTS } });
      expect(err.message).toBe(`GitHub: adding the modelgate comment failed (HTTP 500) after ${MAX_ATTEMPTS} attempts`);
      expect(mine(q.number)).toHaveLength(0);
    } finally {
      down.remove();
    }
  });

  it('opens one pull request when GitHub opened it but answered 500', { timeout: 60_000 }, async () => {
    const before = gh.requests.length;
    const fault = gh.inject('POST /repos/{owner}/{repo}/pulls', { status: 500, times: 1, afterHandling: true });
    const c = connect(undefined, 'token-maria');
    const opened = await openOrUpdatePullRequest(c, { branch: 'modelgate/churn-v1-staging', base: 'main', title: 'Promote churn@1', body: 'why' });
    expect(fault.hits).toBe(1);
    expect(opened.created).toBe(true);
    expect(gh.getPull('acme/model-registry', opened.number)).toMatchObject({ title: 'Promote churn@1' });
    expect(gh.requests.slice(before).filter((q) => q.method === 'POST')).toHaveLength(1);
    expect(gh.validator.violations).toEqual([]);
  });
});
