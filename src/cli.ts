#!/usr/bin/env node
import { exitOnSignal } from './cancel.js';
import { runCli } from './cli/main.js';

exitOnSignal();

process.exitCode = await runCli(process.argv.slice(2), {
  cwd: process.cwd(),
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  tty: Boolean(process.stderr.isTTY),
});
