import type { GitRepo } from '../git/repo.js';
import { loadManifest } from '../manifest/load.js';
import type { Stage } from '../manifest/types.js';
import { versionFile } from '../registry/layout.js';
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

  /** Commits (newest first) of the branch in which `model@version`'s manifest was in `stage`. */
  async commitsInStage(model: string, version: number, stage: Stage): Promise<string[]> {
    const file = (this.prefix ? `${this.prefix}/` : '') + versionFile(model, version);
    const log = await this.repo.out(['log', '--first-parent', '--format=%H', this.rev, '--', file]);
    const commits = log.split('\n').filter(Boolean);
    if (commits.length === 0) return [];
    const names = commits.map((c) => `${c}:${file}`);
    const blobs = await this.repo.readBlobs(names);
    return commits.filter((c) => {
      const text = blobs.get(`${c}:${file}`)?.toString('utf8');
      if (text === undefined) return false;
      const loaded = loadManifest(text, file, 'ModelVersion');
      return loaded.value?.stage === stage;
    });
  }

  async wasInStage(model: string, version: number, stage: Stage): Promise<boolean> {
    return (await this.commitsInStage(model, version, stage)).length > 0;
  }
}
