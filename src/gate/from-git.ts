import type { GitRepo } from '../git/repo.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { GitTreeSource } from '../registry/source.js';
import { GitStageHistory } from './history.js';
import { MergedSource } from './merged-source.js';
import type { ChangedFile } from './types.js';

export interface GitGateSides {
  base: RegistrySnapshot;
  head: RegistrySnapshot;
  changedFiles: ChangedFile[];
  history: GitStageHistory;
  /** False when the head does not contain the base commit (the branch is behind). */
  upToDate: boolean;
}

/**
 * Reads both sides of a pull request from local git objects, nothing checked out: the base
 * commit (trusted), the head's changes since the merge base (data), and the merged view the
 * gate judges. `prefix` is the registry's folder inside the repository.
 */
export async function gateSidesFromGit(repo: GitRepo, baseSha: string, headSha: string, prefix = ''): Promise<GitGateSides> {
  const mergeBase = (await repo.out(['merge-base', baseSha, headSha])).trim();
  const inPrefix = (p: string) => !prefix || p.startsWith(`${prefix}/`);
  const strip = (p: string) => (prefix ? p.slice(prefix.length + 1) : p);
  const changedFiles = (await repo.changedFiles(mergeBase, headSha)).filter((f) => inPrefix(f.path)).map((f) => ({ status: f.status, path: strip(f.path) }));
  const baseSource = new GitTreeSource(repo, baseSha, prefix);
  const headSource = new GitTreeSource(repo, headSha, prefix);
  return {
    base: new RegistrySnapshot(baseSource),
    head: new RegistrySnapshot(new MergedSource(baseSource, headSource, changedFiles.map((f) => f.path))),
    changedFiles,
    history: new GitStageHistory(repo, baseSha, prefix),
    upToDate: mergeBase === baseSha,
  };
}
