import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const ancestry = repo.run(['merge-base', '--is-ancestor', baseSha, headSha], { okCodes: [1] });
  ancestry.catch(() => {}); // awaited below; a failure of the merge first must not leave it unhandled
  const mergedTree = await mergeTree(repo, baseSha, headSha);
  const changedFiles = await changedSince(repo, baseSha, mergedTree, prefix);
  const isAncestor = await ancestry;
  return {
    base: new RegistrySnapshot(new GitTreeSource(repo, baseSha, prefix)),
    head: new RegistrySnapshot(new GitTreeSource(repo, mergedTree, prefix)),
    changedFiles,
    history: new GitStageHistory(repo, baseSha, prefix),
    mergedTree,
    upToDate: isAncestor.code === 0,
  };
}

/** The tree id of base merged with head; E_MERGE_CONFLICT naming the files when they conflict. */
export async function mergeTree(repo: GitRepo, baseSha: string, headSha: string): Promise<string> {
  const r = await repo.run(['merge-tree', '--write-tree', '--name-only', '--no-messages', baseSha, headSha], { okCodes: [1] });
  const [tree, ...conflicted] = r.stdout.split('\n').filter(Boolean);
  if (r.code === 1) {
    const files = [...new Set(conflicted)];
    throw new ModelgateError(
      'E_MERGE_CONFLICT',
      `the pull request does not merge cleanly into its base: ${files.length ? `conflicts in ${files.slice(0, 10).join(', ')}` : 'conflict'}; rebase or merge the base branch into it`,
      ExitCode.content,
      { files },
    );
  }
  if (!tree || !/^[0-9a-f]{40,64}$/.test(tree))
    throw new ModelgateError('E_GIT', 'git merge-tree gave no tree id (git 2.38 or newer is needed)', ExitCode.service);
  return tree;
}

async function changedSince(repo: GitRepo, baseSha: string, tree: string, prefix: string): Promise<ChangedFile[]> {
  // Two trees, no work tree: git would still load the checkout's index (100,000 entries, most
  // of this command's time on a big registry), so it is pointed at an index that does not exist.
  const noIndex = { GIT_INDEX_FILE: join(tmpdir(), `modelgate-no-index-${process.pid}`) };
  const out = await repo.out(['diff-tree', '-r', '-z', '--no-renames', '--name-status', baseSha, tree], { env: noIndex });
  const parts = out.split('\0');
  const files: ChangedFile[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const status = parts[i]!;
    const full = parts[i + 1]!;
    const path = !prefix ? full : full.startsWith(`${prefix}/`) ? full.slice(prefix.length + 1) : `/${full}`;
    files.push({ status, path });
  }
  return files;
}
