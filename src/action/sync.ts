import * as core from './runner.js';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { formatSyncSummary, notifyPins, openRepairPullRequest, syncAndPush } from '../deploy/apply.js';
import { readValidPinInput } from '../deploy/input.js';
import { describeChange, formatDiff, renderPins, type PinChange } from '../deploy/plan.js';
import { ModelgateError, usageError } from '../errors.js';
import { GitRepo } from '../git/repo.js';
import { renumberOvertaken, type Renumbered } from '../promote/renumber.js';
import { failedDeliveries, type DeliveryReport } from '../notify/webhooks.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { CommitTreeSource } from '../registry/source.js';

export interface SyncInputs {
  token: string;
  registryPath: string;
}

const ZERO = /^0{40}$/;

/**
 * The Action's `sync`, on push to main. The pins arrive with the merged pull request, so this
 * job writes nothing to main: it checks that main's pins equal the rendering (`sync --check`),
 * opens or updates the one repair pull request (`modelgate/sync`) and fails when they do not,
 * and sends the webhooks for the pin changes the push brought (before..after). Input
 * `push: true` keeps the v1 direct push for unprotected registries.
 */
export async function runSync(inputs: SyncInputs, env: NodeJS.ProcessEnv): Promise<void> {
  const pushInput = (core.getInput('push') || 'false').toLowerCase();
  if (!['true', 'false'].includes(pushInput)) throw usageError('input push must be true or false');
  const workspace = env.GITHUB_WORKSPACE ?? process.cwd();
  const repo = new GitRepo(workspace);
  const reportPath = join(env.RUNNER_TEMP || tmpdir(), 'modelgate-sync.json');
  const top = await repo.topLevel();
  const git = top === repo.dir ? repo : new GitRepo(top);
  const prefix = registryFolder(inputs.registryPath);
  if (pushInput === 'true') {
    const result = await syncAndPush({ repo, registryPath: inputs.registryPath, notify: { env } });
    const renumbered = await renumberRegistrations(inputs, env, git, prefix);
    core.setOutput('decision', 'pass');
    await writeFile(reportPath, JSON.stringify({ ...result, renumbered }, null, 2) + '\n');
    core.setOutput('report', reportPath);
    warnFailed(result.deliveries);
    if (env.GITHUB_STEP_SUMMARY) await core.appendSummary(formatSyncSummary(result) + renumberSummary(renumbered));
    core.info(`modelgate sync: ${result.status}${result.commit ? ` ${result.commit.slice(0, 12)}` : ''}, ${result.changes.length} pin change(s)`);
    failUnlessRenumbered(renumbered);
    return;
  }

  const after = await git.resolve('HEAD');
  if (!after) throw usageError('the workspace has no commit checked out: check out main before modelgate sync');
  const snapshot = new RegistrySnapshot(new CommitTreeSource(git, after, prefix));
  const plan = renderPins(await readValidPinInput(snapshot));
  const inSync = plan.files.length === 0;

  // The pins the push brought: deploy files at `before` compared with those at `after`.
  const brought = await pinsBrought(git, prefix, snapshot, await pushedRange(env), after);
  const deliveries = brought.length ? await notifyPins(git, prefix, snapshot, after, after, brought, { env }) : [];
  warnFailed(deliveries);

  let repair: Awaited<ReturnType<typeof openRepairPullRequest>> | undefined;
  if (!inSync) {
    repair = await openRepairPullRequest({
      repo: git,
      registryPath: prefix,
      env: { ...env, GITHUB_TOKEN: inputs.token || env.GITHUB_TOKEN },
      ...(env.GITHUB_REF_NAME ? { branch: env.GITHUB_REF_NAME } : {}),
      ...(env.GITHUB_REPOSITORY ? { repository: env.GITHUB_REPOSITORY } : {}),
    });
  }
  const renumbered = await renumberRegistrations(inputs, env, git, prefix);
  const report = {
    inSync,
    head: after,
    changes: plan.changes,
    files: plan.files.map((f) => f.path),
    diff: formatDiff(plan),
    brought,
    deliveries,
    repair,
    renumbered,
  };
  await writeFile(reportPath, JSON.stringify(report, null, 2) + '\n');
  core.setOutput('report', reportPath);
  core.setOutput('decision', inSync ? 'pass' : 'fail');
  if (env.GITHUB_STEP_SUMMARY) await core.appendSummary(checkSummary(report) + renumberSummary(renumbered));
  if (inSync) {
    core.info(`modelgate sync: deploy pins match the registry at ${after.slice(0, 12)}; ${brought.length} pin change(s) brought by the push`);
    failUnlessRenumbered(renumbered);
    return;
  }
  failUnlessRenumbered(renumbered);
  const pr = repair?.pullRequest;
  core.setFailed(
    `modelgate sync: ${plan.files.length} deploy file(s) on main do not equal the rendering` +
      (pr ? `; repair pull request #${pr.number} ${repair!.status}: ${pr.url}` : ''),
  );
}

/**
 * Registration pull requests whose number the push gave to something else are re-numbered
 * (src/promote/renumber.ts), so every one stays mergeable. A failure is reported per pull
 * request; it never stops the pin check.
 */
async function renumberRegistrations(inputs: SyncInputs, env: NodeJS.ProcessEnv, git: GitRepo, prefix: string): Promise<Renumbered[] | { error: string }> {
  const repository = env.GITHUB_REPOSITORY;
  if (!repository) return [];
  const run = env.GITHUB_SERVER_URL && env.GITHUB_RUN_ID ? ` in workflow run ${env.GITHUB_SERVER_URL}/${repository}/actions/runs/${env.GITHUB_RUN_ID}` : '';
  const actor = env.GITHUB_ACTOR ? ` (after a push by @${env.GITHUB_ACTOR})` : '';
  try {
    const done = await renumberOvertaken({
      repo: git,
      prefix,
      env: { ...env, GITHUB_TOKEN: inputs.token || env.GITHUB_TOKEN },
      repository,
      by: `modelgate sync${run}${actor}`,
      ...(env.GITHUB_REF_NAME ? { baseBranch: env.GITHUB_REF_NAME } : {}),
    });
    for (const r of done) core.info(`modelgate sync: ${describeRenumbered(r)}`);
    return done;
  } catch (e) {
    return { error: e instanceof ModelgateError ? e.message : `unexpected ${(e as Error)?.name ?? 'error'}` };
  }
}

function describeRenumbered(r: Renumbered): string {
  const from = `#${r.from.pullRequest} (${r.model}@${r.from.version})`;
  if (r.status === 'failed') return `registration pull request ${from} was not re-numbered: ${r.reason}`;
  return `registration pull request ${from} re-numbered: continues as ${r.model}@${r.to!.version} in #${r.to!.pullRequest} ${r.to!.url}`;
}

function renumberSummary(r: Renumbered[] | { error: string }): string {
  if ('error' in r) return `\nRegistration pull requests were not checked: ${r.error}\n`;
  return r.length ? `\nRegistration pull requests whose number main took:\n\n${r.map((x) => `- ${describeRenumbered(x)}`).join('\n')}\n` : '';
}

/** A registration pull request left unmergeable fails the job, so someone looks at it. */
function failUnlessRenumbered(r: Renumbered[] | { error: string }): void {
  const failed = 'error' in r ? [`registration pull requests were not checked: ${r.error}`] : r.filter((x) => x.status === 'failed').map(describeRenumbered);
  if (failed.length) core.setFailed(`modelgate sync: ${failed.join('; ')}`);
}

function registryFolder(p: string): string {
  const normal = posix.normalize(p.replace(/\\/g, '/') || '.').replace(/(?<!\/)\/+$/, '');
  return normal === '.' ? '' : normal;
}

function warnFailed(deliveries: DeliveryReport[]): void {
  for (const line of failedDeliveries(deliveries)) core.warning(`webhook not delivered: ${line}`, { title: 'modelgate sync' });
}

/** `before` of the push event (undefined for a new branch or outside a push). */
async function pushedRange(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (!env.GITHUB_EVENT_PATH) return undefined;
  try {
    const event = JSON.parse(await readFile(env.GITHUB_EVENT_PATH, 'utf8')) as { before?: unknown };
    return typeof event.before === 'string' && /^[0-9a-f]{40}$/.test(event.before) && !ZERO.test(event.before) ? event.before : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pin changes between the deploy files at `before` and at `after`: the rendering of the
 * registry at `after` against `before`'s deploy files, kept only where the file really changed.
 */
async function pinsBrought(git: GitRepo, prefix: string, afterSnap: RegistrySnapshot, before: string | undefined, after: string): Promise<PinChange[]> {
  if (!before) return [];
  if (!(await git.resolve(before))) {
    await git.tryFetch('origin', before);
    if (!(await git.resolve(before))) {
      core.warning(`the push's before commit ${before.slice(0, 12)} is not in the checkout (fetch-depth: 0 or 2): no webhooks sent`, {
        title: 'modelgate sync',
      });
      return [];
    }
  }
  const beforeSource = new CommitTreeSource(git, before, prefix);
  const plan = renderPins(await readValidPinInput(afterSnap, { deployFrom: beforeSource }));
  const out: PinChange[] = [];
  for (const c of plan.changes) {
    const full = prefix ? `${prefix}/${c.path}` : c.path;
    if ((await git.readFileAt(before, full)) !== (await git.readFileAt(after, full))) out.push(c);
  }
  return out;
}

function checkSummary(r: {
  inSync: boolean;
  head: string;
  changes: PinChange[];
  diff: string;
  brought: PinChange[];
  repair?: { status: string; pullRequest?: { number: number; url: string } };
}): string {
  const out = ['## modelgate sync', ''];
  if (r.inSync) out.push(`Deploy pins on main match the registry at \`${r.head.slice(0, 12)}\`: nothing to repair.`);
  else {
    out.push(`Deploy pins on main do **not** match the registry at \`${r.head.slice(0, 12)}\`.`);
    if (r.repair?.pullRequest) out.push('', `Repair pull request [#${r.repair.pullRequest.number}](${r.repair.pullRequest.url}) ${r.repair.status}.`);
    out.push('', ...r.changes.map((c) => `- ${describeChange(c)}`), '', '```diff', r.diff.trimEnd(), '```');
  }
  if (r.brought.length) out.push('', 'Pin changes this push brought:', '', ...r.brought.map((c) => `- ${describeChange(c)}`));
  return out.join('\n') + '\n';
}
