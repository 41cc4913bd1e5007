// PLACEHOLDER: the manifest engineer replaces this with the safe loader (limits, aliases,
// duplicate keys, schema validation with positions). The exported signatures are the contract.
import { parse } from 'yaml';
import type { Problem } from './problem.js';
import type { Model, ModelVersion, PromotionPolicy, Registry } from './types.js';

export type DocumentKind = 'Registry' | 'Model' | 'ModelVersion' | 'PromotionPolicy';
export interface KindMap {
  Registry: Registry;
  Model: Model;
  ModelVersion: ModelVersion;
  PromotionPolicy: PromotionPolicy;
}

export interface Loaded<T> {
  /** Present only when there are no problems. */
  value?: T;
  problems: Problem[];
}

/**
 * Parses and validates one registry document. `file` is the registry-relative path used in
 * problems (and, for ModelVersion and Model, checked against the document's model/version).
 */
export function loadManifest<K extends DocumentKind>(text: string, file: string, kind: K): Loaded<KindMap[K]> {
  try {
    return { value: parse(text) as KindMap[K], problems: [] };
  } catch (e) {
    return { problems: [{ file, code: 'E_YAML', message: (e as Error).message }] };
  }
}
