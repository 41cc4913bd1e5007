// Validators of Kubernetes documents against the CRD schemas in test/fixtures/crds, cheap enough
// for a loaded machine. KServe's InferenceService CRD is 2 MB of YAML whose schema took ajv
// seconds to compile (a minute and more with the machine busy): the file is parsed once per
// process with js-yaml (several times faster than yaml on it), and the schema is compiled for the
// document at hand only, pruned to the properties that document has.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { load } from 'js-yaml';

// ajv-formats is CommonJS: under Node's ESM interop the default import is the plugin itself.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

type Schema = Record<string, unknown>;

/** Checks one document; `errors` holds the last call's errors, as ajv's validate functions do. */
export interface DocValidator {
  (doc: unknown): boolean;
  errors: ErrorObject[] | null | undefined;
}

const crds = new Map<string, Schema>();

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `schema` reduced to what validating `docs` applies: a `properties` entry (or an `items` or
 * `additionalProperties` schema) is kept only as far as some document has a value there. A
 * `properties` entry applies only to a key that is present, so every document of `docs` is
 * valid under the reduced schema exactly when it is valid under the whole one (CRD schemas have
 * no `$ref`); descriptions go, they validate nothing.
 */
function prune(schema: unknown, docs: unknown[]): unknown {
  if (!isObject(schema)) return schema;
  const out: Schema = { ...schema };
  delete out.description;
  const objects = docs.filter(isObject);
  const properties = isObject(schema.properties) ? schema.properties : undefined;
  if (properties) {
    const keys = new Set(objects.flatMap((d) => Object.keys(d)).filter((k) => Object.hasOwn(properties, k)));
    out.properties = Object.fromEntries(
      [...keys].map((k) => [
        k,
        prune(
          properties[k],
          objects.filter((d) => Object.hasOwn(d, k)).map((d) => d[k]),
        ),
      ]),
    );
  }
  if (isObject(schema.items)) out.items = prune(schema.items, docs.filter(Array.isArray).flat());
  if (isObject(schema.additionalProperties) && !schema.patternProperties) {
    const extra = objects.flatMap((d) => Object.entries(d).filter(([k]) => !properties || !Object.hasOwn(properties, k))).map(([, v]) => v);
    out.additionalProperties = prune(schema.additionalProperties, extra);
  }
  for (const k of ['allOf', 'anyOf', 'oneOf'] as const) if (Array.isArray(schema[k])) out[k] = (schema[k] as unknown[]).map((s) => prune(s, docs));
  if (isObject(schema.not)) out.not = prune(schema.not, docs);
  return out;
}

/** A validator of documents against `version` of the CRD in test/fixtures/crds/`file`. */
export function crdValidator(file: string, version: string): DocValidator {
  let crd = crds.get(file);
  if (!crd) crds.set(file, (crd = load(readFileSync(join(import.meta.dirname, '../fixtures/crds', file), 'utf8')) as Schema));
  const versions = (crd.spec as { versions: Array<{ name: string; schema: { openAPIV3Schema: Schema } }> }).versions;
  const schema = versions.find((v) => v.name === version)!.schema.openAPIV3Schema;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  // Kubernetes' OpenAPI integer formats: the schema's `type: integer` already checks them.
  for (const f of ['int32', 'int64']) ajv.addFormat(f, true);
  const validate = ((doc: unknown) => {
    const check = ajv.compile(prune(schema, [doc]) as Schema);
    const ok = check(doc);
    validate.errors = check.errors;
    return ok;
  }) as DocValidator;
  return validate;
}
