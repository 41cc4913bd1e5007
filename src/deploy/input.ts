import { ExitCode, formatPosition, ModelgateError } from '../errors.js';
import type { Model, ModelVersion, Registry } from '../manifest/types.js';
import type { CatalogFacts } from '../registry/catalog.js';
import { validateRegistry } from '../manifest/validate-registry.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import type { RegistrySource } from '../registry/source.js';
import { pinInputPaths, type ModelPinSource, type PinInput } from './plan.js';
import { environmentsOf } from './render.js';
import { listedPaths } from './resources.js';

/**
 * Reads what `renderPins` needs from a registry snapshot: the config, every model with deploy
 * settings (or retired) with its newest version in each environment's stage, and the current
 * deploy files. Versions of models
 * that are not deployed are never read.
 */
export async function readPinInput(
  snapshot: RegistrySnapshot,
  options: {
    /** Where the current deploy files are read (the gate: the base commit); default the snapshot's source. */
    deployFrom?: RegistrySource;
    /** The registry config to use (the gate: the base's); default the snapshot's. */
    registry?: Registry;
    /** Only these models (the ones a change touches); default every model. */
    only?: ReadonlySet<string>;
    /** Each model's newest version in each environment's stage, when already known. */
    newest?: ReadonlyMap<string, ModelVersion[]>;
  } = {},
): Promise<PinInput> {
  const source = snapshot.source;
  const registry = options.registry ?? (await snapshot.config());
  const allNames = await snapshot.modelNames();
  const names = allNames.filter((n) => !options.only || options.only.has(n));
  await source.prefetch?.(names.map((n) => `models/${n}/model.yaml`));
  const models = (await Promise.all(names.map((n) => snapshot.model(n)))).filter(
    (m): m is Model => m !== undefined && (m.deploy !== undefined || m.retired === true),
  );
  const deployed = models.filter((m) => !m.retired);
  if (source.prefetch && !options.newest) {
    const numbers = await Promise.all(deployed.map((m) => snapshot.versionNumbers(m.name)));
    await source.prefetch(deployed.flatMap((m, i) => numbers[i]!.map((n) => `models/${m.name}/versions/${n}.yaml`)));
  }
  // A pin is the newest version in its environment's stage: only those are parsed.
  const stages = [...new Set(environmentsOf(registry).map((e) => e.stage))];
  const withVersions: ModelPinSource[] = await Promise.all(
    models.map(async (model) => ({
      model,
      versions: model.retired ? [] : (options.newest?.get(model.name) ?? (options.newest ? [] : await snapshot.newestInStages(model.name, stages))),
    })),
  );
  const deploySource = options.deployFrom ?? source;
  const paths = pinInputPaths(registry, models);
  await deploySource.prefetch?.(paths);
  const contents = await Promise.all(paths.map((p) => deploySource.readFile(p)));
  const files = new Map<string, string>();
  paths.forEach((p, i) => contents[i] !== undefined && files.set(p, contents[i]));
  // The pins of models this read leaves out cannot collide with the rendered ones by name: not read.
  const read = new Set(names);
  const otherPins = new Set(allNames.filter((n) => !read.has(n)).map((n) => `${n}.yaml`));
  await readListedResources(deploySource, registry, files, (path) => otherPins.has(path.slice(path.lastIndexOf('/') + 1)));
  return { registry, models: withVersions, files };
}

/**
 * Adds to `files` what each environment's kustomization lists besides the pins already read
 * (hand-written files, nested kustomizations such as `../base`, and theirs): the rendering
 * checks that every resource of an environment has its own kind, namespace and name.
 */
async function readListedResources(source: RegistrySource, registry: Registry, files: Map<string, string>, skip: (path: string) => boolean): Promise<void> {
  const read = async (path: string) => {
    try {
      return await source.readFile(path);
    } catch {
      return undefined; // a folder without a kustomization, say: kubectl kustomize reports it, no resource to check
    }
  };
  let folders = environmentsOf(registry).map((e) => e.path);
  const visited = new Set<string>();
  for (let depth = 0; folders.length && depth <= 8; depth++) {
    const next: string[] = [];
    for (const dir of folders) {
      if (visited.has(dir)) continue;
      visited.add(dir);
      for (const path of listedPaths(dir, files)) {
        if (files.has(path) || skip(path)) continue;
        const nested = `${path}/kustomization.yaml`;
        const kustomization = files.get(nested) ?? (await read(nested));
        if (kustomization !== undefined) {
          files.set(nested, kustomization);
          next.push(path);
          continue;
        }
        const text = await read(path);
        if (text !== undefined) files.set(path, text);
      }
    }
    folders = next;
  }
}

/**
 * `readPinInput` for a sync (every mode): the registry must validate first, as the gate made
 * sure it would; whatever reached the branch without the gate is refused, nothing written.
 */
export async function readValidPinInput(
  snapshot: RegistrySnapshot,
  options: Parameters<typeof readPinInput>[1] & {
    /**
     * What the work tree's catalog already knows (src/registry/catalog.ts: the loaded value of
     * every version file by its blob id): an unchanged registry is then validated without
     * parsing 100,000 manifests again, and the pins need no second read of them.
     */
    catalog?: (stages: ReadonlySet<string>) => Promise<CatalogFacts | undefined>;
  } = {},
): Promise<PinInput> {
  const source = snapshot.source;
  const facts = options.catalog ? await catalogFor(snapshot, options.registry, options.catalog) : undefined;
  const result = await validateRegistry(source, { known: facts?.known });
  if (!result.valid) {
    const lines = result.problems.slice(0, 10).map((p) => `${formatPosition(p)}: ${p.message}`);
    throw new ModelgateError(
      'E_INVALID_REGISTRY',
      `the registry at ${source.label} does not validate, so no pins are rendered from it (${result.problems.length} problem(s)):\n${lines.join('\n')}`,
      ExitCode.content,
      { problems: result.problems },
    );
  }
  return readPinInput(snapshot, { ...options, newest: facts?.newest });
}

/** The catalog's facts for the environments' stages; undefined (validation reads everything) when the config does not load. */
async function catalogFor(
  snapshot: RegistrySnapshot,
  given: Registry | undefined,
  catalog: (stages: ReadonlySet<string>) => Promise<CatalogFacts | undefined>,
): Promise<CatalogFacts | undefined> {
  const registry = given ?? (await snapshot.config().catch(() => undefined));
  if (!registry) return undefined;
  let stages: Set<string>;
  try {
    stages = new Set<string>(environmentsOf(registry).map((e) => e.stage));
  } catch {
    return undefined; // refused, with the reason, when the pins are read
  }
  return catalog(stages);
}
