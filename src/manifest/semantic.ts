import { isModelName, MODEL_NAME, parseAliasesPath, parseManifestPath } from '../registry/layout.js';
import { directoryDigest } from '../store/directory-digest.js';
import { INDEX_NAME, INDEX_THRESHOLD } from '../store/dir-index.js';
import { assertRelativePath, parseStoreUri } from '../store/layout.js';
import { fileRules } from './load.js';
import type { Problem } from './problem.js';
import type { Model, ModelAliases, ModelVersion, Registry } from './types.js';

/** The fields of a version the cross-file rules read; a whole ModelVersion fits. */
export type VersionFacts = Pick<ModelVersion, 'model' | 'version' | 'stage' | 'artifact'>;

/** What the cross-file rules look at: the documents that loaded, and the files that exist. */
export interface RegistryDocuments {
  /** modelgate.yaml, when it loaded; without it the artifact URI rule is skipped. */
  config?: Registry;
  models: Array<{ file: string; value: Model }>;
  versions: Array<{ file: string; value: VersionFacts }>;
  /**
   * Every path under `models/` (registry-relative; an entry with nothing under it may be a file
   * or an empty folder). Needed for the folder-name, stray-file and missing-model rules; when
   * absent, those rules use the loaded documents only.
   */
  files?: string[];
  /**
   * Versions read for their stage only (the unselected versions of a model a partial validation
   * involves): they count for the one-Production rule and nothing else.
   */
  stages?: Array<{ file: string; value: Pick<VersionFacts, 'model' | 'version' | 'stage'> }>;
  /** The aliases files that loaded (SPEC v3 §9); every version of their models is in `versions` or `stages`. */
  aliases?: Array<{ file: string; value: ModelAliases }>;
  /**
   * Every document was loaded at its file (loadManifest), which refuses one that breaks the
   * per-file rules: they are not checked again.
   */
  loaded?: boolean;
}

/** Files a model folder may hold besides its manifests. */
const ALLOWED_EXTRAS = /^models\/[^/]+\/(?:README\.md|\.gitkeep|versions\/\.gitkeep)$/;

/**
 * The rules that span files (SPEC §1, §2, §5): paths match documents, at most one version of a
 * model in Production, artifact URIs inside the registry's store and naming their own digest,
 * directory artifacts consistent, a model.yaml for every model with versions, nothing else
 * under models/. Pure: takes loaded documents, returns problems. Problems carry `field` but no
 * line; the caller locates them in the file's text (see locateField).
 */
export function checkRegistry(input: RegistryDocuments): Problem[] {
  const problems: Problem[] = [];
  if (!input.loaded) {
    for (const { file, value } of input.models) problems.push(...fileRules('Model', value, file));
    for (const { file, value } of input.versions) problems.push(...fileRules('ModelVersion', value, file));
    for (const { file, value } of input.aliases ?? []) problems.push(...fileRules('ModelAliases', value, file));
  }
  problems.push(...checkAliasTargets(input.aliases ?? [], [...input.versions, ...(input.stages ?? [])]));
  problems.push(...checkProductionUnique([...input.versions, ...(input.stages ?? [])]));
  if (input.config) problems.push(...checkArtifacts(input.config, input.versions));
  problems.push(...checkTree(input));
  return problems;
}

function checkProductionUnique(versions: NonNullable<RegistryDocuments['stages']>): Problem[] {
  const byModel = new Map<string, NonNullable<RegistryDocuments['stages']>>();
  for (const v of versions) {
    if (v.value.stage !== 'Production') continue;
    const list = byModel.get(v.value.model) ?? [];
    list.push(v);
    byModel.set(v.value.model, list);
  }
  const problems: Problem[] = [];
  for (const [model, list] of byModel) {
    if (list.length < 2) continue;
    list.sort((a, b) => a.value.version - b.value.version);
    const numbers = list.map((v) => v.value.version);
    for (const v of list.slice(1)) {
      problems.push({
        file: v.file,
        code: 'E_MULTIPLE_PRODUCTION',
        field: 'stage',
        message: `${model} has ${list.length} versions in Production (${numbers.join(', ')}); at most one version of a model may be in Production: archive the others`,
      });
    }
  }
  return problems;
}

/** Every alias points at an existing version that is not Archived (SPEC v3 §9). */
function checkAliasTargets(aliases: NonNullable<RegistryDocuments['aliases']>, versions: NonNullable<RegistryDocuments['stages']>): Problem[] {
  if (!aliases.length) return [];
  const stageOf = new Map(versions.map((v) => [`${v.value.model}@${v.value.version}`, v.value.stage]));
  const problems: Problem[] = [];
  for (const { file, value } of aliases) {
    for (const [alias, version] of Object.entries(value.aliases)) {
      const stage = stageOf.get(`${value.model}@${version}`);
      const field = `aliases.${alias}`;
      if (stage === undefined) {
        problems.push({
          file,
          code: 'E_ALIAS_TARGET',
          field,
          message: `alias ${alias} points at ${value.model}@${version}, which does not exist; an alias points at an existing version`,
        });
      } else if (stage === 'Archived') {
        problems.push({
          file,
          code: 'E_ALIAS_TARGET',
          field,
          message: `alias ${alias} points at ${value.model}@${version}, which is Archived; move the alias (modelgate alias set ${value.model}@<N> ${alias}) or delete it before archiving`,
        });
      }
    }
  }
  return problems;
}

function checkArtifacts(config: Registry, versions: RegistryDocuments['versions']): Problem[] {
  let store: string;
  try {
    store = parseStoreUri(config.storage.uri).uri;
  } catch {
    return [];
  }
  const problems: Problem[] = [];
  for (const { file, value } of versions) {
    const { model, artifact } = value;
    const isDirectory = artifact.files !== undefined || artifact.index !== undefined;
    const expected = `${store}/${model}/sha256/${artifact.sha256}/`;
    const layout = isDirectory ? expected : `${expected}<file-name>`;
    const uriProblem = (message: string) => problems.push({ file, code: 'E_ARTIFACT_URI', field: 'artifact.uri', message });
    if (!artifact.uri.startsWith(`${store}/`)) {
      uriProblem(`artifact.uri ${artifact.uri} is outside the registry's store ${store} (storage.uri in modelgate.yaml); expected ${layout}`);
    } else if (!artifact.uri.startsWith(expected)) {
      const embedded = /\/sha256\/([0-9a-f]{64})\//.exec(artifact.uri.slice(store.length))?.[1];
      if (embedded && embedded !== artifact.sha256 && artifact.uri.startsWith(`${store}/${model}/sha256/`)) {
        uriProblem(`artifact.uri names sha256 ${embedded} but artifact.sha256 is ${artifact.sha256}; the URI must embed the recorded digest`);
      } else {
        uriProblem(`artifact.uri ${artifact.uri} does not follow the store layout; expected ${layout}`);
      }
    } else {
      const name = artifact.uri.slice(expected.length);
      const ok = isDirectory ? name === '' : name !== '' && name !== '.' && name !== '..' && !/[/\\]/.test(name);
      if (!ok) {
        uriProblem(
          isDirectory
            ? `artifact.uri of a directory artifact ends at its digest folder: expected ${expected}`
            : `artifact.uri must end with one file name after the digest folder: expected ${layout}`,
        );
      }
    }
    if (artifact.index) problems.push(...checkIndex(file, artifact, expected));
    else if (isDirectory) problems.push(...checkDirectory(file, artifact));
  }
  return problems;
}

/**
 * An indexed directory (SPEC v2 §5): the index is the canonical list, so its sha256 is the
 * directory digest and it sits at `<artifact.uri>modelgate.index`; the list itself is in the
 * store, checked by verify, pull and the gate when they read it.
 */
function checkIndex(file: string, artifact: ModelVersion['artifact'], expectedUri: string): Problem[] {
  const index = artifact.index!;
  const problems: Problem[] = [];
  const field = (f: string) => `artifact.index.${f}`;
  if (artifact.files)
    problems.push({
      file,
      code: 'E_ARTIFACT_FILES',
      field: 'artifact.files',
      message: 'artifact.files and artifact.index exclude each other: the index holds the file list',
    });
  if (index.sha256 !== artifact.sha256) {
    problems.push({
      file,
      code: 'E_ARTIFACT_FILES',
      field: field('sha256'),
      message: `artifact.index.sha256 is ${index.sha256}; the index is the canonical file list, so it must be the directory digest artifact.sha256 (${artifact.sha256})`,
    });
  }
  const uri = `${expectedUri}${INDEX_NAME}`;
  if (index.uri !== uri) problems.push({ file, code: 'E_ARTIFACT_URI', field: field('uri'), message: `artifact.index.uri is ${index.uri}; expected ${uri}` });
  if (index.count <= INDEX_THRESHOLD) {
    problems.push({
      file,
      code: 'E_ARTIFACT_FILES',
      field: field('count'),
      message: `artifact.index.count is ${index.count}: a directory of at most ${INDEX_THRESHOLD} files lists them in artifact.files`,
    });
  }
  return problems;
}

function checkDirectory(file: string, artifact: ModelVersion['artifact']): Problem[] {
  const files = artifact.files ?? [];
  const problems: Problem[] = [];
  const seen = new Set<string>();
  files.forEach((f, i) => {
    const field = `artifact.files[${i}].path`;
    if (seen.has(f.path)) problems.push({ file, code: 'E_ARTIFACT_FILES', field, message: `artifact.files lists ${f.path} twice` });
    seen.add(f.path);
    try {
      assertRelativePath(f.path);
    } catch {
      problems.push({
        file,
        code: 'E_ARTIFACT_FILES',
        field,
        message: `artifact.files[${i}].path ${JSON.stringify(f.path)} must be a relative path of plain segments (no leading "/", ".", ".." or "\\")`,
      });
    }
  });
  if (problems.length) return problems;
  const total = files.reduce((n, f) => n + f.size, 0);
  if (total !== artifact.size) {
    problems.push({
      file,
      code: 'E_ARTIFACT_FILES',
      field: 'artifact.size',
      message: `artifact.size is ${artifact.size} but the files listed add up to ${total} bytes`,
    });
  }
  const digest = directoryDigest(files);
  if (digest !== artifact.sha256) {
    problems.push({
      file,
      code: 'E_ARTIFACT_FILES',
      field: 'artifact.sha256',
      message: `artifact.sha256 is not the digest of artifact.files (expected ${digest}); the file list or the digest was edited`,
    });
  }
  return problems;
}

function checkTree(input: RegistryDocuments): Problem[] {
  const problems: Problem[] = [];
  // Version files per model, and the model files there are: from the listing of every path when
  // there is one (each path parsed once; the versions loaded are among them), else from the
  // documents that loaded.
  const versionCount = new Map<string, number>();
  const modelFiles = new Set<string>();
  if (!input.files) {
    for (const m of input.models) modelFiles.add(m.file);
    for (const v of new Set(input.versions.map((d) => d.file))) {
      const where = parseManifestPath(v);
      if (where) versionCount.set(where.model, (versionCount.get(where.model) ?? 0) + 1);
    }
  }
  const badFolders = new Set<string>();
  for (const path of input.files ?? []) {
    const where = parseManifestPath(path);
    if (where) {
      if (where.kind === 'ModelVersion') versionCount.set(where.model, (versionCount.get(where.model) ?? 0) + 1);
      else modelFiles.add(path);
      continue;
    }
    if (parseAliasesPath(path) !== undefined) continue;
    const name = path.split('/')[1] ?? '';
    if (!isModelName(name)) {
      if (!badFolders.has(name)) {
        badFolders.add(name);
        problems.push({
          file: `models/${name}`,
          code: 'E_MODEL_NAME',
          message: `models/${name} is not a valid model folder: names are 1–63 lowercase letters, digits and dashes (${MODEL_NAME.source})`,
        });
      }
      continue;
    }
    if (ALLOWED_EXTRAS.test(path) || path === `models/${name}`) continue;
    problems.push({ file: path, code: 'E_STRAY_FILE', message: strayHint(path) });
  }
  for (const [model, count] of versionCount) {
    const file = `models/${model}/model.yaml`;
    if (!modelFiles.has(file)) {
      problems.push({
        file,
        code: 'E_MISSING_MODEL',
        message: `${model} has ${count} version${count === 1 ? '' : 's'} but no ${file}; add one (kind: Model, name: ${model})`,
      });
    }
  }
  return problems;
}

function strayHint(path: string): string {
  const base = `${path} is not a registry file: models/<model>/ holds model.yaml, aliases.yaml and versions/<N>.yaml only`;
  if (/\/versions\/[^/]+$/.test(path)) return `${path} is not a version file: versions are named <N>.yaml, N = 1, 2, 3 … without leading zeros`;
  if (/\/model\.yml$/.test(path)) return `${path}: the model file is named model.yaml`;
  return base;
}
