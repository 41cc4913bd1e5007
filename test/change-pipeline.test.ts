// The one change pipeline: branch names built and parsed in one place, and concurrent
// registrations from several clones against a `git http-backend` remote getting distinct numbers.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { branchName, parseBranch, registeredOnBranches, type BranchSpec } from '../src/promote/change.js';
import { cli, git, randomFile, tempDir } from './helpers/artifacts.js';
import { POLICY } from './gate-fixtures.js';
import { prRemote, type PrRemote } from './helpers/pr-remote.js';

const run = promisify(execFile);

describe('branchName / parseBranch', () => {
  it("are each other's inverse, and parse nothing modelgate did not name", () => {
    const specs: BranchSpec[] = [
      { kind: 'register', model: 'fraud-detector', version: 12 },
      { kind: 'stage', model: 'churn', version: 3, stage: 'Production' },
      { kind: 'stage', model: 'a-v2-b', version: 1, stage: 'Archived' },
      { kind: 'annotate', model: 'churn', version: 3, keys: ['owner', 'team'] },
      { kind: 'sync' },
    ];
    for (const s of specs) expect(parseBranch(branchName(s))).toEqual(s);
    expect(branchName({ kind: 'register', model: 'x', version: 4 })).toBe('modelgate/x-v4-register');
    expect(parseBranch('main')).toBeUndefined();
    expect(parseBranch('modelgate/x-v0-register')).toBeUndefined();
    expect(parseBranch('feature/x-v1-register')).toBeUndefined();
    expect(
      registeredOnBranches(['modelgate/x-v4-register', 'refs/heads/modelgate/x-v7-register', 'modelgate/xy-v9-register', 'modelgate/x-v8-production'], 'x'),
    ).toEqual([4, 7]);
  });
});

describe('concurrent registrations from several clones', () => {
  let remote: PrRemote | undefined;
  afterAll(async () => remote?.close());

  it('three register --pr and then three register --push at once: six distinct versions, none fails', async () => {
    const store = tempDir('mg-store-');
    remote = await prRemote({ uri: pathToFileURL(store).href }, POLICY);
    const { url, env } = remote;
    const clones: string[] = [];
    for (let i = 0; i < 3; i++) {
      const d = tempDir(`mg-clone${i}-`);
      await run('git', ['clone', '-q', url, d]);
      git(d, 'config', 'user.name', `ci${i}`);
      git(d, 'config', 'user.email', `ci${i}@example.com`);
      clones.push(d);
    }
    const files = clones.map((d, i) => randomFile(tempDir(), `m${i}.bin`, 2048));
    const prs = await Promise.all(clones.map((d, i) => cli(d, ['--json', 'register', 'churn', files[i]!.path, '--pr'], env)));
    for (const r of prs) expect(r.code, r.stderr).toBe(0);
    const prVersions = prs.map((r) => (r.json as { version: number }).version).sort();
    expect(prVersions).toEqual([1, 2, 3]);
    expect((await remote.branches()).filter((b) => b.startsWith('modelgate/'))).toEqual([
      'modelgate/churn-v1-register',
      'modelgate/churn-v2-register',
      'modelgate/churn-v3-register',
    ]);

    // --push numbers past main and past the open registration branches.
    const more = clones.map((d, i) => randomFile(tempDir(), `n${i}.bin`, 1024));
    const pushes = await Promise.all(clones.map((d, i) => cli(d, ['--json', 'register', 'churn', more[i]!.path, '--push'], env)));
    for (const r of pushes) expect(r.code, r.stderr).toBe(0);
    expect(pushes.map((r) => (r.json as { version: number }).version).sort()).toEqual([4, 5, 6]);
    const look = tempDir('mg-look-');
    await run('git', ['clone', '-q', url, look]);
    expect(git(look, 'ls-tree', '--name-only', 'origin/main', 'models/churn/versions/').trim().split('\n').sort()).toEqual(
      ['4', '5', '6'].map((n) => `models/churn/versions/${n}.yaml`),
    );
    expect(remote.gh.validator.violations).toEqual([]);
  }, 360_000);
});
