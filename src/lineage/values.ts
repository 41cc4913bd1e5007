import { ExitCode, ModelgateError, usageError } from '../errors.js';

/** Metric and parameter names: what MLflow allows, minus spaces. */
const KEY = /^[A-Za-z_][A-Za-z0-9_.\-/]{0,127}$/;
const PAIR = /^([A-Za-z_][A-Za-z0-9_.\-/]{0,127})=(.*)$/s;

export type ParamValue = string | number | boolean;

/** Reads a file named on the command line; injected so the parsing stays pure. */
export type ReadText = (path: string) => string;

/**
 * `--metrics` values: each one a JSON file (an object of finite numbers) or a `k=v` pair.
 * A later value overrides an earlier one for the same key. Strings such as `"0.9"` in JSON are
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
    for (const [k, v] of Object.entries(readJsonObject(arg, read, '--metrics'))) {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ModelgateError('E_METRIC_VALUE', `${arg}: metric ${JSON.stringify(k)} is ${typeof v === 'number' ? String(v) : JSON.stringify(v)}; metrics must be finite numbers`, ExitCode.content, { key: k });
      }
      out[checkKey(k, arg)] = v;
    }
  }
  return out;
}

/** `--params` values: JSON files (strings, numbers, booleans) or `k=v` pairs (numbers and booleans recognised). */
export function parseParams(args: readonly string[], read: ReadText): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const arg of args) {
    const pair = PAIR.exec(arg);
    if (pair) {
      const raw = pair[2]!;
      out[pair[1]!] = raw === 'true' ? true : raw === 'false' ? false : (parseNumber(raw) ?? raw);
      continue;
    }
    for (const [k, v] of Object.entries(readJsonObject(arg, read, '--params'))) {
      const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
      if (!ok) {
        throw new ModelgateError('E_PARAM_VALUE', `${arg}: parameter ${JSON.stringify(k)} must be a string, a finite number or a boolean`, ExitCode.content, { key: k });
      }
      out[checkKey(k, arg)] = v as ParamValue;
    }
  }
  return out;
}

/** A decimal number as written by people and by JSON; undefined for anything else (hex, '', Infinity). */
function parseNumber(text: string): number | undefined {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim())) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function checkKey(k: string, file: string): string {
  if (!KEY.test(k)) throw new ModelgateError('E_METRIC_KEY', `${file}: key ${JSON.stringify(k)} must match ${KEY.source}`, ExitCode.content, { key: k });
  return k;
}

function readJsonObject(path: string, read: ReadText, flag: string): Record<string, unknown> {
  let text: string;
  try {
    text = read(path);
  } catch {
    throw usageError(`${flag} ${path}: not a k=v pair and no such file`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ModelgateError('E_JSON', `${path}: not valid JSON (${(e as Error).message})`, ExitCode.content);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelgateError('E_JSON', `${path}: expected a JSON object of name → value`, ExitCode.content);
  }
  return value as Record<string, unknown>;
}

/** `--framework scikit-learn==1.3.0` (or just a name). */
export function parseFramework(text: string): { name: string; version?: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.\-]*)(?:==([A-Za-z0-9][A-Za-z0-9_.+\-]*))?$/.exec(text);
  if (!m) throw usageError(`--framework ${JSON.stringify(text)}: expected name or name==version`);
  return m[2] ? { name: m[1]!, version: m[2] } : { name: m[1]! };
}
