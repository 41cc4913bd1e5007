// Registry fixtures for the deploy-pin tests: real files in a temp folder, optionally a git
// repository with a bare remote.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import type { Model, ModelDeploy, ModelVersion, Registry, Stage } from '../../src/manifest/types.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

export interface VersionSpec {
  stage: Stage;
  format?: ModelVersion['format'];
  /** A directory artifact with these file paths (digests derived from the names). */
  files?: string[];
  /** The store the artifact lives in (default STORE). */
  store?: string;
}

export interface ModelSpec {
  deploy?: ModelDeploy;
  retired?: boolean;
  versions: VersionSpec[];
}

const STORE = 's3://ml-models/registry';

export function modelVersion(model: string, version: number, spec: VersionSpec): ModelVersion {
  const digest = sha(`${model}@${version}`);
  const format = spec.format ?? 'joblib';
  const store = spec.store ?? STORE;
  const artifact: ModelVersion['artifact'] = spec.files
    ? {
        uri: `${store}/${model}/sha256/${digest}/`,
        sha256: digest,
        size: 1234 * spec.files.length,
        files: spec.files.map((path) => ({ path, sha256: sha(`${model}@${version}/${path}`), size: 1234 })),
      }
    : { uri: `${store}/${model}/sha256/${digest}/model.${format}`, sha256: digest, size: 1234 };
  return {
    apiVersion: 'modelgate.dev/v1',
    kind: 'ModelVersion',
    model,
    version,
    stage: spec.stage,
    createdAt: '2026-11-27T10:00:00Z',
    createdBy: 'maria',
    artifact,
    format,
  };
}

export function registryConfig(extra: Partial<Registry> = {}): Registry {
  return {
    apiVersion: 'modelgate.dev/v1',
    kind: 'Registry',
    storage: { uri: STORE, region: 'us-east-1' },
    environments: {
      staging: { stage: 'Staging', path: 'deploy/staging', namespace: 'models-staging' },
      production: { stage: 'Production', path: 'deploy/production', namespace: 'models' },
    },
    ...extra,
  };
}

export function modelDoc(name: string, spec: ModelSpec): Model {
  return {
    apiVersion: 'modelgate.dev/v1',
    kind: 'Model',
    name,
    owners: ['maria'],
    ...(spec.retired ? { retired: true } : {}),
    ...(spec.deploy ? { deploy: spec.deploy } : {}),
  };
}

export function write(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

/** Writes modelgate.yaml and the models; returns the folder. */
export function writeRegistry(root: string, models: Record<string, ModelSpec>, config: Registry = registryConfig()): string {
  write(root, 'modelgate.yaml', stringify(config));
  for (const [name, spec] of Object.entries(models)) writeModel(root, name, spec);
  return root;
}

export function writeModel(root: string, name: string, spec: ModelSpec): void {
  write(root, `models/${name}/model.yaml`, stringify(modelDoc(name, spec)));
  spec.versions.forEach((v, i) => write(root, `models/${name}/versions/${i + 1}.yaml`, stringify(modelVersion(name, i + 1, v))));
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `modelgate-${prefix}-`));
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'maria',
      GIT_AUTHOR_EMAIL: 'maria@example.com',
      GIT_COMMITTER_NAME: 'maria',
      GIT_COMMITTER_EMAIL: 'maria@example.com',
    },
  });
}

/** `git init` + first commit of everything in `dir`, on main. */
export function initRepo(dir: string): void {
  git(dir, 'init', '--quiet', '--initial-branch=main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '--quiet', '-m', 'registry');
}

const execFileAsync = promisify(execFile);

/** Async git, for commands that talk to a server running in this same process (execFileSync would deadlock it). */
export async function gitAsync(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'maria',
      GIT_AUTHOR_EMAIL: 'maria@example.com',
      GIT_COMMITTER_NAME: 'maria',
      GIT_COMMITTER_EMAIL: 'maria@example.com',
    },
  });
  return stdout;
}

/**
 * Moves a version to `stage` as `modelgate promote` does: a version entering Production
 * archives the version that held it, so the registry stays valid (one Production per model).
 */
export function setStage(root: string, model: string, version: number, stage: string): void {
  const dir = join(root, `models/${model}/versions`);
  if (stage === 'Production') {
    for (const file of readdirSync(dir)) {
      const path = join(dir, file);
      const text = readFileSync(path, 'utf8');
      if (file !== `${version}.yaml` && /^stage: Production$/m.test(text)) writeFileSync(path, text.replace(/^stage: .*$/m, 'stage: Archived'));
    }
  }
  const path = join(dir, `${version}.yaml`);
  writeFileSync(path, readFileSync(path, 'utf8').replace(/^stage: .*$/m, `stage: ${stage}`));
}
