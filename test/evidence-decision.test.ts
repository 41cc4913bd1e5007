import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildDecisionStatement,
  decisionRecordKey,
  DSSE_PAYLOAD_TYPE,
  legacyDecisionRecordKey,
  preAuthEncoding,
  signEnvelope,
  statementDigest,
  verifyEnvelope,
  type DecisionInput,
} from '../src/evidence/decision.js';

const tree = 'a'.repeat(40);
const baseTree = '9'.repeat(40);
const input: DecisionInput = {
  subjects: [{ model: 'churn', version: 3, sha256: 'b'.repeat(64), from: 'Staging', to: 'Production' }],
  repository: 'acme/registry',
  pullRequest: 7,
  baseSha: 'c'.repeat(40),
  headSha: 'd'.repeat(40),
  baseTreeId: baseTree,
  mergedTreeId: tree,
  policyBlobId: 'e'.repeat(40),
  rules: [{ name: 'prod', passed: true }],
  approvers: [{ login: 'alice', reviewId: 11, group: 0, team: 'ml-leads' }],
  checks: [{ kind: 'scan:pickle', passed: true }],
  time: '2026-12-02T09:00:00Z',
};
const statement = buildDecisionStatement(input);
const pems = (type: 'ec' | 'ed25519') => {
  const { privateKey, publicKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return { priv: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, pub: publicKey.export({ type: 'spki', format: 'pem' }) as string };
};

describe('decision records', () => {
  it('builds an in-toto Statement v1 with the subject name model@version', () => {
    expect(statement.subject).toEqual([{ name: 'churn@3', digest: { sha256: 'b'.repeat(64) } }]);
    expect(statement.predicate).toMatchObject({ baseTreeId: baseTree, mergedTreeId: tree });
  });

  it('is stored under its merged tree and its own digest, the sha256 of the signed statement', () => {
    const env = signEnvelope(statement, pems('ed25519').priv);
    const digest = createHash('sha256').update(JSON.stringify(statement)).digest('hex');
    expect(statementDigest(env)).toBe(digest);
    expect(decisionRecordKey(tree, digest)).toBe(`.modelgate/decisions/${tree}/${digest}.dsse.json`);
    expect(legacyDecisionRecordKey(tree)).toBe(`.modelgate/decisions/${tree}.dsse.json`);
    expect(() => decisionRecordKey(tree, '../x')).toThrow(/not a sha256/);
    expect(() => decisionRecordKey('../x', digest)).toThrow(/not a git tree id/);
  });

  for (const type of ['ec', 'ed25519'] as const) {
    it(`${type}: verifies with the trusted key, refuses another key and a tampered payload, and openssl verifies the PAE`, () => {
      const k = pems(type);
      const other = pems(type);
      const env = signEnvelope(statement, k.priv);
      expect(verifyEnvelope(env, [other.pub, k.pub]).ok).toBe(true);
      expect(verifyEnvelope(env, [other.pub])).toEqual({ ok: false, reason: 'no signature verifies with a trusted key' });
      const tampered = { ...env, payload: Buffer.from(JSON.stringify({ ...statement, subject: [] })).toString('base64') };
      expect(verifyEnvelope(tampered, [k.pub]).ok).toBe(false);

      const dir = mkdtempSync(join(tmpdir(), 'mg-dsse-'));
      writeFileSync(join(dir, 'pae.bin'), preAuthEncoding(DSSE_PAYLOAD_TYPE, Buffer.from(env.payload, 'base64')));
      writeFileSync(join(dir, 'sig.bin'), Buffer.from(env.signatures[0]!.sig, 'base64'));
      writeFileSync(join(dir, 'pub.pem'), k.pub);
      writeFileSync(join(dir, 'other.pem'), other.pub);
      const args = (pub: string) =>
        type === 'ec'
          ? ['dgst', '-sha256', '-verify', pub, '-signature', 'sig.bin', 'pae.bin']
          : ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', 'pae.bin', '-sigfile', 'sig.bin'];
      expect(execFileSync('openssl', args('pub.pem'), { cwd: dir }).toString()).toMatch(/Verified OK|Signature Verified Successfully/);
      expect(() => execFileSync('openssl', args('other.pem'), { cwd: dir, stdio: 'pipe' })).toThrow();
    });
  }
});

describe('verify --decisions core: a record proves exactly one move', async () => {
  const { verifyDecisions, approversFromRecords, decisionsExitCode } = await import('../src/evidence/verify-decisions.js');
  type StoredRecords = import('../src/evidence/verify-decisions.js').StoredRecords;
  const k = pems('ed25519');
  const sign = (over: Partial<DecisionInput>) => signEnvelope(buildDecisionStatement({ ...input, ...over }), k.priv);
  const stored = (...envelopes: unknown[]): StoredRecords => ({
    records: envelopes.map((envelope) => ({ digest: statementDigest(envelope)!, envelope })),
    legacy: false,
  });
  const env = sign({});
  const records = new Map<string, StoredRecords>([[tree, stored(env)]]);
  const load = async (t: string) => records.get(t) ?? { records: [], legacy: false };
  const v = { model: 'churn', version: 3, stage: 'Production', sha256: 'b'.repeat(64), commit: 'f'.repeat(40), tree, baseTree };

  it("accepts a version whose record is signed by a trusted key, names its digest and the commit's move", async () => {
    const r = await verifyDecisions([v], load, [k.pub]);
    expect(r[0]).toMatchObject({ ok: true, pullRequest: 7 });
    expect(decisionsExitCode(r)).toBe(0);
  });

  it('refuses a missing record, an untrusted signature, another digest, another tree, a record under another digest', async () => {
    const other = pems('ec');
    const r = await verifyDecisions(
      [
        { ...v, tree: '1'.repeat(40) },
        { ...v, sha256: '0'.repeat(64) },
        { ...v, version: 4 },
      ],
      load,
      [k.pub],
    );
    expect(r).toEqual([
      expect.objectContaining({ ok: false, reason: `no decision record for tree ${'1'.repeat(40)}: merged without the gate` }),
      expect.objectContaining({ ok: false, reason: expect.stringMatching(/^the record's digest for churn@3/) }),
      expect.objectContaining({ ok: false, reason: 'the record does not name churn@4' }),
    ]);
    expect(decisionsExitCode(r)).toBe(1);
    expect((await verifyDecisions([v], load, [other.pub]))[0]).toMatchObject({ ok: false, reason: 'no signature verifies with a trusted key' });
    records.set('2'.repeat(40), stored(env)); // a record copied under another tree id
    expect((await verifyDecisions([{ ...v, tree: '2'.repeat(40) }], load, [k.pub]))[0]).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/names tree a{40}/),
    });
    const renamed = { records: [{ digest: 'c'.repeat(64), envelope: env }], legacy: false };
    expect(approversFromRecords(renamed, { tree, baseTree }, 7, [k.pub])).toMatchObject({
      record: 'invalid',
      reason: expect.stringMatching(/not under its own digest/),
    });
  });

  it("a commit that reaches an approved tree from another tree (a revert pushed straight to main) is not proven by that tree's record", async () => {
    const r = await verifyDecisions(
      [
        { ...v, baseTree: '8'.repeat(40) },
        { ...v, baseTree: undefined },
      ],
      load,
      [k.pub],
    );
    expect(r.map((x) => x.ok)).toEqual([false, false]);
    expect(r[0]).toMatchObject({ reason: expect.stringMatching(/prove other changes \(from tree 9{40}\), not this commit's move from tree 8{40}/) });
    expect(approversFromRecords(stored(env), { tree, baseTree: '8'.repeat(40) }, 7, [k.pub])).toMatchObject({ record: 'unproven' });
  });

  it('an old-layout record names no base tree: it is reported, and proves nothing', async () => {
    const { baseTreeId: _dropped, ...v2 } = input;
    const old = signEnvelope(buildDecisionStatement(v2 as DecisionInput), k.priv);
    const r = await verifyDecisions([v], async () => ({ records: [], legacy: true }), [k.pub]);
    expect(r[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/old-layout record of tree a{40} names no base tree/) });
    // The same v2 statement copied into the new layout proves nothing either.
    expect(approversFromRecords(stored(old), { tree, baseTree }, 7, [k.pub])).toEqual({ record: 'invalid', reason: 'a record names no base tree' });
  });

  it("history: approvers of the record of exactly this move; the tree reached again by another change shows that change's approvers", () => {
    const rollbackBase = '7'.repeat(40);
    const rollback = sign({ pullRequest: 9, baseTreeId: rollbackBase, approvers: [{ login: 'erin', reviewId: 30, group: 0 }], time: '2026-12-05T09:00:00Z' });
    const both = stored(env, rollback);
    expect(approversFromRecords(both, { tree, baseTree }, 7, [k.pub])).toEqual({
      record: 'valid',
      pullRequest: 7,
      approvers: [{ login: 'alice', reviewId: 11, group: 0, team: 'ml-leads' }],
    });
    expect(approversFromRecords(both, { tree, baseTree: rollbackBase }, 9, [k.pub])).toEqual({
      record: 'valid',
      pullRequest: 9,
      approvers: [{ login: 'erin', reviewId: 30, group: 0 }],
    });
    // A re-run of the check on a new head of the same pull request: the latest record counts.
    const rerun = sign({ headSha: 'e'.repeat(40), approvers: [{ login: 'bob', reviewId: 12, group: 0 }], time: '2026-12-02T10:00:00Z' });
    expect(approversFromRecords(stored(rerun, env), { tree, baseTree }, 7, [k.pub])).toMatchObject({ approvers: [{ login: 'bob' }] });
    expect(approversFromRecords({ records: [], legacy: false }, { tree, baseTree }, 7, [k.pub])).toEqual({ record: 'none' });
  });
});
