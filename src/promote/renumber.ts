import { isScalar } from 'yaml';
import { freeVersion, numbersOnBranches, registrationChange } from '../commands/register.js';
import { nodeAt, parseForEdit } from '../deploy/yaml-splice.js';
import { ExitCode, ModelgateError } from '../errors.js';
import type { GitRepo, Identity } from '../git/repo.js';
import { createOctokit, parseRepository, type GitHubConnection } from '../github/client.js';
import { closePullRequest, listOpenPullRequests, type OpenPullRequest } from '../github/pull-requests.js';
import { loadManifest } from '../manifest/load.js';
import { formatProblem } from '../manifest/problem.js';
import { assertValidModel, assertValidVersion } from '../registry/new-version.js';
import { modelFile, versionFile } from '../registry/layout.js';
import { applyChange } from './apply-change.js';
import { parseBranch } from './change.js';
import { completeChange } from './pins.js';

export interface RenumberOptions {
  repo: GitRepo;
  /** The registry's folder inside the repository ('' for its root). */
  prefix: string;
  /** GITHUB_TOKEN (or GH_TOKEN) and GITHUB_API_URL. */
  env: NodeJS.ProcessEnv;
  /** `owner/name` of the repository the pull requests are in. */
  repository: string;
  /** Who re-numbers, as the pull requests and commits record it (e.g. the workflow run). */
  by: string;
  remote?: string;
  baseBranch?: string;
}

/** What became of one open registration pull request whose number the base branch took. */
export interface Renumbered {
  model: string;
  /** The closed pull request and the number its branch named. */
  from: { pullRequest: number; version: number; branch: string };
  /** `renumbered`: a new pull request holds the registration; `closed`: an earlier run had opened it; `failed`: left as it is (`reason`). */
  status: 'renumbered' | 'closed' | 'failed';
  to?: { pullRequest: number; url: string; version: number; branch: string };
  reason?: string;
}

/** The hidden line of a re-numbered pull request's body that names the one it continues. */
const continues = (number: number) => `<!-- modelgate re-numbered from #${number} -->`;

/**
 * Keeps every registration pull request mergeable (SPEC v3 §14) after a writer that does not
 * read registration branches (a hand push, an older client, another merge) took its number on
 * the base branch. Each open pull request from `modelgate/<model>-v<N>-register` whose version
 * file the base now holds with other content is re-planned on the base: the version manifest
 * it added, with `version:` set to the next number free on the base and on every registration
 * branch, and its model.yaml only while the base lacks one, nothing else of the branch (whoever
 * can push to the branch may have put more there). The commit keeps the registration's author
 * and committer, so the gate still counts them as contributors, and claims its branch name
 * `modelgate/<model>-v<M>-register` exactly as `register --pr` does (a new branch, the base
 * checked again after the push); the new pull request says who re-numbered it, and the old one
 * is closed with a comment linking it and its branch deleted under a lease. The number lives in
 * the branch name, so the claims every registration makes stay exact; a pull request cannot
 * change its head branch, hence a new one.
 */
export async function renumberOvertaken(opts: RenumberOptions): Promise<Renumbered[]> {
  const { repo, prefix } = opts;
  const remote = opts.remote ?? 'origin';
  const baseBranch = opts.baseBranch ?? 'main';
  const full = (p: string) => (prefix ? `${prefix}/${p}` : p);
  const base = await repo.fetchBranch(remote, baseBranch);
  if (!base) return [];
  // Only a registration branch whose number the base holds can be overtaken: without one, GitHub is not asked.
  const candidates = new Set<string>();
  for (const branch of await repo.remoteBranches(remote, 'modelgate/*')) {
    const spec = parseBranch(branch);
    if (spec?.kind === 'register' && (await repo.readFileAt(base, full(versionFile(spec.model, spec.version)))) !== undefined) candidates.add(branch);
  }
  if (!candidates.size) return [];
  const conn: GitHubConnection = {
    octokit: createOctokit({ token: opts.env.GITHUB_TOKEN || opts.env.GH_TOKEN, baseUrl: opts.env.GITHUB_API_URL }),
    ...parseRepository(opts.repository),
  };
  const open = await listOpenPullRequests(conn, baseBranch);
  const ctx: Context = { ...opts, remote, baseBranch, conn, base, full };
  const out: Renumbered[] = [];
  for (const pr of open) {
    const spec = parseBranch(pr.headRef);
    if (!pr.sameRepository || spec?.kind !== 'register' || !candidates.has(pr.headRef)) continue;
    const path = versionFile(spec.model, spec.version);
    const onBase = (await repo.readFileAt(base, full(path)))!;
    const tip = await repo.fetchBranch(remote, pr.headRef);
    const text = tip && (await repo.readFileAt(tip, full(path)));
    if (!tip || text === undefined || text === onBase) continue;
    const overtaken: Overtaken = { pr, tip, text, model: spec.model, version: spec.version };
    const from = { pullRequest: pr.number, version: spec.version, branch: pr.headRef };
    try {
      const successor = successorOf(open, pr.number, spec.model);
      const to = successor ?? (await reopenAtNextNumber(ctx, overtaken));
      await retire(ctx, overtaken, to);
      out.push({ model: spec.model, from, status: successor ? 'closed' : 'renumbered', to });
    } catch (e) {
      out.push({ model: spec.model, from, status: 'failed', reason: e instanceof ModelgateError ? e.message : `unexpected ${(e as Error)?.name ?? 'error'}` });
    }
  }
  return out;
}

interface Context extends RenumberOptions {
  remote: string;
  baseBranch: string;
  conn: GitHubConnection;
  /** The base branch's commit the pull requests were found overtaken on. */
  base: string;
  /** A registry path as a repository path. */
  full: (path: string) => string;
}

interface Overtaken {
  pr: OpenPullRequest;
  /** The branch's commit read (the lease its deletion holds). */
  tip: string;
  /** Its version manifest. */
  text: string;
  model: string;
  version: number;
}

type Successor = NonNullable<Renumbered['to']>;

/** Plans the registration again on the base at the next free number and opens its pull request (see `renumberOvertaken`). */
async function reopenAtNextNumber(ctx: Context, o: Overtaken): Promise<Successor> {
  const { repo, remote } = ctx;
  const { model, version } = o;
  const path = versionFile(model, version);
  const loaded = loadManifest(o.text, path, 'ModelVersion');
  if (!loaded.value || loaded.problems.length) {
    throw new ModelgateError(
      'E_INVALID_MANIFEST',
      `${path} of ${o.pr.headRef} does not load: ${loaded.problems.map(formatProblem).join('; ')}`,
      ExitCode.content,
      {
        file: path,
      },
    );
  }
  const { apiVersion: _a, kind: _k, version: _v, ...draft } = loaded.value;
  const modelText = await repo.readFileAt(o.tip, ctx.full(modelFile(model)));
  const done = await applyChange({
    repo,
    prefix: ctx.prefix,
    mode: 'pr',
    remote,
    baseBranch: ctx.baseBranch,
    env: ctx.env,
    newBranch: true,
    claimBranch: true,
    ...(await registrant(repo, o.tip, ctx.base, [ctx.full(path), ctx.full(modelFile(model))])),
    repository: ctx.repository,
    bodyNote: `${continues(o.pr.number)}\nRe-numbered by ${ctx.by}: \`${ctx.baseBranch}\` took ${model}@${version} first, so the registration of #${o.pr.number} continues here at the next free number; only its version manifest was carried over.`,
    plan: async (snap) => {
      if (!snap) throw new ModelgateError('E_NO_COMMIT', `${remote} has no branch ${ctx.baseBranch}`, ExitCode.content);
      const next = await freeVersion(snap.source, model, await numbersOnBranches(repo, remote, model));
      const text = withVersion(o.text, path, version, next);
      assertValidVersion(text, model, next);
      const files: Record<string, string> = { [versionFile(model, next)]: text };
      const newModel = modelText !== undefined && (await snap.source.readFile(modelFile(model))) === undefined;
      if (newModel) {
        assertValidModel(modelText, model);
        files[modelFile(model)] = modelText;
      }
      const message = (n: number) =>
        `register ${model}@${n}\n\nartifact ${draft.artifact.uri}\nsha256 ${draft.artifact.sha256}\n\nRe-numbered-from: ${model}@${version} (#${o.pr.number})\nRe-numbered-by: ${ctx.by}\n`;
      return completeChange(snap.source, registrationChange({ version: next, files, newModel }, draft, message));
    },
  });
  const opened = done.pullRequest!;
  return { pullRequest: opened.number, url: opened.url, version: done.change.versions[0]!.version, branch: done.change.branch };
}

/**
 * The pull request an earlier run opened for `number` and could not close it after (its body
 * names it). Only a registration branch of this repository counts: a fork's pull request could
 * carry the marker to have this one closed.
 */
function successorOf(open: OpenPullRequest[], number: number, model: string): Successor | undefined {
  for (const p of open) {
    const spec = parseBranch(p.headRef);
    if (p.sameRepository && spec?.kind === 'register' && spec.model === model && p.body.includes(continues(number))) {
      return { pullRequest: p.number, url: p.url, version: spec.version, branch: p.headRef };
    }
  }
  return undefined;
}

/** Closes the overtaken pull request with a comment naming its successor, then deletes its branch while it is still at the commit read. */
async function retire(ctx: Context, o: Overtaken, successor: Successor): Promise<void> {
  await closePullRequest(
    ctx.conn,
    o.pr.number,
    `\`${ctx.baseBranch}\` took ${o.model}@${o.version} first, so this pull request could never merge. Re-numbered by ${ctx.by}: the registration continues as ${o.model}@${successor.version} in #${successor.pullRequest} (${successor.url}).`,
  );
  await ctx.repo.deleteRemoteBranch(ctx.remote, o.pr.headRef, o.tip).catch(() => false);
}

/**
 * The author and committer of the newest commit of the branch (not on the base) that wrote a
 * file carried over: the gate excludes them from approving the re-numbered pull request as it
 * did on the old one.
 */
async function registrant(
  repo: GitRepo,
  tip: string,
  base: string,
  paths: string[],
): Promise<{ author: Identity; committer: Identity } | Record<string, never>> {
  const last = await repo.lastCommitTouching(tip, paths, { exclude: base });
  return last?.author.name && last.author.email && last.committer.name && last.committer.email ? { author: last.author, committer: last.committer } : {};
}

/** The manifest with its top-level `version: <from>` replaced by `<to>`, every other byte kept. */
function withVersion(text: string, path: string, from: number, to: number): string {
  const node = nodeAt(parseForEdit(text, path), ['version']);
  if (!isScalar(node) || node.value !== from || !node.range) {
    throw new ModelgateError('E_INVALID_MANIFEST', `${path}: version is not the plain number ${from}`, ExitCode.content, { file: path });
  }
  return text.slice(0, node.range[0]) + String(to) + text.slice(node.range[1]);
}
