import type { ModelVersion, PromotionPolicy, Stage } from '../manifest/types.js';
import type { ArtifactScanner, CheckResult, ScanFinding } from './types.js';

/** Findings named in a check's detail; all of them stay in `findings` (the JSON report, the record). */
const SHOWN = 5;

/** A finding as one line: `file at byte N: global …`, or `file:line: …` for a line of an MLmodel. */
export function findingText(f: ScanFinding): string {
  if (f.line !== undefined) return `${f.file}:${f.line}: ${f.message}`;
  return `${f.file} at byte ${f.offset}: ${f.global ? `${f.global} is not an allowed global` : f.message}`;
}

/**
 * Whether a rule admitting a new version of `model` into `stage` asks for `scan: pickle`: the
 * rules the gate judges a registration by (global ones and the model's own, `to` the stage, `from`
 * absent or listing None).
 */
export function scanRequiredOnRegistration(policy: PromotionPolicy, model: string, stage: Stage): boolean {
  const own = Object.hasOwn(policy.models ?? {}, model) ? (policy.models![model]!.rules ?? []) : [];
  return [...policy.rules, ...own].some(
    (r) => r.scan === 'pickle' && !r.paths && !r.annotations && r.to === stage && (r.from === undefined || r.from.includes('None')),
  );
}

/**
 * `scan: pickle` for one version (SPEC v3 §14): the policy's `scan.allowGlobals` on top of the
 * scanner's safe default. Any finding fails the check with file, offset and global; a missing
 * scanner fails it too. A store error propagates: the caller's deadline guard fails the check.
 */
export async function judgePickleScan(
  scanner: ArtifactScanner | undefined,
  v: ModelVersion,
  allowGlobals: readonly string[],
  check: string,
): Promise<CheckResult> {
  if (!scanner) return { check, ok: false, status: 'fail', detail: 'no artifact scanner is configured for this run: the scan cannot be done, so it fails' };
  const { files, findings, note } = await scanner.scanPickles(v, allowGlobals);
  if (findings.length) {
    const shown = findings.slice(0, SHOWN).map(findingText);
    const more = findings.length > SHOWN ? `; and ${findings.length - SHOWN} more` : '';
    return { check, ok: false, status: 'fail', detail: `refused: ${shown.join('; ')}${more}`, findings };
  }
  const detail =
    note && !files.length
      ? note
      : files.length
        ? `${files.length} file(s) scanned (${files.slice(0, SHOWN).join(', ')}${files.length > SHOWN ? ', …' : ''}): every global is allowed`
        : `nothing to scan in the artifact (format ${v.format})`;
  return { check, ok: true, status: 'pass', detail, findings: [] };
}
