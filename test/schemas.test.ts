import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { loadManifest, loadManifestWithPositions, type DocumentKind } from '../src/manifest/load.js';
import { schemas, validators } from '../src/manifest/schemas.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/manifests');
const KINDS: Record<string, DocumentKind> = {
  registry: 'Registry',
  model: 'Model',
  'model-version': 'ModelVersion',
  'promotion-policy': 'PromotionPolicy',
  'model-aliases': 'ModelAliases',
};

function fixtures(group: 'valid' | 'invalid') {
  return Object.entries(KINDS).flatMap(([folder, kind]) =>
    readdirSync(join(FIXTURES, group, folder))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((name) => {
        const text = readFileSync(join(FIXTURES, group, folder, name), 'utf8');
        // Invalid fixtures say what they expect on their first lines: `# expect: CODE line:col`, `# file: path`.
        const expect = /^# expect: (\S+) (\d+):(\d+)$/m.exec(text);
        const file = /^# file: (\S+)$/m.exec(text)?.[1] ?? `${group}/${folder}/${name}`;
        return {
          id: `${folder}/${name}`,
          kind,
          text,
          file,
          expected: expect ? { code: expect[1]!, line: Number(expect[2]), col: Number(expect[3]) } : undefined,
        };
      }),
  );
}

describe('shipped JSON Schemas', () => {
  it('compile in ajv strict mode, on their own as well as through validators()', () => {
    expect(() => validators()).not.toThrow();
    for (const schema of Object.values(schemas)) {
      const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, validateFormats: false });
      expect(() => ajv.compile(schema)).not.toThrow();
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    }
  });

  it('forbid unknown fields on every object they describe', () => {
    const walk = (node: unknown, at: string): string[] => {
      if (!node || typeof node !== 'object') return [];
      const n = node as Record<string, unknown>;
      const here = n.type === 'object' && n.properties && n.additionalProperties !== false ? [at] : [];
      return [...here, ...Object.entries(n).flatMap(([k, v]) => walk(v, `${at}/${k}`))];
    };
    expect(Object.entries(schemas).flatMap(([kind, s]) => walk(s, kind))).toEqual([]);
  });

  // validators() compiles lengths in UTF-16 units (compile-schemas.ts) and recounts a string refused by maxLength in
  // code points; that is exact only while these hold.
  it('set minLength 1 at most, and no maxLength where its verdict picks a branch', () => {
    const BRANCHING = new Set(['anyOf', 'oneOf', 'not', 'if', 'contains', 'propertyNames']);
    const walk = (node: unknown, at: string, branching: boolean): string[] => {
      if (!node || typeof node !== 'object') return [];
      const n = node as Record<string, unknown>;
      const here = [
        ...(typeof n.minLength === 'number' && n.minLength > 1 ? [`${at}: minLength ${n.minLength}`] : []),
        ...(branching && n.maxLength !== undefined ? [`${at}: maxLength under a branch`] : []),
      ];
      return [...here, ...Object.entries(n).flatMap(([k, v]) => walk(v, `${at}/${k}`, branching || BRANCHING.has(k)))];
    };
    expect(Object.entries(schemas).flatMap(([kind, s]) => walk(s, kind, false))).toEqual([]);
    // A $ref reached from a branch is checked as well: no branch refers to a definition holding a maxLength.
    const refsUnderBranches = (node: unknown, branching: boolean): string[] => {
      if (!node || typeof node !== 'object') return [];
      const n = node as Record<string, unknown>;
      return [
        ...(branching && typeof n.$ref === 'string' ? [n.$ref] : []),
        ...Object.entries(n).flatMap(([k, v]) => refsUnderBranches(v, branching || BRANCHING.has(k))),
      ];
    };
    for (const s of Object.values(schemas)) {
      const defs = (s as { $defs?: Record<string, unknown> }).$defs ?? {};
      for (const ref of refsUnderBranches(s, false)) expect(JSON.stringify(defs[ref.replace('#/$defs/', '')] ?? {}), ref).not.toContain('maxLength');
    }
  });

  it('count maxLength in code points, not UTF-16 units', () => {
    const v2 = readFileSync(join(import.meta.dirname, '../registry-template/models/fraud-detector/versions/2.yaml'), 'utf8');
    const file = 'models/fraud-detector/versions/2.yaml';
    const withDescription = (d: string) => v2.replace(/^description: .*$/m, `description: "${d}"`);
    // 4,096 emoji are 8,192 UTF-16 units and exactly the 4,096 characters allowed.
    for (const load of [loadManifest, loadManifestWithPositions]) {
      expect(load(withDescription('😀'.repeat(4096)), file, 'ModelVersion').problems).toEqual([]);
      expect(load(withDescription('😀'.repeat(4095) + 'ab'), file, 'ModelVersion').problems).toMatchObject([{ code: 'E_SCHEMA', field: 'description' }]);
      expect(load(withDescription('😀'.repeat(4097)), file, 'ModelVersion').problems).toMatchObject([{ code: 'E_SCHEMA', field: 'description' }]);
      expect(load(withDescription('a'.repeat(4097)), file, 'ModelVersion').problems).toMatchObject([{ code: 'E_SCHEMA', field: 'description' }]);
      expect(load(withDescription('a'.repeat(4096)), file, 'ModelVersion').problems).toEqual([]);
    }
    const validate = validators().ModelVersion;
    const doc = loadManifest(v2, file, 'ModelVersion').value!;
    expect(validate({ ...doc, description: '😀'.repeat(4096) })).toBe(true);
    expect(validate.errors).toBeNull();
    expect(validate({ ...doc, description: '😀'.repeat(4097), createdBy: '' })).toBe(false);
    expect(validate.errors?.map((e) => e.keyword).sort()).toEqual(['maxLength', 'minLength']);
  });
});

describe.each(fixtures('valid'))('valid fixture $id', ({ kind, text, file }) => {
  it('loads without problems', () => {
    expect(loadManifest(text, file, kind).problems).toEqual([]);
    expect(loadManifestWithPositions(text, file, kind).problems).toEqual([]);
  });
  it('gives the same value on the fast and the position-keeping path', () => {
    expect(loadManifest(text, file, kind).value).toEqual(loadManifestWithPositions(text, file, kind).value);
  });
});

describe.each(fixtures('invalid'))('must-reject fixture $id', ({ kind, text, file, expected }) => {
  it('is rejected with the expected code at the expected place', () => {
    expect(expected, 'fixture lacks "# expect: CODE line:col"').toBeDefined();
    const { value, problems } = loadManifest(text, file, kind);
    expect(value).toBeUndefined();
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatchObject({ file, code: expected!.code, line: expected!.line, col: expected!.col });
    for (const p of problems) expect(p.message).not.toMatch(/undefined|\[object/);
  });
});
