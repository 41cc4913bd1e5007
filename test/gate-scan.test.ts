// `scan: pickle` in the gate (SPEC v2 §8): the real scanner over a real file:// store, pickles made
// by python3; a fake port for a store that fails.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { evaluateGate } from '../src/gate/evaluate.js';
import { StoreArtifactScanner } from '../src/gate/store-scanner.js';
import type { ArtifactScanner, CheckResult, Decision } from '../src/gate/types.js';
import type { ModelVersion, PromotionPolicy } from '../src/manifest/types.js';
import { openStore, type ArtifactStore } from '../src/store/store.js';
import { approve, baseFiles, gateInput, POLICY, version, vpath } from './gate-fixtures.js';
import { cli, git, makeRegistry, sha256, tempDir } from './helpers/artifacts.js';
import { pickleFixture, type PickleFixture } from './helpers/pickles.js';

const storeRoot = tempDir('mg-scan-store-');
const storeUri = pathToFileURL(storeRoot).href;
const store = await openStore({ uri: storeUri });

/** Puts `bytes` into the store at their content address; returns the manifest's artifact. */
function stored(bytes: Buffer, name = 'model.joblib'): ModelVersion['artifact'] {
  const digest = sha256(bytes);
  const key = `fraud-detector/sha256/${digest}/${name}`;
  mkdirSync(join(storeRoot, key, '..'), { recursive: true });
  writeFileSync(join(storeRoot, key), bytes);
  return { uri: `${storeUri}/${key}`, sha256: digest, size: bytes.length };
}

const scanPolicy = (allowGlobals?: string[]): PromotionPolicy => ({
  ...POLICY,
  ...(allowGlobals ? { scan: { allowGlobals } } : {}),
  rules: POLICY.rules.map((r) => (r.name === 'to-production' ? { ...r, scan: 'pickle' as const } : r)),
});

const v2 = version(2, 'Production', { artifact: stored(Buffer.from('model 2')), metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 } });

/** A promotion of version 3 whose artifact is `fixture`, judged by a policy with `scan: pickle`. */
function promoteWith(
  fixture: PickleFixture | Buffer,
  opts: { allowGlobals?: string[]; scanner?: ArtifactScanner | null; format?: ModelVersion['format']; name?: string } = {},
) {
  const bytes = Buffer.isBuffer(fixture) ? fixture : pickleFixture(fixture);
  const v3 = (stage: ModelVersion['stage']) => version(3, stage, { artifact: stored(bytes, opts.name), format: opts.format ?? 'joblib' });
  const files = baseFiles();
  files.set(
    'modelgate.yaml',
    stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Registry', storage: { uri: storeUri }, github: { repository: 'acme/model-registry' } }),
  );
  files.set('policies/promotion.yaml', stringify(scanPolicy(opts.allowGlobals)));
  files.set(vpath(1), stringify(version(1, 'Archived', { artifact: stored(Buffer.from('model 1')) })));
  files.set(vpath(2), stringify(v2));
  files.set(vpath(3), stringify(v3('Staging')));
  const changes = { [vpath(3)]: stringify(v3('Production')), [vpath(2)]: stringify({ ...v2, stage: 'Archived' }) };
  const input = gateInput(changes, { reviews: [approve('gina'), approve('carol')] }, files);
  if (opts.scanner !== null) input.scanner = opts.scanner ?? new StoreArtifactScanner(store);
  return { input, bytes, files, changes };
}

const scanCheck = (d: Decision): CheckResult =>
  d.transitions
    .find((t) => t.version === 3)!
    .rules.flatMap((r) => r.results)
    .find((c) => c.check === 'scan (pickle)')!;

describe('gate: scan: pickle', () => {
  it('passes a benign sklearn/numpy-like joblib file and names what it scanned', async () => {
    const d = await evaluateGate(promoteWith('benign.joblib').input);
    expect(scanCheck(d)).toMatchObject({ status: 'pass', detail: expect.stringMatching(/1 file\(s\) scanned \(model\.joblib\): every global is allowed/) });
    expect(d.decision).toBe('pass');
  });

  it('fails a joblib file that calls os.system, with file, offset and global', async () => {
    const { input, bytes } = promoteWith('system.joblib');
    const d = await evaluateGate(input);
    expect(d.decision).toBe('fail');
    const c = scanCheck(d);
    expect(c.status).toBe('fail');
    expect(c.findings).toEqual([expect.objectContaining({ file: 'model.joblib', global: 'posix.system' })]);
    const offset = c.findings![0]!.offset;
    // The offset is the opcode that pushes the global: STACK_GLOBAL (protocol 4) right after its name.
    expect(bytes[offset]).toBe(0x93);
    expect(bytes.subarray(0, offset).includes(Buffer.from('system'))).toBe(true);
    expect(c.detail).toBe(`refused: model.joblib at byte ${offset}: posix.system is not an allowed global`);
    expect(d.summary).toContain('posix.system is not an allowed global');
  });

  it("refuses a project's own class until the base policy's scan.allowGlobals lists it", async () => {
    const refused = await evaluateGate(promoteWith('custom.joblib').input);
    expect(scanCheck(refused).findings!.map((f) => f.global)).toEqual(['acme_features.transforms.LogScaler']);
    const allowed = await evaluateGate(promoteWith('custom.joblib', { allowGlobals: ['acme_features.transforms.LogScaler'] }).input);
    expect(scanCheck(allowed).status).toBe('pass');
    expect(allowed.decision).toBe('pass');
  });

  it('reads the allow list from the base: a pull request that adds it for itself is still refused', async () => {
    const { files, changes } = promoteWith('system.joblib');
    const withPolicy = gateInput(
      { ...changes, 'policies/promotion.yaml': stringify(scanPolicy(['posix.system', 'os.*'])) },
      { reviews: [approve('gina'), approve('carol'), approve('pat'), approve('paula')], scanner: new StoreArtifactScanner(store) },
      files,
    );
    const d = await evaluateGate(withPolicy);
    // Everything else about the pull request passes (the platform team approved the policy edit).
    expect(
      d.transitions
        .find((t) => t.file === 'policies/promotion.yaml')!
        .rules.flatMap((r) => r.results)
        .every((c) => c.ok),
    ).toBe(true);
    expect(scanCheck(d).status).toBe('fail');
    expect(d.decision).toBe('fail');
  });

  it('scans the data.pkl member of a torch-style zip and reports the member', async () => {
    const d = await evaluateGate(promoteWith('system.pt', { format: 'pt', name: 'model.pt' }).input);
    expect(scanCheck(d).findings!.map((f) => [f.file, f.global])).toEqual([['model.pt!archive/data.pkl', 'posix.system']]);
  });

  it('fails when the store answers the ranges the scan reads with other bytes than the object it hashes', async () => {
    // the manifest names system.joblib; a lying store serves benign.joblib's bytes to ranged reads
    const benignKey = stored(pickleFixture('benign.joblib')).uri.slice(storeUri.length + 1);
    const lying: ArtifactStore = Object.assign(Object.create(store) as ArtifactStore, {
      readRange: (_key: string, start: number, end: number) => store.readRange!(benignKey, start, end),
    });
    const c = scanCheck(await evaluateGate(promoteWith('system.joblib', { scanner: new StoreArtifactScanner(lying) }).input));
    expect(c.status).toBe('fail');
    expect(c.findings!.map((f) => f.message).join('\n')).toMatch(/answered a ranged read with other bytes/);
  });

  it('fails when the bytes in the store are not the ones the manifest names', async () => {
    const { input, bytes } = promoteWith('benign.joblib');
    const v = await input.head.version('fraud-detector', 3);
    const key = v!.artifact.uri.slice(storeUri.length + 1);
    const swapped = pickleFixture('system.joblib');
    try {
      writeFileSync(join(storeRoot, key), swapped);
      const c = scanCheck(await evaluateGate(input));
      expect(c.status).toBe('fail');
      expect(c.detail).toMatch(/model\.joblib at byte 0: the bytes scanned .* are not the manifest's/);
    } finally {
      writeFileSync(join(storeRoot, key), bytes);
    }
  });

  it('fails (never passes unscanned) when the store fails, times out, or no scanner is given', async () => {
    const broken: ArtifactScanner = { scanPickles: () => Promise.reject(Object.assign(new Error('socket hang up'), { name: 'S3ServiceException' })) };
    const failed = scanCheck(await evaluateGate(promoteWith('benign.joblib', { scanner: broken }).input));
    expect(failed).toMatchObject({ status: 'fail', detail: 'could not be checked: S3ServiceException' });
    const slow: ArtifactScanner = { scanPickles: () => new Promise(() => {}) };
    const { input } = promoteWith('benign.joblib', { scanner: slow });
    input.options.timeoutMs = 30;
    expect(scanCheck(await evaluateGate(input)).detail).toMatch(/timed out/);
    const none = await evaluateGate(promoteWith('benign.joblib', { scanner: null }).input);
    expect(scanCheck(none)).toMatchObject({ status: 'fail', detail: expect.stringMatching(/no artifact scanner/) });
    expect(none.decision).toBe('fail');
  });
});

describe('modelgate check: scan: pickle on a git registry', () => {
  it('exits 1 naming the refused global, and passes a benign artifact', async () => {
    const cliStore = tempDir('mg-scan-cli-store-');
    const reg = makeRegistry({ uri: pathToFileURL(cliStore).href });
    mkdirSync(join(reg, 'policies'), { recursive: true });
    writeFileSync(
      join(reg, 'policies/promotion.yaml'),
      stringify({
        apiVersion: 'modelgate.dev/v1',
        kind: 'PromotionPolicy',
        rules: [
          { name: 'register', to: 'None', scan: 'pickle' },
          { name: 'new-models', paths: ['models/*/model.yaml'] },
        ],
      }),
    );
    git(reg, 'add', '-A');
    git(reg, 'commit', '-qm', 'policy');
    // register scans before the upload and refuses: the rule for None asks for scan: pickle
    const evilFile = join(tempDir(), 'model.joblib');
    writeFileSync(evilFile, pickleFixture('system.joblib'));
    const refused = await cli(reg, ['register', 'fraud', evilFile]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('asks for scan: pickle');
    expect(refused.stderr).toMatch(/model\.joblib at byte \d+: posix\.system is not an allowed global/);
    for (const [branch, fixture] of [
      ['evil', 'system.joblib'],
      ['fine', 'benign.joblib'],
    ] as const) {
      git(reg, 'checkout', '-q', '-b', branch, 'main');
      if (branch === 'evil') {
        // the branch drops the scan from its own policy to register; the gate reads the base's
        writeFileSync(join(reg, 'policies/promotion.yaml'), readFileSync(join(reg, 'policies/promotion.yaml'), 'utf8').replace(/\n\s*scan: pickle/, ''));
        git(reg, 'commit', '-qam', 'no scan');
      }
      const file = join(tempDir(), 'model.joblib');
      writeFileSync(file, pickleFixture(fixture));
      const r = await cli(reg, ['register', 'fraud', file]);
      expect(r.code, r.stderr).toBe(0);
      git(reg, 'checkout', '-q', 'main');
    }
    const evil = await cli(reg, ['check', '--base', 'main', '--head', 'evil', '--no-approvals', '--json']);
    expect(evil.code).toBe(1);
    expect(evil.stdout).toContain('posix.system');
    const scan = (evil.json as Decision).transitions.flatMap((t) => t.rules.flatMap((r) => r.results)).find((c) => c.check === 'scan (pickle)')!;
    expect(scan).toMatchObject({ status: 'fail', findings: [expect.objectContaining({ file: 'model.joblib', global: 'posix.system' })] });
    const fine = await cli(reg, ['check', '--base', 'main', '--head', 'fine', '--no-approvals']);
    expect(fine.code, fine.stdout + fine.stderr).toBe(0);
  });
});
