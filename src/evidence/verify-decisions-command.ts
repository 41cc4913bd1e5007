/** `modelgate verify --decisions` (SPEC v2 §8, v3 §14): did the gate approve the move that put every Staging/Production version in its stage? Offline: registry + store. */
import { emit, type CommandContext } from '../cli/context.js';
import { ExitCode } from '../errors.js';
import type { GitRepo } from '../git/repo.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import { openStore } from '../store/store.js';
import { readDecisionRecords, stagedVersions } from './records.js';
import { decisionsExitCode, verifyDecisions, type DecisionVerdict, type StagedVersion } from './verify-decisions.js';

export async function runVerifyDecisions(ctx: CommandContext, snapshot: RegistrySnapshot, repo: GitRepo): Promise<number> {
  const config = await snapshot.config();
  const keys = config.trust?.keys ?? [];
  const all = await stagedVersions(repo, snapshot);
  const committed = all.filter((v): v is StagedVersion => v.commit !== undefined);
  const store = await openStore(config.storage, ctx.env);
  let verdicts: DecisionVerdict[];
  try {
    await store.preflight();
    verdicts = await verifyDecisions(committed, (tree) => readDecisionRecords(store, tree), keys);
  } finally {
    store.close();
  }
  for (const v of all)
    if (v.commit === undefined)
      verdicts.push({
        model: v.model,
        version: v.version,
        stage: v.stage,
        commit: '',
        ok: false,
        reason: 'no commit moved it into its stage (uncommitted change)',
      });
  const failed = verdicts.filter((v) => !v.ok);
  emit(ctx, { checked: verdicts.length, trustedKeys: keys.length, verdicts }, () =>
    failed.length ? '' : `${verdicts.length} staged version(s) passed the gate (signed decision records of each move)`,
  );
  if (!ctx.json) for (const f of failed) if (!f.ok) ctx.stderr(`${f.model}@${f.version} (${f.stage}, ${f.commit.slice(0, 10)}): ${f.reason}\n`);
  return decisionsExitCode(verdicts) === 0 ? ExitCode.ok : ExitCode.content;
}
