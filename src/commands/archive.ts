import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { parseCommandArgs, type Command } from '../cli/context.js';
import { usageError } from '../errors.js';
import { assertModelName } from '../registry/layout.js';
import { runChange } from '../promote/command.js';
import { planStageChange } from '../promote/plan.js';
import { parseVersionArg } from '../promote/args.js';

const USAGE = `modelgate ${usageOf('archive')}`;

/** `modelgate archive`: stage → Archived. */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.archive.flags, USAGE);
  if (positionals.length !== 2) throw usageError(`archive needs a model and a version\nusage: ${USAGE}`);
  const model = assertModelName(positionals[0]!);
  const version = parseVersionArg(positionals[1]!);
  return runChange(ctx, values, (snap) => planStageChange(snap, model, version, 'Archived', 'archive'));
};
