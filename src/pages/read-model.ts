/**
 * The read models the registry pages render (SPEC v3 §11), built from the same reading code the
 * commands use: the snapshot (documents), the stage history (git), the decision records (store,
 * verified against `trust.keys`) and the committed deploy pins. `modelgate pages` walks them model
 * by model; `serve` answers `/` from the same functions. Nothing here renders HTML.
 */
import { parse } from 'yaml';
import { environmentsOf, pinnedVersion, type Environment } from '../deploy/render.js';
import type { DecisionApprover, DecisionStatement } from '../evidence/decision.js';
import type { StoredRecords } from '../evidence/verify-decisions.js';
import type { GitRepo } from '../git/repo.js';
import type { Model, ModelVersion, PromotionPolicy, Registry, Stage } from '../manifest/types.js';
import { aliasHistory, stageHistory, type AliasChange, type StageChange } from '../registry/history.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import type { ArtifactStore } from '../store/store.js';

/** What the pages are read from: a snapshot of the registry, its git repository (for history) and its store (for decision records). */
export interface PagesReader {
  /** The documents read (serve: the served commit's own snapshot, shared with its API requests). */
  snapshot: RegistrySnapshot;
  config: Registry;
  policy: PromotionPolicy;
  environments: Environment[];
  /** Absent: no history (a remote read of one commit); timelines are empty. */
  repo?: GitRepo;
  /** The commit the history is read back from (serve: the commit it answers from); default HEAD. */
  rev?: string;
  /** Absent: the store could not be opened; decision records show as unavailable. */
  store?: ArtifactStore;
}

/** Opens what the pages read; a store that cannot be opened leaves `store` unset instead of failing. */
export async function openPagesReader(snapshot: RegistrySnapshot, repo: GitRepo | undefined, env: NodeJS.ProcessEnv): Promise<PagesReader> {
  let store: ArtifactStore | undefined;
  try {
    const { openStore } = await import('../store/store.js');
    store = await openStore((await snapshot.config()).storage, env);
  } catch {
    store = undefined;
  }
  return pagesReaderAt(snapshot, { repo, store });
}

/** The reader of one commit whose store is already open (serve's): its history is read back from `rev`. */
export async function pagesReaderAt(snapshot: RegistrySnapshot, opts: { repo?: GitRepo; rev?: string; store?: ArtifactStore }): Promise<PagesReader> {
  const [config, policy] = await Promise.all([snapshot.config(), snapshot.policy()]);
  return { snapshot, config, policy, environments: environmentsOf(config), ...opts };
}

/** A decision record as a page shows it: verified (and what it says), or why there is none. */
export type DecisionView =
  | {
      status: 'verified';
      keyid: string;
      pullRequest: number;
      time: string;
      approvers: DecisionApprover[];
      rules: DecisionStatement['predicate']['rules'];
      checks: DecisionStatement['predicate']['checks'];
    }
  | { status: 'none' | 'unproven' | 'invalid'; reason: string }
  | { status: 'not-a-pull-request' | 'unavailable' };

/** A stage change or an alias move, as the timelines show it: with its commit, pull request and decision record. */
export type TimelineEntry = (({ kind: 'stage' } & Omit<StageChange, 'email' | 'tree'>) | ({ kind: 'alias' } & Omit<AliasChange, 'email' | 'tree'>)) & {
  decision: DecisionView;
};

type Change = ({ kind: 'stage' } & StageChange) | ({ kind: 'alias' } & AliasChange);

export interface EnvironmentServing {
  environment: string;
  /** What the environment follows: a stage, or an alias (SPEC v3 §9). */
  stage?: Stage;
  alias?: string;
  /** The version the committed pin names; undefined: no pin. */
  version?: number;
}

export interface ModelSummary {
  name: string;
  description?: string;
  owners: string[];
  retired: boolean;
  versionCount: number;
  latest?: number;
  /** Versions per stage, newest first (Staging and Production: the badges). */
  stages: Record<Stage, number[]>;
  /** Alias → version (SPEC v3 §9): badges too. */
  aliases: Record<string, number>;
  serving: EnvironmentServing[];
  lastChange?: TimelineEntry;
}

export interface MetricThreshold {
  metric: string;
  min?: number;
  max?: number;
  /** The rule that sets it: its name, or `to <Stage>`. */
  rule: string;
}

export interface ModelView {
  summary: ModelSummary;
  /** Ascending by number. */
  versions: ModelVersion[];
  thresholds: MetricThreshold[];
  /** Stage changes and alias moves, oldest first. */
  timeline: TimelineEntry[];
}

export interface VersionView {
  summary: ModelSummary;
  version: ModelVersion;
  /** Environments whose committed pin is this version. */
  servedIn: string[];
  /** The aliases pointing at this version. */
  aliases: string[];
  /** This version's stage changes and the alias moves to or from it, oldest first. */
  timeline: TimelineEntry[];
}

/** A model's page data: every version (parsed once), its history with decision records, its pins and its thresholds. */
export async function readModelView(reader: PagesReader, name: string): Promise<ModelView> {
  const { snapshot } = reader;
  const [model, versions, aliases, serving, stageChanges, aliasChanges] = await Promise.all([
    snapshot.model(name),
    snapshot.versions(name),
    snapshot.aliases(name),
    servingOf(reader, name),
    reader.repo ? stageHistory(reader.repo, name, reader.rev) : Promise.resolve([]),
    reader.repo ? aliasHistory(reader.repo, name, reader.rev) : Promise.resolve([]),
  ]);
  const timeline = await withDecisions(reader, mergeChanges(stageChanges, aliasChanges));
  return { summary: summarize(name, model, versions, aliases, serving, timeline), versions, thresholds: thresholdsFor(reader.policy, name), timeline };
}

/** Both histories in one, oldest first: by date, a commit's stage changes before its alias moves. */
function mergeChanges(stages: StageChange[], aliases: AliasChange[]): Change[] {
  const out: Change[] = [];
  let a = 0;
  for (const s of stages) {
    while (a < aliases.length && aliases[a]!.date < s.date) out.push({ kind: 'alias', ...aliases[a++]! });
    out.push({ kind: 'stage', ...s });
  }
  while (a < aliases.length) out.push({ kind: 'alias', ...aliases[a++]! });
  return out;
}

/** One version's page data, from its model's view. */
export function versionView(view: ModelView, version: ModelVersion): VersionView {
  return {
    summary: view.summary,
    version,
    servedIn: view.summary.serving.filter((s) => s.version === version.version).map((s) => s.environment),
    aliases: Object.keys(view.summary.aliases).filter((a) => view.summary.aliases[a] === version.version),
    timeline: view.timeline.filter((t) => (t.kind === 'stage' ? t.version === version.version : t.from === version.version || t.to === version.version)),
  };
}

function summarize(
  name: string,
  model: Model | undefined,
  versions: ModelVersion[],
  aliases: Record<string, number>,
  serving: EnvironmentServing[],
  timeline: TimelineEntry[],
): ModelSummary {
  const stages: Record<Stage, number[]> = { None: [], Staging: [], Production: [], Archived: [] };
  for (const v of versions) stages[v.stage].unshift(v.version);
  return {
    name,
    ...(model?.description ? { description: model.description } : {}),
    owners: model?.owners ?? [],
    retired: model?.retired === true,
    versionCount: versions.length,
    ...(versions.length ? { latest: versions.at(-1)!.version } : {}),
    stages,
    aliases,
    serving,
    ...(timeline.length ? { lastChange: timeline.at(-1)! } : {}),
  };
}

/** What each environment serves now: the version its committed pin file names (pages and serve's /api/v1). */
export async function servingOf(reader: Pick<PagesReader, 'snapshot' | 'environments'>, model: string): Promise<EnvironmentServing[]> {
  return Promise.all(
    reader.environments.map(async (env) => {
      let version: number | undefined;
      try {
        const text = await reader.snapshot.source.readFile(`${env.path}/${model}.yaml`);
        version = text === undefined ? undefined : pinnedVersion(parse(text));
      } catch {
        version = undefined; // an unreadable pin serves nothing the page can name
      }
      return {
        environment: env.name,
        ...(env.stage ? { stage: env.stage } : {}),
        ...(env.alias ? { alias: env.alias } : {}),
        ...(version !== undefined ? { version } : {}),
      };
    }),
  );
}

/** Thresholds on metrics from every rule that applies to the model (the policy's and the model's own). */
function thresholdsFor(policy: PromotionPolicy, model: string): MetricThreshold[] {
  const rules = [...policy.rules, ...(policy.models?.[model]?.rules ?? [])];
  return rules.flatMap((r) =>
    Object.entries(r.metrics ?? {}).map(([metric, t]) => ({
      metric,
      ...(t.min !== undefined ? { min: t.min } : {}),
      ...(t.max !== undefined ? { max: t.max } : {}),
      rule: r.name ?? (r.to ? `to ${r.to}` : 'rule'),
    })),
  );
}

/** Each change with the decision record that proves its move (the change's first parent's tree to its tree), verified against trust.keys. */
async function withDecisions(reader: PagesReader, changes: Change[]): Promise<TimelineEntry[]> {
  const entry = ({ email: _e, tree: _t, ...c }: Change, decision: DecisionView): TimelineEntry => ({ ...c, decision });
  const fromPullRequests = changes.filter((c) => c.pullRequest !== null);
  if (fromPullRequests.length === 0 || !reader.repo) return changes.map((c) => entry(c, { status: 'not-a-pull-request' }));
  if (!reader.store) return changes.map((c) => entry(c, { status: c.pullRequest === null ? 'not-a-pull-request' : 'unavailable' }));
  const { firstParentTrees, readDecisionRecords } = await import('../evidence/records.js');
  const { provingRecords } = await import('../evidence/verify-decisions.js');
  const keys = reader.config.trust?.keys ?? [];
  const parents = await firstParentTrees(
    reader.repo,
    fromPullRequests.map((c) => c.commit),
  );
  const byTree = new Map<string, StoredRecords | undefined>();
  const out: TimelineEntry[] = [];
  for (const c of changes) {
    if (c.pullRequest === null) {
      out.push(entry(c, { status: 'not-a-pull-request' }));
      continue;
    }
    if (!byTree.has(c.tree)) byTree.set(c.tree, await readDecisionRecords(reader.store, c.tree).catch(() => undefined));
    const stored = byTree.get(c.tree);
    if (!stored) {
      out.push(entry(c, { status: 'unavailable' }));
      continue;
    }
    const found = provingRecords(stored, { tree: c.tree, baseTree: parents.get(c.commit) }, keys);
    if ('reason' in found) {
      out.push(entry(c, { status: found.kind, reason: found.reason }));
      continue;
    }
    const best = found.proving.find((r) => r.statement.predicate.pullRequest === c.pullRequest) ?? found.proving.at(-1)!;
    const p = best.statement.predicate;
    out.push(
      entry(c, {
        status: 'verified',
        keyid: best.keyid,
        pullRequest: p.pullRequest,
        time: p.time,
        approvers: p.approvers ?? [],
        rules: p.rules ?? [],
        checks: p.checks ?? [],
      }),
    );
  }
  return out;
}
