import { cancelled, cancelledExitCode } from '../cancel.js';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Command, CommandContext } from './context.js';

import pkg from '../../package.json' with { type: 'json' };
import { commandHelp, COMMAND_SPECS, type CommandName } from './commands.js';

/** The version of this modelgate, from package.json (bundled in at build time). */
export const VERSION: string = pkg.version;

interface CommandEntry {
  summary: string;
  load: () => Promise<{ run: Command }>;
}

/** Each command is imported only when it runs, so `--help` and light commands start fast. */
const COMMANDS: Record<CommandName, CommandEntry> = {
  init: { summary: COMMAND_SPECS.init.summary, load: () => import('../commands/init.js') },
  validate: { summary: COMMAND_SPECS.validate.summary, load: () => import('../commands/validate.js') },
  scan: { summary: COMMAND_SPECS.scan.summary, load: () => import('../commands/scan.js') },
  register: { summary: COMMAND_SPECS.register.summary, load: () => import('../commands/register.js') },
  promote: { summary: COMMAND_SPECS.promote.summary, load: () => import('../commands/promote.js') },
  rollback: { summary: COMMAND_SPECS.rollback.summary, load: () => import('../commands/rollback.js') },
  archive: { summary: COMMAND_SPECS.archive.summary, load: () => import('../commands/archive.js') },
  annotate: { summary: COMMAND_SPECS.annotate.summary, load: () => import('../commands/annotate.js') },
  alias: { summary: COMMAND_SPECS.alias.summary, load: () => import('../commands/alias.js') },
  list: { summary: COMMAND_SPECS.list.summary, load: () => import('../commands/list.js') },
  show: { summary: COMMAND_SPECS.show.summary, load: () => import('../commands/show.js') },
  history: { summary: COMMAND_SPECS.history.summary, load: () => import('../commands/history.js') },
  diff: { summary: COMMAND_SPECS.diff.summary, load: () => import('../commands/diff.js') },
  pages: { summary: COMMAND_SPECS.pages.summary, load: () => import('../commands/pages.js') },
  resolve: { summary: COMMAND_SPECS.resolve.summary, load: () => import('../commands/resolve.js') },
  pull: { summary: COMMAND_SPECS.pull.summary, load: () => import('../commands/pull.js') },
  verify: { summary: COMMAND_SPECS.verify.summary, load: () => import('../commands/verify.js') },
  check: { summary: COMMAND_SPECS.check.summary, load: () => import('../commands/check.js') },
  gc: { summary: COMMAND_SPECS.gc.summary, load: () => import('../commands/gc.js') },
  import: { summary: COMMAND_SPECS.import.summary, load: () => import('../commands/import.js') },
  sync: { summary: COMMAND_SPECS.sync.summary, load: () => import('../commands/sync.js') },
  serve: { summary: COMMAND_SPECS.serve.summary, load: () => import('../commands/serve.js') },
};

const GLOBAL_HELP = `modelgate — a model registry that lives in Git

usage: modelgate <command> [flags]

commands:
${Object.entries(COMMANDS)
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
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name as CommandName] : undefined;
  if (!entry) return usage(io, `modelgate: unknown command ${JSON.stringify(name)}; run modelgate --help`);
  if (help) {
    io.stdout(commandHelp(name as CommandName));
    return ExitCode.ok;
  }
  try {
    const { run } = await entry.load();
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
