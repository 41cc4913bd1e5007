// Runs the built dist/action.js the way the GitHub runner does: inputs as INPUT_* variables,
// outputs and the job summary written to the files GITHUB_OUTPUT and GITHUB_STEP_SUMMARY name.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

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
