/** Types of scripts/gen-reference.mjs, for test/reference.test.ts. */

export interface DocumentKindInfo {
  kind: 'Registry' | 'Model' | 'ModelVersion' | 'PromotionPolicy';
  /** Where the document lives in a registry, e.g. `models/<model>/model.yaml`. */
  file: string;
  /** Project-relative path of its JSON Schema. */
  schema: string;
  /** Project-relative path of the shipped example in registry-template/. */
  example: string;
}

export interface FieldRow {
  /** `artifact.files[].sha256`, `metrics.<metric>` … */
  path: string;
  type: string;
  required: boolean;
  description: string;
  /** Set when the field reuses a structure listed earlier at this path. */
  sameAs?: string;
}

export const REFERENCE_FILE: string;
export const KINDS: DocumentKindInfo[];
export function schemaRows(schema: object, source?: string): FieldRow[];
export function typeOf(node: object, resolve?: (node: object) => object): string;
export function renderReference(): Promise<string>;
