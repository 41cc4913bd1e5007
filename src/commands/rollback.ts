import { parseCommand, type Command } from '../cli/context.js';
import { assertModelName } from '../registry/layout.js';
import { runChange } from '../promote/command.js';
import { planAliasRollback, planRollback } from '../promote/plan.js';
import { parseVersionArg } from '../promote/args.js';

/**
 * `modelgate rollback`: Production back to a version that git history proves was there before;
 * with `--alias`, the alias back to a version it pointed at before (SPEC v3 §9).
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('rollback', ctx.argv);
  if (positionals.length !== 1) throw misuse('rollback needs a model');
  const model = assertModelName(positionals[0]!);
  const to = values.to === undefined ? undefined : parseVersionArg(values.to);
  const alias = values.alias;
  return runChange(ctx, values, (snap, history) =>
    alias === undefined ? planRollback(snap, history, model, to) : planAliasRollback(snap, history, model, alias, to),
  );
};
