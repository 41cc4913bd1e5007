// The gate on alias changes (SPEC v3 §9): rules with `alias:` govern setting, moving and deleting.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { evaluateGate } from '../src/gate/evaluate.js';
import type { PromotionPolicy } from '../src/manifest/types.js';
import type { CheckResult, Decision } from '../src/gate/types.js';
import { decisionInput } from '../src/evidence/decision-input.js';
import { approve, baseFiles, gateInput, history, POLICY, version, vpath } from './gate-fixtures.js';

const ALIASES = 'models/fraud-detector/aliases.yaml';
const aliases = (a: Record<string, number>) => stringify({ apiVersion: 'modelgate.dev/v1', kind: 'ModelAliases', model: 'fraud-detector', aliases: a });
const checks = (d: Decision): CheckResult[] => d.transitions.flatMap((t) => [...t.checks, ...t.rules.flatMap((r) => r.results)]);
const failedNames = (d: Decision) =>
  checks(d)
    .filter((c) => c.status === 'fail')
    .map((c) => c.check);

const ALIAS_POLICY: PromotionPolicy = {
  ...POLICY,
  rules: [
    ...POLICY.rules,
    {
      name: 'champion',
      alias: 'champion',
      approvals: [{ count: 1, teams: ['ml-governance'] }],
      metrics: { auc: { min: 0.9 } },
      champion: { auc: { maxRegression: 0.02 } },
      artifact: 'full',
    },
    { name: 'challenger', alias: ['challenger'], approvals: [{ count: 1, users: ['carol'] }] },
  ],
};

/** The fixtures' registry with the alias policy and, on the base, champion → 2. */
function base(extra: Record<string, number> = { champion: 2 }) {
  const files = baseFiles();
  files.set('policies/promotion.yaml', stringify(ALIAS_POLICY));
  files.set(vpath(4), stringify(version(4, 'None', { metrics: { auc: 0.9, recall: 0.9, latency_p95_ms: 40 } })));
  files.set(ALIASES, aliases(extra));
  return files;
}

describe('evaluateGate: alias changes', () => {
  it("sets challenger: passes with the challenger rule's approval, waits without it", async () => {
    const change = { [ALIASES]: aliases({ champion: 2, challenger: 3 }) };
    const ok = await evaluateGate(gateInput(change, { reviews: [approve('carol')] }, base()));
    expect(failedNames(ok)).toEqual([]);
    expect(ok.decision).toBe('pass');
    const t = ok.transitions.find((x) => x.kind === 'alias')!;
    expect(t).toMatchObject({ model: 'fraud-detector', version: 3, alias: { name: 'challenger', to: 3 } });
    expect(t.rules.map((r) => r.rule)).toEqual(['challenger']);
    const waiting = await evaluateGate(gateInput(change, { reviews: [approve('gina')] }, base()));
    expect(waiting.decision).toBe('pending');
    // The record names <model>@<alias> with the digest it now points at.
    const input = decisionInput(ok, { repository: 'acme/r', pullRequest: 7, baseSha: 'a'.repeat(40), headSha: 'b'.repeat(40), reviews: [] } as never);
    expect(input.subjects).toEqual([{ model: 'fraud-detector', version: 3, sha256: '3'.repeat(64), alias: 'challenger' }]);
  });

  it('moves champion: compared with the version champion points at on the base; a regression past the bound fails', async () => {
    const good = await evaluateGate(gateInput({ [ALIASES]: aliases({ champion: 3 }) }, { reviews: [approve('gina')] }, base()));
    expect(good.decision).toBe('pass');
    expect(good.transitions.find((x) => x.kind === 'alias')).toMatchObject({ alias: { name: 'champion', from: 2, to: 3 }, champion: { version: 2 } });
    // v4's auc 0.90 is 0.07 below v2's 0.97.
    const bad = await evaluateGate(gateInput({ [ALIASES]: aliases({ champion: 4 }) }, { reviews: [approve('gina')] }, base()));
    expect(bad.decision).toBe('fail');
    expect(failedNames(bad)).toEqual(['champion auc (max regression 0.02)']);
  });

  it('fails an uncovered alias, and a hand edit to an Archived version, a missing version or a reserved name, with the reason', async () => {
    const uncovered = await evaluateGate(
      gateInput({ [ALIASES]: aliases({ champion: 2, shadow: 3 }) }, { reviews: [approve('gina'), approve('carol')] }, base()),
    );
    expect(uncovered.decision).toBe('fail');
    expect(uncovered.uncovered).toEqual([ALIASES]);
    expect(failedNames(uncovered)).toEqual(['coverage']);

    const archived = await evaluateGate(gateInput({ [ALIASES]: aliases({ champion: 1 }) }, { reviews: [approve('gina')] }, base()));
    expect(archived.decision).toBe('fail');
    expect(archived.problems.map((p) => p.code)).toContain('E_ALIAS_TARGET');

    const missing = await evaluateGate(gateInput({ [ALIASES]: aliases({ champion: 9 }) }, { reviews: [approve('gina')] }, base()));
    expect(missing.decision).toBe('fail');
    expect(missing.problems.map((p) => p.code)).toContain('E_ALIAS_TARGET');

    const reserved = await evaluateGate(gateInput({ [ALIASES]: aliases({ champion: 2, production: 3 }) }, { reviews: [approve('gina')] }, base()));
    expect(reserved.decision).toBe('fail');
    expect(reserved.problems.map((p) => p.code)).toContain('E_ALIAS_NAME');
  });

  it('archiving the version an alias points at fails the gate', async () => {
    const d = await evaluateGate(gateInput({ [vpath(3)]: stringify(version(3, 'Archived')) }, {}, base({ champion: 2, challenger: 3 })));
    expect(d.decision).toBe('fail');
    expect(d.problems.map((p) => p.code)).toContain('E_ALIAS_TARGET');
  });

  it('deletes an alias with its rule’s approvals only', async () => {
    const d = await evaluateGate(gateInput({ [ALIASES]: aliases({}) }, { reviews: [approve('gina')] }, base()));
    expect(failedNames(d)).toEqual([]);
    expect(d.decision).toBe('pass');
    expect(d.transitions.find((x) => x.kind === 'alias')).toMatchObject({ alias: { name: 'champion', from: 2 } });
    expect(checks(d).map((c) => c.check)).not.toContain('artifact (full)');
  });

  it('judges a move back to a former target by the rollback rule instead of the others', async () => {
    const files = base();
    files.set(
      'policies/promotion.yaml',
      stringify({
        ...ALIAS_POLICY,
        rules: [...ALIAS_POLICY.rules, { name: 'champion-rollback', alias: 'champion', rollback: true, approvals: [{ count: 1, teams: ['oncall'] }] }],
      }),
    );
    // champion pointed at 1 (before it was archived), then 4, then 2.
    const aliasHistory = { ...history([]), aliasTargets: async () => [1, 4, 2] };
    const back = await evaluateGate(gateInput({ [ALIASES]: aliases({ champion: 4 }) }, { reviews: [approve('olga')], history: aliasHistory }, files));
    expect(failedNames(back)).toEqual([]);
    expect(back.decision).toBe('pass');
    expect(back.transitions.find((x) => x.kind === 'alias')!.rules.map((r) => r.rule)).toEqual(['champion-rollback']);
    // A new target is no rollback: the champion rule judges it, and oncall's approval is not the one it asks for.
    const forward = await evaluateGate(gateInput({ [ALIASES]: aliases({ champion: 3 }) }, { reviews: [approve('olga')], history: aliasHistory }, files));
    expect(forward.decision).toBe('pending');
    expect(forward.transitions.find((x) => x.kind === 'alias')!.rules.map((r) => r.rule)).toEqual(['champion']);
  });
});
