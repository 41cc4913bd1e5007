import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { emit, parseCommandArgs, type Command } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import { usageError } from '../errors.js';
import * as evidence from '../evidence/records.js';
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
  const { root, repo, snapshot } = openRegistry(ctx);
  const stageChanges = await stageHistory(repo, model);
  if (stageChanges.length === 0) assertModelExists(root, model);
  // Approvers from decision records (issue 13, SPEC v2 §8): lookup in src/evidence/records.ts.
  const recorded = await evidence.approversForChanges(stageChanges, repo, snapshot, ctx.env);
  // The tree only keys the record lookup; the output keeps to SPEC's fields.
  const changes = stageChanges.map((c, i) => ({
    date: c.date,
    author: c.author,
    email: c.email,
    commit: c.commit,
    pullRequest: c.pullRequest,
    version: c.version,
    from: c.from,
    to: c.to,
    decision: recorded[i]!,
  }));
  emit(ctx, changes, () =>
    changes.length === 0
      ? `${model}: no committed stage changes`
      : formatTable(
          ['DATE', 'VERSION', 'CHANGE', 'AUTHOR', 'COMMIT', 'PR', 'APPROVERS'],
          changes.map((c) => [
            shortTime(c.date),
            c.version,
            `${c.from ?? '(new)'} → ${c.to ?? '(removed)'}`,
            c.author,
            c.commit.slice(0, 10),
            c.pullRequest === null ? '' : `#${c.pullRequest}`,
            evidence.formatApprovers(c.decision),
          ]),
        ),
  );
  return 0;
};
