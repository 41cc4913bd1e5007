import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import type { Artifact, ArtifactFile, ArtifactIndex } from '../manifest/types.js';
import { indexChunks, indexedArtifact, indexedFileKey, indexKey, INDEX_NAME, INDEX_THRESHOLD } from './dir-index.js';
import { directoryDigest, hashComparing, hashFile, walkDirectory, type LocalFile } from './digest.js';
import { hashObject } from './fetch.js';
import { artifactUri, assertArtifactName, contentKey, encodeSegment } from './layout.js';
import type { ArtifactStore, CommitOutcome, StagedUpload } from './store.js';

/** An artifact after upload: what the manifest's `artifact` section records. */
export interface StoredArtifact {
  uri: string;
  sha256: string;
  size: number;
  files?: ArtifactFile[];
  /** A directory of more than INDEX_THRESHOLD files: its file list is the index object in the store. */
  index?: ArtifactIndex;
  /** True when every object was already in the store (the same bytes registered before). */
  reused: boolean;
}

export interface PutOptions {
  /** Called with the number of bytes read each time the read moves on. */
  onBytes?: (n: number) => void;
  /**
   * Artifacts the registry already records for this model. When one has the local source's
   * shape (same name and size, or the same file list and sizes), the source is hashed first and,
   * if the digest matches and the store still holds those bytes, nothing is uploaded at all.
   */
  known?: readonly Artifact[];
  /** Names this registration's staging area (so a signal handler can remove it); random by default. */
  uploadId?: string;
  /**
   * Called with the artifact's digest once it is known, before its bytes are made visible under
   * their content key or found there: register writes its registration mark, so that `gc` takes
   * the bytes, reused or new, for fresh while the registration is under way.
   */
  mark?: (sha256: string) => Promise<void>;
}

/** What a local path holds: one file or a folder, with the total bytes (for progress). */
export async function describeSource(
  path: string,
): Promise<{ kind: 'file'; size: number; name: string } | { kind: 'directory'; files: LocalFile[]; size: number }> {
  let s;
  try {
    s = await stat(path);
  } catch {
    throw usageError(`${path}: no such file or folder`);
  }
  if (s.isFile()) return { kind: 'file', size: s.size, name: assertArtifactName(basename(path)) };
  if (!s.isDirectory()) throw usageError(`${path}: not a regular file or folder`);
  const files = await walkDirectory(path);
  if (files.length === 0) throw usageError(`${path}: the folder holds no files`);
  return { kind: 'directory', files, size: files.reduce((n, f) => n + f.size, 0) };
}

/**
 * Puts a local file or folder into the store under its content address, reading every byte
 * once, then checks that what the store holds has the size that was read. Nothing is left in
 * staging whatever happens; the manifest may be written only after this resolves.
 */
export async function putArtifact(store: ArtifactStore, model: string, localPath: string, options: PutOptions = {}): Promise<StoredArtifact> {
  const source = await describeSource(localPath);
  if (source.kind === 'directory' && source.files.length > INDEX_THRESHOLD) return putIndexed(store, model, source.files, options);
  const reused = await reuseKnown(store, model, localPath, source, options.known ?? []);
  if (reused) {
    await options.mark?.(reused.sha256);
    options.onBytes?.(reused.size);
    return reused;
  }
  if (store.putFile) return putHashFirst(store, model, localPath, source, options);
  const uploadId = options.uploadId ?? randomUUID();
  const staged: Array<{ path: string; upload: StagedUpload }> = [];
  try {
    if (source.kind === 'file') {
      const upload = await store.stage(localPath, { model, path: source.name, uploadId, onBytes: options.onBytes });
      staged.push({ path: source.name, upload });
      const key = contentKey(model, upload.sha256, source.name);
      await options.mark?.(upload.sha256);
      const outcome = await upload.commit(key);
      await verifyStored(store, key, upload.size);
      return { uri: artifactUri(store.location, key), sha256: upload.sha256, size: upload.size, reused: outcome === 'reused' };
    }
    // One file at a time: each large file already uploads its parts in parallel, and memory
    // stays bounded by one file's multipart window.
    for (const f of source.files) {
      staged.push({ path: f.path, upload: await store.stage(f.absolute, { model, path: f.path, uploadId, onBytes: options.onBytes }) });
    }
    const files: ArtifactFile[] = staged.map((s) => ({ path: s.path, sha256: s.upload.sha256, size: s.upload.size }));
    const digest = directoryDigest(files);
    await options.mark?.(digest);
    let reused = true;
    for (const s of staged) {
      const key = contentKey(model, digest, s.path);
      if ((await s.upload.commit(key)) === 'created') reused = false;
      await verifyStored(store, key, s.upload.size);
    }
    return {
      uri: artifactUri(store.location, contentKey(model, digest, '')),
      sha256: digest,
      size: files.reduce((n, f) => n + f.size, 0),
      files,
      reused,
    };
  } finally {
    await Promise.all(staged.map((s) => s.upload.discard().catch(() => {})));
  }
}

/** Files hashed (and uploaded) at once in a directory artifact. */
const PARALLEL_FILES = 8;

/** Files of an indexed directory hashed and stored at once (small files: latency bound, not bandwidth). */
const PARALLEL_INDEXED = 32;

/** Files below this size go to a store's `putSmallFiles` when it has one. */
const SMALL_FILE = 1 << 20;

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/**
 * SPEC v2 §5, a directory of more than INDEX_THRESHOLD files: every file is hashed, then stored
 * under its own content key `<model>/sha256/<file sha256>/<name>` (small files in batches when
 * the store takes them so, the others PARALLEL_INDEXED at a time);
 * a key the store already holds with those bytes (any earlier version's unchanged file) is not
 * sent again. The canonical list is written last, as the index object, whose sha256 is the
 * directory digest: a failed run leaves no index, so nothing can name a half-stored directory.
 * Memory holds the list (about 150 bytes a file) and PARALLEL_INDEXED files' buffers.
 */
async function putIndexed(store: ArtifactStore, model: string, local: readonly LocalFile[], options: PutOptions): Promise<StoredArtifact> {
  const uploadId = options.uploadId ?? randomUUID();
  const inFlight = new Map<string, Promise<CommitOutcome>>();
  const storeOnce = (key: string, absolute: string, path: string, expected: { sha256: string; size: number }) => {
    // Two files with the same bytes and name share one object: it is stored once.
    let p = inFlight.get(key);
    if (!p) {
      p = storeFileAt(store, model, key, absolute, path, expected, uploadId, options.onBytes);
      inFlight.set(key, p);
    } else {
      options.onBytes?.(expected.size);
    }
    return p;
  };
  let created = 0;
  const files = new Array<ArtifactFile>(local.length);
  // Small files go to a store that takes them in batches (the file store: worker threads, a
  // handful of system calls each), the rest one by one, each read as it is stored.
  const small: number[] = [];
  const large: number[] = [];
  for (const [i, f] of local.entries()) (store.putSmallFiles && f.size < SMALL_FILE ? small : large).push(i);
  try {
    if (small.length > 0) {
      const stored = await store.putSmallFiles!(
        small.map((i) => ({ absolute: local[i]!.absolute, name: baseName(local[i]!.path) })),
        { model, uploadId },
        options.onBytes,
      );
      for (const [j, i] of small.entries()) {
        const { sha256, size, outcome } = stored[j]!;
        files[i] = { path: local[i]!.path, sha256, size };
        if (outcome === 'created') created++;
      }
    }
    await mapLimit(large, PARALLEL_INDEXED, async (i) => {
      const f = local[i]!;
      const read = await hashFile(f.absolute, undefined, f.size);
      files[i] = { path: f.path, ...read };
      if ((await storeOnce(indexedFileKey(model, files[i]), f.absolute, f.path, read)) === 'created') created++;
    });
  } catch (e) {
    await store.discardStaging?.(model, uploadId);
    throw e;
  }
  inFlight.clear();
  // The files are durable before the index that names them is written, and the index before the manifest.
  await store.flush?.();
  const digest = directoryDigest(files);
  const size = files.reduce((n, f) => n + f.size, 0);
  await options.mark?.(digest);
  // The index goes through the same write path as any file: a temporary local copy, then its key.
  const dir = await mkdtemp(join(tmpdir(), 'modelgate-index-'));
  try {
    const temp = join(dir, INDEX_NAME);
    const out = await open(temp, 'wx');
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for (const chunk of indexChunks(files)) {
        hash.update(chunk);
        bytes += chunk.length;
        await out.write(chunk);
      }
    } finally {
      await out.close();
    }
    if (hash.digest('hex') !== digest) throw new Error('index digest differs from the directory digest');
    const outcome = await storeFileAt(store, model, indexKey(model, digest), temp, INDEX_NAME, { sha256: digest, size: bytes }, uploadId);
    if (outcome === 'created') created++;
    await store.flush?.();
  } finally {
    await store.discardStaging?.(model, uploadId);
    await rm(dir, { recursive: true, force: true });
  }
  const artifact = indexedArtifact(store.location, model, digest, size, files.length);
  return { uri: artifact.uri, sha256: digest, size, index: artifact.index!, reused: created === 0 };
}

/**
 * Stores a local file whose digest is known at `key`, unless the store holds those bytes there
 * already (answered from metadata on S3, by reading the object back on the file store). With
 * `putFile` the bytes go straight to the key; otherwise through the store's staging place.
 */
export async function storeFileAt(
  store: ArtifactStore,
  model: string,
  key: string,
  absolute: string,
  path: string,
  expected: { sha256: string; size: number },
  uploadId: string,
  onBytes?: (n: number) => void,
): Promise<CommitOutcome> {
  if (store.putFileDeferred) return store.putFileDeferred(absolute, key, expected, onBytes, { uploadId, model });
  // putFile checks what it wrote (size and sha256 metadata) itself: no extra HEAD per file.
  if (store.putFile) return store.putFile(absolute, key, expected, onBytes);
  if (await holds(store, key, expected.sha256, expected.size)) {
    onBytes?.(expected.size);
    return 'reused';
  }
  // Its own sub-area of the registration's staging folder: `discard` removes the whole area it
  // was given, and other files are staged beside this one meanwhile (abandon still finds all).
  const upload = await store.stage(absolute, { model, path: path.slice(path.lastIndexOf('/') + 1), uploadId: `${uploadId}/${randomUUID()}`, onBytes });
  try {
    if (upload.sha256 !== expected.sha256 || upload.size !== expected.size) {
      throw new ModelgateError('E_SOURCE_CHANGED', `${absolute} changed while it was being registered (sha256 differs between reads)`, ExitCode.content);
    }
    const outcome = await upload.commit(key);
    await verifyStored(store, key, expected.size);
    return outcome;
  } finally {
    await upload.discard().catch(() => {});
  }
}

/** sha256 and size of every file of a directory, PARALLEL_INDEXED at a time, in the files' order. */
export function hashDirectory(files: readonly LocalFile[], onBytes?: (n: number) => void): Promise<ArtifactFile[]> {
  return mapLimit(files, PARALLEL_INDEXED, async (f) => ({ path: f.path, ...(await hashFile(f.absolute, onBytes, f.size)) }));
}

/** Runs `fn` over `items`, `limit` at a time, results in order; the first failure rejects after all settled. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  const settled = await Promise.allSettled(
    Array.from({ length: Math.min(limit, items.length) }, () =>
      worker().catch((e) => {
        failed = true;
        throw e;
      }),
    ),
  );
  const failure = settled.find((s) => s.status === 'rejected');
  if (failure) throw failure.reason;
  return out;
}

/**
 * SPEC v2 §5 for stores with `putFile`: a regular file is hashed first, then sent once straight
 * to its content key (no staging, no server-side copy); an object already there is not sent
 * again. A directory's files are hashed, then uploaded, PARALLEL_FILES at a time.
 */
async function putHashFirst(
  store: ArtifactStore,
  model: string,
  localPath: string,
  source: Awaited<ReturnType<typeof describeSource>>,
  options: PutOptions,
): Promise<StoredArtifact> {
  const putFile = store.putFile!.bind(store);
  if (source.kind === 'file') {
    const { sha256, size } = await hashFile(localPath);
    const key = contentKey(model, sha256, source.name);
    await options.mark?.(sha256);
    const outcome = await putFile(localPath, key, { sha256, size }, options.onBytes);
    await verifyStored(store, key, size);
    return { uri: artifactUri(store.location, key), sha256, size, reused: outcome === 'reused' };
  }
  const files: ArtifactFile[] = await mapLimit(source.files, PARALLEL_FILES, async (f) => ({ path: f.path, ...(await hashFile(f.absolute)) }));
  const digest = directoryDigest(files);
  await options.mark?.(digest);
  const outcomes = await mapLimit(
    source.files.map((f, i) => ({ f, i })),
    PARALLEL_FILES,
    async ({ f, i }) => {
      const key = contentKey(model, digest, f.path);
      const outcome = await putFile(f.absolute, key, { sha256: files[i]!.sha256, size: files[i]!.size }, options.onBytes);
      await verifyStored(store, key, files[i]!.size);
      return outcome;
    },
  );
  return {
    uri: artifactUri(store.location, contentKey(model, digest, '')),
    sha256: digest,
    size: files.reduce((n, f) => n + f.size, 0),
    files,
    reused: outcomes.every((o) => o === 'reused'),
  };
}

/**
 * The same bytes registered again: found without uploading. Only a source shaped like a known
 * artifact is hashed up front (an extra read only when name and sizes already coincide, which in
 * practice means the same model file); otherwise the one-read upload path is taken unchanged.
 */
async function reuseKnown(
  store: ArtifactStore,
  model: string,
  localPath: string,
  source: Awaited<ReturnType<typeof describeSource>>,
  known: readonly Artifact[],
): Promise<StoredArtifact | undefined> {
  if (source.kind === 'file') {
    const candidates = known.filter(
      (a) => !a.files && a.size === source.size && (a.uri.endsWith(`/${encodeSegment(source.name)}`) || a.uri.endsWith(`/${source.name}`)),
    );
    if (candidates.length === 0) return undefined;
    // The newest candidate is the likely one. Its stat answers from metadata on S3; a store that
    // keeps no digest beside its objects (the file store) has it read along with the local file
    // and compared byte for byte, so the same bytes registered again are read once, not twice.
    const newest = candidates.at(-1)!;
    const newestKey = contentKey(model, newest.sha256, source.name);
    const found = await store.stat(newestKey);
    let read: { sha256: string; size: number };
    if (found && found.size === source.size && found.sha256 === undefined) {
      const compared = await hashComparing(localPath, await store.read(newestKey));
      if (compared.same && compared.sha256 === newest.sha256)
        return { uri: artifactUri(store.location, newestKey), sha256: newest.sha256, size: compared.size, reused: true };
      read = compared;
    } else {
      read = await hashFile(localPath);
    }
    const { sha256, size } = read;
    if (size !== source.size || !candidates.some((a) => a.sha256 === sha256)) return undefined;
    const key = contentKey(model, sha256, source.name);
    const held = key === newestKey && found?.sha256 !== undefined ? found.size === size && found.sha256 === sha256 : await holds(store, key, sha256, size);
    if (!held) return undefined;
    return { uri: artifactUri(store.location, key), sha256, size, reused: true };
  }
  const shape = (files: readonly { path: string; size: number }[]) =>
    files
      .map((f) => `${f.size} ${f.path}`)
      .sort()
      .join('\n');
  const local = shape(source.files);
  const candidates = known.filter((a) => a.files && shape(a.files) === local);
  if (candidates.length === 0) return undefined;
  const files: ArtifactFile[] = [];
  for (const f of source.files) files.push({ path: f.path, ...(await hashFile(f.absolute)) });
  const digest = directoryDigest(files);
  if (!candidates.some((a) => a.sha256 === digest)) return undefined;
  for (const f of files) if (!(await holds(store, contentKey(model, digest, f.path), f.sha256, f.size))) return undefined;
  return { uri: artifactUri(store.location, contentKey(model, digest, '')), sha256: digest, size: files.reduce((n, f) => n + f.size, 0), files, reused: true };
}

/** Whether `key` holds exactly these bytes: by the recorded sha256 when the store keeps one, else by reading it back. */
export async function holds(store: ArtifactStore, key: string, sha256: string, size: number): Promise<boolean> {
  const found = await store.stat(key);
  if (!found || found.size !== size) return false;
  if (found.sha256 !== undefined) return found.sha256 === sha256;
  const actual = await hashObject(store, key);
  return actual.sha256 === sha256 && actual.size === size;
}

async function verifyStored(store: ArtifactStore, key: string, size: number): Promise<void> {
  const found = await store.stat(key);
  if (!found || found.size !== size) {
    throw new ModelgateError(
      'E_ARTIFACT_VERIFY',
      `after upload, ${key} ${found ? `holds ${found.size} bytes instead of ${size}` : 'is missing'} in the store`,
      ExitCode.service,
    );
  }
}
