import { isMap, isScalar, type Node, type Pair } from 'yaml';
import { editError, nodeAt, parseForEdit } from '../deploy/yaml-splice.js';

/**
 * Edits of models/<model>/aliases.yaml that change one alias's line and nothing else (SPEC v3 §9:
 * moving an alias is a one-line diff a reviewer reads). Pure: text in, text out.
 */

/** A new aliases file holding one alias. */
export function newAliasesFile(model: string, aliases: Record<string, number>): string {
  const entries = Object.entries(aliases);
  const body = entries.length ? `\n${entries.map(([k, v]) => `  ${k}: ${v}`).join('\n')}` : ' {}';
  return `apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: ${model}\naliases:${body}\n`;
}

function aliasesMap(text: string, file: string) {
  const doc = parseForEdit(text, file);
  const map = nodeAt(doc, ['aliases']);
  if (!isMap(map) || !map.range) throw editError(file, 'aliases is not a mapping');
  return map;
}

const lineStart = (text: string, pos: number) => text.lastIndexOf('\n', pos - 1) + 1;
const nextLine = (text: string, pos: number) => {
  const nl = text.indexOf('\n', pos);
  return nl < 0 ? text.length : nl + 1;
};

/** `alias: version` set in place: the number replaced, or one line (one flow entry) added. */
export function setAliasIn(text: string, alias: string, version: number, file: string): string {
  const map = aliasesMap(text, file);
  const pair = map.items.find((p) => isScalar(p.key) && p.key.value === alias) as Pair<Node, Node> | undefined;
  if (pair?.value?.range) return text.slice(0, pair.value.range[0]) + String(version) + text.slice(pair.value.range[1]);
  if (map.flow || map.items.length === 0) {
    const close = text.lastIndexOf('}', map.range![1]);
    if (close < 0) throw editError(file, 'aliases has no closing brace');
    const inner = text.slice(text.lastIndexOf('{', close) + 1, close);
    const sep = map.items.length ? ', ' : inner.trim() === '' ? '' : ' ';
    return text.slice(0, close) + `${sep}${alias}: ${version}` + text.slice(close);
  }
  const first = map.items[0]!.key as Node;
  const indent = ' '.repeat(first.range![0] - lineStart(text, first.range![0]));
  const last = map.items.at(-1)! as Pair<Node, Node>;
  const end = (last.value ?? last.key).range![1];
  const at = nextLine(text, end);
  const prefix = at === text.length && !text.endsWith('\n') ? '\n' : '';
  return text.slice(0, at) + prefix + `${indent}${alias}: ${version}\n` + text.slice(at);
}

/** `alias` removed: its line (its flow entry); an emptied block mapping becomes `aliases: {}`. */
export function deleteAliasIn(text: string, alias: string, file: string): string {
  const map = aliasesMap(text, file);
  const index = map.items.findIndex((p) => isScalar(p.key) && p.key.value === alias);
  if (index < 0) return text;
  const pair = map.items[index] as Pair<Node, Node>;
  const start = pair.key.range![0];
  const end = (pair.value ?? pair.key).range![1];
  if (map.flow) {
    const items = map.items as Array<Pair<Node, Node>>;
    const from = index > 0 ? (items[index - 1]!.value ?? items[index - 1]!.key).range![1] : start;
    const to = index > 0 ? end : (items[1]?.key.range![0] ?? end);
    return text.slice(0, from) + text.slice(to);
  }
  if (map.items.length === 1) {
    const key = text.lastIndexOf('aliases', start);
    const colon = text.indexOf(':', key) + 1;
    return text.slice(0, colon) + ' {}\n' + text.slice(nextLine(text, end));
  }
  return text.slice(0, lineStart(text, start)) + text.slice(nextLine(text, end));
}
