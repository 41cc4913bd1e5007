import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  buildDecisionStatement,
  decisionRecordKey,
  legacyDecisionRecordKey,
  signEnvelope,
  statementDigest,
  type DecisionInput,
  type DecisionStatement,
  type DsseEnvelope,
} from '../src/evidence/decision.js';
import { cli, git, makeRegistry, randomFile, tempDir } from './helpers/artifacts.js';

/** Stores a record as the gate does: `<store>/.modelgate/decisions/<merged tree>/<statement sha256>.dsse.json`. */
function storeRecord(storeRoot: string, envelope: DsseEnvelope): string {
  const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
  const path = join(storeRoot, decisionRecordKey(statement.predicate.mergedTreeId, statementDigest(envelope)!));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(envelope));
  return path;
}

/** A registry whose modelgate.yaml trusts a new key; returns the registry and the private key's PEM. */
function trustingRegistry(storeRoot: string, type: 'ec' | 'ed25519'): { reg: string; priv: string } {
  const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
  const { privateKey, publicKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const pub = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  appendFileSync(
    join(reg, 'modelgate.yaml'),
    `trust:\n  keys:\n    - |\n${pub
      .trimEnd()
      .split('\n')
      .map((l) => `      ${l}`)
      .join('\n')}\n`,
  );
  git(reg, 'commit', '-qam', 'trust a key');
  return { reg, priv: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** What the gate would record for the move of `commit` (its first parent's tree to its tree). */
function inputOf(reg: string, commit: string, over: Partial<DecisionInput> & Pick<DecisionInput, 'subjects'>): DecisionInput {
  return {
    repository: 'acme/reg',
    pullRequest: 3,
    baseSha: git(reg, 'rev-parse', `${commit}^`).trim(),
    headSha: '1'.repeat(40),
    baseTreeId: git(reg, 'rev-parse', `${commit}^^{tree}`).trim(),
    mergedTreeId: git(reg, 'rev-parse', `${commit}^{tree}`).trim(),
    policyBlobId: '2'.repeat(40),
    rules: [],
    approvers: [],
    checks: [],
    time: '2026-12-02T09:00:00Z',
    ...over,
  };
}
const recordOf = (reg: string, commit: string, priv: string, over: Partial<DecisionInput> & Pick<DecisionInput, 'subjects'>): DsseEnvelope =>
  signEnvelope(buildDecisionStatement(inputOf(reg, commit, over)), priv);

const setStage = (manifest: string, from: string, to: string) =>
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(new RegExp(`^stage: ${from}$`, 'm'), `stage: ${to}`));

describe('verify --decisions on a real registry', () => {
  it('fails for a version pushed to Production without a record, passes with a signed one, fails again when it is forged', async () => {
    const storeRoot = tempDir('mg-store-');
    const { reg, priv } = trustingRegistry(storeRoot, 'ec');
    const m = randomFile(tempDir(), 'model.joblib', 10_000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    const manifest = join(reg, 'models/fraud/versions/1.yaml');
    setStage(manifest, 'None', 'Production');
    git(reg, 'commit', '-qam', 'direct push to production');

    const none = await cli(reg, ['verify', '--decisions', '--json']);
    expect(none.code).toBe(1);
    expect(none.json.verdicts).toEqual([
      expect.objectContaining({ model: 'fraud', version: 1, ok: false, reason: expect.stringMatching(/no decision record/) }),
    ]);

    const sha = readFileSync(manifest, 'utf8').match(/sha256: ([0-9a-f]{64})/)![1]!;
    const subjects = (digest: string) => [{ model: 'fraud', version: 1, sha256: digest, from: 'None', to: 'Production' }];
    const path = storeRecord(storeRoot, recordOf(reg, 'HEAD', priv, { subjects: subjects(sha) }));
    const ok = await cli(reg, ['verify', '--decisions']);
    expect(ok.code, ok.stderr).toBe(0);

    rmSync(path);
    storeRecord(storeRoot, recordOf(reg, 'HEAD', priv, { subjects: subjects('f'.repeat(64)) }));
    expect((await cli(reg, ['verify', '--decisions'])).stderr).toMatch(/record's digest/);
    rmSync(join(storeRoot, '.modelgate'), { recursive: true });
    const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    storeRecord(storeRoot, recordOf(reg, 'HEAD', other, { subjects: subjects(sha) }));
    const forged = await cli(reg, ['verify', '--decisions']);
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(/no signature verifies with a trusted key/);
  });

  it('a revert pushed straight to main that restores an approved tree is flagged: the record proves the approved move only', async () => {
    const storeRoot = tempDir('mg-store-');
    const { reg, priv } = trustingRegistry(storeRoot, 'ed25519');
    const m = randomFile(tempDir(), 'model.joblib', 1000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    const manifest = join(reg, 'models/fraud/versions/1.yaml');
    const sha = readFileSync(manifest, 'utf8').match(/sha256: ([0-9a-f]{64})/)![1]!;
    // An approved promotion through a pull request, with the record the gate signed for it.
    setStage(manifest, 'None', 'Production');
    git(reg, 'commit', '-qam', 'Promote fraud@1 to Production (#1)');
    const approvedTree = git(reg, 'rev-parse', 'HEAD^{tree}').trim();
    storeRecord(
      storeRoot,
      recordOf(reg, 'HEAD', priv, {
        pullRequest: 1,
        subjects: [{ model: 'fraud', version: 1, sha256: sha, from: 'None', to: 'Production' }],
        approvers: [{ login: 'carol', reviewId: 1, group: 0 }],
      }),
    );
    expect((await cli(reg, ['verify', '--decisions'])).code).toBe(0);

    // Straight to main, no pull request: archive it, then revert the archive, which restores the approved tree.
    setStage(manifest, 'Production', 'Archived');
    git(reg, 'commit', '-qam', 'archive fraud@1');
    git(reg, 'revert', '--no-edit', 'HEAD');
    expect(git(reg, 'rev-parse', 'HEAD^{tree}').trim()).toBe(approvedTree);
    const v = await cli(reg, ['verify', '--decisions', '--json']);
    expect(v.code).toBe(1);
    expect(v.json.verdicts).toEqual([
      expect.objectContaining({
        model: 'fraud',
        version: 1,
        ok: false,
        commit: git(reg, 'rev-parse', 'HEAD').trim(),
        reason: expect.stringMatching(
          new RegExp(`records of tree ${approvedTree} prove other changes .*not this commit's move from tree ${git(reg, 'rev-parse', 'HEAD^^{tree}').trim()}`),
        ),
      }),
    ]);
    // A message that claims the pull request does not borrow its approvers either.
    git(reg, 'commit', '-q', '--amend', '-m', 'Revert "archive fraud@1" (#1)');
    const h = await cli(reg, ['history', 'fraud', '--json']);
    const rows = h.json as Array<{ to: string; pullRequest: number | null; decision: { record: string } }>;
    expect(rows.map((r) => [r.to, r.pullRequest, r.decision.record])).toEqual([
      ['None', null, 'not-a-pull-request'],
      ['Production', 1, 'valid'],
      ['Archived', null, 'not-a-pull-request'],
      ['Production', 1, 'unproven'],
    ]);
    expect((await cli(reg, ['history', 'fraud'])).stdout).toMatch(/#1\s+\(no record of this change/);
    expect((await cli(reg, ['verify', '--decisions'])).code).toBe(1);
  });

  it('an old-layout record (<merged-tree-id>.dsse.json, no base tree) proves nothing, and verify says why', async () => {
    const storeRoot = tempDir('mg-store-');
    const { reg, priv } = trustingRegistry(storeRoot, 'ed25519');
    const m = randomFile(tempDir(), 'model.joblib', 1000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    const manifest = join(reg, 'models/fraud/versions/1.yaml');
    const sha = readFileSync(manifest, 'utf8').match(/sha256: ([0-9a-f]{64})/)![1]!;
    setStage(manifest, 'None', 'Staging');
    git(reg, 'commit', '-qam', 'Promote fraud@1 to Staging (#2)');
    const tree = git(reg, 'rev-parse', 'HEAD^{tree}').trim();
    // A v2 record: no baseTreeId, stored under the merged tree alone.
    const statement = buildDecisionStatement(inputOf(reg, 'HEAD', { subjects: [{ model: 'fraud', version: 1, sha256: sha, from: 'None', to: 'Staging' }] }));
    const { baseTreeId: _none, ...predicate } = statement.predicate;
    const old = signEnvelope({ ...statement, predicate } as DecisionStatement, priv);
    mkdirSync(join(storeRoot, '.modelgate/decisions'), { recursive: true });
    writeFileSync(join(storeRoot, legacyDecisionRecordKey(tree)), JSON.stringify(old));
    const v = await cli(reg, ['verify', '--decisions', '--json']);
    expect(v.code).toBe(1);
    expect(v.json.verdicts).toEqual([
      expect.objectContaining({ ok: false, reason: expect.stringMatching(/old-layout record of tree [0-9a-f]{40} names no base tree/) }),
    ]);
    const h = await cli(reg, ['history', 'fraud', '--json']);
    expect((h.json as Array<{ decision: { record: string } }>).at(-1)!.decision).toMatchObject({ record: 'unproven' });
  });

  it('history lists the approvers of a pull request stage change from its record, and says when there is none', async () => {
    const storeRoot = tempDir('mg-store-');
    const { reg, priv } = trustingRegistry(storeRoot, 'ed25519');
    const m = randomFile(tempDir(), 'model.joblib', 1000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    const manifest = join(reg, 'models/fraud/versions/1.yaml');
    setStage(manifest, 'None', 'Staging');
    git(reg, 'commit', '-qam', 'Promote fraud@1 to Staging (#5)');
    const sha = readFileSync(manifest, 'utf8').match(/sha256: ([0-9a-f]{64})/)![1]!;
    storeRecord(
      storeRoot,
      recordOf(reg, 'HEAD', priv, {
        pullRequest: 5,
        subjects: [{ model: 'fraud', version: 1, sha256: sha, from: 'None', to: 'Staging' }],
        approvers: [{ login: 'alice', reviewId: 42, group: 0, team: 'ml-leads' }],
      }),
    );
    const h = await cli(reg, ['history', 'fraud', '--json']);
    const rows = h.json as Array<{ pullRequest: number | null; decision: unknown }>;
    expect(rows.map((r) => r.decision)).toEqual([
      { record: 'not-a-pull-request' },
      { record: 'valid', approvers: [{ login: 'alice', reviewId: 42, group: 0, team: 'ml-leads' }] },
    ]);
    expect((await cli(reg, ['history', 'fraud'])).stdout).toMatch(/#5\s+alice \(group 1, ml-leads\)/);
    setStage(manifest, 'Staging', 'Production');
    git(reg, 'commit', '-qam', 'Promote fraud@1 to Production (#6)');
    expect(((await cli(reg, ['history', 'fraud', '--json'])).json as Array<{ decision: unknown }>)[2]!.decision).toEqual({ record: 'none' });
    expect((await cli(reg, ['verify', '--decisions'])).code).toBe(1);
  });

  it('the gate edge: writeDecisionRecord stores a record under its own digest, readDecisionRecords finds every record of the tree; scanStoredArtifact refuses os.system in a stored pickle', async () => {
    const { openStore } = await import('../src/store/store.js');
    const { writeDecisionRecord, readDecisionRecords } = await import('../src/evidence/records.js');
    const { scanStoredArtifact } = await import('../src/scan/stored-artifact.js');
    const storeRoot = tempDir('mg-store-');
    const store = await openStore({ uri: pathToFileURL(storeRoot).href });
    const tree = '3'.repeat(40);
    const a: DsseEnvelope = { payloadType: 'x', payload: Buffer.from('one').toString('base64'), signatures: [] };
    const b: DsseEnvelope = { payloadType: 'x', payload: Buffer.from('two').toString('base64'), signatures: [] };
    const keyA = await writeDecisionRecord(store, tree, a, tempDir());
    expect(keyA).toBe(`.modelgate/decisions/${tree}/${statementDigest(a)}.dsse.json`);
    expect(await writeDecisionRecord(store, tree, a, tempDir())).toBe(keyA); // the same record twice is kept once
    await writeDecisionRecord(store, tree, b, tempDir());
    const found = await readDecisionRecords(store, tree);
    expect(found.legacy).toBe(false);
    expect(found.records).toEqual(
      expect.arrayContaining([
        { digest: statementDigest(a), envelope: a },
        { digest: statementDigest(b), envelope: b },
      ]),
    );
    expect(found.records).toHaveLength(2);
    expect(await readDecisionRecords(store, '4'.repeat(40))).toEqual({ records: [], legacy: false });

    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const evil = join(tempDir(), 'model.pkl');
    writeFileSync(evil, Buffer.from('\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.', 'latin1'));
    expect((await cli(reg, ['register', 'fraud', evil, '--format', 'pickle'])).code).toBe(0);
    const { openRegistry } = await import('../src/registry/snapshot.js');
    const snap = openRegistry({ cwd: reg }).snapshot;
    const [v] = await snap.versions('fraud');
    const scanned = await scanStoredArtifact(store, v!);
    expect(scanned.map((f) => [f.file, f.offset, f.global])).toEqual([['model.pkl', 2, 'posix.system']]);
    store.close();
  });
});
