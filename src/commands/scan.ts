import { stat } from 'node:fs/promises';
import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, usageError } from '../errors.js';
import { findingText } from '../gate/scan-check.js';
import { scanLocalPath } from '../scan/local.js';
import type { PickleFinding } from '../scan/pickle.js';

/**
 * `modelgate scan <path…>`: the gate's pickle scan (SPEC v3 §14) over files and folders on disk,
 * no registry needed. Prints one `file at byte N: global` line per finding (`MLmodel:L: …` for
 * what an MLflow MLmodel makes a loader do; `{findings, scanned}` with --json); exit 1 when
 * anything is refused.
 */
export const run: Command = async (ctx) => {
  const { values, positionals, usage } = parseCommand('scan', ctx.argv);
  if (!positionals.length) throw usageError(`${usage}: name at least one file or folder`);
  const allowGlobals = values.allow ?? [];
  const findings: PickleFinding[] = [];
  const scanned: string[] = [];
  for (const path of positionals) {
    try {
      await stat(path);
    } catch {
      throw usageError(`${path}: no such file or folder`);
    }
    const r = await scanLocalPath(path, { format: values.format, allowGlobals });
    findings.push(...r.findings);
    scanned.push(...r.scanned);
  }
  emit(
    ctx,
    {
      findings: findings.map((f) => ({
        file: f.file,
        offset: f.offset,
        ...(f.line !== undefined ? { line: f.line } : {}),
        ...(f.global ? { global: f.global } : {}),
        reason: f.message,
      })),
      scanned,
    },
    () => (findings.length ? findings.map((f) => `${findingText(f)}\n`).join('') : `${scanned.length} file(s) scanned: every global is allowed\n`),
  );
  return findings.length ? ExitCode.content : ExitCode.ok;
};
