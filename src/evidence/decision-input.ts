/**
 * From a passing gate decision to the facts its record states (SPEC v2 §8). Pure: the caller
 * brings the pull request's reviews and the git ids; nothing here reads a file or the network.
 */
import type { CheckResult, Decision, Review, Transition } from '../gate/types.js';
import type { DecisionApprover, DecisionInput } from './decision.js';

export interface DecisionContext {
  /** `owner/name`. */
  repository: string;
  pullRequest: number;
  baseSha: string;
  headSha: string;
  /** Tree of `baseSha`: the record proves the move from it to `mergedTreeId`. */
  baseTreeId: string;
  mergedTreeId: string;
  policyBlobId: string;
  reviews: readonly Review[];
  /** ISO 8601. */
  time: string;
}

const isApproval = (c: CheckResult) => c.check.startsWith('approvals: ');

/** What a transition is, in one phrase: `fraud@3 Staging → Production`, or its file. */
function changeOf(t: Transition): string {
  if (t.model && t.version !== undefined) return `${t.model}@${t.version}${t.to ? ` ${t.from ?? '?'} → ${t.to}` : ''}`;
  return t.file;
}

/**
 * The record's statement input: subjects are the versions whose stage the change sets (new
 * versions included); approvers are those the approval checks counted, with the review that
 * counted, the rule and group (index within the rule) they filled and the team that made them
 * eligible; every other check is listed with its result.
 */
export function decisionInput(decision: Decision, ctx: DecisionContext): DecisionInput {
  if (decision.decision !== 'pass') throw new Error(`a decision record is only written for a pass, not ${decision.decision}`);
  const subjects: DecisionInput['subjects'] = [];
  const rules: DecisionInput['rules'] = [];
  const checks: DecisionInput['checks'] = [];
  const approvers: DecisionApprover[] = [];
  for (const t of decision.transitions) {
    const change = changeOf(t);
    if ((t.kind === 'stage' || t.kind === 'new-version') && t.model && t.version !== undefined && t.artifact?.sha256 && t.to) {
      subjects.push({ model: t.model, version: t.version, sha256: t.artifact.sha256, from: t.from === 'absent' ? 'None' : t.from, to: t.to });
    }
    // An alias set or moved: the subject is `<model>@<alias>` with the digest it now points at (SPEC v3 §9).
    if (t.kind === 'alias' && t.model && t.alias?.to !== undefined && t.artifact?.sha256) {
      subjects.push({ model: t.model, version: t.alias.to, sha256: t.artifact.sha256, alias: t.alias.name });
    }
    for (const c of t.checks) checks.push({ kind: c.check, passed: c.ok, details: { change, detail: c.detail } });
    for (const r of t.rules) {
      rules.push({ name: r.rule, passed: r.results.every((c) => c.ok), details: { change } });
      let group = 0;
      for (const c of r.results) {
        if (!isApproval(c)) {
          checks.push({ kind: c.check, passed: c.ok, details: { change, rule: r.rule, detail: c.detail, ...(c.findings ? { findings: c.findings } : {}) } });
          continue;
        }
        for (const f of c.filledBy ?? []) {
          if (approvers.some((a) => a.login === f.login && a.rule === r.rule && a.group === group)) continue;
          const reviewId = approvingReview(ctx.reviews, f.login, ctx.headSha);
          approvers.push({ login: f.login, ...(reviewId !== undefined ? { reviewId } : {}), rule: r.rule, group, ...(f.team ? { team: f.team } : {}) });
        }
        group++;
      }
    }
  }
  const { reviews: _reviews, ...facts } = ctx;
  return { subjects, ...facts, rules, approvers, checks };
}

/** The id of `login`'s latest approval on `headSha`: the review the gate counted. */
function approvingReview(reviews: readonly Review[], login: string, headSha: string): number | undefined {
  const mine = reviews.filter(
    (r) => r.user?.login?.toLowerCase() === login.toLowerCase() && r.state === 'APPROVED' && r.commitId === headSha && typeof r.id === 'number',
  );
  return mine.at(-1)?.id;
}
