import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { GitRepo } from '../git/repo.js';
import { cacheKey, sameStat, stampHolds, writeStamp } from './cache-file.js';
import { isModelName, MODELS_DIR, parseManifestPath } from './layout.js';

/**
 * The untracked files under `scope` (`git ls-files -o --exclude-standard`, relative to the
 * registry folder `root`), without running git when a stamp proves there is no untracked
 * version file: a catalog read of a clean work tree waits on this listing otherwise (it reads
 * every folder of the registry).
 *
 * A version file sits at `models/<model>/versions/<n>.yaml`, so one can only appear by changing
 * `models/`, a model's folder or its versions folder (each such folder's mtime and ctime change
 * when an entry is added, removed or renamed), or by leaving the index (`git rm --cached`: the
 * index file is rewritten). When git found no untracked version file, ignored ones included (so
 * that a changed ignore rule cannot reveal one), the stats of the index and of those folders are
 * stamped (cache-file.ts: sealed under the catalog's key, and only once they are old enough that
 * a later change alters them); while they all stay the same, there is still none. Only for the
 * whole registry: one model's folder is a small listing for git.
 */
export async function untrackedFiles(repo: GitRepo, root: string, gitDir: string, scope: string, index: BigIntStats | undefined): Promise<string[]> {
  const stamp = join(gitDir, 'modelgate', 'untracked.checked');
  const key = scope === MODELS_DIR && index ? cacheKey(join(gitDir, 'modelgate')) : undefined;
  const before = key && folders(root);
  if (key && before && stampHolds(stamp, before.label, key, [index!, ...before.stats])) return [];
  if (!key || !before) return repo.untrackedFiles(scope);
  const all = await repo.untrackedFiles(scope, { withIgnored: true });
  if (all.some((p) => parseManifestPath(p)?.kind === 'ModelVersion')) return repo.untrackedFiles(scope);
  // None at all: the same answer as without ignored files (the catalog keeps version files only).
  const after = folders(root);
  if (after?.label === before.label && after.stats.every((s, i) => sameStat(s, before.stats[i]!)))
    writeStamp(stamp, before.label, key, [index!, ...before.stats]);
  return all;
}

const FORMAT = 'modelgate-untracked 1';

/**
 * The folders a version file could appear in, with their stats: `models/`, each model's folder
 * and its versions folder (lstat: git does not follow a link to a folder). Undefined when a
 * folder under models/ is not named like a model (the stamp's label names them all), or models/ is no folder.
 */
function folders(root: string): { label: string; stats: BigIntStats[] } | undefined {
  try {
    const top = lstatSync(join(root, MODELS_DIR), { bigint: true });
    if (!top.isDirectory()) return undefined;
    const stats = [top];
    const names: string[] = [];
    for (const name of readdirSync(join(root, MODELS_DIR)).sort()) {
      const dir = lstatSync(join(root, MODELS_DIR, name), { bigint: true, throwIfNoEntry: false });
      if (!dir?.isDirectory()) continue;
      if (!isModelName(name)) return undefined;
      const versions = lstatSync(join(root, MODELS_DIR, name, 'versions'), { bigint: true, throwIfNoEntry: false });
      stats.push(dir);
      if (versions) stats.push(versions);
      names.push(versions ? `${name}/versions` : name);
    }
    return { label: `${FORMAT} ${names.join(' ')}`, stats };
  } catch {
    return undefined;
  }
}
