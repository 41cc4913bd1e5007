import { ExitCode, ModelgateError } from '../errors.js';
import type { GitRepo } from '../git/repo.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { GitTreeSource } from '../registry/source.js';
import { GitStageHistory } from './history.js';
import type { ChangedFile } from './types.js';

export interface GitGateSides {
  base: RegistrySnapshot;
  /** The registry as merging would leave it: the tree `git merge-tree` computes, as GitHub merges. */
  head: RegistrySnapshot;
  /** The diff from the base commit to the merged tree; paths outside the registry folder start with `/`. */
  changedFiles: ChangedFile[];
  history: GitStageHistory;
  /** The merged tree's id: what a passing decision is about. */
  mergedTree: string;
  /** False when the head does not contain the base commit (the branch is behind). */
  upToDate: boolean;
}

/**
 * Reads both sides of a pull request from local git objects, nothing checked out: the base
 * commit (trusted) and the tree merging the head into it would produce (data). The merge is
 * git's own (`merge-tree --write-tree`, the merge GitHub performs), so a criss-cross history or
 * a branch behind its base is judged by what merging really yields; a conflict is an error.
 * `prefix` is the registry's folder inside the repository.
 */
export async function gateSidesFromGit(repo: GitRepo, baseSha: string, headSha: string, prefix = ''): Promise<GitGateSides> {
  // The ancestry question runs beside the merge and the diff: three git processes at once.
  const ancestry = repo.isAncestor(baseSha, headSha);
  ancestry.catch(() => {}); // awaited below; a failure of the merge first must not leave it unhandled
  const mergedTree = await mergeTree(repo, baseSha, headSha);
  const changedFiles = await changedSince(repo, baseSha, mergedTree, prefix);
  const upToDate = await ancestry;
  return {
    base: new RegistrySnapshot(new GitTreeSource(repo, baseSha, prefix)),
    head: new RegistrySnapshot(new GitTreeSource(repo, mergedTree, prefix)),
    changedFiles,
    history: new GitStageHistory(repo, baseSha, prefix),
    mergedTree,
    upToDate,
  };
}

/** The tree id of base merged with head; E_MERGE_CONFLICT naming the files when they conflict. */
export async function mergeTree(repo: GitRepo, baseSha: string, headSha: string): Promise<string> {
  const merged = await repo.mergeTrees(baseSha, headSha);
  if ('tree' in merged) return merged.tree;
  const files = merged.conflicts;
  throw new ModelgateError(
    'E_MERGE_CONFLICT',
    `the pull request does not merge cleanly into its base: ${files.length ? `conflicts in ${files.slice(0, 10).join(', ')}` : 'conflict'}; rebase or merge the base branch into it`,
    ExitCode.content,
    { files },
  );
}

async function changedSince(repo: GitRepo, baseSha: string, tree: string, prefix: string): Promise<ChangedFile[]> {
  return (await repo.changedFiles(baseSha, tree)).map(({ status, path: full }) => ({
    status,
    path: !prefix ? full : full.startsWith(`${prefix}/`) ? full.slice(prefix.length + 1) : `/${full}`,
  }));
}
