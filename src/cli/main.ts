import { cancelled, cancelledExitCode } from '../cancel.js';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Command, CommandContext } from './context.js';

import pkg from '../../package.json' with { type: 'json' };
import { commandHelp, COMMAND_SPECS, type CommandName } from './commands.js';

/** The version of this modelgate, from package.json (bundled in at build time). */
export const VERSION: string = pkg.version;

/** Each command is imported only when it runs, so `--help` and light commands start fast. */
const COMMANDS: Record<CommandName, () => Promise<{ run: Command }>> = {
  init: () => import('../commands/init.js'),
  validate: () => import('../commands/validate.js'),
  scan: () => import('../commands/scan.js'),
  register: () => import('../commands/register.js'),
  promote: () => import('../commands/promote.js'),
  rollback: () => import('../commands/rollback.js'),
  archive: () => import('../commands/archive.js'),
  annotate: () => import('../commands/annotate.js'),
  alias: () => import('../commands/alias.js'),
  list: () => import('../commands/list.js'),
  show: () => import('../commands/show.js'),
  history: () => import('../commands/history.js'),
  diff: () => import('../commands/diff.js'),
  pages: () => import('../commands/pages.js'),
  resolve: () => import('../commands/resolve.js'),
  pull: () => import('../commands/pull.js'),
  verify: () => import('../commands/verify.js'),
  gc: () => import('../commands/gc.js'),
  check: () => import('../commands/check.js'),
  import: () => import('../commands/import.js'),
  sync: () => import('../commands/sync.js'),
  serve: () => import('../commands/serve.js'),
};

const GLOBAL_HELP = `modelgate — a model registry that lives in Git

usage: modelgate <command> [flags]

commands:
${Object.entries(COMMAND_SPECS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

global flags:
  --registry <dir-or-url>  registry folder (default: nearest folder upward holding modelgate.yaml), or an https:// git URL read without a clone (list, show, diff, resolve, pull, verify, validate)
  --json            machine output on stdout
  --quiet           no human output
  --debug           stack traces on errors
  -h, --help        help for modelgate or a command
  --version         print the modelgate version

modelgate help <command> (or modelgate <command> --help) lists every flag of a command.

exit codes: 0 success, 1 content or check failed, 2 command line, 3 outside service
`;

type Io = Pick<CommandContext, 'cwd' | 'env' | 'stdout' | 'stderr' | 'tty'>;

/** Parses global flags, dispatches to the command, and maps every error to SPEC §4 exit codes. */
export async function runCli(args: string[], io: Io): Promise<number> {
  const ctx: CommandContext = { ...io, argv: [], json: false, quiet: false, debug: false };
  let name: string | undefined;
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') ctx.json = true;
    else if (a === '--quiet' || a === '-q') ctx.quiet = true;
    else if (a === '--debug') ctx.debug = true;
    else if (a === '--help' || a === '-h') help = true;
    else if (a === '--version' && name === undefined) {
      io.stdout(`${VERSION}\n`);
      return ExitCode.ok;
    } else if (a === '--registry' || a.startsWith('--registry=')) {
      const value = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i];
      if (!value) return usage(io, 'modelgate: --registry needs a folder or a git URL');
      ctx.registry = value;
    } else if (name === undefined && !a.startsWith('-')) name = a;
    else ctx.argv.push(a);
  }
  if (name === undefined) {
    if (help || args.length === 0) {
      io.stdout(GLOBAL_HELP);
      return help ? ExitCode.ok : ExitCode.usage;
    }
    return usage(io, `modelgate: no command given\n${GLOBAL_HELP}`);
  }
  if (name === 'help') {
    const topic = ctx.argv.find((a) => !a.startsWith('-'));
    if (topic === undefined) {
      io.stdout(GLOBAL_HELP);
      return ExitCode.ok;
    }
    if (!Object.hasOwn(COMMANDS, topic)) return usage(io, `modelgate: unknown command ${JSON.stringify(topic)}; run modelgate --help`);
    io.stdout(commandHelp(topic as CommandName));
    return ExitCode.ok;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name as CommandName] : undefined;
  if (!load) return usage(io, `modelgate: unknown command ${JSON.stringify(name)}; run modelgate --help`);
  if (help) {
    io.stdout(commandHelp(name as CommandName));
    return ExitCode.ok;
  }
  try {
    const { run } = await load();
    return await run(ctx);
  } catch (e) {
    return report(ctx, e);
  }
}

function usage(io: Io, message: string): number {
  io.stderr(message.endsWith('\n') ? message : message + '\n');
  return ExitCode.usage;
}

function report(ctx: CommandContext, e: unknown): number {
  // A cancelled command's failure is the cancellation's doing: nothing to report.
  const signal = cancelled();
  if (signal) return cancelledExitCode(signal);
  if (e instanceof ModelgateError) {
    if (ctx.json) ctx.stdout(JSON.stringify({ error: { code: e.code, message: e.message, ...e.data } }, null, 2) + '\n');
    ctx.stderr(`modelgate: ${e.message}\n`);
    if (ctx.debug && e.stack) ctx.stderr(e.stack + '\n');
    return e.exit;
  }
  const err = e as Error;
  ctx.stderr(`modelgate: unexpected error: ${err?.message ?? String(e)}\n`);
  if (ctx.debug && err?.stack) ctx.stderr(err.stack + '\n');
  else ctx.stderr('modelgate: run again with --debug for details\n');
  return ExitCode.content;
}
