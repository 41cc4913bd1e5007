import { emit, parseCommand, type Command, type CommandContext } from '../cli/context.js';
import { applyToWorktree, openRepairPullRequest, syncAndPush, type SyncPushResult } from '../deploy/apply.js';
import { readValidPinInput } from '../deploy/input.js';
import { CommitTreeSource, registryPrefix } from '../registry/source.js';
import { describeChange, formatDiff, renderPins, type SyncPlan } from '../deploy/plan.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { GitRepo } from '../git/repo.js';
import { failedDeliveries } from '../notify/webhooks.js';
import { openRegistry, RegistrySnapshot } from '../registry/snapshot.js';
import { catalogFacts } from '../registry/catalog.js';
import { renumberOvertaken } from '../promote/renumber.js';

/**
 * `modelgate sync`: derive the deploy pins from the registry and write `deploy/<env>/`.
 * `--check` exits 1 with the diff when they are out of date, `--dry-run` prints what it would
 * write, `--push` commits as modelgate[bot] on the remote branch's head and pushes.
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('sync', ctx.argv);
  if (positionals.length > 0) throw misuse(`sync takes no arguments (got ${positionals.join(' ')})`);
  const modes = [values.check, values['dry-run'], values.push, values.pr, values.renumber].filter(Boolean).length;
  if (modes > 1) throw misuse('--check, --dry-run, --pr, --push and --renumber exclude each other');
  const remoteMode = values.push || values.pr || values.renumber;
  if (remoteMode && values['registry-ref']) throw misuse('--push, --pr and --renumber read the remote branch head; --registry-ref does not apply');
  if (!remoteMode && (values.remote || values.branch)) throw misuse('--remote and --branch go with --push, --pr or --renumber');

  const { root, repo, snapshot } = openRegistry(ctx);
  if (values.push) return push(ctx, root, values.remote ?? 'origin', values.branch ?? 'main');
  if (values.renumber) return renumber(ctx, repo, snapshot, values.remote ?? 'origin', values.branch ?? 'main');
  if (values.pr) {
    const git = new GitRepo(root);
    const result = await openRepairPullRequest({
      repo: git,
      registryPath: await registryPrefix(git),
      env: ctx.env,
      remote: values.remote ?? 'origin',
      branch: values.branch ?? 'main',
    });
    emit(ctx, result, () =>
      result.status === 'in-sync'
        ? `deploy pins are in sync at ${result.head.slice(0, 12)}; no repair pull request needed`
        : `${summary(result)}repair pull request #${result.pullRequest!.number} ${result.status}: ${result.pullRequest!.url}`,
    );
    return ExitCode.ok;
  }

  let source = snapshot;
  if (values['registry-ref']) {
    const rev = values['registry-ref'];
    const commit = await repo.resolve(rev);
    if (!commit) throw new ModelgateError('E_NOT_FOUND', `--registry-ref ${rev}: no such commit`, ExitCode.content);
    const prefix = await registryPrefix(repo);
    const top = await repo.topLevel();
    source = new RegistrySnapshot(new CommitTreeSource(new GitRepo(top), commit, prefix));
  }
  // The work tree has a catalog of its versions; a commit (--registry-ref) is read in full.
  const catalog = source === snapshot ? (stages: ReadonlySet<string>) => catalogFacts(root, stages) : undefined;
  const plan = renderPins(await readValidPinInput(source, { catalog }));
  const inSync = plan.files.length === 0;

  if (values.check) {
    const diff = formatDiff(plan);
    emit(ctx, { inSync, changes: plan.changes, files: plan.files.map((f) => f.path), diff }, () => (inSync ? 'deploy pins are in sync' : diff + summary(plan)));
    if (!inSync && !ctx.json) ctx.stderr(`modelgate: ${plan.files.length} deploy file(s) out of date; run modelgate sync\n`);
    return inSync ? ExitCode.ok : ExitCode.content;
  }
  if (values['dry-run']) {
    emit(ctx, { dryRun: true, inSync, changes: plan.changes, files: plan.files.map((f) => f.path), diff: formatDiff(plan) }, () =>
      inSync ? 'deploy pins are in sync; nothing to write' : `${formatDiff(plan)}${summary(plan)}would write ${plan.files.length} file(s)`,
    );
    return ExitCode.ok;
  }
  await applyToWorktree(root, plan);
  emit(ctx, { inSync, changes: plan.changes, files: plan.files.map((f) => f.path) }, () =>
    inSync ? 'deploy pins are in sync' : `${summary(plan)}wrote ${plan.files.length} file(s)`,
  );
  return ExitCode.ok;
};

/**
 * `--renumber`: the open registration pull requests whose number the remote branch took first
 * get a new pull request at the next free number (src/promote/renumber.ts), for registries
 * without the Action. Exit 1 when one could not be re-numbered.
 */
async function renumber(ctx: CommandContext, repo: GitRepo, snapshot: RegistrySnapshot, remote: string, branch: string): Promise<number> {
  if (!(ctx.env.GITHUB_TOKEN || ctx.env.GH_TOKEN)) throw usageError('--renumber needs a GitHub token: set GITHUB_TOKEN (or GH_TOKEN)');
  const repository = (await snapshot.config()).github?.repository;
  if (!repository) throw new ModelgateError('E_NO_GITHUB', '--renumber needs the GitHub repository: set github.repository in modelgate.yaml', ExitCode.content);
  const top = await repo.topLevel();
  const git = top === repo.dir ? repo : new GitRepo(top);
  const who = (await git.identity())?.name ?? ctx.env.USER ?? 'unknown';
  const renumbered = await renumberOvertaken({
    repo: git,
    prefix: await registryPrefix(git),
    env: ctx.env,
    repository,
    by: `modelgate sync --renumber (run by ${who})`,
    remote,
    baseBranch: branch,
  });
  emit(ctx, { renumbered }, () =>
    renumbered.length
      ? renumbered
          .map((r) =>
            r.status === 'failed'
              ? `#${r.from.pullRequest} ${r.model}@${r.from.version}: not re-numbered: ${r.reason}`
              : `#${r.from.pullRequest} ${r.model}@${r.from.version} → #${r.to!.pullRequest} ${r.model}@${r.to!.version}: ${r.to!.url}`,
          )
          .join('\n')
      : `no open registration pull request holds a number ${branch} took`,
  );
  return renumbered.some((r) => r.status === 'failed') ? ExitCode.content : ExitCode.ok;
}

function summary(plan: Pick<SyncPlan, 'changes'>): string {
  return plan.changes.map((c) => `  ${describeChange(c)}\n`).join('');
}

async function push(ctx: CommandContext, root: string, remote: string, branch: string): Promise<number> {
  const repo = new GitRepo(root);
  const result = await syncAndPush({ repo, registryPath: await registryPrefix(repo), remote, branch, notify: { env: ctx.env } });
  const fastForwarded = result.commit ? await fastForwardCheckout(repo, branch, result.commit) : false;
  emit(ctx, { ...result, fastForwarded }, () => pushReport(result));
  for (const d of failedDeliveries(result.deliveries)) ctx.stderr(`modelgate: warning: ${d}\n`);
  return ExitCode.ok;
}

/** Moves the local branch onto the sync commit when it is checked out and has no diverging work. */
async function fastForwardCheckout(repo: GitRepo, branch: string, commit: string): Promise<boolean> {
  if ((await repo.currentBranch()) !== branch) return false;
  try {
    await repo.fastForward(commit);
    return true;
  } catch {
    return false;
  }
}

export function pushReport(result: SyncPushResult): string {
  const lines: string[] = [];
  if (result.status === 'in-sync') lines.push(`deploy pins are in sync at ${result.head.slice(0, 12)}; nothing to commit`);
  else if (result.status === 'superseded') lines.push(`another sync already brought ${result.head.slice(0, 12)} in sync; nothing to commit`);
  else {
    lines.push(`pushed ${result.commit!.slice(0, 12)} (attempt ${result.attempts}):`);
    for (const c of result.changes) lines.push(`  ${describeChange(c)}`);
  }
  const sent = result.deliveries.filter((d) => d.ok).length;
  if (result.deliveries.length > 0) lines.push(`webhooks: ${sent}/${result.deliveries.length} delivered`);
  return lines.join('\n');
}
