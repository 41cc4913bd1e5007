import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError, type ModelgateError } from '../errors.js';
import { COMMAND_SPECS, usageOf, type CommandName } from './commands.js';

/** What every command receives: its own arguments and the process around it, injectable in tests. */
export interface CommandContext {
  /** Arguments after the command name, global flags removed. */
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout(text: string): void;
  stderr(text: string): void;
  /** `--registry <dir>`; undefined means "nearest folder upward holding modelgate.yaml". */
  registry?: string;
  json: boolean;
  quiet: boolean;
  debug: boolean;
  /** True when stderr is a terminal (progress bars, colours). */
  tty: boolean;
}

/** A command returns its exit code; it throws ModelgateError for everything it reports as a failure. */
export type Command = (ctx: CommandContext) => Promise<number>;

type Options = NonNullable<ParseArgsConfig['options']>;

/** Makes the exit-2 error for a wrong command line: `message`, then the command's usage line. */
export type Misuse = (message: string) => ModelgateError;

/**
 * A command's arguments parsed against its declaration in COMMAND_SPECS (src/cli/commands.ts):
 * the flags' values and the positionals, its usage line (`modelgate register <model>
 * <file-or-dir> [flags]`), and `misuse`, the exit-2 error for a wrong command line with that
 * usage line appended. An unknown flag or a missing value is such an error already.
 */
export function parseCommand<N extends CommandName>(name: N, argv: string[]) {
  const usage = `modelgate ${usageOf(name)}`;
  const misuse: Misuse = (message) => usageError(`${message}\nusage: ${usage}`);
  return { ...parseCommandArgs<(typeof COMMAND_SPECS)[N]['flags']>(argv, COMMAND_SPECS[name].flags, usage), usage, misuse };
}

/** node:util parseArgs, with its errors turned into exit-2 usage errors; the flags' descriptions are left out of what parseArgs sees. */
function parseCommandArgs<O extends Options>(argv: string[], options: O, usage: string) {
  const config: Options = {};
  for (const [name, { type, multiple, short }] of Object.entries(options)) {
    config[name] = { type, ...(multiple ? { multiple } : {}), ...(short ? { short } : {}) };
  }
  try {
    return parseArgs({ args: argv, options: config as O, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError(`${(e as Error).message}\nusage: modelgate ${usage.replace(/^modelgate /, '')}`);
  }
}

/** Prints `value` as JSON (machine output) or `human` text, per `--json`. */
export function emit(ctx: CommandContext, value: unknown, human: () => string): void {
  if (ctx.json) ctx.stdout(JSON.stringify(value, null, 2) + '\n');
  else if (!ctx.quiet) {
    const text = human();
    if (text) ctx.stdout(text.endsWith('\n') ? text : text + '\n');
  }
}
