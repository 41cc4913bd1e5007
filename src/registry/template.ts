import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isScalar, parseAllDocuments, parseDocument, visit, type Scalar } from 'yaml';
import { scalarSource } from '../deploy/yaml-splice.js';
import { ExitCode, ModelgateError } from '../errors.js';
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
  for (const [path, text] of files) {
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
    if (path === REGISTRY_FILE && settings.store?.startsWith('file://')) next = withPvc(next, settings.store);
    if (path === REGISTRY_FILE && settings.github && !oldRepo) next = `${next}${next.endsWith('\n') ? '' : '\n'}github: {repository: ${settings.github}}\n`;
    out.set(path, next);
  }
  return out;
}

/** The claim `init` names for a file:// store; the pin's pvc:// URIs are rendered against it. */
export const PVC_CLAIM = 'modelgate-artifacts';

/** Adds `pvc: {claim, root}` under `storage:`, right after its `uri:` line (same indentation). */
function withPvc(text: string, store: string): string {
  const root = decodeURIComponent(new URL(store).pathname);
  const m = /^([ \t]+)uri:.*$/m.exec(text.slice(text.search(/^storage:/m)));
  if (!m || text.search(/^storage:/m) < 0) throw new ModelgateError('E_TEMPLATE_MISSING', `the registry template's ${REGISTRY_FILE} has no storage.uri line`, ExitCode.content);
  const at = text.search(/^storage:/m) + m.index + m[0].length;
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
