// The rendered template, through the real `kubectl kustomize`, validated against the KServe and
// Argo CD CRD schemas (test/fixtures/crds) and the core Kubernetes schemas (kubernetes-models).
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Namespace } from 'kubernetes-models/v1';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { renderedResources } from '../src/deploy/resources.js';
import { crdValidator, type DocValidator } from './helpers/crd.js';
import { git, tempDir, write } from './helpers/pin-registry.js';

const ROOT = join(import.meta.dirname, '..');
const TEMPLATE = join(ROOT, 'registry-template');
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
function kustomize(dir: string): Array<Record<string, any>> {
  const out = execFileSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS());
}

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { cwd: ROOT, env: {}, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), tty: false });
  return { code, stdout, stderr };
}

function expectValid(validate: DocValidator, doc: unknown) {
  const ok = validate(doc);
  expect(validate.errors ?? [], JSON.stringify(validate.errors)).toEqual([]);
  expect(ok).toBe(true);
}

let isvc: DocValidator;
let application: DocValidator;
beforeAll(() => {
  isvc = crdValidator('kserve-inferenceservices.yaml', 'v1beta1');
  application = crdValidator('argocd-application.yaml', 'v1alpha1');
});

describe('the registry template', () => {
  const versions = Object.fromEntries([1, 2].map((n) => [n, parse(readFileSync(join(TEMPLATE, `models/fraud-detector/versions/${n}.yaml`), 'utf8'))]));
  const servedIn = (stage: string) =>
    Object.values(versions)
      .filter((v) => v.stage === stage)
      .sort((a, b) => b.version - a.version)[0];

  it('is in sync: `sync --check` passes on a copy of it', async () => {
    const copy = tempDir('template');
    cpSync(TEMPLATE, copy, { recursive: true });
    const r = await cli(['--registry', copy, 'sync', '--check']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('in sync');
  });

  for (const [env, stage, namespace] of [
    ['production', 'Production', 'models'],
    ['staging', 'Staging', 'models-staging'],
  ] as const) {
    it(`kubectl kustomize deploy/${env} pins the ${stage} version and validates against the CRDs`, () => {
      const docs = kustomize(join(TEMPLATE, 'deploy', env));
      const expected = servedIn(stage);
      const services = docs.filter((d) => d.kind === 'InferenceService');
      expect(services).toHaveLength(1);
      const s = services[0]!;
      expect(s.metadata.name).toBe('fraud-detector');
      expect(s.metadata.namespace).toBe(namespace);
      // The template's store is file://: KServe reads it through the claim modelgate.yaml names.
      expect(s.spec.predictor.model.storageUri).toBe(pvcUri(expected.artifact.uri));
      expect(s.metadata.annotations['modelgate.dev/artifact-uri']).toBe(expected.artifact.uri);
      expect(s.metadata.annotations['modelgate.dev/sha256']).toBe(expected.artifact.sha256);
      expect(s.metadata.labels['modelgate.dev/version']).toBe(String(expected.version));
      expect(s.metadata.labels['modelgate.dev/environment']).toBe(env);
      expectValid(isvc, s);
      const ns = docs.filter((d) => d.kind === 'Namespace');
      expect(ns.map((n) => n.metadata.name)).toEqual([namespace]);
      for (const n of ns) new Namespace(n as never).validate();
    });
  }

  for (const env of ['staging', 'production', 'canary']) {
    it(`argocd/${env}.yaml is a valid Application syncing deploy/${env} without pruning or empty syncs`, () => {
      const app = parse(readFileSync(join(TEMPLATE, 'argocd', `${env}.yaml`), 'utf8'));
      expectValid(application, app);
      expect(app.spec.source.path).toBe(`deploy/${env}`);
      expect(app.spec.syncPolicy.automated).toEqual({ prune: false, selfHeal: true, allowEmpty: false });
      expect(app.metadata.finalizers ?? []).not.toContain('resources-finalizer.argocd.argoproj.io');
    });
  }
});

describe('schemas catch bad renders', () => {
  it('the KServe schema rejects an InferenceService with a misplaced storageUri', () => {
    const bad = {
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: { name: 'x' },
      spec: { predictor: { model: { storageUri: 5 } } },
    };
    expect(isvc(bad)).toBe(false);
  });

  it('the Argo CD schema rejects an Application without a destination', () => {
    expect(
      application({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'x' }, spec: { project: 'default', source: { repoURL: 'x' } } }),
    ).toBe(false);
  });
});

describe('a synced registry with a custom server', () => {
  it('renders a Deployment that kustomize accepts and the core schema validates', async () => {
    const dir = tempDir('kustomize');
    cpSync(TEMPLATE, dir, { recursive: true });
    write(
      dir,
      'models/scorer/model.yaml',
      'apiVersion: modelgate.dev/v1\nkind: Model\nname: scorer\nowners: [maria]\ndeploy: {kind: Deployment, image: "ghcr.io/acme/scorer:1.4", port: 8080}\n',
    );
    const v1 = readFileSync(join(TEMPLATE, 'models/fraud-detector/versions/1.yaml'), 'utf8').replaceAll('fraud-detector', 'scorer');
    write(dir, 'models/scorer/versions/1.yaml', v1);
    expect((await cli(['--registry', dir, 'sync'])).code).toBe(0);
    const docs = kustomize(join(dir, 'deploy/production'));
    const d = docs.find((x) => x.kind === 'Deployment')!;
    expect(d.metadata.namespace).toBe('models');
    expect(d.spec.template.spec.containers[0].env).toEqual([
      { name: 'MODEL_URI', value: parse(v1).artifact.uri },
      { name: 'MODEL_SHA256', value: parse(v1).artifact.sha256 },
    ]);
    new Deployment(d as never).validate();
    // Everything else the environment renders validates too: the pinned InferenceService and the Namespace.
    expect(docs.map((x) => x.kind).sort()).toEqual(['Deployment', 'InferenceService', 'Namespace']);
    expectValid(
      isvc,
      docs.find((x) => x.kind === 'InferenceService'),
    );
    new Namespace(docs.find((x) => x.kind === 'Namespace') as never).validate();
    // The selector must not carry the version: it is immutable, a new pin must roll pods, not fail.
    expect(Object.keys(d.spec.selector.matchLabels)).toEqual(['modelgate.dev/model']);
    // A broken core object is caught by the same validation.
    const broken = structuredClone(d);
    broken.spec.replicas = 'two';
    expect(() => new Deployment(broken as never).validate()).toThrow();
  });
});

describe('an environment configured beyond the defaults', () => {
  it('a third environment at its own path and namespace renders through kustomize and validates', async () => {
    const dir = tempDir('third-env');
    cpSync(TEMPLATE, dir, { recursive: true });
    const config = readFileSync(join(dir, 'modelgate.yaml'), 'utf8');
    const line = '  production: {stage: Production, path: deploy/production, namespace: models}\n';
    expect(config).toContain(line);
    write(dir, 'modelgate.yaml', config.replace(line, `${line}  eu-canary: {stage: Staging, path: clusters/eu/canary, namespace: models-canary}\n`));
    const before = Object.fromEntries(
      ['production', 'staging'].flatMap((e) =>
        ['kustomization', 'fraud-detector'].map((f) => [`${e}/${f}`, readFileSync(join(dir, `deploy/${e}/${f}.yaml`), 'utf8')]),
      ),
    );
    const r = await cli(['--registry', dir, 'sync']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('fraud-detector eu-canary v2 (new pin)');
    // The two environments that were in sync are left alone, byte for byte.
    for (const [f, text] of Object.entries(before)) expect(readFileSync(join(dir, `deploy/${f}.yaml`), 'utf8'), f).toBe(text);
    const docs = kustomize(join(dir, 'clusters/eu/canary'));
    const s = docs.find((d) => d.kind === 'InferenceService')!;
    expect(s.metadata.namespace).toBe('models-canary');
    expect(s.spec.predictor.model.storageUri).toBe(pvcUri(servedStaging().artifact.uri));
    expect(s.metadata.annotations['modelgate.dev/sha256']).toBe(servedStaging().artifact.sha256);
    expectValid(isvc, s);
    const ns = docs.filter((d) => d.kind === 'Namespace');
    expect(ns.map((n) => n.metadata.name)).toEqual(['models-canary']);
    for (const n of ns) new Namespace(n as never).validate();
    expect((await cli(['--registry', dir, 'sync', '--check'])).code).toBe(0);
  });
});

/** The pvc:// URI of a file:// artifact under the template's storage.pvc. */
function pvcUri(uri: string): string {
  const { pvc } = parse(readFileSync(join(TEMPLATE, 'modelgate.yaml'), 'utf8')).storage;
  const path = new URL(uri).pathname;
  expect(path.startsWith(`${pvc.root}/`)).toBe(true);
  return `pvc://${pvc.claim}/${path.slice(pvc.root.length + 1)}`;
}

function servedStaging(): { artifact: { uri: string; sha256: string } } {
  return [1, 2]
    .map((n) => parse(readFileSync(join(TEMPLATE, `models/fraud-detector/versions/${n}.yaml`), 'utf8')))
    .filter((v) => v.stage === 'Staging')
    .sort((a, b) => b.version - a.version)[0];
}

describe('an MLflow model folder registered and served by KServe', () => {
  it('registers into the file store, pins pvc:// with protocolVersion v2 and the service account, and kustomize output validates', async () => {
    const dir = tempDir('mlflow');
    const r0 = await cli(['init', dir, '--store', `file://${join(dir, '..', `${dir.split('/').pop()}-store`)}`]);
    expect(r0.code, r0.stderr).toBe(0);
    write(
      dir,
      'models/churn/model.yaml',
      'apiVersion: modelgate.dev/v1\nkind: Model\nname: churn\nowners: [maria]\ndeploy:\n  serviceAccountName: models-s3   # S3 credentials\n',
    );
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', 'Describe churn');
    const model = tempDir('mlflow-model');
    write(
      model,
      'MLmodel',
      'artifact_path: model\nflavors:\n  python_function: {loader_module: mlflow.sklearn, python_version: 3.11.7}\n  sklearn: {pickled_model: model.pkl, sklearn_version: 1.3.0}\n',
    );
    // A pickle of no global (the integer 1): the MLmodel makes MLflow unpickle it, so the scan reads it as one.
    write(model, 'model.pkl', 'I1\n.');
    write(model, 'python_env.yaml', 'python: 3.11.7\n');
    const reg = await cli(['--registry', dir, '--quiet', 'register', 'churn', model, '--stage', 'Staging']);
    expect(reg.code, reg.stderr).toBe(0);
    const docs = kustomize(join(dir, 'deploy/staging'));
    const s = docs.find((d) => d.kind === 'InferenceService')!;
    expect(s.spec.predictor.serviceAccountName).toBe('models-s3');
    expect(s.spec.predictor.model).toMatchObject({ modelFormat: { name: 'mlflow' }, protocolVersion: 'v2' });
    expect(s.spec.predictor.model.storageUri).toMatch(/^pvc:\/\/modelgate-artifacts\/churn\/sha256\/[0-9a-f]{64}$/);
    expectValid(isvc, s);
    // A second sync over its own output changes nothing.
    expect((await cli(['--registry', dir, 'sync', '--check'])).code).toBe(0);
  });
});

describe('whole environments: every resource has its own kind, namespace and name after rendering', () => {
  const SHADOW =
    'apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: scorer\nspec: {predictor: {model: {modelFormat: {name: sklearn}, storageUri: "s3://ml-models/shadow/model.joblib"}}}\n';
  const listShadow = (dir: string, file: string) => {
    const k = join(dir, 'deploy/production/kustomization.yaml');
    write(dir, 'deploy/production/kustomization.yaml', `${readFileSync(k, 'utf8')}  - ${file}\n`);
  };
  /** The template plus a model `scorer` with its first version in Production. */
  const withScorer = () => {
    const dir = tempDir('collision');
    cpSync(TEMPLATE, dir, { recursive: true });
    write(dir, 'models/scorer/model.yaml', 'apiVersion: modelgate.dev/v1\nkind: Model\nname: scorer\nowners: [maria]\ndeploy: {}\n');
    const v1 = parse(readFileSync(join(TEMPLATE, 'models/fraud-detector/versions/1.yaml'), 'utf8'));
    expect(v1.stage).toBe('Production');
    write(
      dir,
      'models/scorer/versions/1.yaml',
      readFileSync(join(TEMPLATE, 'models/fraud-detector/versions/1.yaml'), 'utf8').replaceAll('fraud-detector', 'scorer'),
    );
    return dir;
  };
  const errorCode = (r: { stdout: string }) => JSON.parse(r.stdout).error?.code;

  it("refuses a pin that takes a hand-written resource's kind, namespace and name, where kubectl kustomize fails too", async () => {
    // What a merge without the check leaves: the pin rendered, then the hand-written service listed beside it.
    const merged = withScorer();
    expect((await cli(['--registry', merged, 'sync'])).code).toBe(0);
    write(merged, 'deploy/production/shadow.yaml', SHADOW);
    listShadow(merged, 'shadow.yaml');
    expect(() => execFileSync(KUBECTL, ['kustomize', join(merged, 'deploy/production')], { encoding: 'utf8', stdio: 'pipe' })).toThrow(
      /ID conflict|already registered id/,
    );
    const check = await cli(['--registry', merged, '--json', 'sync', '--check']);
    expect(check.code).toBe(1);
    expect(errorCode(check)).toBe('E_RESOURCE_COLLISION');

    // The other order: the hand-written service is there first, and sync refuses to add the pin, writing nothing.
    const first = withScorer();
    write(first, 'deploy/production/shadow.yaml', SHADOW);
    listShadow(first, 'shadow.yaml');
    expect(kustomize(join(first, 'deploy/production')).map((d) => d.metadata.name)).toContain('scorer');
    const before = readFileSync(join(first, 'deploy/production/kustomization.yaml'), 'utf8');
    const r = await cli(['--registry', first, '--json', 'sync']);
    expect(r.code).toBe(1);
    expect(errorCode(r)).toBe('E_RESOURCE_COLLISION');
    expect(JSON.parse(r.stdout).error.message).toMatch(/deploy\/production\/scorer\.yaml/);
    expect(readFileSync(join(first, 'deploy/production/kustomization.yaml'), 'utf8')).toBe(before);
  });

  it('passes what kubectl kustomize renders: the same name on another kind, or in a folder the kustomization does not list', async () => {
    const dir = withScorer();
    write(dir, 'deploy/production/shadow-service.yaml', 'apiVersion: v1\nkind: Service\nmetadata:\n  name: scorer\nspec: {ports: [{port: 80}]}\n');
    listShadow(dir, 'shadow-service.yaml');
    write(dir, 'deploy/production/unlisted/shadow.yaml', SHADOW);
    const r = await cli(['--registry', dir, 'sync']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const docs = kustomize(join(dir, 'deploy/production'));
    expect(
      docs
        .filter((d) => d.metadata.name === 'scorer')
        .map((d) => d.kind)
        .sort(),
    ).toEqual(['InferenceService', 'Service']);
    expect((await cli(['--registry', dir, 'sync', '--check'])).code).toBe(0);
  });
});

describe('the environment check agrees with kubectl kustomize', () => {
  const isvc = (name: string, extra = '') => `apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: ${name}\n${extra}`;
  const cases: Array<[string, Record<string, string>, boolean]> = [
    ['one name in two files', { 'env/kustomization.yaml': 'resources:\n- a.yaml\n- b.yaml\n', 'env/a.yaml': isvc('x'), 'env/b.yaml': isvc('x') }, false],
    [
      'one name, two kinds',
      {
        'env/kustomization.yaml': 'resources:\n- a.yaml\n- b.yaml\n',
        'env/a.yaml': isvc('x'),
        'env/b.yaml': 'apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n',
      },
      true,
    ],
    ['two documents of one file', { 'env/kustomization.yaml': 'resources:\n- a.yaml\n', 'env/a.yaml': `${isvc('x')}---\n${isvc('x')}` }, false],
    [
      'two namespaces as written, one after the namespace transformer',
      {
        'env/kustomization.yaml': 'namespace: models\nresources:\n- a.yaml\n- b.yaml\n',
        'env/a.yaml': isvc('x', '  namespace: a\n'),
        'env/b.yaml': isvc('x', '  namespace: b\n'),
      },
      false,
    ],
    [
      'two namespaces, no transformer',
      {
        'env/kustomization.yaml': 'resources:\n- a.yaml\n- b.yaml\n',
        'env/a.yaml': isvc('x', '  namespace: a\n'),
        'env/b.yaml': isvc('x', '  namespace: b\n'),
      },
      true,
    ],
    [
      'a base whose name prefix makes the names meet',
      {
        'env/kustomization.yaml': 'resources:\n- ../base\n- a.yaml\n',
        'env/a.yaml': isvc('pre-x'),
        'base/kustomization.yaml': 'namePrefix: pre-\nresources:\n- b.yaml\n',
        'base/b.yaml': isvc('x'),
      },
      false,
    ],
    [
      'a base with the same name under another prefix',
      {
        'env/kustomization.yaml': 'resources:\n- ../base\n- a.yaml\n',
        'env/a.yaml': isvc('x'),
        'base/kustomization.yaml': 'namePrefix: pre-\nresources:\n- b.yaml\n',
        'base/b.yaml': isvc('x'),
      },
      true,
    ],
    [
      'a cluster-scoped Namespace is not moved into the namespace',
      {
        'env/kustomization.yaml': 'namespace: models\nresources:\n- a.yaml\n- b.yaml\n',
        'env/a.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: models\n',
        'env/b.yaml': isvc('models'),
      },
      true,
    ],
  ];
  it.each(cases)('%s', (_, files, renders) => {
    const dir = tempDir('kustomize-agree');
    for (const [path, text] of Object.entries(files)) write(dir, path, text);
    let kubectl = true;
    try {
      execFileSync(KUBECTL, ['kustomize', join(dir, 'env')], { encoding: 'utf8', stdio: 'pipe' });
    } catch {
      kubectl = false;
    }
    let ours = true;
    try {
      renderedResources('env', { files: new Map(Object.entries(files)), known: new Map() });
    } catch (e) {
      expect((e as { code?: string }).code).toBe('E_RESOURCE_COLLISION');
      ours = false;
    }
    expect({ kubectl, ours }).toEqual({ kubectl: renders, ours: renders });
  });
});
