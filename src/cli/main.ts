import { ExitCode, ModelgateError } from '../errors.js';
import type { Command, CommandContext } from './context.js';

interface CommandEntry {
  usage: string;
  summary: string;
  load: () => Promise<{ run: Command }>;
}

/** Each command is imported only when it runs, so `--help` and light commands start fast. */
const COMMANDS: Record<string, CommandEntry> = {
  init: { usage: 'init <dir> [--store s3://bucket/prefix | file://path] [--github owner/repo]', summary: 'create a registry from the template', load: () => import('../commands/init.js') },
  validate: { usage: 'validate [path…]', summary: 'check schemas and registry rules', load: () => import('../commands/validate.js') },
  register: { usage: 'register <model> <file-or-dir> [--metrics f.json | k=v…] [--params …] [--stage Staging] [--push | --pr]', summary: 'upload an artifact and record a new version', load: () => import('../commands/register.js') },
  promote: { usage: 'promote <model> <version> --to <Stage> [--pr | --push]', summary: 'change a version\'s stage', load: () => import('../commands/promote.js') },
  rollback: { usage: 'rollback <model> [--to <version>] [--pr | --push]', summary: 'put a former Production version back', load: () => import('../commands/rollback.js') },
  archive: { usage: 'archive <model> <version> [--pr | --push]', summary: 'move a version to Archived', load: () => import('../commands/archive.js') },
  annotate: { usage: 'annotate <ref> key=value… [--pr | --push]', summary: 'set annotations on a version', load: () => import('../commands/annotate.js') },
  list: { usage: 'list [--model m] [--stage S] [--where "<expr>"]', summary: 'list versions', load: () => import('../commands/list.js') },
  show: { usage: 'show <ref> [--at <date-or-commit>]', summary: 'show one version', load: () => import('../commands/show.js') },
  history: { usage: 'history <model>', summary: 'every stage change, from git history', load: () => import('../commands/history.js') },
  diff: { usage: 'diff <ref> <ref>', summary: 'compare two versions', load: () => import('../commands/diff.js') },
  resolve: { usage: 'resolve <ref> [--presign <seconds>]', summary: 'uri, sha256 and size for serving', load: () => import('../commands/resolve.js') },
  pull: { usage: 'pull <ref> -o <path>', summary: 'download and verify an artifact', load: () => import('../commands/pull.js') },
  verify: { usage: 'verify [ref…] [--full]', summary: 'check artifacts in the store', load: () => import('../commands/verify.js') },
  check: { usage: 'check --base <rev> --head <rev> [--no-approvals]', summary: 'run the promotion gate locally', load: () => import('../commands/check.js') },
  gc: { usage: 'gc [--dry-run] [--older-than <duration>] [--unreferenced]', summary: 'remove what failed uploads left in the store', load: () => import('../commands/gc.js') },
  sync: { usage: 'sync [--check] [--push] [--dry-run]', summary: 'write the deploy pins for every environment', load: () => import('../commands/sync.js') },
};

const GLOBAL_HELP = `modelgate — a model registry that lives in Git

usage: modelgate <command> [flags]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

global flags:
  --registry <dir>  registry folder (default: nearest folder upward holding modelgate.yaml)
  --json            machine output on stdout
  --quiet           no human output
  --debug           stack traces on errors
  -h, --help        help for modelgate or a command

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
    else if (a === '--registry' || a.startsWith('--registry=')) {
      const value = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i];
      if (!value) return usage(io, 'modelgate: --registry needs a folder');
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
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) return usage(io, `modelgate: unknown command ${JSON.stringify(name)}; run modelgate --help`);
  if (help) {
    io.stdout(`usage: modelgate ${entry.usage}\n\n${entry.summary}\n`);
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
