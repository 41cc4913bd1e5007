/**
 * The Action's decision record (SPEC v2 §8, v3 §14): after a `pass`, sign what the gate decided,
 * the move from the base commit's tree to the merged tree, and store it under its own digest at
 * `<store>/.modelgate/decisions/<merged-tree-id>/<statement-sha256>.dsse.json`. The I/O edge around the pure
 * builders in src/evidence/: the key from the environment, the policy's blob id from git, the
 * store. Returns what happened; it never changes the decision.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode, ModelgateError } from '../errors.js';
import { buildDecisionStatement, keyId, signEnvelope, verifyEnvelope } from '../evidence/decision.js';
import { decisionInput } from '../evidence/decision-input.js';
import { readDecisionRecords, recordUri, writeDecisionRecord } from '../evidence/records.js';
import type { GitRepo } from '../git/repo.js';
import type { ReportContext } from '../gate/report.js';
import type { Decision, Review } from '../gate/types.js';
import type { Registry } from '../manifest/types.js';
import { POLICY_FILE } from '../registry/layout.js';
import { openStore } from '../store/store.js';

const SIGNING_KEY_ENV = 'MODELGATE_SIGNING_KEY';

export type RecordOutcome =
  /** `kept`: an earlier run already stored a record of this pull request's head and move, signed by this key. */
  { state: 'written' | 'kept'; uri: string; keyid: string; warning?: string } | { state: 'no-key'; warning: string } | { state: 'failed'; error: string };

export interface RecordRequest {
  decision: Decision;
  git: GitRepo;
  /** The registry's folder in the repository ('' at the top). */
  prefix: string;
  /** The base's configuration (the store, `trust.keys`), read only when a record is written. */
  config: () => Promise<Registry>;
  repository: string;
  pullRequest: number;
  /** The base commit the gate judged the pull request against: the record names its tree as the move's start. */
  baseSha: string;
  headSha: string;
  mergedTree: string;
  reviews: readonly Review[];
  env: NodeJS.ProcessEnv;
  now?: Date;
}

/** The job summary's "Decision record" section. */
export function describeRecord(r: RecordOutcome): NonNullable<ReportContext['decisionRecord']> {
  switch (r.state) {
    case 'written':
      return { uri: r.uri, message: `Signed decision record written (key ${r.keyid.slice(0, 16)}…).${r.warning ? ` Warning: ${r.warning}.` : ''}` };
    case 'kept':
      return {
        uri: r.uri,
        message: `A signed decision record of this change is already stored (key ${r.keyid.slice(0, 16)}…).${r.warning ? ` Warning: ${r.warning}.` : ''}`,
      };
    case 'no-key':
      return { message: `Warning: ${r.warning}.` };
    default:
      return { message: `Error: ${r.error}.` };
  }
}

/** Signs and stores the record of a passing decision; every failure is returned, never thrown. */
export async function recordDecision(req: RecordRequest): Promise<RecordOutcome> {
  const pem = req.env[SIGNING_KEY_ENV]?.trim();
  if (!pem) {
    return {
      state: 'no-key',
      warning: `no decision record was written: ${SIGNING_KEY_ENV} is not set (give the check job the modelgate environment's secret; see docs/decision-records.md), so verify --decisions will list this change as merged without the gate`,
    };
  }
  try {
    return await signAndStore(req, pem);
  } catch (e) {
    return {
      state: 'failed',
      error: `the decision record was not written: ${e instanceof ModelgateError ? e.message : `unexpected ${(e as Error)?.name ?? 'error'}`}`,
    };
  }
}

async function signAndStore(req: RecordRequest, pem: string): Promise<RecordOutcome> {
  let id: string;
  let publicPem: string;
  try {
    const key = createPrivateKey(pem);
    id = keyId(key);
    publicPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string;
  } catch {
    // Never the parser's message: it may quote the secret.
    throw new ModelgateError('E_SIGNING_KEY', `${SIGNING_KEY_ENV} is not a PEM private key`, ExitCode.usage);
  }
  const policyPath = `${req.prefix ? `${req.prefix}/` : ''}${POLICY_FILE}`;
  const policyBlobId = await req.git.blobIdAt(req.baseSha, policyPath);
  if (!policyBlobId) throw new ModelgateError('E_GIT', `${policyPath} is not a file of the base commit ${req.baseSha.slice(0, 12)}`, ExitCode.content);
  const baseTreeId = await req.git.treeOf(req.baseSha);
  const statement = buildDecisionStatement(
    decisionInput(req.decision, {
      repository: req.repository,
      pullRequest: req.pullRequest,
      baseSha: req.baseSha,
      headSha: req.headSha,
      baseTreeId,
      mergedTreeId: req.mergedTree,
      policyBlobId,
      reviews: req.reviews,
      time: (req.now ?? new Date()).toISOString(),
    }),
  );
  let envelope;
  try {
    envelope = signEnvelope(statement, pem);
  } catch (e) {
    throw new ModelgateError(
      'E_SIGNING_KEY',
      `${SIGNING_KEY_ENV}: ${(e as Error).message.startsWith('unsupported key type') ? (e as Error).message : 'signing failed'}`,
      ExitCode.usage,
    );
  }
  const config = await req.config();
  const trusted = (config.trust?.keys ?? []).some((k) => {
    try {
      return keyId(createPublicKey(k)) === id;
    } catch {
      return false;
    }
  });
  const warning = trusted
    ? undefined
    : `the signing key (keyid ${id.slice(0, 16)}…) is not in trust.keys of modelgate.yaml: verify --decisions and history will refuse its records until its public key is added`;

  const store = await openStore(config.storage, req.env);
  const tmp = await mkdtemp(join(req.env.RUNNER_TEMP || tmpdir(), 'modelgate-record-'));
  const folder = recordUri(store, `.modelgate/decisions/${req.mergedTree}/`);
  try {
    // A re-run (another review on the same head) keeps the record it wrote. Records of other
    // moves to this tree, or by other keys, stay beside it: each is stored under its own digest.
    const existing = await step(`reading ${folder}`, () => readDecisionRecords(store, req.mergedTree));
    for (const r of existing.records) {
      const ours = verifyEnvelope(r.envelope, [publicPem]);
      if (!ours.ok) continue;
      const p = ours.statement.predicate;
      if (p.mergedTreeId === req.mergedTree && p.baseTreeId === baseTreeId && p.pullRequest === req.pullRequest && p.headSha === req.headSha)
        return {
          state: 'kept',
          uri: recordUri(store, `.modelgate/decisions/${req.mergedTree}/${r.digest}.dsse.json`),
          keyid: id,
          ...(warning ? { warning } : {}),
        };
    }
    const key = await step(`writing a record under ${folder}`, () => writeDecisionRecord(store, req.mergedTree, envelope, tmp));
    return { state: 'written', uri: recordUri(store, key), keyid: id, ...(warning ? { warning } : {}) };
  } finally {
    store.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Our errors as they are; a raw one (fs, network) named by the step and its code only, since raw messages may carry request details. */
async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ModelgateError) throw e;
    const code = (e as { code?: unknown })?.code;
    throw new ModelgateError('E_DECISION_RECORD', `${what} failed (${typeof code === 'string' ? code : ((e as Error)?.name ?? 'error')})`, ExitCode.service);
  }
}
