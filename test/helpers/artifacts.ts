// Registries and CLI runs for the artifact tests (register, pull, verify, the stores).
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/main.js';

export const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

export function tempDir(prefix = 'mg-art-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
}

/** A registry repo (git, one commit) whose modelgate.yaml stores artifacts at `storage`. */
export function makeRegistry(storage: Record<string, unknown>, dir = tempDir('mg-reg-')): string {
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.name', 'maria');
  git(dir, 'config', 'user.email', 'maria@example.com');
  const lines = Object.entries(storage).map(([k, v]) => `  ${k}: ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  writeFileSync(join(dir, 'modelgate.yaml'), `apiVersion: modelgate.dev/v1\nkind: Registry\nstorage:\n${lines.join('\n')}\n`);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'registry');
  return dir;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json?: any;
}

/** Runs the CLI in-process in `cwd`; `env` replaces the environment the command sees. */
export async function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, USER: 'ci-user', ...env },
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    tty: false,
  });
  let json: unknown;
  if (args.includes('--json')) {
    try {
      json = JSON.parse(stdout);
    } catch {}
  }
  return { code, stdout, stderr, json };
}

/** A file of `size` random bytes. */
export function randomFile(dir: string, name: string, size: number): { path: string; bytes: Buffer } {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}
