import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Artifact, ArtifactFormat, Model, ModelDeploy, ModelVersion, Registry, Stage } from '../manifest/types.js';
import type { YamlPath } from './yaml-splice.js';

/** An environment Argo CD syncs: its name, the stage (or the alias, SPEC v3 §9) that serves it, and its folder. */
export interface Environment {
  name: string;
  /** Exactly one of stage and alias. */
  stage?: Stage;
  alias?: string;
  /** Registry-relative folder, e.g. `deploy/production`. */
  path: string;
  namespace?: string;
}

/** The stages the environments serve (alias environments have none). */
export function environmentStages(environments: readonly Environment[]): Set<Stage> {
  return new Set(environments.flatMap((e) => (e.stage ? [e.stage] : [])));
}

/** The aliases the environments follow. */
export function environmentAliases(environments: readonly Environment[]): Set<string> {
  return new Set(environments.flatMap((e) => (e.alias !== undefined ? [e.alias] : [])));
}

const DEFAULT_ENVIRONMENTS: Environment[] = [
  { name: 'staging', stage: 'Staging', path: 'deploy/staging' },
  { name: 'production', stage: 'Production', path: 'deploy/production' },
];

const LABEL_MODEL = 'modelgate.dev/model';
const LABEL_VERSION = 'modelgate.dev/version';
const ANNOTATION_SHA256 = 'modelgate.dev/sha256';
const ANNOTATION_VERSION = 'modelgate.dev/version';
const ANNOTATION_URI = 'modelgate.dev/artifact-uri';

/** The shared kustomize base: never an environment's folder, `sync` does not edit it. */
export const BASE_PATH = 'deploy/base';

/**
 * The environments of a registry, in `modelgate.yaml` order; paths are checked to stay inside it,
 * to differ from each other (two environments writing one folder would overwrite each other's
 * pins on every sync) and to leave the shared base alone.
 */
export function environmentsOf(registry: Registry): Environment[] {
  if (!registry.environments) return DEFAULT_ENVIRONMENTS;
  const owner = new Map<string, string>();
  return Object.entries(registry.environments).map(([name, e]) => {
    const path = posix.normalize(e.path).replace(/\/$/, '');
    const refuse = (why: string) =>
      new ModelgateError('E_ENVIRONMENT_PATH', `modelgate.yaml: environments.${name}.path ${JSON.stringify(e.path)} ${why}`, ExitCode.content);
    if (posix.isAbsolute(path) || path === '.' || path.split('/').includes('..')) throw refuse('must be a folder inside the registry');
    if (path === BASE_PATH) throw refuse(`is the shared base ${BASE_PATH}, which sync never edits`);
    if (owner.has(path)) throw refuse(`is also environments.${owner.get(path)}.path`);
    owner.set(path, name);
    return { name, ...(e.alias !== undefined ? { alias: e.alias } : { stage: e.stage }), path, ...(e.namespace ? { namespace: e.namespace } : {}) };
  });
}

const FORMAT_TO_KSERVE: Partial<Record<ArtifactFormat, string>> = {
  joblib: 'sklearn',
  pickle: 'sklearn',
  onnx: 'onnx',
  pt: 'pytorch',
  safetensors: 'huggingface',
  mlflow: 'mlflow',
  savedmodel: 'tensorflow',
};

/**
 * KServe model formats whose runtime loads a model *folder*, and the file it looks for at the
 * folder's top (when there is one to check): the Hugging Face server reads config.json beside
 * the weights, MLflow's reads MLmodel, TensorFlow Serving a SavedModel folder and TorchServe a
 * model store (config/ and model-store/*.mar). A single file pinned with one of these formats
 * is admitted by KServe and then fails in the server, so it is refused here.
 */
const FOLDER_FORMATS: Record<string, { marker?: string; what: string }> = {
  huggingface: { marker: 'config.json', what: 'a Hugging Face model folder (config.json beside the weights)' },
  mlflow: { marker: 'MLmodel', what: 'an MLflow model folder (MLmodel at its top)' },
  tensorflow: { what: 'a TensorFlow SavedModel folder' },
  pytorch: { what: 'a TorchServe model store folder (config/config.properties and model-store/*.mar)' },
};

const isFolder = (a: Artifact) => a.files !== undefined || a.uri.endsWith('/');

/**
 * KServe's modelFormat.name: from the model's settings, else derived from the version's format;
 * either way the artifact must be something that format's runtime can load (see FOLDER_FORMATS).
 */
function kserveModelFormat(deploy: ModelDeploy, version: ModelVersion, model: string): string {
  const file = `models/${model}/model.yaml`;
  const name = deploy.modelFormat ?? FORMAT_TO_KSERVE[version.format];
  if (!name) {
    throw new ModelgateError(
      'E_DEPLOY_SETTINGS',
      `${file}: deploy.modelFormat is required: version ${version.version} has format ${version.format}, which KServe cannot infer`,
      ExitCode.content,
    );
  }
  const folder = FOLDER_FORMATS[name];
  if (!folder) return name;
  const refuse = (what: string) =>
    new ModelgateError(
      'E_DEPLOY_FORMAT',
      `${file}: version ${version.version} cannot be served as KServe model format ${name}${deploy.modelFormat ? ' (deploy.modelFormat)' : ` (derived from format ${version.format})`}: ` +
        `its runtime loads ${folder.what}, and the artifact ${what}. Register the model folder, or set deploy.modelFormat (and deploy.runtime) to a runtime that loads this artifact`,
      ExitCode.content,
      { file },
    );
  if (!isFolder(version.artifact)) throw refuse('is a single file');
  const files = version.artifact.files;
  if (folder.marker && files && !files.some((f) => f.path === folder.marker)) throw refuse(`has no ${folder.marker} at its top`);
  return name;
}

/**
 * Formats whose runtime in a default KServe installation is found only for protocol v2: MLflow's
 * (MLServer) and ONNX's (Triton; KServe's ONNX guide: without v2, "no runtime found").
 */
const V2_FORMATS = new Set(['mlflow', 'onnx']);

/** KServe's protocolVersion: the model's setting, else v2 for the formats that need it. */
function protocolVersion(deploy: ModelDeploy, format: string): string | undefined {
  return deploy.protocolVersion ?? (V2_FORMATS.has(format) ? 'v2' : undefined);
}

/**
 * The URI an InferenceService downloads. KServe cannot read `file://`: a file store is served
 * through the PersistentVolumeClaim that mounts its folder (`storage.pvc`), as
 * `pvc://<claim>/<path below root>` (the path as it is on the volume, not percent-encoded);
 * without one the pin is refused, saying what to set.
 */
function servedUri(artifactUri: string, storage: Registry['storage'] | undefined, model: string): string {
  if (!artifactUri.startsWith('file://')) return artifactUri;
  const pvc = storage?.pvc;
  if (!pvc) {
    throw new ModelgateError(
      'E_FILE_STORE_PIN',
      `modelgate.yaml: models/${model} would be pinned into an InferenceService as ${artifactUri}, but KServe cannot download file:// URIs ` +
        `(its storage initializer reads s3://, gs://, https:// and pvc://). Set storage.pvc: {claim, root} in modelgate.yaml (the PersistentVolumeClaim ` +
        `that mounts the store's folder, and that folder's path), use an s3:// store, or serve it with deploy.kind: Deployment`,
      ExitCode.content,
      { file: 'modelgate.yaml' },
    );
  }
  let path: string;
  try {
    path = fileURLToPath(artifactUri.replace(/(?<!\/)\/+$/, ''));
  } catch {
    throw new ModelgateError('E_FILE_STORE_PIN', `models/${model}: artifact URI ${artifactUri} is not a file:///path URI`, ExitCode.content);
  }
  const relative = posix.relative(posix.normalize(pvc.root), path);
  if (!relative || relative === '..' || relative.startsWith('../') || posix.isAbsolute(relative)) {
    throw new ModelgateError(
      'E_FILE_STORE_PIN',
      `modelgate.yaml: storage.pvc.root ${JSON.stringify(pvc.root)} does not contain ${path} (models/${model}), so it has no path on claim ${pvc.claim}`,
      ExitCode.content,
      { file: 'modelgate.yaml' },
    );
  }
  return `pvc://${pvc.claim}/${relative}`;
}

/** The serving resource kind a model's settings ask for. */
export function resourceKind(deploy: ModelDeploy): 'InferenceService' | 'Deployment' {
  return deploy.kind ?? 'InferenceService';
}

interface PinTarget {
  model: Model;
  deploy: ModelDeploy;
  version: ModelVersion;
  environment: Environment;
  /** The registry's storage settings: a file:// artifact is served through `storage.pvc`. */
  storage?: Registry['storage'];
}

function pinMetadata(t: PinTarget) {
  const v = String(t.version.version);
  return {
    name: t.model.name,
    ...(t.environment.namespace ? { namespace: t.environment.namespace } : {}),
    labels: {
      'app.kubernetes.io/name': t.model.name,
      'app.kubernetes.io/managed-by': 'modelgate',
      [LABEL_MODEL]: t.model.name,
      [LABEL_VERSION]: v,
    },
    annotations: {
      [ANNOTATION_VERSION]: v,
      [ANNOTATION_SHA256]: t.version.artifact.sha256,
      [ANNOTATION_URI]: t.version.artifact.uri,
    },
  };
}

function deploymentImage(t: PinTarget): string {
  if (!t.deploy.image) {
    throw new ModelgateError('E_DEPLOY_SETTINGS', `models/${t.model.name}/model.yaml: deploy.kind Deployment needs deploy.image`, ExitCode.content);
  }
  return t.deploy.image;
}

const HEADER = (model: string) =>
  `# Pinned by \`modelgate sync\` from models/${model}: the artifact URI and sha256, the model\n` +
  `# format, protocol, runtime and service account (or image) and the modelgate.dev labels and\n` +
  `# annotations are rewritten on each sync.\n` +
  `# Everything else here, comments included, is yours and is kept as written.\n`;

/** The full text of a new pin file. */
export function renderResource(t: PinTarget): string {
  const metadata = pinMetadata(t);
  let resource: unknown;
  if (resourceKind(t.deploy) === 'InferenceService') {
    const format = kserveModelFormat(t.deploy, t.version, t.model.name);
    const protocol = protocolVersion(t.deploy, format);
    resource = {
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata,
      spec: {
        predictor: {
          ...(t.deploy.serviceAccountName ? { serviceAccountName: t.deploy.serviceAccountName } : {}),
          ...(t.deploy.replicas !== undefined ? { minReplicas: t.deploy.replicas } : {}),
          model: {
            modelFormat: { name: format },
            ...(protocol ? { protocolVersion: protocol } : {}),
            ...(t.deploy.runtime ? { runtime: t.deploy.runtime } : {}),
            storageUri: servedUri(t.version.artifact.uri, t.storage, t.model.name),
            ...(t.deploy.resources ? { resources: t.deploy.resources } : {}),
          },
        },
      },
    };
  } else {
    const container = {
      name: 'model',
      image: deploymentImage(t),
      env: [
        { name: 'MODEL_URI', value: t.version.artifact.uri },
        { name: 'MODEL_SHA256', value: t.version.artifact.sha256 },
      ],
      ...(t.deploy.port !== undefined ? { ports: [{ name: 'http', containerPort: t.deploy.port }] } : {}),
      ...(t.deploy.resources ? { resources: t.deploy.resources } : {}),
    };
    resource = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata,
      spec: {
        replicas: t.deploy.replicas ?? 1,
        selector: { matchLabels: { [LABEL_MODEL]: t.model.name } },
        template: {
          metadata: { labels: { [LABEL_MODEL]: t.model.name, [LABEL_VERSION]: metadata.labels[LABEL_VERSION] }, annotations: metadata.annotations },
          spec: { containers: [container] },
        },
      },
    };
  }
  return HEADER(t.model.name) + stringify(resource, { lineWidth: 0, aliasDuplicateObjects: false });
}

/**
 * The scalars `sync` owns in an existing pin file, as paths into `current` (the parsed file).
 * Everything else in the file belongs to whoever edited it.
 */
export function pinnedScalars(t: PinTarget, current: unknown, file: string): Array<{ path: YamlPath; value: string }> {
  const v = String(t.version.version);
  const { sha256, uri } = t.version.artifact;
  const edits: Array<{ path: YamlPath; value: string }> = [
    { path: ['metadata', 'labels', LABEL_MODEL], value: t.model.name },
    { path: ['metadata', 'labels', LABEL_VERSION], value: v },
    { path: ['metadata', 'annotations', ANNOTATION_VERSION], value: v },
    { path: ['metadata', 'annotations', ANNOTATION_SHA256], value: sha256 },
    { path: ['metadata', 'annotations', ANNOTATION_URI], value: uri },
  ];
  if (resourceKind(t.deploy) === 'InferenceService') {
    const model = ['spec', 'predictor', 'model'];
    const format = kserveModelFormat(t.deploy, t.version, t.model.name);
    const protocol = protocolVersion(t.deploy, format);
    if (t.deploy.serviceAccountName) edits.push({ path: ['spec', 'predictor', 'serviceAccountName'], value: t.deploy.serviceAccountName });
    edits.push({ path: [...model, 'modelFormat', 'name'], value: format });
    if (protocol) edits.push({ path: [...model, 'protocolVersion'], value: protocol });
    if (t.deploy.runtime) edits.push({ path: [...model, 'runtime'], value: t.deploy.runtime });
    edits.push({ path: [...model, 'storageUri'], value: servedUri(uri, t.storage, t.model.name) });
    return edits;
  }
  const containers = (current as { spec?: { template?: { spec?: { containers?: unknown } } } })?.spec?.template?.spec?.containers;
  const list = Array.isArray(containers) ? (containers as Array<{ name?: string; env?: Array<{ name?: string }> }>) : [];
  const index = list.findIndex((c) => c?.env?.some((e) => e?.name === 'MODEL_URI'));
  if (index < 0) throw new ModelgateError('E_DEPLOY_EDIT', `${file}: no container has a MODEL_URI environment variable to pin`, ExitCode.content, { file });
  const env = list[index]!.env!;
  const at = (name: string) => {
    const i = env.findIndex((e) => e?.name === name);
    if (i < 0)
      throw new ModelgateError('E_DEPLOY_EDIT', `${file}: container ${list[index]!.name ?? index} has no ${name} environment variable`, ExitCode.content, {
        file,
      });
    return ['spec', 'template', 'spec', 'containers', index, 'env', i, 'value'];
  };
  const template = ['spec', 'template', 'metadata'];
  edits.push(
    { path: [...template, 'labels', LABEL_VERSION], value: v },
    { path: [...template, 'annotations', ANNOTATION_VERSION], value: v },
    { path: [...template, 'annotations', ANNOTATION_SHA256], value: sha256 },
    { path: [...template, 'annotations', ANNOTATION_URI], value: uri },
    { path: ['spec', 'template', 'spec', 'containers', index, 'image'], value: deploymentImage(t) },
    { path: at('MODEL_URI'), value: uri },
    { path: at('MODEL_SHA256'), value: sha256 },
  );
  return edits;
}

/** The version a pin file currently names, from its annotation (or label); undefined when unreadable. */
export function pinnedVersion(current: unknown): number | undefined {
  const meta = (current as { metadata?: { annotations?: Record<string, unknown>; labels?: Record<string, unknown> } })?.metadata;
  const raw = meta?.annotations?.[ANNOTATION_VERSION] ?? meta?.labels?.[LABEL_VERSION];
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/** The kind of an existing pin file, to notice a settings switch between InferenceService and Deployment. */
export function kindOf(current: unknown): string | undefined {
  const kind = (current as { kind?: unknown })?.kind;
  return typeof kind === 'string' ? kind : undefined;
}
