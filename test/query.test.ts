import { describe, expect, it } from 'vitest';
import { ModelgateError } from '../src/errors.js';
import { loadManifest } from '../src/manifest/load.js';
import type { ModelVersion } from '../src/manifest/types.js';
import { matchWhere, parseWhere, requiredStage, WHERE_LIMITS, type Expr } from '../src/query/where.js';

/** Compact rendering of a parse tree, to assert structure and precedence. */
function show(e: Expr): string {
  switch (e.type) {
    case 'and':
    case 'or':
      return `(${show(e.left)} ${e.type} ${show(e.right)})`;
    case 'in':
      return `${e.field.path.join('.')} IN [${e.values.map((v) => JSON.stringify(v)).join(',')}]`;
    case 'compare':
      return `${e.field.path.join('.')} ${e.op} ${JSON.stringify(e.value)}`;
  }
}

function syntaxError(text: string): ModelgateError {
  try {
    parseWhere(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ModelgateError);
    return e as ModelgateError;
  }
  throw new Error(`parsed: ${text}`);
}

const SHA = 'a'.repeat(64);
function version(yaml: string): ModelVersion {
  const text = `apiVersion: modelgate.dev/v1
kind: ModelVersion
model: fraud-detector
createdAt: "2026-11-27T10:00:00Z"
artifact: {uri: "s3://ml-models/registry/fraud-detector/sha256/${SHA}/model.joblib", sha256: ${SHA}, size: 10}
format: joblib
${yaml}`;
  const loaded = loadManifest(text, `models/fraud-detector/versions/${/version: (\d+)/.exec(yaml)![1]}.yaml`, 'ModelVersion');
  expect(loaded.problems).toEqual([]);
  return loaded.value!;
}

const v3 = version(`version: 3
stage: Production
createdBy: maria
metrics: {auc: 0.978, precision: 0.956, latency_p95_ms: 38, f1-score: 0.5}
parameters: {n_estimators: 200, max_depth: 15, class_weight: balanced, warm_start: false}
lineage:
  code: {repository: https://github.com/acme/fraud, commit: 8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b}
  data:
    - {id: txn-2023-q2-v1}
    - {id: txn-2023-q3-v5, uri: s3://data/txn.parquet}
annotations: {validation_status: passed, "team.owner": fraud}
`);
const v4 = version(`version: 4
stage: Staging
metrics: {auc: 0.94}
parameters: {n_estimators: "300"}
`);

describe('parseWhere', () => {
  it('binds and tighter than or, left to right', () => {
    expect(show(parseWhere('metrics.a > 1 or metrics.b < 2 and stage = "Staging"'))).toBe('(metrics.a > 1 or (metrics.b < 2 and stage = "Staging"))');
    expect(show(parseWhere('metrics.a > 1 and metrics.b < 2 or stage = "Staging"'))).toBe('((metrics.a > 1 and metrics.b < 2) or stage = "Staging")');
    expect(show(parseWhere('model = "a" or model = "b" or model = "c"'))).toBe('((model = "a" or model = "b") or model = "c")');
  });

  it('parentheses override precedence and nest', () => {
    expect(show(parseWhere('(metrics.a > 1 or metrics.b < 2) and stage = "Staging"'))).toBe('((metrics.a > 1 or metrics.b < 2) and stage = "Staging")');
    expect(show(parseWhere('((version = 1))'))).toBe('version = 1');
  });

  it('reads every operator, keywords in any case, and aliases', () => {
    const ops = ['=', '!=', '<', '<=', '>', '>='];
    for (const op of ops) expect(show(parseWhere(`metrics.auc ${op} 0.5`))).toBe(`metrics.auc ${op} 0.5`);
    expect(show(parseWhere('metrics.auc<>0.5'))).toBe('metrics.auc != 0.5');
    expect(show(parseWhere('metrics.auc==0.5'))).toBe('metrics.auc = 0.5');
    expect(show(parseWhere("model like 'fraud%'"))).toBe('model LIKE "fraud%"');
    expect(show(parseWhere("model ILike 'FRAUD%'"))).toBe('model ILIKE "FRAUD%"');
    expect(show(parseWhere('stage in (\'Staging\', "Production")'))).toBe('stage IN ["Staging","Production"]');
    expect(show(parseWhere('version IN (1,2, 3)'))).toBe('version IN [1,2,3]');
    expect(show(parseWhere('params.x = 1 AND tags.y = "z" Or lineage.code.commit = "c"'))).toBe(
      '((parameters.x = 1 and annotations.y = "z") or lineage.code.commit = "c")',
    );
  });

  it('reads numbers and quoted strings with escapes', () => {
    expect(show(parseWhere('metrics.a > -1.5e-3'))).toBe('metrics.a > -0.0015');
    expect(show(parseWhere('metrics.a > .5'))).toBe('metrics.a > 0.5');
    expect(show(parseWhere("createdBy = 'o''brien'"))).toBe('createdBy = "o\'brien"');
    expect(show(parseWhere('createdBy = "say \\"hi\\""'))).toBe('createdBy = "say \\"hi\\""');
    expect(show(parseWhere('metrics.`f1-score` > 0.1 and annotations.`team.owner` = "x"'))).toBe('(metrics.f1-score > 0.1 and annotations.team.owner = "x")');
    expect(show(parseWhere('metrics.f1-score > 0.1'))).toBe('metrics.f1-score > 0.1');
  });

  it('names the column of every syntax error, with a caret under it', () => {
    const e = syntaxError('metrics.auc > ');
    expect(e.code).toBe('E_WHERE_SYNTAX');
    expect(e.exit).toBe(2);
    expect(e.data.column).toBe(15);
    expect(e.message).toContain("expected a value after '>'");
    expect(e.message).toContain('at column 15');
    expect(e.message.split('\n').slice(1)).toEqual(['  metrics.auc > ', `  ${' '.repeat(14)}^`]);

    const cases: Array<[string, number, string]> = [
      ['', 1, 'empty expression'],
      ['metrics.auc', 12, 'expected an operator'],
      ['metrics.auc ~ 1', 13, "unexpected character '~'"],
      ['metrics > 1', 8, "expected '.<name>' after 'metrics'"],
      ['metrics. > 1', 10, "expected a key after '.'"],
      ['stage.x = 1', 7, "'stage' has no keys"],
      ['foo = 1', 1, "unknown field 'foo'"],
      ['metrics.auc > 1 and', 20, 'expected a field'],
      ['metrics.auc > 1 metrics.b < 2', 17, "expected 'and', 'or' or the end"],
      ['(metrics.auc > 1', 17, "expected ')' to close the '(' at column 1"],
      ['metrics.auc > 1)', 16, "unbalanced ')'"],
      ["model = 'fraud", 9, 'unterminated string starting at column 9'],
      ['metrics.`auc > 1', 9, 'unterminated `'],
      ['model like 3', 12, 'LIKE needs a quoted pattern'],
      ['model in 3', 10, "expected '(' after IN"],
      ['model in (1 2)', 13, "expected ',' or ')' in the IN list"],
      ['model in ()', 11, "expected a value after '('"],
      ['model = stage', 9, "expected a value after '='"],
      ['and = 1', 1, 'expected a field'],
    ];
    for (const [text, column, message] of cases) {
      const err = syntaxError(text);
      expect({ text, column: err.data.column, message: err.message.includes(message) }).toEqual({ text, column, message: true });
    }
  });
});

describe('parseWhere on hostile input', () => {
  it('rejects parentheses nested too deep at the first one over the limit, not with a stack overflow', () => {
    const deep = `${'('.repeat(100_000)}stage = 'x'${')'.repeat(100_000)}`;
    const err = syntaxError(deep);
    expect(err.code).toBe('E_WHERE_SYNTAX');
    expect(err.exit).toBe(2);
    expect(err.data.column).toBe(WHERE_LIMITS.maxNesting + 1);
    expect(err.message).toContain(`parentheses nest deeper than ${WHERE_LIMITS.maxNesting} levels`);
    const atLimit = `${'('.repeat(WHERE_LIMITS.maxNesting)}stage = 'x'${')'.repeat(WHERE_LIMITS.maxNesting)}`;
    expect(show(parseWhere(atLimit))).toBe('stage = "x"');
  });

  it('rejects too many comparisons at the first one over the limit', () => {
    const term = "stage = 'x' and ";
    const long = `${term.repeat(10_000)}stage = 'x'`;
    const err = syntaxError(long);
    expect(err.code).toBe('E_WHERE_SYNTAX');
    expect(err.data.column).toBe(WHERE_LIMITS.maxComparisons * term.length + 1);
    expect(err.message).toContain(`more than ${WHERE_LIMITS.maxComparisons} comparisons`);
    const atLimit = parseWhere(`${"stage = 'staging' and ".repeat(WHERE_LIMITS.maxComparisons - 1)}metrics.auc > 0.9`);
    expect(matchWhere(atLimit, v4)).toBe(true);
    expect(matchWhere(atLimit, v3)).toBe(false);
  });
});

describe('matchWhere', () => {
  const match = (text: string, v: ModelVersion) => matchWhere(parseWhere(text), v);

  it('compares metrics numerically', () => {
    expect(match('metrics.auc > 0.95', v3)).toBe(true);
    expect(match('metrics.auc > 0.95', v4)).toBe(false);
    expect(match('metrics.auc >= 0.978 and metrics.auc <= 0.978', v3)).toBe(true);
    expect(match('metrics.latency_p95_ms < 100', v3)).toBe(true);
    expect(match('metrics.latency_p95_ms < 9', v3)).toBe(false);
    expect(match('metrics.auc = 0.978', v3)).toBe(true);
    expect(match('metrics.auc != 0.978', v3)).toBe(false);
    expect(match('metrics.`f1-score` = 0.5', v3)).toBe(true);
  });

  it('never matches a missing field, not even with !=', () => {
    expect(match('metrics.recall > 0', v3)).toBe(false);
    expect(match('metrics.recall != 1', v3)).toBe(false);
    expect(match('metrics.precision > 0', v4)).toBe(false);
    expect(match('annotations.validation_status = "passed"', v4)).toBe(false);
  });

  it('matches lineage lists when any element matches, != when none does', () => {
    expect(match("lineage.data.id = 'txn-2023-q3-v5'", v3)).toBe(true);
    expect(match("lineage.data.id = 'txn-2023-q2-v1'", v3)).toBe(true);
    expect(match("lineage.data.id = 'txn-2024'", v3)).toBe(false);
    expect(match("lineage.data.id != 'txn-2023-q3-v5'", v3)).toBe(false);
    expect(match("lineage.data.id != 'txn-2024'", v3)).toBe(true);
    expect(match("lineage.data.uri LIKE 's3://%'", v3)).toBe(true);
    expect(match("lineage.code.commit LIKE '8a7b%'", v3)).toBe(true);
    expect(match('metrics.auc > 0.95 and lineage.data.id = "txn-2023-q3-v5"', v3)).toBe(true);
  });

  it('compares parameters as numbers when either side is numeric text, else as strings', () => {
    expect(match('parameters.n_estimators = 200', v3)).toBe(true);
    expect(match("parameters.n_estimators = '200'", v3)).toBe(true);
    expect(match('params.n_estimators > 250', v4)).toBe(true);
    expect(match("params.n_estimators > '250'", v4)).toBe(true);
    expect(match("params.class_weight = 'balanced'", v3)).toBe(true);
    expect(match("params.class_weight > 'a' and params.class_weight < 'c'", v3)).toBe(true);
    expect(match("params.warm_start = 'false'", v3)).toBe(true);
  });

  it('LIKE is case-sensitive with % and _, ILIKE is not', () => {
    expect(match("model LIKE 'fraud-%'", v3)).toBe(true);
    expect(match("model LIKE 'FRAUD-%'", v3)).toBe(false);
    expect(match("model ILIKE 'FRAUD-%'", v3)).toBe(true);
    expect(match("model LIKE 'fraud_detector'", v3)).toBe(true);
    expect(match("model LIKE 'fraud\\_detector'", v3)).toBe(false);
    expect(match("createdBy LIKE 'mar%'", v3)).toBe(true);
    expect(match("description LIKE '%'", v3)).toBe(false);
  });

  it('LIKE with many % over a long value answers as SQL does (SPEC §14: no pattern backtracks)', () => {
    const long = { ...v3, description: `${'a'.repeat(200_000)}c` };
    expect(match("description LIKE '%a%a%a%a%a%a%b'", long)).toBe(false);
    expect(match("description LIKE '%a%a%a%a%a%a%c'", long)).toBe(true);
    expect(match("description ILIKE 'A%A_%C'", long)).toBe(true);
    expect(match("description LIKE 'a%%a\\%'", { ...v3, description: 'aa%' })).toBe(true);
    expect(match("description LIKE '%a%a'", { ...v3, description: 'a' })).toBe(false);
    expect(match("description LIKE '%ab%b'", { ...v3, description: 'abab' })).toBe(true);
    expect(match("description LIKE '_%_'", { ...v3, description: '𝄞' })).toBe(false);
    expect(match("description LIKE '_'", { ...v3, description: '𝄞' })).toBe(true);
  });

  it('IN, tags alias, top-level fields, stage case-insensitively', () => {
    expect(match('version IN (3, 5)', v3)).toBe(true);
    expect(match('version IN (1, 2)', v3)).toBe(false);
    expect(match("stage IN ('staging', 'production')", v4)).toBe(true);
    expect(match("stage = 'production'", v3)).toBe(true);
    expect(match("tags.validation_status = 'passed'", v3)).toBe(true);
    expect(match("annotations.`team.owner` = 'fraud'", v3)).toBe(true);
    expect(match("createdAt >= '2026-11-27' and createdAt < '2026-11-28'", v3)).toBe(true);
    expect(match("format = 'joblib' and artifact.size = 10", v3)).toBe(true);
    expect(match("(stage = 'Staging' or metrics.auc > 0.97) and version > 3", v3)).toBe(false);
    expect(match("(stage = 'Staging' or metrics.auc > 0.97) and version >= 3", v3)).toBe(true);
  });

  it('finds a stage every match must have', () => {
    expect(requiredStage(parseWhere("stage = 'production' and metrics.auc > 1"))).toBe('Production');
    expect(requiredStage(parseWhere("metrics.auc > 1 and (stage = 'Staging')"))).toBe('Staging');
    expect(requiredStage(parseWhere("stage = 'Staging' or metrics.auc > 1"))).toBeUndefined();
    expect(requiredStage(parseWhere("stage != 'Staging'"))).toBeUndefined();
  });
});
