import * as core from './runner.js';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import type { GitRepo } from '../git/repo.js';
import type { ReportContext } from '../gate/report.js';
import type { ChangedFile, Decision } from '../gate/types.js';
import type { RecordOutcome, RecordRequest } from './decision-record.js';
import { createOctokit, parseRepository, type GitHubConnection } from '../github/client.js';
import {
  getPullRequest,
  GitHubTeams,
  type PullRequestDetails,
  listContributors,
  listReviews,
  setCommitStatus,
  upsertComment,
} from '../github/pull-requests.js';

interface Inputs {
  command: 'check' | 'sync';
  token: string;
  registryPath: string;
  comment: boolean;
  /** The `pull-request` input, validated: digits only, a positive safe integer. */
  pullRequest?: number;
}

/**
 * The `pull-request` input. On `workflow_run` it comes from an artifact an untrusted run
 * uploaded, sanitized by the workflow; it is checked again here: only digits make a number.
 */
function parsePullRequestInput(raw: string): number | undefined {
  const text = raw.trim();
  if (!text) return undefined;
  const number = /^[0-9]{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(number) || number < 1) {
    throw usageError(`input pull-request must be a pull request number (digits only), not ${JSON.stringify(raw.slice(0, 40))}`);
  }
  return number;
}

function readInputs(): Inputs {
  const command = core.getInput('command') || 'check';
  if (command !== 'check' && command !== 'sync') throw usageError(`input command must be check or sync, not ${JSON.stringify(command)}`);
  const comment = (core.getInput('comment') || 'true').toLowerCase();
  if (!['true', 'false'].includes(comment)) throw usageError('input comment must be true or false');
  const registryPath = core.getInput('registry-path') || '.';
  const normal = posix.normalize(registryPath.replace(/\\/g, '/'));
  if (posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../')) {
    throw usageError(`input registry-path ${registryPath} must be a folder inside the repository checkout`);
  }
  const pullRequest = parsePullRequestInput(core.getInput('pull-request'));
  return { command, token: core.getInput('github-token'), registryPath, comment: comment === 'true', pullRequest };
}

/**
 * The Action: `check` judges a pull request and posts the `modelgate` status, summary, comment
 * and annotations; `sync` rewrites the deploy pins after a merge. Errors are caught once, here.
 */
export async function run(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    const inputs = readInputs();
    if (inputs.command === 'sync') await sync(inputs, env);
    else await check(inputs, env);
  } catch (e) {
    core.setOutput('decision', 'fail');
    core.setFailed(e instanceof ModelgateError ? e.message : `modelgate: ${safeMessage(e)}`);
  }
}

/** Ours as written; anything else only by its kind, since raw errors may carry request headers. */
const safeMessage = (e: unknown) => (e instanceof ModelgateError ? e.message : `unexpected ${(e as Error)?.name ?? 'error'}`);

/** A failing `modelgate` status on `sha`: silence would leave an older green one standing. */
async function statusCouldNotCheck(conn: GitHubConnection, sha: string, e: unknown, targetUrl: string | undefined): Promise<void> {
  await setCommitStatus(conn, sha, 'failure', `modelgate could not check: ${safeMessage(e)}`, targetUrl).catch(() => undefined);
}

interface TriggerEvent {
  pull_request?: { number?: unknown; head?: { sha?: unknown } };
  workflow_run?: { head_sha?: unknown; pull_requests?: Array<{ number?: unknown }> | null };
  merge_group?: { head_sha?: unknown; head_ref?: unknown; base_sha?: unknown; base_ref?: unknown };
}

/** The head commit the event names, if any: only ever given a failing status. */
function eventHeadSha(event: TriggerEvent): string | undefined {
  const sha = event.merge_group?.head_sha ?? event.pull_request?.head?.sha ?? event.workflow_run?.head_sha;
  return typeof sha === 'string' && SHA.test(sha) ? sha : undefined;
}

const SHA = /^[0-9a-f]{40}$/;

/** A merge queue's group: its commit (the status goes there), the commit it builds on, and the pull request it merges. */
export interface MergeGroup {
  headSha: string;
  headRef: string;
  baseSha: string;
  baseRef: string;
  number: number;
}

/**
 * The `merge_group` event's group. The queue names its branch `gh-readonly-queue/<base>/pr-<n>-<sha>`:
 * the number says which pull request's approvals the group stands on; the gate then checks that
 * the group's commit is exactly that pull request's approved head merged onto the group's base.
 */
function mergeGroupOf(event: TriggerEvent): MergeGroup | undefined {
  const g = event.merge_group;
  if (g === undefined) return undefined;
  const ref = typeof g.head_ref === 'string' ? /^refs\/heads\/gh-readonly-queue\/(.+)\/pr-([1-9][0-9]{0,14})-[0-9a-f]{40}$/.exec(g.head_ref) : null;
  const { head_sha: headSha, base_sha: baseSha, base_ref: baseRef } = g;
  if (!ref || typeof headSha !== 'string' || !SHA.test(headSha) || typeof baseSha !== 'string' || !SHA.test(baseSha) || baseRef !== `refs/heads/${ref[1]}`) {
    throw usageError(
      'the merge_group event does not name a merge queue group (head_ref refs/heads/gh-readonly-queue/<base>/pr-<n>-<sha>, head_sha, base_sha, base_ref)',
    );
  }
  return { headSha, headRef: g.head_ref as string, baseSha, baseRef: ref[1]!, number: Number(ref[2]) };
}

const isNumber = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0;

/**
 * Which pull request to judge: the event's own (`pull_request_target`, `pull_request_review`),
 * else the `pull-request` input (on `workflow_run`, the number the review run recorded), else
 * the first of `workflow_run.pull_requests` (same-repository pull requests only; empty for
 * forks). A number from the input is untrusted data: it only selects which pull request is
 * judged, and it must agree with whatever the event itself names.
 */
function pullRequestNumber(event: TriggerEvent, input: number | undefined, eventName = 'triggering'): number {
  const own = event.pull_request?.number;
  if (isNumber(own)) {
    if (input !== undefined && input !== own) throw usageError(`input pull-request #${input} is not the ${eventName} event's pull request #${own}`);
    return own;
  }
  const listed = (Array.isArray(event.workflow_run?.pull_requests) ? event.workflow_run.pull_requests : []).map((p) => p?.number).filter(isNumber);
  if (input !== undefined) {
    if (listed.length > 0 && !listed.includes(input)) {
      throw usageError(`input pull-request #${input} is not among the pull requests of the workflow run (${listed.map((n) => `#${n}`).join(', ')})`);
    }
    return input;
  }
  if (listed.length > 0) return listed[0]!;
  throw usageError(
    `the ${eventName} event names no pull request and the input pull-request is empty: run check on pull_request_target, or on workflow_run with pull-request set to the number the review workflow recorded`,
  );
}

async function check(inputs: Inputs, env: NodeJS.ProcessEnv): Promise<void> {
  const eventPath = env.GITHUB_EVENT_PATH;
  if (!eventPath)
    throw usageError('GITHUB_EVENT_PATH is not set: the check runs in GitHub Actions on pull_request_target, pull_request_review, workflow_run or merge_group');
  let event: TriggerEvent;
  try {
    event = JSON.parse(await readFile(eventPath, 'utf8')) as TriggerEvent;
  } catch {
    throw usageError(`cannot read the event payload at GITHUB_EVENT_PATH (${eventPath})`);
  }
  if (typeof event !== 'object' || event === null) throw usageError(`the event payload at GITHUB_EVENT_PATH (${eventPath}) is not an object`);
  const group = mergeGroupOf(event);
  if (group && inputs.pullRequest !== undefined && inputs.pullRequest !== group.number) {
    throw usageError(`input pull-request #${inputs.pullRequest} is not the merge group's pull request #${group.number}`);
  }
  const number = group?.number ?? pullRequestNumber(event, inputs.pullRequest, env.GITHUB_EVENT_NAME);
  const { owner, repo } = parseRepository(env.GITHUB_REPOSITORY);
  const conn: GitHubConnection = { octokit: createOctokit({ token: inputs.token || env.GITHUB_TOKEN, baseUrl: env.GITHUB_API_URL }), owner, repo };

  const targetUrl = env.GITHUB_SERVER_URL && env.GITHUB_RUN_ID ? `${env.GITHUB_SERVER_URL}/${owner}/${repo}/actions/runs/${env.GITHUB_RUN_ID}` : undefined;
  let pr: PullRequestDetails;
  try {
    pr = await getPullRequest(conn, number);
  } catch (e) {
    // Without the pull request the gate cannot judge; a green status left from an earlier run
    // (before a dismissed approval, say) must not stand, so the event's head gets a failure.
    const sha = eventHeadSha(event);
    if (sha) await statusCouldNotCheck(conn, sha, e, targetUrl);
    throw e;
  }
  // The queue waits for the status on its group's commit; a pull request's on its head.
  const judged = { number: pr.number, headSha: group?.headSha ?? pr.headSha };
  try {
    const decision = await judge(inputs, env, conn, pr, group);
    await publish(inputs, env, conn, judged, decision, targetUrl);
  } catch (e) {
    await statusCouldNotCheck(conn, judged.headSha, e, targetUrl);
    throw e;
  }
}

/** Everything past the first request, loaded when the pull request is read (see gate-parts.ts). */
const gateParts = () => import('./gate-parts.js');

interface Judged extends Decision {
  report: ReportContext;
  /** What a decision record needs besides the decision (never part of the report file). */
  evidence: Omit<RecordRequest, 'decision' | 'env' | 'repository' | 'pullRequest' | 'headSha'>;
}

/**
 * The base is the event's: the pull request's base commit as the API reports it now (or the
 * merge group's base), and the policy, schemas and configuration are read from that commit's
 * objects, never from the files the workflow checked out. A checkout that holds the head is
 * refused all the same: it means the workflow runs what the pull request wrote.
 */
async function judge(inputs: Inputs, env: NodeJS.ProcessEnv, conn: GitHubConnection, pr: PullRequestDetails, group?: MergeGroup): Promise<Judged> {
  const { GitRepo, registryPrefix, gateSidesFromGit, lazyStoreVerifier, lazyStoreScanner, evaluateGate } = await gateParts();
  const root = resolve(env.GITHUB_WORKSPACE ?? process.cwd(), inputs.registryPath);
  const git = new GitRepo(root);
  const prefix = await registryPrefix(git, { requireGit: true });
  const token = inputs.token || env.GITHUB_TOKEN;
  const baseSha = group?.baseSha ?? pr.baseSha;
  await ensureCommit(git, pr.headSha, `+refs/pull/${pr.number}/head:refs/remotes/pull/${pr.number}/head`, token, `pull request #${pr.number}'s head`, true);
  await ensureCommit(git, baseSha, `+refs/heads/${group?.baseRef ?? pr.baseRef}:refs/remotes/modelgate/base`, token, 'the base commit');
  if (group) await ensureCommit(git, group.headSha, `+${group.headRef}:refs/remotes/modelgate/merge-group`, token, "the merge group's commit");
  await refuseHeadCheckout(git, baseSha, [pr.headSha, ...(group ? [group.headSha] : [])]);

  const sides = await gateSidesFromGit(git, baseSha, pr.headSha, prefix);
  if (group && (group.baseRef !== pr.baseRef || (await git.treeOf(group.headSha)) !== sides.mergedTree)) {
    throw new ModelgateError(
      'E_MERGE_GROUP',
      `the merge group's commit ${group.headSha.slice(0, 12)} is not pull request #${pr.number}'s head ${pr.headSha.slice(0, 12)} merged onto ${baseSha.slice(0, 12)} of ${pr.baseRef}: the queue would merge something its approvals do not cover`,
      ExitCode.content,
    );
  }
  const changed: ChangedFile[] = sides.changedFiles;
  const [reviews, contributors] = await Promise.all([listReviews(conn, pr.number), listContributors(conn, pr)]);
  const artifacts = lazyStoreVerifier(() => sides.base.config().then((c) => c.storage), env);
  const scanner = lazyStoreScanner(() => sides.base.config().then((c) => c.storage), env);
  const decision = await evaluateGate({
    base: sides.base,
    head: sides.head,
    changedFiles: changed,
    pullRequest: pr,
    reviews,
    contributors: contributors.logins,
    unlinkedCommits: contributors.unlinked,
    teams: new GitHubTeams(conn.octokit, conn.owner),
    artifacts,
    scanner,
    history: sides.history,
    options: { approvals: 'require' },
    prefix,
  }).finally(() => Promise.all([artifacts.close(), scanner.close()]));
  const report: ReportContext = {
    pullRequest: { number: pr.number, title: pr.title, headRef: pr.headRef, headSha: pr.headSha, author: pr.author.login },
    ...(await deployDiff(git, baseSha, sides.mergedTree, prefix)),
  };
  if (!sides.upToDate) decision.summary += ' (the branch is behind its base: judged as merged onto the current base)';
  const evidence = { git, prefix, config: () => sides.base.config(), baseSha, mergedTree: sides.mergedTree, reviews };
  return { ...decision, report, evidence, problems: decision.problems.map((p) => ({ ...p, file: prefix && p.file ? `${prefix}/${p.file}` : p.file })) };
}

/**
 * The Kubernetes change the merge brings: the pull request's own diff of the deploy folder
 * (the gate has checked that it equals the rendering of the merged registry).
 */
async function deployDiff(git: GitRepo, baseSha: string, mergedTree: string, prefix: string): Promise<Pick<ReportContext, 'deployDiff' | 'deployNote'>> {
  const diff = await git.diffText(baseSha, mergedTree, `${prefix ? `${prefix}/` : ''}deploy/`);
  return diff ? { deployDiff: diff } : { deployNote: 'no change to deploy/' };
}

/**
 * Makes a commit's objects present without checking anything out: the workflow may have fetched
 * them already; otherwise `refspec` is fetched from origin. The commit must then be there (for
 * `tip`: the fetched ref must be it), or the ref moved while the check ran, and it fails.
 */
async function ensureCommit(git: GitRepo, sha: string, refspec: string, token: string | undefined, what: string, tip = false): Promise<void> {
  const present = async () => (await git.resolve(sha)) !== undefined;
  if (await present()) return;
  const env: Record<string, string> = {};
  if (token) {
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    Object.assign(env, { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraheader', GIT_CONFIG_VALUE_0: `AUTHORIZATION: basic ${basic}` });
  }
  await git.tryFetch('origin', refspec, env);
  const fetched = await git.resolve(refspec.slice(refspec.indexOf(':') + 1));
  if (!(await present()) || (tip && fetched !== sha)) {
    throw new ModelgateError(
      'E_HEAD_MOVED',
      `${what} ${sha.slice(0, 12)} is not what origin holds (fetched ${fetched?.slice(0, 12) ?? 'nothing'}): it moved while it was checked; the next run checks the new one`,
      ExitCode.service,
    );
  }
}

/** The checkout must not hold a commit the change brings (the head, a merge group's commit): that would be running the pull request. */
async function refuseHeadCheckout(git: GitRepo, baseSha: string, heads: string[]): Promise<void> {
  const checkedOut = await git.resolve('HEAD');
  if (!checkedOut) return;
  for (const head of heads) {
    if (head === baseSha || (await git.isAncestor(head, baseSha))) continue;
    if (await git.isAncestor(head, checkedOut)) {
      throw new ModelgateError(
        'E_UNSAFE_CHECKOUT',
        `the workflow checked out the pull request head (or a merge of it, such as refs/pull/N/merge): ${checkedOut.slice(0, 12)} contains ${head.slice(0, 12)}; check out the base branch (the head is read as data)`,
        ExitCode.usage,
      );
    }
  }
}

const STATE = { pass: 'success', fail: 'failure', pending: 'pending' } as const;

async function publish(
  inputs: Inputs,
  env: NodeJS.ProcessEnv,
  conn: GitHubConnection,
  pr: { number: number; headSha: string },
  decision: Judged,
  targetUrl?: string,
) {
  // The record first, so the summary can name it; what becomes of it never changes the status below.
  const { renderMarkdown, describeRecord } = await gateParts();
  const record = decision.decision === 'pass' ? await recordPass(env, conn, pr, decision) : undefined;
  const markdown = renderMarkdown(decision, { ...decision.report, decisionRecord: record && describeRecord(record) });
  for (const p of decision.problems) {
    core.error(p.message, { title: `modelgate ${p.code}`, file: p.file || undefined, startLine: p.line, startColumn: p.col });
  }
  const { report, evidence: _evidence, ...json } = decision;
  const reportPath = join(env.RUNNER_TEMP || tmpdir(), `modelgate-report-${pr.number}.json`);
  await writeFile(reportPath, JSON.stringify({ pullRequest: report.pullRequest, ...json }, null, 2) + '\n');
  core.setOutput('decision', decision.decision);
  core.setOutput('report', reportPath);
  core.setOutput('decision-record', record && 'uri' in record ? record.uri : '');
  if (process.env.GITHUB_STEP_SUMMARY) await core.appendSummary(markdown);

  await setCommitStatus(conn, pr.headSha, STATE[decision.decision], decision.summary, targetUrl);
  // The comment is not the decision: failing to post it is a warning and changes no status.
  if (inputs.comment) {
    await upsertComment(conn, pr.number, markdown).catch((e: unknown) => core.warning(`modelgate: the pull request comment was not posted: ${safeMessage(e)}`));
  }

  // Pending fails the step too: the job never looks green while the status is not.
  if (decision.decision !== 'pass') core.setFailed(`modelgate: ${decision.summary}`);
  else if (record?.state === 'failed') {
    // The status stays `pass`: the record is evidence about the decision, not an input to it, and
    // the change passed every rule. The job fails so the run is red and someone re-runs it (which
    // writes the record); until then verify --decisions lists the change as merged without one.
    core.setFailed(`modelgate: the pull request passed, but ${record.error}; re-run this job to write it`);
  } else core.info(`modelgate: ${decision.summary}`);
}

/** Signs and stores the record of a pass (src/action/decision-record.ts); warnings go to the log as annotations. */
async function recordPass(env: NodeJS.ProcessEnv, conn: GitHubConnection, pr: { number: number; headSha: string }, decision: Judged): Promise<RecordOutcome> {
  const { recordDecision } = await gateParts();
  const outcome = await recordDecision({
    ...decision.evidence,
    decision,
    env,
    repository: `${conn.owner}/${conn.repo}`,
    pullRequest: pr.number,
    headSha: pr.headSha,
  });
  if (outcome.state === 'failed') core.error(`modelgate: ${outcome.error}`);
  else if (outcome.warning) core.warning(`modelgate: ${outcome.warning}`);
  if ('uri' in outcome) core.info(`modelgate: decision record ${outcome.state}: ${outcome.uri}`);
  return outcome;
}

/** After a merge: src/action/sync.ts (check the pins, repair pull request, webhooks). */
async function sync(inputs: Inputs, env: NodeJS.ProcessEnv): Promise<void> {
  const { runSync } = await import('./sync.js');
  await runSync(inputs, env);
}
