import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { GitRepo } from '../git/repo.js';

export interface CodeLineage {
  repository?: string;
  commit: string;
  dirty?: boolean;
}

/**
 * A remote URL fit for a manifest: credentials dropped (not masked: a manifest is public
 * within the organisation), scp-style `git@host:path` turned into `https://host/path`, no `.git`.
 */
export function publicRepositoryUrl(url: string): string {
  const scp = /^[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):(?!\/\/)(.+)$/.exec(url);
  let out = scp ? `https://${scp[1]}/${scp[2]}` : url;
  out = out.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1');
  if (/^ssh:\/\/[^/]+\//.test(out)) out = out.replace(/^ssh:\/\/([^/:]+)(?::\d+)?\//, 'https://$1/');
  return out.replace(/\.git$/, '').replace(/(?<!\/)\/+$/, '');
}

/** `--code <repository>@<40-hex commit>`. */
export function parseCodeSpec(text: string): CodeLineage {
  const at = text.lastIndexOf('@');
  const repo = text.slice(0, at);
  const commit = text.slice(at + 1);
  if (at <= 0 || !/^[0-9a-f]{40}$/.test(commit)) throw usageError(`--code ${JSON.stringify(text)}: expected auto or <repository>@<40-hex commit>`);
  return { repository: publicRepositoryUrl(repo), commit };
}

/**
 * `--code auto`: the git repository the command runs in (the training code, not the registry):
 * origin's URL, the HEAD commit and whether tracked files have uncommitted changes.
 */
export async function codeFromWorkingDirectory(cwd: string): Promise<CodeLineage> {
  const repo = new GitRepo(cwd);
  if (!(await repo.location())) throw new ModelgateError('E_NO_CODE_REPO', `--code auto: ${cwd} is not inside a git repository`, ExitCode.usage);
  const commit = await repo.resolve('HEAD');
  if (!commit) throw new ModelgateError('E_NO_CODE_REPO', `--code auto: the repository at ${cwd} has no commit yet`, ExitCode.usage);
  const remote = await repo.remoteUrl('origin');
  const dirty = await repo.hasTrackedChanges();
  return { ...(remote ? { repository: publicRepositoryUrl(remote) } : {}), commit, ...(dirty ? { dirty: true } : {}) };
}
