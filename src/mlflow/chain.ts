import { ExitCode, ModelgateError } from '../errors.js';
import { backoff, type GitRepo, type Identity } from '../git/repo.js';
import { lostRace, repositoryFiles } from '../promote/apply-change.js';
import { completeChange } from '../promote/pins.js';
import type { ChangePlan } from '../promote/plan.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { CatalogTreeSource, GitTreeSource } from '../registry/source.js';
import { MLFLOW_VERSION_ANNOTATION } from './records.js';

/** One change of an import (a version's registration, a stage or alias move): planned on the registry its commit sits on. */
export interface ChainedChange {
  /** `<name>/<version>` (the `mlflow/model-version` annotation a registration writes); absent for a move. */
  key?: string;
  what: string;
  /** The commit's time (a registration: MLflow's creation time); default now. */
  at?: string;
  /** The commit's author (a registration: its MLflow user) and committer (default the author; git's own when both are absent). */
  author?: Identity;
  committer?: Identity;
  /** The change on `snapshot`; undefined when there is nothing to do there (a move already made). */
  plan: (snapshot: RegistrySnapshot) => Promise<ChangePlan | undefined>;
}

/** A change that landed. */
export interface LandedChange {
  what: string;
  change: string;
  commit: string;
}

/**
 * Where a chain lands: the checked-out branch (a fast-forward), the remote's main (a push), or
 * the import pull request's branch (a push under a lease: created when absent, replaced when the
 * chain does not build on it).
 */
export interface ChainTarget {
  /** `HEAD`, `origin/main`, `origin/<branch>`: for messages. */
  readonly name: string;
  /** The commit the target holds now; undefined for a branch not pushed yet. */
  current(): Promise<string | undefined>;
  /**
   * Moves the target from `held` (what `current` answered) to `tip`: `rejected` when it moved
   * meanwhile, `already` when it held `tip` already (another run landed the very same commits).
   */
  move(held: string | undefined, tip: string): Promise<'moved' | 'rejected' | 'already'>;
}

/** The checked-out branch, fast-forwarded. */
export const headTarget = (repo: GitRepo): ChainTarget => ({
  name: 'HEAD',
  current: async () => requireCommit(await repo.resolve('HEAD')),
  move: async (_held, tip) => (await repo.fastForward(tip), 'moved'),
});

/** The remote's main, pushed without force; the work tree follows when it can. */
export const mainTarget = (repo: GitRepo): ChainTarget => ({
  name: 'origin/main',
  current: async () => requireCommit((await repo.fetchBranch('origin', 'main')) ?? (await repo.resolve('HEAD'))),
  move: async (_held, tip) => {
    const pushed = await repo.push('origin', tip, 'main');
    if (pushed === 'rejected') return 'rejected';
    const head = await repo.resolve('HEAD');
    // A local branch that diverged is left alone.
    if (head && (await repo.isAncestor(head, tip))) await repo.fastForward(tip).catch(() => undefined);
    return pushed === 'up-to-date' ? 'already' : 'moved';
  },
});

/**
 * The remote's `branch`, moved under a lease: claimed when absent (a branch someone else created
 * meanwhile sends the batch round again, on it), else moved only while it still holds `held`.
 */
export const branchTarget = (repo: GitRepo, branch: string): ChainTarget => ({
  name: `origin/${branch}`,
  current: () => repo.fetchBranch('origin', branch),
  move: async (held, tip) =>
    (await (held === undefined ? repo.pushNewBranch('origin', tip, branch) : repo.pushReplacing('origin', tip, branch, held))) ? 'moved' : 'rejected',
});

const requireCommit = (commit: string | undefined): string => {
  if (!commit) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
  return commit;
};

/** Attempts before a lost race is given up with E_PUSH_RACE. */
const MAX_ATTEMPTS = 8;

/**
 * `import mlflow`'s changes as a chain of commits built locally (one per version, then one per
 * stage or alias move, each on the one before, with a private index: no fetch, no push, no
 * checkout in between), landed on the target by one push (or one fast-forward of HEAD) per
 * batch. A lost race re-plans the batch on what won, leaving out the versions the winner carried
 * over already (found by their `mlflow/model-version` annotation) and the moves it made, so a
 * concurrent or killed run never duplicates a version.
 */
export class RegistrationChain {
  private batch: Array<{ entry: ChainedChange; commit: string; summary: string; version: number }> = [];
  /** What the target held when the batch was started (the lease), and the batch's last commit. */
  private held: string | undefined;
  private last: string;

  constructor(
    private readonly repo: GitRepo,
    private readonly prefix: string,
    private readonly target: ChainTarget,
    /** The commit the chain starts on, and what the target holds (a branch replaced or created: not `base`). */
    start: { base: string; held: string | undefined },
    /** `<name>/<version>` → modelgate version of every version carried over; landed ones are added. */
    private readonly done: Map<string, number>,
  ) {
    this.held = start.held;
    this.last = start.base;
  }

  /** Changes committed and not landed yet. */
  get pending(): number {
    return this.batch.length;
  }

  /** The chain's last commit. */
  get tip(): string {
    return this.last;
  }

  /**
   * Commits one change on the chain's tip; false when it plans nothing there, or when it is a
   * registration the chain's base carries over already (another run landed it, found by `replan`).
   */
  async add(entry: ChainedChange): Promise<boolean> {
    if (entry.key !== undefined && this.done.has(entry.key)) return false;
    const snapshot = new RegistrySnapshot(new CatalogTreeSource(this.repo, this.last, this.prefix));
    const planned = await entry.plan(snapshot);
    if (!planned) return false;
    const change = await completeChange(snapshot.source, planned);
    if (!change.files.length) return false;
    this.last = await this.repo.commitChanges({
      parent: this.last,
      files: repositoryFiles(change, this.prefix),
      message: change.message,
      ...(entry.author ? { author: entry.author } : {}),
      ...(entry.committer ? { committer: entry.committer } : {}),
      ...(entry.at ? { date: entry.at } : {}),
    });
    this.batch.push({ entry, commit: this.last, summary: change.summary, version: change.versions[0]?.version ?? 0 });
    return true;
  }

  /**
   * Lands the batch: one move of the target to its last commit; answers what landed. Commits the
   * target held already (another run built the very same ones: same parent, tree, author and
   * time, and landed them first, even between this run's read and its push) are not reported as
   * this run's.
   */
  async land(): Promise<LandedChange[]> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && this.batch.length; attempt++) {
      if (attempt > 1) await backoff(attempt - 1);
      const now = await this.target.current();
      const moved = now !== this.held;
      if (moved) {
        // The branch this run was landing on is gone: what landed before is not there any more.
        if (now === undefined)
          throw new ModelgateError('E_BRANCH_DIVERGED', `${this.target.name} was deleted while the import ran; run the import again`, ExitCode.service);
        // Something else landed meanwhile and the batch does not build on it: the batch goes round again, on it.
        if (!(await this.repo.isAncestor(now, this.last))) await this.replan(now);
        this.held = now;
      }
      if (!this.batch.length) break;
      const result = await this.target.move(this.held, this.last);
      if (result === 'rejected') continue;
      const landed: LandedChange[] = [];
      for (const { entry, commit, summary, version } of this.batch) {
        if (entry.key) this.done.set(entry.key, version);
        if (result === 'moved' && (!moved || !(await this.repo.isAncestor(commit, now!)))) landed.push({ what: entry.what, change: summary, commit });
      }
      this.batch = [];
      this.held = this.last;
      return landed;
    }
    if (this.batch.length) throw lostRace(this.target.name, MAX_ATTEMPTS);
    return [];
  }

  /**
   * The batch again on `base`, without what `base` carried over already. Everything `base` carried
   * over counts as done, so a version still queued that another run landed meanwhile is not added
   * a second time later (`add`).
   */
  private async replan(base: string): Promise<void> {
    const there = await mlflowImported(new RegistrySnapshot(new GitTreeSource(this.repo, base, this.prefix)));
    for (const [key, n] of there) this.done.set(key, n);
    const entries = this.batch.map((b) => b.entry);
    this.batch = [];
    this.last = base;
    for (const entry of entries) await this.add(entry);
  }
}

/** `<name>/<version>` → modelgate version, for every version an earlier `import mlflow` wrote. */
export async function mlflowImported(snapshot: RegistrySnapshot): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const model of await snapshot.modelNames()) {
    for (const n of await snapshot.versionNumbers(model)) {
      const key = (await snapshot.version(model, n))?.annotations?.[MLFLOW_VERSION_ANNOTATION];
      if (key !== undefined) out.set(key, n);
    }
  }
  return out;
}

/**
 * `work(items[i])` for each i, started up to `ahead` items before it is asked for: `at(i)`
 * answers item i's result (asked in order), while the next ones are already under way.
 */
export function prefetched<T, R>(items: readonly T[], ahead: number, work: (item: T) => Promise<R>): (i: number) => Promise<R> {
  const started: Array<Promise<R>> = [];
  return (i) => {
    for (let j = started.length; j < Math.min(items.length, i + ahead + 1); j++) {
      const p = work(items[j]!);
      // A failure is thrown where its item is asked for; one never asked for (the import stopped first) is dropped.
      p.catch(() => undefined);
      started.push(p);
    }
    return started[i]!;
  };
}
