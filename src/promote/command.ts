import { emit, type CommandContext } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { GitStageHistory } from '../gate/history.js';
import { openRegistry, RegistrySnapshot } from '../registry/snapshot.js';
import { CatalogTreeSource, registryPrefix } from '../registry/source.js';
import type { StageHistory } from '../gate/types.js';
import type { GitRepo } from '../git/repo.js';
import { applyChange, type Applied, type ApplyMode } from './apply-change.js';
import { changeDiff, type Change } from './change.js';
import type { ChangePlan } from './plan.js';
import { completeChange } from './pins.js';

export interface ChangeFlags {
  pr?: boolean;
  push?: boolean;
  'dry-run'?: boolean;
}

export const modeOf = (flags: ChangeFlags): ApplyMode => {
  if (flags.pr && flags.push) throw usageError('--pr and --push exclude each other');
  return flags.pr ? 'pr' : flags.push ? 'push' : 'local';
};

/** `--dry-run`: the unified diff of every file the change would write, text and JSON. */
function presentDryRun(ctx: CommandContext, mode: ApplyMode, change: Change, extra: Record<string, unknown> = {}): number {
  const diff = changeDiff(change);
  const files = change.files.map((f) => f.path);
  emit(
    ctx,
    { dryRun: true, mode, summary: change.summary, changes: change.changes, branch: mode === 'pr' ? change.branch : undefined, files, diff, ...extra },
    () =>
      [
        `would ${mode === 'pr' ? `push ${change.branch} and open a pull request` : mode === 'push' ? 'commit and push to main' : 'commit'}: ${change.summary}`,
        ...change.changes.map((c) => `  ${c}`),
        diff.trimEnd(),
      ].join('\n'),
  );
  return ExitCode.ok;
}

/** What a writing command prints after `applyChange`. */
function presentApplied(ctx: CommandContext, mode: ApplyMode, done: Applied, extra: Record<string, unknown> = {}): number {
  const { change } = done;
  emit(
    ctx,
    {
      summary: change.summary,
      changes: change.changes,
      files: change.files.map((f) => f.path),
      commit: done.commit,
      pushed: done.pushed,
      branch: mode === 'pr' ? change.branch : undefined,
      pullRequest: done.pullRequest,
      gate: done.decision?.decision,
      ...extra,
    },
    () =>
      [
        `${change.summary}${done.commit ? ` (${done.commit.slice(0, 12)}${mode === 'push' ? ', pushed' : ''})` : ''}`,
        ...change.changes.map((c) => `  ${c}`),
        ...(done.pullRequest ? [`pull request #${done.pullRequest.number} ${done.pullRequest.created ? 'opened' : 'updated'}: ${done.pullRequest.url}`] : []),
      ].join('\n'),
  );
  if (mode === 'push' && !done.checkedOut && !ctx.quiet)
    ctx.stderr(`modelgate: pushed ${done.commit?.slice(0, 12)}, but the local branch has diverged and was not updated\n`);
  return ExitCode.ok;
}

/**
 * A change's planner for `applyChange`: the manifest edits `plan` makes on the registry at the
 * base commit, with the pins they move. What the writing commands and serve's writes share.
 */
export function changePlanner(
  repo: GitRepo,
  prefix: string,
  plan: (snapshot: RegistrySnapshot, history: StageHistory) => Promise<ChangePlan>,
): (snapshot: RegistrySnapshot | undefined, base: string | undefined) => Promise<Change> {
  return async (snapshot, base) => {
    if (!snapshot || !base) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
    return completeChange(snapshot.source, await plan(snapshot, new GitStageHistory(repo, base, prefix)));
  };
}

/**
 * What promote, rollback, archive and annotate share: plan the manifest edits on the
 * registry's commit, add the pins they move, then present (`--dry-run`) or apply.
 */
export async function runChange(
  ctx: CommandContext,
  flags: ChangeFlags,
  plan: (snapshot: RegistrySnapshot, history: StageHistory) => Promise<ChangePlan>,
): Promise<number> {
  const mode = modeOf(flags);
  const { repo } = openRegistry(ctx);
  const prefix = await registryPrefix(repo, { requireGit: true });
  const complete = changePlanner(repo, prefix, plan);
  if (flags['dry-run']) {
    const head = await repo.resolve('HEAD');
    return presentDryRun(ctx, mode, await complete(head ? new RegistrySnapshot(new CatalogTreeSource(repo, head, prefix)) : undefined, head));
  }
  const done = await applyChange({ repo, prefix, mode, env: ctx.env, plan: (snapshot, base) => complete(snapshot, base) });
  return presentApplied(ctx, mode, done);
}
