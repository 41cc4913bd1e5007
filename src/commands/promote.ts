import { parseCommand, type Command } from '../cli/context.js';
import { usageError } from '../errors.js';
import { parseStage } from '../registry/layout.js';
import { runChange } from '../promote/command.js';
import { planStageChange } from '../promote/plan.js';
import { versionNumber, versionPositionals } from '../cli/version-arg.js';

/** `modelgate promote`: change one version's stage; to Production archives the previous one. */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse, usage } = parseCommand('promote', ctx.argv);
  const ref = versionPositionals('promote', positionals, usage);
  const model = ref.model;
  if (!values.to) throw misuse('promote needs --to <Stage>');
  const to = parseStage(values.to);
  if (!to) throw usageError(`--to ${values.to}: expected None, Staging, Production or Archived`);
  return runChange(ctx, values, async (snap) => planStageChange(snap, model, await versionNumber(snap, ref), to));
};
