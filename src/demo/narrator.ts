import { spawn } from 'node:child_process';

/** Prints the demo's story: numbered steps, the commands run, and their output indented. */
export class Narrator {
  private step = 0;
  constructor(private readonly write: (text: string) => void = (t) => process.stdout.write(t)) {}

  heading(title: string): void {
    this.step++;
    this.write(`\n\x1b[1m${this.step}. ${title}\x1b[0m\n`);
  }

  say(text: string): void {
    this.write(`   ${text}\n`);
  }

  command(display: string, output: string): void {
    this.write(`   \x1b[36m$ ${display}\x1b[0m\n`);
    const body = output.trimEnd();
    if (body)
      this.write(
        body
          .split('\n')
          .map((l) => `     ${l}`)
          .join('\n') + '\n',
      );
  }
}

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion, capturing its output. */
export function runProcess(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    if (child.stdin) {
      // A program that exits without reading its input must not crash the demo with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}

/** A step that did not behave as the story says stops the demo with a non-zero exit. */
export class DemoFailure extends Error {}

export function expectExit(result: ProcessResult, expected: number, what: string): ProcessResult {
  if (result.code !== expected) {
    throw new DemoFailure(`${what}: expected exit ${expected}, got ${result.code}\n${result.stdout}${result.stderr}`);
  }
  return result;
}
