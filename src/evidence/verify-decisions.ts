/**
 * `verify --decisions` and `history`'s approvers (SPEC v2 §8, v3 §14), over plain data: the
 * caller finds, for each version in Staging or Production, the commit that moved it there, that
 * commit's tree and its first parent's tree, and passes a loader for the records stored under a
 * merged tree (`<store>/.modelgate/decisions/<merged-tree-id>/<statement-sha256>.dsse.json`).
 * A record proves a commit only when it names exactly that move: the parent's tree as its base
 * tree, the commit's tree as its merged tree.
 */
import { statementDigest, verifyEnvelope, type DecisionApprover, type DecisionStatement } from './decision.js';

/** One commit's move: from its first parent's tree to its own. */
export interface TreeMove {
  /** Tree of the commit's first parent; undefined for a root commit (or the edge of a shallow clone). */
  baseTree?: string;
  tree: string;
}

export interface StagedVersion extends TreeMove {
  model: string;
  version: number;
  /** The stage, or `@<alias>` for an alias's target (SPEC v3 §9: the record's subject is `<model>@<alias>`). */
  stage: string;
  alias?: string;
  sha256: string;
  /** Commit that moved the version into `stage`; `tree` and `baseTree` are its move. */
  commit: string;
}

export type DecisionVerdict =
  | { model: string; version: number; stage: string; commit: string; ok: true; pullRequest: number; keyid: string }
  | { model: string; version: number; stage: string; commit: string; ok: false; reason: string };

/** What the store holds under one merged tree. */
export interface StoredRecords {
  /** Each `<merged-tree-id>/<digest>.dsse.json`: the digest its key names and its JSON (`{ invalid: true }` when it is not JSON). */
  records: Array<{ digest: string; envelope: unknown }>;
  /** A v2 record (`<merged-tree-id>.dsse.json`) is there: it names no base tree, so it proves no move. */
  legacy: boolean;
}

/** Resolves to the records stored under a merged tree id. */
export type DecisionRecordLoader = (mergedTree: string) => Promise<StoredRecords>;

/** A record that proves a move: validly signed by a trusted key, naming the move's base and merged trees. */
export interface ProvingRecord {
  statement: DecisionStatement;
  keyid: string;
}

/**
 * The records that prove exactly `move`. When none does, `reason` says why, and `kind` whether
 * there was no record at all (`none`), only records of other moves or in the old layout
 * (`unproven`: e.g. a revert pushed straight to the branch that restores an approved tree), or
 * only records that do not verify (`invalid`).
 */
export function provingRecords(
  stored: StoredRecords,
  move: TreeMove,
  trustedKeys: readonly string[],
): { proving: ProvingRecord[] } | { proving: []; kind: 'none' | 'unproven' | 'invalid'; reason: string } {
  const proving: ProvingRecord[] = [];
  const otherBases = new Set<string>();
  const invalid = new Set<string>();
  for (const r of stored.records) {
    const checked = verifyEnvelope(r.envelope, trustedKeys);
    if (!checked.ok) {
      invalid.add(checked.reason);
      continue;
    }
    if (statementDigest(r.envelope) !== r.digest) {
      invalid.add(`a record is stored under ${r.digest}, not under its own digest`);
      continue;
    }
    const p = checked.statement.predicate;
    if (p?.mergedTreeId !== move.tree) {
      invalid.add(`a record stored under tree ${move.tree} names tree ${String(p?.mergedTreeId)}`);
      continue;
    }
    if (typeof p.baseTreeId !== 'string') {
      invalid.add('a record names no base tree');
      continue;
    }
    if (p.baseTreeId !== move.baseTree) {
      otherBases.add(p.baseTreeId);
      continue;
    }
    proving.push({ statement: checked.statement, keyid: checked.keyid });
  }
  if (proving.length) return { proving };
  if (otherBases.size || stored.legacy) {
    const from = move.baseTree ? `from tree ${move.baseTree}` : 'from no parent';
    const reasons = [
      ...(otherBases.size
        ? [`the records of tree ${move.tree} prove other changes (from tree ${[...otherBases].join(', ')}), not this commit's move ${from}`]
        : []),
      ...(stored.legacy ? [`the old-layout record of tree ${move.tree} names no base tree, so it proves no change`] : []),
    ];
    return { proving: [], kind: 'unproven', reason: `${reasons.join('; ')}: reaching an approved tree again is not approved by its record` };
  }
  if (invalid.size) return { proving: [], kind: 'invalid', reason: [...invalid].join('; ') };
  return { proving: [], kind: 'none', reason: `no decision record for tree ${move.tree}: merged without the gate` };
}

/** Checks every staged version against the records of the move that put it in its stage. */
export async function verifyDecisions(
  versions: readonly StagedVersion[],
  load: DecisionRecordLoader,
  trustedKeys: readonly string[],
): Promise<DecisionVerdict[]> {
  const cache = new Map<string, Promise<StoredRecords>>();
  const out: DecisionVerdict[] = [];
  for (const v of versions) {
    const base = { model: v.model, version: v.version, stage: v.stage, commit: v.commit };
    if (!cache.has(v.tree)) cache.set(v.tree, load(v.tree));
    const found = provingRecords(await cache.get(v.tree)!, v, trustedKeys);
    if ('reason' in found) {
      out.push({ ...base, ok: false, reason: found.reason });
      continue;
    }
    const name = `${v.model}@${v.alias ?? v.version}`;
    const naming = found.proving.filter((r) => r.statement.subject?.some((s) => s.name === name));
    const proof = naming.find((r) => r.statement.subject.some((s) => s.name === name && s.digest?.sha256 === v.sha256));
    if (proof) {
      out.push({ ...base, ok: true, pullRequest: proof.statement.predicate.pullRequest, keyid: proof.keyid });
      continue;
    }
    const other = naming[0]?.statement.subject.find((s) => s.name === name);
    out.push({
      ...base,
      ok: false,
      reason: other ? `the record's digest for ${name} is ${other.digest?.sha256}, the manifest has ${v.sha256}` : `the record does not name ${name}`,
    });
  }
  return out;
}

export type RecordedApprovers =
  { record: 'valid'; approvers: DecisionApprover[]; pullRequest: number } | { record: 'none' } | { record: 'unproven' | 'invalid'; reason: string };

/**
 * The approvers of one stage change (for `history`), from the record that proves its move, or
 * why there are none to show. Of several (a check re-run on a new head), the one of the commit's
 * pull request, then the latest.
 */
export function approversFromRecords(stored: StoredRecords, move: TreeMove, pullRequest: number | null, trustedKeys: readonly string[]): RecordedApprovers {
  const found = provingRecords(stored, move, trustedKeys);
  if ('reason' in found) return found.kind === 'none' ? { record: 'none' } : { record: found.kind, reason: found.reason };
  const rank = (r: ProvingRecord) => [r.statement.predicate.pullRequest === pullRequest ? 1 : 0, Date.parse(r.statement.predicate.time) || 0];
  const best = found.proving.reduce((a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    return rb[0]! > ra[0]! || (rb[0] === ra[0] && rb[1]! > ra[1]!) ? b : a;
  });
  return { record: 'valid', approvers: best.statement.predicate.approvers ?? [], pullRequest: best.statement.predicate.pullRequest };
}

/** Exit status of `verify --decisions`: 1 when any version reached its stage without a record proving its move. */
export const decisionsExitCode = (verdicts: readonly DecisionVerdict[]): 0 | 1 => (verdicts.every((v) => v.ok) ? 0 : 1);
