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
  return [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8')));
}
