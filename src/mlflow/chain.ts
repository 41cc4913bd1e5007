import { ExitCode, ModelgateError } from '../errors.js';
import { backoff, type GitRepo, type Identity } from '../git/repo.js';
import { lostRace, repositoryFiles, type ApplyMode } from '../promote/apply-change.js';
import { completeChange } from '../promote/pins.js';
import type { ChangePlan } from '../promote/plan.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { CatalogTreeSource, GitTreeSource } from '../registry/source.js';
import { MLFLOW_VERSION_ANNOTATION } from './records.js';

/** One MLflow version to register: planned on the registry its commit sits on. */
export interface ChainedRegistration {
  /** `<name>/<version>` (the `mlflow/model-version` annotation it writes). */
  key: string;
  what: string;
  /** The original creation time and user, as the commit's time and author. */
  at: string;
  author: Identity;
  plan: (snapshot: RegistrySnapshot) => Promise<ChangePlan>;
}

/** A registration that landed. */
export interface LandedRegistration {
  what: string;
  change: string;
  commit: string;
}

/** Attempts before a lost race is given up with E_PUSH_RACE. */
const MAX_ATTEMPTS = 8;

/**
 * `import mlflow`'s registrations as a chain of commits built locally (one per version, each on
 * the one before, with a private index: no fetch, no push, no checkout in between), landed by one
 * push to the remote's main (or one fast-forward of HEAD) per batch. A lost race re-plans the
 * batch on what won, leaving out the versions the winner carried over already (found by their
 * `mlflow/model-version` annotation), so a concurrent or killed run never duplicates a version.
 */
export class RegistrationChain {
  private batch: Array<{ reg: ChainedRegistration; commit: string; summary: string; version: number }> = [];
  /** The commit the batch sits on, and the batch's last commit. */
  private landed: string;
  private tip: string;

  constructor(
    private readonly repo: GitRepo,
    private readonly prefix: string,
    private readonly mode: ApplyMode,
    base: string,
    /** `<name>/<version>` → modelgate version of every version carried over; landed ones are added. */
    private readonly done: Map<string, number>,
  ) {
    this.landed = base;
    this.tip = base;
  }

  /** Registrations committed and not landed yet. */
  get pending(): number {
    return this.batch.length;
  }

  /** Commits one registration on the chain's tip. */
  async add(reg: ChainedRegistration): Promise<void> {
    const snapshot = new RegistrySnapshot(new CatalogTreeSource(this.repo, this.tip, this.prefix));
    const change = await completeChange(snapshot.source, await reg.plan(snapshot));
    this.tip = await this.repo.commitChanges({
      parent: this.tip,
      files: repositoryFiles(change, this.prefix),
      message: change.message,
      author: reg.author,
      date: reg.at,
    });
    this.batch.push({ reg, commit: this.tip, summary: change.summary, version: change.versions[0]!.version });
  }

  /**
   * Lands the batch: one push of its last commit (or one fast-forward of HEAD); answers what
   * landed. Commits the target held already (another run built the very same ones: same parent,
   * tree, author and time) are not reported as this run's.
   */
  async land(): Promise<LandedRegistration[]> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && this.batch.length; attempt++) {
      if (attempt > 1) await backoff(attempt - 1);
      const now = await this.current();
      const moved = now !== this.landed;
      // Something else landed meanwhile and the batch does not build on it: the batch goes round again, on it.
      if (moved && !(await this.repo.isAncestor(now, this.tip))) await this.replan(now);
      if (!this.batch.length) break;
      if (this.mode === 'local') await this.repo.fastForward(this.tip);
      else {
        if ((await this.repo.push('origin', this.tip, 'main')) === 'rejected') continue;
        const head = await this.repo.resolve('HEAD');
        // The work tree follows when it can; a local branch that diverged is left alone.
        if (head && (await this.repo.isAncestor(head, this.tip))) await this.repo.fastForward(this.tip).catch(() => undefined);
      }
      const landed: LandedRegistration[] = [];
      for (const { reg, commit, summary, version } of this.batch) {
        this.done.set(reg.key, version);
        if (!moved || this.landed === now || !(await this.repo.isAncestor(commit, now))) landed.push({ what: reg.what, change: summary, commit });
      }
      this.batch = [];
      this.landed = this.tip;
      return landed;
    }
    if (this.batch.length) throw lostRace(this.mode === 'local' ? 'HEAD' : 'origin/main', MAX_ATTEMPTS);
    return [];
  }

  /** Where the batch must land now: HEAD, or the remote's main. */
  private async current(): Promise<string> {
    const at = (this.mode === 'local' ? undefined : await this.repo.fetchBranch('origin', 'main')) ?? (await this.repo.resolve('HEAD'));
    if (!at) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
    return at;
  }

  /** The batch again on `base`, without what `base` carried over already. */
  private async replan(base: string): Promise<void> {
    const there = await mlflowImported(new RegistrySnapshot(new GitTreeSource(this.repo, base, this.prefix)));
    const regs = this.batch.map((b) => b.reg);
    this.batch = [];
    this.landed = base;
    this.tip = base;
    for (const reg of regs) {
      const n = there.get(reg.key);
      if (n === undefined) await this.add(reg);
      else this.done.set(reg.key, n);
    }
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
