import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { compileSchema } from '../src/manifest/compile-schemas.js';
import type { DocumentKind } from '../src/manifest/load.js';

// Needs `npm run build`: the module the bundles use in place of the run-time compiler.
const generated = (await import(join(import.meta.dirname, '../dist/.generated/compile-schemas.mjs'))) as { compileSchema: typeof compileSchema };

const TEMPLATE = join(import.meta.dirname, '../registry-template');
const version = parse(readFileSync(join(TEMPLATE, 'models/fraud-detector/versions/2.yaml'), 'utf8')) as Record<string, unknown>;
const registry = parse(readFileSync(join(TEMPLATE, 'modelgate.yaml'), 'utf8')) as Record<string, unknown>;

const cases: Array<[DocumentKind, unknown]> = [
  ['ModelVersion', version],
  ['ModelVersion', { ...version, version: 0, stage: 'Live', extra: 1 }],
  ['ModelVersion', { ...version, createdAt: 'yesterday', artifact: { uri: 'not a uri', sha256: 'x' } }],
  ['ModelVersion', { ...version, metrics: { auc: 'high' }, lineage: { code: { commit: 'abc' }, data: [{}] } }],
  ['ModelVersion', {}],
  ['ModelVersion', []],
  ['Model', { apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'Bad Name', owners: 3 }],
  ['Registry', registry],
  ['Registry', { ...registry, storage: { kind: 'ftp' } }],
  ['PromotionPolicy', { apiVersion: 'modelgate.dev/v1', kind: 'PromotionPolicy', rules: [{ to: 'Nowhere', approvers: 'x' }] }],
];

describe('validators generated at build time', () => {
  it.each(cases.map((c, i) => [i, ...c] as const))('case %i (%s): same verdict and the same errors as ajv at run time', (_, kind, doc) => {
    const runtime = compileSchema(kind);
    const built = generated.compileSchema(kind);
    expect(typeof built).toBe('function');
    const ok = runtime(doc);
    expect(built(doc)).toBe(ok);
    expect(built.errors ?? null).toEqual(runtime.errors ?? null);
  });

  it('cover every kind', () => {
    for (const kind of ['Registry', 'Model', 'ModelVersion', 'PromotionPolicy'] as const) expect(typeof generated.compileSchema(kind)).toBe('function');
    expect(readdirSync(join(import.meta.dirname, '../dist/.generated')).sort()).toEqual(['compile-schemas.mjs', 'validators.cjs']);
  });
});
