import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { emit, parseCommandArgs, type Command } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import { usageError } from '../errors.js';
import { shortTime } from '../query/present.js';
import { stageHistory } from '../registry/history.js';
import { assertModelName } from '../registry/layout.js';
import { assertModelExists, openRegistry } from '../registry/snapshot.js';

const USAGE = `modelgate ${usageOf('history')}`;

/** `modelgate history`: every stage change of a model's versions, from git history. */
export const run: Command = async (ctx) => {
  const { positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.history.flags, USAGE);
  if (positionals.length !== 1) throw usageError(`expected one model name\nusage: ${USAGE}`);
  const model = assertModelName(positionals[0]!);
  const { root, repo } = openRegistry(ctx);
  const changes = await stageHistory(repo, model);
  if (changes.length === 0) assertModelExists(root, model);
  emit(ctx, changes, () =>
    changes.length === 0
      ? `${model}: no committed stage changes`
      : formatTable(
          ['DATE', 'VERSION', 'CHANGE', 'AUTHOR', 'COMMIT', 'PR'],
          changes.map((c) => [shortTime(c.date), c.version, `${c.from ?? '(new)'} → ${c.to ?? '(removed)'}`, c.author, c.commit.slice(0, 10), c.pullRequest === null ? '' : `#${c.pullRequest}`]),
        ),
  );
  return 0;
};
