import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGitHubEmulator, type EmulatedPull, type GitHubEmulator } from '../local/github-emulator.js';
import { serveGitHttp, type GitHttpServer } from '../local/git-http-backend.js';
import { logisticRegressionSafetensors } from './model-file.js';
import { showLivePages, writeStaticSite } from './pages.js';
import type { Decision } from '../gate/types.js';
import { DemoFailure, expectExit, Narrator, runProcess, type ProcessResult } from './narrator.js';

const OWNER = 'acme';
const REPO = 'model-registry';
const MODEL = 'churn-predictor';

interface Demo {
  ws: string;
  registry: string;
  training: string;
  remoteUrl: string;
  gh: GitHubEmulator;
  git: GitHttpServer;
  n: Narrator;
  cli: string;
  action: string;
  /** The gate's private signing key (PEM): the `modelgate` environment's MODELGATE_SIGNING_KEY. */
  signingKey: string;
}

/**
 * The whole lifecycle on one machine, narrated: a registry from the template with a git remote
 * served by `git http-backend` on loopback and the embedded file:// store; two registered
 * versions; a gated promotion pull request against the local GitHub emulator (pending,
 * approved, passing, merged, each pass signed as a decision record); the sync that pins
 * production; a refused promotion; a rollback; a challenger set (with the canary that follows it)
 * and promoted to champion; the history with its approvers; and
 * `verify --decisions` naming the version that got to Staging without the gate; and `modelgate
 * serve` on the registry, the MLflow client resolving `@champion` through it. Every step checks its outcome: a step that misbehaves ends the demo non-zero.
 */
export async function runDemo(options: { dir?: string } = {}): Promise<number> {
  const n = new Narrator();
  const here = dirname(fileURLToPath(import.meta.url));
  const ws = resolve(options.dir ?? 'modelgate-demo');
  const started = Date.now();
  let gh: GitHubEmulator | undefined;
  let git: GitHttpServer | undefined;
  try {
    await rm(ws, { recursive: true, force: true });
    await mkdir(join(ws, 'remote'), { recursive: true });
    git = await serveGitHttp(join(ws, 'remote'));
    gh = await startGitHubEmulator();
    const demo: Demo = {
      ws,
      registry: join(ws, 'registry'),
      training: join(ws, 'training'),
      remoteUrl: `${git.url}/${REPO}.git`,
      gh,
      git,
      n,
      cli: join(here, 'cli.js'),
      action: join(here, 'action.js'),
      signingKey: '',
    };
    if (!existsSync(demo.action)) throw new DemoFailure(`${demo.action} is missing: run npm run build first`);
    await story(demo);
    await writeStaticSite({ n, cli: demo.cli, registry: demo.registry, out: join(ws, 'site'), env: env() });
    n.say(`live pages: run npm run modelgate -- --registry ${relative(process.cwd(), demo.registry) || '.'} serve, then open http://127.0.0.1:8080/`);
    n.heading(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    n.say(`The registry is left at ${demo.registry}; explore it from this folder:`);
    n.say(`  npm run modelgate -- --registry ${relative(process.cwd(), demo.registry) || '.'} list`);
    n.say(`  npm run modelgate -- --registry ${relative(process.cwd(), demo.registry) || '.'} history ${MODEL}`);
    return 0;
  } catch (e) {
    process.stderr.write(`\ndemo failed: ${e instanceof DemoFailure ? e.message : ((e as Error)?.stack ?? String(e))}\n`);
    return 1;
  } finally {
    await gh?.close();
    await git?.close();
  }
}

async function story(d: Demo): Promise<void> {
  const { n, gh } = d;

  n.heading('A registry from the template, with a git remote on loopback and the file:// artifact store');
  await sh(d, d.ws, 'git', ['init', '--quiet', '--bare', '-b', 'main', join(d.ws, 'remote', `${REPO}.git`)]);
  await mg(d, d.ws, ['init', 'registry', '--store', `file://${join(d.ws, 'artifacts')}`, '--github', `${OWNER}/${REPO}`]);
  await gitIn(d, d.registry, ['remote', 'add', 'origin', d.remoteUrl]);

  // The gate signs what it decides: an Ed25519 key, the private half for the Action (in GitHub,
  // the `modelgate` environment's secret), the public half trusted in modelgate.yaml.
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  d.signingKey = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString().trim();
  const config = join(d.registry, 'modelgate.yaml');
  await writeFile(
    config,
    `${await readFile(config, 'utf8')}trust:\n  keys:\n    - |\n${pem
      .split('\n')
      .map((l) => `      ${l}`)
      .join('\n')}\n`,
  );
  await gitIn(d, d.registry, ['commit', '--quiet', '-am', "Trust the gate's signing key"]);
  await gitIn(d, d.registry, ['push', '--quiet', 'origin', 'main']);
  n.say(`remote: ${d.remoteUrl} (git http-backend)`);
  n.say('the gate signs a decision record for each pass: its Ed25519 public key is in trust.keys of modelgate.yaml');

  gh.addRepo(OWNER, REPO, { gitDir: join(d.ws, 'remote', `${REPO}.git`) });
  // Their commit emails are linked to their accounts: a commit by nobody GitHub knows fails the gate.
  for (const login of ['maria', 'carol', 'dave', 'erin', 'platform-admin', 'modelgate[bot]']) gh.addUser(login, { emails: [`${login}@acme.example`] });
  gh.addTeam(OWNER, 'ml-governance', ['carol']);
  gh.addTeam(OWNER, 'ml-engineers', ['dave', 'maria']);
  gh.addTeam(OWNER, 'oncall', ['erin']);
  gh.addTeam(OWNER, 'platform', ['platform-admin']);
  n.say(`GitHub API emulator: ${gh.url} — teams ml-governance (carol), ml-engineers (dave, maria), oncall (erin)`);

  n.heading(`The ML engineers describe ${MODEL} and how to serve it (models/${MODEL}/model.yaml)`);
  await mkdir(join(d.registry, 'models', MODEL), { recursive: true });
  await writeFile(
    join(d.registry, 'models', MODEL, 'model.yaml'),
    [
      'apiVersion: modelgate.dev/v1',
      'kind: Model',
      `name: ${MODEL}`,
      'description: Scores each subscriber for the risk of cancelling within 30 days.',
      'owners: [ml-engineers]',
      'deploy:',
      '  kind: InferenceService',
      // One .safetensors file is no Hugging Face model folder (no config.json): KServe's huggingface
      // runtime could not load it, so it is served by the team's own ServingRuntime.
      '  modelFormat: safetensors',
      '  runtime: churn-logreg',
      '',
    ].join('\n'),
  );
  await gitIn(d, d.registry, ['add', `models/${MODEL}/model.yaml`]);
  await gitIn(d, d.registry, ['commit', '--quiet', '-m', `Describe ${MODEL}`]);
  await gitIn(d, d.registry, ['push', '--quiet', 'origin', 'main']);
  n.say('committed and pushed (in a real registry this is a reviewed pull request under the model-settings rule)');

  n.heading('A training pipeline produces two model files and registers them, with metrics and lineage');
  await mkdir(join(d.training, 'data'), { recursive: true });
  await writeFile(join(d.training, 'train.py'), '# trains a logistic regression on data/customers.csv\n');
  await writeFile(join(d.training, 'data', 'customers.csv'), 'tenure,monthly_spend,support_calls,churned\n3,42.5,4,1\n48,19.9,0,0\n12,65.0,2,0\n');
  await sh(d, d.training, 'git', ['init', '--quiet', '-b', 'main']);
  await gitIn(d, d.training, ['remote', 'add', 'origin', 'https://github.com/acme/churn-training.git']);
  await gitIn(d, d.training, ['add', '.']);
  await gitIn(d, d.training, ['-c', 'user.name=Maria', '-c', 'user.email=maria@acme.example', 'commit', '--quiet', '-m', 'Train churn model']);
  const versions = [
    { file: 'churn-v1.safetensors', weights: [0.81, -0.42, 1.37], bias: -0.3, metrics: ['auc=0.962', 'precision=0.91', 'recall=0.87'], run: '5001' },
    { file: 'churn-v2.safetensors', weights: [0.77, -0.51, 1.12], bias: -0.1, metrics: ['auc=0.931', 'precision=0.93', 'recall=0.79'], run: '5002' },
  ];
  for (const v of versions) {
    await writeFile(
      join(d.training, v.file),
      logisticRegressionSafetensors(v.weights, v.bias, { framework: 'numpy', features: 'tenure,monthly_spend,support_calls' }),
    );
    await mg(
      d,
      d.training,
      [
        '--registry',
        d.registry,
        'register',
        MODEL,
        v.file,
        ...v.metrics.flatMap((m) => ['--metrics', m]),
        '--params',
        'C=1.0',
        '--params',
        'penalty=l2',
        '--code',
        'auto',
        '--dataset',
        'id=customers-2026-10,path=data/customers.csv',
        '--stage',
        'Staging',
        '--push',
      ],
      { GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: v.run, GITHUB_REPOSITORY: 'acme/churn-training', GITHUB_SERVER_URL: 'https://github.com' },
      `modelgate register ${MODEL} ${v.file} ${v.metrics.map((m) => `--metrics ${m}`).join(' ')} --code auto --dataset id=customers-2026-10,path=data/customers.csv --stage Staging --push`,
    );
  }
  await mg(d, d.registry, ['list', '--model', MODEL]);

  n.heading(`Promote ${MODEL} v1 to Production through a pull request`);
  const pr1 = await promoteByPr(d, ['promote', MODEL, '1', '--to', 'Production']);
  n.say('the gate runs on pull_request_target: no approvals yet, so the status is pending');
  await gate(d, pr1, 'pull_request_target', 'pending');
  n.say('carol (ml-governance) and dave (ml-engineers) approve the head commit');
  gh.addReview(pr1, { user: 'carol', state: 'APPROVED' });
  gh.addReview(pr1, { user: 'dave', state: 'APPROVED' });
  await gate(d, pr1, 'pull_request_review', 'pass');
  await merge(d, pr1, 'dave');

  n.heading('The pull request carried the production pin; the post-merge job only checks it');
  await syncMain(d);
  await showProduction(d);

  n.heading(`Promote ${MODEL} v2, whose AUC is below the policy's minimum`);
  const pr2 = await promoteByPr(d, ['promote', MODEL, '2', '--to', 'Production']);
  gh.addReview(pr2, { user: 'carol', state: 'APPROVED' });
  gh.addReview(pr2, { user: 'dave', state: 'APPROVED' });
  await gate(d, pr2, 'pull_request_review', 'fail');
  n.say(`refused even with both approvals; #${pr2.number} stays unmerged and production keeps v1`);

  n.heading('An incident: v1 is archived, then rolled back to Production (it was there before, as git history proves)');
  const pr3 = await promoteByPr(d, ['archive', MODEL, '1']);
  gh.addReview(pr3, { user: 'erin', state: 'APPROVED' });
  await gate(d, pr3, 'pull_request_review', 'pass');
  await merge(d, pr3, 'erin');
  const pr4 = await promoteByPr(d, ['rollback', MODEL, '--to', '1']);
  gh.addReview(pr4, { user: 'erin', state: 'APPROVED' });
  await gate(d, pr4, 'pull_request_review', 'pass');
  await merge(d, pr4, 'erin');
  n.say(
    `the rollback restores the tree #${pr1.number} produced: its record names its own base, so it sits beside #${pr1.number}'s, and history names erin for it`,
  );
  n.say('production kept serving v1 throughout: archiving never removes a running pin, so the sync finds nothing to change');
  await syncMain(d);

  await aliases(d, versions[0]!);

  n.heading(`The history of ${MODEL}, from git, with the approvers from the signed decision records`);
  await mg(d, d.registry, ['history', MODEL]);
  await mg(d, d.registry, ['show', `${MODEL}@production`]);

  n.heading('Did everything in Staging and Production get there through the gate?');
  n.say(`v1 reached Production by gated pull requests (#${pr1.number}, #${pr4.number}), each with a signed record; v2 was pushed straight`);
  n.say('to Staging by the training pipeline (register --push, which this unprotected demo registry allows): no record names it;');
  n.say('v3 came the same way; its aliases challenger and champion moved by gated pull requests, whose records name them');
  await mg(d, d.registry, ['verify', '--decisions'], {}, undefined, 1);

  await serveChampion(d);
}

/**
 * `modelgate serve` on the demo's registry (the embedded file:// store), and MLflow's own client
 * resolving `@champion` through it: the project's .venv Python with mlflow when there is one,
 * else the same REST call MLflow's client makes. Then serve is stopped as Kubernetes stops it (SIGTERM).
 */
async function serveChampion(d: Demo): Promise<void> {
  const { n } = d;
  n.heading(`modelgate serve: the MLflow client resolves ${MODEL}@champion, and the registry pages answer live`);
  const display = 'modelgate serve --listen 127.0.0.1:0';
  // With the emulator's GitHub as the registry's, so the pages list the open pull requests from it.
  const child = spawn(process.execPath, [d.cli, 'serve', '--listen', '127.0.0.1:0'], {
    cwd: d.registry,
    env: env({ GITHUB_TOKEN: 'token-maria', GITHUB_API_URL: d.gh.url }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<number>((resolveExit) => child.on('close', (code) => resolveExit(code ?? -1)));
  try {
    const url = await serveUrl(child.pid!, () => log, exited);
    n.command(display, `listening at ${url}`);
    const python = join(dirname(dirname(d.cli)), '.venv', 'bin', 'python');
    const hasMlflow = existsSync(python) && (await runProcess(python, ['-c', 'import mlflow'], { cwd: d.ws })).code === 0;
    if (hasMlflow) {
      const script = [
        'import sys',
        'from mlflow import MlflowClient',
        'client = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])',
        `v = client.get_model_version_by_alias("${MODEL}", "champion")`,
        `print(f"${MODEL}@champion → version {v.version} ({v.current_stage}), sha256 {v.tags['modelgate.sha256']}")`,
      ].join('\n');
      const r = await runProcess(python, ['-c', script, url], { cwd: d.ws, env: env() });
      n.command(`python -c 'MlflowClient(registry_uri="${url}").get_model_version_by_alias("${MODEL}", "champion")'`, r.stdout + r.stderr);
      expectExit(r, 0, 'the MLflow client');
    } else {
      n.say("no Python with mlflow here (bash scripts/python-env.sh makes one): the same REST call MLflow's client makes");
      const path = `/api/2.0/mlflow/registered-models/alias?name=${MODEL}&alias=champion`;
      const response = await fetch(url + path);
      const body = (await response.json()) as { model_version?: { version: string; current_stage: string; tags: Array<{ key: string; value: string }> } };
      const v = body.model_version;
      if (!response.ok || !v) throw new DemoFailure(`GET ${path}: ${response.status} ${JSON.stringify(body)}`);
      const sha = v.tags.find((t) => t.key === 'modelgate.sha256')?.value;
      n.command(`curl '${url}${path}'`, `${MODEL}@champion → version ${v.version} (${v.current_stage}), sha256 ${sha}`);
    }
    await showLivePages(n, url, MODEL);
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  // Stopped as Kubernetes stops a pod: the requests in flight finish, then it exits 143 (cancelled by SIGTERM).
  const code = await exited;
  if (code !== 143 || !/shutting down: finishing the requests in flight/.test(log)) throw new DemoFailure(`modelgate serve exited ${code} on SIGTERM:\n${log}`);
  n.say(`serve stopped on SIGTERM after finishing its requests: exit ${code}, as a command cancelled by SIGTERM`);
}

/** serve's address, read from its log (it listens on a port the system chose). */
async function serveUrl(pid: number, log: () => string, exited: Promise<number>): Promise<string> {
  let done: number | undefined;
  void exited.then((code) => (done = code));
  for (let waited = 0; waited < 120_000; waited += 100) {
    const m = /Server listening at (http:\/\/127\.0\.0\.1:[0-9]+)/.exec(log());
    if (m) return m[1]!;
    if (done !== undefined) throw new DemoFailure(`modelgate serve (pid ${pid}) exited ${done}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new DemoFailure(`modelgate serve (pid ${pid}) did not listen within 120 s:\n${log()}`);
}

/**
 * Aliases (SPEC v3 §9): a canary environment follows challenger; a third version is set as
 * challenger under the template's light challenger rule, then promoted to champion under the
 * production governance of the champion rule.
 */
async function aliases(d: Demo, like: { weights: number[]; bias: number }): Promise<void> {
  const { n, gh } = d;
  n.heading('Aliases: a canary environment follows challenger (modelgate.yaml), and a third version is trained');
  const config = join(d.registry, 'modelgate.yaml');
  await gitIn(d, d.registry, ['pull', '--quiet', '--ff-only', 'origin', 'main']);
  await writeFile(
    config,
    (await readFile(config, 'utf8')).replace(
      '# canary: {alias: challenger, path: deploy/canary, namespace: models-canary}',
      'canary: {alias: challenger, path: deploy/canary, namespace: models-canary}',
    ),
  );
  await gitIn(d, d.registry, ['commit', '--quiet', '-am', 'Add the canary environment, following challenger']);
  await gitIn(d, d.registry, ['push', '--quiet', 'origin', 'main']);
  n.say('committed and pushed (in a real registry: a pull request under the registry-config rule)');
  await writeFile(
    join(d.training, 'churn-v3.safetensors'),
    logisticRegressionSafetensors(
      like.weights.map((w) => w * 1.05),
      like.bias,
      { framework: 'numpy', features: 'tenure,monthly_spend,support_calls' },
    ),
  );
  const metrics = ['auc=0.971', 'precision=0.93', 'recall=0.88'];
  await mg(
    d,
    d.training,
    [
      '--registry',
      d.registry,
      'register',
      MODEL,
      'churn-v3.safetensors',
      ...metrics.flatMap((m) => ['--metrics', m]),
      '--code',
      'auto',
      '--dataset',
      'id=customers-2026-10,path=data/customers.csv',
      '--stage',
      'Staging',
      '--push',
    ],
    { GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '5003', GITHUB_REPOSITORY: 'acme/churn-training', GITHUB_SERVER_URL: 'https://github.com' },
    `modelgate register ${MODEL} churn-v3.safetensors ${metrics.map((m) => `--metrics ${m}`).join(' ')} --code auto --dataset id=customers-2026-10,path=data/customers.csv --stage Staging --push`,
  );

  n.heading(`Set ${MODEL}@challenger to v3: one line of models/${MODEL}/aliases.yaml and the canary pin, in one pull request`);
  const challenger = await promoteByPr(d, ['alias', 'set', `${MODEL}@3`, 'challenger']);
  n.say('the challenger rule asks one ml-engineer: dave approves');
  gh.addReview(challenger, { user: 'dave', state: 'APPROVED' });
  await gate(d, challenger, 'pull_request_review', 'pass');
  await merge(d, challenger, 'dave');
  await syncMain(d);
  const canary = await runProcess('kubectl', ['kustomize', 'deploy/canary'], { cwd: d.registry });
  if (canary.code !== 0 || !canary.stdout.includes('modelgate.dev/version: "3"'))
    throw new DemoFailure(`deploy/canary does not pin v3: ${canary.stdout}${canary.stderr}`);
  d.n.command(
    'kubectl kustomize deploy/canary | grep modelgate.dev/   # the canary serves the challenger',
    canary.stdout
      .split('\n')
      .filter((l) => l.includes('modelgate.dev/'))
      .join('\n'),
  );
  await mg(d, d.registry, ['resolve', `${MODEL}@challenger`]);

  n.heading(`The challenger wins: promote it to champion, under the champion rule (the production governance)`);
  const champion = await promoteByPr(d, ['alias', 'set', `${MODEL}@challenger`, 'champion']);
  await gate(d, champion, 'pull_request_target', 'pending');
  n.say('carol (ml-governance) and dave (ml-engineers) approve; metrics, lineage, the full artifact check and the scan pass');
  gh.addReview(champion, { user: 'carol', state: 'APPROVED' });
  gh.addReview(champion, { user: 'dave', state: 'APPROVED' });
  await gate(d, champion, 'pull_request_review', 'pass');
  await merge(d, champion, 'dave');
  await gitIn(d, d.registry, ['pull', '--quiet', '--ff-only', 'origin', 'main']);
  await mg(d, d.registry, ['alias', 'list', MODEL]);
  await mg(d, d.registry, ['list', '--model', MODEL, '--where', "alias = 'champion'"]);
}

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  GIT_AUTHOR_NAME: 'Maria',
  GIT_AUTHOR_EMAIL: 'maria@acme.example',
  GIT_COMMITTER_NAME: 'Maria',
  GIT_COMMITTER_EMAIL: 'maria@acme.example',
  ...extra,
});

async function sh(d: Demo, cwd: string, cmd: string, args: string[]): Promise<ProcessResult> {
  return expectExit(await runProcess(cmd, args, { cwd, env: env() }), 0, `${cmd} ${args.join(' ')}`);
}

const gitIn = (d: Demo, cwd: string, args: string[]) => sh(d, cwd, 'git', args);

/** Runs the modelgate CLI as a user would, shows the command and its output, and checks the exit code. */
async function mg(d: Demo, cwd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}, display?: string, expected = 0): Promise<ProcessResult> {
  const r = await runProcess(process.execPath, [d.cli, ...args], { cwd, env: env(extraEnv) });
  d.n.command(display ?? `modelgate ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`, r.stdout + r.stderr);
  return expectExit(r, expected, `modelgate ${args.join(' ')}`);
}

/** `--pr` as maria: pushes a branch and opens the pull request on the emulator. */
async function promoteByPr(d: Demo, args: string[]): Promise<EmulatedPull> {
  await gitIn(d, d.registry, ['pull', '--quiet', '--ff-only', 'origin', 'main']);
  const before = new Set(openPulls(d).map((p) => p.number));
  await mg(d, d.registry, [...args, '--pr'], { GITHUB_TOKEN: 'token-maria', GITHUB_API_URL: d.gh.url });
  const pr = openPulls(d).find((p) => !before.has(p.number));
  if (!pr) throw new DemoFailure(`modelgate ${args.join(' ')} --pr opened no pull request`);
  d.n.say(`pull request #${pr.number} "${pr.title}" from ${pr.head.ref}`);
  return pr;
}

function openPulls(d: Demo): EmulatedPull[] {
  const out: EmulatedPull[] = [];
  for (let i = 1; ; i++) {
    const p = d.gh.getPull(`${OWNER}/${REPO}`, i);
    if (!p) return out;
    if (p.state === 'open') out.push(p);
  }
}

/**
 * Runs the built Action the way the runner does: a checkout of the base branch, INPUT_*
 * variables, the event payload in GITHUB_EVENT_PATH, outputs and the summary in files.
 */
async function gate(d: Demo, pr: EmulatedPull, event: 'pull_request_target' | 'pull_request_review', expected: 'pass' | 'fail' | 'pending'): Promise<void> {
  const runner = join(d.ws, 'runner', `pr-${pr.number}-${Date.now()}`);
  await mkdir(runner, { recursive: true });
  const checkout = join(runner, 'checkout');
  await sh(d, runner, 'git', ['clone', '--quiet', '--single-branch', '--branch', pr.base.ref, d.remoteUrl, checkout]);
  const files = { event: join(runner, 'event.json'), output: join(runner, 'output'), summary: join(runner, 'summary.md') };
  await writeFile(files.event, JSON.stringify(d.gh.eventFor(pr, event)));
  await writeFile(files.output, '');
  await writeFile(files.summary, '');
  const r = await runProcess(process.execPath, [d.action], {
    cwd: checkout,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      INPUT_COMMAND: 'check',
      'INPUT_GITHUB-TOKEN': 'token-modelgate[bot]',
      'INPUT_REGISTRY-PATH': '.',
      INPUT_COMMENT: 'true',
      GITHUB_EVENT_NAME: event,
      GITHUB_EVENT_PATH: files.event,
      GITHUB_OUTPUT: files.output,
      GITHUB_STEP_SUMMARY: files.summary,
      GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
      GITHUB_API_URL: d.gh.url,
      GITHUB_WORKSPACE: checkout,
      RUNNER_TEMP: runner,
      MODELGATE_SIGNING_KEY: d.signingKey,
    },
  });
  const output = await readFile(files.output, 'utf8');
  const record = /^decision-record<<(\S+)\n([\s\S]*?)\n\1/m.exec(output)?.[2];
  const decision = /decision<<(\S+)\n([\s\S]*?)\n\1/.exec(output)?.[2] ?? /^decision=(.*)$/m.exec(output)?.[1];
  const status = d.gh.statuses.filter((s) => s.sha === pr.head.sha && s.context === 'modelgate').at(-1);
  d.n.command(
    `(Action) modelgate check on ${event} for #${pr.number}`,
    `decision: ${decision}\nstatus "modelgate" on ${pr.head.sha.slice(0, 12)}: ${status?.state} — ${status?.description ?? ''}`,
  );
  if (decision !== expected) throw new DemoFailure(`the gate decided ${decision} for #${pr.number}, expected ${expected}\n${r.stdout}${r.stderr}`);
  if (expected === 'pass') {
    if (!record) throw new DemoFailure(`the gate passed #${pr.number} but wrote no decision record\n${r.stdout}${r.stderr}`);
    d.n.say(`signed decision record (in-toto statement, DSSE envelope): ${record}`);
  }
  if (expected !== 'pass') {
    // The Action's JSON report (output `report`): every rule's checks; show those not passed.
    const reportPath = /^report<<(\S+)\n([\s\S]*?)\n\1/m.exec(output)?.[2] ?? /^report=(.*)$/m.exec(output)?.[1];
    if (reportPath) {
      const report = JSON.parse(await readFile(reportPath, 'utf8')) as Decision;
      const lines = report.transitions.flatMap((t) =>
        [...t.checks.map((c) => ({ rule: '', c })), ...t.rules.flatMap((r) => r.results.map((c) => ({ rule: r.rule, c })))]
          .filter(({ c }) => !c.ok)
          .map(({ rule, c }) => `${c.status === 'pending' ? '…' : '✗'} ${t.model}@${t.version}${rule ? ` [${rule}]` : ''} ${c.check}: ${c.detail}`),
      );
      d.n.command(`(report) checks not passed`, lines.join('\n'));
    }
  }
}

async function merge(d: Demo, pr: EmulatedPull, by: string): Promise<void> {
  const res = await fetch(`${d.gh.url}/repos/${OWNER}/${REPO}/pulls/${pr.number}/merge`, {
    method: 'PUT',
    headers: { authorization: `token token-${by}`, 'content-type': 'application/json', accept: 'application/vnd.github+json' },
    body: JSON.stringify({ merge_method: 'merge', sha: pr.head.sha }),
  });
  const body = (await res.json()) as { merged?: boolean; sha?: string; message?: string };
  if (!res.ok || !body.merged) throw new DemoFailure(`merging #${pr.number} failed: ${res.status} ${body.message}`);
  d.n.say(`${by} merges #${pr.number} → ${body.sha?.slice(0, 12)} on main`);
}

/** The job on push to main: the pins came with the merged pull request, so it only checks (`sync --check`). */
async function syncMain(d: Demo): Promise<void> {
  await gitIn(d, d.registry, ['pull', '--quiet', '--ff-only', 'origin', 'main']);
  await mg(d, d.registry, ['sync', '--check']);
}

async function showProduction(d: Demo): Promise<void> {
  const r = await runProcess('kubectl', ['kustomize', 'deploy/production'], { cwd: d.registry });
  if (r.code !== 0) throw new DemoFailure(`kubectl kustomize deploy/production failed: ${r.stderr}`);
  const docs = r.stdout.split(/^---$/m);
  const isvc = docs.find((doc) => doc.includes('kind: InferenceService') && doc.includes(`name: ${MODEL}`));
  if (!isvc) throw new DemoFailure(`kubectl kustomize deploy/production has no InferenceService for ${MODEL}`);
  d.n.command('kubectl kustomize deploy/production   # the InferenceService for ' + MODEL, isvc.trim());
}
