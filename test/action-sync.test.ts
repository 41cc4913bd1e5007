// The built dist/action.js with `command: sync`, as the workflow runs it on a push to main: a
// checkout of main after a promotion was merged, the remote served by `git http-backend` on
// loopback, and two webhooks (one answering, one gone).
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { serveGitHttp, type GitHttpServer } from '../src/local/git-http-backend.js';
import { runAction, type ActionRun } from './helpers/action.js';
import { startValidatedGitHubEmulator } from './helpers/github.js';
import { git, gitAsync, initRepo, modelVersion, registryConfig, tempDir, writeRegistry } from './helpers/pin-registry.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const PIN = 'deploy/production/fraud-detector.yaml';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let root: string;
let runner: string;
let server: GitHttpServer;
let hooks: Server;
let hookHost: string;
const received: Received[] = [];
let mergeCommit: string;

function runSync(inputs: Record<string, string> = {}): Promise<ActionRun> {
  return runAction({
    tmp: root,
    workspace: runner,
    inputs: { command: 'sync', 'github-token': 'ghs_actions', 'registry-path': '.', ...inputs },
    env: { GITHUB_EVENT_NAME: 'push', MG_HOOK_SECRET: SECRET },
  });
}

const remoteMain = async () => (await gitAsync(runner, 'ls-remote', 'origin', 'refs/heads/main')).split('\t')[0]!;

beforeAll(async () => {
  root = tempDir('action-sync');
  hooks = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(req.url === '/hooks/ok' ? 204 : 404);
      res.end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  hookHost = `127.0.0.1:${(hooks.address() as AddressInfo).port}`;

  // main with fraud-detector@1 pinned in production, then a promotion of v2 merged from a pull request.
  const seed = join(root, 'seed');
  writeRegistry(
    seed,
    { 'fraud-detector': { deploy: {}, versions: [{ stage: 'Production' }, { stage: 'Staging' }] } },
    registryConfig({
      github: { repository: 'acme/model-registry' },
      webhooks: [
        { url: `http://${hookHost}/hooks/ok`, secretEnv: 'MG_HOOK_SECRET' },
        { url: `http://${hookHost}/hooks/gone`, secretEnv: 'MG_HOOK_SECRET' },
      ],
    }),
  );
  expect(await runCli(['--registry', seed, '--quiet', 'sync'], { cwd: seed, env: {}, stdout: () => {}, stderr: () => {}, tty: false })).toBe(0);
  initRepo(seed);
  git(seed, 'checkout', '-q', '-b', 'modelgate/fraud-detector-v2-production');
  for (const [n, stage] of [
    [1, 'Archived'],
    [2, 'Production'],
  ] as const) {
    const path = join(seed, `models/fraud-detector/versions/${n}.yaml`);
    await writeFile(path, (await readFile(path, 'utf8')).replace(/^stage: .*$/m, `stage: ${stage}`));
  }
  git(seed, 'commit', '-qam', 'Promote fraud-detector@2 to Production');
  git(seed, 'checkout', '-q', 'main');
  git(seed, 'merge', '-q', '--no-ff', '-m', 'Merge pull request #7 from acme/modelgate/fraud-detector-v2-production', 'modelgate/fraud-detector-v2-production');
  mergeCommit = git(seed, 'rev-parse', 'HEAD').trim();
  git(root, 'clone', '-q', '--bare', seed, 'registry.git');

  server = await serveGitHttp(root);
  // The workflow's actions/checkout of main (async: the git server runs in this process).
  await gitAsync(root, 'clone', '-q', `${server.url}/registry.git`, 'runner');
  runner = join(root, 'runner');
}, 180_000);

afterAll(async () => {
  await server?.close();
  await new Promise<void>((r) => (hooks ? hooks.close(() => r()) : r()));
});

describe('dist/action.js sync', () => {
  it('by default writes nothing to main: finds the merge without its pins, opens one repair pull request on modelgate/sync, fails; a rerun updates the same one', async () => {
    const gh = await startValidatedGitHubEmulator();
    try {
      gh.addUser('octo');
      const repo = gh.addRepo('acme', 'model-registry', { gitDir: join(root, 'registry.git') });
      const env = { GITHUB_API_URL: gh.url, GITHUB_REF_NAME: 'main' };
      const before = await remoteMain();
      const r = await runAction({
        tmp: root,
        workspace: runner,
        inputs: { command: 'sync', 'github-token': 'token-octo', 'registry-path': '.' },
        env: { GITHUB_EVENT_NAME: 'push', MG_HOOK_SECRET: SECRET, ...env },
      });
      expect(r.code).not.toBe(0);
      expect(r.outputs.decision).toBe('fail');
      expect(r.stdout).toMatch(/::error::modelgate sync: 1 deploy file\(s\) on main do not equal the rendering; repair pull request #\d+ opened/);
      expect(await remoteMain()).toBe(before);
      const branch = (await gitAsync(runner, 'ls-remote', 'origin', 'refs/heads/modelgate/sync')).split('\t')[0]!;
      expect(branch).toMatch(/^[0-9a-f]{40}$/);
      expect((await gitAsync(runner, 'diff', '--name-only', before, branch)).trim()).toBe(PIN);
      const report = JSON.parse(await readFile(r.outputs.report!, 'utf8'));
      const pull = gh.getPull(repo, report.repair.pullRequest.number)!;
      expect(pull.head.ref).toBe('modelgate/sync');
      expect(pull.body).toContain('fraud-detector production v1 → v2');
      const again = await runAction({
        tmp: root,
        workspace: runner,
        inputs: { command: 'sync', 'github-token': 'token-octo', 'registry-path': '.' },
        env: { GITHUB_EVENT_NAME: 'push', MG_HOOK_SECRET: SECRET, ...env },
      });
      expect(again.code).not.toBe(0);
      expect(JSON.parse(await readFile(again.outputs.report!, 'utf8')).repair).toMatchObject({ status: 'updated', pullRequest: { number: pull.number } });
      expect(gh.validator.violations).toEqual([]);
    } finally {
      await gh.close();
    }
  });

  // Merging a repair pull request built on what modelgate/sync held would deploy whatever
  // someone pushed there first (here: main plus a promotion of v1 back to Production).
  it('rebuilds modelgate/sync from the tip of main with the rendering alone: a foreign commit already on the branch is force-replaced', async () => {
    const gh = await startValidatedGitHubEmulator();
    try {
      gh.addUser('octo');
      const repo = gh.addRepo('acme', 'model-registry', { gitDir: join(root, 'registry.git') });
      const main = await remoteMain();
      const planted = join(root, 'planted');
      await gitAsync(root, 'clone', '-q', `${server.url}/registry.git`, 'planted');
      git(planted, 'checkout', '-q', '-B', 'modelgate/sync', main);
      const v1 = join(planted, 'models/fraud-detector/versions/1.yaml');
      await writeFile(v1, (await readFile(v1, 'utf8')).replace(/^stage: .*$/m, 'stage: Production'));
      git(planted, '-c', 'user.name=mallory', '-c', 'user.email=mallory@example.com', 'commit', '-qam', 'Promote fraud-detector@1');
      await gitAsync(planted, 'push', '-q', '-f', 'origin', 'modelgate/sync');
      const foreign = git(planted, 'rev-parse', 'HEAD').trim();

      const r = await runAction({
        tmp: root,
        workspace: runner,
        inputs: { command: 'sync', 'github-token': 'token-octo', 'registry-path': '.' },
        env: { GITHUB_EVENT_NAME: 'push', MG_HOOK_SECRET: SECRET, GITHUB_API_URL: gh.url, GITHUB_REF_NAME: 'main' },
      });
      expect(r.outputs.decision).toBe('fail');
      const tip = (await gitAsync(runner, 'ls-remote', 'origin', 'refs/heads/modelgate/sync')).split('\t')[0]!;
      expect(tip).not.toBe(foreign);
      await gitAsync(runner, 'fetch', '-q', 'origin', 'modelgate/sync');
      expect(git(runner, 'rev-list', '--parents', '-n', '1', tip).trim()).toBe(`${tip} ${main}`);
      expect(git(runner, 'diff', '--name-only', main, tip).trim()).toBe(PIN);
      expect(git(runner, 'log', '-1', '--format=%an', tip).trim()).toBe('modelgate[bot]');
      const report = JSON.parse(await readFile(r.outputs.report!, 'utf8'));
      expect(gh.getPull(repo, report.repair.pullRequest.number)!.head.sha).toBe(tip);
      expect(gh.validator.violations).toEqual([]);
    } finally {
      await gh.close();
    }
  }, 60_000);

  it('with push: true (v1, unprotected registries) commits the new pin as modelgate[bot], pushes it, reports the change and the failed webhook; a second run is a no-op', async () => {
    const r = await runSync({ push: 'true' });
    expect(r.stdout).not.toMatch(/::error/);
    expect(r.code).toBe(0);
    expect(r.outputs.decision).toBe('pass');
    const report = JSON.parse(await readFile(r.outputs.report!, 'utf8'));
    expect(report).toMatchObject({
      status: 'pushed',
      head: mergeCommit,
      files: [PIN],
      changes: [{ model: 'fraud-detector', environment: 'production', fromVersion: 1, toVersion: 2 }],
    });

    // Pushed: the remote's main is the sync commit, on top of the merge, by the bot.
    const pushed = await remoteMain();
    expect(pushed).toBe(report.commit);
    await gitAsync(runner, 'fetch', '-q', 'origin', 'main');
    expect(git(runner, 'log', '-1', '--format=%an <%ae>|%cn|%P', pushed).trim()).toBe(
      `modelgate[bot] <modelgate[bot]@users.noreply.github.com>|modelgate[bot]|${mergeCommit}`,
    );
    expect(git(runner, 'diff', '--name-only', mergeCommit, pushed).trim()).toBe(PIN);
    const v1 = modelVersion('fraud-detector', 1, { stage: 'Archived' });
    const v2 = modelVersion('fraud-detector', 2, { stage: 'Production' });
    const pinText = git(runner, 'show', `${pushed}:${PIN}`);
    const pin = parse(pinText);
    expect(pin.metadata.annotations['modelgate.dev/version']).toBe('2');
    expect(pin.spec.predictor.model.storageUri).toBe(v2.artifact.uri);
    expect(pinText).not.toContain(v1.artifact.sha256);
    // Staging has no version now: its pin (v2) stays as it was.
    expect(git(runner, 'show', `${pushed}:deploy/staging/fraud-detector.yaml`)).toBe(git(runner, 'show', `${mergeCommit}:deploy/staging/fraud-detector.yaml`));

    // The job summary names the change and the webhook that was not delivered; the log warns about it.
    expect(r.summary).toContain(`Pushed \`${pushed.slice(0, 12)}\` on top of \`${mergeCommit.slice(0, 12)}\``);
    expect(r.summary).toContain('| fraud-detector | production | v1 | v2 |');
    expect(r.summary).toContain(`+      storageUri: ${v2.artifact.uri}`);
    expect(r.summary).toContain('Webhooks: 1/2 delivered.');
    const failed = `webhook 2 (${hookHost}): fraud-detector production not delivered after 1 attempt(s): HTTP 404`;
    expect(r.summary).toContain(`- :warning: ${failed}`);
    expect(r.stdout).toContain(`::warning title=modelgate sync::webhook not delivered: ${failed}`);

    // Each webhook got the event once, signed, naming the pull request that was merged.
    expect(received.map((x) => x.path).sort()).toEqual(['/hooks/gone', '/hooks/ok']);
    const ok = received.find((x) => x.path === '/hooks/ok')!;
    const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
    const signature = createHmac('sha256', key)
      .update(`${String(ok.headers['webhook-id'])}.${String(ok.headers['webhook-timestamp'])}.${ok.body}`)
      .digest('base64');
    expect(ok.headers['webhook-signature']).toBe(`v1,${signature}`);
    expect(JSON.parse(ok.body)).toMatchObject({
      type: 'modelgate.pin.changed',
      data: { model: 'fraud-detector', environment: 'production', previousVersion: 1, version: 2, commit: pushed, pullRequest: 7 },
    });

    // Run again on the same checkout: in sync, nothing pushed, nobody notified.
    const again = await runSync({ push: 'true' });
    expect(again.code).toBe(0);
    expect(again.outputs.decision).toBe('pass');
    expect(JSON.parse(await readFile(again.outputs.report!, 'utf8'))).toMatchObject({ status: 'in-sync', head: pushed, changes: [], deliveries: [] });
    expect(again.summary).toContain('nothing to commit');
    expect(again.stdout).not.toMatch(/::warning/);
    expect(await remoteMain()).toBe(pushed);
    expect(received).toHaveLength(2);
  }, 180_000);

  it('fails the step, pushing nothing, for a registry path outside the checkout and for an unknown command', async () => {
    const head = await remoteMain();
    const outside = await runSync({ 'registry-path': '../elsewhere' });
    expect(outside.code).toBe(1);
    expect(outside.outputs.decision).toBe('fail');
    expect(outside.stdout).toMatch(/::error::input registry-path \.\.\/elsewhere must be a folder inside the repository checkout/);
    const unknown = await runSync({ command: 'deploy' });
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/::error::input command must be check or sync/);
    expect(await remoteMain()).toBe(head);
    expect(existsSync(join(runner, '..', 'elsewhere'))).toBe(false);
  }, 180_000);
});
