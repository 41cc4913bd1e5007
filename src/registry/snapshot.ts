import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { GitRepo } from '../git/repo.js';
import { loadManifest, type DocumentKind, type KindMap } from '../manifest/load.js';
import { formatProblem } from '../manifest/problem.js';
import type { Model, ModelVersion, PromotionPolicy, Registry, Stage } from '../manifest/types.js';
import { isModelName, modelFile, MODELS_DIR, POLICY_FILE, REGISTRY_FILE, versionFile, versionsDir, type ModelRef } from './layout.js';
import { WorktreeSource, type RegistrySource } from './source.js';

/**
 * A registry as of one source (the work tree or a commit): typed, validated documents, loaded
 * lazily and once. Invalid documents throw E_INVALID_MANIFEST (exit 1) naming file, line and column.
 */
export class RegistrySnapshot {
  private readonly cache = new Map<string, Promise<unknown>>();

  constructor(readonly source: RegistrySource) {}

  private load<K extends DocumentKind>(path: string, kind: K): Promise<KindMap[K] | undefined> {
    let p = this.cache.get(path) as Promise<KindMap[K] | undefined> | undefined;
    if (!p) {
      p = this.source.readFile(path).then((text) => {
        if (text === undefined) return undefined;
        const loaded = loadManifest(text, path, kind);
        if (!loaded.value) {
          throw new ModelgateError('E_INVALID_MANIFEST', loaded.problems.map(formatProblem).join('\n'), ExitCode.content, {
            problems: loaded.problems,
          });
        }
        return loaded.value;
      });
      this.cache.set(path, p);
    }
    return p;
  }

  async config(): Promise<Registry> {
    const c = await this.load(REGISTRY_FILE, 'Registry');
    if (!c) throw new ModelgateError('E_NO_REGISTRY', `${REGISTRY_FILE} not found in ${this.source.label}`);
    return c;
  }

  /** The promotion policy; a registry without one has an empty policy, under which nothing passes. */
  async policy(): Promise<PromotionPolicy> {
    return (await this.load(POLICY_FILE, 'PromotionPolicy')) ?? { apiVersion: 'modelgate.dev/v1', kind: 'PromotionPolicy', rules: [] };
  }

  /** Model folders with a valid name, sorted. Folders with invalid names are reported by `validate`. */
  async modelNames(): Promise<string[]> {
    return (await this.source.listDir(MODELS_DIR)).filter(isModelName).sort();
  }

  model(name: string): Promise<Model | undefined> {
    return this.load(modelFile(name), 'Model');
  }

  /** Version numbers present for a model, ascending. */
  async versionNumbers(model: string): Promise<number[]> {
    const names = await this.source.listDir(versionsDir(model));
    return names
      .map((n) => /^([1-9][0-9]{0,8})\.yaml$/.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  version(model: string, version: number): Promise<ModelVersion | undefined> {
    return this.load(versionFile(model, version), 'ModelVersion');
  }

  async versions(model: string): Promise<ModelVersion[]> {
    const numbers = await this.versionNumbers(model);
    const all = await Promise.all(numbers.map((n) => this.version(model, n)));
    return all.filter((v): v is ModelVersion => v !== undefined);
  }

  /** Versions of `model` in `stage`, newest first. */
  async inStage(model: string, stage: Stage): Promise<ModelVersion[]> {
    return (await this.versions(model)).filter((v) => v.stage === stage).reverse();
  }

  /** The version a reference names: latest, a number, or the newest in a stage. Throws E_NOT_FOUND (exit 1). */
  async resolveRef(ref: ModelRef): Promise<ModelVersion> {
    const numbers = await this.versionNumbers(ref.model);
    if (numbers.length === 0) throw notFound(`model ${ref.model} has no versions (or does not exist)`);
    if (ref.selector === 'version') {
      const v = await this.version(ref.model, ref.version);
      if (!v) throw notFound(`${ref.model}@${ref.version} does not exist (versions: 1–${numbers.at(-1)})`);
      return v;
    }
    if (ref.selector === 'latest') return (await this.version(ref.model, numbers.at(-1)!))!;
    const [v] = await this.inStage(ref.model, ref.stage);
    if (!v) throw notFound(`${ref.model} has no version in ${ref.stage}`);
    return v;
  }
}

function notFound(message: string): ModelgateError {
  return new ModelgateError('E_NOT_FOUND', message, ExitCode.content);
}

/** The registry folder: `--registry`, or the nearest folder upward holding modelgate.yaml. */
export function locateRegistry(cwd: string, explicit?: string): string {
  if (explicit) {
    const dir = resolve(cwd, explicit);
    if (!existsSync(join(dir, REGISTRY_FILE))) throw usageError(`--registry ${explicit}: no ${REGISTRY_FILE} there`);
    return dir;
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, REGISTRY_FILE))) return dir;
    if (dirname(dir) === dir) throw usageError(`no ${REGISTRY_FILE} in ${cwd} or any folder above it; use --registry <dir> or modelgate init`);
  }
}

export interface OpenRegistry {
  root: string;
  repo: GitRepo;
  snapshot: RegistrySnapshot;
}

/** Opens the registry a command works on, reading the work tree. */
export function openRegistry(ctx: { cwd: string; registry?: string }): OpenRegistry {
  const root = locateRegistry(ctx.cwd, ctx.registry);
  return { root, repo: new GitRepo(root), snapshot: new RegistrySnapshot(new WorktreeSource(root)) };
}
