import { parse } from 'yaml';
import type { Stage } from '../manifest/types.js';
import { isAliasName } from '../registry/layout.js';

/**
 * GTO's records turned into modelgate's (pure: no git, no store). GTO keeps its registry in git
 * tags (gto/constants.py `tag_re`): `<name>@v1.2.3` registers a version at the tagged commit,
 * `<name>@v1.2.3!` deregisters it, `<name>#<stage>#N` assigns the version at the tagged commit to a
 * stage, `<name>#<stage>!#N` unassigns it, `<name>@deprecated#N` deprecates the artifact; N is a
 * counter per artifact. `artifacts.yaml` at the tagged commit describes each artifact.
 */

/** One annotated tag of the GTO repository, as the reader port lists it. */
export interface GtoTagRecord {
  name: string;
  commit: string;
  tagger?: { name: string; email: string };
  date?: string;
  message: string;
}

export type GtoAction = 'register' | 'deregister' | 'assign' | 'unassign' | 'deprecate';

export interface GtoTag {
  action: GtoAction;
  /** GTO's artifact name (`dir:name` for an artifact of a monorepo folder). */
  artifact: string;
  version?: string;
  stage?: string;
  counter?: number;
}

const NAME = '[a-zA-Z0-9](?:[a-zA-Z0-9/_-]*[a-zA-Z0-9])?';
const FULLNAME_IN_TAG = `(?:[a-zA-Z0-9_./-]+=)?${NAME}`;
const IDENT = '0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*';
const SEMVER = `(?:0|[1-9][0-9]*)\\.(?:0|[1-9][0-9]*)\\.(?:0|[1-9][0-9]*)(?:-(?:${IDENT})(?:\\.(?:${IDENT}))*)?(?:\\+[0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*)?`;
// GTO's own grammar (gto 1.10 constants.py), anchored: one name, one action, an optional counter.
const TAG = new RegExp(
  `^(?<artifact>${FULLNAME_IN_TAG})(?:(?:#(?<stage>${NAME})|@(?<version>v${SEMVER}))(?<cancel>!?)|@(?<deprecated>deprecated|created))(?:#(?<counter>[0-9]+))?$`,
);

/** A tag name read as GTO reads it; undefined for a tag that is not GTO's. */
export function parseGtoTag(name: string): GtoTag | undefined {
  const m = TAG.exec(name);
  if (!m?.groups) return undefined;
  const g = m.groups;
  const artifact = g.artifact!.replace('=', ':');
  const counter = g.counter === undefined ? {} : { counter: Number(g.counter) };
  if (g.deprecated === 'deprecated') return { action: 'deprecate', artifact, ...counter };
  if (g.deprecated === 'created') return undefined;
  if (g.version) return { action: g.cancel ? 'deregister' : 'register', artifact, version: g.version, ...counter };
  return { action: g.cancel ? 'unassign' : 'assign', artifact, stage: g.stage!, ...counter };
}

/** One artifact of `artifacts.yaml`. */
export interface GtoArtifactInfo {
  type?: string;
  path?: string;
  labels?: string[];
  description?: string;
}

/** A relative path that stays inside the repository (a trailing slash allowed): no `..`, no absolute path. */
function insideRepository(path: string): boolean {
  const segments = path.replace(/(?<!\/)\/+$/, '').split('/');
  return segments.every((s) => s !== '' && s !== '.' && s !== '..');
}

/** `artifacts.yaml` as GTO writes it; entries it cannot read are left out, and so is a path that leaves the repository. */
export function parseArtifactsYaml(text: string | undefined): Record<string, GtoArtifactInfo> {
  if (text === undefined) return {};
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 0 });
  } catch {
    return {};
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return {};
  const out: Record<string, GtoArtifactInfo> = {};
  for (const [name, raw] of Object.entries(doc as Record<string, unknown>)) {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) continue;
    const r = raw as Record<string, unknown>;
    out[name] = {
      ...(typeof r.type === 'string' ? { type: r.type } : {}),
      ...(typeof r.path === 'string' && insideRepository(r.path) ? { path: r.path } : {}),
      ...(Array.isArray(r.labels) ? { labels: r.labels.filter((l): l is string => typeof l === 'string') } : {}),
      ...(typeof r.description === 'string' ? { description: r.description } : {}),
    };
  }
  return out;
}

/** Where a GTO stage goes: a modelgate stage, or an alias of the same name. */
export type StageTarget = { stage: Stage } | { alias: string };

const DEFAULT_STAGES: Record<string, Stage> = { prod: 'Production', production: 'Production', stage: 'Staging', staging: 'Staging' };
const MAPPABLE: readonly Stage[] = ['Staging', 'Production'];

/**
 * `--stages prod=Production,dev=Staging` as a mapping (default: prod/production → Production,
 * stage/staging → Staging); every other GTO stage becomes an alias of its own name. Answers a
 * message for a malformed spec.
 */
export function parseStageMap(spec: string | undefined): ((gtoStage: string) => StageTarget) | string {
  let table: Record<string, Stage> = DEFAULT_STAGES;
  if (spec !== undefined) {
    table = {};
    for (const part of spec.split(',')) {
      const eq = part.indexOf('=');
      const from = part.slice(0, eq).trim();
      const to = MAPPABLE.find(
        (s) =>
          s.toLowerCase() ===
          part
            .slice(eq + 1)
            .trim()
            .toLowerCase(),
      );
      if (eq <= 0 || !to) return `--stages ${JSON.stringify(part)}: expected <gto-stage>=Staging|Production`;
      table[from] = to;
    }
  }
  return (gtoStage) => (table[gtoStage] ? { stage: table[gtoStage] } : { alias: gtoStage });
}

/** Who and when, from the tag. */
export interface Provenance {
  tag: string;
  by: { name: string; email: string };
  at: string;
}

/** One step of the import, in GTO's order; each lands as one commit (or is skipped when done). */
export type GtoStep =
  | (Provenance & { kind: 'register'; artifact: string; version: string; commit: string; message: string })
  | (Provenance & { kind: 'stage'; artifact: string; version: string; to: Stage; from?: Stage; gtoStage?: string })
  | (Provenance & { kind: 'alias'; artifact: string; version: string; alias: string; set: boolean })
  | (Provenance & { kind: 'deprecate'; artifact: string });

/** Something GTO records that the import does not carry over, with the reason. */
export interface NotCarried {
  tag: string;
  reason: string;
}

/**
 * The import plan: GTO's events in GTO's order (by tag time, then by the artifact's counter; a
 * registration before an assignment tagged in the same second), mapped to modelgate steps. An
 * assignment of a commit that no version tag names registers the commit as a version first, as
 * GTO does (its version is the commit id).
 */
export function planGtoImport(tags: readonly GtoTagRecord[], mapStage: (gtoStage: string) => StageTarget): { steps: GtoStep[]; notCarried: NotCarried[] } {
  const notCarried: NotCarried[] = [];
  const events: Array<{ record: GtoTagRecord & { tagger: { name: string; email: string }; date: string }; tag: GtoTag; time: number }> = [];
  for (const record of tags) {
    const tag = parseGtoTag(record.name);
    if (!tag) continue;
    if (!record.tagger || !record.date) {
      notCarried.push({ tag: record.name, reason: 'a lightweight tag (GTO ignores it too)' });
      continue;
    }
    events.push({ record: { ...record, tagger: record.tagger, date: record.date }, tag, time: Date.parse(record.date) });
  }
  const rank = (t: GtoTag) => (t.action === 'register' ? 0 : 1);
  events.sort((a, b) => a.time - b.time || rank(a.tag) - rank(b.tag) || (a.tag.counter ?? 0) - (b.tag.counter ?? 0));

  const steps: GtoStep[] = [];
  // (artifact, commit) → the version registered there; GTO finds an assignment's version by commit.
  const byCommit = new Map<string, string>();
  const key = (artifact: string, commit: string) => `${artifact}\0${commit}`;
  for (const { record, tag } of events) {
    const prov: Provenance = { tag: record.name, by: record.tagger, at: utc(record.date) };
    const { artifact } = tag;
    if (tag.action === 'register') {
      byCommit.set(key(artifact, record.commit), tag.version!);
      steps.push({ ...prov, kind: 'register', artifact, version: tag.version!, commit: record.commit, message: record.message });
    } else if (tag.action === 'deregister') {
      steps.push({ ...prov, kind: 'stage', artifact, version: tag.version!, to: 'Archived' });
    } else if (tag.action === 'deprecate') {
      steps.push({ ...prov, kind: 'deprecate', artifact });
    } else {
      let version = byCommit.get(key(artifact, record.commit));
      if (version === undefined) {
        version = record.commit;
        byCommit.set(key(artifact, record.commit), version);
        steps.push({ ...prov, kind: 'register', artifact, version, commit: record.commit, message: record.message });
      }
      const target = mapStage(tag.stage!);
      if ('alias' in target) {
        if (isAliasName(target.alias)) steps.push({ ...prov, kind: 'alias', artifact, version, alias: target.alias, set: tag.action === 'assign' });
        else notCarried.push({ tag: record.name, reason: `GTO stage ${tag.stage} is no alias name modelgate accepts; map it with --stages` });
        continue;
      }
      // Unassigned, a version is still registered: in no stage, as GTO has it; deregistered, it is archived.
      if (tag.action === 'assign') steps.push({ ...prov, kind: 'stage', artifact, version, to: target.stage, gtoStage: tag.stage! });
      else steps.push({ ...prov, kind: 'stage', artifact, version, to: 'None', from: target.stage, gtoStage: tag.stage! });
    }
  }
  return { steps, notCarried };
}

/** The annotations a GTO version keeps: its semver, tag, commit and artifacts.yaml entry. */
export function gtoAnnotations(step: Extract<GtoStep, { kind: 'register' }>, info: GtoArtifactInfo | undefined): Record<string, string> {
  return {
    'gto.version': step.version,
    'gto.tag': step.tag,
    'gto.commit': step.commit,
    ...(info?.type ? { 'gto.type': info.type } : {}),
    ...(info?.path ? { 'gto.path': info.path } : {}),
    ...(info?.labels?.length ? { 'gto.labels': info.labels.join(',') } : {}),
  };
}

/** An ISO time in UTC with seconds, as manifests record it. */
function utc(date: string): string {
  return new Date(date).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
