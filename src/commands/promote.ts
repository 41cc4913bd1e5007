import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { parseCommandArgs, type Command } from '../cli/context.js';
import { usageError } from '../errors.js';
import { assertModelName, parseStage } from '../registry/layout.js';
import { runChange } from '../promote/command.js';
import { planStageChange } from '../promote/plan.js';
import { parseVersionArg } from '../promote/args.js';

const USAGE = `modelgate ${usageOf('promote')}`;

/** `modelgate promote`: change one version's stage; to Production archives the previous one. */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.promote.flags, USAGE);
  if (positionals.length !== 2) throw usageError(`promote needs a model and a version\nusage: ${USAGE}`);
  const model = assertModelName(positionals[0]!);
  const version = parseVersionArg(positionals[1]!);
  if (!values.to) throw usageError(`promote needs --to <Stage>\nusage: ${USAGE}`);
  const to = parseStage(values.to);
  if (!to) throw usageError(`--to ${values.to}: expected None, Staging, Production or Archived`);
  return runChange(ctx, values, (snap) => planStageChange(snap, model, version, to));
};
