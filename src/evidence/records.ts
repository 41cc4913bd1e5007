/**
 * The I/O edge of decision records: reading `<store>/.modelgate/decisions/<tree>.dsse.json`, and
 * finding, from the registry's git history, the commit (and tree) that moved each Staging or
 * Production version into its stage. The checks themselves are in verify-decisions.ts.
 */
import type { GitRepo } from '../git/repo.js';
import { stageHistory } from '../registry/history.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import type { ArtifactStore } from '../store/store.js';
import type { DecisionApprover } from './decision.js';
import type { StagedVersion } from './verify-decisions.js';

/** The envelope JSON stored for a merged tree, or undefined when the store has none (or it is not JSON). */
export async function readDecisionRecord(store: ArtifactStore, tree: string): Promise<unknown> {
  // decision.ts (node:crypto, signing) loads only when a record is looked up, not with `history`.
  const key = (await import('./decision.js')).decisionRecordKey(tree);
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
export async function stagedVersions(
  repo: GitRepo,
  snapshot: RegistrySnapshot,
): Promise<Array<StagedVersion | (Omit<StagedVersion, 'commit' | 'tree'> & { commit?: undefined; tree?: undefined })>> {
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
      out.push({ ...base, commit: last.commit, tree: last.tree });
    }
  }
  return out;
}

/** What `history` shows for one stage change: the approvers from its record, or why there are none. */
export type ChangeApprovers =
  { record: 'valid'; approvers: DecisionApprover[] } | { record: 'none' | 'not-a-pull-request' | 'unavailable' } | { record: 'invalid'; reason: string };

/**
 * For each stage change (commit, pull request), the approvers its decision record lists. A store
 * that cannot be reached makes every record `unavailable`: history still prints.
 */
export async function approversForChanges(
  changes: ReadonlyArray<{ commit: string; tree?: string; pullRequest: number | null }>,
  repo: GitRepo,
  snapshot: RegistrySnapshot,
  env: NodeJS.ProcessEnv,
): Promise<ChangeApprovers[]> {
  // Only a pull request's change has a record: without one, neither the store nor its client is loaded.
  if (changes.every((c) => c.pullRequest === null)) return changes.map(() => ({ record: 'not-a-pull-request' }));
  const { approversFromRecord } = await import('./verify-decisions.js');
  const { openStore } = await import('../store/store.js');
  const config = await snapshot.config();
  const keys = config.trust?.keys ?? [];
  let store: ArtifactStore | undefined;
  try {
    store = await openStore(config.storage, env);
  } catch {
    store = undefined;
  }
  try {
    // Several changes of one merge share its tree, hence its record: each is read once.
    const byTree = new Map<string, ChangeApprovers>();
    const out: ChangeApprovers[] = [];
    for (const c of changes) {
      if (c.pullRequest === null) {
        out.push({ record: 'not-a-pull-request' });
        continue;
      }
      if (!store) {
        out.push({ record: 'unavailable' });
        continue;
      }
      const tree = c.tree ?? (await repo.treeOf(c.commit));
      let found = byTree.get(tree);
      if (!found) {
        let record: unknown;
        let readable = true;
        try {
          record = await readDecisionRecord(store, tree);
        } catch {
          readable = false;
        }
        const r = readable ? approversFromRecord(record, tree, keys) : undefined;
        found = !r ? { record: 'unavailable' } : r.record === 'valid' ? { record: 'valid', approvers: r.approvers } : r;
        byTree.set(tree, found);
      }
      out.push(found);
    }
    return out;
  } finally {
    store?.close();
  }
}

/** One line for the human table: `alice (group 1, team ml-leads), bob` or why there is none. */
export function formatApprovers(a: ChangeApprovers): string {
  switch (a.record) {
    case 'valid':
      return a.approvers.length
        ? a.approvers.map((p) => `${p.login} (${p.rule ? `${p.rule}, ` : ''}group ${p.group + 1}${p.team ? `, ${p.team}` : ''})`).join(', ')
        : '(none required)';
    case 'none':
      return '(no decision record)';
    case 'invalid':
      return `(record invalid: ${a.reason})`;
    case 'unavailable':
      return '(store unavailable)';
    default:
      return '';
  }
}

/**
 * Writes a signed record to `<store>/.modelgate/decisions/<tree>.dsse.json` through the store's
 * stage/commit path (so S3 and file:// behave alike). `tmpDir` holds the local copy staged from.
 * Returns the record's URI. A record with other bytes already there fails with E_ARTIFACT_CONFLICT.
 */
export async function writeDecisionRecord(store: ArtifactStore, tree: string, envelope: unknown, tmpDir: string): Promise<string> {
  const { writeFile, rm } = await import('node:fs/promises');
  const path = await import('node:path');
  const key = (await import('./decision.js')).decisionRecordKey(tree);
  const local = path.join(tmpDir, `${tree}.dsse.json`);
  await writeFile(local, JSON.stringify(envelope, null, 2) + '\n');
  const staged = await store.stage(local, { model: 'modelgate-decisions', path: `${tree}.dsse.json`, uploadId: `decision-${tree}` });
  try {
    await staged.commit(key);
  } finally {
    await staged.discard();
    await rm(local, { force: true });
  }
  return `${store.location.uri.replace(/\/$/, '')}/${key}`;
}
