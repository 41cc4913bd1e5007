import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type DocumentOptions,
  type Node,
  type ParsedNode,
  type ParseOptions,
  type SchemaOptions,
} from 'yaml';
import { FAILSAFE_SCHEMA, load as loadFast, Type } from 'js-yaml';
import { parseAliasesPath, parseManifestPath, reservedAlias } from '../registry/layout.js';
import type { ErrorCode } from '../error-codes.js';
import { LOAD_LIMITS } from './limits.js';
import { displayPath, sortProblems, type Problem } from './problem.js';
import { describeSchemaError } from './schema-errors.js';
import { validators } from './schemas.js';
import type { Model, ModelAliases, ModelVersion, PolicyRule, PromotionPolicy, Registry } from './types.js';

export type DocumentKind = 'Registry' | 'Model' | 'ModelVersion' | 'PromotionPolicy' | 'ModelAliases';
export interface KindMap {
  Registry: Registry;
  Model: Model;
  ModelVersion: ModelVersion;
  PromotionPolicy: PromotionPolicy;
  ModelAliases: ModelAliases;
}

export interface Loaded<T> {
  /** Present only when there are no problems. */
  value?: T;
  problems: Problem[];
}

export { LOAD_LIMITS } from './limits.js';

/** Keys that could reach an object's prototype if the data were ever merged or assigned naively. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

// YAML 1.2 core schema only: no 1.1 booleans (yes/no), no merge keys, no custom tags.
const PARSE_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.2',
  schema: 'core',
  merge: false,
  uniqueKeys: true,
  stringKeys: true,
  strict: true,
  prettyErrors: false,
  keepSourceTokens: false,
};

/**
 * Parses and validates one registry document. `file` is the registry-relative path used in
 * problems (and, for ModelVersion and Model, checked against the document's model/version).
 *
 * Hostile input is rejected with a stable code before it can cost much: oversized or deeply
 * nested text (before parsing), anchors and aliases, explicit tags, duplicate keys, several
 * documents, non-finite numbers, prototype keys. The value returned is plain JSON data.
 */
export function loadManifest<K extends DocumentKind>(text: string, file: string, kind: K): Loaded<KindMap[K]> {
  const limit = checkLimits(text, file);
  if (limit) return { problems: [limit] };
  const fast = loadPlainManifest(text, file, kind);
  return fast ? { value: fast, problems: [] } : loadManifestWithPositions(text, file, kind, false);
}

/**
 * loadManifest without its fast path: every document goes through the position-keeping
 * parser. Gives the same answers, only slower; exported so tests can compare both paths.
 */
export function loadManifestWithPositions<K extends DocumentKind>(text: string, file: string, kind: K, checkSize = true): Loaded<KindMap[K]> {
  if (checkSize) {
    const limit = checkLimits(text, file);
    if (limit) return { problems: [limit] };
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter });
  const at = (offset: number | undefined) => position(lineCounter, offset);

  const problems: Problem[] = [];
  for (const e of doc.errors) {
    const code = YAML_ERROR_CODES[e.code] ?? 'E_YAML_SYNTAX';
    const message =
      code === 'E_YAML_DUPLICATE_KEY'
        ? `duplicate key ${JSON.stringify(keyText(text, e.pos[0]))}: a key may appear once per mapping`
        : code === 'E_YAML_KEY'
          ? 'keys must be plain strings (no lists or mappings as keys)'
          : code === 'E_YAML_MULTI_DOC'
            ? 'a manifest holds exactly one YAML document; remove the second "---" and what follows'
            : `invalid YAML: ${e.message.split('\n')[0]}`;
    problems.push({ file, ...at(e.pos[0]), code, message });
  }
  const directive = doc.directives?.yaml;
  if (directive?.explicit && directive.version !== '1.2') {
    problems.push({
      file,
      ...at(Math.max(0, text.indexOf('%YAML'))),
      code: 'E_YAML_DIRECTIVE',
      message: `%YAML ${directive.version} is not supported: manifests are YAML 1.2; remove the directive`,
    });
  }
  if (problems.length) return { problems };

  if (doc.contents === null) return { problems: [{ file, line: 1, col: 1, code: 'E_EMPTY', message: `the file is empty; expected a ${kind} manifest` }] };

  const value = toPlainData(doc.contents, { file, text, at, problems, path: [] });
  if (problems.length) return { problems };

  const validate = validators()[kind];
  if (!validate(value)) {
    for (const e of validate.errors ?? []) {
      const described = describeSchemaError(e, value);
      if (!described) continue;
      problems.push({ file, ...locate(doc, described.path, at), code: described.code, message: described.message, field: displayPath(described.path) });
    }
    if (problems.length === 0) problems.push({ file, line: 1, col: 1, code: 'E_SCHEMA', message: `not a valid ${kind}` });
  }
  problems.push(...fileRules(kind, value, file).map((p) => ({ ...p, ...locate(doc, fieldSegments(p.field ?? ''), at) })));

  return problems.length ? { problems: sortProblems(problems) } : { value: value as KindMap[K], problems };
}

/** The `line`/`col` of a field (`artifact.uri`, `lineage.data[0].id`) in a manifest's text; `{}` when absent. */
export function locateField(text: string, field: string): { line?: number; col?: number } {
  if (checkLimits(text, '')) return {};
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter });
  return locate(doc, fieldSegments(field), (o) => position(lineCounter, o));
}

/**
 * The manifest-path rules one file can check alone: a version's `model`/`version` equal its
 * path, a model's `name` equals its folder, a policy's rules each say what they cover.
 * Exported for checkRegistry, which applies the same rules to documents from any source.
 */
export function fileRules(kind: DocumentKind, value: unknown, file: string): Problem[] {
  const problems: Problem[] = [];
  const v = value as Record<string, unknown>;
  const where = parseManifestPath(file);
  if (kind === 'ModelVersion' && where?.kind === 'ModelVersion') {
    if (typeof v.model === 'string' && v.model !== where.model) {
      problems.push({
        file,
        code: 'E_PATH_MISMATCH',
        field: 'model',
        message: `model is "${v.model}" but the file is under models/${where.model}/; a version belongs to the model of its folder`,
      });
    }
    if (typeof v.version === 'number' && v.version !== where.version) {
      problems.push({
        file,
        code: 'E_PATH_MISMATCH',
        field: 'version',
        message: `version is ${v.version} but the file is ${where.version}.yaml; a version's number equals its file name`,
      });
    }
  }
  if (kind === 'Model' && where?.kind === 'Model' && typeof v.name === 'string' && v.name !== where.model) {
    problems.push({
      file,
      code: 'E_PATH_MISMATCH',
      field: 'name',
      message: `name is "${v.name}" but the file is models/${where.model}/model.yaml; a model's name equals its folder`,
    });
  }
  if (kind === 'ModelAliases') problems.push(...aliasesRules(v, file));
  if (kind === 'PromotionPolicy') {
    const check = (rules: unknown, base: string) => {
      if (!Array.isArray(rules)) return;
      const names = new Set<string>();
      rules.forEach((rule: PolicyRule, i) => {
        const field = `${base}[${i}]`;
        if (!rule || typeof rule !== 'object') return;
        const label = rule.name ? `rule "${rule.name}"` : `rule ${i + 1}`;
        if (rule.to === undefined && rule.paths === undefined && rule.annotations === undefined && rule.alias === undefined) {
          problems.push({
            file,
            code: 'E_POLICY_RULE',
            field,
            message: `${label} covers nothing: give it "to" (a stage change), "alias" (aliases), "paths" (files) or "annotations" (annotation keys)`,
          });
        }
        if (rule.paths !== undefined && (rule.to !== undefined || rule.annotations !== undefined || rule.alias !== undefined)) {
          problems.push({
            file,
            code: 'E_POLICY_RULE',
            field: `${field}.paths`,
            message: `${label} mixes "paths" with "to"/"alias"/"annotations"; write a separate rule for files`,
          });
        }
        if (rule.alias !== undefined && rule.to !== undefined) {
          problems.push({
            file,
            code: 'E_POLICY_RULE',
            field: `${field}.alias`,
            message: `${label} mixes "alias" with "to"; an alias rule governs alias changes, a stage rule stage changes: write two rules`,
          });
        }
        for (const key of ['from', 'previously', 'allowSkip'] as const) {
          if (rule[key] !== undefined && rule.to === undefined) {
            problems.push({
              file,
              code: 'E_POLICY_RULE',
              field: `${field}.${key}`,
              message: `${label} has "${key}" but no "to"; "${key}" only applies to stage changes`,
            });
          }
        }
        if (typeof rule.name === 'string') {
          if (names.has(rule.name))
            problems.push({ file, code: 'E_POLICY_RULE', field: `${field}.name`, message: `rule name "${rule.name}" is used twice in ${base}` });
          names.add(rule.name);
        }
        for (const [metric, t] of Object.entries(rule.metrics ?? {})) {
          if (typeof t?.min === 'number' && typeof t.max === 'number' && t.min > t.max) {
            problems.push({
              file,
              code: 'E_POLICY_RULE',
              field: `${field}.metrics.${metric}`,
              message: `${label}: metrics.${metric} has min ${t.min} above max ${t.max}; nothing can pass`,
            });
          }
        }
      });
    };
    check(v.rules, 'rules');
    if (v.models && typeof v.models === 'object') {
      for (const [model, entry] of Object.entries(v.models)) check((entry as { rules?: unknown })?.rules, `models.${model}.rules`);
    }
  }
  return problems;
}

/** An aliases file names its own model and no reserved alias (SPEC v3 §9). */
function aliasesRules(v: Record<string, unknown>, file: string): Problem[] {
  const problems: Problem[] = [];
  const model = parseAliasesPath(file);
  if (model !== undefined && typeof v.model === 'string' && v.model !== model) {
    problems.push({
      file,
      code: 'E_PATH_MISMATCH',
      field: 'model',
      message: `model is "${v.model}" but the file is under models/${model}/; an aliases file belongs to the model of its folder`,
    });
  }
  if (v.aliases && typeof v.aliases === 'object') {
    for (const name of Object.keys(v.aliases)) {
      const reserved = reservedAlias(name);
      if (reserved) {
        problems.push({
          file,
          code: 'E_ALIAS_NAME',
          field: `aliases.${name}`,
          message: `alias "${name}" is reserved: it is ${reserved}; choose another name (champion, challenger …)`,
        });
      }
    }
  }
  return problems;
}

// The YAML 1.2 core schema exactly as yaml resolves a plain scalar (yaml/dist/schema/core: the
// same tests in the same order, the same constructors), given to js-yaml in place of its own
// core schema, which differs (signed hex and octal, `_` separators, `0b` binary, `.5e3`...).
// With it the two parsers resolve every plain value alike, so the fast path needs no guard on
// how a value looks: a digest such as 9e3779b1 is a string for both, and no manifest is sent
// to the slow parser because of its values.
const CORE_NULL = /^(?:~|[Nn]ull|NULL)?$/;
const CORE_BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const CORE_INT_OCT = /^0o[0-7]+$/;
const CORE_INT = /^[-+]?[0-9]+$/;
const CORE_INT_HEX = /^0x[0-9a-fA-F]+$/;
const CORE_FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const CORE_FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const CORE_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

/** What yaml's core schema makes of a plain scalar's text: a string stays the same string. */
export function resolveCorePlain(text: string): string | number | boolean | null {
  if (CORE_NULL.test(text)) return null;
  if (CORE_BOOL.test(text)) return text[0] === 't' || text[0] === 'T';
  if (CORE_INT_OCT.test(text)) return parseInt(text.substring(2), 8);
  if (CORE_INT.test(text)) return parseInt(text, 10);
  if (CORE_INT_HEX.test(text)) return parseInt(text.substring(2), 16);
  if (CORE_FLOAT_NAN.test(text)) return text.slice(-3).toLowerCase() === 'nan' ? NaN : text[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (CORE_FLOAT_EXP.test(text) || CORE_FLOAT.test(text)) return parseFloat(text);
  return text;
}

/** Every non-string core scalar starts with one of these (or is empty): most strings are told apart by one test. */
const MAY_NOT_BE_STRING = /^(?:[-+.0-9~nNtTfF]|$)/;

const YAML_CORE_FOR_JS_YAML = FAILSAFE_SCHEMA.extend({
  implicit: [
    new Type('tag:yaml.org,2002:null', { kind: 'scalar', resolve: (s: string) => MAY_NOT_BE_STRING.test(s) && CORE_NULL.test(s), construct: () => null }),
    new Type('tag:yaml.org,2002:bool', {
      kind: 'scalar',
      resolve: (s: string) => MAY_NOT_BE_STRING.test(s) && CORE_BOOL.test(s),
      construct: (s: string) => s[0] === 't' || s[0] === 'T',
    }),
    new Type('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (s: string) => MAY_NOT_BE_STRING.test(s) && (CORE_INT_OCT.test(s) || CORE_INT.test(s) || CORE_INT_HEX.test(s)),
      construct: (s: string) => resolveCorePlain(s),
    }),
    new Type('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (s: string) => MAY_NOT_BE_STRING.test(s) && (CORE_FLOAT_NAN.test(s) || CORE_FLOAT_EXP.test(s) || CORE_FLOAT.test(s)),
      construct: (s: string) => resolveCorePlain(s),
    }),
  ],
});

// Text that the fast path leaves to the position-keeping parser: anchors, aliases and tags
// (an indicator where a node may start), directives, document markers, complex keys (`? k`,
// `[a]: v`), tabs.
// Everything else the two parsers read alike, values included (YAML_CORE_FOR_JS_YAML).
const NEEDS_FULL_PARSE = /(?:^|[\s[{,])[&*!]|^%|\t|^(?:---|\.\.\.)|(?:^|[\s[{,])\?(?:\s|$)|[\]}][ \t]*:(?=[\s,[\]{}]|$)/m;

// A mapping key written plain: yaml (stringKeys) keeps its text, js-yaml resolves it first
// (`0x10:` is "16", `~:` "null"). A plain key that the core schema would not read as a string
// goes to the full parser. Over-matches on purpose (any `, x:` even inside a value): a false
// match only costs the slow path.
const PLAIN_KEY = /(?:^|[[{,])[ \t]*(?:-[ \t]+)*([^\s'"#[\]{},][^\n#,[\]{}]*?|)[ \t]*:(?=[\s,[\]{}]|$)/gm;

function hasNonStringKey(text: string): boolean {
  PLAIN_KEY.lastIndex = 0;
  for (let m = PLAIN_KEY.exec(text); m; m = PLAIN_KEY.exec(text)) {
    if (typeof resolveCorePlain(m[1]!) !== 'string') return true;
    if (m[0].length === 0) PLAIN_KEY.lastIndex++;
  }
  return false;
}

/**
 * A flow collection or quoted scalar that goes on over a line break onto a line indented no
 * deeper than the node it belongs to (`a: {x: 1,` then `b: 2}` at column 0). The YAML 1.2 parser
 * refuses that ("must be sufficiently indented"); js-yaml reads on, and a nested `stage:` line
 * at column 0 would look like a top-level key. Over-matches on purpose (a bracket in a block
 * scalar, a top-level flow mapping): a false match only costs the slow path.
 */
function continuesUnderIndented(text: string): boolean {
  // Only line breaks, brackets, quotes, comments and escapes matter: jump from one to the next.
  const special = /[\n[\]{}"'#\\]/g;
  let flow = 0;
  let quote = '';
  /** Column where the node holding the open flow collection or quote starts. */
  let owner = 0;
  for (let m = special.exec(text); m; m = special.exec(text)) {
    const i = m.index;
    const c = text[i]!;
    if (c === '\n') {
      if (flow === 0 && quote === '') continue;
      let j = i + 1;
      while (text[j] === ' ') j++;
      const blank = j >= text.length || text[j] === '\n' || (quote === '' && text[j] === '#');
      if (!blank && j - i - 1 <= owner) return true;
      continue;
    }
    if (quote) {
      if ((c === '\\' && quote === '"' && text[i + 1] !== '\n') || (c === "'" && quote === "'" && text[i + 1] === "'")) special.lastIndex = i + 2;
      else if (c === quote) quote = '';
      continue;
    }
    const prev = i === 0 ? '\n' : text[i - 1]!;
    if (c === '#') {
      if (prev !== ' ' && prev !== '\n') continue;
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      special.lastIndex = nl;
      continue;
    }
    const opensQuote = (c === '"' || c === "'") && ' \n[{,:'.includes(prev);
    if (flow === 0 && (opensQuote || c === '[' || c === '{')) owner = nodeColumn(text, i);
    if (c === '[' || c === '{') flow++;
    else if ((c === ']' || c === '}') && flow > 0) flow--;
    else if (opensQuote) quote = c;
  }
  return false;
}

/** Where the node of the line holding offset `at` starts: after its indentation and any compact `- ` entries. */
function nodeColumn(text: string, at: number): number {
  const start = text.lastIndexOf('\n', at - 1) + 1;
  let col = 0;
  while (text[start + col] === ' ') col++;
  while (text[start + col] === '-' && text[start + col + 1] === ' ') {
    col += 2;
    while (text[start + col] === ' ') col++;
  }
  return col;
}

/**
 * The document as the fast path reads it (no schema, no file rules), or undefined when the
 * fast path declines. Exported so tests can compare it with the full path on any text.
 */
export function parsePlainFast(text: string): unknown {
  if (NEEDS_FULL_PARSE.test(text) || hasNonStringKey(text) || continuesUnderIndented(text)) return undefined;
  let value: unknown;
  try {
    value = loadFast(text, { schema: YAML_CORE_FOR_JS_YAML, json: false });
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !isPlainData(value, 0)) return undefined;
  return value;
}

/**
 * The document as the full path reads it (yaml, YAML 1.2 core, positions), or undefined when
 * it has any problem of its own (syntax, aliases, tags, non-finite numbers, keys).
 */
export function parsePlainFull(text: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter });
  if (doc.errors.length || doc.contents === null) return undefined;
  const problems: Problem[] = [];
  const value = toPlainData(doc.contents, { file: '', text, at: (o) => position(lineCounter, o), problems, path: [] });
  if (problems.length || value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return value;
}

/**
 * The fast path, about ten times quicker than the position-keeping parser (yaml's Document
 * API): js-yaml on text without any construct the two parsers could read differently, then
 * the same checks. Undefined means "not accepted here": the full path decides and explains.
 */
function loadPlainManifest<K extends DocumentKind>(text: string, file: string, kind: K): KindMap[K] | undefined {
  const value = parsePlainFast(text);
  if (value === undefined) return undefined;
  if (!validators()[kind](value)) return undefined;
  if (fileRules(kind, value, file).length) return undefined;
  return value as KindMap[K];
}

function isPlainData(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth > LOAD_LIMITS.maxDepth) return false;
  if (Array.isArray(value)) return value.every((v) => isPlainData(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key) || !isPlainData((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

const YAML_ERROR_CODES: Partial<Record<string, ErrorCode>> = {
  DUPLICATE_KEY: 'E_YAML_DUPLICATE_KEY',
  NON_STRING_KEY: 'E_YAML_KEY',
  MULTIPLE_DOCS: 'E_YAML_MULTI_DOC',
  BAD_ALIAS: 'E_YAML_ALIAS',
  ALIAS_PROPS: 'E_YAML_ALIAS',
};

/** The key written at `offset`, for messages. */
function keyText(text: string, offset: number): string {
  const m = /^(?:"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^:\n,{}[\]]*)/.exec(text.slice(offset, offset + 256));
  const key = (m?.[0] ?? '').trim();
  return /^["']/.test(key) ? key.slice(1, -1) : key;
}

/**
 * Where a node's properties start: yaml's node range begins at the value, after any tag
 * (`!!binary`) or anchor (`&name`); problems about those should point at them.
 */
function propertiesStart(text: string, start: number): number {
  let at = start;
  for (;;) {
    let i = at;
    while (i > 0 && /\s/.test(text[i - 1]!)) i--;
    let j = i;
    while (j > 0 && !/\s/.test(text[j - 1]!)) j--;
    const token = text.slice(j, i);
    const k = [...token].findIndex((c, n) => (c === '!' || c === '&') && (n === 0 || '[{,'.includes(token[n - 1]!)));
    if (k < 0 || i === at) return at;
    at = j + k;
  }
}

function position(lineCounter: LineCounter, offset: number | undefined): { line?: number; col?: number } {
  if (offset === undefined) return {};
  const { line, col } = lineCounter.linePos(offset);
  return line === 0 ? { line: 1, col: offset + 1 } : { line, col };
}

function checkLimits(text: string, file: string): Problem | undefined {
  // String length is a lower bound of the UTF-8 size; only near the limit is the exact size needed.
  if (text.length > LOAD_LIMITS.maxBytes || (text.length * 3 > LOAD_LIMITS.maxBytes && Buffer.byteLength(text) > LOAD_LIMITS.maxBytes)) {
    return {
      file,
      line: 1,
      col: 1,
      code: 'E_TOO_LARGE',
      message: `the file has more than ${LOAD_LIMITS.maxBytes} bytes, the limit for a manifest; this looks like hostile input or the wrong file`,
    };
  }
  const deep = deepestPoint(text, LOAD_LIMITS.maxDepth);
  if (deep) {
    return {
      file,
      line: deep.line,
      col: deep.col,
      code: 'E_TOO_DEEP',
      message: `nesting is deeper than ${LOAD_LIMITS.maxDepth} levels; manifests are shallow, this looks like hostile input`,
    };
  }
  return undefined;
}

/**
 * A cheap over-estimate of the nesting depth, from the raw text: block indentation levels,
 * compact "- " entries and open flow brackets. Returns the first place it exceeds `max`. It
 * runs before parsing so that a deeply nested document never reaches the recursive composer.
 */
function deepestPoint(text: string, max: number): { line: number; col: number } | undefined {
  const indents: number[] = [];
  let flow = 0;
  let blockScalarParent = -1;
  let lineNo = 0;
  for (let start = 0; start <= text.length;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    let i = start;
    while (i < end && text.charCodeAt(i) === 32) i++;
    const indent = i - start;
    const blank = i >= end || text[i] === '#' || text[i] === '\r';
    if (blockScalarParent >= 0 && (blank || indent > blockScalarParent)) {
      start = end + 1;
      continue;
    }
    blockScalarParent = -1;
    if (blank) {
      start = end + 1;
      continue;
    }
    if (flow === 0) {
      while (indents.length && indents[indents.length - 1]! > indent) indents.pop();
      if (!indents.length || indents[indents.length - 1]! < indent) indents.push(indent);
    }
    let depth = indents.length;
    // Compact nesting on one line: "- - - x", "? - x".
    while (i + 1 < end && (text[i] === '-' || text[i] === '?') && (text[i + 1] === ' ' || text[i + 1] === '\t')) {
      depth++;
      i += 2;
      while (i < end && text[i] === ' ') i++;
    }
    let quote = '';
    let last = '';
    for (; i < end; i++) {
      const c = text[i]!;
      if (quote) {
        if (c === '\\' && quote === '"') i++;
        else if (c === quote) quote = '';
        continue;
      }
      if ((c === '"' || c === "'") && (last === '' || ' \t[{,:'.includes(last))) quote = c;
      else if (c === '#' && (last === ' ' || last === '\t')) break;
      else if (c === '[' || c === '{') {
        flow++;
        if (depth + flow > max) return { line: lineNo, col: i - start + 1 };
      } else if ((c === ']' || c === '}') && flow > 0) flow--;
      if (c !== ' ' && c !== '\t') last = c;
      else last = ' ';
    }
    if (depth + flow > max) return { line: lineNo, col: indent + 1 };
    if (flow === 0 && (last === '|' || last === '>' || /[|>][-+0-9]{1,2}\s*$/.test(text.slice(Math.max(start, end - 4), end)))) {
      blockScalarParent = indent;
    }
    start = end + 1;
  }
  return undefined;
}

interface ConvertContext {
  file: string;
  text: string;
  at: (offset: number | undefined) => { line?: number; col?: number };
  problems: Problem[];
  path: Array<string | number>;
  /** Where the current field's key is written: value problems point there, like schema problems. */
  fieldStart?: number;
}

/**
 * The document as plain JSON data, checked on the way: no aliases, anchors or explicit tags,
 * string keys only, no prototype keys, finite numbers only. Objects are ordinary objects, but a
 * forbidden key is never assigned, so nothing reaches Object.prototype.
 */
function toPlainData(node: Node | null, ctx: ConvertContext): unknown {
  if (node === null) return null;
  const start = node.range?.[0];
  const field = () => displayPath(ctx.path) || 'the document';
  if (isAlias(node)) {
    ctx.problems.push({
      file: ctx.file,
      ...ctx.at(start),
      code: 'E_YAML_ALIAS',
      message: `${field()}: YAML aliases (*${node.source}) are not allowed in manifests; write the value out`,
    });
    return undefined;
  }
  if (node.anchor) {
    ctx.problems.push({
      file: ctx.file,
      ...ctx.at(propertiesStart(ctx.text, start ?? 0)),
      code: 'E_YAML_ALIAS',
      message: `${field()}: YAML anchors (&${node.anchor}) are not allowed in manifests`,
    });
  }
  if (node.tag) {
    const from = propertiesStart(ctx.text, start ?? 0);
    const written = /!(?:<[^>\s]*>|[^\s,[\]{}]*)/.exec(ctx.text.slice(from, start))?.[0] ?? node.tag;
    ctx.problems.push({
      file: ctx.file,
      ...ctx.at(from),
      code: 'E_YAML_TAG',
      message: `${field()}: explicit YAML tags (${written}) are not allowed in manifests; use plain values`,
    });
  }
  if (isScalar(node)) {
    const v = node.value;
    if (typeof v === 'number' && !Number.isFinite(v)) {
      const written = ctx.text.slice(node.range![0], node.range![1]).trim();
      ctx.problems.push({
        file: ctx.file,
        ...ctx.at(ctx.fieldStart ?? start),
        code: 'E_NON_FINITE',
        field: field(),
        message: `${field()} must be a finite number, got ${written}`,
      });
      return undefined;
    }
    if (typeof v === 'bigint') return Number(v);
    return v;
  }
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) {
      const key = pair.key as ParsedNode | null;
      const keyStart = key?.range?.[0] ?? start;
      if (!isScalar(key) || typeof key.value !== 'string' || key.anchor || key.tag) {
        if (isAlias(key) || key?.anchor || key?.tag) toPlainData(key, ctx);
        else ctx.problems.push({ file: ctx.file, ...ctx.at(keyStart), code: 'E_YAML_KEY', message: `${field()}: keys must be plain strings` });
        continue;
      }
      const name = key.value;
      if (FORBIDDEN_KEYS.has(name)) {
        ctx.problems.push({ file: ctx.file, ...ctx.at(keyStart), code: 'E_FORBIDDEN_KEY', message: `${field()}: the key "${name}" is not allowed` });
        continue;
      }
      ctx.path.push(name);
      ctx.fieldStart = keyStart;
      out[name] = toPlainData(pair.value as Node | null, ctx);
      ctx.path.pop();
    }
    return out;
  }
  if (isSeq(node)) {
    const out: unknown[] = [];
    node.items.forEach((item, i) => {
      ctx.path.push(i);
      ctx.fieldStart = (item as Node | null)?.range?.[0];
      out.push(toPlainData(item as Node | null, ctx));
      ctx.path.pop();
    });
    return out;
  }
  return null;
}

function fieldSegments(field: string): Array<string | number> {
  const segs: Array<string | number> = [];
  for (const m of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) segs.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return segs;
}

/**
 * Where a field is written: its key for a mapping member (that is where a reader looks), the
 * item for a sequence entry; the nearest existing ancestor when the field is absent.
 */
function locate(doc: Document, path: ReadonlyArray<string | number>, at: (offset: number | undefined) => { line?: number; col?: number }) {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === String(seg));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else break;
  }
  return at(offset);
}
