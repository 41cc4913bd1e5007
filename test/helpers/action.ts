// Runs the built dist/action.js the way the GitHub runner does: inputs as INPUT_* variables,
// outputs and the job summary written to the files GITHUB_OUTPUT and GITHUB_STEP_SUMMARY name;
// and the registry, remote, runner checkout and GitHub emulator the Action tests check it against.
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import type { EmulatedPull, EmulatedRepo, GitHubEmulator } from '../../src/local/github-emulator.js';
import { gitAs, startValidatedGitHubEmulator, writeEventFile, type GitHubResponseValidator } from './github.js';

const ACTION = resolve(import.meta.dirname, '../../dist/action.js');

export interface ActionRun {
  code: number;
  /** stdout and stderr together: the workflow commands (::error, ::warning) and logs. */
  stdout: string;
  outputs: Record<string, string>;
  summary: string;
}

/**
 * `inputs` are named as in action.yml (`github-token`, `registry-path`): the runner upper-cases
 * them and keeps the hyphens. `env` adds the GITHUB_* variables of the event being simulated.
 */
export async function runAction(opts: { tmp: string; workspace: string; inputs: Record<string, string>; env: Record<string, string> }): Promise<ActionRun> {
  const dir = await mkdtemp(join(opts.tmp, 'run-'));
  const outputPath = join(dir, 'output');
  const summaryPath = join(dir, 'summary.md');
  await writeFile(outputPath, '');
  await writeFile(summaryPath, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME ?? opts.tmp,
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: outputPath,
    GITHUB_STEP_SUMMARY: summaryPath,
    GITHUB_REPOSITORY: 'acme/model-registry',
    GITHUB_WORKSPACE: opts.workspace,
    RUNNER_TEMP: dir,
    ...opts.env,
    ...Object.fromEntries(Object.entries(opts.inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
  };
  const child = spawn(process.execPath, [ACTION], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stdout += b));
  const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
  const outputs: Record<string, string> = {};
  for (const m of (await readFile(outputPath, 'utf8')).matchAll(/^([^<\n]+)<<(ghadelimiter_[^\n]+)\n([\s\S]*?)\n\2$/gm)) outputs[m[1]!] = m[3]!;
  return { code, stdout, outputs, summary: await readFile(summaryPath, 'utf8') };
}

/**
 * The registry a workflow checks, as the Action tests build it: GitHub's copy of the repository (a
 * bare repository, `registry.git`), a developer's clone (`dev`, on main), the runner's checkout of
 * main (`runner`, after `publish`), a file:// store served to KServe through a claim, and the
 * GitHub emulator (every response validated against GitHub's OpenAPI description), started by
 * `startGitHub` once the repository is published.
 */
export interface ActionRegistry {
  tmp: string;
  bare: string;
  dev: string;
  runner: string;
  store: string;
  storeUri: string;
  /** Set by `startGitHub`. */
  gh: GitHubEmulator & { validator: GitHubResponseValidator };
  repo: EmulatedRepo;
  /** Writes a file of the developer's clone. */
  write: (path: string, content: string) => Promise<void>;
  /** modelgate.yaml with the store (and its claim) and the GitHub repository, then `more`. */
  writeConfig(more?: Record<string, unknown>): Promise<void>;
  /** Stores `bytes` under their content key for `model`; the manifest's `artifact`. */
  storeArtifact(model: string, bytes: Buffer): Promise<{ uri: string; sha256: string; size: number }>;
  /** Commits everything in the developer's clone (when given a `message`), pushes main and clones the runner's checkout of it. */
  publish(message?: string): void;
  /** The emulator, with `users` (linked by their example.com email), the Actions bot (token ghs_actions), acme's `teams` and the repository. */
  startGitHub(opts: { users: string[]; teams: Record<string, string[]> }): Promise<ActionRegistry['gh']>;
  /** Pushes the developer's HEAD to `branch` and opens a pull request from it (maria's), with GitHub's refs/pull/N/head. */
  pushPull(branch: string, opts: { title: string; base?: string }): EmulatedPull;
  /** The built Action's `check` on the runner's checkout, for `event` with `payload`; `env` and `inputs` add to the event's variables and the step's inputs. */
  check(event: string, payload: unknown, more?: { env?: Record<string, string>; inputs?: Record<string, string> }): Promise<ActionRun>;
  close(): Promise<void>;
}

const git = gitAs('maria');

/** A new ActionRegistry in a temporary folder named from `prefix`: an empty bare repository and the developer's clone. */
export async function createActionRegistry(prefix: string): Promise<ActionRegistry> {
  const tmp = await mkdtemp(join(tmpdir(), prefix));
  const [bare, dev, runner, store] = ['registry.git', 'dev', 'runner', 'store'].map((d) => join(tmp, d)) as [string, string, string, string];
  const storeUri = pathToFileURL(store).href;
  git(tmp, 'init', '-q', '--bare', '-b', 'main', bare);
  git(tmp, 'clone', '-q', bare, dev);
  git(dev, 'checkout', '-q', '-b', 'main');
  const write = async (path: string, content: string) => {
    await mkdir(dirname(join(dev, path)), { recursive: true });
    await writeFile(join(dev, path), content);
  };
  const registry: ActionRegistry = {
    tmp,
    bare,
    dev,
    runner,
    store,
    storeUri,
    gh: undefined as never,
    repo: undefined as never,
    write,
    writeConfig: (more = {}) =>
      write(
        'modelgate.yaml',
        stringify({
          apiVersion: 'modelgate.dev/v1',
          kind: 'Registry',
          storage: { uri: storeUri, pvc: { claim: 'modelgate-artifacts', root: store } },
          github: { repository: 'acme/model-registry' },
          ...more,
        }),
      ),
    async storeArtifact(model, bytes) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const key = `${model}/sha256/${sha256}/model.joblib`;
      await mkdir(dirname(join(store, key)), { recursive: true });
      await writeFile(join(store, key), bytes);
      return { uri: `${storeUri}/${key}`, sha256, size: bytes.length };
    },
    publish(message) {
      if (message !== undefined) {
        git(dev, 'add', '-A');
        git(dev, 'commit', '-q', '-m', message);
      }
      git(dev, 'push', '-q', 'origin', 'main');
      git(tmp, 'clone', '-q', bare, runner);
    },
    async startGitHub({ users, teams }) {
      const gh = await startValidatedGitHubEmulator();
      for (const u of users) gh.addUser(u, { emails: [`${u}@example.com`] });
      gh.addUser('github-actions[bot]', { type: 'Bot', token: 'ghs_actions' });
      for (const [slug, members] of Object.entries(teams)) gh.addTeam('acme', slug, members);
      registry.gh = gh;
      registry.repo = gh.addRepo('acme', 'model-registry', { gitDir: bare });
      return gh;
    },
    pushPull(branch, { title, base = 'main' }) {
      git(dev, 'push', '-q', '-f', 'origin', `HEAD:refs/heads/${branch}`);
      const pull = registry.gh.createPull({ repo: registry.repo, head: branch, base, user: 'maria', title });
      // GitHub keeps every pull request's head as refs/pull/N/head in the base repository.
      git(bare, 'update-ref', `refs/pull/${pull.number}/head`, pull.head.sha);
      return pull;
    },
    async check(event, payload, { env = {}, inputs = {} } = {}) {
      return runAction({
        tmp,
        workspace: runner,
        inputs: { command: 'check', 'github-token': 'ghs_actions', 'registry-path': '.', comment: 'true', ...inputs },
        env: {
          GITHUB_EVENT_NAME: event,
          GITHUB_EVENT_PATH: await writeEventFile(tmp, payload, `event-${randomUUID()}.json`),
          GITHUB_API_URL: registry.gh.url,
          ...env,
        },
      });
    },
    async close() {
      await registry.gh?.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
  return registry;
}
