import { isMap, isPair, isScalar, isSeq, parseDocument, stringify, type Document, type Node, type Scalar, type YAMLMap } from 'yaml';
import { ExitCode, ModelgateError } from '../errors.js';

/**
 * Edits of hand-maintained YAML that change only the edited scalars: the new text is the old
 * text with one source range replaced or one line inserted. `String(doc)` is never used, so
 * comments, key order, quoting, blank lines and flow style elsewhere stay byte for byte.
 */

export type YamlPath = Array<string | number>;

/** Parses one document keeping source ranges; aliases and syntax errors are refused. */
export function parseForEdit(text: string, file: string): Document.Parsed {
  const doc = parseDocument(text, { keepSourceTokens: false, uniqueKeys: true });
  if (doc.errors.length > 0) throw editError(file, `cannot be edited: ${doc.errors[0]!.message.split('\n')[0]}`);
  return doc;
}

export function editError(file: string, message: string): ModelgateError {
  return new ModelgateError('E_DEPLOY_EDIT', `${file}: ${message}`, ExitCode.content, { file });
}

function child(node: unknown, key: string | number): Node | undefined {
  if (isMap(node) && typeof key === 'string') {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
    return (pair?.value ?? undefined) as Node | undefined;
  }
  if (isSeq(node) && typeof key === 'number') return node.items[key] as Node | undefined;
  return undefined;
}

export function nodeAt(doc: Document.Parsed, path: YamlPath): Node | undefined {
  let node: unknown = doc.contents;
  for (const key of path) {
    node = child(node, key);
    if (node === undefined) return undefined;
  }
  return node as Node;
}

/**
 * A string scalar as YAML source in the given quoting style; a plain one stays plain only when it
 * reads back as the same string in block and flow context alike (`yaml` leaves `a,b` plain, which
 * a flow list `[a,b]` would split), otherwise it is double-quoted.
 */
export function scalarSource(value: string, style?: Scalar['type']): string {
  if (style === 'QUOTE_DOUBLE') return JSON.stringify(value);
  if (style === 'QUOTE_SINGLE') return `'${value.replaceAll("'", "''")}'`;
  const plain = stringify(value, { lineWidth: 0 }).trimEnd();
  return /[\n,[\]{}]/.test(plain) ? JSON.stringify(value) : plain;
}

function lineStart(text: string, pos: number): number {
  return text.lastIndexOf('\n', pos - 1) + 1;
}

/** Offset just after the line holding `pos - 1` (the start of the next line). */
function afterLine(text: string, pos: number): number {
  if (pos > 0 && text[pos - 1] === '\n') return pos;
  const nl = text.indexOf('\n', pos);
  return nl < 0 ? text.length : nl + 1;
}

function indentedBlock(value: unknown, indent: string): string {
  return stringify(value, { lineWidth: 0, aliasDuplicateObjects: false })
    .trimEnd()
    .split('\n')
    .map((l) => indent + l)
    .join('\n');
}

/**
 * Sets the string scalar at `path` to `value`, creating missing mapping keys. Returns the text
 * unchanged when the value is already there. Throws E_DEPLOY_EDIT when the shape does not allow
 * an in-place edit (a sequence where a mapping is expected, an alias, a multi-document file).
 */
export function setScalar(text: string, path: YamlPath, value: string, file: string): string {
  const doc = parseForEdit(text, file);
  let node: unknown = doc.contents;
  let i = 0;
  for (; i < path.length; i++) {
    const next = child(node, path[i]!);
    if (next === undefined || next === null || (isScalar(next) && next.value === null)) break;
    node = next;
  }
  if (i === path.length) {
    if (!isScalar(node) || !node.range) throw editError(file, `${path.join('.')} is not a scalar`);
    if (typeof node.value === 'string' && node.value === value) return text;
    const style = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? node.type : undefined;
    return text.slice(0, node.range[0]) + scalarSource(value, style) + text.slice(node.range[1]);
  }
  // Build the missing tail (`{a: {b: value}}`) and insert it into the deepest existing mapping.
  let tail: unknown = value;
  for (let j = path.length - 1; j > i; j--) {
    const key = path[j]!;
    if (typeof key !== 'string') throw editError(file, `${path.slice(0, j + 1).join('.')} is missing`);
    tail = { [key]: tail };
  }
  const key = path[i]!;
  if (typeof key !== 'string' || !isMap(node)) throw editError(file, `${path.slice(0, i + 1).join('.')} is missing`);
  const existing = node.items.find((p) => isScalar(p.key) && p.key.value === key);
  const map = node;
  if (existing) {
    // `key:` with an empty value: replace the null with a nested block.
    const keyNode = existing.key as Scalar;
    const indent = ' '.repeat(keyNode.range![0] - lineStart(text, keyNode.range![0]) + 2);
    const at = afterLine(text, keyNode.range![2]);
    const block = typeof tail === 'object' ? indentedBlock(tail, indent) : undefined;
    if (!block) {
      const colon = text.indexOf(':', keyNode.range![1]) + 1;
      return text.slice(0, colon) + ' ' + scalarSource(value) + text.slice(colon);
    }
    return text.slice(0, at) + block + '\n' + text.slice(at);
  }
  if (!map.range) throw editError(file, `${path.slice(0, i).join('.')} has no source position`);
  if (map.flow) {
    const close = text.lastIndexOf('}', map.range[1]);
    const entry = `${key}: ${JSON.stringify(tail)}`;
    const sep = map.items.length > 0 ? ', ' : '';
    return text.slice(0, close) + sep + entry + text.slice(close);
  }
  const first = map.items[0]?.key as Node | undefined;
  if (!first?.range) throw editError(file, `${path.slice(0, i).join('.')} is an empty mapping`);
  const indent = ' '.repeat(first.range[0] - lineStart(text, first.range[0]));
  const last = map.items.at(-1)!;
  const lastNode = (last.value ?? last.key) as Node;
  const at = afterLine(text, lastNode.range![2]);
  const block = indentedBlock({ [key]: tail }, indent);
  const prefix = at === text.length && !text.endsWith('\n') ? '\n' : '';
  return text.slice(0, at) + prefix + block + '\n' + text.slice(at);
}

/**
 * Applies several scalar edits. Scalars that exist are replaced from one parse, last range
 * first so earlier offsets stay valid; missing keys are then inserted one at a time.
 */
export function setScalars(text: string, edits: Array<{ path: YamlPath; value: string }>, file: string): string {
  const doc = parseForEdit(text, file);
  const splices: Array<{ start: number; end: number; source: string }> = [];
  const inserts: Array<{ path: YamlPath; value: string }> = [];
  for (const e of edits) {
    const node = nodeAt(doc, e.path);
    if (!isScalar(node) || !node.range || node.value === null) {
      inserts.push(e);
      continue;
    }
    if (typeof node.value === 'string' && node.value === e.value) continue;
    const style = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? node.type : undefined;
    splices.push({ start: node.range[0], end: node.range[1], source: scalarSource(e.value, style) });
  }
  let out = text;
  for (const s of splices.sort((a, b) => b.start - a.start)) out = out.slice(0, s.start) + s.source + out.slice(s.end);
  for (const e of inserts) out = setScalar(out, e.path, e.value, file);
  return out;
}

/** Appends string items to the sequence at `path` (creating the key at the top level when absent). */
export function appendToSeq(text: string, path: YamlPath, items: string[], file: string): string {
  if (items.length === 0) return text;
  const doc = parseForEdit(text, file);
  const seq = nodeAt(doc, path);
  if (seq === undefined || (isScalar(seq) && seq.value === null)) {
    if (path.length !== 1) throw editError(file, `${path.join('.')} is missing`);
    const lines = items.map((i) => `- ${scalarSource(i)}\n`).join('');
    if (seq !== undefined) {
      const pair = (doc.contents as YAMLMap).items.find((p) => isScalar(p.key) && p.key.value === path[0])!;
      const at = afterLine(text, (pair.key as Node).range![2]);
      return text.slice(0, at) + lines + text.slice(at);
    }
    if (!isMap(doc.contents) && doc.contents !== null) throw editError(file, 'is not a mapping');
    const sep = text.length === 0 || text.endsWith('\n') ? '' : '\n';
    return text + sep + `${path[0]}:\n` + lines;
  }
  if (!isSeq(seq) || !seq.range) throw editError(file, `${path.join('.')} is not a list`);
  if (seq.flow) {
    const close = text.lastIndexOf(']', seq.range[1]);
    const sep = seq.items.length > 0 ? ', ' : '';
    return text.slice(0, close) + sep + items.map((i) => scalarSource(i)).join(', ') + text.slice(close);
  }
  // Block list: new `- item` lines after the last item, at the indentation of the first dash.
  const dash = seq.range[0];
  const indent = ' '.repeat(dash - lineStart(text, dash));
  const last = seq.items.at(-1) as Node;
  const at = afterLine(text, last.range![2]);
  const prefix = at === text.length && !text.endsWith('\n') ? '\n' : '';
  return text.slice(0, at) + prefix + items.map((i) => `${indent}- ${scalarSource(i)}\n`).join('') + text.slice(at);
}

/**
 * Removes the items of the sequence at `path` for which `match` is true. Block items are
 * removed with their whole line; an item sharing its line with other content is refused.
 */
export function removeFromSeq(text: string, path: YamlPath, match: (item: unknown) => boolean, file: string): string {
  const doc = parseForEdit(text, file);
  const seq = nodeAt(doc, path);
  if (!isSeq(seq)) return text;
  const hits = seq.items
    .map((n, index) => ({ n: n as Node, index }))
    .filter(({ n }) => isScalar(n) && match(n.value))
    .reverse();
  let out = text;
  for (const { n, index } of hits) {
    if (seq.flow) {
      const items = seq.items as Node[];
      const start = index > 0 ? items[index - 1]!.range![1] : n.range![0];
      const end = index > 0 ? n.range![1] : (items[1]?.range![0] ?? n.range![1]);
      out = out.slice(0, start) + out.slice(end);
    } else {
      const start = lineStart(out, n.range![0]);
      if (!/^\s*-\s*$/.test(out.slice(start, n.range![0]))) throw editError(file, `cannot remove ${String((n as Scalar).value)}: it shares its line`);
      out = out.slice(0, start) + out.slice(afterLine(out, n.range![2]));
    }
  }
  return out;
}
