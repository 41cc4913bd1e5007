// Pull requests crafted to get past the gate (issue 9, SPEC v2 §3): each is judged by the built
// dist/action.js as the runner runs it, against the loopback GitHub emulator and a real git
// remote, and by `modelgate check --pr` on the same commits: both must reach the same decision,
// and none of these may pass. What merging each would deploy is in the comment above it.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import type { EmulatedPull, GitHubEmulator } from '../src/local/github-emulator.js';
import type { PromotionPolicy } from '../src/manifest/types.js';
import { createActionRegistry, type ActionRun } from './helpers/action.js';
import { sealAndStampCatalog } from './helpers/catalog.js';
import { gitAs, gitIdentity, pullRequestEvent, pullRequestReviewEvent, type GitHubResponseValidator } from './helpers/github.js';
import { POLICY, version } from './gate-fixtures.js';

const git = (cwd: string, args: string[], who = 'maria') => gitAs(who)(cwd, ...args);

/** The test policy plus the template's rule for model settings and READMEs. */
const ATTACK_POLICY: PromotionPolicy = {
  ...POLICY,
  rules: [
    ...POLICY.rules,
    { name: 'model-settings', paths: ['models/*/model.yaml', 'models/*/README.md'], approvals: [{ count: 1, teams: ['ml-governance'] }] },
  ],
};

const registry = await createActionRegistry('modelgate-attacks-');
const { tmp, dev, runner, write } = registry;
let gh: GitHubEmulator & { validator: GitHubResponseValidator };

const quiet = { env: {}, stdout: () => {}, stderr: () => {}, tty: false };
const sync = async (dir: string) => expect(await runCli(['--registry', dir, '--quiet', 'sync'], { cwd: dir, ...quiet })).toBe(0);

/** Stores `model n bytes` under its content key and returns the manifest's artifact. */
const artifactOf = (model: string, n: number) => registry.storeArtifact(model, Buffer.from(`${model} ${n} bytes`));

const versionText = async (model: string, n: number, stage: 'None' | 'Staging' | 'Production' | 'Archived', over: Record<string, unknown> = {}) =>
  stringify(version(n, stage, { model, artifact: await artifactOf(model, n), ...over }));

interface PullOptions {
  /** Carry the pins the change moves (`modelgate sync` on the branch), as a careful attacker would. */
  pins?: boolean;
  base?: string;
  /** Who commits on the branch (a GitHub user linked by email). */
  author?: string;
  /** Builds the branch by hand instead of committing `files` on main. */
  build?: () => Promise<void> | void;
}

/** Commits `files` on a branch off main, pushes it and opens a pull request (GitHub's refs/pull/N/head too). */
async function openPull(branch: string, files: Record<string, string>, opts: PullOptions = {}): Promise<EmulatedPull> {
  git(dev, ['checkout', '-q', '-B', branch, 'origin/main']);
  if (opts.build) await opts.build();
  else {
    for (const [p, c] of Object.entries(files)) await write(p, c);
    if (opts.pins) await sync(dev);
    git(dev, ['add', '-A']);
    git(dev, ['commit', '-q', '-m', `attack: ${branch}`], opts.author);
  }
  return registry.pushPull(branch, { title: branch, ...(opts.base ? { base: opts.base } : {}) });
}

interface Verdict {
  action: ActionRun;
  cli: { decision: string; code: number };
  /** Every check that failed, `check: detail`, from the Action's report. */
  failures: string[];
}

/**
 * Judges the pull request twice: the built Action on the runner's checkout of main, and the CLI
 * `check --pr` on the same base and head. Their decisions must agree.
 */
async function judge(pull: EmulatedPull, event: 'pull_request_target' | 'pull_request_review' = 'pull_request_target'): Promise<Verdict> {
  git(runner, ['fetch', '-q', 'origin']);
  git(runner, ['reset', '-q', '--hard', 'origin/main']);
  const payload = event === 'pull_request_target' ? pullRequestEvent(pull, 'opened') : pullRequestReviewEvent(pull);
  const action = await registry.check(event, payload, { env: { GITHUB_SERVER_URL: 'https://github.example', GITHUB_RUN_ID: '7' } });
  const report = action.outputs.report ? JSON.parse(await readFile(action.outputs.report, 'utf8')) : { transitions: [] };
  type Check = { check: string; status: string; detail: string };
  const failures: string[] = report.transitions.flatMap((t: { checks?: Check[]; rules: Array<{ results: Check[] }> }) =>
    [...(t.checks ?? []), ...t.rules.flatMap((r) => r.results)].filter((c) => c.status === 'fail').map((c) => `${c.check}: ${c.detail}`),
  );
  git(runner, ['fetch', '-q', 'origin', `+refs/pull/${pull.number}/head:refs/remotes/pr/${pull.number}`]);
  let out = '';
  const code = await runCli(['--json', 'check', '--base', 'HEAD', '--head', `refs/remotes/pr/${pull.number}`, '--pr', String(pull.number)], {
    cwd: runner,
    env: { ...process.env, GITHUB_TOKEN: 'token-olga', GITHUB_API_URL: gh.url },
    stdout: (t) => (out += t),
    stderr: () => {},
    tty: false,
  });
  const cli = { decision: JSON.parse(out).decision ?? JSON.parse(out).error?.code, code };
  expect(cli.decision, `CLI check and the Action disagree on #${pull.number}`).toBe(action.outputs.decision);
  return { action, cli, failures };
}

/** The same manifest as one flow mapping (valid YAML 1.2) whose last field holds a `stage: Archived` line at column 0. */
const decoyed = (text: string) =>
  `${JSON.stringify({ ...parse(text), annotations: undefined }).slice(0, -1)},\n"annotations": {"note": "flow",\nstage: Archived\n}}\n`;

const statusOf = (pull: EmulatedPull) => gh.statuses.filter((s) => s.sha === pull.head.sha && s.context === 'modelgate').at(-1)?.state;

beforeAll(async () => {
  await registry.writeConfig();
  await write('policies/promotion.yaml', stringify(ATTACK_POLICY));
  await write('models/fraud-detector/model.yaml', stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector', deploy: {} }));
  await write('models/fraud-detector/README.md', '# fraud-detector\n');
  for (const [n, stage] of [
    [1, 'Archived'],
    [2, 'Production'],
    [3, 'Staging'],
  ] as const) {
    await write(
      `models/fraud-detector/versions/${n}.yaml`,
      await versionText('fraud-detector', n, stage, { metrics: { auc: 0.96, recall: 0.9, latency_p95_ms: 40 } }),
    );
  }
  // A hand-written file among the pins: the platform team's network policy for staging.
  await write(
    'deploy/staging/network-policy.yaml',
    'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: network-policy}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n',
  );
  await write('.github/workflows/modelgate.yml', 'name: modelgate\non: pull_request_target\n');
  await sync(dev);
  git(dev, ['add', '-A']);
  git(dev, ['commit', '-q', '-m', 'registry']);
  // A directory artifact in Staging, registered the way users do.
  const folder = join(tmp, 'embedder-model');
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'config.json'), '{"dim": 8}\n');
  await writeFile(join(folder, 'weights.bin'), 'w'.repeat(4096));
  const reg = await runCli(
    [
      '--registry',
      dev,
      '--quiet',
      'register',
      'embedder',
      folder,
      '--stage',
      'Staging',
      '--metric',
      'auc=0.97',
      '--metric',
      'recall=0.9',
      '--metric',
      'latency_p95_ms=30',
      '--code',
      `https://github.com/acme/embedder@${'c'.repeat(40)}`,
      '--dataset',
      'id=emb-2026',
    ],
    { cwd: dev, ...quiet, env: { ...process.env, ...gitIdentity('maria') } },
  );
  expect(reg).toBe(0);
  registry.publish();
  gh = await registry.startGitHub({
    users: ['maria', 'carol', 'olga', 'gina'],
    teams: { 'ml-governance': ['gina'], platform: ['pat', 'paula'], oncall: ['olga'] },
  });
}, 360_000);

afterAll(async () => {
  expect(gh?.validator.violations ?? []).toEqual([]);
  await registry.close();
});

const promote3 = async () => ({
  'models/fraud-detector/versions/3.yaml': (await readFile(join(dev, 'models/fraud-detector/versions/3.yaml'), 'utf8')).replace(
    'stage: Staging',
    'stage: Production',
  ),
  'models/fraud-detector/versions/2.yaml': (await readFile(join(dev, 'models/fraud-detector/versions/2.yaml'), 'utf8')).replace(
    'stage: Production',
    'stage: Archived',
  ),
});

describe('the gate against crafted pull requests, through dist/action.js and check --pr', () => {
  // Merging would run an arbitrary image in staging with nobody's approval.
  it('a new model whose model.yaml is a Deployment of any image waits for the model-settings approval', async () => {
    const pull = await openPull(
      'new-deployment-model',
      {
        'models/miner/model.yaml': stringify({
          apiVersion: 'modelgate.dev/v1',
          kind: 'Model',
          name: 'miner',
          deploy: { kind: 'Deployment', image: 'evil.example/miner:latest' },
        }),
        'models/miner/versions/1.yaml': await versionText('miner', 1, 'Staging'),
      },
      { pins: true },
    );
    const v = await judge(pull);
    expect(v.action.outputs.decision).toBe('pending');
    expect(statusOf(pull)).toBe('pending');
    expect(v.action.summary).toMatch(/model\\-settings/);
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    expect((await judge(pull, 'pull_request_review')).action.outputs.decision).toBe('pass');
  });

  // Merging would pin an attacker's object into deploy/staging (KServe loads the pickle).
  it('a version whose artifact is on another host or under another model fails on the merged registry', async () => {
    const foreign = await openPull('foreign-uri', {
      'models/fraud-detector/versions/4.yaml': stringify(
        version(4, 'Staging', {
          artifact: { uri: `https://evil.example/fraud-detector/sha256/${'e'.repeat(64)}/model.joblib`, sha256: 'e'.repeat(64), size: 10 },
        }),
      ),
    });
    const a = await judge(foreign);
    expect(a.action.outputs.decision).toBe('fail');
    expect(a.failures.join('\n')).toMatch(/artifact\.uri .*evil\.example.* is outside the registry's store/);
    const other = await artifactOf('embedder', 77);
    const stolen = await openPull('other-model-uri', {
      'models/fraud-detector/versions/4.yaml': stringify(version(4, 'Staging', { artifact: other })),
    });
    const b = await judge(stolen);
    expect(b.action.outputs.decision).toBe('fail');
    expect(b.failures.join('\n')).toMatch(/embedder/);
    expect(statusOf(stolen)).toBe('failure');
  });

  // Merging would overwrite the hand-written NetworkPolicy with a pin: the policy is gone.
  it("a new model named like a hand-written deploy file fails: pins never take another file's place", async () => {
    const pull = await openPull('network-policy-model', {
      'models/network-policy/model.yaml': stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'network-policy', deploy: {} }),
      'models/network-policy/versions/1.yaml': await versionText('network-policy', 1, 'Staging'),
    });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    const v = await judge(pull, 'pull_request_review');
    expect(v.action.outputs.decision).toBe('fail');
    expect(v.failures.join('\n')).toMatch(
      /deploy\/staging\/network-policy\.yaml: model network-policy would be pinned here, but this file was not written by modelgate/,
    );
  });

  // After the merge kubectl kustomize refuses deploy/staging (two InferenceServices named
  // legacy-scorer): Argo CD syncs nothing there any more, rollbacks included.
  it("a new model whose InferenceService takes a hand-written resource's name fails: environments render whole", async () => {
    const before = git(dev, ['rev-parse', 'origin/main']);
    git(dev, ['checkout', '-q', '-B', 'main', 'origin/main']);
    await write(
      'deploy/staging/legacy.yaml',
      'apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: legacy-scorer\nspec: {predictor: {model: {modelFormat: {name: sklearn}, storageUri: "s3://legacy/model.joblib"}}}\n',
    );
    const k = join(dev, 'deploy/staging/kustomization.yaml');
    await writeFile(k, `${await readFile(k, 'utf8')}- legacy.yaml\n`);
    git(dev, ['add', '-A']);
    git(dev, ['commit', '-q', '-m', 'the platform team serves the legacy scorer by hand']);
    git(dev, ['push', '-q', 'origin', 'main']);
    try {
      // The branch carries the pin exactly as a sync that does not look at legacy.yaml writes it.
      const kustomization = await readFile(k, 'utf8');
      const pull = await openPull(
        'legacy-scorer-model',
        {},
        {
          build: async () => {
            await write('models/legacy-scorer/model.yaml', stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'legacy-scorer', deploy: {} }));
            await write('models/legacy-scorer/versions/1.yaml', await versionText('legacy-scorer', 1, 'Staging'));
            await writeFile(k, kustomization.replace('- legacy.yaml\n', ''));
            await sync(dev);
            await writeFile(k, `${kustomization}- legacy-scorer.yaml\n`);
            git(dev, ['add', '-A']);
            git(dev, ['commit', '-q', '-m', 'attack: legacy-scorer-model']);
          },
        },
      );
      expect(await readFile(join(dev, 'deploy/staging/legacy-scorer.yaml'), 'utf8')).toMatch(/^kind: InferenceService$/m);
      gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
      const v = await judge(pull, 'pull_request_review');
      expect(v.action.outputs.decision).toBe('fail');
      expect(v.failures.join('\n')).toMatch(
        /InferenceService\.serving\.kserve\.io \S*legacy-scorer is declared by deploy\/staging\/.* and by deploy\/staging\//,
      );
      expect(statusOf(pull)).toBe('failure');

      // The same from the other side: the hand-written file renamed onto an existing model's pin.
      const renamed = await openPull('legacy-takes-fraud-detector', {
        'deploy/staging/legacy.yaml': (await readFile(join(dev, 'deploy/staging/legacy.yaml'), 'utf8')).replace('name: legacy-scorer', 'name: fraud-detector'),
      });
      const r = await judge(renamed);
      expect(r.action.outputs.decision).toBe('fail');
      expect(r.failures.join('\n')).toMatch(
        /InferenceService\.serving\.kserve\.io \S*fraud-detector is declared by deploy\/staging\/fraud-detector\.yaml and by deploy\/staging\/legacy\.yaml/,
      );
    } finally {
      git(dev, ['push', '-q', '-f', 'origin', `${before}:refs/heads/main`]);
      git(dev, ['fetch', '-q', 'origin']);
    }
  });

  // After the merge every sync would fail, rollbacks included.
  it('a model named kustomization, or a Deployment without an image, fails: the pins must render', async () => {
    const kust = await openPull('kustomization-model', {
      'models/kustomization/model.yaml': stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'kustomization', deploy: {} }),
      'models/kustomization/versions/1.yaml': await versionText('kustomization', 1, 'Staging'),
    });
    gh.addReview(kust, { user: 'gina', state: 'APPROVED' });
    const a = await judge(kust, 'pull_request_review');
    expect(a.action.outputs.decision).toBe('fail');
    expect(a.failures.join('\n')).toMatch(/kustomization/);
    expect(a.action.summary).not.toMatch(/not computed/);

    const noImage = await openPull('deployment-without-image', {
      'models/fraud-detector/model.yaml': stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector', deploy: { kind: 'Deployment' } }),
    });
    gh.addReview(noImage, { user: 'gina', state: 'APPROVED' });
    const b = await judge(noImage, 'pull_request_review');
    expect(b.action.outputs.decision).toBe('fail');
    expect(b.failures.join('\n')).toMatch(/image/);
  });

  // After the merge no further version could ever be registered.
  it('a version number far above the highest fails', async () => {
    const pull = await openPull('squat', { 'models/fraud-detector/versions/999999999.yaml': await versionText('fraud-detector', 999999999, 'None') });
    const v = await judge(pull);
    expect(v.action.outputs.decision).toBe('fail');
    expect(v.failures.join('\n')).toMatch(/999999999 is more than 100 above fraud-detector's highest/);
  });

  it('a version without model.yaml, or with a number written as hex, fails', async () => {
    const orphan = await openPull('orphan-version', { 'models/ghost/versions/1.yaml': await versionText('ghost', 1, 'None') });
    expect((await judge(orphan)).action.outputs.decision).toBe('fail');
    const hexAuc = (await versionText('fraud-detector', 4, 'None')).replace(/auc: .*/, 'auc: +0x1');
    const hexed = await openPull('hex-metric', { 'models/fraud-detector/versions/4.yaml': hexAuc });
    const v = await judge(hexed);
    expect(v.action.outputs.decision).toBe('fail');
    expect(v.action.stdout).toMatch(/::error title=modelgate [A-Z_]+,file=models\/fraud-detector\/versions\/4\.yaml,line=\d+/);
  });

  // A head that merged main with "ours" keeps the old tree: merging it reverts a promotion on main.
  it('a criss-cross head that keeps its own tree is judged by the real merge: the revert of a promotion on main is a change', async () => {
    // A side commit forks from main; the promotion of v3 lands on main (approved, as it should),
    // then main merges the side commit.
    const m0 = git(dev, ['rev-parse', 'origin/main']);
    git(dev, ['checkout', '-q', '-B', 'side', m0]);
    await write('notes/side.txt', 'side\n');
    git(dev, ['add', '-A']);
    git(dev, ['commit', '-q', '-m', 'side notes']);
    const side = git(dev, ['rev-parse', 'HEAD']);
    git(dev, ['checkout', '-q', '-B', 'promote-3', m0]);
    for (const [p, c] of Object.entries(await promote3())) await write(p, c);
    await sync(dev);
    git(dev, ['commit', '-q', '-am', 'Promote fraud-detector@3']);
    const promoted = git(dev, ['rev-parse', 'HEAD']);
    git(dev, ['merge', '-q', '--no-edit', side]);
    git(dev, ['push', '-q', 'origin', 'HEAD:main']);
    // The head merges the promotion into the side commit, keeping the side's tree ("ours").
    const pull = await openPull(
      'revert-by-merge',
      {},
      {
        build: () => {
          git(dev, ['checkout', '-q', '-B', 'revert-by-merge', side]);
          git(dev, ['merge', '-q', '-s', 'ours', '-m', 'Merge main', promoted]);
        },
      },
    );
    // Two merge bases; from the side commit the head changes nothing, which a merge-base gate saw.
    expect(git(dev, ['merge-base', '--all', 'origin/main', pull.head.sha]).split('\n').sort()).toEqual([promoted, side].sort());
    expect(git(dev, ['diff', '--name-only', side, pull.head.sha])).toBe('');
    const v = await judge(pull);
    expect(v.action.outputs.decision).toBe('fail');
    expect(v.action.summary).toMatch(/fraud\\-detector&#64;3&#58; Production → Staging/);
    expect(v.action.summary).toMatch(/^\+ {6}storageUri: pvc:\/\/modelgate-artifacts\/fraud-detector\/sha256\//m);
  });

  // A green status on the head would also satisfy a pull request of the same head into main.
  // Main holds its Production version written as one flow mapping whose annotations go on at
  // column 0 with a decoy `stage: Archived` line: a text match reads Archived. Merging a
  // promotion of another version that leaves that one alone would put two in Production.
  it('a promotion that leaves a Production version spelled to look Archived fails: its stage is read as the parser does', async () => {
    const before = git(dev, ['rev-parse', 'origin/main']);
    git(dev, ['checkout', '-q', '-B', 'main', 'origin/main']);
    const texts = new Map<string, string>();
    for (const n of [1, 2, 3])
      texts.set(`models/fraud-detector/versions/${n}.yaml`, await readFile(join(dev, `models/fraud-detector/versions/${n}.yaml`), 'utf8'));
    const inProduction = [...texts].find(([, t]) => /^stage: Production$/m.test(t));
    const other = [...texts].find(([, t]) => !/^stage: Production$/m.test(t));
    expect(inProduction && other).toBeTruthy();
    const [prodPath, prodText] = inProduction!;
    await write(prodPath, decoyed(prodText));
    git(dev, ['commit', '-q', '-am', 'the Production version rewritten']);
    git(dev, ['push', '-q', 'origin', 'main']);
    try {
      const [otherPath, otherText] = other!;
      const promote = otherText.replace(/^stage: \w+$/m, 'stage: Production');
      const pull = await openPull('promote-keep-production', { [otherPath]: promote });
      gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
      gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
      // The runner's catalog forged to say the same: the gate reads stages from git alone.
      git(runner, ['fetch', '-q', 'origin']);
      git(runner, ['reset', '-q', '--hard', 'origin/main']);
      expect(await runCli(['--registry', runner, '--quiet', 'list'], { cwd: runner, ...quiet })).toBe(0);
      const catalog = join(runner, '.git', 'modelgate', 'versions.tsv');
      const lines = (await readFile(catalog, 'utf8')).split('\n').slice(0, -2);
      const forged = lines.map((l) => (l.startsWith(`${prodPath}\t`) ? l.replace('\tProduction\t', '\tArchived\t') : l));
      expect(forged).not.toEqual(lines);
      sealAndStampCatalog(catalog, forged.map((l) => `${l}\n`).join(''));
      // Believed where the catalog serves (the work tree's list), so the forgery is a real one.
      let listed = '';
      await runCli(['--registry', runner, '--json', 'list', '--stage', 'Production', '--model', 'fraud-detector'], {
        cwd: runner,
        ...quiet,
        stdout: (t) => (listed += t),
      });
      expect(JSON.parse(listed)).toEqual([]);
      const v = await judge(pull, 'pull_request_review');
      expect(v.action.outputs.decision).toBe('fail');
      expect(v.failures.join('\n')).toMatch(/2 versions in Production/);
    } finally {
      git(dev, ['push', '-q', '-f', 'origin', `${before}:refs/heads/main`]);
      git(dev, ['fetch', '-q', 'origin']);
    }
  });

  it('a pull request into another branch fails', async () => {
    git(dev, ['push', '-q', 'origin', 'origin/main:refs/heads/release']);
    const pull = await openPull('into-release', { 'models/fraud-detector/README.md': '# fraud-detector\n\nv3 notes\n' }, { base: 'release' });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    const v = await judge(pull, 'pull_request_review');
    expect(v.action.outputs.decision).toBe('fail');
    expect(v.failures.join('\n')).toMatch(/release/);
  });

  // The base's policy judges: a branch anyone can push to could name itself the registry's branch
  // in its own modelgate.yaml and drop every approval; a green status on the head would then
  // satisfy the same head's pull request into main.
  it("a pull request into a branch whose own modelgate.yaml names it the registry's branch fails: only the default branch is trusted", async () => {
    git(dev, ['checkout', '-q', '-B', 'lax-release', 'origin/main']);
    const config = parse(await readFile(join(dev, 'modelgate.yaml'), 'utf8'));
    await write('modelgate.yaml', stringify({ ...config, github: { ...config.github, branch: 'lax-release' } }));
    await write('policies/promotion.yaml', stringify({ ...ATTACK_POLICY, rules: ATTACK_POLICY.rules.map(({ approvals: _approvals, ...rule }) => rule) }));
    git(dev, ['commit', '-q', '-am', 'a release branch with its own rules']);
    git(dev, ['push', '-q', '-f', 'origin', 'HEAD:refs/heads/lax-release']);
    const pull = await openPull('into-lax-release', { 'models/fraud-detector/README.md': '# fraud-detector\n\nunreviewed\n' }, { base: 'lax-release' });
    const v = await judge(pull);
    expect(v.action.outputs.decision).toBe('fail');
    expect(v.failures.join('\n')).toMatch(/^base branch: .*not the repository's default branch "main"/m);
    expect(statusOf(pull)).toBe('failure');
  });

  // KServe downloads the whole prefix: an extra object would be served with the model.
  it('a promotion of a directory artifact whose stored folder gained a file fails artifact: full', async () => {
    const manifest = parse(await readFile(join(dev, 'models/embedder/versions/1.yaml'), 'utf8'));
    const folderUri = new URL(manifest.artifact.uri.replace(/\/?$/, '/'));
    await writeFile(join(folderUri.pathname, 'extra.pkl'), 'surprise');
    const pull = await openPull(
      'promote-embedder',
      {
        'models/embedder/versions/1.yaml': (await readFile(join(dev, 'models/embedder/versions/1.yaml'), 'utf8')).replace(
          'stage: Staging',
          'stage: Production',
        ),
      },
      { pins: true },
    );
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
    const v = await judge(pull, 'pull_request_review');
    expect(v.action.outputs.decision).toBe('fail');
    expect(v.failures.join('\n')).toMatch(/extra\.pkl/);
    await rm(join(folderUri.pathname, 'extra.pkl'));
    expect((await judge(pull, 'pull_request_review')).action.outputs.decision).toBe('pass');
  });

  it('an approver who committed to the pull request does not count (excludeContributors)', async () => {
    git(dev, ['checkout', '-q', '-B', 'gina-helps', 'origin/main']);
    const pull = await openPull('gina-helps', { 'models/fraud-detector/README.md': '# fraud-detector\n\nowned by gina\n' }, { author: 'gina' });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    const v = await judge(pull, 'pull_request_review');
    expect(v.action.outputs.decision).toBe('pending');
    expect(v.action.summary).toMatch(/0\/1/);
  });

  // Merging would ship a change its own writer approved: gina commits onto maria's pull request
  // under an email linked to no GitHub account (invisible to excludeContributors) and approves it.
  it('a commit whose author is no GitHub account fails: its writer could be the approver (unlinkedCommits)', async () => {
    const pull = await openPull(
      'ghost-commit',
      {},
      {
        build: async () => {
          await write('models/fraud-detector/README.md', '# fraud-detector\n\nrewritten by nobody in particular\n');
          git(dev, ['add', '-A']);
          git(dev, ['commit', '-q', '-m', 'docs'], 'ghost');
        },
      },
    );
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    const v = await judge(pull, 'pull_request_review');
    expect(v.action.outputs.decision).toBe('fail');
    expect(v.failures.join('\n')).toMatch(/^contributors: commit [0-9a-f]{12}: author ghost@example\.com is not a GitHub account/m);
    expect(statusOf(pull)).toBe('failure');
  });

  it('the legitimate README edit passes with its approval', async () => {
    const pull = await openPull('readme', { 'models/fraud-detector/README.md': '# fraud-detector\n\nCalibrated on Q3.\n' });
    expect((await judge(pull)).action.outputs.decision).toBe('pending');
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    const v = await judge(pull, 'pull_request_review');
    expect(v.action.outputs.decision).toBe('pass');
    expect(statusOf(pull)).toBe('success');
  });

  it('a report longer than a GitHub comment is cut to fit; a comment that cannot be posted changes nothing', async () => {
    const files = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`notes/${String(i).padStart(4, '0')}-${'x'.repeat(40)}.txt`, `${i}\n`]));
    const pull = await openPull('huge-report', files);
    const v = await judge(pull);
    expect(v.action.outputs.decision).toBe('fail');
    const comment = gh.comments.filter((c) => c.issue_number === pull.number).at(-1)!;
    expect([...comment.body].length).toBeLessThanOrEqual(65_536);
    expect(comment.body).toMatch(/the whole report is in the job summary/);
    expect(v.action.summary.length).toBeGreaterThan(65_536);
    expect(statusOf(pull)).toBe('failure');

    const readme = await openPull('readme-no-comment', { 'models/fraud-detector/README.md': '# fraud-detector\n\nno comment\n' });
    gh.addReview(readme, { user: 'gina', state: 'APPROVED' });
    const fault = gh.inject('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { status: 500 });
    try {
      const r = await judge(readme, 'pull_request_review');
      expect(r.action.outputs.decision).toBe('pass');
      expect(r.action.code).toBe(0);
      expect(r.action.stdout).toMatch(/::warning::.*comment/);
      expect(statusOf(readme)).toBe('success');
    } finally {
      fault.remove();
    }
  });
});
