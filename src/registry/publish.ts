import { ExitCode, ModelgateError } from '../errors.js';
import { backoff, type FileChanges, type GitRepo, type Identity } from '../git/repo.js';

/** What one attempt commits: built from the base commit, so a retry re-plans on the new main. */
export interface PublishPlan {
  files: FileChanges;
  message: string;
}

export interface PublishOptions {
  repo: GitRepo;
  /** Called once per attempt with the commit the change will sit on. */
  plan: (base: string | undefined, attempt: number) => Promise<PublishPlan>;
  /** Push to `remote`'s `branch`; otherwise commit on the local HEAD only. */
  push?: boolean;
  remote?: string;
  branch?: string;
  author?: Identity;
  /** Attempts before a push race is given up (each rejected push re-fetches and re-plans). */
  maxAttempts?: number;
}

export interface Published {
  commit: string;
  base: string | undefined;
  attempts: number;
  pushed: boolean;
  /** False when the commit was pushed but the local branch could not be moved to it. */
  checkedOut: boolean;
}

/**
 * Commits a planned change to main: locally on HEAD, or pushed to the remote with retries.
 * Commits are built with a private index (no checkout, no whole-tree status); the work tree
 * is fast-forwarded afterwards. A rejected push means someone else got there first: fetch,
 * re-plan on their commit (e.g. allocate the next version number again) and try again, with
 * bounded jittered backoff. Never forces.
 */
export async function publish(options: PublishOptions): Promise<Published> {
  const { repo, remote = 'origin', branch = 'main' } = options;
  const maxAttempts = options.maxAttempts ?? 8;
  if (!options.push) {
    const base = await repo.resolve('HEAD');
    const plan = await options.plan(base, 0);
    const commit = await repo.commitChanges({ parent: base, files: plan.files, message: plan.message, author: options.author });
    await moveWorkTree(repo, commit, true);
    return { commit, base, attempts: 1, pushed: false, checkedOut: true };
  }
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (attempt > 0) await backoff(attempt);
    const base = (await repo.fetchBranch(remote, branch)) ?? (await repo.resolve('HEAD'));
    const plan = await options.plan(base, attempt);
    const commit = await repo.commitChanges({ parent: base, files: plan.files, message: plan.message, author: options.author });
    if (await repo.push(remote, commit, branch)) {
      const checkedOut = await moveWorkTree(repo, commit, false);
      return { commit, base, attempts: attempt + 1, pushed: true, checkedOut };
    }
  }
  throw new ModelgateError('E_PUSH_RACE', `${remote}/${branch} kept moving: gave up after ${maxAttempts} attempts; run the command again`, ExitCode.service);
}

/**
 * Brings the checked-out branch to `commit` when it is a fast-forward from where it was.
 * Without a push this must succeed (the commit exists nowhere else); after a push a local
 * branch that diverged is left alone and reported.
 */
async function moveWorkTree(repo: GitRepo, commit: string, required: boolean): Promise<boolean> {
  const head = await repo.resolve('HEAD');
  if (head === undefined) {
    // An unborn branch (a registry without commits): point it at the new commit and check it out.
    const branch = (await repo.run(['symbolic-ref', '--quiet', 'HEAD'], { okCodes: [1] })).stdout.trim() || 'refs/heads/main';
    await repo.run(['update-ref', branch, commit]);
    await repo.run(['reset', '--quiet', '--keep', commit]).catch(() => {});
    return true;
  }
  const ff = await repo.run(['merge-base', '--is-ancestor', head, commit], { okCodes: [1] });
  if (ff.code !== 0) {
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
