import { parseCommand, type Command } from '../cli/context.js';
import { runChange } from '../promote/command.js';
import { planStageChange } from '../promote/plan.js';
import { versionNumber, versionPositionals } from '../cli/version-arg.js';

/** `modelgate archive`: stage → Archived. */
export const run: Command = async (ctx) => {
  const { values, positionals, usage } = parseCommand('archive', ctx.argv);
  const ref = versionPositionals('archive', positionals, usage);
  const model = ref.model;
  return runChange(ctx, values, async (snap) => planStageChange(snap, model, await versionNumber(snap, ref), 'Archived', 'archive'));
};
