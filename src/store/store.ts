import type { Readable } from 'node:stream';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Registry } from '../manifest/types.js';
import { keyOfUri, parseStoreUri, type StoreLocation } from './layout.js';
import type { SmallFile, SmallFileStored } from './small-files.js';

/** What a store knows about one object without reading it. */
export interface StoredObject {
  size: number;
  /** sha256 recorded beside the object when the store keeps metadata (S3 `x-amz-meta-sha256`). */
  sha256?: string;
}

/** `created` when this call wrote the object, `reused` when identical bytes were already there. */
export type CommitOutcome = 'created' | 'reused';

/**
 * Bytes that were read once, hashed and put somewhere temporary in the store. The digest is
 * only known after the read, so the content-addressed key is chosen afterwards by `commit`.
 */
export interface StagedUpload {
  readonly sha256: string;
  readonly size: number;
  /**
   * Makes the bytes visible at `key` unless an object is already there: identical bytes are
   * reused; different bytes fail with E_ARTIFACT_CONFLICT and nothing is overwritten.
   */
  commit(key: string): Promise<CommitOutcome>;
  /** Removes the temporary copy; safe to call after commit and more than once. */
  discard(): Promise<void>;
}

export interface StageOptions {
  model: string;
  /** Name inside the artifact (a file name, or a relative path for directory artifacts). */
  path: string;
  /** Identifies one registration's staging area. */
  uploadId: string;
  onBytes?: (n: number) => void;
}

/** An artifact store: content-addressed objects under `<store>/<model>/sha256/<hex>/…`. */
export interface ArtifactStore {
  readonly location: StoreLocation;
  /** Fails early, with the E_S3_* error that says why, when the store cannot be used at all. */
  preflight(): Promise<void>;
  /** Reads a local file once, hashing it while it is written to a staging place. */
  stage(localFile: string, options: StageOptions): Promise<StagedUpload>;
  /**
   * Stores that can write a key straight from a file that may be read twice (hash first, then
   * upload): the bytes go to `key` once, no staging and no server-side copy. The second read is
   * hashed too; a file that changed in between fails with E_SOURCE_CHANGED and nothing is written.
   */
  putFile?(localFile: string, key: string, expected: { sha256: string; size: number }, onBytes?: (n: number) => void): Promise<CommitOutcome>;
  /**
   * Like `putFile` for many small files: the write may not be durable until `flush` (the file
   * store syncs its file system once instead of once per file).
   */
  putFileDeferred?(
    localFile: string,
    key: string,
    expected: { sha256: string; size: number },
    onBytes?: (n: number) => void,
    context?: { uploadId: string; model: string },
  ): Promise<CommitOutcome>;
  /**
   * Many small files (under 1 MiB each) of an indexed directory, each read once and stored under
   * its own content key `<model>/sha256/<its sha256>/<name>`; durable after `flush`. Results in
   * the files' order.
   */
  putSmallFiles?(files: readonly SmallFile[], context: { model: string; uploadId: string }, onBytes?: (n: number) => void): Promise<SmallFileStored[]>;
  /** Removes the staging data `putFileDeferred` left for `uploadId` (after success or failure). */
  discardStaging?(model: string, uploadId: string): Promise<void>;
  /** Makes every `putFileDeferred` write durable. */
  flush?(): Promise<void>;
  /**
   * Writes an empty object at `key`, replacing one there: a mark whose only content is its time
   * (a registration under way, SPEC v3 §14). Never used for content keys.
   */
  touch(key: string): Promise<void>;
  /** Removes the object at `key`; nothing happens when there is none. */
  remove(key: string): Promise<void>;
  /** Size (and recorded digest) of the object at `key`, or undefined when there is none. */
  stat(key: string): Promise<StoredObject | undefined>;
  /** Keys of every object under `prefix` (a key ending in `/`), store-relative, in no set order. */
  list(prefix: string): Promise<string[]>;
  /** The object's bytes; E_ARTIFACT_MISSING (exit 1) when absent. */
  read(key: string): Promise<Readable>;
  /** Bytes `start` to `end` (inclusive) of the object, for parallel ranged reads of a large one. */
  readRange?(key: string, start: number, end: number): Promise<Readable>;
  /** A URL anyone can GET for `seconds`; exit 2 for stores that cannot presign. */
  presignGet(key: string, seconds: number): Promise<string>;
  /**
   * A cancelled registration (SIGINT, SIGTERM): refuses new uploads, aborts the multipart
   * uploads this store started and removes the staging data of `uploadId`. Best effort, bounded.
   */
  abandon(model: string, uploadId: string): Promise<void>;
  close(): void;
}

export type StorageConfig = Registry['storage'];

/** The store a registry's `storage` settings name, chosen by the URI scheme. */
export async function openStore(storage: StorageConfig, env: NodeJS.ProcessEnv = process.env): Promise<ArtifactStore> {
  const location = parseStoreUri(storage.uri);
  if (location.scheme === 'file') {
    const { FileStore } = await import('./file-store.js');
    return new FileStore(location);
  }
  const { S3Store } = await import('./s3-store.js');
  return new S3Store(location, storage, env);
}

/** The key of an artifact URI in this store; E_FOREIGN_ARTIFACT (exit 1) when it lives elsewhere. */
export function requireKey(store: ArtifactStore, uri: string): string {
  const key = keyOfUri(store.location, uri);
  if (key === undefined) {
    throw new ModelgateError('E_FOREIGN_ARTIFACT', `artifact ${uri} is not inside the registry's store ${store.location.uri}`, ExitCode.content, { uri });
  }
  return key;
}

/** Largest presign lifetime SigV4 allows: 7 days. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/**
 * A presigned GET URL for an artifact URI (for `resolve --presign`). Directory artifacts have
 * no single object: the caller presigns each file's URI.
 */
export async function presignGet(storage: StorageConfig, uri: string, seconds: number, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_PRESIGN_SECONDS) {
    throw new ModelgateError('E_USAGE', `--presign needs whole seconds from 1 to ${MAX_PRESIGN_SECONDS} (7 days)`, ExitCode.usage);
  }
  const store = await openStore(storage, env);
  try {
    return await store.presignGet(requireKey(store, uri), seconds);
  } finally {
    store.close();
  }
}
