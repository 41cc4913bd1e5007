import { isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { ExitCode, ModelgateError, usageError } from '../errors.js';

/** Metric and parameter names: what MLflow allows, minus spaces. */
const KEY = /^[A-Za-z_][A-Za-z0-9_.\-/]{0,127}$/;
const PAIR = /^([A-Za-z_][A-Za-z0-9_.\-/]{0,127})=(.*)$/s;

export type ParamValue = string | number | boolean;

/** Reads a file named on the command line; injected so the parsing stays pure. */
export type ReadText = (path: string) => string;

/**
 * `--metrics` values: each one a JSON or YAML file (an object of finite numbers, nested objects
 * flattened to dotted keys as dvclive writes them: `{"eval": {"auc": 0.9}}` → `eval.auc`) or a
 * `k=v` pair. A later value overrides an earlier one for the same key; inside one file a key
 * given twice (also `a.b` next to `a: {b: …}`) is refused, and so is a list. Strings such as `"0.9"` in JSON are
 * refused: a metric compared against a threshold must be a number, not something that looks like one.
 */
export function parseMetrics(args: readonly string[], read: ReadText): Record<string, number> {
  const out: Record<string, number> = {};
  for (const arg of args) {
    const pair = PAIR.exec(arg);
    if (pair) {
      const value = parseNumber(pair[2]!);
      if (value === undefined) throw usageError(`--metrics ${arg}: ${pair[1]} must be a finite number`);
      out[pair[1]!] = value;
      continue;
    }
    for (const [k, { value: v }] of readFlatFile(arg, read, '--metrics', 'metric')) {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ModelgateError(
          'E_METRIC_VALUE',
          `${arg}: metric ${JSON.stringify(k)} is ${typeof v === 'number' ? String(v) : JSON.stringify(v)}; metrics must be finite numbers`,
          ExitCode.content,
          { key: k },
        );
      }
      out[checkKey(k, arg)] = v;
    }
  }
  return out;
}

/**
 * `--params` values: JSON or YAML files (DVC's params.yaml; nested objects → dotted keys) or
 * `k=v` pairs. Parameters are kept as text, as MLflow keeps them: `lr=1.10` stays "1.10" and
 * `id: 007` in a file stays "007" (the file's own spelling of the value). `--where` still compares
 * numeric text as numbers. Lists and null are refused, naming the key.
 */
export function parseParams(args: readonly string[], read: ReadText): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const arg of args) {
    const pair = PAIR.exec(arg);
    if (pair) {
      out[pair[1]!] = pair[2]!;
      continue;
    }
    for (const [k, { value: v, source }] of readFlatFile(arg, read, '--params', 'parameter')) {
      const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
      if (!ok) {
        throw new ModelgateError('E_PARAM_VALUE', `${arg}: parameter ${JSON.stringify(k)} must be a string, a finite number or a boolean`, ExitCode.content, {
          key: k,
        });
      }
      out[checkKey(k, arg)] = typeof v === 'string' ? v : (source ?? String(v));
    }
  }
  return out;
}

interface FlatValue {
  value: unknown;
  /** The scalar as written in the file (`1.10`, `007`), when it is a plain scalar. */
  source?: string;
}

/**
 * A JSON or YAML file of name → value, nested maps flattened to dotted keys. Duplicate keys
 * (written twice, or produced twice by flattening) and lists are refused with the key named.
 */
function readFlatFile(path: string, read: ReadText, flag: string, what: string): Map<string, FlatValue> {
  let text: string;
  try {
    text = read(path);
  } catch {
    throw usageError(`${flag} ${path}: not a k=v pair and no such file`);
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    const dup = doc.errors.find((e) => e.code === 'DUPLICATE_KEY');
    if (dup) throw new ModelgateError('E_DUPLICATE_KEY', `${path}: a key is given twice (${dup.message.split('\n')[0]})`, ExitCode.content);
    throw new ModelgateError('E_JSON', `${path}: not valid JSON or YAML (${doc.errors[0]!.message.split('\n')[0]})`, ExitCode.content);
  }
  if (!isMap(doc.contents)) throw new ModelgateError('E_JSON', `${path}: expected a JSON object of name → value`, ExitCode.content);
  const out = new Map<string, FlatValue>();
  const walk = (node: Node, prefix: string) => {
    if (!isMap(node)) return;
    for (const item of node.items) {
      const key = isScalar(item.key) ? String(item.key.value) : String(item.key);
      const name = prefix ? `${prefix}.${key}` : key;
      const value = item.value as Node | null;
      if (isMap(value)) {
        walk(value, name);
        continue;
      }
      if (isSeq(value)) {
        throw new ModelgateError(
          'E_LIST_VALUE',
          `${path}: ${what} ${JSON.stringify(name)} is a list; lists are not stored: give each item its own key (${name}.0, ${name}.1, …) or a single value`,
          ExitCode.content,
          { key: name },
        );
      }
      if (out.has(name))
        throw new ModelgateError('E_DUPLICATE_KEY', `${path}: ${what} ${JSON.stringify(name)} is given twice`, ExitCode.content, { key: name });
      const scalar = isScalar(value) ? value : undefined;
      const source = scalar && scalar.type === 'PLAIN' && typeof scalar.source === 'string' ? scalar.source : undefined;
      out.set(name, { value: scalar ? scalar.value : null, ...(source !== undefined ? { source } : {}) });
    }
  };
  walk(doc.contents, '');
  return out;
}

/** A decimal number as written by people and by JSON; undefined for anything else (hex, '', Infinity). */
function parseNumber(text: string): number | undefined {
  if (!/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(text.trim())) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function checkKey(k: string, file: string): string {
  if (!KEY.test(k)) throw new ModelgateError('E_METRIC_KEY', `${file}: key ${JSON.stringify(k)} must match ${KEY.source}`, ExitCode.content, { key: k });
  return k;
}

/** `--framework scikit-learn==1.3.0` (or just a name). */
export function parseFramework(text: string): { name: string; version?: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]*)(?:==([A-Za-z0-9][A-Za-z0-9_.+-]*))?$/.exec(text);
  if (!m) throw usageError(`--framework ${JSON.stringify(text)}: expected name or name==version`);
  return m[2] ? { name: m[1]!, version: m[2] } : { name: m[1]! };
}
