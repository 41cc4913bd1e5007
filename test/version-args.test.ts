import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';

const env = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Maria',
  GIT_AUTHOR_EMAIL: 'maria@example.com',
  GIT_COMMITTER_NAME: 'Maria',
  GIT_COMMITTER_EMAIL: 'maria@example.com',
};
let root: string;

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { cwd: root, env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), tty: false });
  return { code, stdout, stderr };
}

// A real registry from `init --example` (fraud-detector with versions 1 and 2, artifacts in a temp store).
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mg-refs-'));
  expect((await cli(['init', 'reg', '--example', '--store', `file://${join(root, 'store')}`])).code).toBe(0);
  root = join(root, 'reg');
});

describe('promote and archive take model@N and @latest', () => {
  it('model@N and the two-word form name the same version', async () => {
    for (const args of [['fraud-detector@1'], ['fraud-detector', '1']]) {
      const r = await cli(['--json', 'promote', ...args, '--to', 'Staging', '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).summary).toBe('Promote fraud-detector@1 to Staging');
    }
  });

  it('@latest is the newest version, read from the registry', async () => {
    const r = await cli(['--json', 'archive', 'fraud-detector@latest', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).summary).toMatch(/fraud-detector@2\b/);
  });

  it('a bare model name is an error that says a version is required', async () => {
    for (const cmd of [
      ['promote', 'fraud-detector', '--to', 'Staging'],
      ['archive', 'fraud-detector'],
    ]) {
      const r = await cli([...cmd, '--dry-run']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('a version is required; write fraud-detector@<version> or fraud-detector@latest');
    }
  });
});
