import { createHash } from 'node:crypto';
import type { ArtifactFile } from '../manifest/types.js';

/**
 * Canonical digest of a directory artifact: sha256 over one line per file,
 * `<sha256 hex><two spaces><size in decimal><two spaces><path>\n`, the paths relative with `/`,
 * sorted by their UTF-8 bytes (Buffer.compare, not locale order). Anyone can recompute it with
 * `sha256sum`-like tooling; an empty directory has the digest of the empty string.
 */
export function directoryDigest(files: readonly ArtifactFile[]): string {
  const sorted = sortFiles(files);
  const h = createHash('sha256');
  for (const f of sorted) h.update(`${f.sha256}  ${f.size}  ${f.path}\n`, 'utf8');
  return h.digest('hex');
}

/** Files ordered by the UTF-8 bytes of their path. */
export function sortFiles<T extends { path: string }>(files: readonly T[]): T[] {
  // Each path encoded once, not at every comparison (100,000 files: 3.4 million encodings).
  const keyed = files.map((file) => ({ file, key: Buffer.from(file.path, 'utf8') }));
  return keyed.sort((a, b) => Buffer.compare(a.key, b.key)).map((k) => k.file);
}
