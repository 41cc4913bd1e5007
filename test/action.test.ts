// The built dist/action.js, run as the runner runs it, against the loopback GitHub emulator
// (every response validated against GitHub's OpenAPI description) and real git repositories.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import type { EmulatedPull, GitHubEmulator } from '../src/local/github-emulator.js';
import {
  mergeGroupEvent,
  mergeQueueBranch,
  pullRequestEvent,
  pullRequestReviewEvent,
  gitAs,
  workflowRunEvent,
  type GitHubResponseValidator,
} from './helpers/github.js';
import { POLICY, version } from './gate-fixtures.js';
import { createActionRegistry, type ActionRun } from './helpers/action.js';

/** SPEC §6: the only endpoints the Action may call. */
const ALLOWED = new Set([
  'GET /repos/{owner}/{repo}/pulls/{pull_number}',
  'GET /repos/{owner}/{repo}/pulls/{pull_number}/files',
  'GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews',
  'GET /repos/{owner}/{repo}/pulls/{pull_number}/commits',
  'GET /orgs/{org}/teams/{team_slug}/memberships/{username}',
  'POST /repos/{owner}/{repo}/statuses/{sha}',
  'GET /repos/{owner}/{repo}/issues/{issue_number}/comments',
  'POST /repos/{owner}/{repo}/issues/{issue_number}/comments',
  'PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}',
]);

const git = gitAs('Maria');

const registry = await createActionRegistry('modelgate-action-');
const { dev, runner, store, write } = registry;
let gh: GitHubEmulator & { validator: GitHubResponseValidator };

const TITLE =
  'Promote `x`"; rm -rf / #$(touch /tmp/modelgate-pwned) [click](http://evil.example) <img src=x onerror=alert(1)> @acme/platform <!-- modelgate -->';
const EVIL_BRANCH = 'modelgate/x-$(touch${IFS}pwned)-`id`-<img_src=x>';

/**
 * A branch off main in the dev clone with `files` changed, pushed, and opened as a pull request.
 * With `pins`, the branch also carries the deploy pins its change moves (`modelgate sync`), as
 * `modelgate promote --pr` writes them (SPEC v2 §4).
 */
async function openPull(branch: string, files: Record<string, string>, title = `change on ${branch}`, { pins = false } = {}): Promise<EmulatedPull> {
  git(dev, 'checkout', '-q', '-B', branch, 'origin/main');
  for (const [p, c] of Object.entries(files)) await write(p, c);
  if (pins) expect(await runCli(['--registry', dev, '--quiet', 'sync'], { cwd: dev, env: {}, stdout: () => {}, stderr: () => {}, tty: false })).toBe(0);
  git(dev, 'add', '-A');
  git(dev, 'commit', '-q', '-m', title.replace(/\n/g, ' '));
  return registry.pushPull(branch, { title });
}

const runCheck = (eventName: string, payload: unknown, inputs: Record<string, string> = {}): Promise<ActionRun> =>
  registry.check(eventName, payload, { inputs, env: { GITHUB_SERVER_URL: 'https://github.example', GITHUB_RUN_ID: '42' } });

const statusesOf = (sha: string) => gh.statuses.filter((s) => s.sha === sha && s.context === 'modelgate');
const commentsOf = (n: number) => gh.comments.filter((c) => c.issue_number === n);

beforeAll(async () => {
  const artifactOf = (n: number) => registry.storeArtifact('fraud-detector', Buffer.from(`model ${n} bytes`));
  await registry.writeConfig();
  await write('policies/promotion.yaml', stringify(POLICY));
  await write('models/fraud-detector/model.yaml', stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector', deploy: {} }));
  await write('.github/workflows/modelgate.yml', 'name: modelgate\non: pull_request_target\n');
  for (const [n, stage] of [
    [1, 'Archived'],
    [2, 'Production'],
    [3, 'Staging'],
    [4, 'Staging'],
  ] as const) {
    await write(
      `models/fraud-detector/versions/${n}.yaml`,
      stringify(version(n, stage, { artifact: await artifactOf(n), metrics: { auc: n === 2 ? 0.97 : 0.96, recall: 0.9, latency_p95_ms: 40 } })),
    );
  }
  // deploy/ pins in sync with main, as the sync after each merge leaves them.
  expect(await runCli(['--registry', dev, '--quiet', 'sync'], { cwd: dev, env: {}, stdout: () => {}, stderr: () => {}, tty: false })).toBe(0);
  registry.publish('registry');
  gh = await registry.startGitHub({
    users: ['maria', 'gina', 'carol', 'mallory', 'pat', 'paula', 'olga'],
    teams: { 'ml-governance': ['gina'], platform: ['pat', 'paula'], oncall: ['olga'] },
  });
}, 180_000);

afterAll(() => registry.close());

const promoteFiles = async () => ({
  'models/fraud-detector/versions/3.yaml': (await readFile(join(dev, 'models/fraud-detector/versions/3.yaml'), 'utf8')).replace(
    'stage: Staging',
    'stage: Production',
  ),
  'models/fraud-detector/versions/2.yaml': (await readFile(join(dev, 'models/fraud-detector/versions/2.yaml'), 'utf8')).replace(
    'stage: Production',
    'stage: Archived',
  ),
});

describe('dist/action.js check', () => {
  it('is pending until both approval groups approve the head, then passes; one comment, updated in place', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('modelgate/fraud-detector-v3-production', await promoteFiles(), 'Promote fraud-detector@3 to Production', { pins: true });

    const first = await runCheck('pull_request_target', pullRequestEvent(pull, 'opened'));
    expect(first.outputs.decision).toBe('pending');
    expect(first.code).toBe(1);
    expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['pending']);
    expect(commentsOf(pull.number)).toHaveLength(1);
    expect(first.summary).toContain('waiting for approvals');
    expect(first.summary).toMatch(/1 more from team ml\\-governance/);
    const report = JSON.parse(await readFile(first.outputs.report!, 'utf8'));
    expect(report.decision).toBe('pending');
    // The pin the promotion carries is judged with it; the merged registry is judged as a whole last.
    expect(report.transitions.map((t: { file: string }) => t.file)).toEqual([
      'deploy/production/fraud-detector.yaml',
      'models/fraud-detector/versions/2.yaml',
      'models/fraud-detector/versions/3.yaml',
      '(merged registry)',
    ]);

    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const second = await runCheck('pull_request_review', pullRequestReviewEvent(pull));
    expect(second.stdout).not.toMatch(/::error/);
    expect(second.outputs.decision).toBe('pass');
    expect(second.code).toBe(0);
    expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['pending', 'success']);
    expect(commentsOf(pull.number)).toHaveLength(1);
    expect(commentsOf(pull.number)[0]!.body).toContain('may merge');
    expect(second.summary).toContain('artifact \\(full\\)');
    expect(second.summary).toMatch(/re\\-hashed/);
    expect(second.summary).toMatch(/approved by gina/);
    // The Kubernetes change the merge causes: production's pin moves from v2 to v3.
    // KServe reads the file:// store through its claim: pvc://<claim>/<path below the store's root>.
    const [v2, v3] = [2, 3].map((n) =>
      (parse(git(dev, 'show', `origin/main:models/fraud-detector/versions/${n}.yaml`)).artifact.uri as string).replace(
        `${pathToFileURL(store).href}/`,
        'pvc://modelgate-artifacts/',
      ),
    );
    expect(second.summary).toContain('### What merging changes in deploy/');
    expect(second.summary).toContain('+++ b/deploy/production/fraud-detector.yaml');
    expect(second.summary).toContain(`-      storageUri: ${v2}`);
    expect(second.summary).toContain(`+      storageUri: ${v3}`);
    expect(second.summary).not.toContain('deploy/staging/');
    expect(gh.validator.violations).toEqual([]);
  });

  it('shows what merging really changes in deploy/ and fails a pull request whose deploy files are not the rendering of the merged registry', async () => {
    git(dev, 'checkout', '-q', 'main');
    const config = parse(git(dev, 'show', 'origin/main:modelgate.yaml'));
    const pin = git(dev, 'show', 'origin/main:deploy/production/fraud-detector.yaml') + '\n';
    const pull = await openPull('promote-and-move', {
      ...(await promoteFiles()),
      'modelgate.yaml': stringify({ ...config, environments: { production: { stage: 'Production', path: 'deploy/elsewhere', namespace: 'models' } } }),
      'deploy/production/fraud-detector.yaml': pin.replace(/^ {2}name: .*$/m, '  name: hijacked'),
    });
    const r = await runCheck('pull_request_target', pullRequestEvent(pull, 'opened'));
    expect(r.outputs.decision).toBe('fail');
    expect(statusesOf(pull.head.sha).at(-1)!.state).toBe('failure');
    // The diff is git's: base → the merge result, the hand edit included, as Argo CD would sync it.
    expect(r.summary).toContain('### What merging changes in deploy/');
    expect(r.summary).toContain('+++ b/deploy/production/fraud-detector.yaml');
    expect(r.summary).toMatch(/^\+ {2}name: hijacked$/m);
    expect(r.summary).toContain('does not carry the pins its change moves&#58; deploy/elsewhere/fraud\\-detector\\.yaml');
    expect(r.summary).toMatch(/deploy\/production\/fraud\\-detector\\\.yaml&#58; changed[^]*not covered by any rule/);
    expect(r.summary).toContain('modelgate sync');
  });

  it('fails with an annotation on the file and line of an invalid manifest', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('broken', {
      'models/fraud-detector/versions/5.yaml':
        'apiVersion: modelgate.dev/v1\nkind: ModelVersion\nmodel: fraud-detector\nversion: 5\nstage: None\nbogus: true\n',
    });
    const r = await runCheck('pull_request_target', pullRequestEvent(pull, 'opened'));
    expect(r.outputs.decision).toBe('fail');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/::error title=modelgate [A-Z_]+,file=models\/fraud-detector\/versions\/5\.yaml,line=\d+,col=\d+::/);
    expect(statusesOf(pull.head.sha).at(-1)!.state).toBe('failure');
  });

  it('fails (never pending) when the team lookup answers 500', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('promote-500', await promoteFiles(), undefined, { pins: true });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const fault = gh.inject('GET /orgs/{org}/teams/{team_slug}/memberships/{username}', { status: 500 });
    try {
      const r = await runCheck('pull_request_review', pullRequestReviewEvent(pull));
      expect(r.outputs.decision).toBe('fail');
      expect(statusesOf(pull.head.sha).at(-1)).toMatchObject({ state: 'failure' });
      expect(r.summary).toMatch(/HTTP 500/);
    } finally {
      fault.remove();
    }
  });

  it('rides out a rate limit and 5xx answers from GitHub: asked again, one status and one comment, the usual decision', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('promote-flaky', await promoteFiles(), undefined, { pins: true });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const faults = [
      gh.inject('GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews', { status: 429, headers: { 'retry-after': '1' }, times: 1 }),
      gh.inject('GET /orgs/{org}/teams/{team_slug}/memberships/{username}', { status: 502, times: 2 }),
      gh.inject('POST /repos/{owner}/{repo}/statuses/{sha}', { status: 503, times: 1 }),
      // GitHub creates the comment and answers 502: the Action finds it instead of posting a second one.
      gh.inject('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { status: 502, times: 1, afterHandling: true }),
    ];
    try {
      const r = await runCheck('pull_request_review', pullRequestReviewEvent(pull));
      expect(r.stdout).not.toMatch(/::error|GitHub:/);
      expect(r.outputs.decision).toBe('pass');
      expect(faults.map((f) => f.hits)).toEqual([1, 2, 1, 1]);
      expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['success']);
      expect(commentsOf(pull.number)).toHaveLength(1);
    } finally {
      for (const f of faults) f.remove();
    }
    expect(gh.validator.violations).toEqual([]);
  });

  it('counts no stale, bot or self approval, and fails when the reviews or the pull request cannot be read', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('promote-reviews', await promoteFiles(), undefined, { pins: true });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'APPROVED', commit_id: git(dev, 'rev-parse', 'origin/main') });
    gh.addReview(pull, { user: 'github-actions[bot]', state: 'APPROVED' });
    gh.addReview(pull, { user: 'maria', state: 'APPROVED' });
    const r = await runCheck('pull_request_review', pullRequestReviewEvent(pull));
    expect(r.outputs.decision).toBe('pending');
    expect(statusesOf(pull.head.sha).at(-1)).toMatchObject({ state: 'pending' });
    expect(r.summary).toMatch(/approved by gina/);
    expect(r.summary).toMatch(/missing 1 more from carol, dave/);

    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const fault = gh.inject('GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews', { status: 500 });
    try {
      const broken = await runCheck('pull_request_review', pullRequestReviewEvent(pull));
      expect(broken.code).toBe(1);
      expect(broken.outputs.decision).toBe('fail');
      expect(broken.stdout).toContain(`GitHub: listing the reviews of #${pull.number} failed (HTTP 500)`);
      expect(statusesOf(pull.head.sha).at(-1)).toMatchObject({ state: 'failure' });
    } finally {
      fault.remove();
    }
    const healed = await runCheck('pull_request_review', pullRequestReviewEvent(pull));
    expect(healed.outputs.decision).toBe('pass');
    expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['pending', 'failure', 'success']);
    // The pull request itself cannot be read: the green status from the last run must not stand.
    const noPull = gh.inject('GET /repos/{owner}/{repo}/pulls/{pull_number}', { status: 502 });
    try {
      const r2 = await runCheck('pull_request_review', pullRequestReviewEvent(pull));
      expect(r2.outputs.decision).toBe('fail');
      expect(r2.stdout).toContain(`GitHub: reading pull request #${pull.number} failed (HTTP 502)`);
      expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['pending', 'failure', 'success', 'failure']);
    } finally {
      noPull.remove();
    }
  });

  it('needs the platform team for a pull request that edits the workflow or the policy', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('weaken', {
      '.github/workflows/modelgate.yml': 'name: modelgate\non: pull_request\njobs: {}\n',
      'policies/promotion.yaml': stringify({ ...POLICY, rules: [{ name: 'anything', paths: ['**'] }] }),
    });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    const r = await runCheck('pull_request_review', pullRequestReviewEvent(pull));
    expect(r.outputs.decision).toBe('pending');
    expect(r.summary).toMatch(/2 more from team platform/);
  });

  it('renders a pull request title and branch carrying shell and Markdown injection as inert text', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull(EVIL_BRANCH, { 'notes/readme.txt': 'hi\n' }, TITLE);
    expect(pull.head.ref).toBe(EVIL_BRANCH);
    const r = await runCheck('pull_request_target', pullRequestEvent(pull, 'opened'));
    expect(r.outputs.decision).toBe('fail');
    expect(existsSync('/tmp/modelgate-pwned')).toBe(false);
    expect(existsSync(join(runner, 'pwned'))).toBe(false);
    const comment = commentsOf(pull.number)[0]!.body;
    for (const text of [r.summary, comment]) {
      expect(text).not.toContain('<img');
      expect(text).not.toContain('](http://evil.example)');
      expect(text).not.toContain('@acme/platform');
      expect(text).not.toContain('$(touch');
      expect(text).not.toContain('`id`');
    }
    expect(comment.indexOf('<!-- modelgate -->')).toBe(0);
    expect(comment.lastIndexOf('<!-- modelgate -->')).toBe(0);
  });

  it('uses only the endpoints SPEC §6 lists, and every response was valid', () => {
    const used = new Set(gh.requests.map((r) => `${r.method} ${r.route}`));
    expect([...used].filter((u) => !ALLOWED.has(u))).toEqual([]);
    expect(used.has('POST /repos/{owner}/{repo}/statuses/{sha}')).toBe(true);
    expect(used.has('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}')).toBe(true);
    expect(gh.validator.violations).toEqual([]);
    expect(gh.validator.checked).toBeGreaterThan(10);
  });

  it('refuses to run on a checkout of the pull request head', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('head-checkout', { 'notes/x.txt': 'x\n' });
    git(runner, 'fetch', '-q', 'origin', `refs/pull/${pull.number}/head`);
    git(runner, 'checkout', '-q', '--detach', 'FETCH_HEAD');
    try {
      const r = await runCheck('pull_request_target', pullRequestEvent(pull, 'opened'));
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/checked out the pull request head/);
      expect(statusesOf(pull.head.sha).at(-1)!.state).toBe('failure');
    } finally {
      git(runner, 'checkout', '-q', 'main');
    }
  });
});

// Reviews re-run the gate through workflow_run: the untrusted `modelgate review` run records the
// number, the trusted workflow on the default branch passes it as the pull-request input.
describe('dist/action.js check on workflow_run', () => {
  let reviewed: EmulatedPull;

  it('judges the pull request the pull-request input names (a fork: no listed pull requests) and posts the status', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = (reviewed = await openPull('wr-promote', await promoteFiles(), 'Promote fraud-detector@3 (workflow_run)', { pins: true }));
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    const pending = await runCheck('workflow_run', workflowRunEvent(pull), { 'pull-request': String(pull.number) });
    expect(pending.outputs.decision).toBe('pending');
    expect(pending.code).toBe(1);
    expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['pending']);

    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const r = await runCheck('workflow_run', workflowRunEvent(pull), { 'pull-request': ` ${pull.number}\n` });
    expect(r.stdout).not.toMatch(/::error/);
    expect(r.outputs.decision).toBe('pass');
    expect(r.code).toBe(0);
    expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['pending', 'success']);
    expect(statusesOf(pull.head.sha).at(-1)!.target_url).toBe('https://github.example/acme/model-registry/actions/runs/42');
    expect(commentsOf(pull.number)).toHaveLength(1);
    expect(r.summary).toMatch(/approved by gina/);
    const report = JSON.parse(await readFile(r.outputs.report!, 'utf8'));
    expect(report.pullRequest.number).toBe(pull.number);
    expect(gh.validator.violations).toEqual([]);
  });

  it('takes the number from workflow_run.pull_requests (a same-repository branch) and accepts an input that agrees', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('wr-listed', { 'models/fraud-detector/versions/6.yaml': 'apiVersion: modelgate.dev/v1\nkind: ModelVersion\nbogus: true\n' });
    const listed = await runCheck('workflow_run', workflowRunEvent(pull, { listed: true }));
    expect(listed.outputs.decision).toBe('fail');
    expect(listed.stdout).toMatch(/file=models\/fraud-detector\/versions\/6\.yaml/);
    expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['failure']);
    const both = await runCheck('workflow_run', workflowRunEvent(pull, { listed: true }), { 'pull-request': String(pull.number) });
    expect(both.outputs.decision).toBe('fail');
    expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['failure', 'failure']);
  });

  it.each(['1; rm -rf /', '12abc', '-3', '0', '1e3', '0x1f', '$(id)', '99999999999999999999'])(
    'fails cleanly on the pull-request input %j: a usage error, no API call, no status',
    async (input) => {
      git(dev, 'checkout', '-q', 'main');
      const pull = reviewed;
      const before = gh.statuses.length;
      const requests = gh.requests.length;
      const r = await runCheck('workflow_run', workflowRunEvent(pull, { listed: false }), { 'pull-request': input });
      expect(r.code).toBe(1);
      expect(r.outputs.decision).toBe('fail');
      expect(r.stdout).toMatch(/::error::input pull-request must be a pull request number \(digits only\)/);
      expect(gh.statuses.length).toBe(before);
      expect(gh.requests.length).toBe(requests);
      expect(existsSync(join(runner, 'pwned'))).toBe(false);
    },
  );

  it("refuses an input that contradicts the run's listed pull request, or the pull request event's own number", async () => {
    const pull = reviewed;
    const before = gh.statuses.length;
    const wr = await runCheck('workflow_run', workflowRunEvent(pull, { listed: true }), { 'pull-request': String(pull.number + 100) });
    expect(wr.code).toBe(1);
    expect(wr.stdout).toContain(`input pull-request #${pull.number + 100} is not among the pull requests of the workflow run (#${pull.number})`);
    const prt = await runCheck('pull_request_target', pullRequestEvent(pull, 'reopened'), { 'pull-request': String(pull.number + 1) });
    expect(prt.code).toBe(1);
    expect(prt.stdout).toContain(`is not the pull_request_target event's pull request #${pull.number}`);
    expect(gh.statuses.length).toBe(before);
  });

  it('fails with a clear message when neither the event nor the input names a pull request', async () => {
    const pull = reviewed;
    const before = gh.statuses.length;
    const r = await runCheck('workflow_run', workflowRunEvent(pull, { listed: false }));
    expect(r.code).toBe(1);
    expect(r.outputs.decision).toBe('fail');
    expect(r.stdout).toMatch(/::error::the workflow_run event names no pull request and the input pull-request is empty/);
    expect(gh.statuses.length).toBe(before);
  });

  it('refuses a checkout of the head on workflow_run too', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('wr-head-checkout', { 'notes/y.txt': 'y\n' });
    git(runner, 'fetch', '-q', 'origin', `refs/pull/${pull.number}/head`);
    git(runner, 'checkout', '-q', '--detach', 'FETCH_HEAD');
    try {
      const r = await runCheck('workflow_run', workflowRunEvent(pull), { 'pull-request': String(pull.number) });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/checked out the pull request head/);
      expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['failure']);
    } finally {
      git(runner, 'checkout', '-q', 'main');
    }
  });

  it('still uses only the endpoints SPEC §6 lists', () => {
    const used = new Set(gh.requests.map((r) => `${r.method} ${r.route}`));
    expect([...used].filter((u) => !ALLOWED.has(u))).toEqual([]);
    expect(gh.validator.violations).toEqual([]);
  });
});

// The base is the event's (SPEC v3 §14): the policy comes from the base commit the API names
// (or the merge group's base), whatever the workflow checked out.
describe('dist/action.js check: the base comes from the event', () => {
  /** The promotion of v3 with a policy that drops every approval: what a careless checkout would judge by. */
  const laxPolicy = () => stringify({ ...POLICY, rules: POLICY.rules.map(({ approvals: _approvals, ...rule }) => rule) });

  // Merging would put v3 into Production and drop every approval from the policy, approved by nobody.
  it('refuses a checkout of refs/pull/N/merge: judged there, the pull request would bring its own policy and pass', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('weaken-and-promote', { ...(await promoteFiles()), 'policies/promotion.yaml': laxPolicy() }, 'Promote v3', { pins: true });
    // GitHub's test merge of the pull request into its base, as a workflow on `pull_request` checks it out.
    git(dev, 'checkout', '-q', '--detach', 'origin/main');
    git(dev, 'merge', '-q', '--no-ff', '-m', `Merge ${pull.head.sha} into main`, pull.head.sha);
    git(dev, 'push', '-q', 'origin', `HEAD:refs/pull/${pull.number}/merge`);
    git(runner, 'fetch', '-q', 'origin', `refs/pull/${pull.number}/merge`);
    git(runner, 'checkout', '-q', '--detach', 'FETCH_HEAD');
    try {
      const r = await runCheck('pull_request_target', pullRequestEvent(pull, 'opened'));
      expect(r.code).toBe(1);
      expect(r.outputs.decision).toBe('fail');
      expect(r.stdout).toMatch(/::error::the workflow checked out the pull request head \(or a merge of it/);
      expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['failure']);
    } finally {
      git(runner, 'checkout', '-q', 'main');
      git(dev, 'checkout', '-q', 'main');
    }
  });

  // Merging would put v3 into Production with no approval: the checkout's policy asks for none.
  it("reads the policy from the pull request's base commit, not from a checkout of another branch", async () => {
    git(runner, 'checkout', '-q', '-B', 'lax', 'main');
    await writeFile(join(runner, 'policies/promotion.yaml'), laxPolicy());
    git(runner, 'commit', '-q', '-am', 'a lax policy nobody reviewed');
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('promote-on-lax', await promoteFiles(), 'Promote v3', { pins: true });
    try {
      const r = await runCheck('pull_request_target', pullRequestEvent(pull, 'opened'));
      expect(r.outputs.decision).toBe('pending');
      expect(statusesOf(pull.head.sha).map((s) => s.state)).toEqual(['pending']);
      expect(r.summary).toMatch(/1 more from team ml\\-governance/);
    } finally {
      git(runner, 'checkout', '-q', 'main');
    }
  });

  /** The queue's group for `pull`: its head merged onto main (plus `extra` files, a forged group), pushed where GitHub keeps it. */
  async function queue(pull: EmulatedPull, extra: Record<string, string> = {}) {
    const baseSha = git(dev, 'rev-parse', 'origin/main');
    git(dev, 'checkout', '-q', '--detach', baseSha);
    git(dev, 'merge', '-q', '--no-ff', '-m', `Merge pull request #${pull.number}`, pull.head.sha);
    for (const [p, c] of Object.entries(extra)) await write(p, c);
    if (Object.keys(extra).length) {
      git(dev, 'add', '-A');
      git(dev, 'commit', '-q', '-m', 'and one more thing');
    }
    const headSha = git(dev, 'rev-parse', 'HEAD');
    git(dev, 'push', '-q', 'origin', `HEAD:refs/heads/${mergeQueueBranch(pull, baseSha)}`);
    git(dev, 'checkout', '-q', 'main');
    return { headSha, baseSha };
  }

  it('judges a merge_group: the queue commit of the approved head passes, with the status on the group commit', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('queued-promotion', await promoteFiles(), 'Promote v3 (queued)', { pins: true });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const group = await queue(pull);
    const r = await runCheck('merge_group', mergeGroupEvent(pull, group));
    expect(r.stdout).not.toMatch(/::error/);
    expect(r.outputs.decision).toBe('pass');
    expect(statusesOf(group.headSha).map((s) => s.state)).toEqual(['success']);
    expect(JSON.parse(await readFile(r.outputs.report!, 'utf8')).pullRequest.number).toBe(pull.number);
  });

  // Merging the group would also archive fraud-detector@4, which nobody approved.
  it('fails a merge_group whose commit holds more than the approved head merged onto its base', async () => {
    git(dev, 'checkout', '-q', 'main');
    const pull = await openPull('queued-and-more', await promoteFiles(), 'Promote v3 (queued, forged group)', { pins: true });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const v4 = (await readFile(join(dev, 'models/fraud-detector/versions/4.yaml'), 'utf8')).replace('stage: Staging', 'stage: Archived');
    const group = await queue(pull, { 'models/fraud-detector/versions/4.yaml': v4 });
    const r = await runCheck('merge_group', mergeGroupEvent(pull, group));
    expect(r.code).toBe(1);
    expect(r.outputs.decision).toBe('fail');
    expect(r.stdout).toMatch(/::error::the merge group's commit [0-9a-f]{12} is not pull request #\d+'s head/);
    expect(statusesOf(group.headSha).map((s) => s.state)).toEqual(['failure']);
  });

  it('still uses only the endpoints SPEC §6 lists, every response valid', () => {
    const used = new Set(gh.requests.map((r) => `${r.method} ${r.route}`));
    expect([...used].filter((u) => !ALLOWED.has(u))).toEqual([]);
    expect(gh.validator.violations).toEqual([]);
  });
});
