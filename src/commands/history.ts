import { emit, parseCommand, type Command } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import * as evidence from '../evidence/records.js';
import { shortTime } from '../query/present.js';
import { modelChanges } from '../registry/history.js';
import { assertModelName } from '../registry/layout.js';
import { assertModelExists, openRegistry, type RegistrySnapshot } from '../registry/snapshot.js';
import type { GitRepo } from '../git/repo.js';

/** `modelgate history`: every stage change of a model's versions and every alias move, from git history. */
export const run: Command = async (ctx) => {
  const { positionals, misuse } = parseCommand('history', ctx.argv);
  if (positionals.length !== 1) throw misuse('expected one model name');
  const model = assertModelName(positionals[0]!);
  const { root, repo, snapshot } = openRegistry(ctx);
  const all = await modelHistory(repo, snapshot, model, ctx.env);
  if (all.length === 0) assertModelExists(root, model);
  const rows = all.map((c) =>
    'alias' in c
      ? { c, version: `@${c.alias}`, change: `${c.from === null ? '(unset)' : `v${c.from}`} → ${c.to === null ? '(deleted)' : `v${c.to}`}` }
      : { c, version: String(c.version), change: `${c.from ?? '(new)'} → ${c.to ?? '(removed)'}` },
  );
  emit(ctx, all, () =>
    rows.length === 0
      ? `${model}: no committed stage changes`
      : formatTable(
          ['DATE', 'VERSION', 'CHANGE', 'AUTHOR', 'COMMIT', 'PR', 'APPROVERS'],
          rows.map(({ c, version, change }) => [
            shortTime(c.date),
            version,
            change,
            c.author,
            c.commit.slice(0, 10),
            c.pullRequest === null ? '' : `#${c.pullRequest}`,
            evidence.formatApprovers(c.decision),
          ]),
        ),
  );
  return 0;
};

/**
 * A model's history as `history --json` prints it and serve's `/api/v1` answers it: every stage
 * change of its versions and every alias move from `rev` back (default HEAD), oldest first, each
 * with the approvers of the decision record that proves it.
 */
export async function modelHistory(repo: GitRepo, snapshot: RegistrySnapshot, model: string, env: NodeJS.ProcessEnv, rev = 'HEAD') {
  const { stages: stageChanges, aliases: aliasChanges } = await modelChanges(repo, model, rev);
  // Approvers from decision records (issue 13, SPEC v2 §8): lookup in src/evidence/records.ts.
  const recorded = await evidence.approversForChanges([...stageChanges, ...aliasChanges], repo, snapshot, env);
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
  // Alias moves beside stage changes (SPEC v3 §9): `alias` set, `version` the one it now points at
  // (the one it left, for a deletion), `from`/`to` version numbers.
  const moves = aliasChanges.map((c, i) => ({
    date: c.date,
    author: c.author,
    email: c.email,
    commit: c.commit,
    pullRequest: c.pullRequest,
    alias: c.alias,
    version: (c.to ?? c.from)!,
    from: c.from,
    to: c.to,
    decision: recorded[stageChanges.length + i]!,
  }));
  // Stable: a commit's stage changes stay before its alias moves.
  return [...changes, ...moves].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
}
