// Aliases end to end (SPEC v3 §9): `alias set … --pr` opens the pull request with the alias file
// and the canary pin, the built dist/action.js judges it by the alias rules, and after the merge
// the alias resolves and deploy/canary renders the version it points at.
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import type { EmulatedPull, GitHubEmulator } from '../src/local/github-emulator.js';
import type { PromotionPolicy } from '../src/manifest/types.js';
import { createActionRegistry } from './helpers/action.js';
import { gitAs, gitIdentity, pullRequestEvent, pullRequestReviewEvent, type GitHubResponseValidator } from './helpers/github.js';
import { POLICY, version } from './gate-fixtures.js';

const git = (cwd: string, args: string[], who = 'maria') => gitAs(who)(cwd, ...args);
const ALIASES = 'models/fraud-detector/aliases.yaml';

const ALIAS_POLICY: PromotionPolicy = {
  ...POLICY,
  rules: [
    ...POLICY.rules,
    {
      name: 'champion',
      alias: 'champion',
      approvals: [{ count: 1, teams: ['ml-governance'] }],
      champion: { auc: { maxRegression: 0.02 } },
      artifact: 'full',
    },
    { name: 'challenger', alias: 'challenger', approvals: [{ count: 1, users: ['carol'] }], artifact: 'exists' },
  ],
};

const registry = await createActionRegistry('modelgate-action-aliases-');
const { bare, dev, runner } = registry;
let gh: GitHubEmulator & { validator: GitHubResponseValidator };

const artifactOf = (n: number) => registry.storeArtifact('fraud-detector', Buffer.from(`fraud-detector ${n} bytes`));

async function cli(cwd: string, args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    cwd,
    env: { ...process.env, ...gitIdentity('maria'), GITHUB_TOKEN: 'token-maria', GITHUB_API_URL: gh.url },
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    tty: false,
  });
  return { code, stdout, stderr };
}

/** The built Action on the runner's checkout of main, for `pull`. */
async function judge(pull: EmulatedPull, event: 'pull_request_target' | 'pull_request_review' = 'pull_request_target') {
  git(runner, ['fetch', '-q', 'origin']);
  git(runner, ['reset', '-q', '--hard', 'origin/main']);
  const action = await registry.check(event, event === 'pull_request_target' ? pullRequestEvent(pull, 'opened') : pullRequestReviewEvent(pull), {
    env: { GITHUB_SERVER_URL: 'https://github.example', GITHUB_RUN_ID: '7' },
  });
  const report = action.outputs.report ? JSON.parse(await readFile(action.outputs.report, 'utf8')) : { transitions: [], problems: [] };
  return { decision: action.outputs.decision, report, summary: action.summary };
}

/** Commits `files` on a branch off main by hand (no modelgate), pushes it and opens a pull request. */
async function handPull(branch: string, files: Record<string, string>): Promise<EmulatedPull> {
  git(dev, ['checkout', '-q', '-B', branch, 'origin/main']);
  for (const [p, c] of Object.entries(files)) await registry.write(p, c);
  git(dev, ['add', '-A']);
  git(dev, ['commit', '-q', '-m', branch]);
  const pull = registry.pushPull(branch, { title: branch });
  git(dev, ['checkout', '-q', 'main']);
  return pull;
}

beforeAll(async () => {
  // modelgate's own commits (alias set --pr) are maria's: an account the gate can keep from approving.
  git(dev, ['config', 'user.name', 'maria']);
  git(dev, ['config', 'user.email', 'maria@example.com']);
  await registry.writeConfig({
    environments: {
      production: { stage: 'Production', path: 'deploy/production', namespace: 'models' },
      canary: { alias: 'challenger', path: 'deploy/canary', namespace: 'models-canary' },
    },
  });
  await registry.write('policies/promotion.yaml', stringify(ALIAS_POLICY));
  await registry.write(
    'models/fraud-detector/model.yaml',
    stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector', deploy: { modelFormat: 'sklearn' } }),
  );
  const metrics = { 1: 0.95, 2: 0.97, 3: 0.96, 4: 0.9 } as const;
  for (const [n, stage] of [
    [1, 'Archived'],
    [2, 'Production'],
    [3, 'Staging'],
    [4, 'Staging'],
  ] as const) {
    await registry.write(
      `models/fraud-detector/versions/${n}.yaml`,
      stringify(version(n, stage, { artifact: await artifactOf(n), metrics: { auc: metrics[n], recall: 0.9, latency_p95_ms: 40 } })),
    );
  }
  await registry.write(ALIASES, 'apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: fraud-detector\naliases:\n  champion: 2\n');
  expect(await runCli(['--registry', dev, '--quiet', 'sync'], { cwd: dev, env: {}, stdout: () => {}, stderr: () => {}, tty: false })).toBe(0);
  registry.publish('registry');
  gh = await registry.startGitHub({ users: ['maria', 'carol', 'gina'], teams: { 'ml-governance': ['gina'] } });
}, 120_000);

afterAll(async () => {
  expect(gh?.validator.violations ?? []).toEqual([]);
  await registry.close();
});

describe('aliases through the pull request, the built Action and the merge', () => {
  it('alias set fraud-detector@3 challenger --pr: passes with the challenger approval only; after merge the alias and deploy/canary name v3', async () => {
    const set = await cli(dev, ['--json', 'alias', 'set', 'fraud-detector@3', 'challenger', '--pr']);
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    const out = JSON.parse(set.stdout);
    expect(out).toMatchObject({ branch: 'modelgate/alias/fraud-detector/challenger', pullRequest: { created: true } });
    expect(out.files).toEqual([ALIASES, 'deploy/canary/fraud-detector.yaml', 'deploy/canary/kustomization.yaml']);
    const pull = gh.getPull(registry.repo, out.pullRequest.number)!;
    git(bare, ['update-ref', `refs/pull/${pull.number}/head`, pull.head.sha]);

    const waiting = await judge(pull);
    expect(waiting.decision).toBe('pending');
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    expect((await judge(pull, 'pull_request_review')).decision).toBe('pending');
    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const passed = await judge(pull, 'pull_request_review');
    expect(passed.decision).toBe('pass');
    const t = passed.report.transitions.find((x: { kind: string }) => x.kind === 'alias');
    expect(t).toMatchObject({ model: 'fraud-detector', version: 3, alias: { name: 'challenger', to: 3 } });
    expect(t.rules.map((r: { rule: string }) => r.rule)).toEqual(['challenger']);
    expect(passed.summary).toContain('fraud\\-detector&#64;challenger&#58; unset → v3');

    // GitHub's merge, then what serving sees.
    git(dev, ['fetch', '-q', 'origin']);
    git(dev, ['checkout', '-q', 'main']);
    git(dev, ['reset', '-q', '--hard', 'origin/main']);
    git(dev, ['merge', '-q', '--no-ff', '-m', `Merge pull request #${pull.number} from acme/${out.branch}`, `origin/${out.branch}`]);
    git(dev, ['push', '-q', 'origin', 'main']);
    git(runner, ['fetch', '-q', 'origin']);
    git(runner, ['reset', '-q', '--hard', 'origin/main']);
    const v3 = await artifactOf(3);
    const resolved = JSON.parse((await cli(runner, ['--json', 'resolve', 'fraud-detector@challenger'])).stdout);
    expect(resolved).toMatchObject({ model: 'fraud-detector', version: 3, sha256: v3.sha256 });
    const rendered = execFileSync(process.env.KUBECTL ?? 'kubectl', ['kustomize', join(runner, 'deploy/canary')], { encoding: 'utf8' });
    const isvc = parseAllDocuments(rendered)
      .map((d) => d.toJS())
      .find((d) => d.kind === 'InferenceService');
    expect(isvc.metadata.labels['modelgate.dev/version']).toBe('3');
    expect(isvc.metadata.annotations['modelgate.dev/sha256']).toBe(v3.sha256);
    expect(isvc.metadata.namespace).toBe('models-canary');
    expect((await cli(runner, ['sync', '--check'])).code).toBe(0);
  }, 120_000);

  it('fails champion moved to a version whose auc regresses past the bound, and hand edits to an Archived or missing version, a reserved name or an uncovered alias', async () => {
    const aliases = (body: string) => `apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: fraud-detector\naliases:\n  champion: 2\n${body}`;
    const regress = await handPull('champion-regress', {
      [ALIASES]: 'apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: fraud-detector\naliases:\n  champion: 4\n  challenger: 3\n',
    });
    gh.addReview(regress, { user: 'gina', state: 'APPROVED' });
    const r = await judge(regress, 'pull_request_review');
    expect(r.decision).toBe('fail');
    const failed = r.report.transitions.flatMap((t: { rules: Array<{ results: Array<{ check: string; status: string }> }> }) =>
      t.rules
        .flatMap((x) => x.results)
        .filter((c) => c.status === 'fail')
        .map((c) => c.check),
    );
    expect(failed).toEqual(['champion auc (max regression 0.02)']);

    for (const [branch, body, code] of [
      ['archived-target', '  shadow: 1\n', 'E_ALIAS_TARGET'],
      ['missing-target', '  challenger: 9\n', 'E_ALIAS_TARGET'],
      ['reserved-name', '  staging: 3\n', 'E_ALIAS_NAME'],
    ] as const) {
      const pull = await handPull(branch, { [ALIASES]: aliases(body) });
      const d = await judge(pull);
      expect({ branch, decision: d.decision }).toEqual({ branch, decision: 'fail' });
      expect(d.report.problems.map((p: { code: string }) => p.code)).toContain(code);
    }
    const uncovered = await handPull('uncovered-alias', { [ALIASES]: aliases('  shadow: 3\n') });
    const u = await judge(uncovered);
    expect(u.decision).toBe('fail');
    expect(u.report.uncovered).toEqual([ALIASES]);
  }, 180_000);
});
