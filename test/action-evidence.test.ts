// SPEC v2 §8 through the built dist/action.js: `scan: pickle` refuses an os.system joblib, a
// pass writes a signed decision record to the file:// store, and after the merge
// `verify --decisions` and `history` read it back; a version committed without the gate is listed.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { DSSE_PAYLOAD_TYPE, preAuthEncoding } from '../src/evidence/decision.js';
import type { EmulatedPull, GitHubEmulator } from '../src/local/github-emulator.js';
import { POLICY, version } from './gate-fixtures.js';
import { createActionRegistry, type ActionRun } from './helpers/action.js';
import { cli, sha256 } from './helpers/artifacts.js';
import { gitAs, pullRequestReviewEvent, type GitHubResponseValidator } from './helpers/github.js';
import { pickleFixture, type PickleFixture } from './helpers/pickles.js';

const git = gitAs('Maria');
const openssl = (cwd: string, ...args: string[]) => execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const registry = await createActionRegistry('modelgate-evidence-');
const { tmp, dev, runner, store, write } = registry;
const keys = join(tmp, 'keys');
let signingKey: string;
let gh: GitHubEmulator & { validator: GitHubResponseValidator };

const quiet = { env: {}, stdout: () => {}, stderr: () => {}, tty: false };

/** A promotion of `n` to Production (the current one archived), with its pins, opened as a pull request and approved by both groups. */
async function openPromotion(branch: string, n: number): Promise<EmulatedPull> {
  git(dev, 'checkout', '-q', '-B', branch, 'origin/main');
  const file = (v: number) => join(dev, `models/fraud-detector/versions/${v}.yaml`);
  writeFileSync(file(2), readFileSync(file(2), 'utf8').replace('stage: Production', 'stage: Archived'));
  writeFileSync(file(n), readFileSync(file(n), 'utf8').replace('stage: Staging', 'stage: Production'));
  expect(await runCli(['--registry', dev, '--quiet', 'sync'], { cwd: dev, ...quiet })).toBe(0);
  git(dev, 'commit', '-qam', `Promote fraud-detector@${n} to Production`);
  const pull = registry.pushPull(branch, { title: `Promote fraud-detector@${n}` });
  gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
  gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
  return pull;
}

const check = (pull: EmulatedPull, env: Record<string, string> = {}): Promise<ActionRun> =>
  registry.check('pull_request_review', pullRequestReviewEvent(pull), { env });

const statusOf = (pull: EmulatedPull) => gh.statuses.filter((s) => s.sha === pull.head.sha && s.context === 'modelgate').at(-1)?.state;

beforeAll(async () => {
  await mkdir(keys);
  // The key as the registry README says to make it.
  openssl(keys, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'signing.pem');
  openssl(keys, 'pkey', '-in', 'signing.pem', '-pubout', '-out', 'trusted.pem');
  signingKey = readFileSync(join(keys, 'signing.pem'), 'utf8');

  await registry.writeConfig({ trust: { keys: [readFileSync(join(keys, 'trusted.pem'), 'utf8')] } });
  const policy = { ...POLICY, rules: POLICY.rules.map((r) => (r.name === 'to-production' ? { ...r, scan: 'pickle' as const } : r)) };
  await write('policies/promotion.yaml', stringify(policy));
  await write('models/fraud-detector/model.yaml', stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector', deploy: {} }));
  const files: Array<[number, 'Archived' | 'Production' | 'Staging', string]> = [
    [1, 'Archived', 'v1'],
    [2, 'Production', 'v2'],
    [3, 'Staging', 'benign.joblib'],
    [4, 'Staging', 'system.joblib'],
  ];
  for (const [n, stage, bytes] of files) {
    const content = bytes.includes('.') ? pickleFixture(bytes as PickleFixture) : Buffer.from(`model ${bytes}`);
    await write(
      `models/fraud-detector/versions/${n}.yaml`,
      stringify(
        version(n, stage, {
          artifact: await registry.storeArtifact('fraud-detector', content),
          metrics: { auc: n === 2 ? 0.97 : 0.96, recall: 0.9, latency_p95_ms: 40 },
        }),
      ),
    );
  }
  expect(await runCli(['--registry', dev, '--quiet', 'sync'], { cwd: dev, ...quiet })).toBe(0);
  // Straight to main, no pull request: versions 2, 3 and 4 got their stages without the gate.
  registry.publish('registry');
  gh = await registry.startGitHub({ users: ['maria', 'gina', 'carol'], teams: { 'ml-governance': ['gina'] } });
}, 180_000);

afterAll(() => registry.close());

describe('dist/action.js check: scan: pickle and decision records', () => {
  it('fails a promotion whose joblib calls os.system, naming file, offset and global; no record is written', async () => {
    const pull = await openPromotion('promote-v4', 4);
    const r = await check(pull, { MODELGATE_SIGNING_KEY: signingKey });
    expect(r.outputs.decision).toBe('fail');
    expect(r.code).toBe(1);
    expect(statusOf(pull)).toBe('failure');
    const offset = pickleFixture('system.joblib').indexOf(0x93, pickleFixture('system.joblib').indexOf(Buffer.from('system')));
    expect(r.summary).toContain(`refused&#58; model\\.joblib at byte ${offset}&#58; posix\\.system is not an allowed global`);
    const report = JSON.parse(await readFile(r.outputs.report!, 'utf8'));
    const scan = report.transitions.flatMap((t: any) => t.rules.flatMap((x: any) => x.results)).find((c: any) => c.check === 'scan (pickle)');
    expect(scan.findings).toEqual([{ file: 'model.joblib', offset, global: 'posix.system', message: expect.any(String) }]);
    expect(r.outputs['decision-record']).toBe('');
    expect(existsSync(join(store, '.modelgate'))).toBe(false);
  });

  let passed: EmulatedPull;
  let recordUri: string;

  it('passes without a signing key, saying loudly that no record was written', async () => {
    passed = await openPromotion('promote-v3', 3);
    const r = await check(passed);
    expect(r.outputs.decision).toBe('pass');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/::warning::modelgate: no decision record was written: MODELGATE_SIGNING_KEY is not set/);
    expect(r.summary).toContain('### Decision record');
    expect(r.summary).toMatch(/Warning&#58; no decision record was written/);
    expect(r.outputs['decision-record']).toBe('');
  });

  it('with the key, writes the signed record of the merged tree, names it in the summary and the output; a re-run keeps it', async () => {
    const r = await check(passed, { MODELGATE_SIGNING_KEY: signingKey });
    expect(r.stdout).not.toMatch(/::(error|warning)/);
    expect(r.outputs.decision).toBe('pass');
    expect(statusOf(passed)).toBe('success');
    const mergedTree = git(runner, 'merge-tree', '--write-tree', 'HEAD', passed.head.sha);
    recordUri = r.outputs['decision-record']!;
    // Stored under the merged tree and the statement's own digest: no record shadows another.
    const digest = /\/([0-9a-f]{64})\.dsse\.json$/.exec(recordUri)?.[1];
    expect(recordUri).toBe(`${pathToFileURL(store).href}/.modelgate/decisions/${mergedTree}/${digest}.dsse.json`);
    expect(r.summary).toContain(recordUri);
    expect(r.summary).toMatch(/Signed decision record written/);

    const envelope = JSON.parse(readFileSync(fileURLToPath(recordUri), 'utf8'));
    expect(sha256(Buffer.from(envelope.payload, 'base64'))).toBe(digest);
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
    const v3 = readFileSync(join(dev, 'models/fraud-detector/versions/3.yaml'), 'utf8').match(/sha256: ([0-9a-f]{64})/)![1];
    expect(statement.subject).toEqual(expect.arrayContaining([{ name: 'fraud-detector@3', digest: { sha256: v3 } }]));
    expect(statement.subject.map((s: any) => s.name).sort()).toEqual(['fraud-detector@2', 'fraud-detector@3']);
    const p = statement.predicate;
    expect(p).toMatchObject({
      repository: 'acme/model-registry',
      pullRequest: passed.number,
      headSha: passed.head.sha,
      baseSha: git(runner, 'rev-parse', 'HEAD'),
      baseTreeId: git(runner, 'rev-parse', 'HEAD^{tree}'),
      mergedTreeId: mergedTree,
    });
    expect(p.policyBlobId).toBe(git(runner, 'rev-parse', 'HEAD:policies/promotion.yaml'));
    const reviewId = (login: string) => passed.reviews.filter((x) => x.user === login).at(-1)!.id;
    expect(p.approvers).toEqual([
      { login: 'gina', reviewId: reviewId('gina'), rule: 'to-production', group: 0, team: 'ml-governance' },
      { login: 'carol', reviewId: reviewId('carol'), rule: 'to-production', group: 1 },
    ]);
    expect(p.rules).toEqual(expect.arrayContaining([{ name: 'to-production', passed: true, details: { change: 'fraud-detector@3 Staging → Production' } }]));
    const kinds = p.checks.map((c: any) => c.kind);
    for (const k of ['scan (pickle)', 'artifact (full)', 'metric auc ≥ 0.95', 'champion auc (max regression 0.02)', 'coverage', 'validate'])
      expect(kinds).toContain(k);
    expect(p.checks.find((c: any) => c.kind === 'scan (pickle)')).toMatchObject({ passed: true, details: { findings: [] } });
    expect(Date.parse(p.time)).toBeGreaterThan(Date.now() - 600_000);

    // A standard tool verifies the signature over DSSE's PAE with the trusted public key.
    writeFileSync(join(keys, 'pae.bin'), preAuthEncoding(DSSE_PAYLOAD_TYPE, Buffer.from(envelope.payload, 'base64')));
    writeFileSync(join(keys, 'sig.bin'), Buffer.from(envelope.signatures[0].sig, 'base64'));
    expect(openssl(keys, 'dgst', '-sha256', '-verify', 'trusted.pem', '-signature', 'sig.bin', 'pae.bin')).toMatch(/Verified OK/);

    const again = await check(passed, { MODELGATE_SIGNING_KEY: signingKey });
    expect(again.outputs.decision).toBe('pass');
    expect(again.code).toBe(0);
    expect(again.outputs['decision-record']).toBe(recordUri);
    expect(again.summary).toMatch(/already stored/);
    expect(JSON.parse(readFileSync(fileURLToPath(recordUri), 'utf8'))).toEqual(envelope);
  });

  it('after the merge, verify --decisions finds the record valid and lists the versions that reached their stage without the gate; history shows the approvers', async () => {
    git(dev, 'checkout', '-q', 'main');
    git(dev, 'pull', '-q', '--ff-only');
    git(dev, 'merge', '-q', '--no-ff', '-m', `Merge pull request #${passed.number} from acme/promote-v3`, 'origin/promote-v3');
    git(dev, 'push', '-q', 'origin', 'main');
    expect(recordUri).toContain(git(dev, 'rev-parse', 'HEAD^{tree}'));

    const v = await cli(dev, ['verify', '--decisions', '--json']);
    expect(v.code).toBe(1);
    const verdicts = (v.json as { verdicts: Array<{ model: string; version: number; ok: boolean; reason?: string }> }).verdicts;
    expect(verdicts.find((x) => x.version === 3)).toMatchObject({ ok: true, pullRequest: passed.number });
    expect(verdicts.find((x) => x.version === 4)).toMatchObject({ ok: false, reason: expect.stringMatching(/no decision record .*merged without the gate/) });
    const human = await cli(dev, ['verify', '--decisions']);
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/fraud-detector@4 \(Staging, [0-9a-f]{10}\): no decision record/);
    expect(human.stderr).not.toMatch(/fraud-detector@3/);

    const h = await cli(dev, ['history', 'fraud-detector', '--json']);
    const rows = h.json as Array<{ version: number; to: string; pullRequest: number | null; decision: any }>;
    const promoted = rows.find((x) => x.version === 3 && x.to === 'Production')!;
    expect(promoted.pullRequest).toBe(passed.number);
    expect(promoted.decision).toMatchObject({
      record: 'valid',
      approvers: [expect.objectContaining({ login: 'gina', team: 'ml-governance' }), expect.objectContaining({ login: 'carol' })],
    });
    expect(rows.find((x) => x.version === 4)!.decision).toEqual({ record: 'not-a-pull-request' });
    expect((await cli(dev, ['history', 'fraud-detector'])).stdout).toMatch(
      new RegExp(`#${passed.number}\\s+gina \\(to-production, group 1, ml-governance\\), carol \\(to-production, group 2\\)`),
    );
  });

  it('keeps the status a pass but fails the job when the record cannot be written (a key of the wrong type)', async () => {
    git(runner, 'pull', '-q', '--ff-only');
    gh.addTeam('acme', 'oncall', ['gina']);
    // Roll back to 2 (it was in Production before): another passing change on the new main.
    git(dev, 'checkout', '-q', '-B', 'rollback', 'origin/main');
    const file = (n: number) => join(dev, `models/fraud-detector/versions/${n}.yaml`);
    writeFileSync(file(3), readFileSync(file(3), 'utf8').replace('stage: Production', 'stage: Archived'));
    writeFileSync(file(2), readFileSync(file(2), 'utf8').replace('stage: Archived', 'stage: Production'));
    expect(await runCli(['--registry', dev, '--quiet', 'sync'], { cwd: dev, ...quiet })).toBe(0);
    git(dev, 'commit', '-qam', 'Roll back to fraud-detector@2');
    const pull = registry.pushPull('rollback', { title: 'Roll back' });
    gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
    openssl(keys, 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'rsa.pem');
    const r = await check(pull, { MODELGATE_SIGNING_KEY: readFileSync(join(keys, 'rsa.pem'), 'utf8') });
    expect(r.outputs.decision).toBe('pass');
    expect(statusOf(pull)).toBe('success');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /::error::modelgate: the pull request passed, but the decision record was not written: MODELGATE_SIGNING_KEY: unsupported key type rsa/,
    );
    expect(r.stdout).not.toContain('PRIVATE KEY');
    expect(r.summary).toMatch(/Error&#58; the decision record was not written/);
    expect(r.outputs['decision-record']).toBe('');

    // The right key, but the store refuses the write (a file where the tree's folder goes): the same, with the store's reason.
    const tree = git(runner, 'merge-tree', '--write-tree', 'HEAD', pull.head.sha);
    await writeFile(join(store, '.modelgate/decisions', tree), '');
    const blocked = await check(pull, { MODELGATE_SIGNING_KEY: signingKey });
    expect(blocked.outputs.decision).toBe('pass');
    expect(statusOf(pull)).toBe('success');
    expect(blocked.code).toBe(1);
    expect(blocked.stdout).toMatch(
      /::error::modelgate: the pull request passed, but the decision record was not written: writing a record under file:\/\/\S+\/\.modelgate\/decisions\/[0-9a-f]{40}\/ failed \(EEXIST\)/,
    );
    expect(blocked.outputs['decision-record']).toBe('');
    expect(gh.validator.violations).toEqual([]);
  });
});
