import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Artifact } from '../manifest/types.js';
import { directoryDigest, hashStream, HashingStream, integrityError } from './digest.js';
import { assertRelativePath } from './layout.js';
import { requireKey, type ArtifactStore } from './store.js';

/** Keys of an artifact's objects: one for a file, one per listed file for a directory. */
export function artifactObjects(store: ArtifactStore, artifact: Artifact): Array<{ path?: string; key: string; sha256: string; size: number }> {
  const key = requireKey(store, artifact.uri);
  if (!artifact.files) return [{ key, sha256: artifact.sha256, size: artifact.size }];
  const dir = key.endsWith('/') ? key : `${key}/`;
  return artifact.files.map((f) => ({ path: assertRelativePath(f.path), key: dir + f.path, sha256: f.sha256, size: f.size }));
}

/** Reads one object and returns its sha256 and size, streamed. */
export async function hashObject(store: ArtifactStore, key: string, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  return hashStream(await store.read(key), onBytes);
}

/**
 * Downloads an artifact to `target` and verifies every byte before it appears there: the bytes
 * land in a temporary sibling (same file system, so the final rename is atomic) and are renamed
 * into place only when every sha256 and size matches the manifest.
 */
export async function downloadArtifact(
  store: ArtifactStore,
  artifact: Artifact,
  target: string,
  options: { replace?: boolean; onBytes?: (n: number) => void } = {},
): Promise<void> {
  const temp = join(dirname(target), `.${basename(target)}.modelgate-${randomUUID()}.partial`);
  try {
    if (artifact.files) {
      const listed = directoryDigest(artifact.files);
      if (listed !== artifact.sha256) throw integrityError(`${artifact.uri} file list`, artifact.sha256, listed);
    }
    for (const obj of artifactObjects(store, artifact)) {
      const out = obj.path === undefined ? temp : join(temp, ...obj.path.split('/'));
      await mkdir(dirname(out), { recursive: true });
      const hashing = new HashingStream(options.onBytes);
      try {
        await pipeline(await store.read(obj.key), hashing, createWriteStream(out, { flags: 'wx' }));
      } catch (e) {
        if (e instanceof ModelgateError) throw e;
        throw new ModelgateError('E_DOWNLOAD', `downloading ${obj.key} failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).name}`, ExitCode.service);
      }
      const sha256 = hashing.digest();
      if (sha256 !== obj.sha256 || hashing.bytes !== obj.size) {
        throw integrityError(`${store.location.uri}/${obj.key} (${hashing.bytes} bytes)`, obj.sha256, sha256);
      }
    }
    if (options.replace) await rm(target, { recursive: true, force: true });
    await rename(temp, target);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
