import type { GitRepo } from '../git/repo.js';
import { loadManifest } from '../manifest/load.js';
import type { Stage } from '../manifest/types.js';
import { aliasesFile, versionFile } from '../registry/layout.js';
import type { StageHistory } from './types.js';

/**
 * Stage history proven from git: every state a version manifest had on the first-parent
 * history of `rev` (the base branch: a stage set and reverted inside a merged branch never
 * counts, only what the branch itself held). One `git log` and one batched object read per
 * question.
 */
export class GitStageHistory implements StageHistory {
  constructor(
    readonly repo: GitRepo,
    readonly rev: string,
    /** Path of the registry inside the repository ('' for the root). */
    readonly prefix = '',
  ) {}

  async wasInStage(model: string, version: number, stage: Stage): Promise<boolean> {
    const file = (this.prefix ? `${this.prefix}/` : '') + versionFile(model, version);
    const log = await this.repo.firstParentCommitsTouching(this.rev, file);
    const names = log.map((commit) => `${commit}:${file}`);
    if (names.length === 0) return false;
    const blobs = await this.repo.readBlobs(names);
    return names.some((name) => {
      const text = blobs.get(name)?.toString('utf8');
      return text !== undefined && loadManifest(text, file, 'ModelVersion').value?.stage === stage;
    });
  }

  async aliasTargets(model: string, alias: string): Promise<number[]> {
    const file = (this.prefix ? `${this.prefix}/` : '') + aliasesFile(model);
    const log = await this.repo.firstParentCommitsTouching(this.rev, file);
    const names = log.reverse().map((commit) => `${commit}:${file}`);
    if (names.length === 0) return [];
    const blobs = await this.repo.readBlobs(names);
    const out: number[] = [];
    for (const name of names) {
      const text = blobs.get(name)?.toString('utf8');
      const aliases = text === undefined ? undefined : loadManifest(text, file, 'ModelAliases').value?.aliases;
      const n = aliases && Object.hasOwn(aliases, alias) ? aliases[alias]! : undefined;
      if (n !== undefined && out.at(-1) !== n) out.push(n);
    }
    return out;
  }
}
