import { isSeq, isScalar } from 'yaml';
import { appendToSeq, nodeAt, parseForEdit, removeFromSeq } from './yaml-splice.js';

/** `./a.yaml` and `a.yaml` name the same resource. */
const normalize = (s: string) => s.replace(/^(\.\/)+/, '');
function sameResource(a: string, b: string): boolean {
  return normalize(a) === normalize(b);
}

/** The `resources` entries of a kustomization, as written. */
function kustomizationResources(text: string, file: string): string[] {
  const seq = nodeAt(parseForEdit(text, file), ['resources']);
  if (!isSeq(seq)) return [];
  return seq.items.filter(isScalar).map((n) => String(n.value));
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
  const present = new Set(kustomizationResources(text, file).map(normalize));
  const missing = [...new Set(entries.filter((e) => !present.has(normalize(e))))];
  return appendToSeq(text, ['resources'], missing, file);
}

/** Removes the `resources` entries naming `entry` (a retired model's pin). */
export function removeResource(text: string, entry: string, file: string): string {
  return removeFromSeq(text, ['resources'], (v) => typeof v === 'string' && sameResource(v, entry), file);
}
