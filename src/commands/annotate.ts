import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { parseCommandArgs, type Command } from '../cli/context.js';
import { usageError } from '../errors.js';
import { parseModelRef } from '../registry/layout.js';
import { runChange } from '../promote/command.js';
import { planAnnotate } from '../promote/plan.js';

const USAGE = `modelgate ${usageOf('annotate')}`;

/** `modelgate annotate`: set annotations in place; the policy says whose approval they need. */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.annotate.flags, USAGE);
  if (positionals.length < 2) throw usageError(`annotate needs a reference and key=value pairs\nusage: ${USAGE}`);
  const ref = parseModelRef(positionals[0]!);
  return runChange(ctx, values, async (snap) => {
    // An unknown model, version or stage is E_NOT_FOUND from resolveRef; other failures keep their own code.
    const v = await snap.resolveRef(ref);
    return planAnnotate(snap, v.model, v.version, positionals.slice(1));
  });
};
