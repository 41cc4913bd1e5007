import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../src/error-codes.js';
import { ExitCode, ModelgateError, serviceError, usageError } from '../src/errors.js';

const ROOT = join(import.meta.dirname, '..');
const LIST_FILE = 'src/error-codes.ts';
const listed = Object.keys(ERROR_CODES) as ErrorCode[];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sourceFiles(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

/** Where in src/ each code is raised, and with which exit code: from the syntax tree, not from a regex. */
function raiseSites(): { sites: Array<{ code: string; exit: ExitCode; at: string }>; literals: Set<string> } {
  const sites: Array<{ code: string; exit: ExitCode; at: string }> = [];
  const literals = new Set<string>();
  const exitOf = (node: ts.Expression | undefined): ExitCode[] => {
    if (node === undefined) return [ExitCode.content]; // ModelgateError's default
    if (ts.isConditionalExpression(node)) return [...exitOf(node.whenTrue), ...exitOf(node.whenFalse)];
    if (ts.isPropertyAccessExpression(node) && node.expression.getText() === 'ExitCode') return [ExitCode[node.name.text as keyof typeof ExitCode]];
    throw new Error(`cannot read the exit code ${node.getText()}`);
  };
  const codesOf = (node: ts.Expression): string[] => {
    if (ts.isStringLiteral(node)) return /^E_[A-Z0-9_]+$/.test(node.text) ? [node.text] : [];
    if (ts.isConditionalExpression(node)) return [...codesOf(node.whenTrue), ...codesOf(node.whenFalse)];
    if (ts.isParenthesizedExpression(node)) return codesOf(node.expression);
    return [];
  };
  for (const path of sourceFiles(join(ROOT, 'src'))) {
    const file = relative(ROOT, path);
    if (file === LIST_FILE) continue;
    const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
    const record = (codes: ts.Expression, exits: ExitCode[], node: ts.Node) => {
      const at = `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
      const found = codesOf(codes);
      // `cond ? 'E_A' : 'E_B'` with `cond ? ExitCode.x : ExitCode.y`: paired branch by branch.
      if (found.length === exits.length && found.length > 1) found.forEach((code, i) => sites.push({ code, exit: exits[i]!, at }));
      else for (const code of found) for (const exit of exits) sites.push({ code, exit, at });
    };
    const visit = (node: ts.Node) => {
      if (ts.isStringLiteral(node) && /^E_[A-Z0-9_]+$/.test(node.text)) literals.add(node.text);
      if (ts.isNewExpression(node) && node.expression.getText() === 'ModelgateError' && node.arguments?.[0])
        record(node.arguments[0], exitOf(node.arguments[2]), node);
      if (ts.isCallExpression(node) && node.expression.getText() === 'serviceError' && node.arguments[0]) record(node.arguments[0], [ExitCode.service], node);
      if (ts.isCallExpression(node) && node.expression.getText() === 'usageError') sites.push({ code: 'E_USAGE', exit: ExitCode.usage, at: file });
      // A Problem literal: reported by validate/check, which exit 1.
      if (ts.isPropertyAssignment(node) && node.name.getText() === 'code') record(node.initializer, [ExitCode.content], node);
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { sites, literals };
}

describe('src/error-codes.ts', () => {
  const { sites, literals } = raiseSites();

  it('lists only codes that src/ uses (tsc refuses a used code that is not listed)', () => {
    expect(sites.length).toBeGreaterThan(100);
    const unused = listed.filter((c) => !literals.has(c));
    expect(unused, 'listed in src/error-codes.ts but never used in src/').toEqual([]);
    const unlisted = [...literals].filter((c) => !(c in ERROR_CODES));
    expect(unlisted, 'used in src/ but not listed').toEqual([]);
  });

  it('gives each code the exit codes it is raised with, no more and no fewer', () => {
    const raised = new Map<string, Set<ExitCode>>();
    for (const s of sites) {
      expect(ERROR_CODES, `${s.at}: ${s.code}`).toHaveProperty(s.code);
      const declared: readonly ExitCode[] = ERROR_CODES[s.code as ErrorCode].exit;
      expect(declared, `${s.at}: ${s.code} is raised with exit ${s.exit}; add it to its entry or fix the call`).toContain(s.exit);
      raised.set(s.code, (raised.get(s.code) ?? new Set()).add(s.exit));
    }
    for (const [code, exits] of raised) expect([...exits].sort(), code).toEqual([...ERROR_CODES[code as ErrorCode].exit].sort());
  });

  it('has a summary sentence for each code', () => {
    for (const code of listed) expect(ERROR_CODES[code].summary, code).toMatch(/^\S.{10,}\.$/);
  });

  it('is what ModelgateError and its helpers accept', () => {
    const errors = [new ModelgateError('E_NOT_FOUND', 'x'), serviceError('E_S3', 'y'), usageError('z')];
    expect(errors.map((e) => [e.code, e.exit])).toEqual([
      ['E_NOT_FOUND', ExitCode.content],
      ['E_S3', ExitCode.service],
      ['E_USAGE', ExitCode.usage],
    ]);
    // @ts-expect-error: a code not in ERROR_CODES does not compile.
    expect(new ModelgateError('E_NOT_A_CODE', 'x').code).toBe('E_NOT_A_CODE');
  });
});
