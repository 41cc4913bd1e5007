// The Action's decision-record writer on the loopback S3 server (Swift + s3api): the record
// lands under <store>/.modelgate/decisions/<merged tree>/<statement sha256>.dsse.json, verifies
// with the trusted key, names the base commit's tree, and a second pass of the same change keeps
// it; a record of another move to the same tree is stored beside it. The scan port reads the same store.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { recordDecision } from '../src/action/decision-record.js';
import { statementDigest, verifyEnvelope } from '../src/evidence/decision.js';
import { readDecisionRecords } from '../src/evidence/records.js';
import { evaluateGate } from '../src/gate/evaluate.js';
import { StoreArtifactScanner } from '../src/gate/store-scanner.js';
import { GitRepo } from '../src/git/repo.js';
import type { Registry } from '../src/manifest/types.js';
import { openStore, type ArtifactStore } from '../src/store/store.js';
import { approve, gateInput, POLICY, promote3, version } from './gate-fixtures.js';
import { git, sha256, tempDir } from './helpers/artifacts.js';
import { pickleFixture } from './helpers/pickles.js';
import { createTestBucket, s3Config, s3TestClient } from './helpers/s3.js';

const cfg = s3Config();
const env = { AWS_ACCESS_KEY_ID: cfg.accessKeyId, AWS_SECRET_ACCESS_KEY: cfg.secretAccessKey, AWS_REGION: cfg.region };

describe('decision records and scans on S3', () => {
  let s3: S3Client;
  let bucket: string;
  let store: ArtifactStore;
  let config: Registry;

  beforeAll(async () => {
    s3 = s3TestClient();
    bucket = await createTestBucket('evidence', s3);
    config = {
      apiVersion: 'modelgate.dev/v1',
      kind: 'Registry',
      storage: { uri: `s3://${bucket}/registry`, endpoint: cfg.endpoint, region: cfg.region, forcePathStyle: true },
    };
    store = await openStore(config.storage, env);
  });
  afterAll(() => {
    store?.close();
    s3?.destroy();
  });

  it('writes the record under .modelgate/decisions/<tree>/<digest>, verifiable with the trusted key; a second pass keeps it; another move to the tree is stored beside it', async () => {
    const repoDir = tempDir('mg-ev-git-');
    git(repoDir, 'init', '-q', '-b', 'main');
    mkdirSync(join(repoDir, 'policies'));
    writeFileSync(join(repoDir, 'policies/promotion.yaml'), stringify(POLICY));
    git(repoDir, 'add', '-A');
    git(repoDir, '-c', 'user.name=m', '-c', 'user.email=m@example.com', 'commit', '-qm', 'policy');
    const baseSha = git(repoDir, 'rev-parse', 'HEAD').trim();
    const baseTree = git(repoDir, 'rev-parse', 'HEAD^{tree}').trim();
    const tree = 'c'.repeat(40);

    const decision = await evaluateGate(
      gateInput(promote3(), {
        reviews: [
          { ...approve('gina'), id: 1 },
          { ...approve('carol'), id: 2 },
        ],
      }),
    );
    expect(decision.decision).toBe('pass');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pub = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const request = {
      decision,
      git: new GitRepo(repoDir),
      prefix: '',
      config: async () => ({ ...config, trust: { keys: [pub] } }),
      repository: 'acme/model-registry',
      pullRequest: 7,
      baseSha,
      headSha: 'b'.repeat(40),
      mergedTree: tree,
      reviews: [],
      env: { ...env, MODELGATE_SIGNING_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string },
    };
    const first = await recordDecision(request);
    expect(first).toMatchObject({
      state: 'written',
      uri: expect.stringMatching(new RegExp(`^s3://${bucket}/registry/\\.modelgate/decisions/${tree}/[0-9a-f]{64}\\.dsse\\.json$`)),
    });
    expect(first).not.toHaveProperty('warning');
    const key = (first as { uri: string }).uri.slice(`s3://${bucket}/`.length);
    const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const envelope = JSON.parse(await body.Body!.transformToString());
    expect(key).toBe(`registry/.modelgate/decisions/${tree}/${statementDigest(envelope)}.dsse.json`);
    const checked = verifyEnvelope(envelope, [pub]);
    expect(checked.ok && checked.statement.predicate).toMatchObject({
      baseSha,
      baseTreeId: baseTree,
      mergedTreeId: tree,
      policyBlobId: git(repoDir, 'rev-parse', 'HEAD:policies/promotion.yaml').trim(),
    });
    expect(checked.ok && checked.statement.subject.map((s) => s.name)).toEqual(['fraud-detector@2', 'fraud-detector@3']);

    const second = await recordDecision({ ...request, now: new Date(Date.now() + 60_000) });
    expect(second).toMatchObject({ state: 'kept', uri: (first as { uri: string }).uri });
    expect(await readDecisionRecords(store, tree)).toEqual({ records: [{ digest: statementDigest(envelope), envelope }], legacy: false });

    // Another pull request reaching the same tree from another base (a rollback): its own record, beside the first.
    writeFileSync(join(repoDir, 'later.txt'), 'x');
    git(repoDir, 'add', '-A');
    git(repoDir, '-c', 'user.name=m', '-c', 'user.email=m@example.com', 'commit', '-qm', 'later');
    const rollback = await recordDecision({ ...request, pullRequest: 9, baseSha: git(repoDir, 'rev-parse', 'HEAD').trim() });
    expect(rollback).toMatchObject({ state: 'written' });
    expect((rollback as { uri: string }).uri).not.toBe((first as { uri: string }).uri);
    const both = await readDecisionRecords(store, tree);
    expect(both.records).toHaveLength(2);
    expect(
      both.records
        .map((r) => (verifyEnvelope(r.envelope, [pub]) as { statement: { predicate: { baseTreeId: string } } }).statement.predicate.baseTreeId)
        .sort(),
    ).toEqual([baseTree, git(repoDir, 'rev-parse', 'HEAD^{tree}').trim()].sort());

    // A record another key signed is never taken for ours, and shadows nothing: it is stored beside them.
    const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const foreign = await recordDecision({ ...request, env: { ...request.env, MODELGATE_SIGNING_KEY: other } });
    expect(foreign).toMatchObject({ state: 'written', warning: expect.stringMatching(/is not in trust\.keys/) });
    expect((await readDecisionRecords(store, tree)).records.map((r) => r.digest)).toEqual(expect.arrayContaining(both.records.map((r) => r.digest)));
  });

  it('the scan port reads pickles from S3 and refuses os.system', async () => {
    const bytes = pickleFixture('system.joblib');
    const key = `registry/fraud-detector/sha256/${sha256(bytes)}/model.joblib`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    const v = version(3, 'Staging', { artifact: { uri: `s3://${bucket}/${key}`, sha256: sha256(bytes), size: bytes.length } });
    const r = await new StoreArtifactScanner(store).scanPickles(v, []);
    expect(r.files).toEqual(['model.joblib']);
    expect(r.findings.map((f) => f.global)).toEqual(['posix.system']);
  });
});
