import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import modelVersionSchema from '../../schemas/model-version.schema.json' with { type: 'json' };
import modelSchema from '../../schemas/model.schema.json' with { type: 'json' };
import promotionPolicySchema from '../../schemas/promotion-policy.schema.json' with { type: 'json' };
import registrySchema from '../../schemas/registry.schema.json' with { type: 'json' };
import type { DocumentKind } from './load.js';
import type { Model, ModelVersion, PromotionPolicy, Registry } from './types.js';

/** The shipped JSON Schemas (draft 2020-12), one per document kind, as plain JSON. */
export const schemas = {
  Registry: registrySchema,
  Model: modelSchema,
  ModelVersion: modelVersionSchema,
  PromotionPolicy: promotionPolicySchema,
} as const satisfies Record<DocumentKind, object>;

export interface Validators {
  Registry: ValidateFunction<Registry>;
  Model: ValidateFunction<Model>;
  ModelVersion: ValidateFunction<ModelVersion>;
  PromotionPolicy: ValidateFunction<PromotionPolicy>;
}

export type SchemaError = ErrorObject;

// ajv-formats is CommonJS with `exports.default`; under Node's ESM interop the default import is
// the plugin itself, under TypeScript's view it is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv2020,
  formats: string[],
) => Ajv2020;

let compiled: Validators | undefined;

/** The compiled validators (ajv, strict mode), compiled on first use and shared afterwards. */
export function validators(): Validators {
  if (!compiled) {
    const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true, verbose: true });
    addFormats(ajv, ['date-time', 'uri']);
    compiled = {
      Registry: ajv.compile<Registry>(registrySchema),
      Model: ajv.compile<Model>(modelSchema),
      ModelVersion: ajv.compile<ModelVersion>(modelVersionSchema),
      PromotionPolicy: ajv.compile<PromotionPolicy>(promotionPolicySchema),
    };
  }
  return compiled;
}
