/**
 * The I/O edge of decision records: reading the records stored under a merged tree
 * (`<store>/.modelgate/decisions/<merged-tree-id>/<statement-sha256>.dsse.json`), and finding, from
 * the registry's git history, the commit that moved each Staging or Production version into its
 * stage with its move (its first parent's tree and its own). The checks are in verify-decisions.ts.
 */
import type { GitRepo } from '../git/repo.js';
import { aliasHistory, stageHistory } from '../registry/history.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import type { ArtifactStore } from '../store/store.js';
import type { DecisionApprover, DsseEnvelope } from './decision.js';
import type { StagedVersion, StoredRecords } from './verify-decisions.js';

const RECORD_NAME = /^([0-9a-f]{64})\.dsse\.json$/;

/** Every record stored under a merged tree, and whether a v2 record (which proves nothing) is there too. */
export async function readDecisionRecords(store: ArtifactStore, tree: string): Promise<StoredRecords> {
  // decision.ts (node:crypto, signing) loads only when a record is looked up, not with `history`.
  const { decisionRecordPrefix, legacyDecisionRecordKey } = await import('./decision.js');
  const prefix = decisionRecordPrefix(tree);
  const records: StoredRecords['records'] = [];
  for (const key of (await store.list(prefix)).sort()) {
    const digest = RECORD_NAME.exec(key.slice(prefix.length))?.[1];
    if (digest) records.push({ digest, envelope: await readJson(store, key) });
  }
  return { records, legacy: (await store.stat(legacyDecisionRecordKey(tree))) !== undefined };
}

async function readJson(store: ArtifactStore, key: string): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const c of await store.read(key)) parts.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    return { invalid: true };
  }
}

/**
 * The tree of each commit's first parent, in one `git cat-file` process; absent for a root commit
 * or a commit at the edge of a shallow clone (whose move no record can prove).
 */
export async function firstParentTrees(repo: GitRepo, commits: readonly string[]): Promise<Map<string, string>> {
  const wanted = [...new Set(commits)];
  const out = new Map<string, string>();
  if (wanted.length === 0) return out;
  const trees = await Promise.all(wanted.map((c) => repo.firstParentTree(c)));
  wanted.forEach((c, i) => {
    const tree = trees[i];
    if (tree) out.set(c, tree);
  });
  return out;
}

/** A staged version no commit put in its stage yet (an uncommitted change). */
export type UncommittedVersion = Omit<StagedVersion, 'commit' | 'tree' | 'baseTree'> & { commit?: undefined };

/** Every version in Staging or Production, with the commit whose change put it there and that commit's move. */
export async function stagedVersions(repo: GitRepo, snapshot: RegistrySnapshot): Promise<Array<StagedVersion | UncommittedVersion>> {
  const out: Array<StagedVersion | UncommittedVersion> = [];
  for (const model of await snapshot.modelNames()) {
    out.push(...(await aliasTargets(repo, snapshot, model)));
    const versions = (await snapshot.versions(model)).filter((v) => v.stage === 'Staging' || v.stage === 'Production');
    if (versions.length === 0) continue;
    const changes = await stageHistory(repo, model);
    for (const v of versions) {
      const last = [...changes].reverse().find((c) => c.version === v.version && c.to === v.stage);
      const base = { model, version: v.version, stage: v.stage, sha256: v.artifact.sha256 };
      out.push(last ? { ...base, commit: last.commit, tree: last.tree } : base);
    }
  }
  const parents = await firstParentTrees(
    repo,
    out.flatMap((v) => (v.commit === undefined ? [] : [v.commit])),
  );
  return out.map((v) => (v.commit === undefined || !parents.has(v.commit) ? v : { ...v, baseTree: parents.get(v.commit) }));
}

/** Each alias of `model` with the commit that last pointed it at its current target (SPEC v3 §9). */
async function aliasTargets(repo: GitRepo, snapshot: RegistrySnapshot, model: string): Promise<Array<StagedVersion | UncommittedVersion>> {
  const aliases = await snapshot.aliases(model);
  const names = Object.keys(aliases).sort();
  if (!names.length) return [];
  const moves = await aliasHistory(repo, model);
  const out: Array<StagedVersion | UncommittedVersion> = [];
  for (const alias of names) {
    const version = aliases[alias]!;
    const target = await snapshot.version(model, version);
    if (!target) continue; // validate refuses it; nothing to prove
    const last = [...moves].reverse().find((m) => m.alias === alias && m.to === version);
    const base = { model, version, stage: `@${alias}`, alias, sha256: target.artifact.sha256 };
    out.push(last ? { ...base, commit: last.commit, tree: last.tree } : base);
  }
  return out;
}

/** What `history` shows for one stage change: the approvers from the record of its move, or why there are none. */
export type ChangeApprovers =
  | { record: 'valid'; approvers: DecisionApprover[] }
  | { record: 'none' | 'not-a-pull-request' | 'unavailable' }
  | { record: 'unproven' | 'invalid'; reason: string };

/**
 * For each stage change (commit, pull request), the approvers of the record that proves its move
 * (SPEC v3 §14: its first parent's tree to its tree). A store that cannot be reached makes every
 * record `unavailable`: history still prints.
 */
export async function approversForChanges(
  changes: ReadonlyArray<{ commit: string; tree?: string; pullRequest: number | null }>,
  repo: GitRepo,
  snapshot: RegistrySnapshot,
  env: NodeJS.ProcessEnv,
): Promise<ChangeApprovers[]> {
  // Only a pull request's change has a record: without one, neither the store nor its client is loaded.
  if (changes.every((c) => c.pullRequest === null)) return changes.map(() => ({ record: 'not-a-pull-request' }));
  const { approversFromRecords } = await import('./verify-decisions.js');
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
    if (!store) return changes.map((c) => ({ record: c.pullRequest === null ? 'not-a-pull-request' : 'unavailable' }));
    const parents = await firstParentTrees(
      repo,
      changes.flatMap((c) => (c.pullRequest === null ? [] : [c.commit])),
    );
    // Several changes of one merge, and merges that reach one tree again, share its records: each tree is read once.
    const byTree = new Map<string, StoredRecords | undefined>();
    const out: ChangeApprovers[] = [];
    for (const c of changes) {
      if (c.pullRequest === null) {
        out.push({ record: 'not-a-pull-request' });
        continue;
      }
      const tree = c.tree ?? (await repo.treeOf(c.commit));
      if (!byTree.has(tree)) byTree.set(tree, await readDecisionRecords(store, tree).catch(() => undefined));
      const stored = byTree.get(tree);
      if (!stored) {
        out.push({ record: 'unavailable' });
        continue;
      }
      const r = approversFromRecords(stored, { tree, baseTree: parents.get(c.commit) }, c.pullRequest, keys);
      out.push(r.record === 'valid' ? { record: 'valid', approvers: r.approvers } : r);
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
    case 'unproven':
      return "(no record of this change: its tree's records prove others)";
    case 'invalid':
      return `(record invalid: ${a.reason})`;
    case 'unavailable':
      return '(store unavailable)';
    default:
      return '';
  }
}

/**
 * Writes a signed record to `<store>/.modelgate/decisions/<tree>/<statement-sha256>.dsse.json`
 * through the store's stage/commit path (so S3 and file:// behave alike). `tmpDir` holds the local
 * copy staged from. Returns the record's key; the same record written twice is kept once.
 */
export async function writeDecisionRecord(store: ArtifactStore, tree: string, envelope: DsseEnvelope, tmpDir: string): Promise<string> {
  const { writeFile, rm } = await import('node:fs/promises');
  const path = await import('node:path');
  const { decisionRecordKey, statementDigest } = await import('./decision.js');
  const digest = statementDigest(envelope)!;
  const key = decisionRecordKey(tree, digest);
  const local = path.join(tmpDir, `${digest}.dsse.json`);
  await writeFile(local, JSON.stringify(envelope, null, 2) + '\n');
  const staged = await store.stage(local, { model: 'modelgate-decisions', path: `${digest}.dsse.json`, uploadId: `decision-${digest}` });
  try {
    await staged.commit(key);
  } finally {
    await staged.discard();
    await rm(local, { force: true });
  }
  return key;
}

/** The URI of a key in the store, as the job summary and the action's output name it. */
export const recordUri = (store: ArtifactStore, key: string): string => `${store.location.uri.replace(/\/$/, '')}/${key}`;
