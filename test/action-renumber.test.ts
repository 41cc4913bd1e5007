// The built dist/action.js with `command: sync` on a push to main (and `modelgate sync
// --renumber`) re-numbers every open registration pull request whose number main took first
// from a writer that does not read registration branches (SPEC v3 §14), so every pull request
// `register --pr` opened stays mergeable. Against the git http-backend remote and the GitHub emulator.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, git, randomFile, tempDir } from './helpers/artifacts.js';
import { runAction, type ActionRun } from './helpers/action.js';
import { POLICY } from './gate-fixtures.js';
import { prRemote, type PrRemote } from './helpers/pr-remote.js';

// The http-backend server runs in this process: clones against it must not block the event loop.
const gitAsync = promisify(execFile);

async function cloneOf(url: string, name = 'maria'): Promise<string> {
  const dir = tempDir('mg-clone-');
  await gitAsync('git', ['clone', '-q', url, dir]);
  git(dir, 'config', 'user.name', name);
  git(dir, 'config', 'user.email', `${name}@example.com`);
  return dir;
}

interface Pull {
  number: number;
  title: string;
  body: string | null;
  state: string;
  mergeable: boolean | null;
  head: { ref: string; sha: string };
}

async function api<T>(remote: PrRemote, path: string): Promise<T> {
  const res = await fetch(`${remote.gh.url}/repos/acme/model-registry${path}`, { headers: { authorization: `token ${remote.env.GITHUB_TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}
const pull = (remote: PrRemote, n: number) => api<Pull>(remote, `/pulls/${n}`);
const comments = async (remote: PrRemote, n: number) => (await api<Array<{ body: string }>>(remote, `/issues/${n}/comments`)).map((c) => c.body);

/** `register --pr` from a fresh clone: the pull request's number and the version it proposes. */
async function registerPr(remote: PrRemote, name: string, size: number): Promise<{ pr: number; version: number; branch: string }> {
  const r = await cli(await cloneOf(remote.url), ['--json', 'register', 'fraud', randomFile(tempDir(), name, size).path, '--pr'], remote.env);
  expect(r.code, r.stderr).toBe(0);
  return { pr: r.json.pullRequest.number, version: r.json.version, branch: r.json.branch };
}

/**
 * An older client: registers `count` versions in a clone (a local commit each, numbered from
 * what the clone's main holds, blind to registration branches) and pushes them to main by hand.
 */
async function pushBlind(remote: PrRemote, count: number): Promise<void> {
  const clone = await cloneOf(remote.url, 'hand');
  for (let i = 0; i < count; i++) {
    const r = await cli(clone, ['register', 'fraud', randomFile(tempDir(), `hand-${i}.bin`, 3000 + i).path], remote.env);
    expect(r.code, r.stderr).toBe(0);
  }
  await gitAsync('git', ['-C', clone, 'push', '-q', 'origin', 'HEAD:main']);
}

/** The Action's sync job on the push: a fresh checkout of main, the emulator's API. */
async function syncJob(remote: PrRemote): Promise<ActionRun & { report: Record<string, unknown> }> {
  const workspace = await cloneOf(remote.url);
  const r = await runAction({
    tmp: tempDir('mg-action-'),
    workspace,
    inputs: { command: 'sync', 'github-token': 'token-octo', 'registry-path': '.' },
    env: {
      GITHUB_EVENT_NAME: 'push',
      GITHUB_API_URL: remote.gh.url,
      GITHUB_REF_NAME: 'main',
      GITHUB_SERVER_URL: 'https://github.example',
      GITHUB_RUN_ID: '4242',
      GITHUB_ACTOR: 'hand',
    },
  });
  return { ...r, report: r.outputs.report ? JSON.parse(await readFile(r.outputs.report, 'utf8')) : {} };
}

async function fetched(remote: PrRemote): Promise<string> {
  const check = await cloneOf(remote.url);
  await gitAsync('git', ['-C', check, 'fetch', '-q', 'origin', '+refs/heads/*:refs/remotes/origin/*']);
  return check;
}

const BY = 'modelgate sync in workflow run https://github.example/acme/model-registry/actions/runs/4242 (after a push by @hand)';

describe('registration pull requests whose number main took first are re-numbered', () => {
  let remote: PrRemote | undefined;
  afterEach(async () => {
    await remote?.close();
    remote = undefined;
  });

  it('dist/action.js sync: main took the number: a new pull request at the next free number carries the version manifest alone (not a foreign file on the branch), the old one is closed with a link; a mergeable one is untouched', async () => {
    remote = await prRemote({ uri: pathToFileURL(tempDir('mg-store-')).href }, POLICY);
    remote.gh.addUser('octo');
    const work = await cloneOf(remote.url);
    expect((await cli(work, ['register', 'fraud', randomFile(tempDir(), 'v1.bin', 1000).path, '--push'], remote.env)).code).toBe(0);
    const overtaken = await registerPr(remote, 'v2.bin', 2000);
    const mergeable = await registerPr(remote, 'v3.bin', 2001);
    expect([overtaken.version, mergeable.version]).toEqual([2, 3]);
    const untouchedBefore = await pull(remote, mergeable.pr);

    // Someone with push access adds a file of their own to the overtaken branch.
    const mallory = await cloneOf(remote.url, 'mallory');
    await gitAsync('git', ['-C', mallory, 'fetch', '-q', 'origin', overtaken.branch]);
    git(mallory, 'checkout', '-q', '-b', 'planted', 'FETCH_HEAD');
    mkdirSync(join(mallory, 'deploy/production'), { recursive: true });
    writeFileSync(join(mallory, 'deploy/production/evil.yaml'), 'kind: Pod\n');
    writeFileSync(join(mallory, 'policies/promotion.yaml'), 'rules: []\n');
    git(mallory, 'add', '-A');
    git(mallory, 'commit', '-qm', 'extra');
    await gitAsync('git', ['-C', mallory, 'push', '-q', 'origin', `HEAD:${overtaken.branch}`]);
    const manifestOnBranch = git(mallory, 'show', 'HEAD:models/fraud/versions/2.yaml');

    await pushBlind(remote, 1);
    expect((await pull(remote, overtaken.pr)).mergeable).toBe(false);

    const r = await syncJob(remote);
    expect(r.code, r.stdout).toBe(0);
    expect(r.outputs.decision).toBe('pass');
    const renumbered = r.report.renumbered as Array<{
      status: string;
      from: { pullRequest: number; version: number };
      to: { pullRequest: number; version: number; branch: string };
    }>;
    expect(renumbered).toHaveLength(1);
    expect(renumbered[0]).toMatchObject({
      status: 'renumbered',
      from: { pullRequest: overtaken.pr, version: 2 },
      to: { version: 4, branch: 'modelgate/fraud-v4-register' },
    });
    const next = await pull(remote, renumbered[0]!.to.pullRequest);
    expect(next).toMatchObject({ state: 'open', mergeable: true, title: 'Register fraud@4', head: { ref: 'modelgate/fraud-v4-register' } });
    expect(next.body).toContain(`Re-numbered by ${BY}`);
    expect(next.body).toContain(`#${overtaken.pr}`);

    const check = await fetched(remote);
    // The change alone on main: the manifest with version 4 and every other byte as registered.
    expect(git(check, 'rev-list', '--parents', '-n', '1', 'origin/modelgate/fraud-v4-register').trim().split(' ').slice(1)).toEqual([
      git(check, 'rev-parse', 'origin/main').trim(),
    ]);
    expect(git(check, 'diff', '--name-only', 'origin/main', 'origin/modelgate/fraud-v4-register').trim()).toBe('models/fraud/versions/4.yaml');
    expect(git(check, 'show', 'origin/modelgate/fraud-v4-register:models/fraud/versions/4.yaml')).toBe(manifestOnBranch.replace(/^version: 2$/m, 'version: 4'));
    // The registrant stays the commit's author and committer (the gate keeps them from approving).
    expect(git(check, 'log', '-1', '--format=%an|%cn|%B', 'origin/modelgate/fraud-v4-register')).toContain(`maria|maria|register fraud@4`);
    expect(git(check, 'log', '-1', '--format=%B', 'origin/modelgate/fraud-v4-register')).toContain(`Re-numbered-by: ${BY}`);

    const old = await pull(remote, overtaken.pr);
    expect(old.state).toBe('closed');
    expect((await comments(remote, overtaken.pr)).some((c) => c.includes(`#${next.number}`) && c.includes(BY))).toBe(true);
    expect(await remote.branches()).toEqual(['main', mergeable.branch, 'modelgate/fraud-v4-register'].sort());

    // The pull request main did not overtake is exactly as it was.
    const untouched = await pull(remote, mergeable.pr);
    expect(untouched).toMatchObject({ state: 'open', mergeable: true, title: untouchedBefore.title, body: untouchedBefore.body });
    expect([untouched.head.ref, untouched.head.sha]).toEqual([untouchedBefore.head.ref, untouchedBefore.head.sha]);

    // The next push finds nothing to do.
    const again = await syncJob(remote);
    expect(again.code, again.stdout).toBe(0);
    expect(again.report.renumbered).toEqual([]);
    expect(remote.gh.validator.violations).toEqual([]);
  }, 240_000);

  it('dist/action.js sync: two registrations both overtaken get two distinct new numbers and stay mergeable after either merges; a close that failed is finished by the next run, not re-numbered twice', async () => {
    remote = await prRemote({ uri: pathToFileURL(tempDir('mg-store-')).href }, POLICY);
    remote.gh.addUser('octo');
    const first = await registerPr(remote, 'a.bin', 2000);
    const second = await registerPr(remote, 'b.bin', 2001);
    expect([first.version, second.version]).toEqual([1, 2]);
    await pushBlind(remote, 3);

    // GitHub refuses the first close: that pull request keeps its successor and is closed by the next run.
    const refused = remote.gh.inject('PATCH /repos/{owner}/{repo}/pulls/{pull_number}', { status: 422, times: 1 });
    const r = await syncJob(remote);
    expect(refused.hits).toBe(1);
    expect(r.code).not.toBe(0);
    const renumbered = r.report.renumbered as Array<{ status: string; from: { pullRequest: number }; to?: { pullRequest: number; version: number } }>;
    expect(renumbered.map((x) => x.status)).toEqual(['failed', 'renumbered']);
    expect(renumbered[1]).toMatchObject({ from: { pullRequest: second.pr }, to: { version: 5 } });
    expect((await pull(remote, first.pr)).state).toBe('open');

    const again = await syncJob(remote);
    expect(again.code, again.stdout).toBe(0);
    const closed = again.report.renumbered as Array<{ status: string; from: { pullRequest: number }; to: { pullRequest: number; version: number } }>;
    expect(closed).toEqual([
      expect.objectContaining({ status: 'closed', from: expect.objectContaining({ pullRequest: first.pr }), to: expect.objectContaining({ version: 4 }) }),
    ]);
    expect((await pull(remote, first.pr)).state).toBe('closed');
    expect((await pull(remote, second.pr)).state).toBe('closed');
    expect(await remote.branches()).toEqual(['main', 'modelgate/fraud-v4-register', 'modelgate/fraud-v5-register']);

    const four = await pull(remote, closed[0]!.to.pullRequest);
    const five = await pull(remote, renumbered[1]!.to!.pullRequest);
    expect([four.title, five.title]).toEqual(['Register fraud@4', 'Register fraud@5']);
    expect([four.mergeable, five.mergeable]).toEqual([true, true]);
    const merged = await fetch(`${remote.gh.url}/repos/acme/model-registry/pulls/${four.number}/merge`, {
      method: 'PUT',
      headers: { authorization: `token ${remote.env.GITHUB_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ merge_method: 'merge' }),
    });
    expect(merged.status).toBe(200);
    expect((await pull(remote, five.number)).mergeable).toBe(true);
    expect(remote.gh.validator.violations).toEqual([]);
  }, 240_000);

  it('modelgate sync --renumber does the same for a registry without the Action', async () => {
    remote = await prRemote({ uri: pathToFileURL(tempDir('mg-store-')).href }, POLICY);
    const overtaken = await registerPr(remote, 'a.bin', 2000);
    await pushBlind(remote, 1);
    const clone = await cloneOf(remote.url, 'ops');
    const r = await cli(clone, ['--json', 'sync', '--renumber'], remote.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.renumbered).toEqual([
      expect.objectContaining({
        status: 'renumbered',
        from: expect.objectContaining({ pullRequest: overtaken.pr, version: 1 }),
        to: expect.objectContaining({ version: 2 }),
      }),
    ]);
    const next = await pull(remote, r.json.renumbered[0].to.pullRequest);
    expect(next).toMatchObject({ state: 'open', mergeable: true, title: 'Register fraud@2' });
    expect(next.body).toContain('Re-numbered by modelgate sync --renumber (run by ops)');
    expect((await pull(remote, overtaken.pr)).state).toBe('closed');
    const again = await cli(clone, ['--json', 'sync', '--renumber'], remote.env);
    expect([again.code, again.json.renumbered]).toEqual([0, []]);
    expect((await cli(clone, ['sync', '--renumber', '--check'], remote.env)).code).toBe(2);
  }, 120_000);
});
