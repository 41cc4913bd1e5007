/**
 * Limits checked on a manifest's raw text, before the YAML parser sees it. A module of its own so
 * that readers which only size a file (src/registry/source.ts) do not load the parser.
 */
export const LOAD_LIMITS = {
  /** Bytes (UTF-8) of one manifest. */
  maxBytes: 256 * 1024,
  /** Nesting of mappings, sequences and flow collections; manifests need about 5. */
  maxDepth: 32,
} as const;
