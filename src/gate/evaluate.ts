import { ModelgateError } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import type { Problem } from '../manifest/problem.js';
import type { Model, ModelAliases, ModelVersion, PolicyRule, PromotionPolicy, Stage } from '../manifest/types.js';
import { validateRegistry } from '../manifest/validate-registry.js';
import { MODELS_DIR, parseAliasesPath, parseManifestPath, POLICY_FILE, REGISTRY_FILE } from '../registry/layout.js';
import { judgePins, type PinVerdict } from './pins.js';
import { describeGroup, effectiveApprovers, judgeGroups } from './approvals.js';
import { matchesGlob } from './glob.js';
import { judgePickleScan } from './scan-check.js';
import type { ChangedFile, CheckResult, Decision, GateDecision, GateInput, TeamResolver, Transition, UnlinkedCommit } from './types.js';

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
  /** Approvers when a rule sets excludeContributors: false (contributors other than the author count). */
  approversWithContributors?: string[];
  teams: TeamResolver;
  timeoutMs: number;
  problems: Problem[];
  champions: Map<string, Promise<ModelVersion | undefined>>;
  /** Changed deploy files whose change is exactly the pins the merged registry renders. */
  pins: PinVerdict;
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
  const known = input.pullRequest && input.reviews;
  const approvers = known ? effectiveApprovers(input.reviews!, input.pullRequest!, input.contributors) : undefined;
  const approversWithContributors = known ? effectiveApprovers(input.reviews!, input.pullRequest!) : undefined;
  const changed = dedupe(input.changedFiles);
  const ctx: Context = {
    input,
    policy,
    approvers,
    approversWithContributors,
    teams: cachedTeams(input.teams),
    timeoutMs: input.options.timeoutMs ?? 60_000,
    problems,
    champions: new Map(),
    pins: { explained: new Set(), checks: [] },
  };
  const registryChecks: CheckResult[] = [];
  await checkBaseBranch(ctx, registryChecks);
  await validateMerged(ctx, changed, registryChecks);
  ctx.pins = await judgePins(input.base, input.head, changed);
  registryChecks.push(...ctx.pins.checks);

  const transitions: Transition[] = [];
  for (const file of changed) {
    const aliasesOf = parseAliasesPath(file.path);
    if (aliasesOf !== undefined) transitions.push(...(await judgeAliases(ctx, file, aliasesOf)));
    else transitions.push(await judgeFile(ctx, file));
  }
  coverArchivedByPromotion(transitions);
  await checkOneProduction(ctx, transitions);
  if (registryChecks.length) transitions.push({ file: '(merged registry)', kind: 'registry', checks: registryChecks, rules: [] });

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

async function judgeFile(ctx: Context, file: ChangedFile): Promise<Transition> {
  const path = file.path;
  const deleted = file.status.startsWith('D');
  const manifest = parseManifestPath(path);
  if (manifest?.kind === 'ModelVersion') return judgeVersion(ctx, path, manifest.model, manifest.version, deleted);

  const t: Transition = { file: path, kind: manifest?.kind === 'Model' ? 'model' : 'file', checks: [], rules: [] };
  if (manifest?.kind === 'Model') {
    t.model = manifest.model;
    if (!deleted) await loadChecked<Model>(ctx, t, path, 'Model', (m) => checkModelName(m.name, manifest.model));
    if (deleted) t.checks.push(fail('immutability', 'a model is retired (`retired: true`), never deleted'));
  } else if (!deleted && (path === REGISTRY_FILE || path === POLICY_FILE)) {
    // Read as data to report mistakes; the base's copy is the one that judges this change.
    await loadChecked(ctx, t, path, path === REGISTRY_FILE ? 'Registry' : 'PromotionPolicy');
  }
  if (ctx.pins.explained.has(path)) {
    // Exactly the pins the merged registry renders: covered by the rules of the versions that moved them.
    t.kind = 'pin';
    t.checks.push(pass('coverage', 'deploy pins rendered from the merged registry, judged with the versions that move them'));
    return t;
  }
  // A new model's files are settings like any other: its first version does not cover them.
  const rules = pathRules(ctx, path);
  await applyRules(ctx, t, rules.map(labelled), undefined);
  t.checks.push(rules.length ? pass('coverage', `paths rule ${rules.map(ruleLabel).join(', ')}`) : fail('coverage', 'not covered by any rule'));
  return t;
}

/**
 * The `paths` rules that cover a changed file. A pattern starting with `/` is anchored at the
 * repository root (and so reaches files outside a registry kept in a subfolder); any other
 * pattern is relative to the registry folder and never matches outside it.
 */
function pathRules(ctx: Context, path: string): PolicyRule[] {
  const prefix = ctx.input.prefix ?? '';
  const outside = path.startsWith('/');
  const fromRoot = outside ? path : `/${prefix ? `${prefix}/` : ''}${path}`;
  return ctx.policy.rules.filter((r) => r.paths?.some((g) => (g.startsWith('/') ? matchesGlob(fromRoot, g) : !outside && matchesGlob(path, g))));
}

/**
 * The pull request must target the registry's branch: a success elsewhere would stand on a head
 * that main may merge. The policy comes from the base commit, so the branch it names must also be
 * the repository's default branch: another branch's modelgate.yaml (anyone with push access
 * writes it) could otherwise name itself the registry's branch and bring its own policy.
 */
async function checkBaseBranch(ctx: Context, checks: CheckResult[]): Promise<void> {
  const target = ctx.input.pullRequest?.baseRef;
  if (target === undefined) return;
  const branch = (await ctx.input.base.config()).github?.branch ?? 'main';
  const trusted = ctx.input.pullRequest?.defaultBranch;
  checks.push(
    target !== branch
      ? fail(
          'base branch',
          `the pull request targets ${JSON.stringify(target)}, but the registry's branch is ${JSON.stringify(branch)} (github.branch in modelgate.yaml); only pull requests into it are judged`,
        )
      : trusted !== undefined && trusted !== branch
        ? fail(
            'base branch',
            `the pull request targets ${JSON.stringify(target)}, which is not the repository's default branch ${JSON.stringify(trusted)}; the gate judges only pull requests into the default branch, whose policy it trusts`,
          )
        : pass('base branch', `the pull request targets ${branch}`),
  );
}

/**
 * Every rule `validate` applies, run by the same code on the merged registry: the files the
 * change touches and everything a cross-file rule reads with them (the whole registry when
 * modelgate.yaml changes, since the store and environments it sets govern every version).
 */
async function validateMerged(ctx: Context, changed: ChangedFile[], checks: CheckResult[]): Promise<void> {
  const paths = changed.map((f) => f.path).filter((p) => !p.startsWith('/'));
  if (!paths.length) return;
  const only = paths.includes(REGISTRY_FILE) ? undefined : paths;
  try {
    const result = await validateRegistry(ctx.input.head.source, { only });
    const known = new Set(ctx.problems.map(problemKey));
    for (const p of result.problems) if (!known.has(problemKey(p))) ctx.problems.push(p);
    checks.push(
      result.valid
        ? pass('validate', `the merged registry validates (${result.checked} files checked)`)
        : fail(
            'validate',
            `the merged registry does not validate: ${result.problems.length} problem(s), first ${result.problems[0]!.file}: ${result.problems[0]!.message}`,
          ),
    );
  } catch (e) {
    ctx.problems.push(...problemsOf(e, 'head'));
    checks.push(fail('validate', `the merged registry cannot be read: ${describeError(e)}`));
  }
}

const problemKey = (p: Problem) => `${p.file}\0${p.line ?? ''}\0${p.col ?? ''}\0${p.code}`;

/** Highest version number a model may get next: at most this far above its highest on the base. */
const MAX_VERSION_GAP = 100;

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
    await checkVersionNumber(ctx, t, model, version);
    // Annotations the policy governs need their rule, whether set later or at registration.
    const keys = Object.keys(after.annotations ?? {}).sort();
    const governed = keys.filter((k) => annotationRules(ctx, model, k).length);
    if (governed.length) t.annotationKeys = governed;
    for (const key of governed) for (const r of annotationRules(ctx, model, key)) if (!matches.some((m) => m.rule === r.rule)) matches.push(r);
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
      const rules = pathRules(ctx, path);
      matches.push(...rules.map(labelled));
      if (!rules.length) covered = false;
    }
  }
  if (t.to && t.from && isSkip(t.from, t.to) && !stageMatches.some((m) => m.rule.allowSkip)) {
    t.checks.push(fail('stage order', `${t.from === 'absent' ? 'a new version' : t.from} → ${t.to} skips Staging; no matching rule sets allowSkip: true`));
  }
  await applyRules(ctx, t, matches, after);
  t.checks.push(covered && matches.length ? pass('coverage', `rules ${matches.map((m) => m.label).join(', ')}`) : fail('coverage', 'not covered by any rule'));
  return t;
}

/**
 * models/<model>/aliases.yaml (SPEC v3 §9): one transition per alias set, moved or deleted, each
 * judged by the rules whose `alias` names it, against the version it points at after the merge;
 * `champion` compares that version with the one the alias points at on the base branch. A
 * deletion is judged by the rules' approvals only (no version is left to measure). An edit that
 * moves no alias (comments, order) is a file like any other, covered by a `paths` rule.
 */
async function judgeAliases(ctx: Context, file: ChangedFile, model: string): Promise<Transition[]> {
  const path = file.path;
  const deleted = file.status.startsWith('D');
  const head: Transition = { file: path, kind: 'file', model, checks: [], rules: [] };
  let before: Record<string, number> = {};
  try {
    before = await ctx.input.base.aliases(model);
  } catch (e) {
    ctx.problems.push(...problemsOf(e, 'base'));
    head.checks.push(fail('base manifest', 'the base branch copy of this aliases file cannot be read'));
    head.checks.push(fail('coverage', 'not covered by any rule'));
    return [head];
  }
  let after: Record<string, number> = {};
  if (!deleted) {
    const loaded = await loadChecked<ModelAliases>(ctx, head, path, 'ModelAliases', (a) => checkModelName(a.model, model));
    if (!loaded) {
      head.checks.push(fail('coverage', 'an invalid aliases file is covered by no rule'));
      return [head];
    }
    after = loaded.aliases;
  }
  const at = (m: Record<string, number>, a: string) => (Object.hasOwn(m, a) ? m[a] : undefined);
  const moved = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((a) => at(before, a) !== at(after, a)).sort();
  if (!moved.length) {
    const rules = pathRules(ctx, path);
    await applyRules(ctx, head, rules.map(labelled), undefined);
    head.checks.push(rules.length ? pass('coverage', `paths rule ${rules.map(ruleLabel).join(', ')}`) : fail('coverage', 'not covered by any rule'));
    return [head];
  }
  const out: Transition[] = [];
  for (const name of moved) {
    const from = at(before, name);
    const to = at(after, name);
    const t: Transition = {
      file: path,
      kind: 'alias',
      model,
      alias: { name, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) },
      checks: [],
      rules: [],
    };
    if (head.checks.length) t.checks.push(...head.checks);
    let target: ModelVersion | undefined;
    if (to !== undefined) {
      t.version = to;
      try {
        target = await ctx.input.head.version(model, to);
      } catch (e) {
        ctx.problems.push(...problemsOf(e, 'head'));
      }
      if (!target) t.checks.push(fail('alias target', `${model}@${to} cannot be read after the merge`));
      else {
        t.metrics = target.metrics ?? {};
        t.artifact = { sha256: target.artifact?.sha256, uri: target.artifact?.uri, size: target.artifact?.size };
      }
    }
    const rules = await aliasRulesFor(ctx, t, model, name, from, to);
    const baseline = {
      what: `${model}@${name} on the base branch`,
      load: async () => (from === undefined ? undefined : ctx.input.base.version(model, from)),
    };
    for (const { rule, label } of rules) {
      // A deletion leaves no version to measure: only who approves it is judged.
      const judged =
        to === undefined ? { approvals: rule.approvals, distinctApprovers: rule.distinctApprovers, excludeContributors: rule.excludeContributors } : rule;
      t.rules.push({ rule: label, results: await applyRule(ctx, t, judged, target, baseline) });
    }
    t.checks.push(rules.length ? pass('coverage', `rules ${rules.map((r) => r.label).join(', ')}`) : fail('coverage', `no rule governs the alias ${name}`));
    out.push(t);
  }
  return out;
}

/** A new version's number is unused and at most MAX_VERSION_GAP above the model's highest on the base. */
async function checkVersionNumber(ctx: Context, t: Transition, model: string, version: number): Promise<void> {
  try {
    const numbers = await ctx.input.base.versionNumbers(model);
    const highest = numbers.reduce((a, b) => Math.max(a, b), 0);
    t.checks.push(
      version <= highest + MAX_VERSION_GAP
        ? pass('version number', `${version} is new (highest on the base: ${highest || 'none'})`)
        : fail(
            'version number',
            `version ${version} is more than ${MAX_VERSION_GAP} above ${model}'s highest on the base (${highest || 'none'}); register numbers the next version itself`,
          ),
    );
  } catch (e) {
    ctx.problems.push(...problemsOf(e, 'base'));
    t.checks.push(fail('version number', `the base's versions of ${model} cannot be read`));
  }
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
    if (r.paths || r.annotations || r.alias !== undefined) return false;
    if (r.to === undefined && r.from === undefined) return false;
    if (r.to !== undefined && r.to !== to) return false;
    if (r.from === undefined) return true;
    return from === 'absent' ? r.from.includes('None') : r.from.includes(from);
  };
  return allRules(ctx, model).filter(({ rule }) => matches(rule));
}

/**
 * The rules that judge one alias move. A move back to a version the alias pointed at before on
 * the base branch is judged by the alias's `rollback: true` rules when it has any (as a stage
 * rollback is by its own rule); any other move by its other rules.
 */
async function aliasRulesFor(
  ctx: Context,
  t: Transition,
  model: string,
  alias: string,
  from: number | undefined,
  to: number | undefined,
): Promise<LabelledRule[]> {
  const all = aliasRules(ctx, model, alias);
  const rollbacks = all.filter((r) => r.rule.rollback === true);
  const others = all.filter((r) => r.rule.rollback !== true);
  if (!rollbacks.length || to === undefined || to === from) return others;
  let former: number[] = [];
  try {
    former = (await ctx.input.history.aliasTargets?.(model, alias)) ?? [];
  } catch (e) {
    ctx.problems.push(...problemsOf(e, 'base'));
    t.checks.push(fail('alias history', `the history of ${model}@${alias} on the base branch cannot be read`));
  }
  if (!former.includes(to)) return others;
  t.checks.push(pass('previously', `${model}@${alias} pointed at version ${to} before on the base branch: a rollback`));
  return rollbacks;
}

/** Rules whose `alias` names `alias` (or is `*`), global ones first, then the model's own additions. */
function aliasRules(ctx: Context, model: string, alias: string): LabelledRule[] {
  return allRules(ctx, model).filter(({ rule }) => {
    if (rule.alias === undefined) return false;
    const names = Array.isArray(rule.alias) ? rule.alias : [rule.alias];
    return names.some((n) => n === '*' || n === alias);
  });
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
  const own = Object.hasOwn(ctx.policy.models ?? {}, model) ? (ctx.policy.models![model]!.rules ?? []) : [];
  return [...ctx.policy.rules.map(labelled), ...own.map((rule) => ({ rule, label: `models.${model}: ${ruleLabel(rule)}` }))];
}

function ruleLabel(r: PolicyRule): string {
  if (r.name) return r.name;
  if (r.paths) return `paths ${r.paths.join(', ')}`;
  if (r.annotations) return `annotations ${r.annotations.join(', ')}`;
  if (r.alias !== undefined) return `alias ${[r.alias].flat().join(', ')}`;
  return `${r.from ? `${r.from.join('|')} → ` : ''}${r.to ?? 'any'}`;
}

async function applyRules(ctx: Context, t: Transition, rules: LabelledRule[], v: ModelVersion | undefined) {
  for (const { rule, label } of rules) t.rules.push({ rule: label, results: await applyRule(ctx, t, rule, v) });
}

/** What `champion` compares with: the Production version on the base branch, or (an alias change) the alias's base target. */
interface Baseline {
  what: string;
  load: () => Promise<ModelVersion | undefined>;
}

async function applyRule(ctx: Context, t: Transition, rule: PolicyRule, v: ModelVersion | undefined, baseline?: Baseline): Promise<CheckResult[]> {
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
      const what = baseline?.what ?? 'the Production version on the base branch';
      try {
        champion = baseline ? await baseline.load() : await championOf(ctx, v.model);
      } catch (e) {
        unreadable = true;
        out.push(fail('champion', `${what} cannot be read: ${describeError(e)}`));
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
          out.push(pass(check, `no other version ${baseline ? `at ${baseline.what}` : 'in Production on the base branch'}; ${name} = ${value}`));
          continue;
        }
        const best = champion.metrics?.[name];
        if (typeof best !== 'number') out.push(pass(check, `champion ${v.model}@${champion.version} has no ${name}; ${name} = ${value}`));
        else if (!(value >= best - maxRegression)) {
          out.push(
            fail(
              check,
              `${name} = ${value} regresses by ${round(best - value)} from champion ${v.model}@${champion.version} (${best}); at most ${maxRegression} allowed`,
            ),
          );
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
    else
      out.push(
        await guarded(ctx, check, async () => {
          const r = await ctx.input.artifacts.verify(v.artifact, rule.artifact!);
          return r.ok ? pass(check, r.detail) : fail(check, r.detail);
        }),
      );
  }
  if (rule.scan) out.push(...(await scanChecks(ctx, rule, v)));
  if (rule.approvals?.length) {
    const groups = rule.approvals;
    if (rule.excludeContributors !== false && rule.unlinkedCommits !== 'allow') out.push(...unlinkedChecks(ctx.input.unlinkedCommits ?? []));
    const required = ctx.input.options.approvals === 'require';
    const distinct = rule.distinctApprovers !== false;
    let results: CheckResult[];
    try {
      results = await withDeadline(
        ctx,
        judgeGroups(groups, rule.excludeContributors === false ? ctx.approversWithContributors : ctx.approvers, ctx.teams, required, distinct),
      );
    } catch (e) {
      results = groups.map((g) => fail(`approvals: ${describeGroup(g)}`, `could not be checked: ${describeError(e)}`));
    }
    out.push(...results);
  }
  if (!out.length) out.push(pass('rule', 'this rule sets no conditions'));
  return out;
}

/**
 * Four eyes needs to know who wrote each commit: one whose author or committer is linked to no
 * GitHub account could be the approver's own, so it fails the rule (`unlinkedCommits: allow`
 * lets it pass). Failed, not pending: no approval fixes it, only re-authoring the commits.
 */
function unlinkedChecks(unlinked: UnlinkedCommit[]): CheckResult[] {
  const check = 'contributors';
  if (!unlinked.length) return [];
  const named = unlinked.slice(0, 5).map((u) => `commit ${u.sha.slice(0, 12)}: ${u.role} ${u.email || '(no email)'} is not a GitHub account`);
  const more = unlinked.length > named.length ? `; and ${unlinked.length - named.length} more` : '';
  return [
    fail(
      check,
      `${named.join('; ')}${more}: whoever wrote it cannot be kept from approving (excludeContributors); commit with an email linked to your account, or set unlinkedCommits: allow on the rule`,
    ),
  ];
}

/** `scan: pickle` through the scanner port, bounded by the deadline like any outside call. */
async function scanChecks(ctx: Context, rule: PolicyRule, v: ModelVersion | undefined): Promise<CheckResult[]> {
  const check = `scan (${rule.scan})`;
  if (!v) return [fail(check, 'this rule checks a model version, and this change is not one')];
  return [await guarded(ctx, check, () => judgePickleScan(ctx.input.scanner, v, ctx.policy.scan?.allowGlobals ?? [], check))];
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
            : fail(
                'one Production version',
                `after the merge ${prod.length} versions of ${model} would be in Production: ${prod.map((v) => v.version).join(', ')}; promote through modelgate promote, which archives the previous one`,
              ),
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
  kind: 'Model' | 'ModelVersion' | 'Registry' | 'PromotionPolicy' | 'ModelAliases',
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
    const problems: Problem[] = loaded.problems.length ? loaded.problems : [{ file: path, code: 'E_INVALID', message: 'invalid document' }];
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

/** An outside call bounded by the gate's deadline: E_TIMEOUT when it takes longer. */
async function withDeadline<T>(ctx: Context, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ModelgateError('E_TIMEOUT', `timed out after ${ctx.timeoutMs / 1000} s`)), ctx.timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs an outside call with a deadline; any throw or timeout is a failed check with its reason. */
async function guarded(ctx: Context, check: string, fn: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return await withDeadline(ctx, fn());
  } catch (e) {
    return fail(check, `could not be checked: ${describeError(e)}`);
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
