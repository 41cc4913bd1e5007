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
  type Pair,
  type ParsedNode,
  type ParseOptions,
  type SchemaOptions,
  type YAMLMap,
} from 'yaml';
import { FAILSAFE_SCHEMA, load as loadFast, Type } from 'js-yaml';
import { parseAliasesPath, parseManifestPath, reservedAlias } from '../registry/layout.js';
import type { ErrorCode } from '../error-codes.js';
import { excerpt, FORBIDDEN_KEYS, isInexactInteger, unprintableInText, unprintableInValue } from './exact.js';
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

/**
 * Longest text (characters) the fast path reads; a longer manifest goes straight to the YAML 1.2
 * parser. Typical manifests are a few KiB, where the fast path pays; on a large one its scans
 * before parsing would cost more than the parser itself, whose pace is the bound (SPEC §14).
 */
const FAST_PATH_MAX = 64 * 1024;

// YAML 1.2 core schema only: no 1.1 booleans (yes/no), no merge keys, no custom tags. Duplicate
// keys are found while converting (toPlainData): yaml's own check compares every key of a mapping
// with every other, quadratic in a flow mapping of thousands of keys.
const PARSE_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.2',
  schema: 'core',
  merge: false,
  uniqueKeys: false,
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
 * nested text and characters YAML forbids or invalid UTF-8 (before parsing), anchors and aliases,
 * explicit tags, duplicate keys, several documents, non-finite numbers, integers beyond 2^53,
 * prototype keys. The value returned is plain JSON data, exactly what the text says; the time
 * taken is linear in the text (SPEC §14).
 */
export function loadManifest<K extends DocumentKind>(text: string, file: string, kind: K): Loaded<KindMap[K]> {
  const limit = checkLimits(text, file);
  if (limit) return { problems: [limit] };
  const fast = text.length <= FAST_PATH_MAX ? loadPlainManifest(text, file, kind) : undefined;
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
      code === 'E_YAML_KEY'
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
        if (rule.rollback !== undefined && rule.alias === undefined) {
          problems.push({
            file,
            code: 'E_POLICY_RULE',
            field: `${field}.rollback`,
            message: `${label} has "rollback" but no "alias"; "rollback" only applies to alias changes`,
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

/**
 * Whether a character code is one every non-string core scalar but the empty one starts with
 * (`-+.0-9~nNtTfF`): most strings are told apart by one look at their first character, js-yaml
 * asks for every plain scalar and every implicit type.
 */
function startsLikeNonString(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 126 || c === 110 || c === 78 || c === 116 || c === 84 || c === 102 || c === 70;
}
const mayNotBeString = (s: string) => s.length === 0 || startsLikeNonString(s.charCodeAt(0));

const YAML_CORE_FOR_JS_YAML = FAILSAFE_SCHEMA.extend({
  implicit: [
    new Type('tag:yaml.org,2002:null', { kind: 'scalar', resolve: (s: string) => mayNotBeString(s) && CORE_NULL.test(s), construct: () => null }),
    new Type('tag:yaml.org,2002:bool', {
      kind: 'scalar',
      resolve: (s: string) => mayNotBeString(s) && CORE_BOOL.test(s),
      construct: (s: string) => s[0] === 't' || s[0] === 'T',
    }),
    new Type('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (s: string) => mayNotBeString(s) && (CORE_INT_OCT.test(s) || CORE_INT.test(s) || CORE_INT_HEX.test(s)),
      construct: (s: string) => resolveCorePlain(s),
    }),
    new Type('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (s: string) => mayNotBeString(s) && (CORE_FLOAT_NAN.test(s) || CORE_FLOAT_EXP.test(s) || CORE_FLOAT.test(s)),
      construct: (s: string) => resolveCorePlain(s),
    }),
  ],
});

// Text that the fast path leaves to the position-keeping parser: anchors, aliases and tags
// (an indicator where a node may start), directives, document markers, complex keys (`? k`,
// `[a]: v`), tabs, and escapes that could write a character no value may hold (`"\0"`, `"\x01"`;
// the text itself has none, checkLimits saw to that).
// Everything else the two parsers read alike, values included (YAML_CORE_FOR_JS_YAML).
const NEEDS_FULL_PARSE = /(?:^|[\s[{,])[&*!]|^%|\t|^(?:---|\.\.\.)|(?:^|[\s[{,])\?(?:\s|$)|[\]}][ \t]*:(?=[\s,[\]{}]|$)|\\[0abefuvxU]/m;

/**
 * Character classes of the key scan, for codes below 128: 1 ends a stretch that may hold a key
 * (line breaks, `,`, `[`, `{`; a key may start after it), 2 ends one after which none starts
 * (`#`, `]`, `}`), 4 is a blank of JavaScript's `\s`, 8 may not start a plain key (quotes, `#`,
 * brackets, braces, `,`, blanks), 16 may follow a key's `:` (blanks, `,`, brackets, braces).
 */
const KEY_CLASS = new Uint8Array(128);
for (const c of '\n\r,[{') KEY_CLASS[c.charCodeAt(0)]! |= 1;
for (const c of '#]}') KEY_CLASS[c.charCodeAt(0)]! |= 2;
for (const c of '\t\n\v\f\r ') KEY_CLASS[c.charCodeAt(0)]! |= 4 | 8 | 16;
for (const c of `"#'[]{},`) KEY_CLASS[c.charCodeAt(0)]! |= 8;
for (const c of ',[]{}') KEY_CLASS[c.charCodeAt(0)]! |= 16;
/** JavaScript's `\s` beyond ASCII. */
const isWideSpace = (c: number) =>
  c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
/** Whether the character (code) is in the class (KEY_CLASS bits); beyond ASCII only blanks are, and U+2028/U+2029 end a stretch. */
const keyClass = (c: number, bits: number) =>
  (c < 128 ? (KEY_CLASS[c]! & bits) !== 0 : (bits & (4 | 8 | 16)) !== 0 && isWideSpace(c)) || ((bits & 1) !== 0 && (c === 0x2028 || c === 0x2029));

/**
 * Whether a plain key's text is not a string in the core schema. Every other core scalar is
 * empty or starts with `-+.0-9~` (numbers, `~`), or is one of the nine spellings of null, true
 * and false: a key starting with another letter, or with n/t/f and not four or five long, is a
 * string without resolving it.
 */
function keyNotString(text: string, from: number, to: number): boolean {
  const c = text.charCodeAt(from);
  if (!startsLikeNonString(c)) return false;
  const letter = c === 110 || c === 78 || c === 116 || c === 84 || c === 102 || c === 70; // nNtTfF
  if (letter && to - from !== 4 && to - from !== 5) return false;
  return typeof resolveCorePlain(text.slice(from, to)) !== 'string';
}

/**
 * Whether a mapping key written plain would not be a string in the core schema. yaml
 * (stringKeys) keeps a key's text, js-yaml resolves it first (`0x10:` is "16", `~:` "null"), so
 * such a document goes to the full parser. A key is looked for at every line start and after
 * every `[`, `{` and `,`, up to the first `:` followed by a space, a flow indicator or the end,
 * in the stretch that ends at the next line break, `#`, `,`, bracket or brace. Over-matches on
 * purpose (any `, x:` even inside a value): a false match only costs the slow path. One look-up
 * per character finds each stretch's end; the colons are found by `indexOf`, each once (the next
 * colon is kept until a stretch starts beyond it), so the time is linear in the text, however it
 * is written (SPEC §14).
 */
function hasNonStringKey(text: string): boolean {
  const n = text.length;
  const colonEnds = (q: number) => text.charCodeAt(q) === 58 && (q + 1 === n || keyClass(text.charCodeAt(q + 1), 16));
  const blank = (i: number) => text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9;
  const nextColon = (from: number) => {
    const q = text.indexOf(':', from);
    return q < 0 ? n : q;
  };
  let startsKey = true;
  /** The first `:` at or after the last place searched (n when there is none). */
  let colon = -1;
  for (let start = 0; start <= n;) {
    let end = start;
    while (end < n && !keyClass(text.charCodeAt(end), 1 | 2)) end++;
    if (startsKey) {
      let i = start;
      while (blank(i)) i++;
      while (text.charCodeAt(i) === 45 && blank(i + 1)) {
        i++;
        while (blank(i)) i++;
      }
      if (colon < i + 1) colon = nextColon(i + 1);
      while (colon < end && !colonEnds(colon)) colon = nextColon(colon + 1);
      if (i < end && colon < end && !keyClass(text.charCodeAt(i), 8)) {
        let keyEnd = colon;
        while (blank(keyEnd - 1)) keyEnd--;
        if (keyNotString(text, i, keyEnd)) return true;
      } else if (colonEnds(i)) return true; // an empty key: null
    }
    startsKey = end < n && keyClass(text.charCodeAt(end), 1);
    start = end + 1;
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
  /** Where the current line starts; `owner` is read once per line, however many quotes or brackets it opens. */
  let lineStart = 0;
  let ownerLine = -1;
  for (let m = special.exec(text); m; m = special.exec(text)) {
    const i = m.index;
    const c = text[i]!;
    if (c === '\n') {
      lineStart = i + 1;
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
    if (flow === 0 && (opensQuote || c === '[' || c === '{')) {
      if (lineStart !== ownerLine) owner = nodeColumn(text, lineStart);
      ownerLine = lineStart;
    }
    if (c === '[' || c === '{') flow++;
    else if ((c === ']' || c === '}') && flow > 0) flow--;
    else if (opensQuote) quote = c;
  }
  return false;
}

/** Where the node of the line starting at `start` starts: after its indentation and any compact `- ` entries. */
function nodeColumn(text: string, start: number): number {
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
  if (NEEDS_FULL_PARSE.test(text) || continuesUnderIndented(text)) return undefined;
  let value: unknown;
  try {
    value = loadFast(text, { schema: YAML_CORE_FOR_JS_YAML, json: false });
  } catch {
    return undefined;
  }
  const keys = { resolved: false };
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !isPlainData(value, 0, keys)) return undefined;
  // Only a key that reads like a null, boolean or number can have been resolved from one: the
  // text is scanned for plain keys only then, not for every manifest.
  if (keys.resolved && hasNonStringKey(text)) return undefined;
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

/**
 * Data the fast path may return as it is; anything else (also what only looks odd, such as 1e20)
 * goes to the full path. Sets `keys.resolved` when a key may be a null, boolean or number js-yaml
 * resolved and wrote as a string (`~:`, `True:`, `0x10:` become "null", "true", "16").
 */
function isPlainData(value: unknown, depth: number, keys: { resolved: boolean }): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value) && (Number.isSafeInteger(value) || !Number.isInteger(value));
  if (typeof value !== 'object' || depth > LOAD_LIMITS.maxDepth) return false;
  if (Array.isArray(value)) return value.every((v) => isPlainData(v, depth + 1, keys));
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key) || !isPlainData((value as Record<string, unknown>)[key], depth + 1, keys)) return false;
    if (!keys.resolved && mayBeResolvedKey(key)) keys.resolved = true;
  }
  return true;
}

/** Whether a key could be how js-yaml writes a null, boolean or number key: String(x) of one is one of these. */
function mayBeResolvedKey(key: string): boolean {
  const c = key.charCodeAt(0);
  if (c === 45 || (c >= 48 && c <= 57)) return true; // a sign or a digit: -Infinity, -1, 16, 1.5, 1e+21
  return key === 'null' || key === 'true' || key === 'false' || key === 'NaN' || key === 'Infinity';
}

const YAML_ERROR_CODES: Partial<Record<string, ErrorCode>> = {
  NON_STRING_KEY: 'E_YAML_KEY',
  MULTIPLE_DOCS: 'E_YAML_MULTI_DOC',
  BAD_ALIAS: 'E_YAML_ALIAS',
  ALIAS_PROPS: 'E_YAML_ALIAS',
};

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
  const bytes = text.length <= LOAD_LIMITS.maxBytes && text.length * 3 > LOAD_LIMITS.maxBytes ? Buffer.byteLength(text) : undefined;
  if (text.length > LOAD_LIMITS.maxBytes || (bytes !== undefined && bytes > LOAD_LIMITS.maxBytes)) {
    return {
      file,
      line: 1,
      col: 1,
      code: 'E_TOO_LARGE',
      message: `the file has more than ${LOAD_LIMITS.maxBytes} bytes, the limit for a manifest; this looks like hostile input or the wrong file`,
    };
  }
  const unprintable = unprintableInText(text, bytes === text.length);
  if (unprintable) return { file, line: unprintable.line, col: unprintable.col, code: 'E_ENCODING', message: unprintable.message };
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
const DEPTH_SPECIAL = /[\n"#'[\]{}]/g;
/** 1 for the characters deepestPoint's line scan looks at: quotes, `#`, brackets and braces. */
const DEPTH_STOP = new Uint8Array(128);
for (const c of `"#'[]{}`) DEPTH_STOP[c.charCodeAt(0)] = 1;
/** A block scalar header with an indentation or chomping indicator (`|-`, `>2`, `|+1`) ends the line. */
function mayEndInBlockIndicator(text: string, from: number, end: number): boolean {
  for (let i = from; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === CH.pipe || c === CH.gt) return /[|>][-+0-9]{1,2}\s*$/.test(text.slice(from, end));
  }
  return false;
}
const blankAsSpace = (c: number) => (c === CH.tab ? CH.space : c);

/** Character codes deepestPoint looks at. */
const CH = {
  tab: 9,
  space: 32,
  dquote: 34,
  hash: 35,
  squote: 39,
  comma: 44,
  colon: 58,
  gt: 62,
  lbracket: 91,
  backslash: 92,
  rbracket: 93,
  lbrace: 123,
  pipe: 124,
  rbrace: 125,
};

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
    // The character before a quote decides whether it opens one, and the one before a `#` whether
    // it starts a comment; inside a quoted scalar nothing counts. Character codes, not strings: this
    // runs before anything parses the text. Up to the line's first quote, `#` or bracket nothing
    // counts either: the engine's search skips there (a line of plain text costs one search). From
    // there one look-up per character tells the few that matter; a quoted scalar is skipped to its
    // end in a loop of its own.
    const from = i;
    DEPTH_SPECIAL.lastIndex = i;
    i = DEPTH_SPECIAL.exec(text)?.index ?? text.length;
    /** The code of the last character that counts for a block scalar indicator (`|`, `>`). */
    let last = -1;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c >= 128 || DEPTH_STOP[c] === 0) continue;
      if (c === CH.lbracket || c === CH.lbrace) {
        flow++;
        if (depth + flow > max) return { line: lineNo, col: i - start + 1 };
        continue;
      }
      if (c === CH.rbracket || c === CH.rbrace) {
        if (flow > 0) flow--;
        continue;
      }
      /** The character before, CH.space for any blank, 0 at the start of the line. */
      const before = i > from ? blankAsSpace(text.charCodeAt(i - 1)) : 0;
      if (c !== CH.hash) {
        // A quote opens a quoted scalar where a node may start.
        if (before !== 0 && before !== CH.space && before !== CH.lbracket && before !== CH.lbrace && before !== CH.comma && before !== CH.colon) continue;
        let j = i + 1;
        while (j < end) {
          const d = text.charCodeAt(j);
          if (d === c) break;
          j += d === CH.backslash && c === CH.dquote ? 2 : 1;
        }
        if (j >= end) last = c; // the line ends inside the quoted scalar
        i = j;
      } else if (before === CH.space) {
        last = CH.space; // a comment
        break;
      }
    }
    if (last < 0) last = end > from ? blankAsSpace(text.charCodeAt(end - 1)) : 0;
    if (depth + flow > max) return { line: lineNo, col: indent + 1 };
    if (flow === 0 && (last === CH.pipe || last === CH.gt || mayEndInBlockIndicator(text, Math.max(start, end - 4), end))) {
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
 * string keys only, each once per mapping, no prototype keys, finite numbers and integers within
 * 2^53 only, no unprintable characters in keys or strings. Objects are ordinary objects, but a
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
    if (typeof v === 'number') {
      const written = ctx.text.slice(node.range![0], node.range![1]).trim();
      const problem = !Number.isFinite(v)
        ? { code: 'E_NON_FINITE' as const, message: `${field()} must be a finite number, got ${excerpt(written)}` }
        : isInexactInteger(written, v)
          ? {
              code: 'E_UNSAFE_INTEGER' as const,
              message: `${field()} is ${excerpt(written)}, an integer beyond 2^53 that a JSON number cannot keep exactly (it would read ${v}); write it as a string`,
            }
          : undefined;
      if (problem) {
        ctx.problems.push({ file: ctx.file, ...ctx.at(ctx.fieldStart ?? start), field: field(), ...problem });
        return undefined;
      }
    }
    // Only an escape in a double-quoted scalar can write such a character: checkLimits refused the text's own.
    if (typeof v === 'string' && node.type === 'QUOTE_DOUBLE') {
      const bad = unprintableInValue(v);
      if (bad) {
        ctx.problems.push({
          file: ctx.file,
          ...ctx.at(ctx.fieldStart ?? start),
          code: 'E_ENCODING',
          field: field(),
          message: `${field()} holds the character ${bad}, which is not stored (git, Kubernetes and YAML keep only printable text); remove it`,
        });
        return undefined;
      }
    }
    return v;
  }
  if (isMap(node)) {
    // One Set look-up per key: a mapping of thousands of keys costs what it reads. A forbidden key
    // is never assigned, so the plain object never reaches Object.prototype.
    const out: Record<string, unknown> = {};
    const seen = new Set<string>();
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
      const bad = key.type === 'QUOTE_DOUBLE' ? unprintableInValue(name) : undefined;
      if (bad) {
        ctx.problems.push({
          file: ctx.file,
          ...ctx.at(keyStart),
          code: 'E_ENCODING',
          message: `${field()}: the key ${excerpt(name)} holds the character ${bad}; remove it`,
        });
        continue;
      }
      if (seen.has(name)) {
        ctx.problems.push({
          file: ctx.file,
          ...ctx.at(keyStart),
          code: 'E_YAML_DUPLICATE_KEY',
          message: `duplicate key ${excerpt(name, 80)}: a key may appear once per mapping`,
        });
        continue;
      }
      seen.add(name);
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

/** A mapping's pairs by key, built once per mapping: a document with thousands of problems locates each in one look-up. */
const KEY_INDEX = new WeakMap<YAMLMap, Map<string, Pair>>();

function keyIndex(map: YAMLMap): Map<string, Pair> {
  let index = KEY_INDEX.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) if (isScalar(p.key) && typeof p.key.value === 'string' && !index.has(p.key.value)) index.set(p.key.value, p);
    KEY_INDEX.set(map, index);
  }
  return index;
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
      const pair = keyIndex(node).get(String(seg));
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
