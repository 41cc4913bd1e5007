import { ExitCode, ModelgateError } from '../errors.js';
import { gateSidesFromGit, mergeTree } from '../gate/from-git.js';
import { escapeMarkdown, renderVerdict } from '../gate/report.js';
import type { Decision } from '../gate/types.js';
import { redactUrl, type GitRepo } from '../git/repo.js';
import { createOctokit, parseRepository } from '../github/client.js';
import { openOrUpdatePullRequest, type OpenedPullRequest } from '../github/promotion-pr.js';
import { MAX_LISTED_COMMITS } from '../github/pull-requests.js';
import { previewGate } from '../promote/apply-change.js';
import type { NotCarried } from './records.js';

/**
 * Where `import mlflow --pr` builds: on the import branch while it holds commits main does not and
 * merges into main cleanly (a re-run, or a run after one that was killed, continues it and its
 * pull request), else on main, replacing a branch whose pull request merged or that conflicts with
 * main now (its versions are imported again, on main). `held` is what the remote's branch holds
 * (undefined: no branch yet, claimed by the first push).
 */
export async function importBranchStart(repo: GitRepo, branch: string): Promise<{ base: string; held: string | undefined; ahead: number }> {
  const main = await repo.fetchBranch('origin', 'main');
  if (!main) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit on origin/main yet', ExitCode.content);
  const held = await repo.fetchBranch('origin', branch);
  if (held === undefined || (await repo.isAncestor(held, main))) return { base: main, held, ahead: 0 };
  const merges = await mergeTree(repo, main, held).then(
    () => true,
    (e: unknown) => {
      if (e instanceof ModelgateError && e.code === 'E_MERGE_CONFLICT') return false;
      throw e;
    },
  );
  return merges ? { base: held, held, ahead: await repo.commitsAhead(main, held) } : { base: main, held, ahead: 0 };
}

/**
 * How many more versions an import pull request holding `ahead` commits may register: GitHub lists
 * at most MAX_LISTED_COMMITS commits of a pull request and the gate must know every one's author,
 * so the versions and the stage and alias moves that follow them (at most `moves`) stay within it.
 */
export const versionRoom = (ahead: number, moves: number): number => Math.max(0, MAX_LISTED_COMMITS - ahead - moves);

/** Lines of the pull request body's lists: enough to review, short of GitHub's 65,536 characters. */
const LIST_LIMIT = 100;

/**
 * Opens the import's pull request from `branch` into main, or updates the one open for it: the
 * body says what the branch imports (read from the gate run on it, as the Action will judge it),
 * what could not be carried over, and who must approve. Undefined when the branch holds nothing
 * main does not (merged, or nothing imported): no pull request is opened for nothing.
 */
export async function openImportPullRequest(opts: {
  repo: GitRepo;
  prefix: string;
  branch: string;
  tip: string;
  env: NodeJS.ProcessEnv;
  trackingUri: string;
  notCarried: NotCarried[];
}): Promise<{ pullRequest: OpenedPullRequest; decision: Decision } | undefined> {
  const { repo, env } = opts;
  const main = await repo.fetchBranch('origin', 'main');
  if (!main || (await repo.isAncestor(opts.tip, main))) return undefined;
  const sides = await gateSidesFromGit(repo, main, opts.tip, opts.prefix);
  const decision = await previewGate(sides, env);
  const config = await sides.base.config();
  const conn = {
    octokit: createOctokit({ token: env.GITHUB_TOKEN || env.GH_TOKEN, baseUrl: env.GITHUB_API_URL }),
    ...parseRepository(config.github?.repository),
  };
  const body = importPullRequestBody(decision, opts.trackingUri, opts.notCarried);
  const pullRequest = await openOrUpdatePullRequest(conn, { branch: opts.branch, base: 'main', title: importTitle(decision), body });
  return { pullRequest, decision };
}

const newVersions = (d: Decision) => d.transitions.filter((t) => t.kind === 'new-version' && t.model !== undefined && t.version !== undefined);

function importTitle(d: Decision): string {
  const versions = newVersions(d);
  const models = new Set(versions.map((t) => t.model));
  return versions.length
    ? `Import ${versions.length} version${versions.length === 1 ? '' : 's'} of ${models.size} model${models.size === 1 ? '' : 's'} from MLflow`
    : 'Import stages and aliases from MLflow';
}

/** `1–4, 6`: sorted numbers as ranges. */
function ranges(numbers: number[]): string {
  const out: string[] = [];
  const sorted = [...numbers].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j === i ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j;
  }
  return out.join(', ');
}

/**
 * The import pull request's body: per model, the versions it registers, where their stages and
 * aliases end up (what the gate judges: the merged registry against main), what was not carried
 * over, and the gate's verdict before anyone approved.
 */
function importPullRequestBody(d: Decision, trackingUri: string, notCarried: readonly NotCarried[]): string {
  const e = escapeMarkdown;
  const byModel = new Map<string, { versions: number[]; stages: Map<string, number[]>; aliases: string[] }>();
  const of = (model: string) => byModel.get(model) ?? byModel.set(model, { versions: [], stages: new Map(), aliases: [] }).get(model)!;
  for (const t of newVersions(d)) {
    const m = of(t.model!);
    m.versions.push(t.version!);
    if (t.to && t.to !== 'None') m.stages.set(t.to, [...(m.stages.get(t.to) ?? []), t.version!]);
  }
  for (const t of d.transitions) {
    if (t.kind === 'stage' && t.model !== undefined && t.to) of(t.model).stages.set(t.to, [...(of(t.model).stages.get(t.to) ?? []), t.version!]);
    if (t.kind === 'alias' && t.model !== undefined && t.alias)
      of(t.model).aliases.push(t.alias.to === undefined ? `${t.alias.name} removed` : `${t.alias.name} → ${t.alias.to}`);
  }
  const count = newVersions(d).length;
  const out = [
    `Imported from the MLflow tracking server ${e(redactUrl(trackingUri))} by \`modelgate import mlflow --pr\`: ${count} version${count === 1 ? '' : 's'}, one commit each in MLflow's creation order (authored by the MLflow user at the original time), then the stage and alias moves that bring them where MLflow has them. Each version carries \`mlflow/model-version\`, so running the import again continues this pull request (or, once it is merged, imports only what is new).`,
    '',
    '| model | versions | stages | aliases |',
    '|---|---|---|---|',
    ...[...byModel.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .slice(0, LIST_LIMIT)
      .map(
        ([model, m]) =>
          `| ${e(model)} | ${m.versions.length ? ranges(m.versions) : '—'} | ${
            [...m.stages.entries()].map(([stage, ns]) => `${stage}: ${ranges(ns)}`).join('; ') || '—'
          } | ${m.aliases.map(e).join(', ') || '—'} |`,
      ),
    ...(byModel.size > LIST_LIMIT ? [`| … and ${byModel.size - LIST_LIMIT} more models | | | |`] : []),
    '',
    '### Not carried over',
    '',
    ...(notCarried.length
      ? notCarried.slice(0, LIST_LIMIT).map((n) => `- ${e(n.what)}: ${e(n.reason)}`)
      : ['- nothing: every version, stage and alias came over']),
    ...(notCarried.length > LIST_LIMIT ? [`- … and ${notCarried.length - LIST_LIMIT} more (the import's summary lists them all)`] : []),
    '',
    '### What reviewers approve',
    '',
    "The registry this pull request leaves on main: every version above in its final stage and every alias where it points, as the gate judges it (the merged registry against main, with the rules for a new version in that stage, for each alias and for a new model). The commits keep MLflow's history; their authors are MLflow's users, so a rule that does not set `unlinkedCommits: allow` needs each author's email linked to a GitHub account.",
    '',
    ...renderVerdict(d, LIST_LIMIT),
    '_Opened by modelgate import mlflow; the modelgate status on this pull request is the gate._',
  ];
  return out.join('\n');
}
