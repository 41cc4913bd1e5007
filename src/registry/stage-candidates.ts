import { createHash } from 'node:crypto';
import { renameSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { dirname, join } from 'node:path';
import type { GitRepo } from '../git/repo.js';
import type { Stage } from '../manifest/types.js';
import { cacheKey, readRegularFile, sameStat, stampHolds, writeStamp } from './cache-file.js';
import { parseManifestPath } from './layout.js';

/**
 * What a stage query's textual prefilter (`git grep --cached` over the index: the files that may
 * hold the stage) found, kept for the next query over the same index. A `list --stage` of a
 * registry whose catalog knows only the versions a stage query parsed would otherwise run the
 * grep again at every call (it cannot tell the other files' stages).
 *
 * Kept as `.git/modelgate/candidates-<stage>`, the version paths one a line, and a stamp beside
 * it (cache-file.ts: sealed under the catalog's key) naming the file's digest, the stage, the
 * scope and the stat of the index file the grep read: the index is rewritten (a new file
 * renamed into place) at every change of its entries, so while its stat is the same its blobs
 * are, and so are the files the grep would find. Any change, or a stamp that does not hold,
 * and the grep runs again.
 */
const FORMAT = 'modelgate-stage-candidates 1';

/** The stat of the index git reads, or undefined when it is not the default one (GIT_INDEX_FILE) or absent. */
export function indexStat(gitDir: string): BigIntStats | undefined {
  if (process.env.GIT_INDEX_FILE) return undefined;
  try {
    return statSync(join(gitDir, 'index'), { bigint: true });
  } catch {
    return undefined;
  }
}

/** Whether two stats of the index name the same file, not written between them. */
export function sameIndex(a: BigIntStats | undefined, b: BigIntStats | undefined): boolean {
  return a !== undefined && b !== undefined && sameStat(a, b);
}

const files = (gitDir: string, stage: Stage) => {
  const list = join(gitDir, 'modelgate', `candidates-${stage}`);
  return { list, stamp: `${list}.checked` };
};

const label = (stage: Stage, scope: string, content: Buffer) => `${FORMAT} ${stage} ${scope} ${createHash('sha256').update(content).digest('hex')}`;

/** The candidates an earlier grep found for `stage` under `scope` in the index of stat `index`, or undefined. */
export function storedCandidates(gitDir: string, stage: Stage, scope: string, index: BigIntStats | undefined): Set<string> | undefined {
  if (!index) return undefined;
  const { list, stamp } = files(gitDir, stage);
  const key = cacheKey(dirname(list));
  const content = key && readRegularFile(list);
  if (!key || !content || !stampHolds(stamp, label(stage, scope, content), key, [index])) return undefined;
  return new Set(content.toString('utf8').split('\n').filter(Boolean));
}

/**
 * Keeps `paths` (the grep's answer for `stage` under `scope`) for the index of stat `index`,
 * which the grep read. Version files only: their names hold no newline. Best effort, and only
 * once the index is old enough that a later write changes its stat (writeStamp).
 */
function storeCandidates(gitDir: string, stage: Stage, scope: string, index: BigIntStats, paths: Iterable<string>): void {
  const { list, stamp } = files(gitDir, stage);
  const key = cacheKey(dirname(list));
  if (!key) return;
  const kept: string[] = [];
  for (const p of paths) if (parseManifestPath(p)?.kind === 'ModelVersion') kept.push(p);
  const content = Buffer.from(kept.map((p) => `${p}\n`).join(''), 'utf8');
  const tmp = `${list}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, content, { flag: 'wx' });
    renameSync(tmp, list);
  } catch {
    rmSync(tmp, { force: true });
    return;
  }
  writeStamp(stamp, label(stage, scope, content), key, [index]);
}

/**
 * The files of the index that may hold a stage (their blob contains its name or a backslash: see
 * layout.ts, mayHaveStage), decided path by path as `git grep` finds them (in index order, so a
 * reader of the index listing goes on while the grep reads further), or all at once from an
 * earlier grep over the same index. The grep's answer is kept for the next query (storeCandidates)
 * when the index did not change while it ran.
 */
export class StagePrefilter {
  private readonly found = new Set<string>();
  /** The last path found: every path up to it is decided. */
  private last = '';
  private done = false;
  private failure: Error | undefined;
  private waiting: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  private constructor() {}

  /** The candidates an earlier grep found (storedCandidates). */
  static of(paths: Iterable<string>): StagePrefilter {
    const p = new StagePrefilter();
    for (const path of paths) p.found.add(path);
    p.done = true;
    return p;
  }

  /** Starts the grep for `stage` under `scope` (relative to the repository's folder). */
  static grep(repo: GitRepo, gitDir: string, scope: string, stage: Stage): StagePrefilter {
    const p = new StagePrefilter();
    const index = indexStat(gitDir);
    void p.pump(repo.indexFilesContaining(scope, [stage, '\\'])).then((ok) => {
      if (ok && index && sameIndex(index, indexStat(gitDir))) storeCandidates(gitDir, stage, scope, index, p.found);
    });
    return p;
  }

  /**
   * Whether `path` may hold the stage, once the grep has decided it, else undefined. Paths compare
   * as git orders them: version paths are ASCII, where UTF-16 order is byte order. Throws the grep's failure.
   */
  decided(path: string): boolean | undefined {
    if (this.failure !== undefined) throw this.failure;
    return this.done || path <= this.last ? this.found.has(path) : undefined;
  }

  /** Whether `path` may hold the stage, waiting for the grep to decide it. */
  async has(path: string): Promise<boolean> {
    for (;;) {
      const known = this.decided(path);
      if (known !== undefined) return known;
      await (this.waiting ??= new Promise<void>((resolve) => (this.wake = resolve)));
    }
  }

  /** Takes the grep's paths as they come; whether it ended without failing. */
  private async pump(records: AsyncGenerator<string[]>): Promise<boolean> {
    try {
      for await (const paths of records) {
        for (const path of paths) this.found.add(path);
        this.last = paths.at(-1) ?? this.last;
        this.notify();
      }
      return true;
    } catch (e) {
      this.failure = e instanceof Error ? e : new Error(String(e));
      return false;
    } finally {
      this.done = true;
      this.notify();
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.waiting = this.wake = undefined;
    wake?.();
  }
}
