import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { registryPrefix } from '../registry/source.js';
import { evaluateGate } from '../gate/evaluate.js';
import { gateSidesFromGit } from '../gate/from-git.js';
import { renderText } from '../gate/report.js';
import { lazyStoreVerifier } from '../gate/store-verifier.js';
import { lazyStoreScanner } from '../gate/store-scanner.js';
import type { Contributors, PullRequestInfo, Review, TeamResolver } from '../gate/types.js';
import { createOctokit, parseRepository } from '../github/client.js';
import { GitHubTeams, readPullRequest } from '../github/pull-requests.js';
import { openRegistry } from '../registry/snapshot.js';

/**
 * `modelgate check`: the gate, run locally on two revisions. The policy comes from `--base`;
 * `--head` is read as data. Approvals come from GitHub with `--pr`; `--no-approvals` skips them
 * (a pre-push check); with neither, a rule that needs approvals leaves the check pending (exit 1).
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('check', ctx.argv);
  if (positionals.length) throw misuse(`check takes no arguments (got ${positionals.join(' ')})`);
  if (!values.base || !values.head) throw misuse('check needs --base and --head');
  if (values['no-approvals'] && values.pr) throw misuse('--no-approvals and --pr exclude each other');
  // Digits only: Number() would also read `0x10`, `1e3` or ` 7` as some other pull request.
  if (values.pr !== undefined && !/^[1-9][0-9]{0,14}$/.test(values.pr)) throw usageError(`--pr ${values.pr}: expected a pull request number`);
  const prNumber = values.pr === undefined ? undefined : Number(values.pr);

  const { repo } = openRegistry(ctx);
  const prefix = await registryPrefix(repo, { requireGit: true });
  const base = await repo.resolve(values.base);
  const head = await repo.resolve(values.head);
  if (!base) throw usageError(`--base ${values.base}: no such revision`);
  if (!head) throw usageError(`--head ${values.head}: no such revision`);
  const sides = await gateSidesFromGit(repo, base, head, prefix);

  let pullRequest: PullRequestInfo | undefined;
  let reviews: Review[] | undefined;
  let contributors: Contributors | undefined;
  let teams: TeamResolver = {
    isActiveMember: () => Promise.reject(new ModelgateError('E_NO_GITHUB', 'team membership needs GitHub: pass --pr <number>', ExitCode.usage)),
  };
  if (prNumber !== undefined) {
    const config = await sides.base.config();
    const { owner, repo: name } = parseRepository(config.github?.repository);
    const octokit = createOctokit({ token: ctx.env.GITHUB_TOKEN || ctx.env.GH_TOKEN, baseUrl: ctx.env.GITHUB_API_URL });
    const conn = { octokit, owner, repo: name };
    const read = await readPullRequest(conn, prNumber);
    // Approvals count on the commit being judged: a local head that differs from the PR's gets none.
    pullRequest = { ...read.pr, headSha: head };
    reviews = read.reviews;
    contributors = read.contributors;
    teams = new GitHubTeams(octokit, owner);
  }
  const artifacts = lazyStoreVerifier(() => sides.base.config().then((c) => c.storage), ctx.env);
  const scanner = lazyStoreScanner(() => sides.base.config().then((c) => c.storage), ctx.env);
  const decision = await evaluateGate({
    base: sides.base,
    head: sides.head,
    changedFiles: sides.changedFiles,
    pullRequest,
    reviews,
    contributors: contributors?.logins,
    unlinkedCommits: contributors?.unlinked,
    teams,
    artifacts,
    scanner,
    history: sides.history,
    options: { approvals: values['no-approvals'] ? 'skip' : 'require' },
    prefix,
  }).finally(() => Promise.all([artifacts.close(), scanner.close()]));
  emit(ctx, { base, head, upToDate: sides.upToDate, ...decision }, () => renderText(decision));
  return decision.decision === 'pass' ? ExitCode.ok : ExitCode.content;
};
