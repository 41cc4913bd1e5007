import { ExitCode, ModelgateError } from '../errors.js';
import { backoff, commitIdentity, type FileChanges, type GitRepo, type Identity } from '../git/repo.js';
import { evaluateGate } from '../gate/evaluate.js';
import { GitStageHistory } from '../gate/history.js';
import { renderPromotionBody } from '../gate/report.js';
import { lazyStoreVerifier } from '../gate/store-verifier.js';
import { deferredScanner } from '../gate/store-scanner.js';
import type { ChangedFile, Decision, StageHistory } from '../gate/types.js';
import { createOctokit, parseRepository } from '../github/client.js';
import { openOrUpdatePullRequest, type OpenedPullRequest } from '../github/promotion-pr.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { CatalogTreeSource, GitTreeSource } from '../registry/source.js';
import type { Change } from './change.js';
import { plannedSource } from './pins.js';

export type ApplyMode = 'local' | 'push' | 'pr';

export interface ApplyOptions {
  repo: GitRepo;
  /** The registry's folder inside the repository ('' for its root). */
  prefix: string;
  mode: ApplyMode;
  /**
   * Plans the change on the registry at `base` (undefined: a registry without commits), the
   * commit it will sit on. Called again on every attempt: after a lost race it re-plans on
   * what won (the next version number, the pins of the new main).
   */
  plan: (snapshot: RegistrySnapshot | undefined, base: string | undefined, attempt: number) => Promise<Change>;
  env: NodeJS.ProcessEnv;
  remote?: string;
  baseBranch?: string;
  /**
   * The pull request's branch must be new (`register --pr`): a branch of that name holds
   * another registration of the same number. A taken name is a lost race: re-plan and retry.
   */
  newBranch?: boolean;
  /**
   * The branch name claims what the change adds (register: `modelgate/<model>-v<N>-register`
   * holds number N). A push first creates that branch (a name someone holds sends the run round
   * again) and deletes it once the base moved or refused; a pull request's new branch is checked
   * against the base again once it is pushed, and a base that took a file the change adds meanwhile
   * sends the run round again, its branch deleted, before any pull request opens. So a pushed
   * registration never takes a number an open registration branch holds, and no registration
   * pull request opens on a number the base took first.
   */
  claimBranch?: boolean;
  /**
   * The branch is modelgate's own (`modelgate/sync`) and gets no trust from its name: it is
   * always the change alone on the base, and whatever else it holds is replaced, under a lease.
   */
  replaceBranch?: boolean;
  /** Attempts before a lost race is given up with E_PUSH_RACE (default 8). */
  maxAttempts?: number;
  /** Commit as this identity (sync: modelgate[bot]); default git's, else the CI actor or `modelgate`. */
  author?: Identity;
  /** The committer when it is not `author` (a re-numbered registration keeps its registrant's commit identities). */
  committer?: Identity;
  /** The commit's time (ISO 8601) instead of now: an import keeps the original record's time. */
  date?: string;
  /** Called with each commit just before it is pushed (tests use it to stage races). */
  beforePush?: (commit: string, attempt: number) => Promise<void>;
  /** `owner/name` for the pull request (the Action: GITHUB_REPOSITORY); default github.repository of modelgate.yaml. */
  repository?: string;
  /** The pull request body; default: the gate run on the planned change. */
  body?: (change: Change) => Promise<string>;
  /** A paragraph added to the end of the pull request body (serve: who asked for the change). */
  bodyNote?: string;
}

export interface Applied {
  change: Change;
  /** The commit the change sits on. */
  base?: string;
  /** The new commit (absent when the change was empty, or the PR branch already held it). */
  commit?: string;
  attempts: number;
  pushed: boolean;
  /** False when the commit was pushed but the local branch could not be moved to it. */
  checkedOut: boolean;
  /** True when the planned change writes nothing. */
  empty: boolean;
  pullRequest?: OpenedPullRequest;
  decision?: Decision;
}

/** The registry at `commit` as the planner reads it (the catalog's stages for the blobs it knows). */
const planningSnapshot = (repo: GitRepo, commit: string | undefined, prefix: string) =>
  commit ? new RegistrySnapshot(new CatalogTreeSource(repo, commit, prefix)) : undefined;

/** The change's files as repository paths. */
export function repositoryFiles(change: Pick<Change, 'files'>, prefix: string): FileChanges {
  return Object.fromEntries(change.files.map((f) => [prefix ? `${prefix}/${f.path}` : f.path, f.after]));
}

/** The lost-race error: one code for every writing command. */
export const lostRace = (where: string, attempts: number) =>
  new ModelgateError('E_PUSH_RACE', `${where} kept moving: gave up after ${attempts} attempts; run the command again`, ExitCode.service, { attempts });

/**
 * The one applier: turns a planned change into a local commit on HEAD, a commit pushed to the
 * base branch, or a branch pushed with a pull request opened or updated. One loop: fetch →
 * re-plan → commit → push → bounded jittered backoff; never forces. Commits are built with a
 * private index (no checkout); the work tree is fast-forwarded afterwards.
 */
export async function applyChange(opts: ApplyOptions): Promise<Applied> {
  const { repo, prefix } = opts;
  const remote = opts.remote ?? 'origin';
  const baseBranch = opts.baseBranch ?? 'main';
  const maxAttempts = opts.maxAttempts ?? 8;
  const ident = {
    ...(opts.author ? { author: opts.author, ...(opts.committer ? { committer: opts.committer } : {}) } : await commitIdentity(repo, opts.env)),
    ...(opts.date ? { date: opts.date } : {}),
  };
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (attempt > 1) await backoff(attempt - 1);
    const base = opts.mode === 'local' ? await repo.resolve('HEAD') : ((await repo.fetchBranch(remote, baseBranch)) ?? (await repo.resolve('HEAD')));
    const change = await opts.plan(planningSnapshot(repo, base, prefix), base, attempt);
    const done = { change, base, attempts: attempt };
    if (change.files.length === 0) return { ...done, pushed: false, checkedOut: true, empty: true };
    const commit = await repo.commitChanges({ parent: base, files: repositoryFiles(change, prefix), message: change.message, ...ident });

    if (opts.mode === 'local') {
      await moveWorkTree(repo, commit, true);
      return { ...done, commit, pushed: false, checkedOut: true, empty: false };
    }
    if (opts.mode === 'push') {
      await opts.beforePush?.(commit, attempt);
      if (opts.claimBranch && !(await repo.pushNewBranch(remote, commit, change.branch))) continue;
      let result: Awaited<ReturnType<GitRepo['push']>>;
      try {
        result = await repo.push(remote, commit, baseBranch);
      } finally {
        // The claim has done its work once the base took the commit (or refused it).
        if (opts.claimBranch) await repo.deleteRemoteBranch(remote, change.branch, commit).catch(() => false);
      }
      // Up to date: a concurrent run pushed this same commit, so this one pushed nothing of its
      // own; the next attempt finds the change made (`empty`) and says so.
      if (result === 'pushed') return { ...done, commit, pushed: true, checkedOut: await moveWorkTree(repo, commit, false), empty: false };
      continue;
    }

    // A pull request. On an open pull request's branch the change may already be there.
    if (!base) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
    const found = await repo.fetchBranch(remote, change.branch);
    // A branch whose commits are all on the base already (a merged pull request's) is stale: replaced under a lease.
    const stale = found !== undefined && (await repo.isAncestor(found, base));
    const existing = stale ? undefined : found;
    if (existing && opts.newBranch) continue;
    let head = existing;
    const rebuilt = opts.replaceBranch === true;
    if (!existing || (await repo.treeOf(existing)) !== (await repo.treeOf(commit)) || (rebuilt && !(await isOneCommitOn(repo, existing, base)))) {
      // Build on the open branch when it already holds the base, so the push fast-forwards it;
      // never on a replaced branch: a commit someone else pushed there would ride along.
      const onExisting = !rebuilt && existing !== undefined && (await repo.isAncestor(base, existing));
      const next = onExisting
        ? await repo.commitChanges({ parent: existing, files: repositoryFiles(change, prefix), message: change.message, ...ident })
        : commit;
      await opts.beforePush?.(next, attempt);
      const lease = stale ? found : rebuilt && existing !== undefined ? existing : undefined;
      const pushed = lease ? await repo.pushReplacing(remote, next, change.branch, lease) : (await repo.push(remote, next, change.branch)) !== 'rejected';
      if (!pushed) {
        if (opts.newBranch || opts.replaceBranch) continue;
        throw new ModelgateError(
          'E_BRANCH_DIVERGED',
          `${remote}/${change.branch} has commits this change does not build on; delete the branch or merge it first`,
          ExitCode.service,
        );
      }
      head = next;
      if (opts.claimBranch && !existing && (await baseTookAddedFile(repo, remote, baseBranch, base, change, prefix))) {
        await repo.deleteRemoteBranch(remote, change.branch, next).catch(() => false);
        continue;
      }
    }
    try {
      const baseSnap = new RegistrySnapshot(new GitTreeSource(repo, base, prefix));
      const decision = opts.body
        ? undefined
        : await previewGate(
            {
              base: baseSnap,
              head: new RegistrySnapshot(plannedSource(baseSnap.source, change.files)),
              changedFiles: change.files.map((f) => ({ path: f.path, status: f.after === null ? 'D' : f.before !== undefined ? 'M' : 'A' })),
              history: new GitStageHistory(repo, base, prefix),
            },
            opts.env,
          );
      const rendered = opts.body ? await opts.body(change) : renderPromotionBody(decision!, change.versions, change.summary);
      const body = opts.bodyNote ? `${rendered.trimEnd()}\n\n${opts.bodyNote}\n` : rendered;
      const config = await baseSnap.config();
      const conn = {
        octokit: createOctokit({ token: opts.env.GITHUB_TOKEN || opts.env.GH_TOKEN, baseUrl: opts.env.GITHUB_API_URL }),
        ...parseRepository(opts.repository ?? config.github?.repository),
      };
      const pullRequest = await openOrUpdatePullRequest(conn, { branch: change.branch, base: baseBranch, title: change.summary, body });
      return { ...done, commit: head, pushed: true, checkedOut: false, empty: false, pullRequest, ...(decision ? { decision } : {}) };
    } catch (e) {
      // A branch this run created but no pull request shows would hold its name (for register, its
      // version number) for nothing: remove it again. A branch that was there before stays.
      if (!existing && head) await repo.deleteRemoteBranch(remote, change.branch, head).catch(() => false);
      throw e;
    }
  }
  throw lostRace(opts.mode === 'pr' ? `${remote} (branch names)` : `${remote}/${baseBranch}`, maxAttempts);
}

/** Whether `commit` is a single commit whose only parent is `base`. */
async function isOneCommitOn(repo: GitRepo, commit: string, base: string): Promise<boolean> {
  const parents = await repo.parentsOf(commit);
  return parents.length === 1 && parents[0] === base;
}

/**
 * Whether `baseBranch` of `remote`, read again now, holds a file that `change` adds and that
 * `base` (the commit the change was planned on) did not: another run took the same number.
 */
async function baseTookAddedFile(repo: GitRepo, remote: string, baseBranch: string, base: string, change: Change, prefix: string): Promise<boolean> {
  const now = await repo.fetchBranch(remote, baseBranch);
  if (now === undefined || now === base) return false;
  for (const f of change.files) {
    if (f.before !== undefined || f.after === null) continue;
    if ((await repo.readFileAt(now, prefix ? `${prefix}/${f.path}` : f.path)) !== undefined) return true;
  }
  return false;
}

/**
 * Brings the checked-out branch to `commit` when it is a fast-forward from where it was.
 * Without a push this must succeed (the commit exists nowhere else); after a push a local
 * branch that diverged is left alone and reported.
 */
async function moveWorkTree(repo: GitRepo, commit: string, required: boolean): Promise<boolean> {
  const head = await repo.resolve('HEAD');
  if (head === undefined) {
    await repo.checkoutUnborn(commit);
    return true;
  }
  if (!(await repo.isAncestor(head, commit))) {
    if (required) throw new ModelgateError('E_NOT_FAST_FORWARD', 'HEAD moved while the commit was being made; run the command again', ExitCode.content);
    return false;
  }
  try {
    await repo.fastForward(commit);
    return true;
  } catch (e) {
    if (required) throw e;
    return false;
  }
}

/**
 * The gate run on a planned change (or an import branch) before anyone approved: the pull request
 * body shows the same rules, results and missing approvals the Action will. Artifacts are checked
 * for presence here; the Action re-hashes them when the policy says `full`.
 */
export async function previewGate(
  sides: { base: RegistrySnapshot; head: RegistrySnapshot; changedFiles: ChangedFile[]; history: StageHistory },
  env: NodeJS.ProcessEnv,
): Promise<Decision> {
  const artifacts = lazyStoreVerifier(() => sides.base.config().then((c) => c.storage), env, { mode: 'exists' });
  try {
    return await evaluateGate({
      ...sides,
      pullRequest: { number: 0, author: { login: '' }, headSha: '' },
      reviews: [],
      teams: { isActiveMember: async () => false },
      artifacts,
      scanner: deferredScanner,
      options: { approvals: 'require', timeoutMs: 30_000 },
    });
  } finally {
    // An S3 client keeps its connections open until it is destroyed.
    await artifacts.close();
  }
}
