/**
 * Decision records (SPEC v2 §8): an in-toto Statement v1 in a DSSE envelope, built with
 * node:crypto over DSSE's pre-authentication encoding. `@sigstore/core` (4.0.1) exports
 * `dsse.preAuthEncoding`, but its signing flows (in `sigstore`) are built around Fulcio/Rekor
 * keyless signing, while a registry signs with one long-lived PEM key (ECDSA P-256 or Ed25519);
 * pulling in the package for a four-field framing function was not worth a new dependency. The
 * independent check is `openssl` over the same PAE bytes (test/evidence-decision.test.ts,
 * docs/decision-records.md). Pure: no fs, no network.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const DECISION_PREDICATE = 'https://modelgate.dev/decision/v1';
export const DSSE_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface DecisionSubject {
  name: string;
  digest: { sha256: string };
}
/** A counted approver: the review that counted, the rule and the group (0-based, in the rule's order) it filled, the team that made it eligible. */
export interface DecisionApprover {
  login: string;
  reviewId?: number;
  rule?: string;
  group: number;
  team?: string;
}
export interface DecisionInput {
  /** Each artifact whose stage the pull request changes, and each alias it sets or moves (`alias`: subject `<model>@<alias>`). */
  subjects: Array<{ model: string; version: number; sha256: string; from?: string; to?: string; alias?: string }>;
  repository: string;
  pullRequest: number;
  baseSha: string;
  headSha: string;
  /** Tree of `baseSha`: with `mergedTreeId`, the transition the record proves (SPEC v3 §14). */
  baseTreeId: string;
  mergedTreeId: string;
  policyBlobId: string;
  rules: Array<{ name: string; passed: boolean; details?: unknown }>;
  approvers: DecisionApprover[];
  checks: Array<{ kind: string; passed: boolean; details?: unknown }>;
  /** ISO time of the decision; injected so the core stays pure. */
  time: string;
}

export interface DecisionStatement {
  _type: typeof STATEMENT_TYPE;
  subject: DecisionSubject[];
  predicateType: typeof DECISION_PREDICATE;
  predicate: Omit<DecisionInput, 'subjects'> & { changes: DecisionInput['subjects'] };
}

export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: Array<{ keyid: string; sig: string }>;
}

/** The in-toto Statement v1 a passing gate decision records. */
export function buildDecisionStatement(input: DecisionInput): DecisionStatement {
  const { subjects, ...rest } = input;
  return {
    _type: STATEMENT_TYPE,
    subject: subjects.map((s) => ({ name: `${s.model}@${s.alias ?? s.version}`, digest: { sha256: s.sha256 } })),
    predicateType: DECISION_PREDICATE,
    predicate: { ...rest, changes: subjects },
  };
}

/** DSSE v1 pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const t = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), payload]);
}

/** keyid: sha256 of the public key's DER (SPKI), hex. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

function algorithm(key: KeyObject): string | null {
  if (key.asymmetricKeyType === 'ed25519') return null;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'sha256';
  throw new Error(`unsupported key type ${key.asymmetricKeyType}: use ECDSA P-256 or Ed25519`);
}

/** Signs a statement (MODELGATE_SIGNING_KEY's PEM) into a DSSE envelope. ECDSA signatures are DER, as openssl writes them. */
export function signEnvelope(statement: DecisionStatement, privateKeyPem: string): DsseEnvelope {
  const key = createPrivateKey(privateKeyPem);
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = sign(algorithm(key), preAuthEncoding(DSSE_PAYLOAD_TYPE, payload), key);
  return { payloadType: DSSE_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: [{ keyid: keyId(key), sig: sig.toString('base64') }] };
}

export type EnvelopeVerification = { ok: true; statement: DecisionStatement; keyid: string } | { ok: false; reason: string };

/** Checks an envelope against the trusted PEM public keys (`trust.keys`); never throws on bad input. */
export function verifyEnvelope(envelope: unknown, trustedKeys: readonly string[]): EnvelopeVerification {
  const e = envelope as Partial<DsseEnvelope> | null;
  if (!e || typeof e.payload !== 'string' || e.payloadType !== DSSE_PAYLOAD_TYPE || !Array.isArray(e.signatures))
    return { ok: false, reason: 'not a DSSE envelope of an in-toto statement' };
  const payload = Buffer.from(e.payload, 'base64');
  const pae = preAuthEncoding(e.payloadType, payload);
  for (const pem of trustedKeys) {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      continue;
    }
    for (const s of e.signatures) {
      if (typeof s?.sig !== 'string') continue;
      try {
        if (!verify(algorithm(key), pae, key, Buffer.from(s.sig, 'base64'))) continue;
      } catch {
        continue;
      }
      let statement: DecisionStatement;
      try {
        statement = JSON.parse(payload.toString('utf8')) as DecisionStatement;
      } catch {
        return { ok: false, reason: 'signed payload is not JSON' };
      }
      if (statement._type !== STATEMENT_TYPE || statement.predicateType !== DECISION_PREDICATE)
        return { ok: false, reason: 'signed payload is not a modelgate decision statement' };
      return { ok: true, statement, keyid: keyId(key) };
    }
  }
  return { ok: false, reason: 'no signature verifies with a trusted key' };
}

const TREE_ID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const DIGEST = /^[0-9a-f]{64}$/;

/** The folder of a merged tree's records inside the artifact store (a key prefix relative to the store root). */
export function decisionRecordPrefix(mergedTreeId: string): string {
  if (!TREE_ID.test(mergedTreeId)) throw new Error(`not a git tree id: ${mergedTreeId}`);
  return `.modelgate/decisions/${mergedTreeId}/`;
}

/**
 * Where a record lives: under its merged tree and its own digest (the sha256 of the statement,
 * the envelope's payload bytes), so that no record ever overwrites or shadows another (SPEC v3 §14).
 */
export function decisionRecordKey(mergedTreeId: string, statementSha256: string): string {
  if (!DIGEST.test(statementSha256)) throw new Error(`not a sha256: ${statementSha256}`);
  return `${decisionRecordPrefix(mergedTreeId)}${statementSha256}.dsse.json`;
}

/**
 * Where v2 stored the one record of a merged tree. Such a record names no base tree, so it proves
 * no transition: it is only looked for to say why a change has no proof.
 */
export function legacyDecisionRecordKey(mergedTreeId: string): string {
  if (!TREE_ID.test(mergedTreeId)) throw new Error(`not a git tree id: ${mergedTreeId}`);
  return `.modelgate/decisions/${mergedTreeId}.dsse.json`;
}

/** sha256 (hex) of an envelope's payload: the statement's digest that names its key; undefined for something that is not an envelope. */
export function statementDigest(envelope: unknown): string | undefined {
  const payload = (envelope as Partial<DsseEnvelope> | null)?.payload;
  if (typeof payload !== 'string') return undefined;
  return createHash('sha256').update(Buffer.from(payload, 'base64')).digest('hex');
}
