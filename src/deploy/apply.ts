import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { onCancel } from '../cancel.js';
import { ExitCode, ModelgateError } from '../errors.js';
import { BOT_IDENTITY, GitRepo } from '../git/repo.js';
import { applyChange } from '../promote/apply-change.js';
import { syncChange } from '../promote/change.js';
import { deliverEvents, failedDeliveries, pinEvents, pullRequestOf, type DeliveryOptions, type DeliveryReport } from '../notify/webhooks.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { CommitTreeSource } from '../registry/source.js';
import { readValidPinInput } from './input.js';
import { commitMessage, describeChange, formatDiff, renderPins, type PinChange, type SyncPlan } from './plan.js';

/** Writes a plan into a registry folder; deletions remove the file. */
export async function applyToWorktree(root: string, plan: Pick<SyncPlan, 'files'>): Promise<void> {
  for (const f of plan.files) {
    const full = join(root, f.path);
    if (f.after === null) {
      await rm(full, { force: true });
      continue;
    }
    await mkdir(dirname(full), { recursive: true });
    const tmp = `${full}.modelgate-${process.pid}.tmp`;
    const off = onCancel(() => rm(tmp, { force: true }));
    try {
      await writeFile(tmp, f.after);
      await rename(tmp, full);
    } finally {
      off();
    }
  }
}

export interface SyncAndPushOptions {
  /** The repository holding the registry (any folder of its work tree). */
  repo: GitRepo;
  /** The registry's folder inside the repository: '' or '.' for its root. */
  registryPath?: string;
  remote?: string;
  branch?: string;
  /** Push attempts before giving up with E_PUSH_RACE (default 6). */
  maxAttempts?: number;
  /** Webhook delivery settings, or false to send none. */
  notify?: DeliveryOptions | false;
  /** Called with each commit just before it is pushed (tests use it to stage races). */
  beforePush?: (commit: string, attempt: number) => Promise<void>;
}

export interface SyncPushResult {
  /** `in-sync`: nothing to do; `pushed`: a commit went to the branch; `superseded`: another sync got there first. */
  status: 'in-sync' | 'pushed' | 'superseded';
  /** The branch head the result was derived from. */
  head: string;
  /** The pushed commit (status `pushed`). */
  commit?: string;
  attempts: number;
  changes: PinChange[];
  files: string[];
  diff: string;
  deliveries: DeliveryReport[];
}

function normalizePrefix(p: string | undefined): string {
  const normal = posix.normalize((p ?? '').replace(/\\/g, '/') || '.');
  const clean = normal.replace(/(?<!\/)\/+$/, '');
  if (posix.isAbsolute(normal) || clean === '..' || clean.startsWith('../')) {
    throw new ModelgateError('E_USAGE', `registry path ${p} must be inside the repository`, ExitCode.usage);
  }
  return clean === '.' ? '' : clean;
}

/**
 * `sync --push` (and the Action's `sync` with `push: true`): derive the pins from the registry
 * at the branch head, commit them as modelgate[bot], push, through the one applier
 * (`applyChange`: fetch → re-plan → commit → push → backoff; a lost race is E_PUSH_RACE).
 * When the new head is already in sync, another sync won and this one stops: `superseded`.
 * Webhooks fire only for a commit this call pushed; their failures are reported, never thrown.
 */
export async function syncAndPush(opts: SyncAndPushOptions): Promise<SyncPushResult> {
  const remote = opts.remote ?? 'origin';
  const branch = opts.branch ?? 'main';
  const prefix = normalizePrefix(opts.registryPath);
  const top = await opts.repo.topLevel();
  const repo = top === opts.repo.dir ? opts.repo : new GitRepo(top);
  let plan: SyncPlan | undefined;
  let snapshot: RegistrySnapshot | undefined;
  const done = await applyChange({
    repo,
    prefix,
    mode: 'push',
    remote,
    baseBranch: branch,
    env: process.env,
    author: BOT_IDENTITY,
    maxAttempts: opts.maxAttempts ?? 6,
    ...(opts.beforePush ? { beforePush: opts.beforePush } : {}),
    plan: async (_snap, head) => {
      if (!head || !(await repo.resolve(`refs/remotes/${remote}/${branch}`)))
        throw new ModelgateError('E_SYNC_NO_BRANCH', `${remote} has no branch ${branch} to sync`, ExitCode.service);
      snapshot = new RegistrySnapshot(new CommitTreeSource(repo, head, prefix));
      plan = renderPins(await readValidPinInput(snapshot));
      return syncChange(plan, commitMessage(plan));
    },
  });
  const head = done.base!;
  const base = { head, attempts: done.attempts, changes: plan!.changes, files: plan!.files.map((f) => f.path), diff: formatDiff(plan!), deliveries: [] };
  if (done.empty) return { ...base, status: done.attempts === 1 ? 'in-sync' : 'superseded' };
  const commit = done.commit!;
  const deliveries = opts.notify === false ? [] : await notifyPins(repo, prefix, snapshot!, head, commit, plan!.changes, opts.notify ?? {});
  return { ...base, status: 'pushed', commit, deliveries };
}

/** The webhooks for pin changes that landed in `commit` (on top of `head`); failures are reported, never thrown. */
export async function notifyPins(
  repo: GitRepo,
  prefix: string,
  snapshot: RegistrySnapshot,
  head: string,
  commit: string,
  changes: PinChange[],
  notify: DeliveryOptions,
): Promise<DeliveryReport[]> {
  const registry = await snapshot.config();
  if (!registry.webhooks?.length || changes.length === 0) return [];
  return deliverEvents(
    registry.webhooks,
    pinEvents(changes, {
      commit,
      ...(registry.github?.repository ? { repository: registry.github.repository } : {}),
      pullRequest: await pullRequestFinder(repo, head, prefix, changes),
    }),
    notify,
  );
}

/** For each change, the pull request of the last commit that touched its version (or model) file. */
async function pullRequestFinder(repo: GitRepo, head: string, prefix: string, changes: PinChange[]) {
  const found = new Map<PinChange, number | undefined>();
  for (const c of changes.slice(0, 50)) {
    const rel = c.toVersion ? `models/${c.model}/versions/${c.toVersion}.yaml` : `models/${c.model}/model.yaml`;
    // First parent: on main the merge (or squash) commit changed the file, not the branch's own commits.
    const last = await repo.lastCommitTouching(head, [prefix ? `${prefix}/${rel}` : rel], { firstParent: true });
    found.set(c, pullRequestOf(last?.message ?? ''));
  }
  return (c: PinChange) => found.get(c);
}

/** Markdown for the Action's job summary: what the sync did, the diff, and every failed webhook delivery. */
export function formatSyncSummary(result: SyncPushResult): string {
  const out: string[] = ['## modelgate sync', ''];
  if (result.status === 'in-sync') out.push(`Deploy pins already match the registry at \`${result.head.slice(0, 12)}\`: nothing to commit.`);
  else if (result.status === 'superseded') out.push(`Another sync brought \`${result.head.slice(0, 12)}\` in sync first: nothing to commit.`);
  else {
    out.push(`Pushed \`${result.commit!.slice(0, 12)}\` on top of \`${result.head.slice(0, 12)}\` (attempt ${result.attempts}).`, '');
    out.push('| model | environment | from | to | sha256 |', '|---|---|---|---|---|');
    for (const c of result.changes) {
      out.push(
        `| ${c.model} | ${c.environment} | ${c.fromVersion ? `v${c.fromVersion}` : '—'} | ${c.action === 'retire' ? 'retired' : `v${c.toVersion}`} | ${c.sha256 ? `\`${c.sha256.slice(0, 12)}…\`` : '—'} |`,
      );
    }
    out.push('', '<details><summary>deploy/ diff</summary>', '', '```diff', result.diff.trimEnd(), '```', '', '</details>');
  }
  const failed = failedDeliveries(result.deliveries);
  if (result.deliveries.length > 0) {
    out.push('', `Webhooks: ${result.deliveries.length - failed.length}/${result.deliveries.length} delivered.`);
    for (const line of failed) out.push(`- :warning: ${line}`);
  }
  return out.join('\n') + '\n';
}

export interface RepairOptions {
  repo: GitRepo;
  registryPath?: string;
  env: NodeJS.ProcessEnv;
  remote?: string;
  branch?: string;
  /** `owner/name` (the Action: GITHUB_REPOSITORY); default github.repository of modelgate.yaml. */
  repository?: string;
}

export interface RepairResult {
  /** `in-sync`: the branch's pins equal the rendering; `opened`/`updated`: the repair pull request. */
  status: 'in-sync' | 'opened' | 'updated';
  head: string;
  changes: PinChange[];
  files: string[];
  diff: string;
  branch: string;
  commit?: string;
  pullRequest?: { number: number; url: string; created: boolean };
}

/**
 * `sync --pr` and the Action's post-merge `sync`: render the pins at the remote branch's head;
 * when they differ from what is committed, open (or update) the one repair pull request on
 * `modelgate/sync` through the same applier. Nothing is pushed to the branch itself.
 */
export async function openRepairPullRequest(opts: RepairOptions): Promise<RepairResult> {
  const prefix = normalizePrefix(opts.registryPath);
  const top = await opts.repo.topLevel();
  const repo = top === opts.repo.dir ? opts.repo : new GitRepo(top);
  let plan: SyncPlan | undefined;
  const done = await applyChange({
    repo,
    prefix,
    mode: 'pr',
    remote: opts.remote ?? 'origin',
    baseBranch: opts.branch ?? 'main',
    env: opts.env,
    author: BOT_IDENTITY,
    replaceBranch: true,
    ...(opts.repository ? { repository: opts.repository } : {}),
    body: async () => repairBody(plan!),
    plan: async (snap) => {
      if (!snap) throw new ModelgateError('E_SYNC_NO_BRANCH', `${opts.remote ?? 'origin'} has no branch ${opts.branch ?? 'main'} to sync`, ExitCode.service);
      plan = renderPins(await readValidPinInput(snap));
      return syncChange(plan, commitMessage(plan));
    },
  });
  const result = { head: done.base!, changes: plan!.changes, files: plan!.files.map((f) => f.path), diff: formatDiff(plan!), branch: done.change.branch };
  if (done.empty) return { ...result, status: 'in-sync' };
  return { ...result, status: done.pullRequest!.created ? 'opened' : 'updated', commit: done.commit, pullRequest: done.pullRequest };
}

function repairBody(plan: SyncPlan): string {
  return [
    '## modelgate sync: deploy pins out of date on main',
    '',
    'The pins on main do not equal the rendering of the merged registry (a pull request was merged without an up-to-date branch). Merging this pull request brings them in line.',
    '',
    ...plan.changes.map((c) => `- ${describeChange(c)}`),
    '',
    '```diff',
    formatDiff(plan).trimEnd(),
    '```',
    '',
  ].join('\n');
}
