import type { ErrorObject } from 'ajv';
import { excerpt } from './exact.js';
import { displayPath } from './problem.js';

export interface DescribedError {
  /** Field the problem is about (for unknown fields and invalid keys: the key itself). */
  path: Array<string | number>;
  code: 'E_SCHEMA' | 'E_UNKNOWN_FIELD';
  message: string;
}

const PATTERN_PHRASES: Record<string, string> = {
  '^[0-9a-f]{64}$': 'must be a sha256 digest: 64 lowercase hex characters',
  '^[0-9a-f]{40}$': 'must be a full git commit id: 40 lowercase hex characters',
  '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$': 'must be 1–63 lowercase letters, digits and dashes, not starting or ending with a dash',
  '^[A-Za-z_][A-Za-z0-9_-]{0,127}$': 'must start with a letter or "_" and hold only letters, digits, "_" and "-" (at most 128)',
  '^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$':
    'must be an annotation key: lowercase letters, digits, "_", "-" and ".", optionally prefixed by a domain and "/" (e.g. validation_status, acme.com/owner)',
  '^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^/\\s]+)*/?|file:///[^\\s]*)$': 'must be an s3://bucket/prefix or file:///absolute/path URI',
  '^(?!.*(^|/)\\.\\.?(/|$))[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$': 'must be a relative path inside the registry (no "..", no leading "/")',
};

const TYPE_NAMES: Record<string, string> = {
  number: 'a finite number',
  integer: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'empty',
};

/**
 * An ajv error as a sentence a person understands, naming the field in manifest terms:
 * `metrics.auc must be a finite number, got the string "0.97"`. Returns undefined for errors
 * that only repeat another one (the `propertyNames` wrapper).
 */
export function describeSchemaError(e: ErrorObject, document: unknown): DescribedError | undefined {
  const { path, value } = resolvePointer(document, e.instancePath);
  const field = displayPath(path);
  const subject = field || 'the document';

  if (e.keyword === 'propertyNames') return undefined;
  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
  if (propertyName !== undefined) {
    const rule = e.keyword === 'pattern' ? patternPhrase(String(e.params.pattern)) : String(e.message);
    return { path: [...path, propertyName], code: 'E_SCHEMA', message: `${field ? `${field}: ` : ''}the key ${excerpt(propertyName, 80)} ${rule}` };
  }

  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String(e.params.additionalProperty);
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const hint = allowed.length ? ` (allowed: ${allowed.join(', ')})` : '';
      return { path: [...path, name], code: 'E_UNKNOWN_FIELD', message: `unknown field ${excerpt(name, 80)}${field ? ` in ${field}` : ''}${hint}` };
    }
    case 'required': {
      const name = String(e.params.missingProperty);
      return { path, code: 'E_SCHEMA', message: `${field ? `${field} is` : 'the document is'} missing the required field "${name}"` };
    }
    case 'type': {
      const types = String(e.params.type).split(',');
      const wanted = types.length === 1 ? (TYPE_NAMES[types[0]!] ?? types[0]) : `${types.slice(0, -1).join(', ')} or ${types.at(-1)}`;
      return { path, code: 'E_SCHEMA', message: `${subject} must be ${wanted}, got ${describeValue(value)}` };
    }
    case 'const':
      return { path, code: 'E_SCHEMA', message: `${subject} must be ${JSON.stringify(e.params.allowedValue)}, got ${describeValue(value)}` };
    case 'enum':
      return { path, code: 'E_SCHEMA', message: `${subject} must be one of ${(e.params.allowedValues as unknown[]).join(', ')}, got ${describeValue(value)}` };
    case 'pattern':
      return { path, code: 'E_SCHEMA', message: `${subject} ${patternPhrase(String(e.params.pattern))}, got ${describeValue(value)}` };
    case 'format': {
      const example = e.params.format === 'date-time' ? 'an RFC 3339 date-time such as "2026-11-27T10:00:00Z"' : `a valid ${e.params.format}`;
      return { path, code: 'E_SCHEMA', message: `${subject} must be ${example}, got ${describeValue(value)}` };
    }
    default:
      return { path, code: 'E_SCHEMA', message: `${subject} ${e.message ?? 'is invalid'}` };
  }
}

function patternPhrase(pattern: string): string {
  return PATTERN_PHRASES[pattern] ?? `must match ${pattern}`;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 80 ? value.slice(0, 77) + '…' : value)}`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' ? String(value) : typeof value;
}

/** JSON pointer → path segments (numbers for list indexes) and the value found there. */
function resolvePointer(document: unknown, pointer: string): { path: Array<string | number>; value: unknown } {
  const path: Array<string | number> = [];
  let value = document;
  if (!pointer) return { path, value };
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value)) {
      path.push(Number(seg));
      value = value[Number(seg)];
    } else {
      path.push(seg);
      value = value && typeof value === 'object' && Object.hasOwn(value, seg) ? (value as Record<string, unknown>)[seg] : undefined;
    }
  }
  return { path, value };
}
