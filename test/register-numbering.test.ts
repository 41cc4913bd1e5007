// Version numbers never collide (SPEC v3 §14): register --pr and register --push running at the
// same time from several clones get distinct numbers, and every pull request register --pr opens
// stays mergeable. Against the git http-backend remote and the GitHub emulator.
import { execFile } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, git, randomFile, tempDir, type CliResult } from './helpers/artifacts.js';
import { POLICY } from './gate-fixtures.js';
import { prRemote, type PrRemote } from './helpers/pr-remote.js';

// The http-backend server runs in this process: clones against it must not block the event loop.
const gitAsync = promisify(execFile);

async function cloneOf(url: string): Promise<string> {
  const dir = tempDir('mg-clone-');
  await gitAsync('git', ['clone', '-q', url, dir]);
  git(dir, 'config', 'user.name', 'maria');
  git(dir, 'config', 'user.email', 'maria@example.com');
  return dir;
}

/** The pull request as GitHub (the emulator) answers it: its title, head branch and whether it merges. */
async function pullRequest(remote: PrRemote, number: number): Promise<{ title: string; mergeable: boolean | null; state: string; head: { ref: string } }> {
  const res = await fetch(`${remote.gh.url}/repos/acme/model-registry/pulls/${number}`, { headers: { authorization: `token ${remote.env.GITHUB_TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { title: string; mergeable: boolean | null; state: string; head: { ref: string } };
}

/** Version numbers of a model on a commit of the remote, read from a clone after a fetch. */
function versionsAt(clone: string, rev: string): number[] {
  return git(clone, 'ls-tree', '--name-only', `${rev}:models/fraud/versions`)
    .split('\n')
    .filter(Boolean)
    .map((n) => Number(n.replace(/\.yaml$/, '')))
    .sort((a, b) => a - b);
}

describe('version numbers of concurrent registrations', () => {
  let remote: PrRemote | undefined;
  afterEach(async () => {
    await remote?.close();
    remote = undefined;
  });

  it('mixed --pr and --push runs from four clones: distinct numbers, every pull request mergeable, three rounds', async () => {
    remote = await prRemote({ uri: pathToFileURL(tempDir('mg-store-')).href }, POLICY);
    const { url, env } = remote;
    const modes = ['--pr', '--push', '--pr', '--push'];
    const clones = await Promise.all(modes.map(() => cloneOf(url)));
    const prs: CliResult[] = [];
    const pushes: CliResult[] = [];
    for (let round = 0; round < 3; round++) {
      const runs = await Promise.all(
        clones.map((dir, i) => cli(dir, ['--json', 'register', 'fraud', randomFile(tempDir(), `m${round}-${i}.bin`, 2000 + i).path, modes[i]!], env)),
      );
      for (const r of runs) expect(r.code, r.stderr).toBe(0);
      runs.forEach((r, i) => (modes[i] === '--pr' ? prs : pushes).push(r));
    }
    const numbers = [...prs, ...pushes].map((r) => r.json.version as number);
    expect(new Set(numbers).size).toBe(numbers.length);

    const check = await cloneOf(url);
    await gitAsync('git', ['-C', check, 'fetch', '-q', 'origin', '+refs/heads/*:refs/remotes/origin/*']);
    // main holds exactly what was pushed; each pull request proposes its own number, which main does not hold.
    expect(versionsAt(check, 'origin/main')).toEqual(pushes.map((r) => r.json.version as number).sort((a, b) => a - b));
    for (const r of prs) {
      const pr = await pullRequest(remote, r.json.pullRequest.number);
      expect(pr.state).toBe('open');
      expect(pr.head.ref).toBe(`modelgate/fraud-v${r.json.version}-register`);
      expect(pr.title).toBe(`Register fraud@${r.json.version}`);
      expect(pr.mergeable).toBe(true);
      expect(versionsAt(check, `origin/${pr.head.ref}`)).toContain(r.json.version);
    }
    // No claim is left behind: the only registration branches are the pull requests'.
    expect((await remote.branches()).filter((b) => b !== 'main').sort()).toEqual(prs.map((r) => r.json.branch as string).sort());
  }, 300_000);

  it('a registration branch whose number main took meanwhile is re-numbered before its pull request opens', async () => {
    remote = await prRemote({ uri: pathToFileURL(tempDir('mg-store-')).href }, POLICY);
    const { url, env, ghRepo } = remote;
    const work = await cloneOf(url);
    expect((await cli(work, ['register', 'fraud', randomFile(tempDir(), 'v1.bin', 1000).path, '--push'], env)).code).toBe(0);
    // A writer that never looks at registration branches: the moment the first one arrives, it
    // lands that number on main with other content (a push of an older client, by hand).
    const hook = join(ghRepo.gitDir!, 'hooks', 'post-receive');
    writeFileSync(
      hook,
      `#!/bin/sh
while read old new ref; do
  case "$ref" in refs/heads/modelgate/fraud-v*-register)
    [ -e raced ] && continue
    touch raced
    n=\${ref#refs/heads/modelgate/fraud-v}; n=\${n%-register}
    main=$(git rev-parse refs/heads/main)
    blob=$( (echo '# registered elsewhere'; git cat-file blob "$new:models/fraud/versions/$n.yaml") | git hash-object -w --stdin)
    export GIT_INDEX_FILE="$PWD/race-index"
    git read-tree "$main"
    git update-index --add --cacheinfo 100644 "$blob" "models/fraud/versions/$n.yaml"
    tree=$(git write-tree)
    commit=$(GIT_AUTHOR_NAME=x GIT_AUTHOR_EMAIL=x@example.com GIT_COMMITTER_NAME=x GIT_COMMITTER_EMAIL=x@example.com git commit-tree "$tree" -p "$main" -m "register fraud@$n elsewhere")
    git update-ref refs/heads/main "$commit" "$main"
  esac
done
`,
    );
    chmodSync(hook, 0o755);
    const r = await cli(work, ['--json', 'register', 'fraud', randomFile(tempDir(), 'v2.bin', 2000).path, '--pr'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.version).toBe(3);
    const check = await cloneOf(url);
    expect(versionsAt(check, 'origin/main')).toEqual([1, 2]);
    expect(await remote.branches()).toEqual(['main', 'modelgate/fraud-v3-register']);
    const pr = await pullRequest(remote, r.json.pullRequest.number);
    expect(pr.mergeable).toBe(true);
    expect(pr.title).toBe('Register fraud@3');

    // An open registration branch holds its number against pushes from any clone.
    const pushed = await cli(await cloneOf(url), ['--json', 'register', 'fraud', randomFile(tempDir(), 'v4.bin', 4000).path, '--push'], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.json.version).toBe(4);
    expect((await pullRequest(remote, r.json.pullRequest.number)).mergeable).toBe(true);
  }, 120_000);
});
