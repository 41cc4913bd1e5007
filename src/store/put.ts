import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import type { Artifact, ArtifactFile } from '../manifest/types.js';
import { directoryDigest, hashFile, walkDirectory, type LocalFile } from './digest.js';
import { hashObject } from './fetch.js';
import { artifactUri, assertArtifactName, contentKey, encodeSegment } from './layout.js';
import type { ArtifactStore, StagedUpload } from './store.js';

/** An artifact after upload: what the manifest's `artifact` section records. */
export interface StoredArtifact {
  uri: string;
  sha256: string;
  size: number;
  files?: ArtifactFile[];
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
  const reused = await reuseKnown(store, model, localPath, source, options.known ?? []);
  if (reused) {
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
    const outcome = await putFile(localPath, key, { sha256, size }, options.onBytes);
    await verifyStored(store, key, size);
    return { uri: artifactUri(store.location, key), sha256, size, reused: outcome === 'reused' };
  }
  const files: ArtifactFile[] = await mapLimit(source.files, PARALLEL_FILES, async (f) => ({ path: f.path, ...(await hashFile(f.absolute)) }));
  const digest = directoryDigest(files);
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
    const { sha256, size } = await hashFile(localPath);
    if (size !== source.size || !candidates.some((a) => a.sha256 === sha256)) return undefined;
    const key = contentKey(model, sha256, source.name);
    if (!(await holds(store, key, sha256, size))) return undefined;
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
async function holds(store: ArtifactStore, key: string, sha256: string, size: number): Promise<boolean> {
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
