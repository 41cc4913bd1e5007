// The gate's real adapters: stage history proven from git (a pull request cannot forge it) and
// team membership and reviews read from the loopback GitHub emulator (fail closed on errors and timeouts).
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ModelgateError } from '../src/errors.js';
import { evaluateGate } from '../src/gate/evaluate.js';
import { gateSidesFromGit } from '../src/gate/from-git.js';
import { GitStageHistory } from '../src/gate/history.js';
import type { CheckResult, Decision } from '../src/gate/types.js';
import { GitRepo } from '../src/git/repo.js';
import { createOctokit } from '../src/github/client.js';
import { GitHubTeams, listReviews } from '../src/github/pull-requests.js';
import type { EmulatedRepo, GitHubEmulator } from '../src/local/github-emulator.js';
import { approve, artifacts, MEMBERS, POLICY, promote3, teams, version, vpath, gateInput } from './gate-fixtures.js';
import { startValidatedGitHubEmulator, type GitHubResponseValidator } from './helpers/github.js';

const gitEnv = { GIT_AUTHOR_NAME: 'Maria', GIT_AUTHOR_EMAIL: 'maria@example.com', GIT_COMMITTER_NAME: 'Maria', GIT_COMMITTER_EMAIL: 'maria@example.com' };
const checks = (d: Decision): CheckResult[] => d.transitions.flatMap((t) => [...t.checks, ...t.rules.flatMap((r) => r.results)]);
const failed = (d: Decision) => checks(d).filter((c) => c.status === 'fail');

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'modelgate-gate-adapters-'));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('previously: Production, proven from the base branch history', () => {
  let dir: string;
  let repo: GitRepo;
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...gitEnv } }).trim();
  const write = async (files: Record<string, string>) => {
    for (const [p, c] of Object.entries(files)) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), c);
    }
  };
  const commit = async (files: Record<string, string>, message: string) => {
    await write(files);
    git('add', '-A');
    git('commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  const v2 = (stage: 'Production' | 'Archived') => stringify(version(2, stage, { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 } }));
  // v4 as the merged experiment left it (its annotation makes the merge differ from main's side).
  const v4 = (stage: 'Production' | 'Archived') => stringify(version(4, stage, { annotations: { note: 'tried' } }));
  const rollbackTo = (n: number) => ({ [vpath(n)]: n === 4 ? v4('Production') : stringify(version(n, 'Production')), [vpath(2)]: v2('Archived') });

  async function judge(base: string, head: string) {
    const sides = await gateSidesFromGit(repo, base, head);
    return evaluateGate({
      base: sides.base,
      head: sides.head,
      changedFiles: sides.changedFiles,
      pullRequest: { number: 9, author: { login: 'maria', type: 'User' }, headSha: head },
      reviews: [approve('olga', head)],
      teams: teams(MEMBERS),
      artifacts: artifacts(),
      history: sides.history,
      options: { approvals: 'require' },
    });
  }

  let main: string;
  beforeAll(async () => {
    dir = join(tmp, 'history');
    await mkdir(dir);
    git('init', '-q', '-b', 'main');
    repo = new GitRepo(dir);
    await commit(
      {
        'modelgate.yaml': stringify({
          apiVersion: 'modelgate.dev/v1',
          kind: 'Registry',
          storage: { uri: 's3://ml-models/registry' },
          github: { repository: 'acme/model-registry' },
        }),
        'policies/promotion.yaml': stringify(POLICY),
        'models/fraud-detector/model.yaml': stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector' }),
        [vpath(1)]: stringify(version(1, 'Production')),
        [vpath(4)]: stringify(version(4, 'Staging')),
      },
      'v1 in Production',
    );
    await commit(
      { [vpath(1)]: stringify(version(1, 'Archived')), [vpath(2)]: v2('Production'), [vpath(4)]: stringify(version(4, 'Archived')) },
      'v2 in Production',
    );
    // A branch merged into main (a merge commit) that put v4 in Production and took it back:
    // only what main itself held counts, not the branch's intermediate commits.
    git('checkout', '-q', '-b', 'merged-experiment');
    await commit({ [vpath(4)]: stringify(version(4, 'Production')) }, 'v4 briefly in Production on a branch');
    await commit({ [vpath(4)]: v4('Archived') }, 'v4 back, annotated');
    git('checkout', '-q', 'main');
    await commit({ 'policies/README.md': 'policy notes\n' }, 'notes');
    git('merge', '-q', '--no-ff', '-m', 'merge experiment', 'merged-experiment');
    main = git('rev-parse', 'HEAD');
  });

  it('passes a rollback to a version the base branch held in Production', async () => {
    git('checkout', '-q', '-B', 'rollback-v1', main);
    const head = await commit(rollbackTo(1), 'roll back to v1');
    const d = await judge(main, head);
    expect(failed(d)).toEqual([]);
    expect(d.decision).toBe('pass');
    expect(checks(d).find((c) => c.check === 'previously: Production')!.detail).toBe('fraud-detector@1 was in Production on the base branch');
  });

  it('refuses a rollback whose pull request forges the history with its own commits', async () => {
    git('checkout', '-q', '-B', 'forged', main);
    await commit({ [vpath(4)]: v4('Production'), [vpath(2)]: v2('Archived') }, 'v4 in Production (forged)');
    await commit({ [vpath(4)]: v4('Archived'), [vpath(2)]: v2('Production') }, 'undo');
    // The branch also merges main back in: the pull request's commits are still not the base's.
    git('merge', '-q', '--no-ff', '-m', 'merge main', main);
    const head = await commit(rollbackTo(4), 'roll back to v4');
    expect(await new GitStageHistory(repo, head).wasInStage('fraud-detector', 4, 'Production')).toBe(true);
    const d = await judge(main, head);
    expect(d.decision).toBe('fail');
    expect(failed(d).map((c) => `${c.check}: ${c.detail}`)).toEqual(['previously: Production: fraud-detector@4 was never in Production on the base branch']);
  });

  it('does not count a stage held only inside a branch merged into the base', async () => {
    const history = new GitStageHistory(repo, main);
    expect(await history.wasInStage('fraud-detector', 4, 'Production')).toBe(false);
    expect(await history.wasInStage('fraud-detector', 1, 'Production')).toBe(true);
    git('checkout', '-q', '-B', 'rollback-v4', main);
    const head = await commit(rollbackTo(4), 'roll back to v4');
    expect((await judge(main, head)).decision).toBe('fail');
  });
});

describe('GitHub adapters of the gate', () => {
  let gh: GitHubEmulator & { validator: GitHubResponseValidator };
  let emulated: EmulatedRepo;
  const octokit = (timeoutMs?: number) => createOctokit({ token: 'token-maria', baseUrl: gh.url, timeoutMs });

  beforeAll(async () => {
    gh = await startValidatedGitHubEmulator();
    for (const u of ['maria', 'gina', 'carol', 'vera', 'mallory']) gh.addUser(u);
    gh.addUser('renovate[bot]', { type: 'Bot' });
    gh.addTeam('acme', 'ml-governance', ['Gina', { login: 'vera', state: 'pending' }]);
    emulated = gh.addRepo('acme', 'model-registry');
  });

  afterAll(async () => {
    await gh?.close();
  });

  it('counts active team members only: a pending invitation and a non-member do not', async () => {
    const t = new GitHubTeams(octokit(), 'acme');
    expect(await t.isActiveMember('ml-governance', 'gina')).toBe(true);
    expect(await t.isActiveMember('ml-governance', 'vera')).toBe(false);
    expect(await t.isActiveMember('ml-governance', 'mallory')).toBe(false);
    const pending = await evaluateGate(gateInput(promote3(), { reviews: [approve('vera'), approve('carol')], teams: t }));
    expect(pending.decision).toBe('pending');
    expect(checks(pending).find((c) => c.status === 'pending')!.missing).toBe('1 more from team ml-governance');
    const active = await evaluateGate(gateInput(promote3(), { reviews: [approve('GINA'), approve('carol')], teams: t }));
    expect(active.decision).toBe('pass');
    expect(gh.validator.violations).toEqual([]);
  });

  it('fails the gate when the team lookup answers 500 or does not answer in time', async () => {
    const route = 'GET /orgs/{org}/teams/{team_slug}/memberships/{username}';
    const broken = gh.inject(route, { status: 500 });
    try {
      const err = await new GitHubTeams(octokit(), 'acme').isActiveMember('ml-governance', 'gina').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelgateError);
      expect(err).toMatchObject({ code: 'E_GITHUB', exit: 3 });
      expect((err as Error).message).not.toContain('token-maria');
      const d = await evaluateGate(gateInput(promote3(), { reviews: [approve('gina'), approve('carol')], teams: new GitHubTeams(octokit(), 'acme') }));
      expect(d.decision).toBe('fail');
      expect(failed(d)[0]!.detail).toMatch(/HTTP 500/);
    } finally {
      broken.remove();
    }
    const slow = gh.inject(route, { delayMs: 5_000, times: 1 });
    try {
      const d = await evaluateGate(gateInput(promote3(), { reviews: [approve('gina'), approve('carol')], teams: new GitHubTeams(octokit(100), 'acme') }));
      expect(d.decision).toBe('fail');
      expect(failed(d)[0]!.detail).toMatch(/timed out/);
    } finally {
      slow.remove();
    }
    // Nobody listening: no answer at all is a failure too, never "not a member".
    const closed = createOctokit({ token: 'token-maria', baseUrl: 'http://127.0.0.1:9' });
    const err = await new GitHubTeams(closed, 'acme').isActiveMember('ml-governance', 'gina').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_GITHUB', message: 'GitHub: looking up gina in team acme/ml-governance failed (no answer)' });
  });

  it('reads reviews with their commit and reviewer type, so stale, bot and self approvals never count', async () => {
    const pull = gh.createPull({
      repo: emulated,
      head: 'promo',
      base: 'main',
      user: 'maria',
      title: 'Promote',
      headSha: 'b'.repeat(40),
      baseSha: 'a'.repeat(40),
    });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED', commit_id: 'c'.repeat(40) });
    gh.addReview(pull, { user: 'renovate[bot]', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'COMMENTED' });
    const reviews = await listReviews({ octokit: octokit(), owner: 'acme', repo: 'model-registry' }, pull.number);
    expect(reviews.map((r) => [r.user?.login, r.state, r.commitId])).toEqual([
      ['gina', 'APPROVED', 'c'.repeat(40)],
      ['renovate[bot]', 'APPROVED', 'b'.repeat(40)],
      ['carol', 'APPROVED', 'b'.repeat(40)],
      ['carol', 'COMMENTED', 'b'.repeat(40)],
    ]);
    expect(reviews[1]!.user!.type).toBe('Bot');
    const input = gateInput(promote3(), { reviews, teams: new GitHubTeams(octokit(), 'acme') });
    input.pullRequest!.headSha = pull.head.sha;
    const d = await evaluateGate(input);
    expect(d.decision).toBe('pending');
    expect(
      checks(d)
        .filter((c) => c.status === 'pending')
        .map((c) => c.missing),
    ).toEqual(['1 more from team ml-governance']);
    expect(gh.validator.violations).toEqual([]);
  });
});
