import { isSeq, isScalar } from 'yaml';
import { resolveCorePlain } from '../manifest/load.js';
import { appendToSeq, nodeAt, parseForEdit, removeFromSeq } from './yaml-splice.js';

/** `./a.yaml` and `a.yaml` name the same resource. */
const normalize = (s: string) => s.replace(/^(\.\/)+/, '');
function sameResource(a: string, b: string): boolean {
  return normalize(a) === normalize(b);
}

/** The `resources` entries of a kustomization, as written. */
export function kustomizationResources(text: string, file: string): string[] {
  const seq = nodeAt(parseForEdit(text, file), ['resources']);
  if (!isSeq(seq)) return [];
  return seq.items.filter(isScalar).map((n) => String(n.value));
}

/** A top-level `key: value` line whose value is a plain scalar of path characters, or the bare `resources:` line. */
const PLAIN_KEY_LINE = /^([A-Za-z][A-Za-z0-9]*):(?: ([A-Za-z0-9][A-Za-z0-9._/-]*))?$/;
/** A `- entry` line of a block list (at some indentation), the entry a plain scalar of path characters. */
const PLAIN_ITEM_LINE = /^( *)- ([A-Za-z0-9._][A-Za-z0-9._/-]*)$/;

/**
 * The `resources` entries of a kustomization in the form modelgate writes (`newKustomization`:
 * top-level `key: value` lines of path characters, `resources:` followed by its `- entry`
 * lines), read from the lines alone; undefined for any other text (a comment, quotes, a flow
 * list, an anchor, a duplicate key, an entry the YAML core schema reads as a number or a
 * boolean), which the parser reads. Why by hand: yaml's parser takes ~30 µs an entry, ~10 ms
 * on first use for an environment of 100 models, and every change paid it for each environment
 * it touches, however few models it moved. Every text this accepts reads the same through the
 * parser (a generated test in test/deploy-render.test.ts holds it to that).
 */
export function plainResources(text: string): string[] | undefined {
  if (!text.endsWith('\n')) return undefined;
  const keys = new Set<string>();
  let resources: string[] | undefined;
  let inList = false;
  let indent: string | undefined;
  const lines = text.split('\n');
  lines.pop();
  for (const line of lines) {
    if (line === '') continue;
    const item = inList ? PLAIN_ITEM_LINE.exec(line) : null;
    if (item) {
      if ((indent ??= item[1]!) !== item[1] || resolveCorePlain(item[2]!) !== item[2]) return undefined;
      resources!.push(item[2]);
      continue;
    }
    const key = PLAIN_KEY_LINE.exec(line);
    if (!key || keys.has(key[1]!)) return undefined;
    keys.add(key[1]!);
    inList = key[1] === 'resources' && key[2] === undefined;
    if (key[1] === 'resources') {
      if (!inList) return undefined;
      resources = [];
    } else if (key[2] === undefined) return undefined;
  }
  return resources;
}

/** A new environment kustomization: the namespace, the shared base when there is one, and the pins. */
export function newKustomization(opts: { namespace?: string; base?: string; resources: string[] }): string {
  const lines = ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization'];
  if (opts.namespace) lines.push(`namespace: ${opts.namespace}`);
  lines.push('resources:');
  for (const r of [...(opts.base ? [opts.base] : []), ...opts.resources]) lines.push(`- ${r}`);
  return lines.join('\n') + '\n';
}

/**
 * Adds the missing `resources` entries, each on its own new line after the existing ones;
 * comments, order, quoting and hand-added entries stay as they are.
 */
export function addResources(text: string, entries: string[], file: string): string {
  const present = new Set((plainResources(text) ?? kustomizationResources(text, file)).map(normalize));
  const missing = [...new Set(entries.filter((e) => !present.has(normalize(e))))];
  return appendToSeq(text, ['resources'], missing, file);
}

/** Removes the `resources` entries naming `entry` (a retired model's pin). */
export function removeResource(text: string, entry: string, file: string): string {
  if (plainResources(text)?.some((r) => sameResource(r, entry)) === false) return text;
  return removeFromSeq(text, ['resources'], (v) => typeof v === 'string' && sameResource(v, entry), file);
}
