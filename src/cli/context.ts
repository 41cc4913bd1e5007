import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError } from '../errors.js';

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

/**
 * node:util parseArgs, with its errors turned into exit-2 usage errors. `options` is a command's
 * declared flags (src/cli/commands.ts); their descriptions are left out of what parseArgs sees.
 */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, usage: string) {
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
