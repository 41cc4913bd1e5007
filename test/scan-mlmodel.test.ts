// The scan of an MLflow model folder (SPEC v3 §14): the files an MLmodel names are scanned as
// that flavor loads them. Models written by real MLflow (.venv, scripts/python-env.sh; the
// generator is test/fixtures/mlflow-scan/models.py): each malicious one is first shown to run its
// marker under mlflow.pyfunc.load_model, then refused by `modelgate scan`, by register and by the
// gate's store scanner; the benign ones pass. Hand-written MLmodels cover the other rules.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { StoreArtifactScanner } from '../src/gate/store-scanner.js';
import type { ModelVersion } from '../src/manifest/types.js';
import { scanLocalPath } from '../src/scan/local.js';
import { openStore } from '../src/store/store.js';
import { POLICY, version } from './gate-fixtures.js';
import { createActionRegistry, type ActionRegistry } from './helpers/action.js';
import { cli, git, tempDir } from './helpers/artifacts.js';
import { pullRequestReviewEvent } from './helpers/github.js';

const ROOT = resolve(import.meta.dirname, '..');
const PYTHON = join(ROOT, '.venv/bin/python');
const MODELS = join(ROOT, 'test/fixtures/mlflow-scan/models.py');
const out = tempDir('mg-mlmodel-');

/** The MLmodel line (1-based) of the first line of `folder`/MLmodel that starts with `key:`. */
function lineOf(folder: string, key: string): number {
  const lines = readFileSync(join(folder, 'MLmodel'), 'utf8').split('\n');
  return lines.findIndex((l) => l.trimStart().startsWith(`${key}:`)) + 1;
}

/** Loads `folder` with mlflow.pyfunc.load_model in a fresh Python; whether the marker was written. */
function runsOnLoad(folder: string): boolean {
  const marker = join(tempDir('mg-marker-'), 'ran');
  execFileSync(PYTHON, [MODELS, 'load', folder], { cwd: tempDir('mg-cwd-'), env: { ...process.env, MG_MARKER: marker }, stdio: 'pipe', timeout: 300_000 });
  return existsSync(marker);
}

beforeAll(() => {
  // The pinned MLflow and scikit-learn in .venv (idempotent; CI installs it before npm test).
  execFileSync('bash', [join(ROOT, 'scripts/python-env.sh')], { stdio: 'inherit' });
  execFileSync(PYTHON, [MODELS, 'generate', out], { stdio: 'pipe', timeout: 600_000 });
}, 900_000);

describe('models written by real MLflow', () => {
  it('passes sklearn models saved with pickle and cloudpickle, reading model.pkl as the pickle MLflow unpickles', async () => {
    for (const fmt of ['pickle', 'cloudpickle']) {
      const r = await scanLocalPath(join(out, `sklearn-${fmt}`));
      expect(r.findings, fmt).toEqual([]);
      expect(r.scanned).toContain('model.pkl');
    }
  });

  it('passes a pyfunc python_model of a class the policy allows, and names that class when it does not', async () => {
    const folder = join(out, 'pyfunc-class');
    expect((await scanLocalPath(folder, { allowGlobals: ['mg_models.Echo'] })).findings).toEqual([]);
    const refused = await scanLocalPath(folder);
    expect(refused.findings.map((f) => [f.file, f.global])).toEqual([['python_model.pkl', 'mg_models.Echo']]);
  });

  it('a custom loader_module from the code directory runs on load, and is refused naming both MLmodel lines', { timeout: 300_000 }, async () => {
    const folder = join(out, 'evil-loader');
    expect(runsOnLoad(folder)).toBe(true);
    const { findings } = await scanLocalPath(folder);
    expect(findings.map((f) => [f.file, f.line, f.kind])).toEqual([
      ['MLmodel', lineOf(folder, 'code'), 'mlmodel'],
      ['MLmodel', lineOf(folder, 'loader_module'), 'mlmodel'],
    ]);
    // allowing the code directory's module does not make an unknown loader_module acceptable
    const allowed = await scanLocalPath(folder, { allowGlobals: ['mg_loader.*'] });
    expect(allowed.findings.map((f) => f.line)).toEqual([lineOf(folder, 'loader_module')]);
  });

  it('a model from code runs its file on load, and is refused', { timeout: 300_000 }, async () => {
    const folder = join(out, 'evil-from-code');
    expect(runsOnLoad(folder)).toBe(true);
    const { findings } = await scanLocalPath(folder);
    expect(findings.map((f) => [f.file, f.line, f.kind])).toEqual([['MLmodel', lineOf(folder, 'model_code_path'), 'mlmodel']]);
  });

  it('a python_model pickle that calls os.system runs on load, and is refused with file, offset and global', { timeout: 300_000 }, async () => {
    const folder = join(out, 'evil-python-model');
    expect(runsOnLoad(folder)).toBe(true);
    const { findings } = await scanLocalPath(folder);
    expect(findings.map((f) => [f.file, f.global])).toEqual([['python_model.pkl', 'posix.system']]);
    expect(findings[0]!.offset).toBeGreaterThan(0);
  });

  it('a pickled_model outside the folder runs on load, and is refused although no file of the folder is malicious', { timeout: 300_000 }, async () => {
    const folder = join(out, 'evil-escape/model');
    expect(runsOnLoad(folder)).toBe(true);
    const { findings } = await scanLocalPath(folder);
    expect(findings.map((f) => [f.file, f.line])).toEqual([
      ['MLmodel', lineOf(folder, 'model_path')],
      ['MLmodel', lineOf(folder, 'pickled_model')],
    ]);
  });

  it('`modelgate scan` prints MLmodel:line and exits 1; --json carries the line', async () => {
    const folder = join(out, 'evil-from-code');
    const r = await cli(out, ['scan', folder]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`MLmodel:${lineOf(folder, 'model_code_path')}: `);
    const j = await cli(out, ['--json', 'scan', folder]);
    expect((j.json as { findings: Array<{ file: string; line?: number }> }).findings).toEqual([
      expect.objectContaining({ file: 'MLmodel', line: lineOf(folder, 'model_code_path') }),
    ]);
    expect((await cli(out, ['scan', join(out, 'sklearn-pickle')])).code).toBe(0);
  });

  it('register refuses the malicious folders for Staging (scan: pickle) before any byte moves; the gate scanner refuses them in the store', async () => {
    const dir = tempDir('mg-mlmodel-reg-');
    const storeDir = `${dir}-store`;
    expect((await cli(tempDir('mg-cwd-'), ['init', dir, '--store', pathToFileURL(storeDir).href])).code).toBe(0);
    for (const name of ['fraud', 'clean']) {
      mkdirSync(join(dir, `models/${name}`), { recursive: true });
      writeFileSync(join(dir, `models/${name}/model.yaml`), `apiVersion: modelgate.dev/v1\nkind: Model\nname: ${name}\nowners: [maria]\ndeploy: {}\n`);
    }
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', 'models');
    for (const m of ['evil-loader', 'evil-from-code', 'evil-python-model', 'evil-escape/model']) {
      const r = await cli(dir, ['--quiet', '--json', 'register', 'fraud', join(out, m), '--format', 'mlflow', '--stage', 'Staging']);
      expect(r.code, m).toBe(1);
      expect((r.json as { error: { code: string } }).error.code, m).toBe('E_PICKLE_SCAN');
    }
    expect(existsSync(join(storeDir, 'fraud'))).toBe(false);
    // Registered in None (no rule asks for the scan there): the gate's scanner reads the store.
    const store = await openStore({ uri: pathToFileURL(storeDir).href });
    const scanner = new StoreArtifactScanner(store);
    const r = await cli(dir, ['--quiet', 'register', 'fraud', join(out, 'evil-loader'), '--format', 'mlflow']);
    expect(r.code, r.stderr).toBe(0);
    const evil = parse(readFileSync(join(dir, 'models/fraud/versions/1.yaml'), 'utf8')) as ModelVersion;
    const refused = await scanner.scanPickles(evil, []);
    expect(refused.findings.map((f) => [f.file, f.line])).toEqual([
      ['MLmodel', lineOf(join(out, 'evil-loader'), 'code')],
      ['MLmodel', lineOf(join(out, 'evil-loader'), 'loader_module')],
    ]);
    expect((await cli(dir, ['--quiet', 'register', 'clean', join(out, 'sklearn-cloudpickle'), '--stage', 'Staging'])).code).toBe(0);
    const clean = parse(readFileSync(join(dir, 'models/clean/versions/1.yaml'), 'utf8')) as ModelVersion;
    expect((await scanner.scanPickles(clean, [])).findings).toEqual([]);
    store.close();
  });
});

describe('hand-written MLmodels', () => {
  /** A model folder: MLmodel's text and other files (text or bytes). */
  function folder(mlmodel: string, files: Record<string, string | Buffer> = {}): string {
    const dir = tempDir('mg-mlmodel-hand-');
    writeFileSync(join(dir, 'MLmodel'), mlmodel);
    for (const [p, bytes] of Object.entries(files)) {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), bytes);
    }
    return dir;
  }
  const evilPickle = () => readFileSync(join(out, 'evil-python-model/python_model.pkl'));
  const sklearn = (pickled: string, format = 'cloudpickle') =>
    `flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: ${pickled}\n  sklearn:\n    pickled_model: ${pickled}\n    serialization_format: ${format}\n`;
  const findings = async (dir: string, allowGlobals: string[] = []) => (await scanLocalPath(dir, { allowGlobals })).findings;

  it('refuses an absolute path, a path through a symbolic link and a file the folder lacks, naming the line', async () => {
    expect((await findings(folder(sklearn('/tmp/model.pkl')))).map((f) => f.line)).toEqual([4, 6]);
    expect((await findings(folder(sklearn('model.pkl')))).map((f) => [f.line, f.kind])).toEqual([
      [4, 'mlmodel'],
      [6, 'mlmodel'],
    ]);
    const linked = folder(sklearn('data/model.pkl'));
    writeFileSync(join(`${linked}-outside.pkl`), evilPickle());
    mkdirSync(join(linked, 'data'));
    symlinkSync(`${linked}-outside.pkl`, join(linked, 'data/model.pkl'));
    expect((await findings(linked)).map((f) => f.message)).toEqual([expect.stringContaining('symbolic link'), expect.stringContaining('symbolic link')]);
  });

  it('scans pickled_model as a pickle whatever its name and bytes: a pickle named .onnx is read, bytes that are no pickle are refused', async () => {
    const named = await findings(folder(sklearn('weights.onnx'), { 'weights.onnx': evilPickle() }));
    expect(named.map((f) => f.global)).toContain('posix.system');
    const garbage = await findings(folder(sklearn('model.pkl'), { 'model.pkl': Buffer.from('\x00\x01 not a pickle') }));
    expect(garbage.map((f) => [f.file, f.kind])).toEqual([['model.pkl', 'unscannable']]);
    expect(await findings(folder(sklearn('model.pkl', 'pickle'), { 'model.pkl': 'I1\n.' }))).toEqual([]);
  });

  it('reads a compressed python_model as MLflow decompresses it; compressed bytes it is not told about are refused', async () => {
    const pyfunc = (compression?: string) =>
      `flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n    python_model: python_model.pkl\n${compression ? `    python_model_compression: ${compression}\n` : ''}`;
    const gz = gzipSync(evilPickle());
    expect((await findings(folder(pyfunc('gzip'), { 'python_model.pkl': gz }))).map((f) => f.global)).toContain('posix.system');
    const benign = gzipSync(Buffer.from('I1\n.'));
    expect(await findings(folder(pyfunc('gzip'), { 'python_model.pkl': benign }))).toEqual([]);
    // without python_model_compression cloudpickle reads the gzip bytes themselves: no pickle, refused
    expect((await findings(folder(pyfunc(), { 'python_model.pkl': benign }))).map((f) => f.kind)).toContain('unscannable');
  });

  it('refuses an onnx flavor whose file is a pickle', async () => {
    const f = await findings(folder('flavors:\n  onnx:\n    data: model.onnx\n', { 'model.onnx': Buffer.from('\x80\x04K\x01.', 'latin1') }));
    expect(f.map((x) => [x.file, x.kind])).toEqual([['model.onnx', 'format']]);
  });

  it("refuses a pytorch model whose pickle module is not MLflow's", async () => {
    const torch = 'flavors:\n  pytorch:\n    model_data: data\n  python_function:\n    loader_module: mlflow.pytorch\n    data: data\n';
    const model = { 'data/model.pth': Buffer.from('\x80\x04K\x01.', 'latin1') };
    expect(await findings(folder(torch, { ...model, 'data/pickle_module_info.txt': 'mlflow.pytorch.pickle_module' }))).toEqual([]);
    const evil = await findings(folder(torch, { ...model, 'data/pickle_module_info.txt': 'mg_unpickler' }));
    expect(evil.map((f) => [f.file, f.line])).toEqual([['data/pickle_module_info.txt', 1]]);
    const named = await findings(
      folder(`${torch}    pickle_module_name: mg_unpickler\n`, { ...model, 'data/pickle_module_info.txt': 'mlflow.pytorch.pickle_module' }),
    );
    expect(named.map((f) => f.line)).toEqual([7]);
  });

  it('checks skops trusted types and boosting model classes against what the loaders import', async () => {
    const skops = `flavors:\n  sklearn:\n    pickled_model: model.skops\n    serialization_format: skops\n    skops_trusted_types:\n    - sklearn.linear_model._logistic.LogisticRegression\n    - posix.system\n`;
    const zip = Buffer.from('504b0506000000000000000000000000000000000000', 'hex');
    expect((await findings(folder(skops, { 'model.skops': zip }))).map((f) => f.line)).toEqual([7]);
    expect((await findings(folder(skops, { 'model.skops': 'I1\n.' }))).map((f) => f.kind)).toEqual(['mlmodel', 'format']);
    const xgb = (cls: string) => folder(`flavors:\n  xgboost:\n    data: model.xgb\n    model_class: ${cls}\n`, { 'model.xgb': '{}' });
    expect(await findings(xgb('xgboost.sklearn.XGBClassifier'))).toEqual([]);
    expect((await findings(xgb('os.system'))).map((f) => f.line)).toEqual([4]);
  });

  it('allows a code directory whose modules the policy allows, and refuses an MLmodel that is not plain YAML', async () => {
    const coded = folder('flavors:\n  sklearn:\n    code: code\n    pickled_model: m.pkl\n', {
      'm.pkl': 'I1\n.',
      'code/helpers.py': '',
      'code/pkg/__init__.py': '',
    });
    expect((await findings(coded)).map((f) => f.line)).toEqual([3]);
    expect(await findings(coded, ['helpers.*', 'pkg.*'])).toEqual([]);
    const tagged = await findings(folder('flavors: !!python/object:os.system {}\n'));
    expect(tagged.map((f) => [f.file, f.line, f.kind])).toEqual([['MLmodel', 1, 'mlmodel']]);
  });

  it('scans an MLmodel in a subfolder relative to that folder', async () => {
    const dir = tempDir('mg-mlmodel-nested-');
    cpSync(join(out, 'evil-escape'), dir, { recursive: true });
    const f = await findings(dir);
    expect(f.map((x) => x.file)).toEqual(['model/MLmodel', 'model/MLmodel', 'evil.pkl']);
  });
});

describe('through dist/action.js', () => {
  let registry: ActionRegistry | undefined;

  afterAll(async () => {
    expect(registry?.gh?.validator.violations ?? []).toEqual([]);
    await registry?.close();
  });

  it(
    'fails the promotion of an MLflow folder whose MLmodel loads a module of its own code directory, naming the MLmodel line',
    { timeout: 300_000 },
    async () => {
      registry = await createActionRegistry('mg-mlmodel-action-');
      const { dev, storeUri, write } = registry;
      // The folder's bytes in the store as register puts them (a throwaway registry on the same store).
      const staging = tempDir('mg-mlmodel-upload-');
      expect((await cli(tempDir('mg-cwd-'), ['init', staging, '--store', storeUri])).code).toBe(0);
      const model = (name: string) => `apiVersion: modelgate.dev/v1\nkind: Model\nname: ${name}\nowners: [maria]\ndeploy: {}\n`;
      mkdirSync(join(staging, 'models/fraud-detector'), { recursive: true });
      writeFileSync(join(staging, 'models/fraud-detector/model.yaml'), model('fraud-detector'));
      git(staging, 'add', '-A');
      git(staging, 'commit', '-q', '-m', 'model');
      const artifacts: ModelVersion['artifact'][] = [];
      for (const folder of ['sklearn-cloudpickle', 'evil-loader']) {
        const up = await cli(staging, ['--quiet', 'register', 'fraud-detector', join(out, folder), '--format', 'mlflow']);
        expect(up.code, up.stderr).toBe(0);
        artifacts.push((parse(readFileSync(join(staging, `models/fraud-detector/versions/${artifacts.length + 1}.yaml`), 'utf8')) as ModelVersion).artifact);
      }
      const [clean, artifact] = artifacts as [ModelVersion['artifact'], ModelVersion['artifact']];

      const policy = { ...POLICY, rules: POLICY.rules.map((r) => (r.name === 'to-production' ? { ...r, artifact: undefined, scan: 'pickle' as const } : r)) };
      await registry.writeConfig();
      await write('policies/promotion.yaml', stringify(policy));
      await write('models/fraud-detector/model.yaml', stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector', deploy: {} }));
      await write(
        'models/fraud-detector/versions/1.yaml',
        stringify(version(1, 'Production', { artifact: clean, format: 'mlflow', metrics: { auc: 0.95, recall: 0.9, latency_p95_ms: 40 } })),
      );
      await write('models/fraud-detector/versions/2.yaml', stringify(version(2, 'Staging', { artifact, format: 'mlflow' })));
      let errors = '';
      const quiet = { env: {}, stdout: () => {}, stderr: (t: string) => (errors += t), tty: false };
      expect(await runCli(['--registry', dev, '--quiet', 'sync'], { cwd: dev, ...quiet }), errors).toBe(0);
      registry.publish('registry');
      const gh = await registry.startGitHub({ users: ['maria', 'gina', 'carol'], teams: { 'ml-governance': ['gina'] } });

      git(dev, 'checkout', '-q', '-B', 'promote-2', 'origin/main');
      for (const [n, from, to] of [
        [1, 'Production', 'Archived'],
        [2, 'Staging', 'Production'],
      ] as const) {
        const file = join(dev, `models/fraud-detector/versions/${n}.yaml`);
        writeFileSync(file, readFileSync(file, 'utf8').replace(`stage: ${from}`, `stage: ${to}`));
      }
      expect(await runCli(['--registry', dev, '--quiet', 'sync'], { cwd: dev, ...quiet })).toBe(0);
      git(dev, 'commit', '-qam', 'Promote fraud-detector@2');
      const pull = registry.pushPull('promote-2', { title: 'Promote fraud-detector@2' });
      gh.addReview(pull, { user: 'gina', state: 'APPROVED' });
      gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
      const r = await registry.check('pull_request_review', pullRequestReviewEvent(pull));
      expect(r.outputs.decision).toBe('fail');
      type Check = { check: string; findings?: Array<{ file: string; line?: number }> };
      const report = JSON.parse(readFileSync(r.outputs.report!, 'utf8')) as { transitions: Array<{ rules: Array<{ results: Check[] }> }> };
      const scan = report.transitions.flatMap((t) => t.rules.flatMap((x) => x.results)).find((c) => c.check === 'scan (pickle)');
      expect(scan?.findings?.map((f) => [f.file, f.line])).toEqual([
        ['MLmodel', lineOf(join(out, 'evil-loader'), 'code')],
        ['MLmodel', lineOf(join(out, 'evil-loader'), 'loader_module')],
      ]);
    },
  );
});
