import { ExitCode, ModelgateError } from '../errors.js';
import type { GitRepo } from '../git/repo.js';
import { evaluateGate } from '../gate/evaluate.js';
import { GitStageHistory } from '../gate/history.js';
import { MergedSource } from '../gate/merged-source.js';
import { renderPromotionBody } from '../gate/report.js';
import { lazyStoreVerifier } from '../gate/store-verifier.js';
import type { Decision } from '../gate/types.js';
import { createOctokit, parseRepository } from '../github/client.js';
import { openOrUpdatePullRequest, type OpenedPullRequest } from '../github/promotion-pr.js';
import { publish } from '../registry/publish.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import { GitTreeSource, type RegistrySource } from '../registry/source.js';
import type { ChangePlan, FileEdit } from './plan.js';

export type SubmitMode = 'local' | 'push' | 'pr';

export interface SubmitOptions {
  repo: GitRepo;
  /** The registry's folder inside the repository ('' for its root). */
  prefix: string;
  mode: SubmitMode;
  /** Plans the change on a snapshot of `commit`, the commit it will sit on (re-run after a push race). */
  plan: (snapshot: RegistrySnapshot, commit: string) => Promise<ChangePlan>;
  env: NodeJS.ProcessEnv;
  remote?: string;
  baseBranch?: string;
  /**
   * The pull request's branch must not exist yet (`register --pr`: a branch of that name holds
   * another registration of the same number, which this one must never overwrite).
   */
  newBranch?: boolean;
}

export interface Submitted {
  plan: ChangePlan;
  commit?: string;
  pushed: boolean;
  pullRequest?: OpenedPullRequest;
  /** The gate's view of the change, as the pull request body shows it. */
  decision?: Decision;
}

const snapshotAt = (repo: GitRepo, commit: string, prefix: string) => new RegistrySnapshot(new GitTreeSource(repo, commit, prefix));
const files = (plan: ChangePlan, prefix: string) => Object.fromEntries(plan.edits.map((e) => [prefix ? `${prefix}/${e.path}` : e.path, e.after]));

/**
 * Applies a planned change: a local commit on HEAD, a commit pushed to main (with the publish
 * flow's fetch-replan-retry), or a branch pushed and a pull request opened or updated. Export
 * for `register --pr`, which submits its new manifest the same way.
 */
export async function submitChange(opts: SubmitOptions): Promise<Submitted> {
  const { repo, prefix } = opts;
  const remote = opts.remote ?? 'origin';
  const baseBranch = opts.baseBranch ?? 'main';
  if (opts.mode !== 'pr') {
    let last: ChangePlan | undefined;
    const done = await publish({
      repo,
      push: opts.mode === 'push',
      remote,
      branch: baseBranch,
      plan: async (base) => {
        if (!base) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
        last = await opts.plan(snapshotAt(repo, base, prefix), base);
        return { files: files(last, prefix), message: last.message };
      },
    });
    return { plan: last!, commit: done.commit, pushed: done.pushed };
  }

  const base = (await repo.fetchBranch(remote, baseBranch)) ?? (await repo.resolve('HEAD'));
  if (!base) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
  const baseSnap = snapshotAt(repo, base, prefix);
  const plan = await opts.plan(baseSnap, base);
  const config = await baseSnap.config();
  const conn = {
    octokit: createOctokit({ token: opts.env.GITHUB_TOKEN || opts.env.GH_TOKEN, baseUrl: opts.env.GITHUB_API_URL }),
    ...parseRepository(config.github?.repository),
  };
  // On an open pull request's branch the change is already there: keep its commit, refresh the text.
  const existing = await repo.fetchBranch(remote, plan.branch);
  if (existing && opts.newBranch) {
    throw new ModelgateError('E_BRANCH_EXISTS', `${remote}/${plan.branch} already exists: another change is pending there; merge or delete it, then run the command again`, ExitCode.content);
  }
  let commit = existing;
  const onBase = await repo.commitChanges({ parent: base, files: files(plan, prefix), message: plan.message });
  if (!existing || (await repo.treeOf(existing)) !== (await repo.treeOf(onBase))) {
    // Build on the open branch when it already holds the base, so the push fast-forwards it.
    const buildOnExisting = existing !== undefined && (await isAncestor(repo, base, existing));
    const next = buildOnExisting ? await repo.commitChanges({ parent: existing, files: files(plan, prefix), message: plan.message }) : onBase;
    if (!(await repo.push(remote, next, plan.branch))) {
      throw new ModelgateError('E_BRANCH_DIVERGED', `${remote}/${plan.branch} has commits this change does not build on; delete the branch or merge it first`, ExitCode.service);
    }
    commit = next;
  }
  try {
    const decision = await previewGate(repo, prefix, base, baseSnap, plan, opts.env);
    const body = renderPromotionBody(decision, plan.versions, plan.summary);
    const pullRequest = await openOrUpdatePullRequest(conn, { branch: plan.branch, base: baseBranch, title: plan.summary, body });
    return { plan, commit, pushed: true, pullRequest, decision };
  } catch (e) {
    // A branch this run created but no pull request shows would hold its name (for register, its
    // version number) for nothing: remove it again. A branch that was there before stays.
    if (!existing && commit) await repo.deleteRemoteBranch(remote, plan.branch, commit).catch(() => false);
    throw e;
  }
}

async function isAncestor(repo: GitRepo, a: string, b: string): Promise<boolean> {
  return (await repo.run(['merge-base', '--is-ancestor', a, b], { okCodes: [1] })).code === 0;
}

/**
 * The registry as the planned change would leave it: edited files from the plan, the rest from
 * `base`. Directory listings include the files the plan adds (a new version, a new model).
 */
export function plannedSource(base: RegistrySource, edits: Array<Pick<FileEdit, 'path' | 'after'>>): RegistrySource {
  const edited = new Map(edits.map((e) => [e.path, e.after]));
  const added = new Map<string, Set<string>>();
  for (const path of edited.keys()) {
    const parts = path.split('/');
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!added.has(dir)) added.set(dir, new Set());
      added.get(dir)!.add(parts[i]!);
    }
  }
  const overlay: RegistrySource = {
    label: 'planned change',
    readFile: async (p) => edited.get(p),
    listDir: async (p) => {
      const dir = p.replace(/\/$/, '');
      return [...new Set([...(await base.listDir(dir)), ...(added.get(dir) ?? [])])];
    },
  };
  return new MergedSource(base, overlay, edited.keys());
}

/**
 * The gate run on the planned change before anyone approved: the pull request body shows the
 * same rules, results and missing approvals the Action will. Artifacts are checked for
 * presence here; the Action re-hashes them when the policy says `full`.
 */
async function previewGate(repo: GitRepo, prefix: string, base: string, baseSnap: RegistrySnapshot, plan: ChangePlan, env: NodeJS.ProcessEnv): Promise<Decision> {
  const artifacts = lazyStoreVerifier(() => baseSnap.config().then((c) => c.storage), env, { mode: 'exists' });
  try {
    return await evaluateGate({
      base: baseSnap,
      head: new RegistrySnapshot(plannedSource(baseSnap.source, plan.edits)),
      changedFiles: plan.edits.map((e) => ({ path: e.path, status: e.before ? 'M' : 'A' })),
      pullRequest: { number: 0, author: { login: '' }, headSha: '' },
      reviews: [],
      teams: { isActiveMember: async () => false },
      artifacts,
      history: new GitStageHistory(repo, base, prefix),
      options: { approvals: 'require', timeoutMs: 30_000 },
    });
  } finally {
    // An S3 client keeps its connections open until it is destroyed.
    await artifacts.close();
  }
}
