import { Document, isScalar, Scalar, visit } from 'yaml';
import { ExitCode, ModelgateError } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import { formatProblem } from '../manifest/problem.js';
import type { Model, ModelVersion } from '../manifest/types.js';
import { isVersionNumber, modelFile, versionFile } from './layout.js';

/** Everything about a new version except its number, which is allocated per base commit. */
export type VersionDraft = Omit<ModelVersion, 'apiVersion' | 'kind' | 'version'>;

/** SPEC §2 field order; `yaml` keeps insertion order, so the file reads like the spec. */
const FIELD_ORDER = [
  'apiVersion',
  'kind',
  'model',
  'version',
  'stage',
  'createdAt',
  'createdBy',
  'description',
  'artifact',
  'format',
  'framework',
  'metrics',
  'parameters',
  'signature',
  'lineage',
  'annotations',
] as const;
const ARTIFACT_ORDER = ['uri', 'sha256', 'size', 'files'] as const;
const LINEAGE_ORDER = ['code', 'data', 'run', 'environment'] as const;

/** The next free number: one more than the highest among `existing` (1 for a new model). */
export function nextVersion(existing: readonly number[]): number {
  return existing.reduce((m, n) => (n > m ? n : m), 0) + 1;
}

export function buildVersion(draft: VersionDraft, version: number): ModelVersion {
  if (!isVersionNumber(version)) throw new ModelgateError('E_VERSION', `invalid version ${String(version)}`);
  const raw: Record<string, unknown> = { apiVersion: 'modelgate.dev/v1', kind: 'ModelVersion', ...draft, version };
  const ordered: Record<string, unknown> = {};
  for (const k of FIELD_ORDER) if (raw[k] !== undefined) ordered[k] = raw[k];
  const artifact = ordered.artifact as Record<string, unknown>;
  ordered.artifact = pick(artifact, ARTIFACT_ORDER);
  if (ordered.lineage) ordered.lineage = pick(ordered.lineage as Record<string, unknown>, LINEAGE_ORDER);
  return ordered as unknown as ModelVersion;
}

function pick(obj: Record<string, unknown>, order: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of order) if (obj[k] !== undefined) out[k] = obj[k];
  for (const k of Object.keys(obj)) if (!(k in out) && obj[k] !== undefined) out[k] = obj[k];
  return out;
}

/** The manifest's YAML: createdAt quoted (YAML 1.1 readers would turn it into a timestamp), file entries one per line. */
export function renderVersion(mv: ModelVersion): string {
  const doc = new Document(mv, { aliasDuplicateObjects: false });
  const createdAt = doc.get('createdAt', true) as Scalar | undefined;
  if (createdAt) createdAt.type = Scalar.QUOTE_DOUBLE;
  // Small leaf maps (framework, metrics, a dataset, a file entry) on one line, as in SPEC §2.
  visit(doc, {
    Map(_key, node, path) {
      const top =
        path.length <= 1 || (path.length === 3 && isScalar((path[2] as { key?: unknown }).key) && (path[2] as { key: Scalar }).key.value === 'artifact');
      if (!top && node.items.every((pair) => isScalar(pair.value))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

export function renderModel(model: Model): string {
  return new Document(model).toString({ lineWidth: 0 });
}

/** Checks the rendered manifest with the registry's own loader: nothing is committed that `validate` would reject. */
export function assertValidVersion(text: string, model: string, version: number): void {
  const path = versionFile(model, version);
  const loaded = loadManifest(text, path, 'ModelVersion');
  if (!loaded.value || loaded.problems.length > 0) {
    throw new ModelgateError('E_INVALID_MANIFEST', `the new manifest would be invalid:\n${loaded.problems.map(formatProblem).join('\n')}`, ExitCode.content, {
      problems: loaded.problems,
    });
  }
}

export function assertValidModel(text: string, model: string): void {
  const loaded = loadManifest(text, modelFile(model), 'Model');
  if (!loaded.value || loaded.problems.length > 0) {
    throw new ModelgateError('E_INVALID_MANIFEST', `the new model file would be invalid:\n${loaded.problems.map(formatProblem).join('\n')}`, ExitCode.content, {
      problems: loaded.problems,
    });
  }
}
