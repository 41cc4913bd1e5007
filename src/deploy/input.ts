import type { GitRepo } from '../git/repo.js';
import type { Model, Registry } from '../manifest/types.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import type { RegistrySource } from '../registry/source.js';
import { pinInputPaths, type ModelPinSource, type PinInput } from './plan.js';

/** A source that can read many files in one go (one `git cat-file --batch` instead of one process per file). */
interface Prefetching {
  prefetch(paths: string[]): Promise<void>;
}

function canPrefetch(source: RegistrySource): source is RegistrySource & Prefetching {
  return typeof (source as Partial<Prefetching>).prefetch === 'function';
}

/**
 * Reads what `renderPins` needs from a registry snapshot: the config, every model with deploy
 * settings (or retired) with its versions, and the current deploy files. Versions of models
 * that are not deployed are never read.
 */
export async function readPinInput(
  snapshot: RegistrySnapshot,
  options: {
    /** Where the current deploy files are read (the gate: the base commit); default the snapshot's source. */
    deployFrom?: RegistrySource;
    /** The registry config to use (the gate: the base's); default the snapshot's. */
    registry?: Registry;
  } = {},
): Promise<PinInput> {
  const source = snapshot.source;
  const registry = options.registry ?? (await snapshot.config());
  const names = await snapshot.modelNames();
  if (canPrefetch(source)) await source.prefetch(names.map((n) => `models/${n}/model.yaml`));
  const models = (await Promise.all(names.map((n) => snapshot.model(n)))).filter(
    (m): m is Model => m !== undefined && (m.deploy !== undefined || m.retired === true),
  );
  const deployed = models.filter((m) => !m.retired);
  if (canPrefetch(source)) {
    const numbers = await Promise.all(deployed.map((m) => snapshot.versionNumbers(m.name)));
    await source.prefetch(deployed.flatMap((m, i) => numbers[i]!.map((n) => `models/${m.name}/versions/${n}.yaml`)));
  }
  const withVersions: ModelPinSource[] = await Promise.all(
    models.map(async (model) => ({ model, versions: model.retired ? [] : await snapshot.versions(model.name) })),
  );
  const deploySource = options.deployFrom ?? source;
  const paths = pinInputPaths(registry, models);
  if (canPrefetch(deploySource)) await deploySource.prefetch(paths);
  const contents = await Promise.all(paths.map((p) => deploySource.readFile(p)));
  const files = new Map<string, string>();
  paths.forEach((p, i) => contents[i] !== undefined && files.set(p, contents[i]!));
  return { registry, models: withVersions, files };
}

/**
 * A commit's tree read in bulk: one `git ls-tree -r` lists it, `prefetch` loads many blobs in
 * one `git cat-file --batch`. Registries of thousands of models sync from a commit in one or
 * two git processes instead of one per file.
 */
export class CommitTreeSource implements RegistrySource, Prefetching {
  private tree?: Promise<Map<string, string>>;
  private readonly dirs = new Map<string, Set<string>>();
  private readonly blobs = new Map<string, string>();

  constructor(
    readonly repo: GitRepo,
    readonly commit: string,
    /** Path of the registry inside the repository, '' for its root. */
    readonly prefix = '',
  ) {}

  get label(): string {
    return this.commit.slice(0, 12);
  }

  private listing(): Promise<Map<string, string>> {
    this.tree ??= this.repo
      .run(['ls-tree', '-r', '-z', '--full-tree', this.commit, ...(this.prefix ? ['--', `${this.prefix}/`] : [])])
      .then((r) => {
        const map = new Map<string, string>();
        const cut = this.prefix ? this.prefix.length + 1 : 0;
        for (const line of r.stdout.split('\0')) {
          if (!line) continue;
          const tab = line.indexOf('\t');
          const [, type, oid] = line.slice(0, tab).split(' ');
          if (type !== 'blob') continue;
          const path = line.slice(tab + 1 + cut);
          map.set(path, oid!);
          const parts = path.split('/');
          for (let i = 0; i < parts.length - 1; i++) {
            const dir = parts.slice(0, i).join('/');
            let set = this.dirs.get(dir);
            if (!set) this.dirs.set(dir, (set = new Set()));
            set.add(parts[i]!);
          }
          const parent = parts.slice(0, -1).join('/');
          let set = this.dirs.get(parent);
          if (!set) this.dirs.set(parent, (set = new Set()));
          set.add(parts.at(-1)!);
        }
        return map;
      });
    return this.tree;
  }

  async prefetch(paths: string[]): Promise<void> {
    const tree = await this.listing();
    const wanted = paths.map((p) => tree.get(p)).filter((oid): oid is string => oid !== undefined && !this.blobs.has(oid));
    const read = await this.repo.readBlobs([...new Set(wanted)]);
    for (const [oid, buf] of read) this.blobs.set(oid, buf.toString('utf8'));
  }

  async readFile(path: string): Promise<string | undefined> {
    const oid = (await this.listing()).get(path);
    if (oid === undefined) return undefined;
    if (!this.blobs.has(oid)) await this.prefetch([path]);
    return this.blobs.get(oid);
  }

  async listDir(path: string): Promise<string[]> {
    await this.listing();
    return [...(this.dirs.get(path.replace(/\/$/, '')) ?? [])];
  }
}
