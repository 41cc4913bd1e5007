import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { ExitCode, formatPosition, ModelgateError, usageError } from '../errors.js';
import { excerpt, FORBIDDEN_KEYS, isInexactInteger, unprintableInText, unprintableInValue } from '../manifest/exact.js';

/** Metric and parameter names: what MLflow allows, minus spaces. */
const KEY = /^[A-Za-z_][A-Za-z0-9_.\-/]{0,127}$/;
const PAIR = /^([A-Za-z_][A-Za-z0-9_.\-/]{0,127})=(.*)$/s;

export type ParamValue = string | number | boolean;

/** Reads a file named on the command line (register gives readInputText); injected so the parsing stays pure. */
export type ReadText = (path: string) => string;

/**
 * `--metrics` values: each one a JSON or YAML file (an object of finite numbers, nested objects
 * flattened to dotted keys as dvclive writes them: `{"eval": {"auc": 0.9}}` → `eval.auc`) or a
 * `k=v` pair. A later value overrides an earlier one for the same key; inside one file a key
 * given twice (also `a.b` next to `a: {b: …}`) is refused, and so is a list. Strings such as `"0.9"` in JSON are
 * refused: a metric compared against a threshold must be a number, not something that looks like one.
 * So is what a number cannot keep exactly: an integer beyond 2^53. Errors name the file, line and key.
 */
export function parseMetrics(args: readonly string[], read: ReadText): Record<string, number> {
  const out: Record<string, number> = {};
  for (const arg of args) {
    const pair = PAIR.exec(arg);
    if (pair) {
      const value = parseNumber(pair[2]!);
      if (value === undefined) throw usageError(`--metrics ${excerpt(arg, 80)}: ${pair[1]} must be a finite number`);
      if (isInexactInteger(pair[2]!, value))
        throw usageError(`--metrics ${excerpt(arg, 80)}: ${pair[1]} is an integer beyond 2^53, which a number cannot keep exactly`);
      out[checkKey(pair[1]!, '--metrics')] = value;
      continue;
    }
    for (const [k, { value: v, source, line }] of readFlatFile(arg, read, '--metrics', 'metric')) {
      const where = formatPosition({ file: arg, line });
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        const shown = typeof v === 'number' ? String(v) : typeof v === 'string' ? excerpt(v) : JSON.stringify(v);
        throw new ModelgateError('E_METRIC_VALUE', `${where}: metric ${excerpt(k)} is ${shown}; metrics must be finite numbers`, ExitCode.content, {
          file: arg,
          line,
          key: k,
        });
      }
      if (source !== undefined && isInexactInteger(source, v)) {
        throw new ModelgateError(
          'E_UNSAFE_INTEGER',
          `${where}: metric ${excerpt(k)} is ${excerpt(source)}, an integer beyond 2^53 that a number cannot keep exactly (it would read ${v})`,
          ExitCode.content,
          { file: arg, line, key: k },
        );
      }
      out[checkKey(k, where)] = v;
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
      out[checkKey(pair[1]!, '--params')] = pair[2]!;
      continue;
    }
    for (const [k, { value: v, source, line }] of readFlatFile(arg, read, '--params', 'parameter')) {
      const where = formatPosition({ file: arg, line });
      const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
      if (!ok) {
        throw new ModelgateError('E_PARAM_VALUE', `${where}: parameter ${excerpt(k)} must be a string, a finite number or a boolean`, ExitCode.content, {
          file: arg,
          line,
          key: k,
        });
      }
      // A number is kept as written (source): 12345678901234567890 stays exact as text.
      out[checkKey(k, where)] = typeof v === 'string' ? v : (source ?? String(v));
    }
  }
  return out;
}

interface FlatValue {
  value: unknown;
  /** The scalar as written in the file (`1.10`, `007`), when it is a plain scalar. */
  source?: string;
  /** Where the key is written (1-based). */
  line: number;
}

/**
 * A JSON or YAML file of name → value, nested maps flattened to dotted keys. Duplicate keys
 * (written twice, or produced twice by flattening), lists, prototype keys and characters that
 * are not stored (NUL, invalid UTF-8) are refused with the file, line and key named. Linear in
 * the file: duplicates are found with one Map (yaml's own check is quadratic in a flow mapping).
 */
function readFlatFile(path: string, read: ReadText, flag: string, what: string): Map<string, FlatValue> {
  let text: string;
  try {
    text = read(path);
  } catch (e) {
    if (e instanceof ModelgateError) throw e;
    throw usageError(`${flag} ${path}: not a k=v pair and no such file`);
  }
  const fail = (code: 'E_JSON' | 'E_ENCODING' | 'E_DUPLICATE_KEY' | 'E_LIST_VALUE' | 'E_FORBIDDEN_KEY', line: number, message: string, key?: string) =>
    new ModelgateError(code, `${formatPosition({ file: path, line })}: ${message}`, ExitCode.content, {
      file: path,
      line,
      ...(key !== undefined ? { key } : {}),
    });
  const unprintable = unprintableInText(text);
  if (unprintable) throw fail('E_ENCODING', unprintable.line, unprintable.message);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false, lineCounter });
  const lineOf = (node: unknown) => lineCounter.linePos((node as Node | null)?.range?.[0] ?? 0).line || 1;
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw fail('E_JSON', lineCounter.linePos(e.pos[0]).line || 1, `not valid JSON or YAML (${e.message.split('\n')[0]!.slice(0, 200)})`);
  }
  if (!isMap(doc.contents)) throw fail('E_JSON', 1, 'expected a JSON object of name → value');
  const out = new Map<string, FlatValue>();
  const walk = (node: Node, prefix: string) => {
    if (!isMap(node)) return;
    for (const item of node.items) {
      const key = isScalar(item.key) ? String(item.key.value) : String(item.key);
      const name = prefix ? `${prefix}.${key}` : key;
      const line = lineOf(item.key);
      if (FORBIDDEN_KEYS.has(key)) throw fail('E_FORBIDDEN_KEY', line, `the key ${JSON.stringify(key)} is not allowed`, name);
      const value = item.value as Node | null;
      if (isMap(value)) {
        walk(value, name);
        continue;
      }
      if (isSeq(value)) {
        const stem = name.slice(0, 40);
        throw fail(
          'E_LIST_VALUE',
          line,
          `${what} ${excerpt(name)} is a list; lists are not stored: give each item its own key (${stem}.0, ${stem}.1, …) or a single value`,
          name,
        );
      }
      if (out.has(name)) throw fail('E_DUPLICATE_KEY', line, `${what} ${excerpt(name)} is given twice (first on line ${out.get(name)!.line})`, name);
      const scalar = isScalar(value) ? value : undefined;
      const bad = [key, scalar?.value].map((v) => (typeof v === 'string' ? unprintableInValue(v) : undefined)).find(Boolean);
      if (bad) throw fail('E_ENCODING', line, `${what} ${excerpt(name)} holds the character ${bad}, which is not stored; remove it`, name);
      const source = scalar && scalar.type === 'PLAIN' && typeof scalar.source === 'string' ? scalar.source : undefined;
      out.set(name, { value: scalar ? scalar.value : null, line, ...(source !== undefined ? { source } : {}) });
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

/** A metric or parameter name as stored: KEY's characters, and no dotted part that could reach a prototype. `where` is for messages. */
function checkKey(k: string, where: string): string {
  if (!KEY.test(k)) throw new ModelgateError('E_METRIC_KEY', `${where}: key ${excerpt(k)} must match ${KEY.source}`, ExitCode.content, { key: k });
  const part = k.split('.').find((p) => FORBIDDEN_KEYS.has(p));
  if (part) throw new ModelgateError('E_FORBIDDEN_KEY', `${where}: key ${excerpt(k)}: "${part}" is not allowed in a name`, ExitCode.content, { key: k });
  return k;
}

/** `--framework scikit-learn==1.3.0` (or just a name). */
export function parseFramework(text: string): { name: string; version?: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]*)(?:==([A-Za-z0-9][A-Za-z0-9_.+-]*))?$/.exec(text);
  if (!m) throw usageError(`--framework ${JSON.stringify(text)}: expected name or name==version`);
  return m[2] ? { name: m[1]!, version: m[2] } : { name: m[1]! };
}
