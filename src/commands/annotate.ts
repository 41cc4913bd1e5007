import { parseCommand, type Command } from '../cli/context.js';
import { parseModelRef } from '../registry/layout.js';
import { runChange } from '../promote/command.js';
import { planAnnotate } from '../promote/plan.js';

/** `modelgate annotate`: set annotations in place; the policy says whose approval they need. */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('annotate', ctx.argv);
  if (positionals.length < 2) throw misuse('annotate needs a reference and key=value pairs');
  const ref = parseModelRef(positionals[0]!);
  return runChange(ctx, values, async (snap) => {
    // An unknown model, version or stage is E_NOT_FOUND from resolveRef; other failures keep their own code.
    const v = await snap.resolveRef(ref);
    return planAnnotate(snap, v.model, v.version, positionals.slice(1));
  });
};
