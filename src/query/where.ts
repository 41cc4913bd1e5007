import { ExitCode, ModelgateError } from '../errors.js';
import type { ModelVersion } from '../manifest/types.js';
import { parseStage } from '../registry/layout.js';

/**
 * The `list --where` filter language, modelled on MLflow's search filter:
 *
 *   expr       := and ( OR and )*
 *   and        := primary ( AND primary )*
 *   primary    := '(' expr ')' | comparison
 *   comparison := field op value | field IN '(' value ( ',' value )* ')'
 *   op         := = | != | <> | < | <= | > | >= | LIKE | ILIKE
 *   field      := metrics.<key> | parameters.<key> | params.<key> | annotations.<key> | tags.<key>
 *               | lineage.<key>[.<key>…] | artifact.<key> | framework.<key>
 *               | model | version | stage | alias | createdBy | createdAt | format | description
 *   (alias: the names pointing at the version, SPEC v3 §9; `alias = 'champion'` matches when one of them does)
 *   value      := number | 'single' | "double"
 *
 * Keywords are case-insensitive; keys with unusual characters go in backticks (metrics.`f1-score`).
 * Hand-written so that every error names its exact column.
 */

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'LIKE' | 'ILIKE';
export type Literal = string | number;

export interface Field {
  /** The field as written, for messages. */
  text: string;
  /** Path into the manifest, with aliases resolved (params → parameters, tags → annotations). */
  path: string[];
}

export type Expr =
  | { type: 'and' | 'or'; left: Expr; right: Expr }
  | { type: 'compare'; field: Field; op: CompareOp; value: Literal; column: number }
  | { type: 'in'; field: Field; values: Literal[]; column: number };

/** Fields whose value is a map of user-chosen keys: exactly one key follows. */
const MAP_ROOTS: Record<string, string> = {
  metrics: 'metrics',
  parameters: 'parameters',
  params: 'parameters',
  annotations: 'annotations',
  tags: 'annotations',
};
/** Fields with nested structure: one or more keys follow. */
const NESTED_ROOTS = ['lineage', 'artifact', 'framework'];
const TOP_LEVEL = ['model', 'version', 'stage', 'alias', 'createdBy', 'createdAt', 'format', 'description'];

type Token =
  | { kind: 'ident'; text: string; quoted: boolean; start: number; end: number }
  | { kind: 'number'; value: number; text: string; start: number; end: number }
  | { kind: 'string'; value: string; text: string; start: number; end: number }
  | { kind: 'punct'; text: '(' | ')' | ',' | '.'; start: number; end: number }
  | { kind: 'op'; text: string; start: number; end: number }
  | { kind: 'end'; text: ''; start: number; end: number };

/** Bounds that keep the recursive parser and matcher far from the call-stack limit on hostile input. */
export const WHERE_LIMITS = {
  /** Parentheses open at once. */
  maxNesting: 32,
  /** Comparisons in one expression. */
  maxComparisons: 256,
} as const;

/** Whether `expr` reads the top-level field `name` (`alias`, `stage`…) in any of its comparisons. */
export function readsField(expr: Expr, name: string): boolean {
  switch (expr.type) {
    case 'and':
    case 'or':
      return readsField(expr.left, name) || readsField(expr.right, name);
    default:
      return expr.field.path.length === 1 && expr.field.path[0] === name;
  }
}

/** Parses a `--where` expression. Throws E_WHERE_SYNTAX (exit 2) with the column and a caret line. */
export function parseWhere(text: string): Expr {
  const tokens = tokenize(text);
  let i = 0;
  let nesting = 0;
  let comparisons = 0;
  const peek = () => tokens[i]!;
  const next = () => tokens[i++]!;
  const fail = (message: string, at: number): never => {
    throw syntaxError(text, message, at);
  };
  const describe = (t: Token) => (t.kind === 'end' ? 'the end' : `'${t.text}'`);
  const isKeyword = (t: Token, word: string) => t.kind === 'ident' && !t.quoted && t.text.toUpperCase() === word;

  function parseOr(): Expr {
    let left = parseAnd();
    while (isKeyword(peek(), 'OR')) {
      next();
      left = { type: 'or', left, right: parseAnd() };
    }
    return left;
  }

  function parseAnd(): Expr {
    let left = parsePrimary();
    while (isKeyword(peek(), 'AND')) {
      next();
      left = { type: 'and', left, right: parsePrimary() };
    }
    return left;
  }

  function parsePrimary(): Expr {
    const t = peek();
    if (t.kind === 'punct' && t.text === '(') {
      if (++nesting > WHERE_LIMITS.maxNesting) fail(`parentheses nest deeper than ${WHERE_LIMITS.maxNesting} levels`, t.start);
      next();
      const inner = parseOr();
      nesting--;
      const close = peek();
      if (!(close.kind === 'punct' && close.text === ')'))
        fail(`expected ')' to close the '(' at column ${t.start + 1}, found ${describe(close)}`, close.start);
      next();
      return inner;
    }
    return parseComparison();
  }

  function parseField(): Field {
    const first = next();
    if (first.kind !== 'ident' || (!first.quoted && ['AND', 'OR', 'IN', 'LIKE', 'ILIKE'].includes(first.text.toUpperCase()))) {
      return fail(`expected a field (metrics.<name>, parameters.<name>, lineage.…, annotations.<name>, stage, …), found ${describe(first)}`, first.start);
    }
    const segments: Token[] = [first];
    while (peek().kind === 'punct' && peek().text === '.') {
      const dot = next();
      const key = next();
      if (key.kind !== 'ident' && key.kind !== 'number') fail(`expected a key after '.', found ${describe(key)}`, key.kind === 'end' ? dot.end : key.start);
      segments.push(key);
    }
    const names = segments.map((s) => (s.kind === 'ident' ? s.text : s.kind === 'number' ? s.text : ''));
    const fieldText = text.slice(first.start, segments.at(-1)!.end);
    const root = names[0]!;
    const mapRoot = MAP_ROOTS[root];
    if (mapRoot) {
      if (names.length < 2) fail(`expected '.<name>' after '${root}'`, first.end);
      // A dotted key (`metrics.eval.auc`, as nested metrics files are flattened) is one key.
      return { text: fieldText, path: [mapRoot, names.slice(1).join('.')] };
    }
    if (NESTED_ROOTS.includes(root)) {
      if (names.length < 2) fail(`expected '.<name>' after '${root}'`, first.end);
      return { text: fieldText, path: names };
    }
    if (TOP_LEVEL.includes(root)) {
      if (names.length > 1) fail(`'${root}' has no keys`, segments[1]!.start);
      return { text: fieldText, path: names };
    }
    return fail(`unknown field '${root}'; expected metrics.*, parameters.*, lineage.*, annotations.*, ${TOP_LEVEL.join(', ')}`, first.start);
  }

  function parseValue(after: Token): Literal {
    const t = next();
    if (t.kind === 'number' || t.kind === 'string') return t.value;
    return fail(`expected a value after '${after.text}'`, t.start);
  }

  function parseComparison(): Expr {
    if (++comparisons > WHERE_LIMITS.maxComparisons)
      fail(`more than ${WHERE_LIMITS.maxComparisons} comparisons; narrow the filter with --model or --stage`, peek().start);
    const field = parseField();
    const opToken = next();
    const column = opToken.start + 1;
    if (isKeyword(opToken, 'IN')) {
      const open = next();
      if (!(open.kind === 'punct' && open.text === '(')) fail(`expected '(' after IN, found ${describe(open)}`, open.start);
      const values = [parseValue(open)];
      for (;;) {
        const sep = next();
        if (sep.kind === 'punct' && sep.text === ')') break;
        if (!(sep.kind === 'punct' && sep.text === ',')) fail(`expected ',' or ')' in the IN list, found ${describe(sep)}`, sep.start);
        values.push(parseValue(sep));
      }
      return { type: 'in', field, values, column };
    }
    let op: CompareOp;
    if (opToken.kind === 'op') op = opToken.text === '<>' ? '!=' : (opToken.text as CompareOp);
    else if (isKeyword(opToken, 'LIKE') || isKeyword(opToken, 'ILIKE')) op = opToken.text.toUpperCase() as CompareOp;
    else return fail(`expected an operator (= != < <= > >= LIKE ILIKE IN) after '${field.text}', found ${describe(opToken)}`, opToken.start);
    const value = parseValue(opToken);
    if ((op === 'LIKE' || op === 'ILIKE') && typeof value !== 'string') fail(`${op} needs a quoted pattern`, tokens[i - 1]!.start);
    return { type: 'compare', field, op, value, column };
  }

  if (peek().kind === 'end') fail('empty expression', 0);
  const expr = parseOr();
  const rest = peek();
  if (rest.kind !== 'end') {
    fail(rest.kind === 'punct' && rest.text === ')' ? `unbalanced ')'` : `expected 'and', 'or' or the end, found ${describe(rest)}`, rest.start);
  }
  return expr;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    const prev = tokens.at(-1);
    if (c === '(' || c === ')' || c === ',' || (c === '.' && prev?.kind === 'ident' && prev.end === i)) {
      tokens.push({ kind: 'punct', text: c, start, end: ++i });
      continue;
    }
    const op = /^(<=|>=|!=|<>|==|=|<|>)/.exec(text.slice(i))?.[0];
    if (op) {
      i += op.length;
      tokens.push({ kind: 'op', text: op === '==' ? '=' : op, start, end: i });
      continue;
    }
    if (c === "'" || c === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw syntaxError(text, `unterminated string starting at column ${start + 1}`, start);
        const d = text[i]!;
        // Backslash escapes only quotes and itself; `\_` and `\%` reach LIKE as written.
        if (d === '\\' && (text[i + 1] === c || text[i + 1] === '\\')) {
          value += text[i + 1];
          i += 2;
        } else if (d === c && text[i + 1] === c) {
          value += c;
          i += 2;
        } else if (d === c) {
          i++;
          break;
        } else {
          value += d;
          i++;
        }
      }
      tokens.push({ kind: 'string', value, text: text.slice(start, i), start, end: i });
      continue;
    }
    if (c === '`') {
      const close = text.indexOf('`', i + 1);
      if (close < 0) throw syntaxError(text, `unterminated \` starting at column ${start + 1}`, start);
      i = close + 1;
      tokens.push({ kind: 'ident', text: text.slice(start + 1, close), quoted: true, start, end: i });
      continue;
    }
    const number = /^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![A-Za-z_])/.exec(text.slice(i))?.[0];
    // A number directly after '.' is a key (metrics.0_5 is handled as an ident below).
    if (number && !(prev?.kind === 'punct' && prev.text === '.')) {
      i += number.length;
      tokens.push({ kind: 'number', value: Number(number), text: number, start, end: i });
      continue;
    }
    const ident = /^[A-Za-z0-9_][A-Za-z0-9_-]*/.exec(text.slice(i))?.[0];
    if (ident) {
      i += ident.length;
      tokens.push({ kind: 'ident', text: ident, quoted: false, start, end: i });
      continue;
    }
    throw syntaxError(text, `unexpected character '${c}'`, start);
  }
  tokens.push({ kind: 'end', text: '', start: text.length, end: text.length });
  return tokens;
}

function syntaxError(text: string, message: string, offset: number): ModelgateError {
  const column = offset + 1;
  const oneLine = text.replace(/[\r\n\t]/g, ' ');
  return new ModelgateError('E_WHERE_SYNTAX', `--where: ${message} at column ${column}\n  ${oneLine}\n  ${' '.repeat(offset)}^`, ExitCode.usage, { column });
}

/**
 * True when `version` satisfies `expr`. A missing field never matches (not even `!=`); a field
 * holding a list (lineage.data) matches when any element does, and `!=` when none is equal.
 * Numbers compare numerically, strings lexically; `stage` compares case-insensitively.
 */
export function matchWhere(expr: Expr, version: ModelVersion): boolean {
  switch (expr.type) {
    case 'and':
      return matchWhere(expr.left, version) && matchWhere(expr.right, version);
    case 'or':
      return matchWhere(expr.left, version) || matchWhere(expr.right, version);
    case 'in': {
      const values = fieldValues(version, expr.field);
      return values.some((v) => expr.values.some((lit) => compare(v, normalize(expr.field, lit)) === 0));
    }
    case 'compare': {
      const values = fieldValues(version, expr.field);
      if (values.length === 0) return false;
      const literal = normalize(expr.field, expr.value);
      const op = expr.op;
      if (op === '!=') return values.every((v) => compare(v, literal) !== 0);
      return values.some((v) => test(op, v, literal));
    }
  }
}

function normalize(field: Field, literal: Literal): Literal {
  if (field.path.length === 1 && field.path[0] === 'stage' && typeof literal === 'string') return parseStage(literal) ?? literal;
  return literal;
}

/** The scalar values at `field`, flattening lists along the way. */
function fieldValues(version: ModelVersion, field: Field): Array<string | number> {
  let current: unknown[] = [version];
  for (const key of field.path) {
    const next: unknown[] = [];
    for (const node of current) {
      if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, key)) continue;
      const value = (node as Record<string, unknown>)[key];
      if (Array.isArray(value)) for (const item of value) next.push(item);
      else next.push(value);
    }
    current = next;
  }
  const out: Array<string | number> = [];
  for (const v of current) {
    if (typeof v === 'number' || typeof v === 'string') out.push(v);
    else if (typeof v === 'boolean') out.push(String(v));
  }
  return out;
}

function test(op: Exclude<CompareOp, '!='>, value: string | number, literal: Literal): boolean {
  if (op === 'LIKE' || op === 'ILIKE') return likeMatches(String(literal), String(value), op === 'ILIKE');
  const c = compare(value, literal);
  if (Number.isNaN(c)) return false;
  switch (op) {
    case '=':
      return c === 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
  }
}

/** Numeric when both sides are numbers (or one is a number and the other numeric text); else lexical. */
function compare(value: string | number, literal: Literal): number {
  if (typeof value === 'number' || typeof literal === 'number') {
    const a = typeof value === 'number' ? value : numericText(value);
    const b = typeof literal === 'number' ? literal : numericText(literal);
    if (a !== undefined && b !== undefined) return a === b ? 0 : a < b ? -1 : 1;
  }
  const a = String(value);
  const b = String(literal);
  return a === b ? 0 : a < b ? -1 : 1;
}

function numericText(text: string): number | undefined {
  if (!/^\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$/.test(text)) return undefined;
  return Number(text);
}

/**
 * SQL LIKE: `%` any run, `_` one character, backslash escapes either. Linear in the value for a
 * given pattern (SPEC §14): the pieces between `%`s repeat nothing, the first is matched at the
 * start, the last at the end, and each one between at its leftmost place, which is always right
 * when the `%`s around it take whatever lies between. One regular expression with a `[\s\S]*` per
 * `%` backtracks polynomially (`%a%a%a%b` over a long description).
 */
function likeMatches(pattern: string, value: string, caseInsensitive: boolean): boolean {
  const pieces = [''];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '%') pieces.push('');
    else pieces[pieces.length - 1] += c === '\\' && i + 1 < pattern.length ? escapeRegExp(pattern[++i]!) : c === '_' ? '[\\s\\S]' : escapeRegExp(c);
  }
  const flags = caseInsensitive ? 'iu' : 'u';
  if (pieces.length === 1) return new RegExp(`^(?:${pieces[0]})$`, flags).test(value);
  const first = new RegExp(pieces[0]!, `${flags}y`);
  if (!first.test(value)) return false;
  let at = first.lastIndex;
  for (const piece of pieces.slice(1, -1)) {
    const between = new RegExp(piece, `${flags}g`);
    between.lastIndex = at;
    const m = between.exec(value);
    if (!m) return false;
    at = m.index + m[0].length;
  }
  const last = new RegExp(`(?:${pieces.at(-1)})$`, `${flags}g`);
  last.lastIndex = at;
  return last.test(value);
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A stage the expression requires of every match, when it has one: lets `list` prefilter by stage. */
export function requiredStage(expr: Expr): string | undefined {
  if (expr.type === 'compare') {
    if (expr.field.path.length === 1 && expr.field.path[0] === 'stage' && expr.op === '=' && typeof expr.value === 'string') return parseStage(expr.value);
    return undefined;
  }
  if (expr.type === 'and') return requiredStage(expr.left) ?? requiredStage(expr.right);
  return undefined;
}
