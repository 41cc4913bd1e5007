import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Artifact, ArtifactFile } from '../manifest/types.js';
import { directoryDigest, hashStream, HashingStream, integrityError } from './digest.js';
import { artifactUri, assertRelativePath, type ContentAddress } from './layout.js';
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

/** Files downloaded at once by `pullContentAddressed`. */
const PULL_CONCURRENCY = 8;

/**
 * `modelgate pull <uri> <dest>` (KServe's storage-initializer contract): the bytes a
 * content-addressed URI names, into the folder `dest`: a file artifact lands as
 * `dest/<file-name>`, a directory artifact's files under `dest/`. Nothing but the URI is
 * trusted: a file's sha256 must be the digest the URI embeds; a directory's files are every
 * object under its prefix, and their canonical list digest must be that digest, so a changed,
 * missing or extra object fails. The bytes land in a hidden folder inside `dest` and move into
 * place only once the digest matched; on any failure nothing is left in `dest`.
 */
export async function pullContentAddressed(
  store: ArtifactStore,
  address: ContentAddress,
  dest: string,
  options: { onBytes?: (n: number) => void } = {},
): Promise<{ sha256: string; size: number; files: ArtifactFile[] }> {
  const uri = artifactUri(store.location, address.key);
  const keys = address.fileName !== undefined ? [address.key] : (await store.list(address.key)).sort();
  if (keys.length === 0) throw new ModelgateError('E_ARTIFACT_MISSING', `${uri}: no object under this prefix`, ExitCode.content, { uri });
  const entries = keys.map((key) => ({ key, path: address.fileName ?? assertRelativePath(key.slice(address.key.length)) }));
  const tops = [...new Set(entries.map((e) => e.path.split('/')[0]!))];
  for (const top of tops) {
    if (
      await lstat(join(dest, top)).then(
        () => true,
        () => false,
      )
    ) {
      throw new ModelgateError('E_OUTPUT_EXISTS', `${join(dest, top)} already exists; modelgate pull fills an empty folder`, ExitCode.usage);
    }
  }
  await mkdir(dest, { recursive: true });
  const temp = join(dest, `.modelgate-${randomUUID()}.partial`);
  const moved: string[] = [];
  try {
    const files: ArtifactFile[] = [];
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (!failed && next < entries.length) {
        const e = entries[next++]!;
        const out = join(temp, ...e.path.split('/'));
        await mkdir(dirname(out), { recursive: true });
        const hashing = new HashingStream(options.onBytes);
        try {
          await pipeline(await store.read(e.key), hashing, createWriteStream(out, { flags: 'wx' }));
        } catch (err) {
          if (err instanceof ModelgateError) throw err;
          throw new ModelgateError(
            'E_DOWNLOAD',
            `downloading ${e.key} failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`,
            ExitCode.service,
          );
        }
        files.push({ path: e.path, sha256: hashing.digest(), size: hashing.bytes });
      }
    };
    // Every worker settles before the temporary folder is removed, so none writes into it afterwards.
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(PULL_CONCURRENCY, entries.length) }, () =>
        worker().catch((err: unknown) => ((failed = true), Promise.reject(err instanceof Error ? err : new Error(String(err))))),
      ),
    );
    const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    const sha256 = address.fileName !== undefined ? files[0]!.sha256 : directoryDigest(files);
    if (sha256 !== address.sha256) {
      const what =
        address.fileName !== undefined ? `${uri} (${files[0]!.size} bytes)` : `${uri} (${files.length} objects under the prefix, canonical list digest)`;
      throw new ModelgateError(
        'E_INTEGRITY',
        `${what}: sha256 is ${sha256}, the URI says ${address.sha256}; nothing was written to ${dest}`,
        ExitCode.content,
        {
          expected: address.sha256,
          actual: sha256,
        },
      );
    }
    for (const top of tops) {
      await rename(join(temp, top), join(dest, top));
      moved.push(top);
    }
    const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    return { sha256, size: files.reduce((n, f) => n + f.size, 0), files: sorted };
  } catch (e) {
    await Promise.all(moved.map((top) => rm(join(dest, top), { recursive: true, force: true })));
    throw e;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
