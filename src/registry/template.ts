import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isScalar, parseAllDocuments, parseDocument, visit, type Scalar } from 'yaml';
import { removeResource } from '../deploy/kustomization.js';
import { renderPins, type ModelPinSource } from '../deploy/plan.js';
import { scalarSource } from '../deploy/yaml-splice.js';
import { ExitCode, ModelgateError } from '../errors.js';
import { loadManifest, type DocumentKind, type KindMap } from '../manifest/load.js';
import { EXAMPLE_MODEL } from './example.js';
import { REGISTRY_FILE } from './layout.js';

/**
 * The `registry-template/` folder shipped with the package. The code runs from src/registry/
 * (tests), dist/ or dist/chunks/ (the bundle); the template sits beside the package's dist/ and
 * src/, so it is the nearest `registry-template` folder upward.
 */
export function templateDir(from: string = fileURLToPath(import.meta.url)): string | undefined {
  for (let dir = dirname(from), i = 0; i < 5; dir = dirname(dir), i++) {
    const candidate = join(dir, 'registry-template');
    if (existsSync(join(candidate, REGISTRY_FILE))) return candidate;
    if (dirname(dir) === dir) break;
  }
  return undefined;
}

export interface TemplateSettings {
  /** New `storage.uri`; artifact URIs under the template's store move with it. */
  store?: string;
  /** New `github.repository` (owner/name); repository URLs naming the template's move with it. */
  github?: string;
  /**
   * Keep the example model (models/fraud-detector, its pins). Without it the registry starts
   * empty: the example's manifests name artifacts that only `init --example` writes.
   */
  example?: boolean;
}

/** The template's files that belong to the example model: its folder and its pins. */
export function isExampleFile(path: string): boolean {
  return path.startsWith(`models/${EXAMPLE_MODEL}/`) || new RegExp(`^deploy/[^/]+/${EXAMPLE_MODEL}\\.yaml$`).test(path);
}

/**
 * Pure: the template's files with the settings applied. Only the affected YAML scalars are
 * replaced, in place; every other byte of every file is kept.
 */
export function instantiateTemplate(files: Map<string, string>, settings: TemplateSettings): Map<string, string> {
  const config = files.get(REGISTRY_FILE);
  if (config === undefined) throw new ModelgateError('E_TEMPLATE_MISSING', `the registry template has no ${REGISTRY_FILE}`, ExitCode.content);
  const doc = parseDocument(config);
  const oldStore = stringAt(doc.getIn(['storage', 'uri'], true));
  const oldRepo = stringAt(doc.getIn(['github', 'repository'], true));
  const out = new Map<string, string>();
  for (const [path, original] of files) {
    if (!settings.example && isExampleFile(path)) continue;
    const text = !settings.example && /^deploy\/[^/]+\/kustomization\.yaml$/.test(path) ? removeResource(original, `${EXAMPLE_MODEL}.yaml`, path) : original;
    if (path === '.github/CODEOWNERS' && settings.github && oldRepo) {
      // The owning teams belong to the new repository's owner: @acme/platform → @<owner>/platform.
      const from = oldRepo.split('/')[0]!;
      const to = settings.github.split('/')[0]!;
      out.set(path, text.replace(new RegExp(`@${from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`, 'g'), `@${to}/`));
      continue;
    }
    if (!/\.ya?ml$/.test(path)) {
      out.set(path, text);
      continue;
    }
    let next = spliceScalars(text, (value) => {
      if (settings.store && oldStore && (value === oldStore || value.startsWith(`${oldStore}/`))) return settings.store + value.slice(oldStore.length);
      if (settings.github && oldRepo) {
        const m = /^(https:\/\/github\.com\/|git@github\.com:)(.+?)(\.git)?$/.exec(value);
        if (m && m[2] === oldRepo) return `${m[1]}${settings.github}${m[3] ?? ''}`;
        if (path === REGISTRY_FILE && value === oldRepo) return settings.github;
      }
      return undefined;
    });
    if (path === REGISTRY_FILE && settings.store) next = withPvc(next, settings.store);
    if (path === REGISTRY_FILE && settings.github && !oldRepo) next = `${next}${next.endsWith('\n') ? '' : '\n'}github: {repository: ${settings.github}}\n`;
    out.set(path, next);
  }
  return settings.example ? withRenderedPins(out) : out;
}

function loaded<K extends DocumentKind>(files: Map<string, string>, path: string, kind: K): KindMap[K] {
  const r = loadManifest(files.get(path)!, path, kind);
  if (!r.value) throw new ModelgateError('E_TEMPLATE_INVALID', `the registry template's ${path} does not load: ${r.problems[0]?.message}`, ExitCode.content);
  return r.value;
}

/**
 * The pins rendered for the instantiated files, as `sync` would write them: the store (and so
 * the URI KServe downloads, s3:// or pvc://) may have changed.
 */
function withRenderedPins(files: Map<string, string>): Map<string, string> {
  const registry = loaded(files, REGISTRY_FILE, 'Registry');
  const models: ModelPinSource[] = [];
  for (const path of files.keys()) {
    const m = /^models\/([^/]+)\/model\.yaml$/.exec(path);
    if (!m) continue;
    const versions = [...files.keys()].filter((p) => new RegExp(`^models/${m[1]}/versions/\\d+\\.yaml$`).test(p)).map((p) => loaded(files, p, 'ModelVersion'));
    models.push({ model: loaded(files, path, 'Model'), versions });
  }
  const plan = renderPins({ registry, models, files });
  const out = new Map(files);
  for (const f of plan.files) {
    if (f.after === null) out.delete(f.path);
    else out.set(f.path, f.after);
  }
  return out;
}

/** The claim `init` names for a file:// store; the pin's pvc:// URIs are rendered against it. */
const PVC_CLAIM = 'modelgate-artifacts';

/**
 * `storage.pvc` for the chosen store: a file:// store gets the claim with its folder as root (the
 * template's `pvc:` line edited in place, or one added after `uri:`); an s3:// store needs none,
 * so the template's line and the comment just above it go.
 */
function withPvc(text: string, store: string): string {
  const storageAt = text.search(/^storage:/m);
  if (storageAt < 0) throw new ModelgateError('E_TEMPLATE_MISSING', `the registry template's ${REGISTRY_FILE} has no storage: section`, ExitCode.content);
  const doc = parseDocument(text);
  const rootNode = doc.getIn(['storage', 'pvc', 'root'], true);
  if (!store.startsWith('file://')) {
    if (!doc.hasIn(['storage', 'pvc'])) return text;
    const line = /^([ \t]+)pvc:.*\n/m.exec(text.slice(storageAt));
    if (!line)
      throw new ModelgateError('E_TEMPLATE_MISSING', `the registry template's ${REGISTRY_FILE} has storage.pvc on more than one line`, ExitCode.content);
    let start = storageAt + line.index;
    // The comment lines right above it explain it: they go with it.
    for (;;) {
      const prev = text.lastIndexOf('\n', start - 2) + 1;
      if (start === 0 || !new RegExp(`^${line[1]}#`).test(text.slice(prev, start))) break;
      start = prev;
    }
    return text.slice(0, start) + text.slice(storageAt + line.index + line[0].length);
  }
  const root = decodeURIComponent(new URL(store).pathname);
  if (isScalar(rootNode) && rootNode.range) {
    return text.slice(0, rootNode.range[0]) + scalarSource(root, rootNode.type) + text.slice(rootNode.range[1]);
  }
  const m = /^([ \t]+)uri:.*$/m.exec(text.slice(storageAt));
  if (!m) throw new ModelgateError('E_TEMPLATE_MISSING', `the registry template's ${REGISTRY_FILE} has no storage.uri line`, ExitCode.content);
  const at = storageAt + m.index + m[0].length;
  return `${text.slice(0, at)}\n${m[1]}pvc: {claim: ${PVC_CLAIM}, root: ${JSON.stringify(root)}}${text.slice(at)}`;
}

function stringAt(node: unknown): string | undefined {
  return isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
}

/** Replaces each string scalar for which `replace` returns a value, keeping its quoting style. */
export function spliceScalars(text: string, replace: (value: string) => string | undefined): string {
  const edits: Array<{ start: number; end: number; text: string }> = [];
  for (const doc of parseAllDocuments(text)) {
    if (!('contents' in doc)) continue;
    visit(doc, {
      Scalar(_key, node: Scalar) {
        if (typeof node.value !== 'string' || !node.range) return;
        if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') return;
        const value = replace(node.value);
        if (value === undefined || value === node.value) return;
        edits.push({ start: node.range[0], end: node.range[1], text: scalarSource(value, node.type) });
      },
    });
  }
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}
