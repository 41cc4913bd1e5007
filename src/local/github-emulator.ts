import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BareRepo, type DiffFile, type GitCommit } from './github/bare-repo.js';
import {
  DOCS,
  errorJson,
  minimalRepositoryJson,
  nodeId,
  repositoryJson,
  userJson,
  type RepoRecord,
  type UserRecord,
  type UserType,
  type Urls,
} from './github/payloads.js';

export type { UserType } from './github/payloads.js';

/** One response the emulator sends, as the `onResponse` hook sees it. */
export interface EmulatedResponse {
  method: string;
  /** The OpenAPI path template (`/repos/{owner}/{repo}/pulls/{pull_number}`), null for unknown routes. */
  route: string | null;
  status: number;
  body: unknown;
}

/** One request the emulator received (all of them, known routes or not). */
export interface RecordedRequest {
  method: string;
  /** The URL path, without the query string. */
  path: string;
  /** The query string without `?`, '' when there is none. */
  query: string;
  route: string | null;
  status: number;
  /** The authenticated user's login, when the token was known. */
  login?: string;
}

export interface GitHubEmulatorOptions {
  host?: string;
  /** Called with every response before it is sent (a test plugs an OpenAPI validator in here). */
  onResponse?(response: EmulatedResponse): void;
  /** Clock for timestamps (created_at, submitted_at, merge commits). */
  now?: () => Date;
  /** Base of html_url fields; defaults to the emulator's own URL. */
  webUrl?: string;
}

export interface EmulatedUser extends UserRecord {
  /** Sent as `Authorization: token <token>` or `Bearer <token>`. */
  token: string;
  /** Verified emails: a commit whose author or committer email is one of them is linked to this user. */
  emails: string[];
}

export interface TeamMembership {
  state: 'active' | 'pending';
  role: 'member' | 'maintainer';
}

export interface EmulatedRepo extends RepoRecord {
  readonly fullName: string;
  /** The bare repository on disk that backs branches, shas, files and merges. */
  gitDir?: string;
}

export type ReviewState = 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED' | 'PENDING';

export interface EmulatedReview {
  id: number;
  user: string;
  state: ReviewState;
  commit_id: string;
  submitted_at: string;
  body: string;
  /** The REST `pull-request-review` object (non-enumerable). */
  toJSON(): Record<string, unknown>;
}

/** A changed file of a pull request whose repository has no gitDir. */
export interface PullFileSpec {
  filename: string;
  status?: DiffFile['status'];
  additions?: number;
  deletions?: number;
  previous_filename?: string;
  sha?: string;
}

export interface EmulatedPull {
  readonly repo: EmulatedRepo;
  readonly number: number;
  readonly id: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  draft: boolean;
  /** The author's login. */
  user: string;
  /** Live: with a gitDir, the sha is read from the head branch (until the PR is merged or closed). */
  readonly head: { ref: string; sha: string; label: string; repo: EmulatedRepo };
  readonly base: { ref: string; sha: string; label: string; repo: EmulatedRepo };
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  merged_at: string | null;
  merged_by: string | null;
  merge_commit_sha: string | null;
  /** Without a gitDir, whether a merge would succeed (default true). */
  mergeable?: boolean;
  reviews: EmulatedReview[];
  /** The REST `pull-request` object GitHub would return for this pull now. */
  toJSON(): Record<string, unknown>;
}

export interface EmulatedStatus {
  id: number;
  repo: string;
  sha: string;
  state: 'error' | 'failure' | 'pending' | 'success';
  context: string;
  description: string | null;
  target_url: string | null;
  creator: string;
  created_at: string;
  updated_at: string;
}

export interface EmulatedComment {
  id: number;
  repo: string;
  issue_number: number;
  body: string;
  user: string;
  created_at: string;
  updated_at: string;
}

export interface Fault {
  /** The status to answer with; omitted, the request is only delayed, then served normally. */
  status?: number;
  /** The body; defaults to GitHub's error body for the status. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering (a slow GitHub, for client timeouts). */
  delayMs?: number;
  /** How many requests the fault applies to; unlimited by default. */
  times?: number;
  /**
   * Carry the request out first, then answer with `status` (a GitHub that did the work and failed
   * to say so: a client that repeats a creation on this answer creates it twice).
   */
  afterHandling?: boolean;
}

export interface InjectedFault {
  /** Requests the fault has applied to so far. */
  readonly hits: number;
  remove(): void;
}

export type EventName = 'pull_request_target' | 'pull_request' | 'pull_request_review';

export interface GitHubEmulator {
  /** Base URL of the REST API, e.g. `http://127.0.0.1:PORT` (Octokit's `baseUrl`). */
  readonly url: string;
  readonly requests: RecordedRequest[];
  readonly statuses: EmulatedStatus[];
  readonly comments: EmulatedComment[];
  /** Registers a user (or bot: login like `modelgate[bot]`); its token defaults to `token-<login>`. */
  addUser(login: string, options?: { type?: UserType; token?: string; emails?: string[] }): EmulatedUser;
  /** Creates or replaces a team; a member given by login is an active member. */
  addTeam(org: string, slug: string, members: Array<string | ({ login: string } & Partial<TeamMembership>)>): void;
  /** Adds, changes or (with null) removes one membership. */
  setTeamMembership(org: string, slug: string, login: string, membership: Partial<TeamMembership> | null): void;
  addRepo(owner: string, name: string, options?: { gitDir?: string; defaultBranch?: string; cloneUrl?: string; private?: boolean }): EmulatedRepo;
  getRepo(fullName: string): EmulatedRepo | undefined;
  /**
   * Opens a pull request as `user`, as POST /pulls would (without the HTTP round trip or its checks).
   * With a gitDir the head and base shas come from the branches; without, give headSha/baseSha.
   */
  createPull(options: {
    repo: string | EmulatedRepo;
    head: string;
    base?: string;
    user: string;
    title?: string;
    body?: string | null;
    draft?: boolean;
    headSha?: string;
    baseSha?: string;
    /** A fork the head branch lives in (for pull_request_target tests). */
    headRepo?: EmulatedRepo;
    files?: PullFileSpec[];
  }): EmulatedPull;
  getPull(repo: string | EmulatedRepo, number: number): EmulatedPull | undefined;
  /** Moves the head: with a gitDir the head branch is updated in the bare repository. */
  setHead(pull: EmulatedPull, sha: string): void;
  /** The changed files of a pull without a gitDir (with one, they come from `git diff`). */
  setFiles(pull: EmulatedPull, files: PullFileSpec[]): void;
  /** Records a review as if `user` had submitted it; commit_id defaults to the current head sha. */
  addReview(pull: EmulatedPull, review: { user: string; state: ReviewState; commit_id?: string; submitted_at?: string; body?: string }): EmulatedReview;
  /**
   * Makes matching requests fail or wait. `route` is `'METHOD /path/template'` (e.g.
   * `'GET /orgs/{org}/teams/{team_slug}/memberships/{username}'`), `'METHOD /concrete/path'`,
   * either without the method, or a RegExp tested against `'METHOD /path'`.
   */
  inject(route: string | RegExp, fault: Fault): InjectedFault;
  /** A minimal, GitHub-shaped webhook payload for GITHUB_EVENT_PATH. */
  eventFor(pull: EmulatedPull, event: EventName, options?: { action?: string; review?: EmulatedReview; sender?: string }): Record<string, unknown>;
  close(): Promise<void>;
}

interface TeamRecord {
  org: string;
  slug: string;
  members: Map<string, TeamMembership>;
}

interface PullRecord extends EmulatedPull {
  headRef: string;
  baseRef: string;
  headRepo: EmulatedRepo;
  headSha: string;
  baseSha: string;
  files?: PullFileSpec[];
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

const notFound = () => new HttpError(404, errorJson(404, 'Not Found'));
const validationFailed = (errors: unknown[], doc = DOCS) => new HttpError(422, { message: 'Validation Failed', errors, documentation_url: doc, status: '422' });

type Params = Record<string, string>;
interface Context {
  method: string;
  params: Params;
  query: URLSearchParams;
  body: Record<string, unknown>;
  user: EmulatedUser;
  path: string;
}
interface Reply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}
type Handler = (ctx: Context) => Reply;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Requires authentication',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  422: 'Validation Failed',
  429: 'API rate limit exceeded',
  500: 'Server Error',
  502: 'Server Error',
  503: 'Service Unavailable',
};

/** GitHub's timestamps: ISO 8601 in UTC, whole seconds. */
const stamp = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Starts a loopback server that answers the GitHub REST endpoints modelgate uses, with bodies
 * shaped like api.github.com's, and an in-process control API to set up users, teams, repos,
 * pull requests and reviews, and to inject faults. Nothing here is reachable from outside the
 * machine; the state lives in memory (and in the bare repositories it is given).
 */
export async function startGitHubEmulator(options: GitHubEmulatorOptions = {}): Promise<GitHubEmulator> {
  const host = options.host ?? '127.0.0.1';
  const now = options.now ?? (() => new Date());
  const users = new Map<string, EmulatedUser>();
  const teams = new Map<string, TeamRecord>();
  const repos = new Map<string, EmulatedRepo>();
  const pulls = new Map<string, PullRecord[]>();
  const statuses: EmulatedStatus[] = [];
  const comments: EmulatedComment[] = [];
  const requests: RecordedRequest[] = [];
  const faults: Array<{ match: (method: string, path: string, route: string | null) => boolean; fault: Fault; hits: number }> = [];
  const timers = new Set<NodeJS.Timeout>();
  let nextId = 1;
  const newId = (base: number) => base + nextId++;
  const urls: Urls = { api: '', web: '' };

  const lower = (s: string) => s.toLowerCase();

  function addUser(login: string, opts: { type?: UserType; token?: string; emails?: string[] } = {}): EmulatedUser {
    const existing = users.get(lower(login));
    const user: EmulatedUser = {
      login,
      id: existing?.id ?? newId(10_000_000),
      type: opts.type ?? existing?.type ?? (login.endsWith('[bot]') ? 'Bot' : 'User'),
      token: opts.token ?? existing?.token ?? `token-${login}`,
      emails: opts.emails ?? existing?.emails ?? [],
    };
    users.set(lower(login), user);
    return user;
  }
  /** Users named in state but never registered still render like GitHub users. */
  const user = (login: string) => users.get(lower(login)) ?? addUser(login);
  const userByToken = (token: string) => [...users.values()].find((u) => u.token === token);
  /**
   * The GitHub account a commit email belongs to, as GitHub links them: a verified email of the
   * account, or its noreply address (`login@users.noreply.github.com`, `id+login@…`).
   */
  const userByEmail = (email: string) => {
    const e = lower(email);
    const noreply = /^(?:\d+\+)?([^@]+)@users\.noreply\.github\.com$/.exec(e)?.[1];
    return [...users.values()].find((u) => (noreply !== undefined && lower(u.login) === noreply) || u.emails.some((m) => lower(m) === e));
  };

  function addTeam(org: string, slug: string, members: Array<string | ({ login: string } & Partial<TeamMembership>)>) {
    const map = new Map<string, TeamMembership>();
    for (const m of members) {
      const spec = typeof m === 'string' ? { login: m } : m;
      user(spec.login);
      map.set(lower(spec.login), { state: spec.state ?? 'active', role: spec.role ?? 'member' });
    }
    teams.set(lower(`${org}/${slug}`), { org, slug, members: map });
  }

  function setTeamMembership(org: string, slug: string, login: string, membership: Partial<TeamMembership> | null) {
    let team = teams.get(lower(`${org}/${slug}`));
    if (!team) {
      addTeam(org, slug, []);
      team = teams.get(lower(`${org}/${slug}`))!;
    }
    if (membership === null) team.members.delete(lower(login));
    else {
      user(login);
      const prev = team.members.get(lower(login));
      team.members.set(lower(login), { state: membership.state ?? prev?.state ?? 'active', role: membership.role ?? prev?.role ?? 'member' });
    }
  }

  function addRepo(owner: string, name: string, opts: { gitDir?: string; defaultBranch?: string; cloneUrl?: string; private?: boolean } = {}) {
    if (!users.has(lower(owner))) addUser(owner, { type: 'Organization' });
    const repo: EmulatedRepo = {
      owner,
      name,
      fullName: `${owner}/${name}`,
      id: newId(500_000_000),
      defaultBranch: opts.defaultBranch ?? 'main',
      cloneUrl: opts.cloneUrl,
      private: opts.private ?? false,
      createdAt: stamp(now()),
      gitDir: opts.gitDir,
    };
    repos.set(lower(repo.fullName), repo);
    pulls.set(lower(repo.fullName), []);
    return repo;
  }

  const getRepo = (fullName: string) => repos.get(lower(fullName));
  const bare = (repo: EmulatedRepo) => (repo.gitDir ? new BareRepo(repo.gitDir) : undefined);
  const repoOf = (r: string | EmulatedRepo) => {
    if (typeof r !== 'string') return r;
    const repo = getRepo(r);
    if (!repo) throw new Error(`github emulator: unknown repository ${r}`);
    return repo;
  };

  /** Reads the live shas from the bare repositories while the pull is open. */
  function refresh(p: PullRecord) {
    if (p.state !== 'open') return;
    const headGit = bare(p.headRepo);
    const headSha = headGit?.branchSha(p.headRef);
    if (headSha) {
      p.headSha = headSha;
      const baseGit = bare(p.repo);
      // GitHub keeps every pull's head as refs/pull/N/head in the base repository (a fork's is copied in).
      if (baseGit && p.headRepo !== p.repo) baseGit.fetchInto(p.headRepo.gitDir!, `refs/heads/${p.headRef}`, `refs/pull/${p.number}/head`);
      else baseGit?.setRef(`refs/pull/${p.number}/head`, headSha);
    }
    const baseSha = bare(p.repo)?.branchSha(p.baseRef);
    if (baseSha) p.baseSha = baseSha;
  }

  function createPull(o: Parameters<GitHubEmulator['createPull']>[0]): EmulatedPull {
    const repo = repoOf(o.repo);
    const headRepo = o.headRepo ?? repo;
    const list = pulls.get(lower(repo.fullName))!;
    const number = list.length + 1;
    const created = stamp(now());
    const headRef = o.head.includes(':') ? o.head.slice(o.head.indexOf(':') + 1) : o.head;
    const baseRef = o.base ?? repo.defaultBranch;
    const headGit = bare(headRepo);
    const baseGit = bare(repo);
    const headSha = o.headSha ?? headGit?.branchSha(headRef);
    const baseSha = o.baseSha ?? baseGit?.branchSha(baseRef);
    if (!headSha) throw new Error(`github emulator: no head sha for ${headRef} (give headSha or create the branch)`);
    if (!baseSha) throw new Error(`github emulator: no base sha for ${baseRef} (give baseSha or create the branch)`);
    user(o.user);
    const record = {
      repo,
      number,
      id: newId(1_000_000_000),
      title: o.title ?? headRef,
      body: o.body ?? null,
      state: 'open',
      draft: o.draft ?? false,
      user: o.user,
      headRef,
      baseRef,
      headRepo,
      headSha,
      baseSha,
      created_at: created,
      updated_at: created,
      closed_at: null,
      merged_at: null,
      merged_by: null,
      merge_commit_sha: null,
      reviews: [],
      files: o.files,
    } as unknown as PullRecord;
    Object.defineProperties(record, {
      head: {
        enumerable: true,
        get() {
          refresh(record);
          return { ref: record.headRef, sha: record.headSha, label: `${record.headRepo.owner}:${record.headRef}`, repo: record.headRepo };
        },
      },
      base: {
        enumerable: true,
        get() {
          refresh(record);
          return { ref: record.baseRef, sha: record.baseSha, label: `${record.repo.owner}:${record.baseRef}`, repo: record.repo };
        },
      },
      toJSON: { enumerable: false, value: () => pullJson(record, true) },
    });
    list.push(record);
    return record;
  }

  function getPull(r: string | EmulatedRepo, number: number) {
    const repo = typeof r === 'string' ? getRepo(r) : r;
    return repo ? pulls.get(lower(repo.fullName))?.find((p) => p.number === number) : undefined;
  }

  function setHead(pull: EmulatedPull, sha: string) {
    const p = pull as PullRecord;
    const git = bare(p.headRepo);
    if (git) git.setBranch(p.headRef, sha);
    p.headSha = sha;
    p.updated_at = stamp(now());
  }

  function setFiles(pull: EmulatedPull, files: PullFileSpec[]) {
    (pull as PullRecord).files = files;
  }

  function addReview(pull: EmulatedPull, r: { user: string; state: ReviewState; commit_id?: string; submitted_at?: string; body?: string }) {
    user(r.user);
    const review = {
      id: newId(2_000_000_000),
      user: r.user,
      state: r.state,
      commit_id: r.commit_id ?? pull.head.sha,
      submitted_at: r.submitted_at ?? stamp(now()),
      body: r.body ?? '',
    } as EmulatedReview;
    Object.defineProperty(review, 'toJSON', { enumerable: false, value: () => reviewJson(pull as PullRecord, review) });
    pull.reviews.push(review);
    return review;
  }

  // ---- JSON renderers -------------------------------------------------------------------

  const userJ = (login: string) => userJson(user(login), urls);
  const repoJ = (repo: EmulatedRepo) => repositoryJson(repo, user(repo.owner), urls, stamp(now()));

  function commitJson(repo: EmulatedRepo, c: GitCommit) {
    const api = `${urls.api}/repos/${repo.fullName}`;
    const linked = (email: string) => {
      const u = userByEmail(email);
      return u ? userJson(u, urls) : null;
    };
    return {
      url: `${api}/commits/${c.sha}`,
      sha: c.sha,
      node_id: Buffer.from(`C_${c.sha}`).toString('base64url'),
      html_url: `${urls.web}/${repo.fullName}/commit/${c.sha}`,
      comments_url: `${api}/commits/${c.sha}/comments`,
      commit: {
        url: `${api}/git/commits/${c.sha}`,
        author: c.author,
        committer: c.committer,
        message: c.message,
        comment_count: 0,
        tree: { sha: c.tree, url: `${api}/git/trees/${c.tree}` },
        verification: { verified: false, reason: 'unsigned', payload: null, signature: null, verified_at: null },
      },
      author: linked(c.author.email),
      committer: linked(c.committer.email),
      parents: c.parents.map((sha) => ({ sha, url: `${api}/commits/${sha}`, html_url: `${urls.web}/${repo.fullName}/commit/${sha}` })),
    };
  }

  function authorAssociation(repo: EmulatedRepo, login: string) {
    if (lower(login) === lower(repo.owner)) return 'OWNER';
    for (const t of teams.values()) if (lower(t.org) === lower(repo.owner) && t.members.get(lower(login))?.state === 'active') return 'MEMBER';
    return 'CONTRIBUTOR';
  }

  function changedFiles(p: PullRecord): PullFileSpec[] {
    const git = bare(p.repo);
    if (git && p.files === undefined) {
      refresh(p);
      const head = p.headRepo === p.repo ? p.headSha : (git.resolve(`refs/pull/${p.number}/head`) ?? p.headSha);
      const base = git.mergeBase(p.baseSha, head) ?? p.baseSha;
      return git.diff(base, head).map((f) => ({
        filename: f.filename,
        status: f.status,
        additions: f.additions,
        deletions: f.deletions,
        previous_filename: f.previousFilename,
        sha: f.sha,
      }));
    }
    return p.files ?? [];
  }

  function fileJson(p: PullRecord, f: PullFileSpec) {
    const full = p.repo.fullName;
    const path = f.filename.split('/').map(encodeURIComponent).join('/');
    const additions = f.additions ?? 0;
    const deletions = f.deletions ?? 0;
    return {
      sha: f.sha ?? fakeSha(`blob:${f.filename}`),
      filename: f.filename,
      status: f.status ?? 'modified',
      additions,
      deletions,
      changes: additions + deletions,
      blob_url: `${urls.web}/${full}/blob/${p.headSha}/${path}`,
      raw_url: `${urls.web}/${full}/raw/${p.headSha}/${path}`,
      contents_url: `${urls.api}/repos/${full}/contents/${path}?ref=${p.headSha}`,
      ...(f.previous_filename ? { previous_filename: f.previous_filename } : {}),
    };
  }

  /** Whether the pull can merge now; undefined when GitHub would still be computing it. */
  function mergeability(p: PullRecord): boolean {
    if (p.state !== 'open') return false;
    const git = bare(p.repo);
    if (!git) return p.mergeable ?? true;
    const head = p.headRepo === p.repo ? p.headSha : git.resolve(`refs/pull/${p.number}/head`);
    return head !== undefined && git.mergeTree(p.baseSha, head) !== undefined;
  }

  function pullJson(p: PullRecord, full: boolean): Record<string, unknown> {
    refresh(p);
    const repoApi = `${urls.api}/repos/${p.repo.fullName}`;
    const self = `${repoApi}/pulls/${p.number}`;
    const html = `${urls.web}/${p.repo.fullName}/pull/${p.number}`;
    const issue = `${repoApi}/issues/${p.number}`;
    const side = (ref: string, sha: string, repo: EmulatedRepo) => ({
      label: `${repo.owner}:${ref}`,
      ref,
      sha,
      user: userJ(repo.owner),
      repo: repoJ(repo),
    });
    const simple: Record<string, unknown> = {
      url: self,
      id: p.id,
      node_id: nodeId('PR', p.id),
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: issue,
      commits_url: `${self}/commits`,
      review_comments_url: `${self}/comments`,
      review_comment_url: `${repoApi}/pulls/comments{/number}`,
      comments_url: `${issue}/comments`,
      statuses_url: `${repoApi}/statuses/${p.headSha}`,
      number: p.number,
      state: p.state,
      locked: false,
      title: p.title,
      user: userJ(p.user),
      body: p.body,
      labels: [],
      milestone: null,
      active_lock_reason: null,
      created_at: p.created_at,
      updated_at: p.updated_at,
      closed_at: p.closed_at,
      merged_at: p.merged_at,
      merge_commit_sha: p.merge_commit_sha,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      head: side(p.headRef, p.headSha, p.headRepo),
      base: side(p.baseRef, p.baseSha, p.repo),
      _links: {
        self: { href: self },
        html: { href: html },
        issue: { href: issue },
        comments: { href: `${issue}/comments` },
        review_comments: { href: `${self}/comments` },
        review_comment: { href: `${repoApi}/pulls/comments{/number}` },
        commits: { href: `${self}/commits` },
        statuses: { href: `${repoApi}/statuses/${p.headSha}` },
      },
      author_association: authorAssociation(p.repo, p.user),
      auto_merge: null,
      draft: p.draft,
    };
    if (!full) return simple;
    const files = p.state === 'open' || p.files !== undefined ? changedFiles(p) : [];
    const git = bare(p.repo);
    const mergeable = p.merged_at ? null : mergeability(p);
    return {
      ...simple,
      merged: p.merged_at !== null,
      mergeable,
      rebaseable: mergeable,
      mergeable_state: p.merged_at || p.state === 'closed' ? 'unknown' : mergeable ? 'clean' : 'dirty',
      merged_by: p.merged_by ? userJ(p.merged_by) : null,
      comments: comments.filter((c) => lower(c.repo) === lower(p.repo.fullName) && c.issue_number === p.number).length,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: git && p.headRepo === p.repo && !p.merged_at ? git.countCommits(p.baseSha, p.headSha) : 1,
      additions: files.reduce((n, f) => n + (f.additions ?? 0), 0),
      deletions: files.reduce((n, f) => n + (f.deletions ?? 0), 0),
      changed_files: files.length,
    };
  }

  function reviewJson(p: PullRecord, r: EmulatedReview) {
    const self = `${urls.api}/repos/${p.repo.fullName}/pulls/${p.number}`;
    const html = `${urls.web}/${p.repo.fullName}/pull/${p.number}#pullrequestreview-${r.id}`;
    return {
      id: r.id,
      node_id: nodeId('PRR', r.id),
      user: userJ(r.user),
      body: r.body,
      state: r.state,
      html_url: html,
      pull_request_url: self,
      author_association: authorAssociation(p.repo, r.user),
      _links: { html: { href: html }, pull_request: { href: self } },
      ...(r.state === 'PENDING' ? {} : { submitted_at: r.submitted_at }),
      commit_id: r.commit_id,
    };
  }

  function commentJson(c: EmulatedComment) {
    const repo = getRepo(c.repo)!;
    const api = `${urls.api}/repos/${repo.fullName}`;
    return {
      id: c.id,
      node_id: nodeId('IC', c.id),
      url: `${api}/issues/comments/${c.id}`,
      html_url: `${urls.web}/${repo.fullName}/pull/${c.issue_number}#issuecomment-${c.id}`,
      body: c.body,
      user: userJ(c.user),
      created_at: c.created_at,
      updated_at: c.updated_at,
      issue_url: `${api}/issues/${c.issue_number}`,
      author_association: authorAssociation(repo, c.user),
      performed_via_github_app: null,
      reactions: {
        url: `${api}/issues/comments/${c.id}/reactions`,
        total_count: 0,
        '+1': 0,
        '-1': 0,
        laugh: 0,
        hooray: 0,
        confused: 0,
        heart: 0,
        rocket: 0,
        eyes: 0,
      },
    };
  }

  function statusJson(s: EmulatedStatus, withCreator: boolean) {
    const creator = user(s.creator);
    return {
      url: `${urls.api}/repos/${s.repo}/statuses/${s.sha}`,
      avatar_url: `${urls.web}/avatars/u/${creator.id}?v=4`,
      id: s.id,
      node_id: nodeId('SC', s.id),
      state: s.state,
      description: s.description,
      target_url: s.target_url,
      context: s.context,
      created_at: s.created_at,
      updated_at: s.updated_at,
      ...(withCreator ? { creator: userJson(creator, urls) } : {}),
    };
  }

  // ---- request handling -----------------------------------------------------------------

  function paginate<T>(ctx: Context, items: T[]): { items: T[]; headers: Record<string, string> } {
    const perPage = clampInt(ctx.query.get('per_page'), 30, 1, 100);
    const page = clampInt(ctx.query.get('page'), 1, 1, Number.MAX_SAFE_INTEGER);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (n: number) => {
      const q = new URLSearchParams(ctx.query);
      q.set('per_page', String(perPage));
      q.set('page', String(n));
      return `<${urls.api}${ctx.path}?${q}>`;
    };
    const rels: string[] = [];
    if (page > 1) rels.push(`${link(Math.min(page - 1, last))}; rel="prev"`);
    if (page < last) rels.push(`${link(page + 1)}; rel="next"`, `${link(last)}; rel="last"`);
    if (page > 1) rels.push(`${link(1)}; rel="first"`);
    return {
      items: items.slice((page - 1) * perPage, page * perPage),
      headers: rels.length ? { link: rels.join(', ') } : {},
    };
  }

  const repoParam = (ctx: Context) => {
    const repo = getRepo(`${ctx.params.owner}/${ctx.params.repo}`);
    if (!repo) throw notFound();
    return repo;
  };
  const pullParam = (ctx: Context, key = 'pull_number') => {
    const repo = repoParam(ctx);
    const p = getPull(repo, Number(ctx.params[key]));
    if (!p || !/^\d+$/.test(ctx.params[key] ?? '')) throw notFound();
    return p;
  };
  const str = (ctx: Context, key: string) => (typeof ctx.body[key] === 'string' ? ctx.body[key] : undefined);
  const missing = (resource: string, field: string) => validationFailed([{ resource, field, code: 'missing_field' }]);
  /** GitHub refuses a comment body above 65,536 characters (code points). */
  const tooLong = (body: string) => {
    if ([...body].length > 65_536)
      throw validationFailed([{ resource: 'IssueComment', code: 'custom', field: 'body', message: 'body is too long (maximum is 65536 characters)' }]);
  };

  const routes: Array<{ method: string; route: string; handler: Handler }> = [
    {
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls',
      handler: (ctx) => {
        const repo = repoParam(ctx);
        const state = ctx.query.get('state') ?? 'open';
        if (!['open', 'closed', 'all'].includes(state)) throw validationFailed([{ resource: 'Search', field: 'state', code: 'invalid' }]);
        const head = ctx.query.get('head');
        const base = ctx.query.get('base');
        let list = [...pulls.get(lower(repo.fullName))!].reverse();
        list = list.filter((p) => state === 'all' || p.state === state);
        if (head) {
          const [owner, ref] = head.includes(':') ? head.split(/:(.*)/s) : [repo.owner, head];
          list = list.filter((p) => lower(p.headRepo.owner) === lower(owner!) && p.headRef === ref);
        }
        if (base) list = list.filter((p) => p.baseRef === base);
        if (ctx.query.get('direction') === 'asc') list.reverse();
        const page = paginate(ctx, list);
        return { body: page.items.map((p) => pullJson(p, false)), headers: page.headers };
      },
    },
    {
      method: 'POST',
      route: '/repos/{owner}/{repo}/pulls',
      handler: (ctx) => {
        const repo = repoParam(ctx);
        const head = str(ctx, 'head');
        const base = str(ctx, 'base');
        const title = str(ctx, 'title');
        if (!head) throw missing('PullRequest', 'head');
        if (!base) throw missing('PullRequest', 'base');
        if (!title && ctx.body.issue === undefined) throw missing('PullRequest', 'title');
        const [headOwner, headRef] = head.includes(':') ? (head.split(/:(.*)/s) as [string, string]) : [repo.owner, head];
        if (lower(headOwner) !== lower(repo.owner)) throw validationFailed([{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
        const git = bare(repo);
        if (git) {
          if (!git.branchSha(headRef)) throw validationFailed([{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
          if (!git.branchSha(base)) throw validationFailed([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
          if (git.countCommits(git.branchSha(base)!, git.branchSha(headRef)!) === 0)
            throw validationFailed([{ resource: 'PullRequest', code: 'custom', message: `No commits between ${base} and ${headRef}` }]);
        }
        const open = pulls.get(lower(repo.fullName))!.find((p) => p.state === 'open' && p.headRef === headRef && p.baseRef === base);
        if (open) throw validationFailed([{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${headOwner}:${headRef}.` }]);
        const p = createPull({
          repo,
          head: headRef,
          base,
          user: ctx.user.login,
          title: title ?? headRef,
          body: str(ctx, 'body') ?? null,
          draft: ctx.body.draft === true,
          ...(git ? {} : { headSha: fakeSha(`${repo.fullName}:${headRef}`), baseSha: fakeSha(`${repo.fullName}:${base}`) }),
        });
        const json = pullJson(p as PullRecord, true);
        return { status: 201, body: json, headers: { location: String(json.url) } };
      },
    },
    {
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}',
      handler: (ctx) => ({ body: pullJson(pullParam(ctx), true) }),
    },
    {
      method: 'PATCH',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}',
      handler: (ctx) => {
        const p = pullParam(ctx);
        const state = str(ctx, 'state');
        if (state !== undefined && state !== 'open' && state !== 'closed')
          throw validationFailed([{ resource: 'PullRequest', field: 'state', code: 'invalid' }]);
        if (ctx.body.title !== undefined) p.title = str(ctx, 'title') ?? JSON.stringify(ctx.body.title);
        if (ctx.body.body !== undefined) p.body = ctx.body.body === null ? null : (str(ctx, 'body') ?? JSON.stringify(ctx.body.body));
        if (str(ctx, 'base')) p.baseRef = str(ctx, 'base')!;
        if (state && !p.merged_at) {
          if (state === 'open') refresh(p);
          p.state = state;
          p.closed_at = state === 'closed' ? stamp(now()) : null;
        }
        p.updated_at = stamp(now());
        return { body: pullJson(p, true) };
      },
    },
    {
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}/files',
      handler: (ctx) => {
        const p = pullParam(ctx);
        const page = paginate(ctx, changedFiles(p));
        return { body: page.items.map((f) => fileJson(p, f)), headers: page.headers };
      },
    },
    {
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}/commits',
      handler: (ctx) => {
        const p = pullParam(ctx);
        const git = bare(p.repo);
        if (!git) return { body: [] };
        refresh(p);
        const head = p.headRepo === p.repo ? p.headSha : (git.resolve(`refs/pull/${p.number}/head`) ?? p.headSha);
        // GitHub lists at most 250 commits of a pull request, whatever the page.
        const page = paginate(ctx, git.commits(p.baseSha, head).slice(0, 250));
        return { body: page.items.map((c) => commitJson(p.repo, c)), headers: page.headers };
      },
    },
    {
      method: 'GET',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}/reviews',
      handler: (ctx) => {
        const p = pullParam(ctx);
        const visible = p.reviews.filter((r) => r.state !== 'PENDING' || lower(r.user) === lower(ctx.user.login));
        const page = paginate(ctx, visible);
        return { body: page.items.map((r) => reviewJson(p, r)), headers: page.headers };
      },
    },
    {
      method: 'POST',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}/reviews',
      handler: (ctx) => {
        const p = pullParam(ctx);
        const event = str(ctx, 'event');
        const states: Record<string, ReviewState> = { APPROVE: 'APPROVED', REQUEST_CHANGES: 'CHANGES_REQUESTED', COMMENT: 'COMMENTED' };
        if (event !== undefined && !states[event]) throw validationFailed(['Unprocessable Entity: event is not valid'], DOCS);
        const body = str(ctx, 'body') ?? '';
        if (event === 'APPROVE' || event === 'REQUEST_CHANGES' || event === 'COMMENT') {
          if (lower(ctx.user.login) === lower(p.user) && event !== 'COMMENT') {
            const what = event === 'APPROVE' ? 'approve' : 'request changes on';
            throw new HttpError(422, {
              message: 'Unprocessable Entity',
              errors: [`Review Can not ${what} your own pull request`],
              documentation_url: DOCS,
              status: '422',
            });
          }
          if (event !== 'APPROVE' && !body)
            throw new HttpError(422, { message: 'Unprocessable Entity', errors: ['Body is required'], documentation_url: DOCS, status: '422' });
        }
        if (p.state !== 'open')
          throw new HttpError(422, {
            message: 'Unprocessable Entity',
            errors: ['Can not review a closed pull request'],
            documentation_url: DOCS,
            status: '422',
          });
        const review = addReview(p, {
          user: ctx.user.login,
          state: event ? states[event]! : 'PENDING',
          body,
          ...(str(ctx, 'commit_id') ? { commit_id: str(ctx, 'commit_id') } : {}),
        });
        return { body: reviewJson(p, review) };
      },
    },
    {
      method: 'PUT',
      route: '/repos/{owner}/{repo}/pulls/{pull_number}/merge',
      handler: (ctx) => merge(ctx, pullParam(ctx)),
    },
    {
      method: 'GET',
      route: '/orgs/{org}/teams/{team_slug}/memberships/{username}',
      handler: (ctx) => {
        const team = teams.get(lower(`${ctx.params.org}/${ctx.params.team_slug}`));
        const membership = team?.members.get(lower(ctx.params.username!));
        if (!team || !membership) throw notFound();
        const u = user(ctx.params.username!);
        return {
          body: {
            url: `${urls.api}/organizations/${user(team.org).id}/team/${teamId(team)}/memberships/${u.login}`,
            role: membership.role,
            state: membership.state,
          },
        };
      },
    },
    {
      method: 'POST',
      route: '/repos/{owner}/{repo}/statuses/{sha}',
      handler: (ctx) => {
        const repo = repoParam(ctx);
        const state = str(ctx, 'state');
        if (!state) throw missing('Status', 'state');
        if (!['error', 'failure', 'pending', 'success'].includes(state))
          throw validationFailed([{ resource: 'Status', field: 'state', code: 'custom', message: 'state is not included in the list' }]);
        // GitHub's limit (a longer description is a 422, not a truncation).
        const description = str(ctx, 'description');
        if (description !== undefined && [...description].length > 140)
          throw validationFailed([
            { resource: 'Status', code: 'custom', field: 'description', message: 'description is too long (maximum is 140 characters)' },
          ]);
        const sha = ctx.params.sha!;
        const git = bare(repo);
        if (git ? !/^[0-9a-f]{40}$/.test(sha) || !git.hasCommit(sha) : !/^[0-9a-f]{40}$/.test(sha))
          throw new HttpError(422, {
            message: `No commit found for SHA: ${sha}`,
            documentation_url: 'https://docs.github.com/rest/commits/statuses#create-a-commit-status',
            status: '422',
          });
        const at = stamp(now());
        const s: EmulatedStatus = {
          id: newId(30_000_000_000),
          repo: repo.fullName,
          sha,
          state: state as EmulatedStatus['state'],
          context: str(ctx, 'context') ?? 'default',
          description: str(ctx, 'description') ?? null,
          target_url: str(ctx, 'target_url') ?? null,
          creator: ctx.user.login,
          created_at: at,
          updated_at: at,
        };
        statuses.push(s);
        const json = statusJson(s, true);
        return { status: 201, body: json, headers: { location: json.url } };
      },
    },
    {
      method: 'GET',
      route: '/repos/{owner}/{repo}/commits/{ref}/status',
      handler: (ctx) => {
        const repo = repoParam(ctx);
        const ref = ctx.params.ref!;
        const git = bare(repo);
        const sha = git ? git.resolve(ref) : /^[0-9a-f]{40}$/.test(ref) ? ref : pulls.get(lower(repo.fullName))!.find((p) => p.headRef === ref)?.headSha;
        if (!sha) throw new HttpError(422, { message: `No commit found for SHA: ${ref}`, documentation_url: DOCS, status: '422' });
        const latest = new Map<string, EmulatedStatus>();
        for (const s of statuses) if (lower(s.repo) === lower(repo.fullName) && s.sha === sha) latest.set(s.context, s);
        const list = [...latest.values()].reverse();
        const state = list.some((s) => s.state === 'error' || s.state === 'failure')
          ? 'failure'
          : list.length === 0 || list.some((s) => s.state === 'pending')
            ? 'pending'
            : 'success';
        const api = `${urls.api}/repos/${repo.fullName}`;
        return {
          body: {
            state,
            statuses: list.map((s) => statusJson(s, false)),
            sha,
            total_count: list.length,
            repository: minimalRepositoryJson(repo, user(repo.owner), urls),
            commit_url: `${api}/commits/${sha}`,
            url: `${api}/commits/${sha}/status`,
          },
        };
      },
    },
    {
      method: 'GET',
      route: '/repos/{owner}/{repo}/issues/{issue_number}/comments',
      handler: (ctx) => {
        const p = pullParam(ctx, 'issue_number');
        const list = comments.filter((c) => lower(c.repo) === lower(p.repo.fullName) && c.issue_number === p.number);
        const page = paginate(ctx, list);
        return { body: page.items.map(commentJson), headers: page.headers };
      },
    },
    {
      method: 'POST',
      route: '/repos/{owner}/{repo}/issues/{issue_number}/comments',
      handler: (ctx) => {
        const p = pullParam(ctx, 'issue_number');
        const body = str(ctx, 'body');
        if (body === undefined) throw missing('IssueComment', 'body');
        tooLong(body);
        const at = stamp(now());
        const c: EmulatedComment = {
          id: newId(3_000_000_000),
          repo: p.repo.fullName,
          issue_number: p.number,
          body,
          user: ctx.user.login,
          created_at: at,
          updated_at: at,
        };
        comments.push(c);
        const json = commentJson(c);
        return { status: 201, body: json, headers: { location: json.url } };
      },
    },
    {
      method: 'PATCH',
      route: '/repos/{owner}/{repo}/issues/comments/{comment_id}',
      handler: (ctx) => {
        const repo = repoParam(ctx);
        const c = comments.find((x) => lower(x.repo) === lower(repo.fullName) && String(x.id) === ctx.params.comment_id);
        if (!c) throw notFound();
        const body = str(ctx, 'body');
        if (body === undefined) throw missing('IssueComment', 'body');
        tooLong(body);
        if (lower(c.user) !== lower(ctx.user.login) && lower(ctx.user.login) !== lower(repo.owner))
          throw new HttpError(403, errorJson(403, 'Resource not accessible by integration'));
        c.body = body;
        c.updated_at = stamp(now());
        return { body: commentJson(c) };
      },
    },
  ];

  const teamIds = new Map<TeamRecord, number>();
  const teamId = (t: TeamRecord) => teamIds.get(t) ?? (teamIds.set(t, newId(4_000_000)), teamIds.get(t)!);

  function merge(ctx: Context, p: PullRecord): Reply {
    const notMergeable = (message = 'Pull Request is not mergeable') =>
      new HttpError(405, { message, documentation_url: 'https://docs.github.com/rest/pulls/pulls#merge-a-pull-request', status: '405' });
    refresh(p);
    if (p.state !== 'open' || p.merged_at) throw notMergeable();
    const expected = str(ctx, 'sha');
    if (expected && expected !== p.headSha)
      throw new HttpError(409, {
        message: 'Head branch was modified. Review and try the merge again.',
        documentation_url: 'https://docs.github.com/rest/pulls/pulls#merge-a-pull-request',
        status: '409',
      });
    const method = str(ctx, 'merge_method') ?? 'merge';
    if (!['merge', 'squash', 'rebase'].includes(method)) throw validationFailed([{ resource: 'PullRequest', field: 'merge_method', code: 'invalid' }]);
    const at = now();
    const headOwner = p.headRepo.owner;
    let sha: string;
    const git = bare(p.repo);
    if (git) {
      const head = p.headRepo === p.repo ? p.headSha : git.resolve(`refs/pull/${p.number}/head`);
      if (!head) throw notMergeable();
      const tree = git.mergeTree(p.baseSha, head);
      if (!tree) throw notMergeable();
      const merger = user(ctx.user.login);
      const author = { name: merger.login, email: `${merger.id}+${merger.login}@users.noreply.github.com`, date: `${Math.floor(at.getTime() / 1000)} +0000` };
      if (method === 'rebase') throw notMergeable('Rebase merges are not allowed on this repository.');
      const title =
        str(ctx, 'commit_title') ?? (method === 'merge' ? `Merge pull request #${p.number} from ${headOwner}/${p.headRef}` : `${p.title} (#${p.number})`);
      const message = str(ctx, 'commit_message') ?? (method === 'merge' ? p.title : '');
      const full = message ? `${title}\n\n${message}` : title;
      sha = git.commitTree(tree, method === 'merge' ? [p.baseSha, head] : [p.baseSha], full, author);
      if (!git.compareAndSwap(p.baseRef, sha, p.baseSha))
        throw new HttpError(409, {
          message: 'Base branch was modified. Review and try the merge again.',
          documentation_url: 'https://docs.github.com/rest/pulls/pulls#merge-a-pull-request',
          status: '409',
        });
    } else {
      if (p.mergeable === false) throw notMergeable();
      sha = fakeSha(`merge:${p.repo.fullName}#${p.number}:${p.headSha}`);
    }
    p.state = 'closed';
    p.merged_at = p.closed_at = p.updated_at = stamp(at);
    p.merged_by = ctx.user.login;
    p.merge_commit_sha = sha;
    return { body: { sha, merged: true, message: 'Pull Request successfully merged' } };
  }

  const compiled = routes.map((r) => ({
    ...r,
    regex: new RegExp(`^${r.route.replace(/\{[^{}]+\}/g, '([^/]+)')}$`),
    names: [...r.route.matchAll(/\{([^{}]+)\}/g)].map((m) => m[1]!),
  }));

  function patternMatcher(pattern: string | RegExp) {
    if (pattern instanceof RegExp) return (method: string, path: string) => pattern.test(`${method} ${path}`);
    const [m, p] = pattern.includes(' ') ? (pattern.split(/ (.*)/s) as [string, string]) : [undefined, pattern];
    return (method: string, path: string, route: string | null) => (m === undefined || m.toUpperCase() === method) && (p === route || p === path);
  }

  function inject(pattern: string | RegExp, fault: Fault): InjectedFault {
    const entry = { match: patternMatcher(pattern), fault, hits: 0 };
    faults.push(entry);
    return {
      get hits() {
        return entry.hits;
      },
      remove: () => {
        const i = faults.indexOf(entry);
        if (i >= 0) faults.splice(i, 1);
      },
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/(?<!\/)\/+$/, '') || '/';
    let route: string | null = null;
    let params: Params = {};
    let handler: Handler | undefined;
    for (const r of compiled) {
      const m = r.method === method ? r.regex.exec(path) : null;
      if (!m) continue;
      route = r.route;
      handler = r.handler;
      params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      break;
    }
    const record: RecordedRequest = { method, path, query: url.search.slice(1), route, status: 0 };
    requests.push(record);
    const raw = await readBody(req);

    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      let finalStatus = status;
      let finalBody = body;
      try {
        options.onResponse?.({ method, route, status, body });
      } catch (err) {
        finalStatus = 500;
        finalBody = errorJson(500, `github emulator: onResponse rejected the response: ${(err as Error).message}`);
      }
      if (res.destroyed) return;
      const text = finalBody === undefined ? '' : JSON.stringify(finalBody);
      res.writeHead(finalStatus, {
        'content-type': 'application/json; charset=utf-8',
        'x-github-media-type': 'github.v3; format=json',
        'x-github-api-version-selected': '2022-11-28',
        'x-github-request-id': randomBytes(8).toString('hex').toUpperCase(),
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '4999',
        'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
        'x-ratelimit-resource': 'core',
        ...headers,
      });
      res.end(text);
    };

    const fault = faults.find((f) => f.match(method, path, route));
    if (fault) {
      fault.hits++;
      if (fault.fault.times !== undefined && fault.hits >= fault.fault.times) faults.splice(faults.indexOf(fault), 1);
      if (fault.fault.delayMs) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => (timers.delete(t), resolve()), fault.fault.delayMs);
          timers.add(t);
          res.on('close', () => (clearTimeout(t), timers.delete(t), resolve()));
        });
        if (res.destroyed) return;
      }
      if (fault.fault.status !== undefined && !fault.fault.afterHandling) {
        const status = fault.fault.status;
        send(status, fault.fault.body ?? errorJson(status, STATUS_TEXT[status] ?? 'Error'), fault.fault.headers);
        return;
      }
    }

    if (!handler) return send(404, errorJson(404, 'Not Found'));
    const auth = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!auth) return send(401, errorJson(401, 'Requires authentication'));
    const who = userByToken(auth[1]!);
    if (!who) return send(401, errorJson(401, 'Bad credentials'));
    record.login = who.login;

    let body: Record<string, unknown> = {};
    if (raw.length) {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        body = parsed as Record<string, unknown>;
      } catch {
        return send(400, errorJson(400, 'Problems parsing JSON'));
      }
    }
    try {
      const reply = handler({ method, params, query: url.searchParams, body, user: who, path });
      const lost = fault?.fault.afterHandling ? fault.fault : undefined;
      if (lost?.status !== undefined) send(lost.status, lost.body ?? errorJson(lost.status, STATUS_TEXT[lost.status] ?? 'Error'), lost.headers);
      else send(reply.status ?? 200, reply.body, reply.headers);
    } catch (err) {
      if (err instanceof HttpError) send(err.status, err.body);
      else send(500, errorJson(500, `github emulator: ${(err as Error).message}`));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(errorJson(500, `github emulator: ${(err as Error).message}`)));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  urls.api = `http://${host}:${port}`;
  urls.web = options.webUrl ?? urls.api;

  function eventFor(pull: EmulatedPull, event: EventName, opts: { action?: string; review?: EmulatedReview; sender?: string } = {}) {
    const p = pull as PullRecord;
    const payload: Record<string, unknown> = {
      action: opts.action ?? (event === 'pull_request_review' ? 'submitted' : 'opened'),
    };
    if (event !== 'pull_request_review') payload.number = p.number;
    payload.pull_request = pullJson(p, event !== 'pull_request_review');
    if (event === 'pull_request_review') {
      const review = opts.review ?? p.reviews.at(-1);
      if (!review) throw new Error('github emulator: the pull has no review for a pull_request_review event');
      // Webhook payloads spell review states in lower case, unlike the REST API.
      payload.review = { ...reviewJson(p, review), state: review.state.toLowerCase() };
    }
    payload.repository = repoJ(p.repo);
    payload.sender = userJ(opts.sender ?? (event === 'pull_request_review' ? (opts.review ?? p.reviews.at(-1))!.user : p.user));
    return payload;
  }

  return {
    url: urls.api,
    requests,
    statuses,
    comments,
    addUser,
    addTeam,
    setTeamMembership,
    addRepo,
    getRepo,
    createPull,
    getPull,
    setHead,
    setFiles,
    addReview,
    inject,
    eventFor,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function clampInt(raw: string | null, fallback: number, min: number, max: number): number {
  const n = raw === null ? Number.NaN : Number.parseInt(raw, 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

/** A stable 40-hex stand-in for a commit when a repository has no gitDir. */
function fakeSha(seed: string): string {
  let h = 0x811c9dc5;
  let out = '';
  for (let round = 0; out.length < 40; round++) {
    for (const ch of `${round}:${seed}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    out += h.toString(16).padStart(8, '0');
  }
  return out.slice(0, 40);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
