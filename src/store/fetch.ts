import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Artifact, ArtifactFile } from '../manifest/types.js';
import { directoryDigest, hashStream, HashingStream, integrityError, readHashing } from './digest.js';
import { indexedFileKey, indexKey, modelOfKey, parseIndex, readIndex } from './dir-index.js';
import { artifactUri, assertRelativePath, type ContentAddress } from './layout.js';
import { requireKey, type ArtifactStore } from './store.js';

/** One object of an artifact: where it is and what it must hold. */
export interface ArtifactObject {
  /** Path inside a directory artifact; undefined for a file artifact. */
  path?: string;
  key: string;
  sha256: string;
  size: number;
}

/**
 * Keys of an artifact's objects: one for a file, one per listed file for a directory. An indexed
 * directory's list is read from the store (and checked against the digest, see readIndex).
 */
export async function artifactObjects(store: ArtifactStore, artifact: Artifact): Promise<ArtifactObject[]> {
  const key = requireKey(store, artifact.uri);
  if (artifact.index) {
    const model = modelOfKey(key);
    return (await readIndex(store, model, artifact)).map((f) => ({ path: f.path, key: indexedFileKey(model, f), sha256: f.sha256, size: f.size }));
  }
  if (!artifact.files) return [{ key, sha256: artifact.sha256, size: artifact.size }];
  const dir = key.endsWith('/') ? key : `${key}/`;
  return artifact.files.map((f) => ({ path: assertRelativePath(f.path), key: dir + f.path, sha256: f.sha256, size: f.size }));
}

/** Reads one object and returns its sha256 and size, streamed. */
export async function hashObject(store: ArtifactStore, key: string, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  return hashStream(await store.read(key), onBytes);
}

/** Objects at least this large are fetched as parallel ranged GETs when the store can. */
const RANGED_MIN = 64 << 20;
/** Size of one ranged GET. */
const RANGE_SIZE = 16 << 20;
/** Ranged GETs in flight for one object. */
const RANGES_IN_FLIGHT = 8;
/** Files downloaded at once from a directory artifact. */
const PULL_CONCURRENCY = 16;

function downloadError(key: string, e: unknown): ModelgateError {
  if (e instanceof ModelgateError) return e;
  return new ModelgateError('E_DOWNLOAD', `downloading ${key} failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).name}`, ExitCode.service);
}

/**
 * Downloads one object to the new file `out` and returns the sha256 and size of what was
 * written. A large object (`size` known, at least RANGED_MIN) is fetched as RANGES_IN_FLIGHT
 * parallel ranged GETs written at their offsets, then hashed from the file; anything else is
 * one streamed GET, hashed as it is written.
 */
export async function downloadObject(
  store: ArtifactStore,
  key: string,
  out: string,
  size: number | undefined,
  onBytes?: (n: number) => void,
  signal?: AbortSignal,
): Promise<{ sha256: string; size: number }> {
  if (size === undefined || size < RANGED_MIN || !store.readRange) {
    const hashing = new HashingStream(onBytes);
    try {
      await pipeline(await store.read(key), hashing, createWriteStream(out, { flags: 'wx' }), { signal });
    } catch (e) {
      throw downloadError(key, e);
    }
    return { sha256: hashing.digest(), size: hashing.bytes };
  }
  const readRange = store.readRange.bind(store);
  const file = await open(out, 'wx+');
  const ranges: Array<[number, number]> = [];
  for (let start = 0; start < size; start += RANGE_SIZE) ranges.push([start, Math.min(size, start + RANGE_SIZE) - 1]);
  let received = 0;
  let next = 0;
  let failed = false;
  // Each range is written at its offset as its chunks arrive: memory is the chunks in flight,
  // not whole ranges. The digest is taken afterwards by one sequential read of the file (from the
  // page cache), since the ranges arrive out of order.
  const worker = async () => {
    while (!failed && next < ranges.length) {
      const [start, end] = ranges[next++]!;
      let at = start;
      const body = await readRange(key, start, end);
      // A cancellation ends a range that is waiting for bytes too, not only between chunks.
      if (signal) addAbortSignal(signal, body);
      for await (const c of body) {
        const chunk = c as Buffer;
        if (at + chunk.length > end + 1)
          throw new ModelgateError('E_INTEGRITY', `${store.location.uri}/${key}: the range ${start}-${end} came back longer than asked`, ExitCode.content);
        await writeAt(file, chunk, at);
        at += chunk.length;
        received += chunk.length;
        onBytes?.(chunk.length);
      }
    }
  };
  try {
    const settled = await Promise.allSettled(
      Array.from({ length: RANGES_IN_FLIGHT }, () =>
        worker().catch((e: unknown) => ((failed = true), Promise.reject(e instanceof Error ? e : new Error(String(e))))),
      ),
    );
    const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw downloadError(key, rejected.reason);
    const buffers = [Buffer.allocUnsafe(8 << 20), Buffer.allocUnsafe(8 << 20)];
    const read = await readHashing(file, buffers, async () => {});
    // A short range leaves a hole: the file has the recorded size, but the bytes received say otherwise.
    const found = await store.stat(key);
    const total = received !== size ? received : found && found.size !== size ? found.size : read.size;
    return { sha256: read.sha256, size: total };
  } finally {
    await file.close();
  }
}

async function writeAt(file: FileHandle, chunk: Buffer, position: number): Promise<void> {
  for (let done = 0; done < chunk.length;) {
    const { bytesWritten } = await file.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/** What a download is told: its progress, and the signal of a cancelled command (src/cancel.ts). */
export interface DownloadOptions {
  onBytes?: (n: number) => void;
  signal?: AbortSignal;
}

/**
 * Downloads `objects` (files of one directory, or one file) into `root`, PULL_CONCURRENCY at a
 * time; each file is checked against its expected sha256 and size when one is given. Every
 * download settles before this returns or throws, so none writes into `root` afterwards (an
 * aborted `signal` stops them all); the folders are made first, so none is made afterwards.
 */
async function downloadAll(
  store: ArtifactStore,
  objects: ReadonlyArray<{ key: string; out: string; path: string; sha256?: string; size?: number }>,
  { onBytes, signal }: DownloadOptions = {},
): Promise<ArtifactFile[]> {
  for (const dir of new Set(objects.map((o) => dirname(o.out)))) await mkdir(dir, { recursive: true });
  const files = new Array<ArtifactFile>(objects.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < objects.length) {
      signal?.throwIfAborted();
      const i = next++;
      const o = objects[i]!;
      const got = await downloadObject(store, o.key, o.out, o.size, onBytes, signal);
      if (o.sha256 !== undefined && (got.sha256 !== o.sha256 || got.size !== o.size)) {
        throw integrityError(`${store.location.uri}/${o.key} (${got.size} bytes)`, o.sha256, got.sha256);
      }
      files[i] = { path: o.path, ...got };
    }
  };
  const settled = await Promise.allSettled(
    Array.from({ length: Math.min(PULL_CONCURRENCY, objects.length) }, () =>
      worker().catch((err: unknown) => ((failed = true), Promise.reject(err instanceof Error ? err : new Error(String(err))))),
    ),
  );
  const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return files;
}

/**
 * Downloads an artifact to `target` and verifies every byte before it appears there: the bytes
 * land in a temporary sibling (same file system, so the final rename is atomic) and are renamed
 * into place only when every sha256 and size matches the manifest. On any failure, and when
 * `signal` aborts, the temporary sibling is removed before this settles.
 */
export async function downloadArtifact(
  store: ArtifactStore,
  artifact: Artifact,
  target: string,
  options: DownloadOptions & { replace?: boolean } = {},
): Promise<void> {
  const temp = join(dirname(target), `.${basename(target)}.modelgate-${randomUUID()}.partial`);
  try {
    if (artifact.files) {
      const listed = directoryDigest(artifact.files);
      if (listed !== artifact.sha256) throw integrityError(`${artifact.uri} file list`, artifact.sha256, listed);
    }
    const objects = (await artifactObjects(store, artifact)).map((o) => ({
      key: o.key,
      path: o.path ?? '',
      out: o.path === undefined ? temp : join(temp, ...o.path.split('/')),
      sha256: o.sha256,
      size: o.size,
    }));
    if (artifact.files || artifact.index) await mkdir(temp, { recursive: true });
    await downloadAll(store, objects, options);
    options.signal?.throwIfAborted();
    if (options.replace) await rm(target, { recursive: true, force: true });
    await rename(temp, target);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/**
 * The index of a directory URI, when its prefix holds one whose bytes hash to the digest (an
 * indexed directory); undefined otherwise. A lone object named like an index in an inline
 * directory cannot pass: its bytes would have to contain their own digest.
 */
async function indexAt(store: ArtifactStore, address: ContentAddress): Promise<ArtifactFile[] | undefined> {
  const key = indexKey(address.model, address.sha256);
  if (!(await store.stat(key))) return undefined;
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  for await (const c of await store.read(key)) {
    hash.update(c as Buffer);
    chunks.push(c as Buffer);
  }
  if (hash.digest('hex') !== address.sha256) return undefined;
  return parseIndex(Buffer.concat(chunks), `${store.location.uri}/${key}`);
}

/**
 * `modelgate pull <uri> <dest>` (KServe's storage-initializer contract): the bytes a
 * content-addressed URI names, into the folder `dest`: a file artifact lands as
 * `dest/<file-name>`, a directory artifact's files under `dest/`. Nothing but the URI is
 * trusted: a file's sha256 must be the digest the URI embeds; a directory's files are every
 * object under its prefix, or for an indexed directory (SPEC v2 §5) exactly the files of the
 * index whose sha256 is that digest, and their canonical list digest must be that digest, so a
 * changed, missing or extra object fails. The bytes land in a hidden folder inside `dest` and
 * move into place only once the digest matched; on any failure, and when `signal` aborts (even
 * while they move), nothing is left in `dest`.
 */
export async function pullContentAddressed(
  store: ArtifactStore,
  address: ContentAddress,
  dest: string,
  options: DownloadOptions = {},
): Promise<{ sha256: string; size: number; files: ArtifactFile[] }> {
  const uri = artifactUri(store.location, address.key);
  let entries: Array<{ key: string; path: string; sha256?: string; size?: number }>;
  const indexed = address.fileName === undefined ? await indexAt(store, address) : undefined;
  if (indexed) {
    entries = indexed.map((f) => ({ key: indexedFileKey(address.model, f), path: f.path, sha256: f.sha256, size: f.size }));
  } else {
    const keys = address.fileName !== undefined ? [address.key] : (await store.list(address.key)).sort();
    if (keys.length === 0) throw new ModelgateError('E_ARTIFACT_MISSING', `${uri}: no object under this prefix`, ExitCode.content, { uri });
    entries = keys.map((key) => ({ key, path: address.fileName ?? assertRelativePath(key.slice(address.key.length)) }));
    // A single file's size is one HEAD away: large ones are fetched as parallel ranges.
    if (address.fileName !== undefined) {
      const found = await store.stat(address.key);
      if (!found) throw new ModelgateError('E_ARTIFACT_MISSING', `${uri} does not exist`, ExitCode.content, { uri });
      entries[0]!.size = found.size;
    }
  }
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
    const objects = entries.map((e) => ({ ...e, out: join(temp, ...e.path.split('/')) }));
    const files = await downloadAll(store, objects, options);
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
      options.signal?.throwIfAborted();
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
