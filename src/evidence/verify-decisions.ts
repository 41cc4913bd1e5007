/**
 * `verify --decisions` and `history`'s approvers (SPEC v2 §8), over plain data: the caller finds,
 * for each version in Staging or Production, the commit that moved it there and that commit's
 * tree, and passes a loader for `<store>/.modelgate/decisions/<tree>.dsse.json`.
 */
import { verifyEnvelope, type DecisionApprover, type DecisionStatement } from './decision.js';

export interface StagedVersion {
  model: string;
  version: number;
  stage: string;
  sha256: string;
  /** Commit that moved the version into `stage`, and its tree. */
  commit: string;
  tree: string;
}

export type DecisionVerdict =
  | { model: string; version: number; stage: string; commit: string; ok: true; pullRequest: number; keyid: string }
  | { model: string; version: number; stage: string; commit: string; ok: false; reason: string };

/** Loads the raw envelope JSON for a merged tree id; undefined when there is none. */
/** Resolves to the stored envelope, or undefined when there is none. */
export type DecisionRecordLoader = (tree: string) => Promise<unknown>;

/** Checks every staged version against the decision record of the tree its stage change produced. */
export async function verifyDecisions(
  versions: readonly StagedVersion[],
  load: DecisionRecordLoader,
  trustedKeys: readonly string[],
): Promise<DecisionVerdict[]> {
  const cache = new Map<string, Promise<unknown>>();
  const out: DecisionVerdict[] = [];
  for (const v of versions) {
    const base = { model: v.model, version: v.version, stage: v.stage, commit: v.commit };
    if (!cache.has(v.tree)) cache.set(v.tree, load(v.tree));
    const env = await cache.get(v.tree)!;
    if (env === undefined) {
      out.push({ ...base, ok: false, reason: `no decision record for tree ${v.tree}: merged without the gate` });
      continue;
    }
    const checked = verifyEnvelope(env, trustedKeys);
    if (!checked.ok) {
      out.push({ ...base, ok: false, reason: checked.reason });
      continue;
    }
    const st = checked.statement;
    if (st.predicate?.mergedTreeId !== v.tree) {
      out.push({ ...base, ok: false, reason: `the record names tree ${String(st.predicate?.mergedTreeId)}, the commit has ${v.tree} (stale branch?)` });
      continue;
    }
    const subject = st.subject?.find((s) => s.name === `${v.model}@${v.version}`);
    if (!subject) {
      out.push({ ...base, ok: false, reason: `the record does not name ${v.model}@${v.version}` });
      continue;
    }
    if (subject.digest?.sha256 !== v.sha256) {
      out.push({ ...base, ok: false, reason: `the record's digest for ${v.model}@${v.version} is ${subject.digest?.sha256}, the manifest has ${v.sha256}` });
      continue;
    }
    out.push({ ...base, ok: true, pullRequest: st.predicate.pullRequest, keyid: checked.keyid });
  }
  return out;
}

export type RecordedApprovers =
  { record: 'valid'; approvers: DecisionApprover[]; pullRequest: number } | { record: 'none' } | { record: 'invalid'; reason: string };

/** The approvers a stage change's record lists (for `history`), or why there are none to show. */
export function approversFromRecord(envelope: unknown, tree: string, trustedKeys: readonly string[]): RecordedApprovers {
  if (envelope === undefined) return { record: 'none' };
  const checked = verifyEnvelope(envelope, trustedKeys);
  if (!checked.ok) return { record: 'invalid', reason: checked.reason };
  const st: DecisionStatement = checked.statement;
  if (st.predicate.mergedTreeId !== tree) return { record: 'invalid', reason: 'the record names another tree' };
  return { record: 'valid', approvers: st.predicate.approvers ?? [], pullRequest: st.predicate.pullRequest };
}

/** Exit status of `verify --decisions`: 1 when any version reached its stage without a valid record. */
export const decisionsExitCode = (verdicts: readonly DecisionVerdict[]): 0 | 1 => (verdicts.every((v) => v.ok) ? 0 : 1);
