import type { ErrorCode } from '../error-codes.js';
import { formatPosition, type SourcePosition } from '../errors.js';

/** One thing wrong with a registry file, located for people and for CI annotations. */
export interface Problem extends SourcePosition {
  /** Stable identifier, e.g. E_YAML_ALIAS, E_SCHEMA, E_PATH_MISMATCH (src/error-codes.ts). */
  code: ErrorCode;
  message: string;
  /** The field the problem is about, as written in messages: `artifact.uri`, `lineage.data[0].id`. */
  field?: string;
}

/** `file:line:col: message`. */
export function formatProblem(p: Problem): string {
  return `${formatPosition(p)}: ${p.message}`;
}

/** `['lineage', 'data', 0, 'id']` → `lineage.data[0].id`. */
export function displayPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/** Problems in reading order: by file, then line, then column. */
export function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0)));
}
