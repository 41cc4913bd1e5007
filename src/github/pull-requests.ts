import type { Octokit } from '@octokit/rest';
import { ModelgateError } from '../errors.js';
import { isBot } from '../gate/approvals.js';
import type { Contributors, PullRequestInfo, Review, TeamResolver, UnlinkedCommit } from '../gate/types.js';
import { createOnce, github, type GitHubConnection } from './client.js';

/** The hidden marker that finds modelgate's one comment on a pull request. */
const COMMENT_MARKER = '<!-- modelgate -->';
const STATUS_CONTEXT = 'modelgate';

export interface PullRequestDetails extends PullRequestInfo {
  baseSha: string;
  baseRef: string;
  /** How many commits GitHub counts on the pull request. */
  commits: number;
}

/** GET /repos/{o}/{r}/pulls/{n}. */
export async function getPullRequest(c: GitHubConnection, number: number): Promise<PullRequestDetails> {
  const { data } = await github(`reading pull request #${number}`, () => c.octokit.rest.pulls.get({ owner: c.owner, repo: c.repo, pull_number: number }));
  return {
    number: data.number,
    author: { login: data.user?.login ?? '', type: data.user?.type },
    headSha: data.head.sha,
    headRef: data.head.ref,
    title: data.title,
    baseSha: data.base.sha,
    baseRef: data.base.ref,
    defaultBranch: data.base.repo.default_branch,
    commits: data.commits,
  };
}

/** GET …/pulls/{n}/reviews, every page, oldest first. */
export async function listReviews(c: GitHubConnection, number: number): Promise<Review[]> {
  const reviews = await github(`listing the reviews of #${number}`, () =>
    c.octokit.paginate(c.octokit.rest.pulls.listReviews, { owner: c.owner, repo: c.repo, pull_number: number, per_page: 100 }),
  );
  return reviews.map((r) => ({
    id: r.id,
    user: r.user ? { login: r.user.login, type: r.user.type } : null,
    state: r.state,
    commitId: r.commit_id ?? null,
    submittedAt: r.submitted_at,
  }));
}

/** GitHub lists at most this many commits of a pull request (GET …/pulls/{n}/commits). */
export const MAX_LISTED_COMMITS = 250;

/**
 * GET …/pulls/{n}/commits: the GitHub logins that authored or committed a commit of the pull
 * request (`excludeContributors`), and every author or committer whose email belongs to no
 * account (GitHub gives `null` for them): nobody can be excluded for such a commit, so the gate
 * fails it unless the rule allows it (`unlinkedCommits`).
 * GitHub lists 250 commits at most; a longer pull request cannot be judged, since a contributor
 * past the 250th would count as an approver.
 */
export async function listContributors(c: GitHubConnection, pr: Pick<PullRequestDetails, 'number' | 'commits'>): Promise<Contributors> {
  if (pr.commits > MAX_LISTED_COMMITS) {
    throw new ModelgateError(
      'E_TOO_MANY_COMMITS',
      `pull request #${pr.number} has ${pr.commits} commits; GitHub lists only ${MAX_LISTED_COMMITS}, so who contributed to it cannot be known: squash it or split it`,
    );
  }
  const commits = await github(`listing the commits of #${pr.number}`, () =>
    c.octokit.paginate(c.octokit.rest.pulls.listCommits, { owner: c.owner, repo: c.repo, pull_number: pr.number, per_page: 100 }),
  );
  const logins = new Set<string>();
  const unlinked: UnlinkedCommit[] = [];
  for (const commit of commits) {
    for (const role of ['author', 'committer'] as const) {
      const who = commit[role];
      if (who && 'login' in who && who.login) logins.add(who.login);
      else unlinked.push({ sha: commit.sha, role, email: commit.commit[role]?.email ?? '' });
    }
  }
  return { logins: [...logins].sort(), unlinked };
}

/** What the gate needs from GitHub about a pull request: itself, its reviews and its contributors. */
export async function readPullRequest(c: GitHubConnection, number: number): Promise<{ pr: PullRequestDetails; reviews: Review[]; contributors: Contributors }> {
  const pr = await getPullRequest(c, number);
  const [reviews, contributors] = await Promise.all([listReviews(c, number), listContributors(c, pr)]);
  return { pr, reviews, contributors };
}

/**
 * Team membership through GET /orgs/{org}/teams/{team}/memberships/{user}: active members
 * count, pending invitations do not; 404 means "not a member"; anything else throws.
 */
export class GitHubTeams implements TeamResolver {
  constructor(
    readonly octokit: Octokit,
    readonly org: string,
  ) {}

  async isActiveMember(team: string, login: string): Promise<boolean> {
    try {
      const { data } = await github(`looking up ${login} in team ${this.org}/${team}`, () =>
        this.octokit.rest.teams.getMembershipForUserInOrg({ org: this.org, team_slug: team, username: login }),
      );
      return data.state === 'active';
    } catch (e) {
      if (e instanceof ModelgateError && e.data.status === 404) return false;
      throw e;
    }
  }
}

/** POST /repos/{o}/{r}/statuses/{sha} with context `modelgate`; the description is cut to GitHub's 140 characters. */
export async function setCommitStatus(
  c: GitHubConnection,
  sha: string,
  state: 'success' | 'failure' | 'pending' | 'error',
  description: string,
  targetUrl?: string,
): Promise<void> {
  // GitHub counts characters (code points), so cut on code points: never half a surrogate pair.
  const chars = [...description];
  const text = chars.length > 140 ? `${chars.slice(0, 139).join('')}…` : description;
  await github(`setting the ${STATUS_CONTEXT} status`, () =>
    c.octokit.rest.repos.createCommitStatus({
      owner: c.owner,
      repo: c.repo,
      sha,
      state,
      context: STATUS_CONTEXT,
      description: text,
      ...(targetUrl ? { target_url: targetUrl } : {}),
    }),
  );
}

/**
 * Keeps one comment up to date: the one a bot wrote carrying the marker is edited in place
 * (anyone can paste the marker into their own comment; those are left alone); otherwise one is created.
 */
/** GitHub refuses a comment body over 65,536 characters. */
const MAX_COMMENT_CHARS = 65_536;

/** Cuts an over-long report, saying where the whole one is (the job summary and the report file). */
function fitComment(text: string): string {
  if (text.length <= MAX_COMMENT_CHARS) return text;
  const note = '\n\n… the report is longer than a GitHub comment allows; the whole report is in the job summary and the `report` output file.\n';
  const room = MAX_COMMENT_CHARS - note.length - '\n```'.length;
  // Cut at a line end, and close a code fence the cut leaves open, so the note still renders.
  const end = text.lastIndexOf('\n', room);
  const kept = text.slice(0, end > 0 ? end : room);
  const openFence = (kept.match(/^```/gm)?.length ?? 0) % 2 === 1;
  return kept + (openFence ? '\n```' : '') + note;
}

export async function upsertComment(c: GitHubConnection, number: number, body: string): Promise<{ id: number; created: boolean }> {
  const text = fitComment(`${COMMENT_MARKER}\n${body}`);
  const findMine = async () => {
    const comments = await github(`listing the comments of #${number}`, () =>
      c.octokit.paginate(c.octokit.rest.issues.listComments, { owner: c.owner, repo: c.repo, issue_number: number, per_page: 100 }),
    );
    return comments.find((x) => x.body?.startsWith(COMMENT_MARKER) && x.user && isBot({ login: x.user.login, type: x.user.type }));
  };
  const mine = await findMine();
  if (mine) {
    if (mine.body !== text) {
      await github('updating the modelgate comment', () =>
        c.octokit.rest.issues.updateComment({ owner: c.owner, repo: c.repo, comment_id: mine.id, body: text }),
      );
    }
    return { id: mine.id, created: false };
  }
  // A comment found after a failed POST is the one that POST created.
  const id = await createOnce(
    'adding the modelgate comment',
    async () => (await findMine())?.id,
    async () => (await c.octokit.rest.issues.createComment({ owner: c.owner, repo: c.repo, issue_number: number, body: text })).data.id,
  );
  return { id, created: true };
}

/** An open pull request as the list endpoint gives it. */
export interface OpenPullRequest {
  number: number;
  url: string;
  headRef: string;
  headSha: string;
  /** Whether the head branch is in this repository (not a fork's). */
  sameRepository: boolean;
  body: string;
}

/** GET /repos/{o}/{r}/pulls?state=open&base={base}, every page, oldest first. */
export async function listOpenPullRequests(c: GitHubConnection, base: string): Promise<OpenPullRequest[]> {
  const pulls = await github(`listing the open pull requests into ${base}`, () =>
    c.octokit.paginate(c.octokit.rest.pulls.list, { owner: c.owner, repo: c.repo, state: 'open', base, per_page: 100 }),
  );
  const self = `${c.owner}/${c.repo}`.toLowerCase();
  return pulls
    .map((p) => ({
      number: p.number,
      url: p.html_url,
      headRef: p.head.ref,
      headSha: p.head.sha,
      sameRepository: p.head.repo?.full_name.toLowerCase() === self,
      body: p.body ?? '',
    }))
    .sort((a, b) => a.number - b.number);
}

/** Comments on a pull request (once, even when GitHub answers a 5xx after creating it), then closes it. */
export async function closePullRequest(c: GitHubConnection, number: number, comment: string): Promise<void> {
  const find = async () => {
    const comments = await github(`listing the comments of #${number}`, () =>
      c.octokit.paginate(c.octokit.rest.issues.listComments, { owner: c.owner, repo: c.repo, issue_number: number, per_page: 100 }),
    );
    return comments.find((x) => x.body === comment)?.id;
  };
  await createOnce(
    `commenting on #${number}`,
    find,
    async () => (await c.octokit.rest.issues.createComment({ owner: c.owner, repo: c.repo, issue_number: number, body: comment })).data.id,
  );
  await github(`closing pull request #${number}`, () => c.octokit.rest.pulls.update({ owner: c.owner, repo: c.repo, pull_number: number, state: 'closed' }));
}
