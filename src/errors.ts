import type { ErrorCode } from './error-codes.js';

/**
 * Exit codes of SPEC §4: 1 the registry content or a check is at fault, 2 the command line is
 * at fault, 3 an outside service failed.
 */
export const ExitCode = { ok: 0, content: 1, usage: 2, service: 3 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Where in which file a problem is; line and column are 1-based. */
export interface SourcePosition {
  file: string;
  line?: number;
  col?: number;
}

/**
 * Every failure modelgate reports on purpose. `code` is stable (tests assert it) and declared in src/error-codes.ts, `exit` is the
 * process exit code it maps to, `data` carries details for machine output. Messages never hold
 * secrets: wrap outside-service errors instead of printing them raw.
 */
export class ModelgateError extends Error {
  override readonly name = 'ModelgateError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly exit: ExitCode = ExitCode.content,
    readonly data: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const usageError = (message: string, data: Record<string, unknown> = {}) => new ModelgateError('E_USAGE', message, ExitCode.usage, data);

export const serviceError = (code: ErrorCode, message: string, cause?: unknown) => new ModelgateError(code, message, ExitCode.service, {}, { cause });

/** `file:line:col: message`, the form editors and CI annotations understand. */
export function formatPosition(pos: SourcePosition): string {
  if (pos.line === undefined) return pos.file;
  return pos.col === undefined ? `${pos.file}:${pos.line}` : `${pos.file}:${pos.line}:${pos.col}`;
}
