import { describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { newKustomization, plainResources } from '../src/deploy/kustomization.js';
import { commitMessage, formatDiff, planSync, renderPins, type PinInput, type SyncPlan } from '../src/deploy/plan.js';
import { environmentsOf } from '../src/deploy/render.js';
import type { ModelDeploy, ModelVersion, Registry } from '../src/manifest/types.js';
import { modelDoc, modelVersion, registryConfig, type ModelSpec } from './helpers/pin-registry.js';
import { crdValidator } from './helpers/crd.js';

function input(models: Record<string, ModelSpec>, files: Record<string, string> = {}, registry: Registry = registryConfig()): PinInput {
  return {
    registry,
    models: Object.entries(models).map(([name, spec]) => ({
      model: modelDoc(name, spec),
      versions: spec.versions.map((v, i) => modelVersion(name, i + 1, v)),
    })),
    files: new Map(Object.entries(files)),
  };
}

/** The deploy files after applying a plan on top of `files`. */
function applied(files: Record<string, string>, plan: SyncPlan): Record<string, string> {
  const out = { ...files };
  for (const f of plan.files) {
    if (f.after === null) delete out[f.path];
    else out[f.path] = f.after;
  }
  return out;
}

const fraud: ModelSpec = { deploy: {}, versions: [{ stage: 'Production' }, { stage: 'Staging' }] };
const v = (n: number) => modelVersion('fraud-detector', n, { stage: 'Production' });

describe('renderPins', () => {
  it('pins the newest version of each stage as a KServe InferenceService', () => {
    const plan = renderPins(input({ 'fraud-detector': fraud, 'not-deployed': { versions: [{ stage: 'Production' }] } }));
    expect(plan.files.map((f) => f.path)).toEqual([
      'deploy/production/fraud-detector.yaml',
      'deploy/production/kustomization.yaml',
      'deploy/staging/fraud-detector.yaml',
      'deploy/staging/kustomization.yaml',
    ]);
    const prod = parse(plan.files[0]!.after!);
    expect(prod).toMatchObject({
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: {
        name: 'fraud-detector',
        namespace: 'models',
        labels: { 'modelgate.dev/model': 'fraud-detector', 'modelgate.dev/version': '1' },
        annotations: { 'modelgate.dev/version': '1', 'modelgate.dev/sha256': v(1).artifact.sha256, 'modelgate.dev/artifact-uri': v(1).artifact.uri },
      },
      spec: { predictor: { model: { modelFormat: { name: 'sklearn' }, storageUri: v(1).artifact.uri } } },
    });
    expect(parse(plan.files[2]!.after!).spec.predictor.model.storageUri).toBe(v(2).artifact.uri);
    expect(parse(plan.files[1]!.after!)).toEqual({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      namespace: 'models',
      resources: ['fraud-detector.yaml'],
    });
    expect(plan.changes).toEqual([
      expect.objectContaining({ model: 'fraud-detector', environment: 'staging', action: 'new', toVersion: 2, sha256: v(2).artifact.sha256 }),
      expect.objectContaining({ model: 'fraud-detector', environment: 'production', action: 'new', toVersion: 1 }),
    ]);
  });

  it('uses the shared base in new kustomizations when the registry has one', () => {
    const plan = renderPins(input({ 'fraud-detector': fraud }, { 'deploy/base/kustomization.yaml': 'resources: []\n' }));
    expect(parse(plan.files.find((f) => f.path === 'deploy/staging/kustomization.yaml')!.after!).resources).toEqual(['../base', 'fraud-detector.yaml']);
  });

  it('derives modelFormat from the version format, and settings override it', () => {
    // Formats whose KServe runtime loads one file, and those whose runtime loads a folder.
    const single: Array<[ModelVersion['format'], string]> = [
      ['joblib', 'sklearn'],
      ['pickle', 'sklearn'],
      ['onnx', 'onnx'],
    ];
    const folders: Array<[ModelVersion['format'], string, string[]]> = [
      ['safetensors', 'huggingface', ['config.json', 'model.safetensors', 'tokenizer.json']],
      ['mlflow', 'mlflow', ['MLmodel', 'model.pkl', 'python_env.yaml']],
      ['savedmodel', 'tensorflow', ['1/saved_model.pb', '1/variables/variables.index']],
      ['pt', 'pytorch', ['config/config.properties', 'model-store/m.mar']],
    ];
    for (const [format, name] of single) {
      const plan = renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', format }] } }));
      expect(parse(plan.files.find((f) => f.path === 'deploy/production/m.yaml')!.after!).spec.predictor.model.modelFormat.name, format).toBe(name);
    }
    for (const [format, name, files] of folders) {
      const plan = renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', format, files }] } }));
      const model = parse(plan.files.find((f) => f.path === 'deploy/production/m.yaml')!.after!).spec.predictor.model;
      expect(model.modelFormat.name, format).toBe(name);
      expect(model.storageUri).toMatch(/\/sha256\/[0-9a-f]{64}\/$/);
    }
    const custom = renderPins(
      input({ m: { deploy: { modelFormat: 'xgboost', runtime: 'kserve-xgbserver' }, versions: [{ stage: 'Production', format: 'other' }] } }),
    );
    expect(parse(custom.files.find((f) => f.path === 'deploy/production/m.yaml')!.after!).spec.predictor.model).toMatchObject({
      modelFormat: { name: 'xgboost' },
      runtime: 'kserve-xgbserver',
    });
  });

  it('refuses a single file for a format whose runtime loads a folder (a lone .safetensors is no Hugging Face model)', () => {
    for (const format of ['safetensors', 'mlflow', 'savedmodel', 'pt'] as const) {
      expect(() => renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', format }] } })), format).toThrow(
        expect.objectContaining({ code: 'E_DEPLOY_FORMAT', exit: 1, message: expect.stringContaining('is a single file') }),
      );
    }
    // Naming the format does not make the file loadable either.
    expect(() => renderPins(input({ m: { deploy: { modelFormat: 'huggingface' }, versions: [{ stage: 'Production', format: 'safetensors' }] } }))).toThrow(
      expect.objectContaining({
        code: 'E_DEPLOY_FORMAT',
        message: expect.stringContaining('models/m/model.yaml: version 1 cannot be served as KServe model format huggingface (deploy.modelFormat)'),
      }),
    );
    // A folder without the file the runtime reads first.
    expect(() => renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', format: 'safetensors', files: ['model.safetensors'] }] } }))).toThrow(
      expect.objectContaining({ code: 'E_DEPLOY_FORMAT', message: expect.stringContaining('has no config.json at its top') }),
    );
    // A runtime of your own, under its own format name, may load the single file.
    const own = renderPins(
      input({ m: { deploy: { modelFormat: 'safetensors', runtime: 'logreg-server' }, versions: [{ stage: 'Production', format: 'safetensors' }] } }),
    );
    expect(parse(own.files.find((f) => f.path === 'deploy/production/m.yaml')!.after!).spec.predictor.model).toMatchObject({
      modelFormat: { name: 'safetensors' },
      runtime: 'logreg-server',
    });
  });

  it('refuses a format KServe cannot infer without settings', () => {
    expect(() => renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', format: 'other' }] } }))).toThrow(
      expect.objectContaining({ code: 'E_DEPLOY_SETTINGS', exit: 1 }),
    );
  });

  it('renders a Deployment for a custom server, and requires its image', () => {
    const deploy: ModelDeploy = { kind: 'Deployment', image: 'ghcr.io/acme/server:1.2', port: 8080, replicas: 2 };
    const plan = renderPins(input({ m: { deploy, versions: [{ stage: 'Production' }] } }));
    const d = parse(plan.files.find((f) => f.path === 'deploy/production/m.yaml')!.after!);
    const mv = modelVersion('m', 1, { stage: 'Production' });
    expect(d).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', spec: { replicas: 2, selector: { matchLabels: { 'modelgate.dev/model': 'm' } } } });
    expect(d.spec.template.spec.containers[0]).toMatchObject({
      image: 'ghcr.io/acme/server:1.2',
      env: [
        { name: 'MODEL_URI', value: mv.artifact.uri },
        { name: 'MODEL_SHA256', value: mv.artifact.sha256 },
      ],
      ports: [{ containerPort: 8080 }],
    });
    expect(() => renderPins(input({ m: { deploy: { kind: 'Deployment' }, versions: [{ stage: 'Production' }] } }))).toThrow(
      expect.objectContaining({ code: 'E_DEPLOY_SETTINGS' }),
    );
  });

  it('is idempotent: a second run over its own output changes nothing', () => {
    const models = { 'fraud-detector': fraud, b: { deploy: { kind: 'Deployment' as const, image: 'x:1' }, versions: [{ stage: 'Staging' as const }] } };
    const files = applied({}, renderPins(input(models)));
    expect(renderPins(input(models, files)).files).toEqual([]);
  });

  it('keeps the last pin when a stage empties, and an archived production model keeps serving', () => {
    const files = applied({}, renderPins(input({ 'fraud-detector': fraud })));
    const archived = renderPins(input({ 'fraud-detector': { deploy: {}, versions: [{ stage: 'Archived' }, { stage: 'Archived' }] } }, files));
    expect(archived.files).toEqual([]);
    expect(archived.changes).toEqual([]);
  });

  it('does not touch models without deploy settings, nor pins of models that dropped them', () => {
    const files = applied({}, renderPins(input({ 'fraud-detector': fraud })));
    expect(renderPins(input({ 'fraud-detector': { versions: [{ stage: 'Production' }, { stage: 'Production' }] } }, files)).files).toEqual([]);
  });

  it('updates only the pinned scalars of a hand-edited pin, byte for byte elsewhere', () => {
    const hand = `# Owned by the serving team. Keep the GPU limits!
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fraud-detector
  namespace: models
  labels:
    team: "payments"   # cost centre
    app.kubernetes.io/managed-by: modelgate
    modelgate.dev/model: fraud-detector
    modelgate.dev/version: "1"
  annotations:
    modelgate.dev/version: '1'
    modelgate.dev/sha256: ${v(1).artifact.sha256}
    modelgate.dev/artifact-uri: ${v(1).artifact.uri}
    serving.kserve.io/deploymentMode: RawDeployment
spec:
  predictor:
    minReplicas: 3
    model:
      modelFormat: {name: sklearn}
      storageUri: ${v(1).artifact.uri} # pinned
      resources:
        limits: {cpu: "2", nvidia.com/gpu: 1}
`;
    const promoted: ModelSpec = { deploy: {}, versions: [{ stage: 'Archived' }, { stage: 'Production' }] };
    const plan = renderPins(
      input(
        { 'fraud-detector': promoted },
        { 'deploy/production/fraud-detector.yaml': hand, 'deploy/production/kustomization.yaml': 'resources:\n- fraud-detector.yaml\n' },
      ),
    );
    const expected = hand
      .replace('modelgate.dev/version: "1"', 'modelgate.dev/version: "2"')
      .replace("modelgate.dev/version: '1'", "modelgate.dev/version: '2'")
      .replaceAll(v(1).artifact.sha256, v(2).artifact.sha256)
      .replaceAll(v(1).artifact.uri, v(2).artifact.uri);
    expect(plan.files.map((f) => f.path)).toEqual(['deploy/production/fraud-detector.yaml']);
    expect(plan.files[0]!.after).toBe(expected);
    expect(plan.changes).toEqual([expect.objectContaining({ action: 'update', fromVersion: 1, toVersion: 2, environment: 'production' })]);
    expect(commitMessage(plan)).toBe('deploy: fraud-detector production v1 → v2\n');
  });

  it('adds pinned keys a hand-edited file lacks, without reformatting the rest', () => {
    const hand = `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fraud-detector   # hi
  labels: {team: payments, app.kubernetes.io/managed-by: modelgate}
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: s3://old
`;
    const plan = renderPins(
      input({ 'fraud-detector': { deploy: {}, versions: [{ stage: 'Production' }] } }, { 'deploy/production/fraud-detector.yaml': hand }),
    );
    const after = plan.files.find((f) => f.path === 'deploy/production/fraud-detector.yaml')!.after!;
    expect(after.startsWith('apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: fraud-detector   # hi\n')).toBe(true);
    const doc = parse(after);
    expect(doc.metadata.labels).toEqual({
      team: 'payments',
      'app.kubernetes.io/managed-by': 'modelgate',
      'modelgate.dev/model': 'fraud-detector',
      'modelgate.dev/version': '1',
    });
    expect(doc.metadata.annotations['modelgate.dev/sha256']).toBe(v(1).artifact.sha256);
    expect(doc.spec.predictor.model.storageUri).toBe(v(1).artifact.uri);
    expect(plan.changes[0]).toMatchObject({ action: 'update', toVersion: 1 });
    expect(plan.changes[0]!.fromVersion).toBeUndefined();
  });

  it('updates a hand-edited Deployment: env values, image and template metadata only', () => {
    const deploy: ModelDeploy = { kind: 'Deployment', image: 'ghcr.io/acme/server:2' };
    const first = applied({}, renderPins(input({ m: { deploy: { ...deploy, image: 'ghcr.io/acme/server:1' }, versions: [{ stage: 'Production' }] } })));
    const path = 'deploy/production/m.yaml';
    const edited = first[path]!.replace(
      '      containers:\n',
      '      # sidecar added by platform\n      containers:\n        - name: proxy\n          image: envoy:1\n',
    );
    const plan = renderPins(input({ m: { deploy, versions: [{ stage: 'Archived' }, { stage: 'Production' }] } }, { ...first, [path]: edited }));
    const after = plan.files.find((f) => f.path === path)!.after!;
    expect(after).toContain('# sidecar added by platform\n      containers:\n        - name: proxy\n          image: envoy:1\n');
    const d = parse(after);
    const m2 = modelVersion('m', 2, { stage: 'Production' });
    expect(d.spec.template.spec.containers[1]).toMatchObject({
      image: 'ghcr.io/acme/server:2',
      env: [{ value: m2.artifact.uri }, { value: m2.artifact.sha256 }],
    });
    expect(d.spec.template.metadata.labels['modelgate.dev/version']).toBe('2');
  });

  it('refuses a Deployment pin without MODEL_URI to edit', () => {
    const path = 'deploy/production/m.yaml';
    const text =
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: m, labels: {app.kubernetes.io/managed-by: modelgate}}\nspec:\n  template:\n    spec:\n      containers: [{name: x, image: y}]\n';
    expect(() => renderPins(input({ m: { deploy: { kind: 'Deployment', image: 'y' }, versions: [{ stage: 'Production' }] } }, { [path]: text }))).toThrow(
      expect.objectContaining({ code: 'E_DEPLOY_EDIT', data: { file: path } }),
    );
  });

  it('refuses to take the place of a file it did not write (a NetworkPolicy named like the model)', () => {
    const path = 'deploy/production/network-policy.yaml';
    const policy = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: network-policy}\nspec: {podSelector: {}}\n';
    expect(() => renderPins(input({ 'network-policy': fraud }, { [path]: policy }))).toThrow(
      expect.objectContaining({ code: 'E_PIN_COLLISION', data: { file: path } }),
    );
  });

  it('a retired model named like a hand-written file leaves that file and its listing alone', () => {
    const path = 'deploy/production/network-policy.yaml';
    const policy = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: network-policy}\nspec: {podSelector: {}}\n';
    const kustomization = 'resources:\n- network-policy.yaml\n';
    const plan = renderPins(
      input(
        { 'network-policy': { deploy: {}, retired: true, versions: [{ stage: 'Archived' }] } },
        { [path]: policy, 'deploy/production/kustomization.yaml': kustomization },
      ),
    );
    expect(plan.files).toEqual([]);
    // With deploy settings and no version in the stage, the file is still not a pin to keep.
    expect(() => renderPins(input({ 'network-policy': { deploy: {}, versions: [{ stage: 'Archived' }] } }, { [path]: policy }))).toThrow(
      expect.objectContaining({ code: 'E_PIN_COLLISION' }),
    );
  });

  it('refuses a pin file that is not valid YAML', () => {
    const path = 'deploy/production/fraud-detector.yaml';
    expect(() => renderPins(input({ 'fraud-detector': fraud }, { [path]: 'metadata: [unclosed\n' }))).toThrow(
      expect.objectContaining({ code: 'E_DEPLOY_EDIT' }),
    );
  });

  it('adds resources to a hand-edited kustomization keeping comments, order, quoting and other entries', () => {
    const kust = `# Production: synced by Argo CD. Hand-added entries below are kept.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: models
resources:
  - ../base   # shared
  - "networkpolicy.yaml"
  # a comment between entries
  - ./fraud-detector.yaml
patches:
  - path: limits.yaml
`;
    const files = { 'deploy/production/kustomization.yaml': kust };
    const plan = renderPins(input({ 'fraud-detector': fraud, 'aaa-model': { deploy: {}, versions: [{ stage: 'Production' }] } }, files));
    const after = plan.files.find((f) => f.path === 'deploy/production/kustomization.yaml')!.after;
    expect(after).toBe(kust.replace('  - ./fraud-detector.yaml\n', '  - ./fraud-detector.yaml\n  - aaa-model.yaml\n'));
  });

  it('adds to flow-style and missing resources lists', () => {
    const flow = renderPins(
      input({ 'fraud-detector': fraud }, { 'deploy/production/kustomization.yaml': 'kind: Kustomization\nresources: [../base] # keep\n' }),
    );
    expect(flow.files.find((f) => f.path === 'deploy/production/kustomization.yaml')!.after).toBe(
      'kind: Kustomization\nresources: [../base, fraud-detector.yaml] # keep\n',
    );
    const missing = renderPins(input({ 'fraud-detector': fraud }, { 'deploy/production/kustomization.yaml': 'kind: Kustomization # x' }));
    expect(missing.files.find((f) => f.path === 'deploy/production/kustomization.yaml')!.after).toBe(
      'kind: Kustomization # x\nresources:\n- fraud-detector.yaml\n',
    );
  });

  it('reads the resources of a kustomization from its lines only where the parser reads the same', () => {
    // Random texts of lines that are each fine or each wrong in some way the line reader must
    // notice; where it answers, yaml (the parser of every other kustomization) must agree.
    const LINES = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'namespace: models',
      'resources:',
      'resources:',
      'resources: [a.yaml]',
      'resources: a.yaml',
      'images:',
      '',
      '# a comment',
      '---',
      '- a.yaml',
      '- ../base',
      '- ./b.yaml',
      '- model-000.yaml',
      '  - c.yaml',
      ' - d.yaml',
      '- base',
      '- .inf',
      '- 0x1F',
      '- 1',
      '- true',
      '- null',
      '- -x.yaml',
      '- a.yaml # note',
      "- 'q.yaml'",
      '- "d.yaml"',
      '- &x e.yaml',
      '- *x',
      '- [f.yaml]',
      '- a b.yaml',
      '\t- g.yaml',
      '- h.yaml\r',
      'kind: Component',
    ];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    let answered = 0;
    for (let i = 0; i < 4000; i++) {
      const n = 1 + Math.floor(next() * 7);
      const lines = ['resources:', ...Array.from({ length: n }, () => LINES[Math.floor(next() * LINES.length)]!)];
      if (next() < 0.5) lines.unshift('kind: Kustomization');
      const text = lines.join('\n') + (next() < 0.95 ? '\n' : '');
      const plain = plainResources(text);
      if (plain === undefined) continue;
      answered++;
      const doc = parseDocument(text, { uniqueKeys: true });
      expect(doc.errors, text).toEqual([]);
      const resources = (doc.toJS() as { resources: unknown[] | null }).resources;
      expect(resources ?? [], text).toEqual(plain);
    }
    expect(answered).toBeGreaterThan(200);
    // What modelgate writes is read from its lines.
    expect(plainResources(newKustomization({ namespace: 'models', base: '../base', resources: ['a.yaml', 'b.yaml'] }))).toEqual([
      '../base',
      'a.yaml',
      'b.yaml',
    ]);
  });

  it('removes a retired model: its pin and its resources entry, nothing else', () => {
    const kust = '# hand\nresources:\n- ../base\n- fraud-detector.yaml  # pinned\n- other.yaml\n';
    const files = {
      'deploy/production/kustomization.yaml': kust,
      'deploy/production/fraud-detector.yaml': renderPins(input({ 'fraud-detector': fraud })).files[0]!.after!,
    };
    const plan = renderPins(input({ 'fraud-detector': { ...fraud, retired: true } }, files));
    expect(plan.files).toEqual([
      { path: 'deploy/production/fraud-detector.yaml', before: files['deploy/production/fraud-detector.yaml'], after: null },
      { path: 'deploy/production/kustomization.yaml', before: kust, after: '# hand\nresources:\n- ../base\n- other.yaml\n' },
    ]);
    expect(plan.changes).toEqual([expect.objectContaining({ action: 'retire', fromVersion: 1, environment: 'production' })]);
    expect(formatDiff(plan)).toContain('deleted file mode 100644\n--- a/deploy/production/fraud-detector.yaml\n+++ /dev/null\n');
  });

  it('defaults to staging and production when modelgate.yaml names no environments', () => {
    const { environments: _, ...bare } = registryConfig();
    expect(environmentsOf(bare as Registry)).toEqual([
      { name: 'staging', stage: 'Staging', path: 'deploy/staging' },
      { name: 'production', stage: 'Production', path: 'deploy/production' },
    ]);
  });

  it('refuses environment paths outside the registry', () => {
    for (const path of ['../elsewhere', '/abs', 'deploy/../../x', '.']) {
      const reg = registryConfig({ environments: { prod: { stage: 'Production', path } } });
      expect(() => renderPins(input({}, {}, reg)), path).toThrow(expect.objectContaining({ code: 'E_ENVIRONMENT_PATH' }));
    }
  });

  it('refuses two environments sharing a folder, and an environment in the shared base', () => {
    const shared = registryConfig({ environments: { a: { stage: 'Staging', path: 'deploy/x' }, b: { stage: 'Production', path: 'deploy/x/' } } });
    expect(() => renderPins(input({ 'fraud-detector': fraud }, {}, shared))).toThrow(
      expect.objectContaining({ code: 'E_ENVIRONMENT_PATH', message: expect.stringContaining('environments.a.path') }),
    );
    const base = registryConfig({ environments: { a: { stage: 'Staging', path: 'deploy/base' } } });
    expect(() => renderPins(input({ 'fraud-detector': fraud }, {}, base))).toThrow(expect.objectContaining({ code: 'E_ENVIRONMENT_PATH' }));
  });

  it('pins a third environment at its own path and namespace, next to the usual two', () => {
    const reg = registryConfig({
      environments: {
        ...registryConfig().environments,
        'eu-canary': { stage: 'Staging', path: 'clusters/eu/canary', namespace: 'models-canary' },
      },
    });
    const files = { 'deploy/base/kustomization.yaml': 'resources: [namespace.yaml]\n' };
    const plan = renderPins(input({ 'fraud-detector': fraud }, files, reg));
    expect(plan.environments.map((e) => e.name)).toEqual(['staging', 'production', 'eu-canary']);
    const canary = parse(plan.files.find((f) => f.path === 'clusters/eu/canary/fraud-detector.yaml')!.after!);
    expect(canary.metadata.namespace).toBe('models-canary');
    expect(canary.spec.predictor.model.storageUri).toBe(v(2).artifact.uri);
    expect(parse(plan.files.find((f) => f.path === 'clusters/eu/canary/kustomization.yaml')!.after!)).toEqual({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      namespace: 'models-canary',
      resources: ['../../../deploy/base', 'fraud-detector.yaml'],
    });
    expect(plan.changes.filter((c) => c.environment === 'eu-canary')).toEqual([expect.objectContaining({ stage: 'Staging', action: 'new', toVersion: 2 })]);
    expect(renderPins(input({ 'fraud-detector': fraud }, applied(files, plan), reg)).files).toEqual([]);
  });

  it('never writes or deletes a kustomization.yaml for a model named kustomization', () => {
    const kust = 'resources:\n- kustomization.yaml\n';
    const files = { 'deploy/production/kustomization.yaml': kust };
    expect(() => renderPins(input({ kustomization: { deploy: {}, versions: [{ stage: 'Production' }] } }, files))).toThrow(
      expect.objectContaining({ code: 'E_DEPLOY_SETTINGS', message: expect.stringContaining('models/kustomization/model.yaml') }),
    );
    expect(renderPins(input({ kustomization: { retired: true, versions: [] } }, files)).files).toEqual([]);
  });

  it('shows the change as a unified diff (planSync, what the gate displays)', () => {
    const files = applied({}, renderPins(input({ 'fraud-detector': fraud })));
    const { diff, changes } = planSync(input({ 'fraud-detector': { deploy: {}, versions: [{ stage: 'Archived' }, { stage: 'Production' }] } }, files));
    expect(changes.map((c) => [c.environment, c.fromVersion, c.toVersion])).toEqual([['production', 1, 2]]);
    expect(diff).toContain('--- a/deploy/production/fraud-detector.yaml\n+++ b/deploy/production/fraud-detector.yaml\n@@ ');
    expect(diff).toContain(`-      storageUri: ${v(1).artifact.uri}\n+      storageUri: ${v(2).artifact.uri}\n`);
    expect(diff).not.toContain('deploy/staging');
  });
});

describe('KServe settings and file:// stores', () => {
  const isvc = crdValidator('kserve-inferenceservices.yaml', 'v1beta1');
  const pinAt = (plan: SyncPlan, path = 'deploy/production/m.yaml') => parse(plan.files.find((f) => f.path === path)!.after!);
  const expectCrdValid = (doc: unknown) => {
    expect(isvc(doc), JSON.stringify(isvc.errors)).toBe(true);
  };

  it('renders serviceAccountName, protocolVersion and runtime where KServe v1beta1 reads them', () => {
    const deploy: ModelDeploy = {
      serviceAccountName: 'models-s3',
      protocolVersion: 'grpc-v2',
      runtime: 'kserve-tritonserver',
      modelFormat: 'onnx',
      replicas: 2,
    };
    const doc = pinAt(renderPins(input({ m: { deploy, versions: [{ stage: 'Production', format: 'onnx' }] } })));
    expect(doc.spec.predictor).toEqual({
      serviceAccountName: 'models-s3',
      minReplicas: 2,
      model: {
        modelFormat: { name: 'onnx' },
        protocolVersion: 'grpc-v2',
        runtime: 'kserve-tritonserver',
        storageUri: modelVersion('m', 1, { stage: 'Production', format: 'onnx' }).artifact.uri,
      },
    });
    expectCrdValid(doc);
    // The schema really checks: a number where KServe wants a string fails.
    expect(isvc({ ...doc, spec: { predictor: { ...doc.spec.predictor, serviceAccountName: 3 } } })).toBe(false);
  });

  it('gives mlflow and onnx models protocolVersion v2 unless model.yaml says otherwise', () => {
    const files = ['MLmodel', 'model.pkl', 'conda.yaml'];
    const doc = pinAt(renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', format: 'mlflow', files }] } })));
    expect(doc.spec.predictor.model).toMatchObject({ modelFormat: { name: 'mlflow' }, protocolVersion: 'v2' });
    expectCrdValid(doc);
    const v1 = pinAt(renderPins(input({ m: { deploy: { protocolVersion: 'v1' }, versions: [{ stage: 'Production', format: 'mlflow', files }] } })));
    expect(v1.spec.predictor.model.protocolVersion).toBe('v1');
    const onnx = pinAt(renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', format: 'onnx' }] } })));
    expect(onnx.spec.predictor.model).toMatchObject({ modelFormat: { name: 'onnx' }, protocolVersion: 'v2' });
    const sklearn = pinAt(renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production' }] } })));
    expect(sklearn.spec.predictor.model.protocolVersion).toBeUndefined();
  });

  it('adds a new setting to an existing pin as one inserted line, and is idempotent after', () => {
    const path = 'deploy/production/m.yaml';
    const first = applied({}, renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production' }] } })));
    const hand = first[path]!.replace('  predictor:\n', '  predictor:\n    # the platform team set this\n    timeout: 30\n');
    const models = { m: { deploy: { serviceAccountName: 'models-s3' }, versions: [{ stage: 'Production' as const }] } };
    const plan = renderPins(input(models, { ...first, [path]: hand }));
    const after = plan.files.find((f) => f.path === path)!.after!;
    const added = after.split('\n').filter((l) => !hand.split('\n').includes(l));
    expect(added).toEqual(['    serviceAccountName: models-s3']);
    expect(after.replace('    serviceAccountName: models-s3\n', '')).toBe(hand);
    expect(plan.changes).toEqual([expect.objectContaining({ action: 'settings', toVersion: 1 })]);
    expect(renderPins(input(models, { ...first, [path]: after })).files).toEqual([]);
    expectCrdValid(parse(after));
  });

  const fileStore = 'file:///srv/modelgate/artifacts';

  it('pins a file:// store as pvc://<claim>/<path below root> when storage.pvc is set', () => {
    const storage = { uri: fileStore, pvc: { claim: 'modelgate-artifacts', root: '/srv/modelgate/artifacts' } };
    const version = modelVersion('m', 1, { stage: 'Production', store: fileStore });
    const hex = version.artifact.sha256;
    const plan = renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', store: fileStore }] } }, {}, registryConfig({ storage })));
    const doc = pinAt(plan);
    expect(doc.spec.predictor.model.storageUri).toBe(`pvc://modelgate-artifacts/m/sha256/${hex}/model.joblib`);
    // The annotations keep what the manifest says; only the URI KServe downloads changes.
    expect(doc.metadata.annotations['modelgate.dev/artifact-uri']).toBe(version.artifact.uri);
    expectCrdValid(doc);
    expect(
      renderPins(input({ m: { deploy: {}, versions: [{ stage: 'Production', store: fileStore }] } }, applied({}, plan), registryConfig({ storage }))).files,
    ).toEqual([]);
    // A claim mounting a parent folder: the path includes the store's folder below it.
    const parent = renderPins(
      input(
        { m: { deploy: {}, versions: [{ stage: 'Production', store: fileStore, files: ['a.onnx'], format: 'onnx' }] } },
        {},
        registryConfig({ storage: { uri: fileStore, pvc: { claim: 'data', root: '/srv' } } }),
      ),
    );
    expect(pinAt(parent).spec.predictor.model.storageUri).toBe(
      `pvc://data/modelgate/artifacts/m/sha256/${modelVersion('m', 1, { stage: 'Production', files: ['a.onnx'] }).artifact.sha256}`,
    );
  });

  it('refuses to pin file:// into an InferenceService without storage.pvc, saying why and what to set', () => {
    const models = { m: { deploy: {}, versions: [{ stage: 'Production' as const, store: fileStore }] } };
    const err = (() => {
      try {
        renderPins(input(models, {}, registryConfig({ storage: { uri: fileStore } })));
      } catch (e) {
        return e as { code: string; exit: number; message: string };
      }
      return undefined;
    })();
    expect(err).toMatchObject({ code: 'E_FILE_STORE_PIN', exit: 1 });
    expect(err!.message).toMatch(/^modelgate\.yaml: models\/m would be pinned into an InferenceService as file:\/\/\/srv\//);
    expect(err!.message).toContain('KServe cannot download file:// URIs');
    expect(err!.message).toContain('Set storage.pvc: {claim, root}');
    // A claim whose root does not hold the store.
    expect(() => renderPins(input(models, {}, registryConfig({ storage: { uri: fileStore, pvc: { claim: 'c', root: '/elsewhere' } } })))).toThrow(
      expect.objectContaining({
        code: 'E_FILE_STORE_PIN',
        message: expect.stringContaining('storage.pvc.root "/elsewhere" does not contain /srv/modelgate/artifacts/m/sha256/'),
      }),
    );
  });

  it('keeps MODEL_URI file:// in a Deployment: the container reads the store its own way', () => {
    const deploy: ModelDeploy = { kind: 'Deployment', image: 'ghcr.io/acme/server:1' };
    const plan = renderPins(
      input({ m: { deploy, versions: [{ stage: 'Production', store: fileStore }] } }, {}, registryConfig({ storage: { uri: fileStore } })),
    );
    const env = pinAt(plan).spec.template.spec.containers[0].env;
    expect(env[0]).toEqual({ name: 'MODEL_URI', value: modelVersion('m', 1, { stage: 'Production', store: fileStore }).artifact.uri });
  });
});
