import { emit, type CommandContext } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { GitStageHistory } from '../gate/history.js';
import { openRegistry, RegistrySnapshot } from '../registry/snapshot.js';
import { GitTreeSource, registryPrefix } from '../registry/source.js';
import type { StageHistory } from '../gate/types.js';
import type { ChangePlan } from './plan.js';
import { submitChange, type SubmitMode } from './submit.js';

export interface ChangeFlags {
  pr?: boolean;
  push?: boolean;
  'dry-run'?: boolean;
}

export const CHANGE_FLAGS = {
  pr: { type: 'boolean' },
  push: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} as const;

/**
 * What promote, rollback, archive and annotate share: plan on the registry's current commit,
 * print the plan for `--dry-run`, otherwise commit locally, push to main, or open a PR.
 */
export async function runChange(
  ctx: CommandContext,
  flags: ChangeFlags,
  plan: (snapshot: RegistrySnapshot, history: StageHistory) => Promise<ChangePlan>,
): Promise<number> {
  if (flags.pr && flags.push) throw usageError('--pr and --push exclude each other');
  const { repo } = openRegistry(ctx);
  const prefix = await registryPrefix(repo, { requireGit: true });
  const mode: SubmitMode = flags.pr ? 'pr' : flags.push ? 'push' : 'local';
  if (flags['dry-run']) {
    const head = await repo.resolve('HEAD');
    if (!head) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
    const p = await plan(new RegistrySnapshot(new GitTreeSource(repo, head, prefix)), new GitStageHistory(repo, head, prefix));
    emit(ctx, { dryRun: true, mode, summary: p.summary, changes: p.changes, branch: mode === 'pr' ? p.branch : undefined, files: p.edits.map((e) => e.path) }, () =>
      [`would ${mode === 'pr' ? `push ${p.branch} and open a pull request` : mode === 'push' ? 'commit and push to main' : 'commit'}: ${p.summary}`, ...p.changes.map((c) => `  ${c}`)].join('\n'),
    );
    return ExitCode.ok;
  }
  const done = await submitChange({
    repo,
    prefix,
    mode,
    env: ctx.env,
    plan: (snapshot, commit) => plan(snapshot, new GitStageHistory(repo, commit, prefix)),
  });
  emit(
    ctx,
    { summary: done.plan.summary, changes: done.plan.changes, commit: done.commit, pushed: done.pushed, branch: mode === 'pr' ? done.plan.branch : undefined, pullRequest: done.pullRequest, gate: done.decision?.decision },
    () =>
      [
        `${done.plan.summary}${done.commit ? ` (${done.commit.slice(0, 12)}${mode === 'push' ? ', pushed' : ''})` : ''}`,
        ...done.plan.changes.map((c) => `  ${c}`),
        ...(done.pullRequest ? [`pull request #${done.pullRequest.number} ${done.pullRequest.created ? 'opened' : 'updated'}: ${done.pullRequest.url}`] : []),
      ].join('\n'),
  );
  return ExitCode.ok;
}
