/** The four kinds of document a registry holds (SPEC §1–§3). Shapes match `schemas/`. */

export const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export type Stage = (typeof STAGES)[number];

export const FORMATS = ['joblib', 'pickle', 'onnx', 'safetensors', 'pt', 'mlflow', 'savedmodel', 'other'] as const;
export type ArtifactFormat = (typeof FORMATS)[number];

export interface EnvironmentConfig {
  stage: Stage;
  path: string;
  namespace?: string;
}

export interface WebhookConfig {
  url: string;
  secretEnv?: string;
  format?: 'standard' | 'slack';
}

export interface Registry {
  apiVersion: 'modelgate.dev/v1';
  kind: 'Registry';
  storage: { uri: string; region?: string; endpoint?: string; forcePathStyle?: boolean; pvc?: { claim: string; root: string } };
  environments?: Record<string, EnvironmentConfig>;
  github?: { repository: string; branch?: string };
  webhooks?: WebhookConfig[];
  /** PEM public keys whose decision records are trusted (SPEC v2 §8). */
  trust?: { keys?: string[] };
}

export interface ModelDeploy {
  /** KServe InferenceService (default) or a plain Deployment running `image`. */
  kind?: 'InferenceService' | 'Deployment';
  modelFormat?: string;
  runtime?: string;
  /** KServe inference protocol; default v2 for the mlflow format. */
  protocolVersion?: 'v1' | 'v2' | 'grpc-v1' | 'grpc-v2';
  /** Kubernetes service account of the predictor (S3 credentials the KServe way). */
  serviceAccountName?: string;
  image?: string;
  port?: number;
  replicas?: number;
  resources?: Record<string, unknown>;
}

export interface Model {
  apiVersion: 'modelgate.dev/v1';
  kind: 'Model';
  name: string;
  description?: string;
  owners?: string[];
  retired?: boolean;
  deploy?: ModelDeploy;
}

export interface ArtifactFile {
  path: string;
  sha256: string;
  size: number;
}

export interface Artifact {
  uri: string;
  sha256: string;
  size: number;
  files?: ArtifactFile[];
  /** A directory of more than 1,000 files: its canonical file list is an object in the store (SPEC v2 §5). */
  index?: ArtifactIndex;
}

export interface ArtifactIndex {
  uri: string;
  sha256: string;
  count: number;
}

export interface Lineage {
  code?: { repository?: string; commit?: string; path?: string; dirty?: boolean };
  data?: Array<{ id: string; uri?: string; sha256?: string }>;
  run?: { id?: string; url?: string; system?: string };
  environment?: {
    python?: string;
    requirements?: string;
    image?: string;
    node?: string;
    /** Environment files inside the artifact folder, with their digests. */
    files?: Array<{ path: string; sha256: string; kind?: 'conda' | 'virtualenv' | 'pip' | 'constraints' }>;
  };
}

/** A column or tensor of an MLflow signature, as MLflow serializes it (ColSpec / TensorSpec). */
export interface SignatureEntry {
  name?: string;
  type: string;
  required?: boolean;
  'tensor-spec'?: { dtype: string; shape: number[] };
  items?: SignatureType;
  properties?: Record<string, SignatureType & { required?: boolean }>;
  values?: SignatureType;
  /** Legacy (modelgate before MLflow's shape): a tensor's dimensions. */
  shape?: number[];
}

export interface SignatureType {
  type: string;
  items?: SignatureType;
  properties?: Record<string, SignatureType & { required?: boolean }>;
  values?: SignatureType;
}

/** An inference parameter of an MLflow signature (ParamSpec). */
export interface SignatureParam {
  name: string;
  type: string;
  default: unknown;
  shape?: [-1];
  properties?: Record<string, SignatureType & { required?: boolean }>;
}

/** MLflow's ModelSignature: inputs, outputs and params, each list decoded from MLmodel's JSON text. */
export interface Signature {
  inputs?: SignatureEntry[];
  outputs?: SignatureEntry[];
  params?: SignatureParam[];
}

export interface ModelVersion {
  apiVersion: 'modelgate.dev/v1';
  kind: 'ModelVersion';
  model: string;
  version: number;
  stage: Stage;
  createdAt: string;
  createdBy?: string;
  description?: string;
  artifact: Artifact;
  format: ArtifactFormat;
  framework?: { name: string; version?: string };
  metrics?: Record<string, number>;
  parameters?: Record<string, string | number | boolean>;
  signature?: Signature;
  lineage?: Lineage;
  annotations?: Record<string, string>;
}

export interface Threshold {
  min?: number;
  max?: number;
}

export interface ApprovalGroup {
  count: number;
  teams?: string[];
  users?: string[];
}

export interface PolicyRule {
  name?: string;
  to?: Stage;
  from?: Stage[];
  paths?: string[];
  /** Annotation keys this rule covers (an `annotate` change). */
  annotations?: string[];
  previously?: Stage;
  allowSkip?: boolean;
  /** One person fills one approval group only (default true). */
  distinctApprovers?: boolean;
  /** Authors and committers of the pull request's commits never count (default true). */
  excludeContributors?: boolean;
  /** `allow`: a commit whose author or committer is linked to no GitHub account does not fail the rule (default `fail`). */
  unlinkedCommits?: 'allow' | 'fail';
  approvals?: ApprovalGroup[];
  metrics?: Record<string, Threshold>;
  champion?: Record<string, { maxRegression: number }>;
  requiredFields?: string[];
  artifact?: 'full' | 'exists';
  /** `pickle`: scan the artifact's pickle streams against the allowed globals (SPEC v2 §8). */
  scan?: 'pickle';
}

export interface PromotionPolicy {
  apiVersion: 'modelgate.dev/v1';
  kind: 'PromotionPolicy';
  rules: PolicyRule[];
  models?: Record<string, { rules: PolicyRule[] }>;
  /** Globals allowed in scanned pickles besides the built-in list (SPEC v2 §8). */
  scan?: { allowGlobals?: string[] };
}
