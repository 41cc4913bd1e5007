import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { compileSchema } from './compile-schemas.js';
import modelVersionSchema from '../../schemas/model-version.schema.json' with { type: 'json' };
import modelSchema from '../../schemas/model.schema.json' with { type: 'json' };
import promotionPolicySchema from '../../schemas/promotion-policy.schema.json' with { type: 'json' };
import registrySchema from '../../schemas/registry.schema.json' with { type: 'json' };
import modelAliasesSchema from '../../schemas/model-aliases.schema.json' with { type: 'json' };
import type { DocumentKind } from './load.js';
import type { Model, ModelAliases, ModelVersion, PromotionPolicy, Registry } from './types.js';

/** The shipped JSON Schemas (draft 2020-12), one per document kind, as plain JSON. */
export const schemas = {
  Registry: registrySchema,
  Model: modelSchema,
  ModelVersion: modelVersionSchema,
  PromotionPolicy: promotionPolicySchema,
  ModelAliases: modelAliasesSchema,
} as const satisfies Record<DocumentKind, object>;

export interface Validators {
  Registry: ValidateFunction<Registry>;
  Model: ValidateFunction<Model>;
  ModelVersion: ValidateFunction<ModelVersion>;
  PromotionPolicy: ValidateFunction<PromotionPolicy>;
  ModelAliases: ValidateFunction<ModelAliases>;
}

export type SchemaError = ErrorObject;

const compiled: Partial<Validators> = {};
const kinds = ['Registry', 'Model', 'ModelVersion', 'PromotionPolicy', 'ModelAliases'] as const;

/**
 * The validators (ajv, strict mode), each made on first use of its kind and shared afterwards:
 * compiled from the schema when running from source, generated at build time in dist/.
 */
export function validators(): Validators {
  return lazy;
}

const lazy = {} as Validators;
for (const kind of kinds) {
  Object.defineProperty(lazy, kind, {
    enumerable: true,
    get: () => (compiled[kind] ??= compileSchema(kind) as never),
  });
}
