/**
 * The I/O edge of decision records: reading `<store>/.modelgate/decisions/<tree>.dsse.json`, and
 * finding, from the registry's git history, the commit (and tree) that moved each Staging or
 * Production version into its stage. The checks themselves are in verify-decisions.ts.
 */
import type { GitRepo } from '../git/repo.js';
import { stageHistory } from '../registry/history.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import type { ArtifactStore } from '../store/store.js';
import { decisionRecordKey } from './decision.js';
import type { StagedVersion } from './verify-decisions.js';

/** The envelope JSON stored for a merged tree, or undefined when the store has none (or it is not JSON). */
export async function readDecisionRecord(store: ArtifactStore, tree: string): Promise<unknown | undefined> {
  const key = decisionRecordKey(tree);
  if (!(await store.stat(key))) return undefined;
  const parts: Buffer[] = [];
  for await (const c of await store.read(key)) parts.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    return { invalid: true };
  }
}

/** Every version in Staging or Production, with the commit whose change put it there and that commit's tree. */
export async function stagedVersions(repo: GitRepo, snapshot: RegistrySnapshot): Promise<Array<StagedVersion | (Omit<StagedVersion, 'commit' | 'tree'> & { commit?: undefined; tree?: undefined })>> {
  const out: Array<StagedVersion | (Omit<StagedVersion, 'commit' | 'tree'> & { commit?: undefined; tree?: undefined })> = [];
  for (const model of await snapshot.modelNames()) {
    const versions = (await snapshot.versions(model)).filter((v) => v.stage === 'Staging' || v.stage === 'Production');
    if (versions.length === 0) continue;
    const changes = await stageHistory(repo, model);
    for (const v of versions) {
      const last = [...changes].reverse().find((c) => c.version === v.version && c.to === v.stage);
      const base = { model, version: v.version, stage: v.stage, sha256: v.artifact.sha256 };
      if (!last) {
        out.push(base); // uncommitted: no commit put it there yet
        continue;
      }
      out.push({ ...base, commit: last.commit, tree: await repo.treeOf(last.commit) });
    }
  }
  return out;
}
