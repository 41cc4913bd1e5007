import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { ExitCode, ModelgateError } from '../errors.js';
import { backoff, BOT_IDENTITY, GitRepo, type FileChanges } from '../git/repo.js';
import { deliverEvents, failedDeliveries, pinEvents, pullRequestOf, type DeliveryOptions, type DeliveryReport } from '../notify/webhooks.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { CommitTreeSource } from '../registry/source.js';
import { readPinInput } from './input.js';
import { commitMessage, formatDiff, renderPins, type PinChange, type SyncPlan } from './plan.js';

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
    await writeFile(tmp, f.after);
    await rename(tmp, full);
  }
}

export interface SyncAndPushOptions {
  /** The repository holding the registry (any folder of its work tree). */
  repo: GitRepo;
  /** The registry's folder inside the repository: '' or '.' for its root. */
  registryPath?: string;
  remote?: string;
  branch?: string;
  /** Push attempts before giving up with E_SYNC_CONTENDED (default 6). */
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
  const clean = normal.replace(/\/+$/, '');
  if (posix.isAbsolute(normal) || clean === '..' || clean.startsWith('../')) {
    throw new ModelgateError('E_USAGE', `registry path ${p} must be inside the repository`, ExitCode.usage);
  }
  return clean === '.' ? '' : clean;
}

/**
 * `sync --push` and the Action's `sync`: derive the pins from the registry at the branch head,
 * commit them on top of it as modelgate[bot], push. A rejected push means the branch moved:
 * fetch, derive again from the new head, retry with bounded jittered backoff (never forcing).
 * When the new head is already in sync, another sync won and this one stops: `superseded`.
 * Webhooks fire only for a commit this call pushed; their failures are reported, never thrown.
 */
export async function syncAndPush(opts: SyncAndPushOptions): Promise<SyncPushResult> {
  const remote = opts.remote ?? 'origin';
  const branch = opts.branch ?? 'main';
  const prefix = normalizePrefix(opts.registryPath);
  const top = (await opts.repo.out(['rev-parse', '--show-toplevel'])).trim();
  const repo = top === opts.repo.dir ? opts.repo : new GitRepo(top);
  const maxAttempts = opts.maxAttempts ?? 6;
  for (let attempt = 1; ; attempt++) {
    const head = await repo.fetchBranch(remote, branch);
    if (!head) throw new ModelgateError('E_SYNC_NO_BRANCH', `${remote} has no branch ${branch} to sync`, ExitCode.service);
    const snapshot = new RegistrySnapshot(new CommitTreeSource(repo, head, prefix));
    const plan = renderPins(await readPinInput(snapshot));
    const base = { head, attempts: attempt, changes: plan.changes, files: plan.files.map((f) => f.path), diff: formatDiff(plan), deliveries: [] };
    if (plan.files.length === 0) return { ...base, status: attempt === 1 ? 'in-sync' : 'superseded' };
    const files: FileChanges = {};
    for (const f of plan.files) files[prefix ? `${prefix}/${f.path}` : f.path] = f.after;
    const commit = await repo.commitChanges({ parent: head, files, message: commitMessage(plan), author: BOT_IDENTITY });
    await opts.beforePush?.(commit, attempt);
    if (await repo.push(remote, commit, branch)) {
      const registry = await snapshot.config();
      const deliveries =
        opts.notify === false || !registry.webhooks?.length
          ? []
          : await deliverEvents(
              registry.webhooks,
              pinEvents(plan.changes, {
                commit,
                ...(registry.github?.repository ? { repository: registry.github.repository } : {}),
                pullRequest: await pullRequestFinder(repo, head, prefix, plan.changes),
              }),
              opts.notify ?? {},
            );
      return { ...base, status: 'pushed', commit, deliveries };
    }
    if (attempt >= maxAttempts) {
      throw new ModelgateError('E_SYNC_CONTENDED', `${remote}/${branch} kept moving: push rejected ${attempt} times; run sync again`, ExitCode.service, {
        attempts: attempt,
      });
    }
    await backoff(attempt);
  }
}

/** For each change, the pull request of the last commit that touched its version (or model) file. */
async function pullRequestFinder(repo: GitRepo, head: string, prefix: string, changes: PinChange[]) {
  const found = new Map<PinChange, number | undefined>();
  for (const c of changes.slice(0, 50)) {
    const rel = c.toVersion ? `models/${c.model}/versions/${c.toVersion}.yaml` : `models/${c.model}/model.yaml`;
    // First parent: on main the merge (or squash) commit changed the file, not the branch's own commits.
    const r = await repo.run(['log', '-1', '--first-parent', '--format=%B', head, '--', prefix ? `${prefix}/${rel}` : rel], { okCodes: [128] });
    found.set(c, pullRequestOf(r.stdout));
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
      out.push(`| ${c.model} | ${c.environment} | ${c.fromVersion ? `v${c.fromVersion}` : '—'} | ${c.action === 'retire' ? 'retired' : `v${c.toVersion}`} | ${c.sha256 ? `\`${c.sha256.slice(0, 12)}…\`` : '—'} |`);
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
