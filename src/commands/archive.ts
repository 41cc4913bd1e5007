import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { parseCommandArgs, type Command } from '../cli/context.js';
import { runChange } from '../promote/command.js';
import { planStageChange } from '../promote/plan.js';
import { versionNumber, versionPositionals } from '../cli/version-arg.js';

const USAGE = `modelgate ${usageOf('archive')}`;

/** `modelgate archive`: stage → Archived. */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.archive.flags, USAGE);
  const ref = versionPositionals('archive', positionals, USAGE);
  const model = ref.model;
  return runChange(ctx, values, async (snap) => planStageChange(snap, model, await versionNumber(snap, ref), 'Archived', 'archive'));
};
