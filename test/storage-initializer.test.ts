// The template's ClusterStorageContainer against KServe's own CRD schema (test/fixtures/crds),
// and its URI pattern against URIs modelgate really writes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { artifactUri, contentKey, parseStoreUri } from '../src/store/layout.js';

const ROOT = join(import.meta.dirname, '..');
const csc = parse(readFileSync(join(ROOT, 'registry-template/cluster/storage-initializer.yaml'), 'utf8'));

describe('the verifying storage initializer', () => {
  it('is a valid KServe ClusterStorageContainer (v1alpha1 CRD schema)', () => {
    const crd = parse(readFileSync(join(ROOT, 'test/fixtures/crds/kserve-clusterstoragecontainers.yaml'), 'utf8'));
    const schema = crd.spec.versions.find((v: { name: string }) => v.name === 'v1alpha1').schema.openAPIV3Schema;
    const ajv = new Ajv({ strict: false, allErrors: true });
    // Kubernetes' OpenAPI integer formats: the schema's `type: integer` already checks them.
    for (const f of ['int32', 'int64']) ajv.addFormat(f, true);
    const validate = ajv.compile(schema);
    expect(validate(csc), JSON.stringify(validate.errors)).toBe(true);
    expect(csc).toMatchObject({ apiVersion: 'serving.kserve.io/v1alpha1', kind: 'ClusterStorageContainer', spec: { workloadType: 'initContainer' } });
    // The same check refuses a broken one: the schema is really applied.
    expect(validate({ ...csc, spec: { supportedUriFormats: csc.spec.supportedUriFormats } })).toBe(false);
  });

  it('claims the content-addressed URIs modelgate writes, and no others', () => {
    const [format] = csc.spec.supportedUriFormats;
    const regex = new RegExp(format.regex);
    const store = parseStoreUri('s3://ml-models/registry');
    const hex = 'ab'.repeat(32);
    expect(regex.test(artifactUri(store, contentKey('fraud-detector', hex, 'model.joblib')))).toBe(true);
    expect(regex.test(artifactUri(store, contentKey('fraud-detector', hex, '')))).toBe(true);
    expect(regex.test(artifactUri(parseStoreUri('s3://ml-models'), contentKey('fraud-detector', hex, 'model.onnx')))).toBe(true);
    expect(regex.test('s3://ml-models/registry/fraud-detector/model.joblib')).toBe(false);
    expect(regex.test(`s3://ml-models/registry/fraud-detector/sha256/${'ab'.repeat(31)}/model.joblib`)).toBe(false);
    expect(regex.test(`gs://ml-models/fraud-detector/sha256/${hex}/model.joblib`)).toBe(false);
  });

  it('ships a Dockerfile whose entrypoint is modelgate pull (KServe appends <uri> <dest>)', () => {
    const dockerfile = readFileSync(join(ROOT, 'storage-initializer/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ENTRYPOINT \["modelgate", "pull"\]$/m);
    expect(dockerfile).toMatch(/^FROM node:24/m);
  });
});
