import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { parseCommandArgs, type Command } from '../cli/context.js';
import { usageError } from '../errors.js';
import { assertModelName } from '../registry/layout.js';
import { runChange } from '../promote/command.js';
import { planAliasRollback, planRollback } from '../promote/plan.js';
import { parseVersionArg } from '../promote/args.js';

const USAGE = `modelgate ${usageOf('rollback')}`;

/**
 * `modelgate rollback`: Production back to a version that git history proves was there before;
 * with `--alias`, the alias back to a version it pointed at before (SPEC v3 §9).
 */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.rollback.flags, USAGE);
  if (positionals.length !== 1) throw usageError(`rollback needs a model\nusage: ${USAGE}`);
  const model = assertModelName(positionals[0]!);
  const to = values.to === undefined ? undefined : parseVersionArg(values.to);
  const alias = values.alias;
  return runChange(ctx, values, (snap, history) =>
    alias === undefined ? planRollback(snap, history, model, to) : planAliasRollback(snap, history, model, alias, to),
  );
};
