// MLflow model folders as MLflow's own repository ships them (test/fixtures/mlflow, see its
// PROVENANCE.md): register reads MLmodel into the manifest, and the pin loads in KServe's
// MLflow runtime as that runtime is configured.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseSignatureFile } from '../src/lineage/flags.js';
import { readMLmodel } from '../src/lineage/mlflow.js';
import { loadManifest } from '../src/manifest/load.js';
import { signatureRows } from '../src/query/present.js';
import { cli, git, makeRegistry, sha256, tempDir } from './helpers/artifacts.js';
import { crdValidator } from './helpers/crd.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/mlflow');
const fixture = (name: string) => readFileSync(join(FIXTURES, name, 'MLmodel'), 'utf8');

/** A copy of a fixture folder, with a stand-in for the weights the index could not hold as text. */
function modelFolder(name: string, extra: Record<string, string> = {}): string {
  const dir = tempDir(`mg-mlflow-${name}-`);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  for (const [p, text] of Object.entries(extra)) writeFileSync(join(dir, p), text);
  return dir;
}

function storeFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

describe('MLmodel (pure)', () => {
  it('reads the langchain model: framework from the flavor, run, python, environment and a nested signature', () => {
    const m = readMLmodel(fixture('langchain-2.12'));
    expect(m.flavors).toEqual(['langchain', 'python_function']);
    expect(m.framework).toEqual({ name: 'langchain', version: '0.1.20' });
    expect(m.run).toEqual({ id: '84552a129bfb45faa87f5fb3f05eb9cf', system: 'mlflow' });
    expect(m.python).toBe('3.10.12');
    expect(m.environment).toEqual([
      { path: 'conda.yaml', kind: 'conda' },
      { path: 'python_env.yaml', kind: 'virtualenv' },
    ]);
    expect(m.signature).toEqual({
      inputs: [
        {
          name: 'messages',
          type: 'array',
          items: { type: 'object', properties: { content: { type: 'string', required: true }, role: { type: 'string', required: true } } },
          required: true,
        },
      ],
      outputs: [{ type: 'string', required: true }],
    });
  });

  it('reads an MLflow 1.x sklearn model (env as a single conda file, no signature, no run) and names scikit-learn', () => {
    const m = readMLmodel(fixture('sklearn-1x'));
    expect(m.framework).toEqual({ name: 'scikit-learn', version: '1.5.2' });
    expect(m.run).toBeUndefined();
    expect(m.signature).toBeUndefined();
    expect(m.environment).toEqual([{ path: 'conda.yaml', kind: 'conda' }]);
  });

  it('reads a JSON signature folded over several YAML lines, and an unnamed output written as name: null', () => {
    const m = readMLmodel(fixture('mleap-java'));
    expect(m.signature!.inputs!.map((c) => c.name)).toContain('residual sugar');
    expect(m.signature!.inputs).toHaveLength(11);
    expect(m.signature!.outputs).toEqual([{ type: 'double' }]);
    expect(m.framework).toEqual({ name: 'mleap', version: '0.8.1' });
  });

  it("reads tensor specs and params, params in MLflow's older dtype spelling too", () => {
    const text = [
      'flavors:',
      '  python_function: {loader_module: mlflow.pytorch, python_version: "3.11.7"}',
      '  pytorch: {pytorch_version: 2.3.1}',
      'signature:',
      `  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'`,
      `  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]'`,
      `  params: '[{"name": "temperature", "dtype": "float", "default": 0.7, "shape": null}, {"name": "stop", "type": "string", "default": ["."], "shape": [-1]}]'`,
      '',
    ].join('\n');
    const m = readMLmodel(text);
    expect(m.framework).toEqual({ name: 'torch', version: '2.3.1' });
    expect(m.signature).toEqual({
      inputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 4] } }],
      outputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 3] } }],
      params: [
        { name: 'temperature', type: 'float', default: 0.7 },
        { name: 'stop', type: 'string', default: ['.'], shape: [-1] },
      ],
    });
  });

  it('show writes each column, tensor and parameter the way MLflow prints a schema', () => {
    expect(signatureRows(readMLmodel(fixture('langchain-2.12')).signature)).toEqual([
      ['inputs.messages', 'array<{content: string, role: string}>'],
      ['outputs[0]', 'string'],
    ]);
    expect(
      signatureRows({
        inputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 4] } }],
        outputs: [
          { name: 'score', type: 'double', required: false },
          { name: 'tags', type: 'map', values: { type: 'string' } },
        ],
        params: [{ name: 'stop', type: 'string', default: ['.'], shape: [-1] }],
      }),
    ).toEqual([
      ['inputs[0]', 'tensor float32 [-1, 4]'],
      ['outputs.score', 'double (optional)'],
      ['outputs.tags', 'map<string, string>'],
      ['params.stop', 'string[] = ["."]'],
    ]);
  });

  it('a custom python_function model is framework mlflow at its MLflow version', () => {
    expect(
      readMLmodel('flavors:\n  python_function: {loader_module: mlflow.pyfunc.model, python_version: 3.12.1}\nmlflow_version: 2.16.0\n').framework,
    ).toEqual({ name: 'mlflow', version: '2.16.0' });
  });

  it('refuses a bad MLmodel naming the file and the line', () => {
    const cases: Array<[string, RegExp]> = [
      ['flavors:\n  sklearn: {sklearn_version: 1.5.2\nrun_id: x\n', /^m\/MLmodel:\d+: not valid YAML/],
      [
        'flavors: {}\nsignature:\n  inputs: \'[{"type": "doubel", "name": "x"}]\'\n',
        /^m\/MLmodel:3: signature\.inputs\[0\]\.type "doubel" is not an MLflow type/,
      ],
      ['flavors: {}\nsignature:\n  outputs: \'[{"type": "double"\'\n', /^m\/MLmodel:3: signature\.outputs is not valid JSON/],
      [
        'flavors: {}\n\nsignature:\n  inputs: \'[{"type": "tensor", "tensor-spec": {"dtype": "float32"}}]\'\n',
        /^m\/MLmodel:4: .*tensor-spec\.shape must be a list/,
      ],
      ['flavors: {}\nsignature:\n  inputs: \'[{"type": "double", "name": "a"}, {"type": "double"}]\'\n', /^m\/MLmodel:3: .*mixes named and unnamed/],
      ['flavors: {}\nsignature:\n  inputs: \'[{"type": "array", "items": {"type": "objekt"}}]\'\n', /items\.type "objekt" is not an MLflow type/],
      ['flavors: {}\nsignature:\n  params: \'[{"name": "p", "type": "binary", "default": ""}]\'\n', /^m\/MLmodel:3: .*not an MLflow parameter type/],
      ['flavors: {}\nx: !!binary aGVsbG8=\n', /^m\/MLmodel:2: YAML tags/],
      ['a: &x 1\nb: *x\n', /^m\/MLmodel:2: YAML aliases/],
      ['- flavors\n', /^m\/MLmodel:1: expected a mapping/],
      ['flavors:\n  python_function: {env: {docker: Dockerfile}}\n', /^m\/MLmodel:2: flavors\.python_function\.env\.docker is not an MLflow environment/],
    ];
    for (const [text, message] of cases) {
      let error: { code?: string; message?: string } = {};
      try {
        readMLmodel(text, 'm/MLmodel');
      } catch (e) {
        error = e as typeof error;
      }
      expect(error.code, text).toBe('E_MLMODEL');
      expect(error.message, text).toMatch(message);
    }
  });

  it("--signature takes the same shape: decoded lists, or MLflow's JSON text as in MLmodel", () => {
    const decoded = parseSignatureFile('s.json', JSON.stringify({ inputs: [{ type: 'double', name: 'x', required: false }], outputs: [{ type: 'long' }] }));
    expect(decoded).toEqual({ inputs: [{ name: 'x', type: 'double', required: false }], outputs: [{ type: 'long' }] });
    const asText = parseSignatureFile(
      's.json',
      JSON.stringify({ inputs: '[{"type": "double", "name": "x", "required": false}]', outputs: '[{"type": "long"}]', params: null }),
    );
    expect(asText).toEqual(decoded);
    expect(() => parseSignatureFile('s.json', '{"inputs": [{"name": "x", "type": "float32"}]}')).toThrow(
      /--signature s\.json: signature\.inputs\[0\]\.type "float32" is not an MLflow type/,
    );
    expect(() => parseSignatureFile('s.json', '{"input": []}')).toThrow(/signature\.input is not part of an MLflow signature/);
  });

  it('the manifest schema takes MLflow signatures and still reads the legacy {name, type, shape} form', () => {
    const base = `apiVersion: modelgate.dev/v1\nkind: ModelVersion\nmodel: m\nversion: 1\nstage: None\ncreatedAt: "2026-01-01T00:00:00Z"\nartifact: {uri: "s3://b/m/sha256/${'a'.repeat(64)}/", sha256: ${'a'.repeat(64)}, size: 1}\nformat: mlflow\n`;
    const load = (signature: string) =>
      loadManifest(`${base}signature:\n${signature}`, 'models/m/versions/1.yaml', 'ModelVersion').problems.map((p) => p.message);
    expect(load('  inputs: [{type: tensor, tensor-spec: {dtype: float32, shape: [-1, 4]}}]\n  params: [{name: k, type: long, default: 3}]\n')).toEqual([]);
    expect(load('  inputs: [{name: x, type: array, items: {type: map, values: {type: any}}, required: false}]\n')).toEqual([]);
    expect(load('  inputs: [{name: input, type: float32, shape: [-1, 3]}]\n')).toEqual([]);
    expect(load('  inputs: [{name: x, type: doubel}]\n').join('\n')).toMatch(/signature\.inputs\[0\]\.type must be one of boolean/);
    expect(load('  inputs: [{type: tensor}]\n').join('\n')).toMatch(/tensor-spec/);
    expect(load('  inputs: [{name: x, type: array, items: {type: objekt}}]\n').join('\n')).toMatch(/items\.type must be one of/);
  });
});

describe('register an MLflow model folder', () => {
  it('writes the signature, the run, the framework and the environment files with their digests', async () => {
    const reg = makeRegistry({ uri: pathToFileURL(tempDir('mg-store-')).href });
    const dir = modelFolder('langchain-2.12');
    const r = await cli(reg, ['register', 'rag-chain', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(join(reg, 'models/rag-chain/versions/1.yaml'), 'utf8');
    const mv = parse(text);
    expect(mv.format).toBe('mlflow');
    expect(mv.framework).toEqual({ name: 'langchain', version: '0.1.20' });
    expect(mv.signature).toEqual(readMLmodel(fixture('langchain-2.12')).signature);
    expect(mv.lineage.run).toEqual({ id: '84552a129bfb45faa87f5fb3f05eb9cf', system: 'mlflow' });
    const digest = (p: string) => sha256(readFileSync(join(dir, p)));
    expect(mv.lineage.environment).toEqual({
      python: '3.10.12',
      requirements: 'requirements.txt',
      files: [
        { path: 'conda.yaml', sha256: digest('conda.yaml'), kind: 'conda' },
        { path: 'python_env.yaml', sha256: digest('python_env.yaml'), kind: 'virtualenv' },
        { path: 'requirements.txt', sha256: digest('requirements.txt'), kind: 'pip' },
      ],
    });
    // The same digests as the artifact's own file list.
    for (const f of mv.lineage.environment.files) expect(mv.artifact.files.find((a: { path: string }) => a.path === f.path).sha256).toBe(f.sha256);
    expect(loadManifest(text, 'models/rag-chain/versions/1.yaml', 'ModelVersion').problems).toEqual([]);
    expect((await cli(reg, ['validate'])).code).toBe(0);
    const shown = await cli(reg, ['show', 'rag-chain@1']);
    expect(shown.stdout).toMatch(/^signature\n {2}inputs\.messages +array<\{content: string, role: string\}>$/m);
    expect(shown.stdout).toMatch(/^ {2}run\.system +mlflow$/m);
  });

  it('lets the command line win over MLmodel: --framework, --run, --env, --signature', async () => {
    const reg = makeRegistry({ uri: pathToFileURL(tempDir('mg-store-')).href });
    const dir = modelFolder('sklearn-1x', { 'model.pkl': 'stand-in for the pickled model\n' });
    writeFileSync(join(reg, 'sig.json'), JSON.stringify({ inputs: '[{"type": "double", "name": "x", "required": true}]', outputs: '[{"type": "long"}]' }));
    const r = await cli(reg, ['register', 'iris', dir, '--run', 'id=pipe-7,system=airflow', '--env', 'python=3.10.16', '--signature', 'sig.json']);
    expect(r.code, r.stderr).toBe(0);
    const mv = parse(readFileSync(join(reg, 'models/iris/versions/1.yaml'), 'utf8'));
    expect(mv.framework).toEqual({ name: 'scikit-learn', version: '1.5.2' });
    expect(mv.signature).toEqual({ inputs: [{ name: 'x', type: 'double', required: true }], outputs: [{ type: 'long' }] });
    expect(mv.lineage.run).toEqual({ id: 'pipe-7', system: 'airflow' });
    expect(mv.lineage.environment.python).toBe('3.10.16');
    expect(mv.lineage.environment.files.map((f: { path: string }) => f.path)).toEqual(['conda.yaml', 'requirements.txt']);
  });

  it('refuses a bad MLmodel naming it and the line, before any byte reaches the store or the repository', async () => {
    const store = tempDir('mg-store-');
    const reg = makeRegistry({ uri: pathToFileURL(store).href });
    const head = git(reg, 'rev-parse', 'HEAD').trim();
    const dir = modelFolder('langchain-2.12');
    writeFileSync(join(dir, 'MLmodel'), readFileSync(join(dir, 'MLmodel'), 'utf8').replace(`outputs: '[{"type": "string"`, `outputs: '[{"type": "str"`));
    const r = await cli(reg, ['register', 'rag-chain', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/MLmodel:\d+: signature\.outputs\[0\]\.type "str" is not an MLflow type/);
    const line = Number(/MLmodel:(\d+)/.exec(r.stderr)![1]);
    expect(readFileSync(join(dir, 'MLmodel'), 'utf8').split('\n')[line - 1]).toMatch(/^ {2}outputs:/);
    expect(storeFiles(store)).toEqual([]);
    expect(git(reg, 'rev-parse', 'HEAD').trim()).toBe(head);
  });
});

describe('the pin of a registered MLflow folder in KServe', () => {
  // KServe's runtime selection (pkg/apis/serving/v1beta1: RuntimeSupportsModel and
  // IsProtocolVersionSupported), applied to the runtime KServe ships for MLflow models.
  function runtimeFor(
    model: { modelFormat: { name: string; version?: string }; protocolVersion?: string; runtime?: string },
    runtime: Record<string, any>,
  ): boolean {
    const labels = new Set<string>();
    for (const f of runtime.spec.supportedModelFormats) {
      if (model.runtime === undefined && f.autoSelect !== true) continue;
      labels.add(`mt:${f.name}`);
      if (f.version !== undefined) labels.add(`mt:${f.name}:${f.version}`);
    }
    const label = `mt:${model.modelFormat.name}${model.modelFormat.version !== undefined ? `:${model.modelFormat.version}` : ''}`;
    const protocol = model.protocolVersion ?? 'v1';
    return labels.has(label) && (runtime.spec.protocolVersions ?? ['v1']).includes(protocol);
  }

  it("renders mlflow with protocolVersion v2, which KServe's kserve-mlserver runtime is selected for (and v1 is not)", async () => {
    const dir = tempDir('mg-mlflow-reg-');
    const store = `${dir}-store`;
    const init = await cli(tempDir('mg-cwd-'), ['init', dir, '--store', pathToFileURL(store).href]);
    expect(init.code, init.stderr).toBe(0);
    mkdirSync(join(dir, 'models/rag-chain'), { recursive: true });
    writeFileSync(join(dir, 'models/rag-chain/model.yaml'), 'apiVersion: modelgate.dev/v1\nkind: Model\nname: rag-chain\nowners: [maria]\ndeploy: {}\n');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', 'Serve rag-chain');
    // Staging asks for scan: pickle, which refuses the langchain model (a model from code runs its
    // file on load): the 1.x sklearn folder, with a pickle of no global for its model.pkl.
    const model = modelFolder('sklearn-1x', { 'model.pkl': 'I1\n.' });
    const r = await cli(dir, ['--quiet', 'register', 'rag-chain', model, '--stage', 'Staging']);
    expect(r.code, r.stderr).toBe(0);
    // What Argo CD applies: the environment through the real kustomize.
    const rendered = execFileSync(process.env.KUBECTL ?? 'kubectl', ['kustomize', join(dir, 'deploy/staging')], { encoding: 'utf8' });
    const pin = parseAllDocuments(rendered)
      .map((d) => d.toJS())
      .find((d) => d.kind === 'InferenceService' && d.metadata.name === 'rag-chain');
    const predictor = pin.spec.predictor.model;
    expect(predictor).toMatchObject({ modelFormat: { name: 'mlflow' }, protocolVersion: 'v2' });
    expect(predictor.storageUri).toMatch(/^pvc:\/\/modelgate-artifacts\/rag-chain\/sha256\/[0-9a-f]{64}$/);

    const runtime = parse(readFileSync(join(FIXTURES, 'kserve-mlserver.yaml'), 'utf8'));
    // The runtime fixture is a valid ServingRuntime spec (ClusterServingRuntime shares it).
    const srt = crdValidator('kserve-servingruntimes.yaml', 'v1alpha1');
    expect(srt({ ...runtime, kind: 'ServingRuntime' }), JSON.stringify(srt.errors)).toBe(true);
    const isvc = crdValidator('kserve-inferenceservices.yaml', 'v1beta1');
    expect(isvc(pin), JSON.stringify(isvc.errors)).toBe(true);
    expect(runtimeFor(predictor, runtime)).toBe(true);
    expect(runtimeFor({ ...predictor, protocolVersion: undefined }, runtime)).toBe(false);
    // MLServer loads the folder through MLmodel at its top, which the pinned folder holds.
    const mv = parse(readFileSync(join(dir, 'models/rag-chain/versions/1.yaml'), 'utf8'));
    expect(mv.artifact.files.map((f: { path: string }) => f.path)).toContain('MLmodel');
    expect(mv.artifact.sha256).toBe(/sha256\/([0-9a-f]{64})$/.exec(predictor.storageUri)![1]);
  });
});
