import { ModelgateError } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import type { Problem } from '../manifest/problem.js';
import type { Model, ModelVersion, PolicyRule, PromotionPolicy, Stage } from '../manifest/types.js';
import { MODELS_DIR, parseManifestPath, POLICY_FILE, REGISTRY_FILE } from '../registry/layout.js';
import { describeGroup, effectiveApprovers, judgeGroup } from './approvals.js';
import { matchesGlob } from './glob.js';
import type {
  ChangedFile,
  CheckResult,
  Decision,
  GateDecision,
  GateInput,
  TeamResolver,
  Transition,
} from './types.js';

const STAGE_ORDER: Record<Stage, number> = { None: 0, Staging: 1, Production: 2, Archived: 3 };

/**
 * A stage skip: reaching Production without having been staged (from None, or registered
 * straight into Production). Archiving is never a skip: retiring a version needs no stop on the way.
 */
function isSkip(from: Stage | 'absent', to: Stage): boolean {
  const f = from === 'absent' ? 'None' : from;
  return to === 'Production' && STAGE_ORDER[f] < STAGE_ORDER.Staging;
}

interface Context {
  input: GateInput;
  policy: PromotionPolicy;
  approvers?: string[];
  teams: TeamResolver;
  timeoutMs: number;
  problems: Problem[];
  champions: Map<string, Promise<ModelVersion | undefined>>;
}

/**
 * The gate. Reads the policy from the trusted `base`, judges every changed file of `head`
 * against it, and returns a result for every rule that applies. Never throws for content or
 * outside-service trouble: each becomes a failed check, so nothing unexpected can pass.
 */
export async function evaluateGate(input: GateInput): Promise<Decision> {
  const problems: Problem[] = [];
  let policy: PromotionPolicy;
  try {
    // The base's configuration must be readable too: a broken one fails the gate, whatever changed.
    await input.base.config();
    policy = await input.base.policy();
  } catch (e) {
    problems.push(...problemsOf(e, 'base'));
    return finish([], problems, []);
  }
  const approvers = input.pullRequest && input.reviews ? effectiveApprovers(input.reviews, input.pullRequest) : undefined;
  const ctx: Context = {
    input,
    policy,
    approvers,
    teams: cachedTeams(input.teams),
    timeoutMs: input.options.timeoutMs ?? 60_000,
    problems,
    champions: new Map(),
  };

  const changed = dedupe(input.changedFiles);
  const transitions: Transition[] = [];
  for (const file of changed) transitions.push(await judgeFile(ctx, file, changed));
  coverArchivedByPromotion(transitions);
  await checkOneProduction(ctx, transitions);

  const uncovered: string[] = [];
  for (const t of transitions) {
    const coverage = t.checks.find((c) => c.check === 'coverage');
    if (coverage && !coverage.ok) uncovered.push(t.file);
  }
  return finish(transitions, problems, uncovered);
}

function finish(transitions: Transition[], problems: Problem[], uncovered: string[]): Decision {
  const all = transitions.flatMap((t) => [...t.checks, ...t.rules.flatMap((r) => r.results)]);
  const failed = all.filter((c) => c.status === 'fail');
  const pending = all.filter((c) => c.status === 'pending');
  const decision: GateDecision = failed.length || problems.length || uncovered.length ? 'fail' : pending.length ? 'pending' : 'pass';
  // An uncovered file is also a failed `coverage` check: counting both would count it twice.
  const faults = [...problems.map((p) => p.message), ...failed.map((c) => `${c.check}: ${c.detail}`)];
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const summary =
    decision === 'pass'
      ? `all ${all.length} checks passed for ${plural(transitions.length, 'change')}`
      : decision === 'pending'
        ? `waiting for approvals: ${pending.map((c) => c.missing ?? c.detail).join('; ')}`
        : `${plural(faults.length, 'problem')}: ${faults.slice(0, 3).join('; ')}`;
  return { decision, transitions, problems, uncovered, summary };
}

/**
 * One entry per path, in path order. A path listed twice with different statuses (renames split
 * into D + A can delete and re-add the same path) is judged as modified: its head content
 * against the base, which fails if the head no longer has it.
 */
function dedupe(files: ChangedFile[]): ChangedFile[] {
  const byPath = new Map<string, ChangedFile>();
  for (const f of files) {
    const prev = byPath.get(f.path);
    byPath.set(f.path, prev && prev.status !== f.status ? { path: f.path, status: 'M' } : f);
  }
  return [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path));
}

const pass = (check: string, detail: string): CheckResult => ({ check, ok: true, status: 'pass', detail });
const fail = (check: string, detail: string): CheckResult => ({ check, ok: false, status: 'fail', detail });

async function judgeFile(ctx: Context, file: ChangedFile, all: ChangedFile[]): Promise<Transition> {
  const path = file.path;
  const deleted = file.status.startsWith('D');
  const manifest = parseManifestPath(path);
  if (manifest?.kind === 'ModelVersion') return judgeVersion(ctx, path, manifest.model, manifest.version, deleted);

  const t: Transition = { file: path, kind: manifest?.kind === 'Model' ? 'model' : 'file', checks: [], rules: [] };
  if (manifest?.kind === 'Model') {
    t.model = manifest.model;
    if (!deleted) await loadChecked<Model>(ctx, t, path, 'Model', (m) => checkModelName(m.name, manifest.model));
    if (deleted) t.checks.push(fail('immutability', 'a model is retired (`retired: true`), never deleted'));
    const registering =
      file.status.startsWith('A') &&
      all.some((f) => f.status.startsWith('A') && parseManifestPath(f.path)?.kind === 'ModelVersion' && parseManifestPath(f.path)?.model === manifest.model);
    if (registering) {
      t.checks.push(pass('coverage', `new model, registered with its first version in this change`));
      return t;
    }
  } else if (path.startsWith(`${MODELS_DIR}/`)) {
    t.checks.push(fail('layout', `${MODELS_DIR}/ holds only ${MODELS_DIR}/<model>/model.yaml and ${MODELS_DIR}/<model>/versions/<N>.yaml (model names: lowercase letters, digits, dashes)`));
  } else if (!deleted && (path === REGISTRY_FILE || path === POLICY_FILE)) {
    // Read as data to report mistakes; the base's copy is the one that judges this change.
    await loadChecked(ctx, t, path, path === REGISTRY_FILE ? 'Registry' : 'PromotionPolicy');
  }
  const rules = ctx.policy.rules.filter((r) => r.paths?.some((g) => matchesGlob(path, g)));
  await applyRules(ctx, t, rules.map(labelled), undefined);
  t.checks.push(rules.length ? pass('coverage', `paths rule ${rules.map(ruleLabel).join(', ')}`) : fail('coverage', 'not covered by any rule'));
  return t;
}

async function judgeVersion(ctx: Context, path: string, model: string, version: number, deleted: boolean): Promise<Transition> {
  const t: Transition = { file: path, kind: 'version-edit', model, version, checks: [], rules: [] };
  let before: ModelVersion | undefined;
  try {
    before = await ctx.input.base.version(model, version);
  } catch (e) {
    ctx.problems.push(...problemsOf(e, 'base'));
    t.checks.push(fail('base manifest', 'the base branch copy of this manifest cannot be read'));
  }
  if (deleted) {
    t.checks.push(fail('immutability', 'a version is archived, never deleted'));
    t.checks.push(fail('coverage', 'not covered by any rule'));
    return t;
  }
  const after = await loadChecked<ModelVersion>(ctx, t, path, 'ModelVersion', (v) => {
    if (v.model !== model || v.version !== version) {
      return `the manifest names ${JSON.stringify(v.model)} version ${JSON.stringify(v.version)} but lives at ${path}`;
    }
    return undefined;
  });
  if (!after) {
    t.checks.push(fail('coverage', 'an invalid manifest is covered by no rule'));
    return t;
  }
  t.metrics = after.metrics ?? {};
  t.artifact = { sha256: after.artifact?.sha256, uri: after.artifact?.uri, size: after.artifact?.size };

  const matches: LabelledRule[] = [];
  // Only a rule that covers the stage change itself may let it skip Staging: an annotation
  // rule matched by the same change must not.
  let stageMatches: LabelledRule[] = [];
  let covered = true;
  if (!before) {
    t.kind = 'new-version';
    t.from = 'absent';
    t.to = after.stage;
    stageMatches = stageRules(ctx, model, 'absent', after.stage);
    matches.push(...stageMatches);
    if (!stageMatches.length) covered = false;
  } else {
    const changedFields = immutableDiff(before, after);
    if (changedFields.length) t.checks.push(fail('immutability', `only stage and annotations change once merged; changed: ${changedFields.join(', ')}`));
    if (before.stage !== after.stage) {
      t.kind = 'stage';
      t.from = before.stage;
      t.to = after.stage;
      stageMatches = stageRules(ctx, model, before.stage, after.stage);
      matches.push(...stageMatches);
      if (!stageMatches.length) covered = false;
    }
    const keys = annotationDiff(before.annotations, after.annotations);
    if (keys.length) {
      if (t.kind === 'version-edit') t.kind = 'annotations';
      t.annotationKeys = keys;
      for (const key of keys) {
        const rules = annotationRules(ctx, model, key);
        if (!rules.length) covered = false;
        for (const r of rules) if (!matches.some((m) => m.rule === r.rule)) matches.push(r);
      }
    }
    if (t.kind === 'version-edit' && !changedFields.length) {
      const rules = ctx.policy.rules.filter((r) => r.paths?.some((g) => matchesGlob(path, g)));
      matches.push(...rules.map(labelled));
      if (!rules.length) covered = false;
    }
  }
  if (t.to && t.from && isSkip(t.from, t.to) && !stageMatches.some((m) => m.rule.allowSkip)) {
    t.checks.push(fail('stage order', `${t.from === 'absent' ? 'a new version' : t.from} → ${t.to} skips Staging; no matching rule sets allowSkip: true`));
  }
  await applyRules(ctx, t, matches, after);
  t.checks.push(
    covered && matches.length
      ? pass('coverage', `rules ${matches.map((m) => m.label).join(', ')}`)
      : fail('coverage', 'not covered by any rule'),
  );
  return t;
}

/** A policy rule with the name the report shows for it. */
interface LabelledRule {
  rule: PolicyRule;
  label: string;
}

const labelled = (rule: PolicyRule): LabelledRule => ({ rule, label: ruleLabel(rule) });

/** Stage rules whose to/from match, global ones first, then the model's own additions. */
function stageRules(ctx: Context, model: string, from: Stage | 'absent', to: Stage): LabelledRule[] {
  const matches = (r: PolicyRule) => {
    if (r.paths || r.annotations) return false;
    if (r.to === undefined && r.from === undefined) return false;
    if (r.to !== undefined && r.to !== to) return false;
    if (r.from === undefined) return true;
    return from === 'absent' ? r.from.includes('None') : r.from.includes(from);
  };
  return allRules(ctx, model).filter(({ rule }) => matches(rule));
}

function annotationRules(ctx: Context, model: string, key: string): LabelledRule[] {
  return allRules(ctx, model).filter(({ rule }) => rule.annotations?.some((pattern) => annotationKeyMatches(pattern, key)));
}

/**
 * Whether a policy's annotation pattern covers `key`: `*` any key, `prefix/*` any key under
 * `prefix/` (the Kubernetes-style namespace), anything else only that exact key.
 */
export function annotationKeyMatches(pattern: string, key: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('/*')) return key.startsWith(pattern.slice(0, -1)) && key.length > pattern.length - 1;
  return pattern === key;
}

function allRules(ctx: Context, model: string): LabelledRule[] {
  const own = Object.hasOwn(ctx.policy.models ?? {}, model) ? ctx.policy.models![model]!.rules ?? [] : [];
  return [
    ...ctx.policy.rules.map(labelled),
    ...own.map((rule) => ({ rule, label: `models.${model}: ${ruleLabel(rule)}` })),
  ];
}

function ruleLabel(r: PolicyRule): string {
  if (r.name) return r.name;
  if (r.paths) return `paths ${r.paths.join(', ')}`;
  if (r.annotations) return `annotations ${r.annotations.join(', ')}`;
  return `${r.from ? `${r.from.join('|')} → ` : ''}${r.to ?? 'any'}`;
}

async function applyRules(ctx: Context, t: Transition, rules: LabelledRule[], v: ModelVersion | undefined) {
  for (const { rule, label } of rules) t.rules.push({ rule: label, results: await applyRule(ctx, t, rule, v) });
}

async function applyRule(ctx: Context, t: Transition, rule: PolicyRule, v: ModelVersion | undefined): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const needVersion = (check: string) => {
    out.push(fail(check, 'this rule checks a model version, and this change is not one'));
  };
  if (rule.previously) {
    const check = `previously: ${rule.previously}`;
    if (!v) needVersion(check);
    else
      out.push(
        await guarded(ctx, check, async () =>
          (await ctx.input.history.wasInStage(v.model, v.version, rule.previously!))
            ? pass(check, `${v.model}@${v.version} was in ${rule.previously} on the base branch`)
            : fail(check, `${v.model}@${v.version} was never in ${rule.previously} on the base branch`),
        ),
      );
  }
  for (const [name, th] of Object.entries(rule.metrics ?? {})) {
    const check = `metric ${name}${th.min !== undefined ? ` ≥ ${th.min}` : ''}${th.max !== undefined ? ` ≤ ${th.max}` : ''}`;
    if (!v) {
      needVersion(check);
      continue;
    }
    const value = v.metrics?.[name];
    if (typeof value !== 'number' || !Number.isFinite(value)) out.push(fail(check, `metric ${name} is missing`));
    else if (th.min !== undefined && !(value >= th.min)) out.push(fail(check, `${name} = ${value} is below the minimum ${th.min}`));
    else if (th.max !== undefined && !(value <= th.max)) out.push(fail(check, `${name} = ${value} is above the maximum ${th.max}`));
    else out.push(pass(check, `${name} = ${value}`));
  }
  if (rule.champion && Object.keys(rule.champion).length) {
    if (!v) needVersion('champion');
    else {
      let champion: ModelVersion | undefined;
      let unreadable = false;
      try {
        champion = await championOf(ctx, v.model);
      } catch (e) {
        unreadable = true;
        out.push(fail('champion', `the Production version on the base branch cannot be read: ${describeError(e)}`));
      }
      if (champion && champion.version !== v.version) t.champion = { version: champion.version, metrics: champion.metrics ?? {} };
      for (const [name, { maxRegression }] of unreadable ? [] : Object.entries(rule.champion)) {
        const check = `champion ${name} (max regression ${maxRegression})`;
        const value = v.metrics?.[name];
        if (typeof value !== 'number' || !Number.isFinite(value)) {
          out.push(fail(check, `metric ${name} is missing`));
          continue;
        }
        if (!champion || champion.version === v.version) {
          out.push(pass(check, `no other version in Production on the base branch; ${name} = ${value}`));
          continue;
        }
        const best = champion.metrics?.[name];
        if (typeof best !== 'number') out.push(pass(check, `champion ${v.model}@${champion.version} has no ${name}; ${name} = ${value}`));
        else if (!(value >= best - maxRegression)) {
          out.push(fail(check, `${name} = ${value} regresses by ${round(best - value)} from champion ${v.model}@${champion.version} (${best}); at most ${maxRegression} allowed`));
        } else out.push(pass(check, `${name} = ${value} vs champion ${v.model}@${champion.version} ${best}`));
      }
    }
  }
  for (const field of rule.requiredFields ?? []) {
    const check = `required field ${field}`;
    if (!v) needVersion(check);
    else out.push(present(fieldAt(v, field)) ? pass(check, 'present') : fail(check, `${field} is missing or empty`));
  }
  if (rule.artifact) {
    const check = `artifact (${rule.artifact})`;
    if (!v) needVersion(check);
    else out.push(await guarded(ctx, check, async () => {
      const r = await ctx.input.artifacts.verify(v.artifact, rule.artifact!);
      return r.ok ? pass(check, r.detail) : fail(check, r.detail);
    }));
  }
  for (const group of rule.approvals ?? []) {
    const required = ctx.input.options.approvals === 'require';
    out.push(
      await guarded(ctx, `approvals: ${describeGroup(group)}`, () => judgeGroup(group, ctx.approvers, ctx.teams, required)),
    );
  }
  if (!out.length) out.push(pass('rule', 'this rule sets no conditions'));
  return out;
}

/** The version in Production on the base branch: the champion a candidate is compared with. */
function championOf(ctx: Context, model: string): Promise<ModelVersion | undefined> {
  let p = ctx.champions.get(model);
  if (!p) {
    p = ctx.input.base.inStage(model, 'Production').then((vs) => vs[0]);
    ctx.champions.set(model, p);
  }
  return p;
}

/** A Production → Archived change beside a promotion of the same model is part of that promotion. */
function coverArchivedByPromotion(transitions: Transition[]): void {
  for (const t of transitions) {
    if (t.kind !== 'stage' || t.from !== 'Production' || t.to !== 'Archived') continue;
    const promotion = transitions.find((o) => o !== t && o.model === t.model && o.to === 'Production' && (o.kind === 'stage' || o.kind === 'new-version'));
    if (!promotion) continue;
    const i = t.checks.findIndex((c) => c.check === 'coverage');
    const covered = pass('coverage', `archived by the promotion of ${t.model}@${promotion.version} to Production in the same change`);
    if (i >= 0 && !t.checks[i]!.ok) t.checks[i] = covered;
  }
}

/** After the change, at most one version of each model is in Production. */
async function checkOneProduction(ctx: Context, transitions: Transition[]) {
  const models = [...new Set(transitions.filter((t) => t.to === 'Production' && t.model).map((t) => t.model!))];
  for (const model of models) {
    const first = transitions.find((t) => t.model === model && t.to === 'Production')!;
    try {
      const prod = await ctx.input.head.inStage(model, 'Production');
      // None at all means the head's listing and its files disagree: fail rather than guess.
      first.checks.push(
        prod.length === 1
          ? pass('one Production version', `${model}@${prod[0]!.version} is the only version in Production after the merge`)
          : prod.length === 0
            ? fail('one Production version', `no version of ${model} is listed in Production after the merge, though this change puts one there`)
            : fail('one Production version', `after the merge ${prod.length} versions of ${model} would be in Production: ${prod.map((v) => v.version).join(', ')}; promote through modelgate promote, which archives the previous one`),
      );
    } catch (e) {
      ctx.problems.push(...problemsOf(e, 'head'));
      first.checks.push(fail('one Production version', `the versions of ${model} cannot be read after the merge`));
    }
  }
}

/**
 * Loads a document of the merged head through the safe loader; every problem is recorded with
 * its position. `mismatch` names what the valid document gets wrong about where it lives.
 */
async function loadChecked<T>(
  ctx: Context,
  t: Transition,
  path: string,
  kind: 'Model' | 'ModelVersion' | 'Registry' | 'PromotionPolicy',
  mismatch: (value: T) => string | undefined = () => undefined,
): Promise<T | undefined> {
  let text: string | undefined;
  try {
    text = await ctx.input.head.source.readFile(path);
  } catch (e) {
    t.checks.push(fail('manifest', `cannot be read: ${describeError(e)}`));
    return undefined;
  }
  if (text === undefined) {
    t.checks.push(fail('manifest', 'missing in the pull request head'));
    return undefined;
  }
  const loaded = loadManifest(text, path, kind);
  if (!loaded.value || loaded.problems.length) {
    const problems = loaded.problems.length ? loaded.problems : [{ file: path, code: 'E_INVALID', message: 'invalid document' }];
    ctx.problems.push(...problems);
    t.checks.push(fail('manifest', problems.map((p) => `${p.line ? `${p.line}:${p.col ?? 1}: ` : ''}${p.message}`).join('; ')));
    return undefined;
  }
  const value = loaded.value as T;
  const wrong = mismatch(value);
  if (wrong) {
    ctx.problems.push({ file: path, code: 'E_PATH_MISMATCH', message: wrong, line: 1, col: 1 });
    t.checks.push(fail('manifest', wrong));
    return undefined;
  }
  t.checks.push(pass('manifest', 'valid'));
  return value;
}

function checkModelName(name: unknown, expected: string): string | undefined {
  return name === expected ? undefined : `the manifest names model ${JSON.stringify(name)} but lives in ${MODELS_DIR}/${expected}/`;
}

/** Fields other than stage and annotations that differ; compared as data, not as text. */
function immutableDiff(before: ModelVersion, after: ModelVersion): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed: string[] = [];
  for (const k of [...keys].sort()) {
    if (k === 'stage' || k === 'annotations') continue;
    if (canonical((before as unknown as Record<string, unknown>)[k]) !== canonical((after as unknown as Record<string, unknown>)[k])) changed.push(k);
  }
  return changed;
}

function annotationDiff(a: Record<string, string> | undefined, b: Record<string, string> | undefined): string[] {
  const keys = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]);
  return [...keys].filter((k) => (a ?? {})[k] !== (b ?? {})[k]).sort();
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

function fieldAt(v: ModelVersion, path: string): unknown {
  let cur: unknown = v;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function present(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/** Runs an outside call with a deadline; any throw or timeout is a failed check with its reason. */
async function guarded(ctx: Context, check: string, fn: () => Promise<CheckResult>): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ModelgateError('E_TIMEOUT', `timed out after ${ctx.timeoutMs / 1000} s`)), ctx.timeoutMs);
      }),
    ]);
  } catch (e) {
    return fail(check, `could not be checked: ${describeError(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** A message safe to show: ours as written, outside errors reduced to their status or kind. */
function describeError(e: unknown): string {
  if (e instanceof ModelgateError) return e.message;
  const status = (e as { status?: unknown })?.status;
  if (typeof status === 'number') return `the service answered HTTP ${status}`;
  const name = (e as Error)?.name;
  return name && name !== 'Error' ? `${name}` : 'unexpected error';
}

function problemsOf(e: unknown, where: string): Problem[] {
  const data = e instanceof ModelgateError ? (e.data as { problems?: Problem[] }).problems : undefined;
  if (data?.length) return data;
  return [{ file: where === 'base' ? REGISTRY_FILE : '', code: e instanceof ModelgateError ? e.code : 'E_READ', message: `${where}: ${describeError(e)}` }];
}

/** Caches each (team, login) answer for one evaluation: one person is looked up once. */
function cachedTeams(teams: TeamResolver): TeamResolver {
  const cache = new Map<string, Promise<boolean>>();
  return {
    isActiveMember(team, login) {
      const key = `${team.toLowerCase()}\0${login.toLowerCase()}`;
      let p = cache.get(key);
      if (!p) cache.set(key, (p = teams.isActiveMember(team, login)));
      return p;
    },
  };
}
