import { existsSync, mkdtempSync } from 'node:fs';
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
      expect(r.stderr).toContain('write fraud-detector@<N>, fraud-detector@latest, fraud-detector@<stage> or fraud-detector@<alias>');
    }
  });
});

describe('version references in every command that takes one', () => {
  it('refuses a bare model name wherever one version is acted on (E_BARE_MODEL_REF, exit 2)', async () => {
    const out = join(root, '..', 'bare-pull');
    for (const args of [
      ['show', 'fraud-detector'],
      ['resolve', 'fraud-detector'],
      ['pull', 'fraud-detector', '-o', out],
      ['verify', 'fraud-detector'],
      ['verify', 'fraud-detector@1', 'fraud-detector'],
      ['diff', 'fraud-detector@1', 'fraud-detector'],
      ['annotate', 'fraud-detector', 'owner=a', '--dry-run'],
      ['promote', 'fraud-detector', '--to', 'Staging', '--dry-run'],
      ['archive', 'fraud-detector', '--dry-run'],
    ]) {
      const r = await cli(['--json', ...args]);
      expect({ args, code: r.code, error: JSON.parse(r.stdout).error }).toMatchObject({
        args,
        code: 2,
        error: { code: 'E_BARE_MODEL_REF', model: 'fraud-detector' },
      });
    }
    expect(existsSync(out)).toBe(false);
    // A model name is still what the commands about a whole model take.
    expect((await cli(['list', '--model', 'fraud-detector'])).code).toBe(0);
    expect((await cli(['history', 'fraud-detector'])).code).toBe(0);
  });

  it('@latest is the newest version in show, resolve, pull, verify, diff and annotate', async () => {
    const json = async (args: string[]) => {
      const r = await cli(['--json', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}${r.stdout}`).toBe(0);
      return JSON.parse(r.stdout);
    };
    expect(await json(['show', 'fraud-detector@latest'])).toMatchObject({ model: 'fraud-detector', version: 2 });
    const resolved = await json(['resolve', 'fraud-detector@latest']);
    expect(resolved).toEqual(await json(['resolve', 'fraud-detector@2']));
    const pulled = await json(['pull', 'fraud-detector@latest', '-o', join(root, '..', 'latest-pull')]);
    expect(pulled).toMatchObject({ version: 2, sha256: resolved.sha256 });
    expect(await json(['verify', 'fraud-detector@latest'])).toMatchObject({ checked: 1, broken: [] });
    expect(await json(['diff', 'fraud-detector@1', 'fraud-detector@latest'])).toMatchObject({ a: { version: 1 }, b: { version: 2 } });
    expect((await json(['annotate', 'fraud-detector@latest', 'owner=a', '--dry-run'])).summary).toMatch(/fraud-detector@2\b/);
  });

  it('refuses a reference that is neither a number, latest, a stage nor an alias name (E_USAGE, exit 2)', async () => {
    for (const ref of ['fraud-detector@', 'fraud-detector@0', 'fraud-detector@LATEST', 'fraud-detector@Champion', 'fraud-detector@v2', 'Fraud@1']) {
      const r = await cli(['--json', 'show', ref]);
      expect({ ref, code: r.code, error: JSON.parse(r.stdout).error.code }).toEqual({ ref, code: 2, error: 'E_USAGE' });
    }
    // An alias name the model does not have is unknown content, not a malformed reference.
    const r = await cli(['--json', 'show', 'fraud-detector@champion']);
    expect({ code: r.code, error: JSON.parse(r.stdout).error.code }).toEqual({ code: 1, error: 'E_NOT_FOUND' });
  });
});
