import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmulatedPull, EmulatedRepo, GitHubEmulator } from '../src/local/github-emulator.js';
import {
  createGitHubResponseValidator,
  gitAs,
  pullRequestEvent,
  pullRequestReviewEvent,
  startValidatedGitHubEmulator,
  type GitHubResponseValidator,
} from './helpers/github.js';

const git = gitAs('Maria');

/** An error Octokit threw, reduced to what the tests assert. */
async function failure(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { status: number; response?: { data?: { message?: string } } };
    return { status: e.status, message: e.response?.data?.message ?? '' };
  }
  throw new Error('expected the request to fail');
}

let tmp: string;
let bareDir: string;
let work: string;
let gh: GitHubEmulator & { validator: GitHubResponseValidator };
let repo: EmulatedRepo;
let maria: Octokit;
let carol: Octokit;

const client = (token: string) => new Octokit({ auth: token, baseUrl: gh.url, request: { retries: 0 } });

async function commitFile(path: string, content: string, message: string) {
  await mkdir(join(work, path, '..'), { recursive: true });
  await writeFile(join(work, path), content);
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', message);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gh-emulator-'));
  bareDir = join(tmp, 'registry.git');
  work = join(tmp, 'work');
  git(tmp, 'init', '-q', '--bare', '-b', 'main', bareDir);
  git(tmp, 'clone', '-q', bareDir, work);
  git(work, 'checkout', '-q', '-b', 'main');
  await commitFile('models/fraud/versions/1.yaml', 'version: 1\nstage: Production\n', 'v1');
  await commitFile('models/fraud/versions/2.yaml', 'version: 2\nstage: Staging\n', 'v2');
  await commitFile('README.md', 'registry\n', 'readme');
  await commitFile('models/fraud/model.yaml', 'owners: [maria]\n', 'model');
  git(work, 'push', '-q', 'origin', 'main');
  // A promotion branch: modifies, adds, removes and renames files.
  git(work, 'checkout', '-q', '-b', 'promote/fraud-2');
  await writeFile(join(work, 'models/fraud/versions/2.yaml'), 'version: 2\nstage: Production\n');
  await writeFile(join(work, 'models/fraud/versions/1.yaml'), 'version: 1\nstage: Archived\n');
  await writeFile(join(work, 'NOTES.md'), 'a\nb\nc\n');
  git(work, 'rm', '-q', 'README.md');
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'promote fraud@2 to Production');
  git(work, 'push', '-q', 'origin', 'promote/fraud-2');
  // A branch that conflicts with a later change on main.
  git(work, 'checkout', '-q', '-b', 'conflict', 'main');
  await commitFile('models/fraud/model.yaml', 'owners: [dave]\n', 'dave owns fraud');
  git(work, 'push', '-q', 'origin', 'conflict');
  git(work, 'checkout', '-q', 'main');
  await commitFile('models/fraud/model.yaml', 'owners: [carol]\n', 'carol owns fraud');
  git(work, 'push', '-q', 'origin', 'main');

  gh = await startValidatedGitHubEmulator();
  gh.addUser('maria', { emails: ['maria@example.com'] });
  gh.addUser('carol');
  gh.addUser('dave');
  gh.addUser('modelgate[bot]', { token: 'ghs_bot' });
  gh.addTeam('acme', 'ml-governance', ['carol', { login: 'dave', state: 'pending', role: 'maintainer' }]);
  repo = gh.addRepo('acme', 'model-registry', { gitDir: bareDir });
  gh.addRepo('acme', 'plain');
  maria = client('token-maria');
  carol = client('token-carol');
});

afterAll(async () => {
  await gh?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('GitHub emulator', () => {
  it('requires a known token and answers 401 with GitHub’s error body otherwise', async () => {
    expect(await failure(new Octokit({ baseUrl: gh.url }).rest.pulls.list({ owner: 'acme', repo: 'model-registry' }))).toEqual({
      status: 401,
      message: 'Requires authentication',
    });
    expect(await failure(client('nope').rest.pulls.list({ owner: 'acme', repo: 'model-registry' }))).toEqual({
      status: 401,
      message: 'Bad credentials',
    });
    // Bearer works as well as `token`.
    const res = await fetch(`${gh.url}/repos/acme/model-registry/pulls`, { headers: { authorization: 'Bearer ghs_bot' } });
    expect(res.status).toBe(200);
    expect(gh.requests.at(-1)).toMatchObject({ method: 'GET', route: '/repos/{owner}/{repo}/pulls', login: 'modelgate[bot]' });
  });

  it('answers 404 with {message, documentation_url} for unknown routes and records them', async () => {
    const err = await failure(maria.request('GET /repos/{owner}/{repo}/branches', { owner: 'acme', repo: 'model-registry' }));
    expect(err).toEqual({ status: 404, message: 'Not Found' });
    expect(gh.requests.at(-1)).toMatchObject({ method: 'GET', path: '/repos/acme/model-registry/branches', route: null, status: 404 });
    expect(await failure(maria.rest.pulls.get({ owner: 'acme', repo: 'nope', pull_number: 1 }))).toMatchObject({ status: 404 });
  });

  let pull: EmulatedPull;

  it('creates, lists, reads and updates a pull request backed by the bare repository', async () => {
    const created = await maria.rest.pulls.create({
      owner: 'acme',
      repo: 'model-registry',
      head: 'acme:promote/fraud-2',
      base: 'main',
      title: 'Promote fraud@2',
      body: 'x',
    });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`${gh.url}/repos/acme/model-registry/pulls/1`);
    const headSha = git(bareDir, 'rev-parse', 'promote/fraud-2');
    const baseSha = git(bareDir, 'rev-parse', 'main');
    expect(created.data).toMatchObject({ number: 1, state: 'open', user: { login: 'maria', type: 'User' } });
    expect(created.data.head).toMatchObject({ ref: 'promote/fraud-2', sha: headSha, label: 'acme:promote/fraud-2' });
    expect(created.data.base).toMatchObject({ ref: 'main', sha: baseSha });
    expect(created.data.base.repo.full_name).toBe('acme/model-registry');
    pull = gh.getPull(repo, 1)!;
    expect(pull.head.sha).toBe(headSha);

    const dup = await failure(maria.rest.pulls.create({ owner: 'acme', repo: 'model-registry', head: 'promote/fraud-2', base: 'main', title: 'again' }));
    expect(dup.status).toBe(422);
    expect((await failure(maria.rest.pulls.create({ owner: 'acme', repo: 'model-registry', head: 'no-such-branch', base: 'main', title: 't' }))).status).toBe(
      422,
    );
    expect((await failure(maria.rest.pulls.create({ owner: 'acme', repo: 'model-registry', head: 'main', base: 'main', title: 't' }))).status).toBe(422);

    const listed = await maria.rest.pulls.list({ owner: 'acme', repo: 'model-registry', head: 'acme:promote/fraud-2', state: 'open' });
    expect(listed.data.map((p) => p.number)).toEqual([1]);
    expect((await maria.rest.pulls.list({ owner: 'acme', repo: 'model-registry', head: 'acme:other' })).data).toEqual([]);

    const updated = await maria.rest.pulls.update({
      owner: 'acme',
      repo: 'model-registry',
      pull_number: 1,
      title: 'Promote fraud@2 to Production',
      body: 'new body',
    });
    expect(updated.data).toMatchObject({ title: 'Promote fraud@2 to Production', body: 'new body' });
    const got = await maria.rest.pulls.get({ owner: 'acme', repo: 'model-registry', pull_number: 1 });
    expect(got.data).toMatchObject({ title: 'Promote fraud@2 to Production', mergeable: true, merged: false, changed_files: 4, commits: 1 });
  });

  it('lists the changed files from git, paginated with a Link header', async () => {
    const first = await maria.rest.pulls.listFiles({ owner: 'acme', repo: 'model-registry', pull_number: 1, per_page: 3 });
    expect(first.data).toHaveLength(3);
    expect(first.headers.link).toContain('rel="next"');
    expect(first.headers.link).toMatch(/[?&]page=2>; rel="last"/);
    const all = await maria.paginate(maria.rest.pulls.listFiles, { owner: 'acme', repo: 'model-registry', pull_number: 1, per_page: 3 });
    const byName = Object.fromEntries(all.map((f) => [f.filename, f.status]));
    expect(byName).toEqual({
      'NOTES.md': 'added',
      'README.md': 'removed',
      'models/fraud/versions/1.yaml': 'modified',
      'models/fraud/versions/2.yaml': 'modified',
    });
    const notes = all.find((f) => f.filename === 'NOTES.md')!;
    expect(notes).toMatchObject({ additions: 3, deletions: 0, changes: 3, sha: git(bareDir, 'rev-parse', 'promote/fraud-2:NOTES.md') });
    // A page past the end is empty, with prev/first links like GitHub's.
    const past = await maria.rest.pulls.listFiles({ owner: 'acme', repo: 'model-registry', pull_number: 1, per_page: 3, page: 5 });
    expect(past.data).toEqual([]);
    expect(past.headers.link).toContain('rel="first"');
  });

  it('records reviews: APPROVE → APPROVED on the head sha, self-approval refused, paginated listing', async () => {
    const approved = await carol.rest.pulls.createReview({ owner: 'acme', repo: 'model-registry', pull_number: 1, event: 'APPROVE' });
    expect(approved.data).toMatchObject({ state: 'APPROVED', commit_id: pull.head.sha, user: { login: 'carol' } });
    const changes = await client('token-dave').rest.pulls.createReview({
      owner: 'acme',
      repo: 'model-registry',
      pull_number: 1,
      event: 'REQUEST_CHANGES',
      body: 'no',
    });
    expect(changes.data.state).toBe('CHANGES_REQUESTED');
    const own = await failure(maria.rest.pulls.createReview({ owner: 'acme', repo: 'model-registry', pull_number: 1, event: 'APPROVE' }));
    expect(own.status).toBe(422);
    gh.addReview(pull, { user: 'dave', state: 'APPROVED', commit_id: '0'.repeat(40), submitted_at: '2026-01-01T00:00:00Z' });
    gh.addReview(pull, { user: 'modelgate[bot]', state: 'COMMENTED', body: 'report' });

    const all = await maria.paginate(maria.rest.pulls.listReviews, { owner: 'acme', repo: 'model-registry', pull_number: 1, per_page: 2 });
    expect(all.map((r) => [r.user?.login, r.state])).toEqual([
      ['carol', 'APPROVED'],
      ['dave', 'CHANGES_REQUESTED'],
      ['dave', 'APPROVED'],
      ['modelgate[bot]', 'COMMENTED'],
    ]);
    expect(all[2]).toMatchObject({ commit_id: '0'.repeat(40), submitted_at: '2026-01-01T00:00:00Z' });
    expect(all[3]!.user?.type).toBe('Bot');
  });

  it('answers team memberships: active, pending, 404 for non-members, and injected faults', async () => {
    const args = { org: 'acme', team_slug: 'ml-governance' };
    expect((await maria.rest.teams.getMembershipForUserInOrg({ ...args, username: 'carol' })).data).toMatchObject({ state: 'active', role: 'member' });
    expect((await maria.rest.teams.getMembershipForUserInOrg({ ...args, username: 'dave' })).data).toMatchObject({ state: 'pending', role: 'maintainer' });
    expect(await failure(maria.rest.teams.getMembershipForUserInOrg({ ...args, username: 'maria' }))).toEqual({ status: 404, message: 'Not Found' });
    expect((await failure(maria.rest.teams.getMembershipForUserInOrg({ org: 'acme', team_slug: 'nope', username: 'carol' }))).status).toBe(404);

    const fault = gh.inject('GET /orgs/{org}/teams/{team_slug}/memberships/{username}', { status: 500, times: 1 });
    expect(await failure(maria.rest.teams.getMembershipForUserInOrg({ ...args, username: 'carol' }))).toEqual({ status: 500, message: 'Server Error' });
    expect(fault.hits).toBe(1);
    // times: 1 → the next request is served normally.
    expect((await maria.rest.teams.getMembershipForUserInOrg({ ...args, username: 'carol' })).status).toBe(200);

    gh.setTeamMembership('acme', 'ml-governance', 'carol', null);
    expect((await failure(maria.rest.teams.getMembershipForUserInOrg({ ...args, username: 'carol' }))).status).toBe(404);
    gh.setTeamMembership('acme', 'ml-governance', 'carol', { state: 'active' });
  });

  it('delays a response until the client gives up (a slow GitHub)', async () => {
    const fault = gh.inject('/repos/acme/model-registry/pulls/1', { delayMs: 30_000 });
    const err = await maria.rest.pulls
      .get({ owner: 'acme', repo: 'model-registry', pull_number: 1, request: { signal: AbortSignal.timeout(100) } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toMatch(/abort|timeout/i);
    fault.remove();
    expect((await maria.rest.pulls.get({ owner: 'acme', repo: 'model-registry', pull_number: 1 })).status).toBe(200);
  });

  it('creates commit statuses and combines them', async () => {
    const sha = pull.head.sha;
    const bot = client('ghs_bot');
    const created = await bot.rest.repos.createCommitStatus({
      owner: 'acme',
      repo: 'model-registry',
      sha,
      state: 'pending',
      context: 'modelgate',
      description: 'checking',
    });
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({ state: 'pending', context: 'modelgate', creator: { login: 'modelgate[bot]' } });
    await bot.rest.repos.createCommitStatus({
      owner: 'acme',
      repo: 'model-registry',
      sha,
      state: 'success',
      context: 'modelgate',
      target_url: 'https://ci.example/1',
    });
    expect(gh.statuses.map((s) => [s.sha, s.context, s.state])).toEqual([
      [sha, 'modelgate', 'pending'],
      [sha, 'modelgate', 'success'],
    ]);
    const combined = await bot.rest.repos.getCombinedStatusForRef({ owner: 'acme', repo: 'model-registry', ref: 'promote/fraud-2' });
    expect(combined.data).toMatchObject({ state: 'success', sha, total_count: 1 });

    expect((await failure(bot.rest.repos.createCommitStatus({ owner: 'acme', repo: 'model-registry', sha, state: 'bogus' as 'success' }))).status).toBe(422);
    expect(await failure(bot.rest.repos.createCommitStatus({ owner: 'acme', repo: 'model-registry', sha: 'f'.repeat(40), state: 'success' }))).toEqual({
      status: 422,
      message: `No commit found for SHA: ${'f'.repeat(40)}`,
    });
  });

  it('creates, lists (paginated) and updates issue comments in place', async () => {
    const bot = client('ghs_bot');
    const c = await bot.rest.issues.createComment({ owner: 'acme', repo: 'model-registry', issue_number: 1, body: 'gate: pending' });
    expect(c.status).toBe(201);
    await maria.rest.issues.createComment({ owner: 'acme', repo: 'model-registry', issue_number: 1, body: 'thanks' });
    await maria.rest.issues.createComment({ owner: 'acme', repo: 'model-registry', issue_number: 1, body: 'ping' });
    const all = await bot.paginate(bot.rest.issues.listComments, { owner: 'acme', repo: 'model-registry', issue_number: 1, per_page: 2 });
    expect(all.map((x) => x.body)).toEqual(['gate: pending', 'thanks', 'ping']);
    const upd = await bot.rest.issues.updateComment({ owner: 'acme', repo: 'model-registry', comment_id: c.data.id, body: 'gate: pass' });
    expect(upd.data.body).toBe('gate: pass');
    expect(gh.comments.find((x) => x.id === c.data.id)?.body).toBe('gate: pass');
    // Someone else's comment cannot be edited by the bot.
    expect((await failure(bot.rest.issues.updateComment({ owner: 'acme', repo: 'model-registry', comment_id: all[1]!.id, body: 'x' }))).status).toBe(403);
    expect((await failure(bot.rest.issues.createComment({ owner: 'acme', repo: 'model-registry', issue_number: 99, body: 'x' }))).status).toBe(404);
  });

  it('answers a fault after carrying the request out (afterHandling), or instead of it, with the headers given', async () => {
    const route = 'POST /repos/{owner}/{repo}/issues/{issue_number}/comments';
    const args = { owner: 'acme', repo: 'model-registry', issue_number: 1 };
    const before = gh.comments.length;
    const lost = gh.inject(route, { status: 502, times: 1, afterHandling: true });
    expect(await failure(maria.rest.issues.createComment({ ...args, body: 'done, answer lost' }))).toEqual({ status: 502, message: 'Server Error' });
    expect(lost.hits).toBe(1);
    expect(gh.comments.slice(before).map((c) => c.body)).toEqual(['done, answer lost']);
    const limited = gh.inject(route, { status: 429, headers: { 'retry-after': '7' }, times: 1 });
    const err = (await maria.rest.issues.createComment({ ...args, body: 'refused' }).catch((e: unknown) => e)) as {
      status: number;
      response?: { headers: Record<string, string> };
    };
    expect(err.status).toBe(429);
    expect(err.response?.headers['retry-after']).toBe('7');
    expect(limited.hits).toBe(1);
    expect(gh.comments.slice(before).map((c) => c.body)).toEqual(['done, answer lost']);
  });

  it('refuses what GitHub refuses: a status description over 140 characters, a comment over 65,536', async () => {
    const bot = client('ghs_bot');
    const sha = pull.head.sha;
    const long = await failure(
      bot.rest.repos.createCommitStatus({ owner: 'acme', repo: 'model-registry', sha, state: 'success', context: 'modelgate', description: 'x'.repeat(141) }),
    );
    expect(long).toEqual({ status: 422, message: 'Validation Failed' });
    // Characters, not UTF-16 units: 140 emoji fit.
    expect(
      (
        await bot.rest.repos.createCommitStatus({
          owner: 'acme',
          repo: 'model-registry',
          sha,
          state: 'success',
          context: 'limits',
          description: '✅'.repeat(70) + '🚀'.repeat(70),
        })
      ).status,
    ).toBe(201);
    expect((await bot.rest.issues.createComment({ owner: 'acme', repo: 'model-registry', issue_number: 1, body: 'y'.repeat(65_536) })).status).toBe(201);
    expect(await failure(bot.rest.issues.createComment({ owner: 'acme', repo: 'model-registry', issue_number: 1, body: 'y'.repeat(65_537) }))).toEqual({
      status: 422,
      message: 'Validation Failed',
    });
    const mine = gh.comments.filter((c) => c.user === 'modelgate[bot]').at(-1)!;
    expect(
      (await failure(bot.rest.issues.updateComment({ owner: 'acme', repo: 'model-registry', comment_id: mine.id, body: 'z'.repeat(70_000) }))).status,
    ).toBe(422);
  });

  it("lists a pull request's commits with the GitHub accounts their emails belong to", async () => {
    const commits = await maria.paginate(maria.rest.pulls.listCommits, { owner: 'acme', repo: 'model-registry', pull_number: pull.number, per_page: 1 });
    expect(commits.map((c) => c.commit.message)).toEqual(['promote fraud@2 to Production']);
    expect(commits[0]!.author).toMatchObject({ login: 'maria' });
    expect(commits[0]!.committer).toMatchObject({ login: 'maria' });
    expect(commits[0]!.sha).toBe(pull.head.sha);
  });

  it('refuses a conflicting merge with 405 and reports mergeable: false', async () => {
    const conflict = gh.createPull({ repo: 'acme/model-registry', head: 'conflict', user: 'dave', title: 'Archive 2' });
    const got = await maria.rest.pulls.get({ owner: 'acme', repo: 'model-registry', pull_number: conflict.number });
    expect(got.data).toMatchObject({ mergeable: false, mergeable_state: 'dirty' });
    expect(await failure(maria.rest.pulls.merge({ owner: 'acme', repo: 'model-registry', pull_number: conflict.number }))).toEqual({
      status: 405,
      message: 'Pull Request is not mergeable',
    });
  });

  it('merges in the bare repository with GitHub’s merge commit message', async () => {
    const baseBefore = git(bareDir, 'rev-parse', 'main');
    const head = pull.head.sha;
    expect((await failure(carol.rest.pulls.merge({ owner: 'acme', repo: 'model-registry', pull_number: 1, sha: baseBefore }))).status).toBe(409);
    const merged = await carol.rest.pulls.merge({ owner: 'acme', repo: 'model-registry', pull_number: 1 });
    expect(merged.data).toMatchObject({ merged: true, message: 'Pull Request successfully merged' });
    expect(git(bareDir, 'rev-parse', 'main')).toBe(merged.data.sha);
    expect(git(bareDir, 'log', '-1', '--format=%P', 'main')).toBe(`${baseBefore} ${head}`);
    expect(git(bareDir, 'log', '-1', '--format=%s%n%n%b', 'main')).toBe('Merge pull request #1 from acme/promote/fraud-2\n\nPromote fraud@2 to Production');
    expect(git(bareDir, 'log', '-1', '--format=%an', 'main')).toBe('carol');
    expect(git(bareDir, 'show', 'main:NOTES.md')).toBe('a\nb\nc');

    const after = await maria.rest.pulls.get({ owner: 'acme', repo: 'model-registry', pull_number: 1 });
    expect(after.data).toMatchObject({ state: 'closed', merged: true, merge_commit_sha: merged.data.sha, merged_by: { login: 'carol' } });
    expect((await failure(carol.rest.pulls.merge({ owner: 'acme', repo: 'model-registry', pull_number: 1 }))).status).toBe(405);
    expect((await maria.rest.pulls.list({ owner: 'acme', repo: 'model-registry', state: 'closed' })).data.map((p) => p.number)).toContain(1);
  });

  it('serves pulls without a git directory from the control API (setHead, setFiles, mergeable)', async () => {
    const p = gh.createPull({
      repo: 'acme/plain',
      head: 'feature',
      user: 'maria',
      headSha: 'a'.repeat(40),
      baseSha: 'b'.repeat(40),
      files: [{ filename: 'x.yaml', status: 'added', additions: 2 }],
    });
    gh.setHead(p, 'c'.repeat(40));
    const got = await maria.rest.pulls.get({ owner: 'acme', repo: 'plain', pull_number: p.number });
    expect(got.data.head.sha).toBe('c'.repeat(40));
    expect((await maria.rest.pulls.listFiles({ owner: 'acme', repo: 'plain', pull_number: p.number })).data).toMatchObject([
      { filename: 'x.yaml', status: 'added', additions: 2, changes: 2 },
    ]);
    p.mergeable = false;
    expect((await failure(maria.rest.pulls.merge({ owner: 'acme', repo: 'plain', pull_number: p.number }))).status).toBe(405);
    p.mergeable = true;
    expect((await maria.rest.pulls.merge({ owner: 'acme', repo: 'plain', pull_number: p.number })).data.merged).toBe(true);
  });

  it('serves a pull request from a fork and merges it (refs/pull/N/head)', async () => {
    const forkDir = join(tmp, 'fork.git');
    git(tmp, 'clone', '-q', '--bare', bareDir, forkDir);
    const forkWork = join(tmp, 'fork-work');
    git(tmp, 'clone', '-q', forkDir, forkWork);
    await writeFile(join(forkWork, 'CONTRIBUTING.md'), 'hi\n');
    git(forkWork, 'add', '-A');
    git(forkWork, '-c', 'user.name=Eve', '-c', 'user.email=eve@example.com', 'commit', '-q', '-m', 'docs');
    git(forkWork, 'push', '-q', 'origin', 'HEAD:docs');
    const fork = gh.addRepo('eve', 'model-registry', { gitDir: forkDir });
    const p = gh.createPull({ repo, headRepo: fork, head: 'eve:docs', user: 'eve', title: 'Docs' });
    const got = await maria.rest.pulls.get({ owner: 'acme', repo: 'model-registry', pull_number: p.number });
    expect(got.data.head).toMatchObject({ label: 'eve:docs', sha: git(forkDir, 'rev-parse', 'docs'), repo: { full_name: 'eve/model-registry' } });
    expect(git(bareDir, 'rev-parse', `refs/pull/${p.number}/head`)).toBe(got.data.head.sha);
    const files = await maria.rest.pulls.listFiles({ owner: 'acme', repo: 'model-registry', pull_number: p.number });
    expect(files.data.map((f) => [f.filename, f.status])).toEqual([['CONTRIBUTING.md', 'added']]);
    expect((await maria.rest.pulls.list({ owner: 'acme', repo: 'model-registry', head: 'eve:docs' })).data.map((x) => x.number)).toEqual([p.number]);
    await carol.rest.pulls.merge({ owner: 'acme', repo: 'model-registry', pull_number: p.number });
    expect(git(bareDir, 'log', '-1', '--format=%s', 'main')).toBe(`Merge pull request #${p.number} from eve/docs`);
    expect(git(bareDir, 'show', 'main:CONTRIBUTING.md')).toBe('hi');
  });

  it('builds webhook payloads for the Action', async () => {
    const p = gh.createPull({ repo: 'acme/plain', head: 'event', user: 'maria', headSha: 'd'.repeat(40), baseSha: 'e'.repeat(40) });
    const review = gh.addReview(p, { user: 'carol', state: 'APPROVED' });

    const minimal = gh.eventFor(p, 'pull_request_target') as any;
    expect(minimal).toMatchObject({ action: 'opened', number: p.number, repository: { full_name: 'acme/plain', name: 'plain', owner: { login: 'acme' } } });
    expect(minimal.pull_request).toMatchObject({
      number: p.number,
      head: { sha: 'd'.repeat(40), ref: 'event', repo: { full_name: 'acme/plain' } },
      base: { sha: 'e'.repeat(40) },
      user: { login: 'maria', type: 'User' },
    });
    const rev = gh.eventFor(p, 'pull_request_review') as any;
    expect(rev).toMatchObject({
      action: 'submitted',
      review: { id: review.id, state: 'approved', commit_id: 'd'.repeat(40), user: { login: 'carol' } },
      sender: { login: 'carol' },
    });

    const opened = pullRequestEvent(p, 'synchronize', { before: 'f'.repeat(40) }) as any;
    expect(opened).toMatchObject({
      action: 'synchronize',
      number: p.number,
      before: 'f'.repeat(40),
      after: 'd'.repeat(40),
      repository: { full_name: 'acme/plain' },
    });
    expect(opened.pull_request).toMatchObject({ number: p.number, head: { sha: 'd'.repeat(40), ref: 'event' }, user: { login: 'maria' } });
    expect(JSON.stringify(opened)).not.toContain('Codertocat/Hello-World"');
    const submitted = pullRequestReviewEvent(p) as any;
    expect(submitted).toMatchObject({
      action: 'submitted',
      review: { state: 'approved', user: { login: 'carol' }, commit_id: 'd'.repeat(40) },
      pull_request: { number: p.number },
      repository: { full_name: 'acme/plain' },
    });
  });

  it('the validator rejects bodies GitHub would never send, through the hook too', async () => {
    const v = createGitHubResponseValidator();
    const good = (await maria.rest.pulls.get({ owner: 'acme', repo: 'model-registry', pull_number: 1 })).data as Record<string, unknown>;
    const route = '/repos/{owner}/{repo}/pulls/{pull_number}';
    expect(v.validate({ method: 'GET', route, status: 200, body: good })).toEqual([]);
    const { node_id: _dropped, ...noNodeId } = good;
    expect(v.validate({ method: 'GET', route, status: 200, body: noNodeId }).join('\n')).toContain("must have required property 'node_id'");
    expect(v.validate({ method: 'GET', route, status: 200, body: { ...good, number: '1' } }).join('\n')).toContain('/number must be integer');
    expect(v.validate({ method: 'GET', route, status: 200, body: { ...good, created_at: 'yesterday' } }).join('\n')).toContain(
      '/created_at must match format "date-time"',
    );
    expect(
      v.validate({
        method: 'GET',
        route: '/orgs/{org}/teams/{team_slug}/memberships/{username}',
        status: 200,
        body: { url: 'http://x/y', role: 'member', state: 'invited' },
      }),
    ).not.toEqual([]);
    expect(v.validate({ method: 'POST', route: '/repos/{owner}/{repo}/statuses/{sha}', status: 200, body: {} })).not.toEqual([]);
    expect(v.validate({ method: 'GET', route: null, status: 200, body: {} })).not.toEqual([]);

    // Through the hook: a second emulator whose injected body is not a pull request.
    const other = await startValidatedGitHubEmulator();
    try {
      other.addUser('maria');
      other.addRepo('acme', 'r');
      other.inject('GET /repos/{owner}/{repo}/pulls/{pull_number}', { status: 200, body: { number: 1 } });
      await client('token-maria').request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { baseUrl: other.url, owner: 'acme', repo: 'r', pull_number: 1 });
      expect(other.validator.checked).toBe(1);
      expect(other.validator.violations.join('\n')).toContain("(body) must have required property '_links'");
    } finally {
      await other.close();
    }
  });

  it('records every request so a test can assert which endpoints were used', () => {
    const used = new Set(gh.requests.map((r) => `${r.method} ${r.route}`));
    expect(used).toContain('GET /repos/{owner}/{repo}/pulls/{pull_number}/files');
    expect(used).toContain('PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge');
    expect(used).toContain('GET null');
    // Status 0: the client gave up on the delayed request before it was answered.
    expect(gh.requests.filter((r) => r.status === 0).map((r) => r.path)).toEqual(['/repos/acme/model-registry/pulls/1']);
  });

  it('sent only responses valid against GitHub’s OpenAPI description', () => {
    expect(gh.validator.checked).toBeGreaterThan(50);
    expect(gh.validator.violations).toEqual([]);
  });
});
