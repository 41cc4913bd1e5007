import { posix } from 'node:path';
import { structuredPatch } from 'diff';
import { parse } from 'yaml';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Model, ModelVersion, Registry } from '../manifest/types.js';
import { addResources, newKustomization, removeResource } from './kustomization.js';
import { BASE_PATH, environmentsOf, kindOf, pinnedScalars, pinnedVersion, renderResource, resourceKind, type Environment } from './render.js';
import { renderedResources, type PlacedResource } from './resources.js';
import { editError, setScalars } from './yaml-splice.js';

/** One model as `renderPins` needs it: its settings and its versions (any order). */
export interface ModelPinSource {
  model: Model;
  versions: ModelVersion[];
}

/** Everything the pins derive from, as plain data: no file system, no git. */
export interface PinInput {
  registry: Registry;
  models: ModelPinSource[];
  /** Current content of the files `pinInputPaths` names (registry-relative); absent = no such file. */
  files: ReadonlyMap<string, string>;
}

/** A file the sync writes: `after` null deletes it, `before` undefined creates it. */
export interface FileChange {
  path: string;
  before?: string;
  after: string | null;
}

/** One model's pin moving in one environment. */
export interface PinChange {
  model: string;
  environment: string;
  stage: string;
  path: string;
  /** `new`: first pin; `update`: another version; `settings`: same version, other serving settings; `retire`: pin removed. */
  action: 'new' | 'update' | 'settings' | 'retire';
  fromVersion?: number;
  toVersion?: number;
  sha256?: string;
  artifactUri?: string;
}

export interface SyncPlan {
  environments: Environment[];
  files: FileChange[];
  changes: PinChange[];
}

const BASE_KUSTOMIZATION = `${BASE_PATH}/kustomization.yaml`;

const KUSTOMIZATION_NAME = 'kustomization';
const pinFile = (env: Environment, model: string) => `${env.path}/${model}.yaml`;
const kustomizationFile = (env: Environment) => `${env.path}/kustomization.yaml`;

/** The files `renderPins` reads: each environment's kustomization and the pins of models with deploy settings. */
export function pinInputPaths(registry: Registry, models: Model[]): string[] {
  const paths = [BASE_KUSTOMIZATION];
  for (const env of environmentsOf(registry)) {
    paths.push(kustomizationFile(env));
    for (const m of models) if ((m.deploy || m.retired) && m.name !== KUSTOMIZATION_NAME) paths.push(pinFile(env, m.name));
  }
  return paths;
}

function newestIn(versions: ModelVersion[], stage: string): ModelVersion | undefined {
  let best: ModelVersion | undefined;
  for (const v of versions) if (v.stage === stage && (!best || v.version > best.version)) best = v;
  return best;
}

function parsePin(text: string, file: string): unknown {
  try {
    return parse(text, { uniqueKeys: true, maxAliasCount: 0 });
  } catch (e) {
    throw editError(file, `cannot be read: ${(e as Error).message.split('\n')[0]}`);
  }
}

const MANAGED_BY = 'app.kubernetes.io/managed-by';

/**
 * A file is a pin only if modelgate wrote it (SPEC v2 §7): it carries the managed-by label. A
 * model whose pin would take the place of any other file (a hand-written NetworkPolicy named
 * like the model, say) is refused, so a sync never overwrites what it did not write.
 */
function isManagedPin(current: unknown): boolean {
  const labels = (current as { metadata?: { labels?: Record<string, unknown> } } | null)?.metadata?.labels;
  return !!labels && typeof labels === 'object' && labels[MANAGED_BY] === 'modelgate';
}

/** The resource a pin file holds, as kustomize identifies it: read from the parsed pin. */
function pinResource(current: unknown, path: string): PlacedResource[] {
  const doc = current as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const apiVersion = str(doc?.apiVersion);
  const kind = str(doc?.kind);
  const name = str(doc?.metadata?.name);
  if (!kind || !name) return [];
  return [
    { group: apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '', kind, namespace: str(doc?.metadata?.namespace), name, file: path },
  ];
}

/** The resource a fresh rendering of `model`'s pin holds (what renderResource writes), without parsing it. */
function renderedPinResource(model: Model, env: Environment, path: string): PlacedResource[] {
  const kind = resourceKind(model.deploy!);
  return [{ group: kind === 'Deployment' ? 'apps' : 'serving.kserve.io', kind, namespace: env.namespace ?? '', name: model.name, file: path }];
}

function assertManagedPin(current: unknown, path: string, model: string): void {
  if (isManagedPin(current)) return;
  throw new ModelgateError(
    'E_PIN_COLLISION',
    `${path}: model ${model} would be pinned here, but this file was not written by modelgate (no ${MANAGED_BY}: modelgate label); rename the model or move the file`,
    ExitCode.content,
    { file: path },
  );
}

/**
 * Derives every environment's pins from the registry: for each model with deploy settings,
 * the newest version in the environment's stage is pinned in `<env>/<model>.yaml` and listed in
 * the environment's kustomization. A model with no version in the stage keeps its last pin;
 * only `retired: true` removes it. Existing files are edited in place (see yaml-splice), so a
 * second run over its own output changes nothing.
 */
export function renderPins(input: PinInput): SyncPlan {
  const environments = environmentsOf(input.registry);
  const models = [...input.models].sort((a, b) => (a.model.name < b.model.name ? -1 : a.model.name > b.model.name ? 1 : 0));
  const files: FileChange[] = [];
  const changes: PinChange[] = [];
  for (const env of environments) {
    const listed: string[] = [];
    const retired: string[] = [];
    // The resource of every pin this rendering leaves, so the environment's check parses none of them.
    const known = new Map<string, PlacedResource[]>();
    for (const { model, versions } of models) {
      // Its pin would be the environment's kustomization.yaml: never written, never deleted.
      if (model.name === KUSTOMIZATION_NAME) {
        if (model.retired || !model.deploy) continue;
        throw new ModelgateError(
          'E_DEPLOY_SETTINGS',
          `models/${model.name}/model.yaml: a model named ${KUSTOMIZATION_NAME} cannot be deployed: its pin ${pinFile(env, model.name)} is the environment's kustomization file`,
          ExitCode.content,
        );
      }
      const path = pinFile(env, model.name);
      const entry = `${model.name}.yaml`;
      const before = input.files.get(path);
      if (model.retired) {
        // A retired model removes only a pin modelgate wrote: a hand-written file of that name stays, listed as it was.
        if (before !== undefined && !isManagedPin(parsePin(before, path))) continue;
        retired.push(entry);
        if (before !== undefined) {
          files.push({ path, before, after: null });
          const from = pinnedVersion(parsePin(before, path));
          changes.push({ model: model.name, environment: env.name, stage: env.stage, path, action: 'retire', ...(from ? { fromVersion: from } : {}) });
        }
        continue;
      }
      if (!model.deploy) continue;
      const version = newestIn(versions, env.stage);
      if (!version) {
        if (before !== undefined) {
          const current = parsePin(before, path);
          assertManagedPin(current, path, model.name);
          known.set(path, pinResource(current, path));
          listed.push(entry);
        }
        continue;
      }
      listed.push(entry);
      const target = { model, deploy: model.deploy, version, environment: env, storage: input.registry.storage };
      const fresh = renderResource(target);
      known.set(path, renderedPinResource(model, env, path));
      if (before === fresh) continue;
      let after = fresh;
      let from: number | undefined;
      if (before !== undefined) {
        const current = parsePin(before, path);
        assertManagedPin(current, path, model.name);
        from = pinnedVersion(current);
        if (kindOf(current) === resourceKind(model.deploy)) {
          after = setScalars(before, pinnedScalars(target, current, path), path);
          // Only the pinned values change: kind, name and namespace stay what the file says.
          known.set(path, pinResource(current, path));
        }
        if (after === before) continue;
      }
      files.push({ path, ...(before !== undefined ? { before } : {}), after });
      changes.push({
        model: model.name,
        environment: env.name,
        stage: env.stage,
        path,
        action: before === undefined ? 'new' : from === version.version ? 'settings' : 'update',
        ...(from ? { fromVersion: from } : {}),
        toVersion: version.version,
        sha256: version.artifact.sha256,
        artifactUri: version.artifact.uri,
      });
    }
    const kpath = kustomizationFile(env);
    const kbefore = input.files.get(kpath);
    let kafter: string;
    if (kbefore === undefined) {
      if (listed.length === 0) continue;
      const base = input.files.has(BASE_KUSTOMIZATION) ? posix.relative(env.path, posix.dirname(BASE_KUSTOMIZATION)) : undefined;
      kafter = newKustomization({ ...(env.namespace ? { namespace: env.namespace } : {}), ...(base ? { base } : {}), resources: listed });
    } else {
      kafter = addResources(kbefore, listed, kpath);
      for (const r of retired) kafter = removeResource(kafter, r, kpath);
    }
    if (kafter !== kbefore) files.push({ path: kpath, ...(kbefore !== undefined ? { before: kbefore } : {}), after: kafter });
    checkEnvironment(env, input.files, files, known);
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { environments, files, changes };
}

/**
 * The environment as `kubectl kustomize` would render it after the plan: every resource (pins
 * and hand-written files) must have its own kind, namespace and name (SPEC v3 §14), or nothing
 * in the environment syncs, rollbacks included. Throws E_RESOURCE_COLLISION.
 */
function checkEnvironment(env: Environment, current: ReadonlyMap<string, string>, planned: FileChange[], known: ReadonlyMap<string, PlacedResource[]>): void {
  const kpath = kustomizationFile(env);
  const changes = planned.filter((f) => f.path.startsWith(`${env.path}/`));
  if (!changes.length && !current.has(kpath)) return;
  let files = current;
  if (changes.length) {
    const after = new Map(current);
    for (const f of changes) {
      if (f.after === null) after.delete(f.path);
      else after.set(f.path, f.after);
    }
    files = after;
  }
  renderedResources(env.path, { files, known });
}

/** A unified diff of the plan, `git diff` style, with paths relative to the registry. */
export function formatDiff(plan: Pick<SyncPlan, 'files'>): string {
  let out = '';
  for (const f of plan.files) {
    const before = f.before ?? '';
    const after = f.after ?? '';
    const patch = structuredPatch(`a/${f.path}`, `b/${f.path}`, before, after, '', '', { context: 3 });
    out += `diff --git a/${f.path} b/${f.path}\n`;
    if (f.before === undefined) out += 'new file mode 100644\n';
    if (f.after === null) out += 'deleted file mode 100644\n';
    out += `--- ${f.before === undefined ? '/dev/null' : `a/${f.path}`}\n`;
    out += `+++ ${f.after === null ? '/dev/null' : `b/${f.path}`}\n`;
    for (const h of patch.hunks) {
      const oldStart = h.oldLines === 0 ? h.oldStart - 1 : h.oldStart;
      const newStart = h.newLines === 0 ? h.newStart - 1 : h.newStart;
      out += `@@ -${oldStart},${h.oldLines} +${newStart},${h.newLines} @@\n`;
      for (const line of h.lines) out += line + '\n';
    }
  }
  return out;
}

/** One line per change, for commit messages and summaries: `fraud-detector production v1 → v2`. */
export function describeChange(c: PinChange): string {
  const where = `${c.model} ${c.environment}`;
  switch (c.action) {
    case 'new':
      return `${where} v${c.toVersion} (new pin)`;
    case 'update':
      return `${where} ${c.fromVersion ? `v${c.fromVersion}` : '?'} → v${c.toVersion}`;
    case 'settings':
      return `${where} v${c.toVersion} (serving settings)`;
    case 'retire':
      return `${where} retired${c.fromVersion ? ` (was v${c.fromVersion})` : ''}`;
  }
}

/** The sync commit's message: a subject naming the change (or the count) and one line per change. */
export function commitMessage(plan: Pick<SyncPlan, 'changes' | 'files'>): string {
  const lines = plan.changes.map(describeChange);
  const subject = lines.length === 1 ? `deploy: ${lines[0]}` : lines.length === 0 ? 'deploy: update kustomizations' : `deploy: ${lines.length} pin changes`;
  return lines.length <= 1 ? `${subject}\n` : `${subject}\n\n${lines.map((l) => `- ${l}`).join('\n')}\n`;
}

/**
 * What merging a change does to `deploy/`: the gate calls this with the registry as it would be
 * after the merge (the head's models over the base's deploy files) and shows `diff` in its summary.
 */
export function planSync(input: PinInput): SyncPlan & { diff: string } {
  const plan = renderPins(input);
  return { ...plan, diff: formatDiff(plan) };
}
