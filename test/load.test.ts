import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOAD_LIMITS, loadManifest, loadManifestWithPositions, locateField } from '../src/manifest/load.js';
import { formatProblem } from '../src/manifest/problem.js';

const TEMPLATE = join(import.meta.dirname, '../registry-template');
const V2_FILE = 'models/fraud-detector/versions/2.yaml';
const V2 = readFileSync(join(TEMPLATE, V2_FILE), 'utf8');

/** The template's version 2 with one line replaced; throws if the line is not there. */
function v2(from: string, to: string): string {
  if (!V2.includes(from)) throw new Error(`not in template: ${from}`);
  return V2.replace(from, to);
}

const lineOf = (text: string, needle: string) => text.slice(0, text.indexOf(needle)).split('\n').length;

function first(text: string, file = V2_FILE) {
  const { value, problems } = loadManifest(text, file, 'ModelVersion');
  expect(value).toBeUndefined();
  expect(problems.length).toBeGreaterThan(0);
  return problems[0]!;
}

describe('loadManifest: valid documents', () => {
  it('returns plain JSON data for the template version, with no problems', () => {
    const { value, problems } = loadManifest(V2, V2_FILE, 'ModelVersion');
    expect(problems).toEqual([]);
    expect(value).toMatchObject({ model: 'fraud-detector', version: 2, stage: 'Staging', metrics: { auc: 0.978 } });
    expect(JSON.parse(JSON.stringify(value))).toEqual(value);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
  });

  it('reads YAML 1.2 core scalars only: yes/no/on stay strings', () => {
    const p = first(v2('annotations: {validation_status: passed}', 'annotations: {validation_status: passed}\nframework: {name: x, version: 1.0}'));
    // A duplicate key, found before any scalar is read; now check 1.1 booleans separately.
    expect(p.code).toBe('E_YAML_DUPLICATE_KEY');
    const model = loadManifest('apiVersion: modelgate.dev/v1\nkind: Model\nname: a\nretired: yes\n', 'models/a/model.yaml', 'Model');
    expect(model.problems).toMatchObject([{ code: 'E_SCHEMA', line: 4, col: 1, field: 'retired' }]);
    expect(model.problems[0]!.message).toBe('retired must be true or false, got the string "yes"');
  });

  it('accepts an explicit %YAML 1.2 directive', () => {
    expect(loadManifest(`%YAML 1.2\n---\n${V2}`, V2_FILE, 'ModelVersion').problems).toEqual([]);
  });
});

describe('loadManifest: size and depth limits, before parsing', () => {
  it('rejects a file over the size limit (E_TOO_LARGE)', () => {
    const text = V2 + `description: "${'x'.repeat(LOAD_LIMITS.maxBytes)}"\n`;
    expect(first(text)).toMatchObject({ code: 'E_TOO_LARGE', line: 1, col: 1 });
  });

  it('counts UTF-8 bytes, not characters', () => {
    const chars = Math.ceil(LOAD_LIMITS.maxBytes / 3) + 10; // under the limit in characters, over it in bytes
    expect(chars).toBeLessThan(LOAD_LIMITS.maxBytes);
    expect(first(`${V2}x: "${'€'.repeat(chars)}"\n`).code).toBe('E_TOO_LARGE');
  });

  it('rejects deeply nested flow collections at the bracket that goes too deep (E_TOO_DEEP)', () => {
    const text = `apiVersion: modelgate.dev/v1\nmetrics: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
    // line 2: depth 1 for the block mapping, then one per bracket; col of the first bracket is 10.
    expect(first(text)).toMatchObject({ code: 'E_TOO_DEEP', line: 2, col: 10 + LOAD_LIMITS.maxDepth - 1 });
  });

  it('rejects deeply nested block mappings and compact sequences', () => {
    let block = '';
    for (let i = 0; i < 40; i++) block += `${'  '.repeat(i)}k${i}:\n`;
    expect(first(block)).toMatchObject({ code: 'E_TOO_DEEP', line: LOAD_LIMITS.maxDepth + 1, col: LOAD_LIMITS.maxDepth * 2 + 1 });
    expect(first(`a:\n${'- '.repeat(50)}x\n`)).toMatchObject({ code: 'E_TOO_DEEP', line: 2 });
  });

  it('does not count brackets inside quoted strings, comments or block scalars', () => {
    const brackets = '['.repeat(60);
    const text = v2('description: Logistic regression on Q3 transactions', `description: "${brackets}" # ${brackets}`);
    expect(loadManifest(text, V2_FILE, 'ModelVersion').problems).toEqual([]);
    const block = v2(
      'description: Logistic regression on Q3 transactions',
      `description: |\n${Array.from({ length: 40 }, (_, i) => `  ${' '.repeat(i)}${brackets}`).join('\n')}`,
    );
    expect(loadManifest(block, V2_FILE, 'ModelVersion').problems).toEqual([]);
  });
});

describe('loadManifest: hostile YAML', () => {
  it('rejects aliases (E_YAML_ALIAS), pointing at the anchor first', () => {
    const text = v2('metrics: {auc: 0.978, precision: 0.956', 'metrics: {auc: &m 0.978, precision: *m');
    const { problems } = loadManifest(text, V2_FILE, 'ModelVersion');
    const line = lineOf(text, '&m');
    expect(problems.map((p) => [p.code, p.line, p.col])).toEqual([
      ['E_YAML_ALIAS', line, 16],
      ['E_YAML_ALIAS', line, 37],
    ]);
  });

  it('rejects a lone anchor, on a scalar and on a mapping', () => {
    expect(first(v2('model: fraud-detector', 'model: &n fraud-detector'))).toMatchObject({ code: 'E_YAML_ALIAS', line: 3, col: 8 });
    const text = v2('artifact:\n', 'artifact: &art\n');
    expect(first(text)).toMatchObject({ code: 'E_YAML_ALIAS', line: lineOf(text, '&art'), col: 11 });
  });

  it('rejects a billion-laughs document without expanding it', () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++)
      lines.push(
        `${'abcdefghi'[i]}: &${'abcdefghi'[i]} [${Array(9)
          .fill(`*${'abcdefghi'[i - 1]}`)
          .join(',')}]`,
      );
    const { problems } = loadManifest(lines.join('\n') + '\n', V2_FILE, 'ModelVersion');
    expect(problems[0]).toMatchObject({ code: 'E_YAML_ALIAS', line: 1, col: 4 });
    expect(problems.every((p) => p.code === 'E_YAML_ALIAS')).toBe(true);
  });

  it('rejects an alias used as a key', () => {
    expect(first('k: &k name\n*k : 1\n')).toMatchObject({ code: 'E_YAML_KEY', line: 2, col: 1 });
  });

  it('rejects duplicate keys, also inside flow mappings (E_YAML_DUPLICATE_KEY)', () => {
    const text = v2('stage: Staging\n', 'stage: Staging\nstage: Production\n');
    expect(first(text)).toMatchObject({ code: 'E_YAML_DUPLICATE_KEY', line: 6, col: 1 });
    expect(first(text).message).toBe('duplicate key "stage": a key may appear once per mapping');
    expect(first(v2('metrics: {auc: 0.978,', 'metrics: {auc: 0.978, auc: 0.99,'))).toMatchObject({ code: 'E_YAML_DUPLICATE_KEY', line: 15, col: 23 });
  });

  it('rejects more than one document (E_YAML_MULTI_DOC)', () => {
    expect(first(`${V2}---\n${V2}`)).toMatchObject({ code: 'E_YAML_MULTI_DOC', line: V2.split('\n').length, col: 1 });
  });

  it('rejects a %YAML 1.1 directive (E_YAML_DIRECTIVE)', () => {
    expect(first(`# header\n%YAML 1.1\n---\n${V2}`)).toMatchObject({ code: 'E_YAML_DIRECTIVE', line: 2, col: 1 });
  });

  it.each([
    ['!!binary aGVsbG8=', '!!binary'],
    ['!!python/object/apply:os.system ["rm -rf /"]', '!!python/object/apply:os.system'],
    ['!custom value', '!custom'],
    ['!!str plain', '!!str'],
    ['!<tag:yaml.org,2002:str> verbatim', '!<tag:yaml.org,2002:str>'],
  ])('rejects the explicit tag in "description: %s" (E_YAML_TAG)', (value, tag) => {
    const p = first(v2('description: Logistic regression on Q3 transactions', `description: ${value}`));
    expect(p).toMatchObject({ code: 'E_YAML_TAG', line: 8, col: 14 });
    expect(p.message).toContain(tag);
  });

  it.each(['.inf', '-.Inf', '.NaN', '1e400'])('rejects the non-finite number %s (E_NON_FINITE)', (n) => {
    const p = first(v2('metrics: {auc: 0.978', `metrics: {auc: ${n}`));
    expect(p).toMatchObject({ code: 'E_NON_FINITE', line: 15, col: 11, field: 'metrics.auc' });
  });

  it('rejects numbers written as strings, with a message a person understands', () => {
    const text = ['apiVersion: modelgate.dev/v1', 'kind: ModelVersion', 'model: fraud', 'version: 3', 'stage: None', 'metrics:', '  auc: "0.97"', ''].join(
      '\n',
    );
    const problems = loadManifest(text, 'models/fraud/versions/3.yaml', 'ModelVersion').problems;
    expect(problems.map(formatProblem)).toContain('models/fraud/versions/3.yaml:7:3: metrics.auc must be a finite number, got the string "0.97"');
    expect(problems.find((p) => p.field === 'metrics.auc')).toMatchObject({ code: 'E_SCHEMA', line: 7, col: 3 });
  });

  it('names an unknown field and where it is (E_UNKNOWN_FIELD)', () => {
    const text = v2('  size: 305\n', '  size: 305\n  checksum: md5\n');
    const p = first(text);
    expect(p).toMatchObject({ code: 'E_UNKNOWN_FIELD', line: lineOf(text, 'checksum'), col: 3, field: 'artifact.checksum' });
    expect(p.message).toMatch(/^unknown field "checksum" in artifact/);
  });

  it.each([
    ['__proto__', '__proto__: {polluted: true}'],
    ['"__proto__" (quoted)', '"__proto__": {polluted: true}'],
    ['constructor', 'constructor: {prototype: {polluted: true}}'],
    ['prototype', 'prototype: {polluted: true}'],
  ])('rejects the key %s and leaves Object.prototype alone (E_FORBIDDEN_KEY)', (_, entry) => {
    const text = v2('parameters: {C: "1.0", penalty: l2, max_iter: "300", class_weight: balanced}', `parameters:\n  ${entry}`);
    expect(first(text)).toMatchObject({ code: 'E_FORBIDDEN_KEY', line: lineOf(text, entry), col: 3 });
    expect(first(`${entry}\n`)).toMatchObject({ code: 'E_FORBIDDEN_KEY', line: 1, col: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('rejects keys that are not strings (E_YAML_KEY)', () => {
    expect(first('? {a: 1}\n: x\n')).toMatchObject({ code: 'E_YAML_KEY', line: 1, col: 3 });
  });

  it('reports invalid YAML with its position (E_YAML_SYNTAX)', () => {
    expect(first('apiVersion: modelgate.dev/v1\nkind: "ModelVersion\n')).toMatchObject({ code: 'E_YAML_SYNTAX', line: 3 });
  });

  it('reports an empty file (E_EMPTY)', () => {
    expect(first('')).toMatchObject({ code: 'E_EMPTY', line: 1, col: 1 });
  });
});

describe('loadManifest: paths and names', () => {
  it('requires the version to equal the file name (E_PATH_MISMATCH)', () => {
    const p = first(V2, 'models/fraud-detector/versions/3.yaml');
    expect(p).toMatchObject({ code: 'E_PATH_MISMATCH', line: 4, col: 1, field: 'version' });
  });

  it('requires the model to equal the folder name (E_PATH_MISMATCH)', () => {
    expect(first(V2, 'models/fraud/versions/2.yaml')).toMatchObject({ code: 'E_PATH_MISMATCH', line: 3, col: 1, field: 'model' });
    const model = loadManifest('apiVersion: modelgate.dev/v1\nkind: Model\nname: fraud\n', 'models/churn/model.yaml', 'Model');
    expect(model.problems).toMatchObject([{ code: 'E_PATH_MISMATCH', line: 3, col: 1 }]);
  });

  it.each(['../etc', 'Fraud', 'fraud_detector', '-fraud', 'fraud-', 'fräud', 'a'.repeat(64)])('rejects the model name %j', (name) => {
    expect(first(v2('model: fraud-detector', `model: ${JSON.stringify(name)}`), 'x.yaml')).toMatchObject({ code: 'E_SCHEMA', line: 3, col: 1, field: 'model' });
  });

  it('requires an integer version of at least 1', () => {
    for (const v of ['0', '-1', '2.5', '"2"', '1e3x']) {
      expect(first(v2('version: 2', `version: ${v}`), 'x.yaml')).toMatchObject({ code: 'E_SCHEMA', line: 4, col: 1, field: 'version' });
    }
  });
});

describe('loadManifest: input kept exactly or refused (SPEC §14)', () => {
  const description = 'description: Logistic regression on Q3 transactions';

  it('refuses bytes that are not UTF-8, at their line (E_ENCODING)', () => {
    const bytes = Buffer.from(v2(description, 'description: caf\u00e9'), 'latin1');
    const text = bytes.toString('utf8'); // how every source decodes a blob: U+FFFD for the stray byte
    expect(first(text)).toMatchObject({ code: 'E_ENCODING', line: lineOf(V2, description), col: 17 });
    expect(loadManifest(v2(description, 'description: café ✓ 𝄞'), V2_FILE, 'ModelVersion').problems).toEqual([]);
  });

  it('refuses NUL and other control characters, raw or escaped (E_ENCODING)', () => {
    const line = lineOf(V2, description);
    for (const written of ['a\u0000b', '"a\\0b"', '"a\\x01b"', '"a\\u0000b"', 'a\u001bb', '"\\uD800"']) {
      const text = v2(description, `description: ${written}`);
      expect(first(text), written).toMatchObject({ code: 'E_ENCODING', line });
      expect(loadManifestWithPositions(text, V2_FILE, 'ModelVersion').problems[0]?.code, written).toBe('E_ENCODING');
    }
    expect(first(v2(description, 'description: ok\n"k\\0": v'))).toMatchObject({ code: 'E_ENCODING', line: line + 1 });
    expect(loadManifest(v2(description, 'description: "tab\\tand\\nline"'), V2_FILE, 'ModelVersion').value?.description).toBe('tab\tand\nline');
  });

  it('refuses a control character in a long text, ASCII only or not, at its place (E_ENCODING)', () => {
    // Over 256 KiB / 3 characters the loader knows the UTF-8 size; an ASCII-only text is searched another way.
    const comment = `# ${'x'.repeat(120)}\n`.repeat(1000);
    for (const extra of ['', 'caf\u00e9 ']) {
      for (const bad of ['\u0000', '\u0008', '\u000b', '\u001f', '\u007f', ...(extra ? ['\u0085x\u0080', '\uFFFE'] : [])]) {
        const text = `${V2}${comment}# ${extra}a${bad}b\n${comment}`;
        const line = V2.split('\n').length + 1000;
        const problem = first(text);
        if (bad.startsWith('\u0085')) expect(problem, JSON.stringify(bad)).toMatchObject({ code: 'E_ENCODING', line, col: 6 + extra.length });
        else expect(problem, JSON.stringify(bad)).toMatchObject({ code: 'E_ENCODING', line, col: 4 + extra.length });
      }
      expect(loadManifest(`${V2}${comment}# ${extra}tab\tok\r\n${comment}`, V2_FILE, 'ModelVersion').problems).toEqual([]);
    }
  });

  it('refuses integers beyond 2^53 instead of rounding them (E_UNSAFE_INTEGER)', () => {
    for (const written of ['12345678901234567890', '123456789012345678901234567890123', '9007199254740993', '0x20000000000001']) {
      const text = v2('  size: 305', `  size: ${written}`);
      expect(first(text), written).toMatchObject({ code: 'E_UNSAFE_INTEGER', line: lineOf(V2, '  size: 305'), field: 'artifact.size' });
    }
    const text = v2('metrics: {auc: 0.978', 'metrics: {n: 123456789012345678901234567890123, auc: 0.978');
    expect(first(text)).toMatchObject({ code: 'E_UNSAFE_INTEGER', field: 'metrics.n' });
    expect(loadManifest(v2('  size: 305', '  size: 9007199254740991'), V2_FILE, 'ModelVersion').value?.artifact.size).toBe(9007199254740991);
    expect(loadManifest(v2('metrics: {auc: 0.978', 'metrics: {big: 1e300, auc: 0.978'), V2_FILE, 'ModelVersion').value?.metrics?.big).toBe(1e300);
  });

  it('finds a duplicate among 5,000 keys of a flow mapping, at the second one', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `p${i}: ${i}`).join(', ');
    const text = v2('parameters: {', `parameters: {${keys}, p4321: 0, `);
    const line = lineOf(text, 'parameters: {');
    expect(first(text)).toMatchObject({ code: 'E_YAML_DUPLICATE_KEY', line, col: text.split('\n')[line - 1]!.indexOf('p4321: 0,') + 1 });
    expect(first(text).message).toBe('duplicate key "p4321": a key may appear once per mapping');
    // Without the duplicate, only the schema's limit of 1,000 parameters is left to report.
    expect(loadManifest(v2('parameters: {', `parameters: {${keys}, `), V2_FILE, 'ModelVersion').problems.map((p) => p.code)).toEqual(['E_SCHEMA']);
  });

  it('quotes at most a short excerpt of a long key or value', () => {
    const long = 'x'.repeat(100_000);
    for (const text of [
      v2(description, `description: ${long}`),
      v2(description, `${description}\n${long}: 1`),
      v2('  size: 305', `  size: 1${'0'.repeat(50_000)}`),
    ]) {
      const { problems } = loadManifest(text, V2_FILE, 'ModelVersion');
      expect(problems.length).toBeGreaterThan(0);
      for (const p of problems) expect(p.message.length, p.code).toBeLessThan(400);
    }
  });

  it('reads text built against the old fast-path key pattern as the full path does', () => {
    // Runs of blanks, commas and "- " that made PLAIN_KEY backtrack quadratically.
    const texts = [
      v2(description, `description: a${' '.repeat(100_000)}b`),
      v2(description, `description: a,${' '.repeat(100_000)}b`),
      v2(description, `description: a${',a'.repeat(50_000)}`),
      v2(description, `description: x${" ''".repeat(30_000)}`),
      v2(description, `description: x${' []'.repeat(30_000)}`),
      `${'- '.repeat(20)}a: b\n`,
      v2(description, `description: a${'- '.repeat(50_000)}: b`),
    ];
    for (const text of texts) {
      const fast = loadManifest(text, V2_FILE, 'ModelVersion');
      const full = loadManifestWithPositions(text, V2_FILE, 'ModelVersion');
      expect(fast.value).toEqual(full.value);
      expect(fast.problems.map((p) => [p.code, p.line, p.col])).toEqual(full.problems.map((p) => [p.code, p.line, p.col]));
    }
  });
});

describe('the fast path and the position-keeping path', () => {
  const cases = [
    V2,
    v2('metrics: {auc: 0.978', 'metrics: {auc: 0b101'),
    v2('metrics: {auc: 0.978', 'metrics: {auc: 0x1F'),
    v2('metrics: {auc: 0.978', 'metrics: {auc: 1_000'),
    v2('metrics: {auc: 0.978', 'metrics: {auc: +12'),
    v2('description: Logistic regression on Q3 transactions', 'description: 1e999'),
    v2('description: Logistic regression on Q3 transactions', 'description: "tab\there"'),
    v2('description: Logistic regression on Q3 transactions', 'description: a & b * c'),
    v2('description: Logistic regression on Q3 transactions', 'description: ~'),
    v2('description: Logistic regression on Q3 transactions', 'description: |-\n  two\n  lines'),
    v2('description: Logistic regression on Q3 transactions', "description: 'it''s'"),
    v2('createdBy: maria', 'createdBy: 2026-01-01'),
    v2('annotations: {validation_status: passed}', 'annotations: {validation_status: "yes"}'),
    v2('annotations: {validation_status: passed}', 'annotations: {validation_status: yes}'),
  ];
  it.each(cases.map((text, i) => [i, text]))('agree on case %i', (_, text) => {
    const fast = loadManifest(text, V2_FILE, 'ModelVersion');
    const full = loadManifestWithPositions(text, V2_FILE, 'ModelVersion');
    expect(fast.value).toEqual(full.value);
    expect(fast.problems.map((p) => p.code)).toEqual(full.problems.map((p) => p.code));
  });
});

describe('locateField', () => {
  it('finds a field by its display path', () => {
    expect(locateField(V2, 'artifact.uri')).toEqual({ line: 10, col: 3 });
    const line = lineOf(V2, 'txn-2023-q3-v5');
    expect(locateField(V2, 'lineage.data[0].sha256')).toEqual({ line, col: V2.split('\n')[line - 1]!.indexOf('sha256:') + 1 });
    expect(locateField(V2, 'lineage.data[0]')).toEqual({ line, col: 7 });
    expect(locateField(V2, 'metrics.nope')).toEqual({ line: 15, col: 1 });
  });
});
