import { pinInputPaths, renderPins, type ModelPinSource, type PinInput, type SyncPlan } from '../deploy/plan.js';
import { withAliasTargets } from '../deploy/input.js';
import { environmentAliases, environmentStages, environmentsOf } from '../deploy/render.js';
import type { Model } from '../manifest/types.js';
import { MergedSource } from '../gate/merged-source.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import type { RegistrySource } from '../registry/source.js';
import { touchedModels, withPins, type Change, type ManifestChange } from './change.js';

/**
 * What `renderPins` needs for the models a change touches, and nothing else: O(what changed).
 * Only the touched models are read; of their versions only the newest in each environment's
 * stage is parsed (`RegistrySnapshot.newestInStages`: newest first, stopping once every stage
 * has its version, files the catalog knows not read at all). Pins of other models are not moved by
 * the change, so leaving them out renders exactly the files the change must carry.
 */
async function readPinInputFor(snapshot: RegistrySnapshot, modelNames: readonly string[]): Promise<PinInput> {
  const registry = await snapshot.config();
  const environments = environmentsOf(registry);
  const stages = environmentStages(environments);
  const followed = environmentAliases(environments);
  const loaded = await Promise.all(modelNames.map((n) => snapshot.model(n).catch(() => undefined)));
  const models = loaded.filter((m): m is Model => m !== undefined && (m.deploy !== undefined || m.retired === true));
  const withVersions: ModelPinSource[] = [];
  for (const model of models) {
    withVersions.push(await withAliasTargets(snapshot, { model, versions: model.retired ? [] : await snapshot.newestInStages(model.name, stages) }, followed));
  }
  const paths = pinInputPaths(registry, models);
  const source = snapshot.source;
  const contents = source.readFiles ? await source.readFiles(paths) : await Promise.all(paths.map((p) => source.readFile(p)));
  const files = new Map<string, string>();
  paths.forEach((p, i) => contents[i] !== undefined && files.set(p, contents[i]));
  return { registry, models: withVersions, files };
}

/** The pins a change to `modelNames` moves, rendered from the registry as the change leaves it. */
async function renderPinsFor(snapshot: RegistrySnapshot, modelNames: readonly string[]): Promise<SyncPlan> {
  return renderPins(await readPinInputFor(snapshot, modelNames));
}

/**
 * The registry as the planned change would leave it: edited files from the plan, the rest from
 * `base`. Directory listings include the files the plan adds (a new version, a new model).
 */
export function plannedSource(base: RegistrySource, edits: ReadonlyArray<{ path: string; after: string | null }>): RegistrySource {
  const edited = new Map(edits.map((e) => [e.path, e.after ?? undefined]));
  const added = new Map<string, Set<string>>();
  for (const e of edits) {
    if (e.after === null) continue;
    const parts = e.path.split('/');
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!added.has(dir)) added.set(dir, new Set());
      added.get(dir)!.add(parts[i]!);
    }
  }
  const overlay: RegistrySource = {
    label: 'planned change',
    readFile: async (p) => edited.get(p),
    listDir: async (p) => {
      const dir = p.replace(/\/$/, '');
      return [...new Set([...(await base.listDir(dir)), ...(added.get(dir) ?? [])])];
    },
  };
  return new MergedSource(base, overlay, edited.keys());
}

/**
 * A manifest change completed with the pins it moves: the touched models are rendered from
 * the registry as the change leaves it (`base` overlaid with the edits), against `base`'s
 * deploy files. This is the renderer the gate's "deploy changes equal the rendering" uses.
 */
export async function completeChange(base: RegistrySource, manifest: ManifestChange): Promise<Change> {
  const after = new RegistrySnapshot(plannedSource(base, manifest.edits));
  const pins = await renderPinsFor(after, touchedModels(manifest.edits.map((e) => e.path)));
  return withPins(manifest, pins);
}
