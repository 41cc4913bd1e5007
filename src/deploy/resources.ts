import { posix } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ExitCode, ModelgateError } from '../errors.js';
import { kustomizationResources, plainResources } from './kustomization.js';

/** A Kubernetes object as `kubectl kustomize` emits it: the API group, kind, namespace and name, and the file that holds it. */
export interface PlacedResource {
  group: string;
  kind: string;
  /** '' when neither the document nor a kustomization sets one. */
  namespace: string;
  name: string;
  file: string;
}

/** The texts an environment renders from (registry-relative paths), and the resources already known by file (pins just rendered). */
export interface KustomizeView {
  files: ReadonlyMap<string, string>;
  known: ReadonlyMap<string, PlacedResource[]>;
}

/** Kinds without a namespace: kustomize's namespace transformer leaves them alone. */
const CLUSTER_SCOPED = new Set([
  'APIService',
  'ClusterRole',
  'ClusterRoleBinding',
  'ClusterServingRuntime',
  'ClusterStorageContainer',
  'CSIDriver',
  'CustomResourceDefinition',
  'IngressClass',
  'MutatingWebhookConfiguration',
  'Namespace',
  'PersistentVolume',
  'PriorityClass',
  'RuntimeClass',
  'StorageClass',
  'ValidatingWebhookConfiguration',
]);

/** Kustomizations nested deeper than this are not followed (kustomize itself refuses cycles). */
const MAX_DEPTH = 8;

const text = (v: unknown) => (typeof v === 'string' ? v : '');

/** The resources a file's documents declare, as written (documents without a kind or a name are left out). */
function documentResources(source: string, file: string): PlacedResource[] {
  const out: PlacedResource[] = [];
  for (const doc of parseAllDocuments(source)) {
    if (doc.errors.length) continue;
    const value = doc.toJS({ maxAliasCount: 100 }) as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    const kind = text(value?.kind);
    const name = text(value?.metadata?.name);
    if (!kind || !name) continue;
    const apiVersion = text(value?.apiVersion);
    out.push({
      group: apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '',
      kind,
      namespace: text(value?.metadata?.namespace),
      name,
      file,
    });
  }
  return out;
}

interface Kustomization {
  resources: string[];
  namespace: string;
  namePrefix: string;
  nameSuffix: string;
}

/** The transformer fields kustomize applies to every resource of the folder. */
const FIELD_LINE = /^(namespace|namePrefix|nameSuffix): (.+)$/;

function readKustomization(source: string, file: string): Kustomization {
  const plain = plainResources(source);
  if (plain) {
    // modelgate's own form: every line is a plain `key: value` or a list entry (see plainResources), so no parser is needed.
    const fields = { namespace: '', namePrefix: '', nameSuffix: '' };
    for (const line of source.split('\n')) {
      const m = FIELD_LINE.exec(line);
      if (m) fields[m[1] as keyof typeof fields] = m[2]!;
    }
    return { resources: plain, ...fields };
  }
  let fields: Record<string, unknown> = {};
  try {
    const value: unknown = parse(source, { maxAliasCount: 100 });
    if (value && typeof value === 'object') fields = value as Record<string, unknown>;
  } catch {
    // kubectl kustomize reports an unreadable kustomization itself; nothing to collide here.
  }
  return {
    resources: Array.isArray(fields.resources) ? kustomizationResources(source, file) : [],
    namespace: text(fields.namespace),
    namePrefix: text(fields.namePrefix),
    nameSuffix: text(fields.nameSuffix),
  };
}

/**
 * Where a `resources` entry of the kustomization in `dir` points, inside the registry; undefined
 * for a remote one (a URL, a git repository) or one that leaves the registry: never read.
 */
function resourcePath(dir: string, entry: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry) || /^(github\.com|gitlab\.com|bitbucket\.org)\//.test(entry) || entry.startsWith('git@')) return undefined;
  const path = posix.normalize(posix.join(dir, entry)).replace(/(?<!\/)\/+$/, '');
  return posix.isAbsolute(path) || path === '..' || path.startsWith('../') || path === '.' ? undefined : path;
}

/** The `resources` entries of the kustomization in `dir` that `view` holds, as registry paths: what a reader still has to load. */
export function listedPaths(dir: string, files: ReadonlyMap<string, string>): string[] {
  const file = `${dir}/kustomization.yaml`;
  const source = files.get(file);
  if (source === undefined) return [];
  return readKustomization(source, file)
    .resources.map((e) => resourcePath(dir, e))
    .filter((p): p is string => p !== undefined);
}

const key = (r: PlacedResource) => `${r.group}\0${r.kind}\0${r.namespace}\0${r.name}`;
const describe = (r: PlacedResource) => `${r.kind}${r.group ? `.${r.group}` : ''} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`;

/**
 * What `kubectl kustomize <dir>` emits, as resources: every `resources` entry of the folder's
 * kustomization (a file's documents, or a nested folder's kustomization, recursively), with the
 * kustomization's `namespace`, `namePrefix` and `nameSuffix` applied. Entries `view` does not
 * hold (remote, missing, not loaded) are left out. Like kustomize, two resources with one API
 * group, kind, namespace and name fail (E_RESOURCE_COLLISION), at every level: nothing of the
 * environment would render, so nothing would sync.
 */
export function renderedResources(dir: string, view: KustomizeView, depth = 0): PlacedResource[] {
  const file = `${dir}/kustomization.yaml`;
  const source = view.files.get(file);
  if (source === undefined || depth > MAX_DEPTH) return [];
  const k = readKustomization(source, file);
  const collected: PlacedResource[] = [];
  for (const entry of k.resources) {
    const path = resourcePath(dir, entry);
    if (path === undefined) continue;
    const known = view.known.get(path);
    const own = view.files.get(path);
    if (known) collected.push(...known);
    else if (own !== undefined) collected.push(...documentResources(own, path));
    else collected.push(...renderedResources(path, view, depth + 1));
  }
  const out = collected.map((r) => ({
    ...r,
    name: r.kind === 'Namespace' || r.kind === 'CustomResourceDefinition' ? r.name : `${k.namePrefix}${r.name}${k.nameSuffix}`,
    namespace: k.namespace && !CLUSTER_SCOPED.has(r.kind) ? k.namespace : r.namespace,
  }));
  const seen = new Map<string, PlacedResource>();
  for (const r of out) {
    const first = seen.get(key(r));
    if (first) {
      throw new ModelgateError(
        'E_RESOURCE_COLLISION',
        `${file}: ${describe(r)} is declared by ${first.file} and by ${r.file}; kubectl kustomize refuses two resources with one kind, namespace and name, so nothing in ${dir} would render or sync: rename the model or the other resource`,
        ExitCode.content,
        { file, files: [first.file, r.file] },
      );
    }
    seen.set(key(r), r);
  }
  return out;
}
