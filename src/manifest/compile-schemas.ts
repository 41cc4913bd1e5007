import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import modelVersionSchema from '../../schemas/model-version.schema.json' with { type: 'json' };
import modelSchema from '../../schemas/model.schema.json' with { type: 'json' };
import promotionPolicySchema from '../../schemas/promotion-policy.schema.json' with { type: 'json' };
import registrySchema from '../../schemas/registry.schema.json' with { type: 'json' };
import modelAliasesSchema from '../../schemas/model-aliases.schema.json' with { type: 'json' };
import type { DocumentKind } from './load.js';

/**
 * The schemas compiled at run time (from source, in tests). The bundles in dist/ replace this
 * module with code ajv generated at build time (scripts/build.mjs, the same options), so the
 * CLI and the Action never compile a schema when they start.
 */
// `unicode: false`: ajv compares a string's UTF-16 length with minLength/maxLength instead of
// counting its code points on every call (a 256 KiB description is read once more just to be
// counted). validators() (schemas.ts) restores the JSON Schema meaning exactly.
const AJV_OPTIONS = { strict: true, allErrors: true, allowUnionTypes: true, verbose: true, unicode: false } as const;
const FORMATS = ['date-time', 'uri'];

// ajv-formats is CommonJS with `exports.default`; under Node's ESM interop the default import is
// the plugin itself, under TypeScript's view it is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv2020,
  formats: string[],
) => Ajv2020;

const sources = {
  Registry: registrySchema,
  Model: modelSchema,
  ModelVersion: modelVersionSchema,
  PromotionPolicy: promotionPolicySchema,
  ModelAliases: modelAliasesSchema,
};
let ajv: Ajv2020 | undefined;

export function compileSchema(kind: DocumentKind): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv2020(AJV_OPTIONS);
    addFormats(ajv, FORMATS);
  }
  return ajv.compile(sources[kind]);
}
