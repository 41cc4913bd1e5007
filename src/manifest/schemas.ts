import type { ValidateFunction } from 'ajv/dist/2020.js';
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
    get: () => (compiled[kind] ??= exactLengths(compileSchema(kind)) as never),
  });
}

/**
 * A validator compiled with lengths in UTF-16 units (compile-schemas.ts) made exact again. ajv then
 * refuses a string longer than maxLength in UTF-16 units, which a string of astral characters
 * (emoji) can be while holding no more code points than allowed: only such a string is counted,
 * and only when it could be within the limit. Nothing else changes: every minLength of the
 * schemas is 1 (the same in units and code points) and no maxLength sits where its verdict picks
 * a branch (anyOf, oneOf, not, if), both checked by test/schemas.test.ts.
 */
function exactLengths(validate: ValidateFunction): ValidateFunction {
  const exact = ((data: unknown) => {
    if (validate(data)) {
      exact.errors = null;
      return true;
    }
    const errors = (validate.errors ?? []).filter((e) => !(e.keyword === 'maxLength' && withinCodePoints(e.data as string, e.params.limit as number)));
    exact.errors = errors.length ? errors : null;
    return errors.length === 0;
  }) as ValidateFunction;
  exact.schema = validate.schema;
  exact.schemaEnv = validate.schemaEnv;
  return exact;
}

/** Whether a string has at most `max` code points; read only when its length alone cannot say. */
function withinCodePoints(s: string, max: number): boolean {
  if (s.length <= max) return true;
  if (s.length > 2 * max) return false;
  let points = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      points--;
      i++;
    }
  }
  return points <= max;
}
