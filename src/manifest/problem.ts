import { formatPosition, type SourcePosition } from '../errors.js';

/** One thing wrong with a registry file, located for people and for CI annotations. */
export interface Problem extends SourcePosition {
  /** Stable identifier, e.g. E_YAML_ALIAS, E_SCHEMA, E_PATH_MISMATCH. */
  code: string;
  message: string;
}

/** `file:line:col: message`. */
export function formatProblem(p: Problem): string {
  return `${formatPosition(p)}: ${p.message}`;
}
