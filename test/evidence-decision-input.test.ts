import { describe, expect, it } from 'vitest';
import { evaluateGate } from '../src/gate/evaluate.js';
import { buildDecisionStatement } from '../src/evidence/decision.js';
import { decisionInput, type DecisionContext } from '../src/evidence/decision-input.js';
import { approve, gateInput, hex, HEAD_SHA, OLD_SHA, promote3 } from './gate-fixtures.js';

const reviews = [
  { ...approve('gina', OLD_SHA), id: 10 }, // on an older commit: not the review that counted
  { ...approve('Gina'), id: 11 },
  { ...approve('carol'), id: 12 },
];
const ctx: DecisionContext = {
  repository: 'acme/model-registry',
  pullRequest: 7,
  baseSha: OLD_SHA,
  headSha: HEAD_SHA,
  baseTreeId: 'c'.repeat(40),
  mergedTreeId: 'd'.repeat(40),
  policyBlobId: 'e'.repeat(40),
  reviews,
  time: '2026-12-02T10:00:00.000Z',
};

describe('decisionInput: what a passing gate decision records', () => {
  it('subjects are the versions whose stage changes; approvers carry the review, rule, group and team', async () => {
    const d = await evaluateGate(gateInput(promote3(), { reviews }));
    expect(d.decision).toBe('pass');
    const input = decisionInput(d, ctx);
    expect(input.subjects).toEqual([
      { model: 'fraud-detector', version: 2, sha256: hex('2'), from: 'Production', to: 'Archived' },
      { model: 'fraud-detector', version: 3, sha256: hex('3'), from: 'Staging', to: 'Production' },
    ]);
    expect(input.approvers).toEqual([
      { login: 'Gina', reviewId: 11, rule: 'to-production', group: 0, team: 'ml-governance' },
      { login: 'carol', reviewId: 12, rule: 'to-production', group: 1 },
    ]);
    expect(input.rules.map((r) => [r.name, r.passed])).toEqual([
      ['to-production', true],
      ['models.fraud-detector: Production', true],
    ]);
    expect(input.checks.map((c) => c.kind)).toEqual(
      expect.arrayContaining(['artifact (full)', 'metric auc ≥ 0.95', 'champion auc (max regression 0.02)', 'coverage', 'one Production version']),
    );
    expect(input.checks.some((c) => c.kind.startsWith('approvals'))).toBe(false);
    const st = buildDecisionStatement(input);
    expect(st.subject.map((s) => s.name)).toEqual(['fraud-detector@2', 'fraud-detector@3']);
    expect(st.predicate).toMatchObject({
      baseTreeId: 'c'.repeat(40),
      mergedTreeId: 'd'.repeat(40),
      policyBlobId: 'e'.repeat(40),
      pullRequest: 7,
      time: ctx.time,
    });
    expect(st.predicate).not.toHaveProperty('reviews');
  });

  it('is only for a pass', async () => {
    const d = await evaluateGate(gateInput(promote3()));
    expect(d.decision).toBe('pending');
    expect(() => decisionInput(d, ctx)).toThrow(/only written for a pass/);
  });
});
