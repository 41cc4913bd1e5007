import type { Stage } from '../manifest/types.js';
import type { RegistrySource } from '../registry/source.js';

/**
 * The registry as merging the pull request would leave it: the pull request's changed files
 * as they are in its head, every other file as it is on the base branch. Judging this view
 * (not the head alone) catches a pull request that is behind its base, e.g. two promotions to
 * Production merged one after the other from branches that each saw only one.
 */
export class MergedSource implements RegistrySource {
  private readonly changed: Set<string>;
  private readonly changedDirs = new Map<string, Set<string>>();

  constructor(
    readonly base: RegistrySource,
    readonly head: RegistrySource,
    changedPaths: Iterable<string>,
  ) {
    this.changed = new Set(changedPaths);
    for (const p of this.changed) {
      const parts = p.split('/');
      for (let i = 0; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        let names = this.changedDirs.get(dir);
        if (!names) this.changedDirs.set(dir, (names = new Set()));
        names.add(parts[i]!);
      }
    }
  }

  get label(): string {
    return `${this.base.label} + changes of ${this.head.label}`;
  }

  readFile(path: string): Promise<string | undefined> {
    return (this.changed.has(path) ? this.head : this.base).readFile(path);
  }

  async readFiles(paths: string[]): Promise<Array<string | undefined>> {
    const read = (src: RegistrySource, ps: string[]) => (src.readFiles ? src.readFiles(ps) : Promise.all(ps.map((p) => src.readFile(p))));
    const fromHead = paths.filter((p) => this.changed.has(p));
    const fromBase = paths.filter((p) => !this.changed.has(p));
    const [h, b] = await Promise.all([read(this.head, fromHead), read(this.base, fromBase)]);
    const texts = new Map<string, string | undefined>();
    fromHead.forEach((p, i) => texts.set(p, h[i]));
    fromBase.forEach((p, i) => texts.set(p, b[i]));
    return paths.map((p) => texts.get(p));
  }

  async knownStages(dir: string): Promise<ReadonlyMap<string, Stage>> {
    const [base, head] = await Promise.all([this.base.knownStages?.(dir), this.changedDirs.has(dir) ? this.head.knownStages?.(dir) : undefined]);
    const known = new Map<string, Stage>();
    for (const [name, stage] of base ?? []) if (!this.changed.has(`${dir}/${name}`)) known.set(name, stage);
    for (const [name, stage] of head ?? []) if (this.changed.has(`${dir}/${name}`)) known.set(name, stage);
    return known;
  }

  async listDir(path: string): Promise<string[]> {
    const dir = path.replace(/\/$/, '');
    const touched = this.changedDirs.get(dir);
    const names = new Set(await this.base.listDir(dir));
    if (!touched) return [...names];
    const headNames = new Set(await this.head.listDir(dir));
    for (const name of touched) {
      const full = dir ? `${dir}/${name}` : name;
      if (this.changed.has(full)) {
        if (headNames.has(name)) names.add(name);
        else names.delete(name);
      } else if (headNames.has(name)) names.add(name);
    }
    return [...names];
  }
}
