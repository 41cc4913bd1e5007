import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildDecisionStatement, decisionRecordKey, signEnvelope } from '../src/evidence/decision.js';
import { cli, git, makeRegistry, randomFile, tempDir } from './helpers/artifacts.js';

describe('verify --decisions on a real registry', () => {
  it('fails for a version pushed to Production without a record, passes with a signed one, fails again when it is forged', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
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
    const m = randomFile(tempDir(), 'model.joblib', 10_000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    const manifest = join(reg, 'models/fraud/versions/1.yaml');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(/^stage: None$/m, 'stage: Production'));
    git(reg, 'commit', '-qam', 'direct push to production');

    const none = await cli(reg, ['verify', '--decisions', '--json']);
    expect(none.code).toBe(1);
    expect(none.json.verdicts).toEqual([
      expect.objectContaining({ model: 'fraud', version: 1, ok: false, reason: expect.stringMatching(/no decision record/) }),
    ]);

    const tree = git(reg, 'rev-parse', 'HEAD^{tree}').trim();
    const sha = readFileSync(manifest, 'utf8').match(/sha256: ([0-9a-f]{64})/)![1]!;
    const record = (digest: string, key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string) =>
      signEnvelope(
        buildDecisionStatement({
          subjects: [{ model: 'fraud', version: 1, sha256: digest, from: 'None', to: 'Production' }],
          repository: 'acme/reg',
          pullRequest: 3,
          baseSha: '0'.repeat(40),
          headSha: '1'.repeat(40),
          mergedTreeId: tree,
          policyBlobId: '2'.repeat(40),
          rules: [],
          approvers: [],
          checks: [],
          time: '2026-12-02T09:00:00Z',
        }),
        key,
      );
    const path = join(storeRoot, decisionRecordKey(tree));
    mkdirSync(join(storeRoot, '.modelgate/decisions'), { recursive: true });
    writeFileSync(path, JSON.stringify(record(sha)));
    const ok = await cli(reg, ['verify', '--decisions']);
    expect(ok.code, ok.stderr).toBe(0);

    writeFileSync(path, JSON.stringify(record('f'.repeat(64))));
    expect((await cli(reg, ['verify', '--decisions'])).stderr).toMatch(/record's digest/);
    const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeFileSync(path, JSON.stringify(record(sha, other)));
    const forged = await cli(reg, ['verify', '--decisions']);
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(/no signature verifies with a trusted key/);
  });

  it('history lists the approvers of a pull request stage change from its record, and says when there is none', async () => {
    const storeRoot = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
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
    const m = randomFile(tempDir(), 'model.joblib', 1000);
    expect((await cli(reg, ['register', 'fraud', m.path])).code).toBe(0);
    const manifest = join(reg, 'models/fraud/versions/1.yaml');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(/^stage: None$/m, 'stage: Staging'));
    git(reg, 'commit', '-qam', 'Promote fraud@1 to Staging (#5)');
    const tree = git(reg, 'rev-parse', 'HEAD^{tree}').trim();
    const sha = readFileSync(manifest, 'utf8').match(/sha256: ([0-9a-f]{64})/)![1]!;
    mkdirSync(join(storeRoot, '.modelgate/decisions'), { recursive: true });
    writeFileSync(
      join(storeRoot, decisionRecordKey(tree)),
      JSON.stringify(
        signEnvelope(
          buildDecisionStatement({
            subjects: [{ model: 'fraud', version: 1, sha256: sha, from: 'None', to: 'Staging' }],
            repository: 'acme/reg',
            pullRequest: 5,
            baseSha: '0'.repeat(40),
            headSha: '1'.repeat(40),
            mergedTreeId: tree,
            policyBlobId: '2'.repeat(40),
            rules: [],
            approvers: [{ login: 'alice', reviewId: 42, group: 0, team: 'ml-leads' }],
            checks: [],
            time: '2026-12-02T09:00:00Z',
          }),
          privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        ),
      ),
    );
    const h = await cli(reg, ['history', 'fraud', '--json']);
    const rows = h.json as Array<{ pullRequest: number | null; decision: unknown }>;
    expect(rows.map((r) => r.decision)).toEqual([
      { record: 'not-a-pull-request' },
      { record: 'valid', approvers: [{ login: 'alice', reviewId: 42, group: 0, team: 'ml-leads' }] },
    ]);
    expect((await cli(reg, ['history', 'fraud'])).stdout).toMatch(/#5\s+alice \(group 1, ml-leads\)/);
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(/^stage: Staging$/m, 'stage: Production'));
    git(reg, 'commit', '-qam', 'Promote fraud@1 to Production (#6)');
    expect(((await cli(reg, ['history', 'fraud', '--json'])).json as Array<{ decision: unknown }>)[2]!.decision).toEqual({ record: 'none' });
    expect((await cli(reg, ['verify', '--decisions'])).code).toBe(1);
  });

  it('the gate edge: writeDecisionRecord stores a record readDecisionRecord finds; scanStoredArtifact refuses os.system in a stored pickle', async () => {
    const { openStore } = await import('../src/store/store.js');
    const { writeDecisionRecord, readDecisionRecord } = await import('../src/evidence/records.js');
    const { scanStoredArtifact } = await import('../src/scan/stored-artifact.js');
    const storeRoot = tempDir('mg-store-');
    const store = await openStore({ uri: pathToFileURL(storeRoot).href });
    const tree = '3'.repeat(40);
    const uri = await writeDecisionRecord(store, tree, { payloadType: 'x', payload: '', signatures: [] }, tempDir());
    expect(uri).toMatch(/\.modelgate\/decisions\/3{40}\.dsse\.json$/);
    expect(await readDecisionRecord(store, tree)).toEqual({ payloadType: 'x', payload: '', signatures: [] });
    expect(await readDecisionRecord(store, '4'.repeat(40))).toBeUndefined();

    const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
    const evil = join(tempDir(), 'model.pkl');
    writeFileSync(evil, Buffer.from('\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.', 'latin1'));
    expect((await cli(reg, ['register', 'fraud', evil, '--format', 'pickle'])).code).toBe(0);
    const { openRegistry } = await import('../src/registry/snapshot.js');
    const snap = openRegistry({ cwd: reg }).snapshot;
    const [v] = await snap.versions('fraud');
    const found = await scanStoredArtifact(store, v!);
    expect(found.map((f) => [f.file, f.offset, f.global])).toEqual([['model.pkl', 2, 'posix.system']]);
    store.close();
  });
});
