import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDecisionStatement, decisionRecordKey, DSSE_PAYLOAD_TYPE, preAuthEncoding, signEnvelope, verifyEnvelope } from '../src/evidence/decision.js';

const tree = 'a'.repeat(40);
const statement = buildDecisionStatement({
  subjects: [{ model: 'churn', version: 3, sha256: 'b'.repeat(64), from: 'Staging', to: 'Production' }],
  repository: 'acme/registry',
  pullRequest: 7,
  baseSha: 'c'.repeat(40),
  headSha: 'd'.repeat(40),
  mergedTreeId: tree,
  policyBlobId: 'e'.repeat(40),
  rules: [{ name: 'prod', passed: true }],
  approvers: [{ login: 'alice', reviewId: 11, group: 0, team: 'ml-leads' }],
  checks: [{ kind: 'scan:pickle', passed: true }],
  time: '2026-12-02T09:00:00Z',
});
const pems = (type: 'ec' | 'ed25519') => {
  const { privateKey, publicKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return { priv: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, pub: publicKey.export({ type: 'spki', format: 'pem' }) as string };
};

describe('decision records', () => {
  it('builds an in-toto Statement v1 with the subject name model@version', () => {
    expect(statement.subject).toEqual([{ name: 'churn@3', digest: { sha256: 'b'.repeat(64) } }]);
    expect(statement.predicate.mergedTreeId).toBe(tree);
    expect(decisionRecordKey(tree)).toBe(`.modelgate/decisions/${tree}.dsse.json`);
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

describe('verify --decisions core', async () => {
  const { verifyDecisions, approversFromRecord, decisionsExitCode } = await import('../src/evidence/verify-decisions.js');
  const k = pems('ed25519');
  const env = signEnvelope(statement, k.priv);
  const records = new Map<string, unknown>([[tree, env]]);
  const load = async (t: string) => records.get(t);
  const v = { model: 'churn', version: 3, stage: 'Production', sha256: 'b'.repeat(64), commit: 'f'.repeat(40), tree };

  it('accepts a version whose record is signed by a trusted key and names its digest and tree', async () => {
    const r = await verifyDecisions([v], load, [k.pub]);
    expect(r[0]).toMatchObject({ ok: true, pullRequest: 7 });
    expect(decisionsExitCode(r)).toBe(0);
  });

  it('refuses a missing record, an untrusted signature, another digest, another tree', async () => {
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
    expect(r.map((x) => x.ok)).toEqual([false, false, false]);
    expect(decisionsExitCode(r)).toBe(1);
    expect((await verifyDecisions([v], load, [other.pub]))[0]!.ok).toBe(false);
    records.set('2'.repeat(40), env); // a record copied under another tree id
    expect((await verifyDecisions([{ ...v, tree: '2'.repeat(40) }], load, [k.pub]))[0]).toMatchObject({ ok: false });
  });

  it('history: approvers from a valid record; a change with no record says so', () => {
    expect(approversFromRecord(env, tree, [k.pub])).toEqual({
      record: 'valid',
      pullRequest: 7,
      approvers: [{ login: 'alice', reviewId: 11, group: 0, team: 'ml-leads' }],
    });
    expect(approversFromRecord(undefined, tree, [k.pub])).toEqual({ record: 'none' });
  });
});
