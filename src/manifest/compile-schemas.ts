import { _, Ajv2020, str, type CodeKeywordDefinition, type CodeOptions, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import modelVersionSchema from '../../schemas/model-version.schema.json' with { type: 'json' };
import modelSchema from '../../schemas/model.schema.json' with { type: 'json' };
import promotionPolicySchema from '../../schemas/promotion-policy.schema.json' with { type: 'json' };
import registrySchema from '../../schemas/registry.schema.json' with { type: 'json' };
import modelAliasesSchema from '../../schemas/model-aliases.schema.json' with { type: 'json' };
import type { DocumentKind } from './load.js';

/**
 * The schemas compiled at run time (from source, in tests). The bundles in dist/ replace this
 * module with code ajv generated at build time (scripts/build.mjs, from `createAjv`), so the
 * CLI and the Action never compile a schema when they start.
 */
const AJV_OPTIONS = { strict: true, allErrors: true, allowUnionTypes: true, verbose: true } as const;
const FORMATS = ['date-time', 'uri'];

/**
 * minLength and maxLength as a string's UTF-16 length (`.length`), in place of ajv's own, which
 * count its code points on every call (a 256 KiB description is read once more just to be
 * counted; ajv's `unicode: false` did this, and is deprecated). validators() (schemas.ts)
 * restores the JSON Schema meaning exactly. Same errors as ajv's, checked in the same order
 * (before `pattern`).
 */
const UTF16_LENGTH: CodeKeywordDefinition = {
  keyword: ['maxLength', 'minLength'],
  type: 'string',
  schemaType: 'number',
  before: 'pattern',
  error: {
    message: ({ keyword, schemaCode }) => str`must NOT have ${keyword === 'maxLength' ? 'more' : 'fewer'} than ${schemaCode} characters`,
    params: ({ schemaCode }) => _`{limit: ${schemaCode}}`,
  },
  code(cxt) {
    const { keyword, data, schemaCode } = cxt;
    cxt.fail$data(keyword === 'maxLength' ? _`${data}.length > ${schemaCode}` : _`${data}.length < ${schemaCode}`);
  },
};

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

/** The ajv the schemas are compiled with: here at run time, and by scripts/build.mjs as standalone code (`code: {source: true}`). */
export function createAjv(code?: CodeOptions): Ajv2020 {
  const created = addFormats(new Ajv2020({ ...AJV_OPTIONS, ...(code ? { code } : {}) }), FORMATS);
  created.removeKeyword('maxLength').removeKeyword('minLength');
  return created.addKeyword(UTF16_LENGTH);
}

export function compileSchema(kind: DocumentKind): ValidateFunction {
  ajv ??= createAjv();
  return ajv.compile(sources[kind]);
}
