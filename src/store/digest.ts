import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import type { ArtifactFormat } from '../manifest/types.js';
import { sortFiles } from './directory-digest.js';
import { assertRelativePath } from './layout.js';

export { directoryDigest } from './directory-digest.js';

/** A pass-through stream that hashes and counts what flows through it: the one read of the bytes. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    done(null, chunk);
  }
  /** Valid once the stream has ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** sha256 and size of a stream of bytes. */
export async function hashStream(stream: AsyncIterable<unknown>, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
    onBytes?.((chunk as Buffer).length);
  }
  return { sha256: h.digest('hex'), size };
}

/** sha256 and size of a local file, streamed. */
export function hashFile(path: string, onBytes?: (n: number) => void, sizeHint?: number): Promise<{ sha256: string; size: number }> {
  if (sizeHint !== undefined && sizeHint < 1 << 20) return hashSmallFile(path, onBytes);
  return hashStream(createReadStream(path, { highWaterMark: 1 << 20 }), onBytes);
}

/**
 * sha256 and size of a local file, and whether `other` (a stored object, streamed) holds exactly
 * its bytes: one read of each, compared as they come, so a store that keeps no digest beside its
 * objects answers "already there" at the cost of hashing the local file once.
 */
export async function hashComparing(path: string, other: AsyncIterable<Buffer>): Promise<{ sha256: string; size: number; same: boolean }> {
  const hash = createHash('sha256');
  const theirs = other[Symbol.asyncIterator]();
  let pending: Buffer = Buffer.alloc(0);
  let same = true;
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    for (let at = 0; same && at < chunk.length;) {
      if (pending.length === 0) {
        const next = await theirs.next();
        if (next.done) {
          same = false;
          break;
        }
        pending = next.value;
      }
      const n = Math.min(pending.length, chunk.length - at);
      if (!chunk.subarray(at, at + n).equals(pending.subarray(0, n))) same = false;
      at += n;
      pending = pending.subarray(n);
    }
  }
  if (same && (pending.length > 0 || !(await theirs.next()).done)) same = false;
  await theirs.return?.();
  return { sha256: hash.digest('hex'), size, same };
}

/** A small file read into one buffer of its size (no 1 MiB stream buffer per file). */
async function hashSmallFile(path: string, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  const bytes = await readFile(path);
  onBytes?.(bytes.length);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
}

/**
 * Reads `file` once from start to end into `buffers` (used in turn, never reallocated), hashing
 * each chunk on the main thread while `sink` ships the previous one: the next read is issued
 * before the current chunk is hashed, so reading, hashing and writing overlap. `sink` receives
 * every chunk with its offset; a chunk's buffer is reused only after the promise `sink` returned
 * for it settled, which needs one more buffer than sinks in flight (`inFlight`).
 */
export async function readHashing(
  file: FileHandle,
  buffers: readonly Buffer[],
  sink: (chunk: Buffer, offset: number) => Promise<unknown>,
  options: { onBytes?: (n: number) => void; inFlight?: number } = {},
): Promise<{ sha256: string; size: number }> {
  const inFlight = options.inFlight ?? 1;
  if (buffers.length < inFlight + 1) throw new Error('readHashing needs inFlight + 1 buffers');
  const hash = createHash('sha256');
  const pending: Array<Promise<unknown>> = [];
  let offset = 0;
  let next = fill(file, buffers[0]!, 0);
  try {
    for (let i = 0; ; i++) {
      const n = await next;
      if (n === 0) break;
      const chunk = buffers[i % buffers.length]!.subarray(0, n);
      // The next read reuses the buffer of chunk i + 1 - buffers.length: its sink must be done.
      while (pending.length >= inFlight) await pending.shift();
      next = n < buffers[0]!.length ? Promise.resolve(0) : fill(file, buffers[(i + 1) % buffers.length]!, offset + n);
      const shipped = sink(chunk, offset);
      shipped.catch(() => {}); // handled where it is awaited, in order; never an unhandled rejection
      pending.push(shipped);
      hash.update(chunk);
      offset += n;
      options.onBytes?.(n);
    }
    for (const p of pending.splice(0)) await p;
  } catch (e) {
    await Promise.allSettled([next, ...pending]);
    throw e;
  }
  return { sha256: hash.digest('hex'), size: offset };
}

/** Reads into `buffer` from `position` until it is full or the file ends; the bytes read. */
async function fill(file: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let n = 0;
  while (n < buffer.length) {
    const { bytesRead } = await file.read(buffer, n, buffer.length - n, position + n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}

export interface LocalFile {
  /** Relative path with `/`, as recorded in `artifact.files`. */
  path: string;
  absolute: string;
  size: number;
}

/**
 * The regular files of a directory artifact, sorted like `directoryDigest`. Symbolic links and
 * special files are refused: an artifact must be the bytes it shows, not a pointer elsewhere.
 */
export async function walkDirectory(root: string): Promise<LocalFile[]> {
  const found: Array<{ path: string; absolute: string }> = [];
  async function visit(dir: string, rel: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) await visit(abs, relPath);
      else if (entry.isFile()) found.push({ path: assertRelativePath(relPath), absolute: abs });
      else throw usageError(`${abs}: only regular files and folders can be registered (symbolic link or special file)`);
    }
  }
  await visit(root, '');
  // The sizes, LSTATS_AT_ONCE at a time: one after the other, a folder of 100,000 files waits
  // on 100,000 round trips through the thread pool.
  const out = new Array<LocalFile>(found.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < found.length; i = next++) out[i] = { ...found[i]!, size: (await lstat(found[i]!.absolute)).size };
  };
  await Promise.all(Array.from({ length: Math.min(LSTATS_AT_ONCE, found.length) }, worker));
  return sortFiles(out);
}

const LSTATS_AT_ONCE = 32;

/** Format from the artifact's file names (SPEC §2); `--format` overrides it. */
export function detectFormat(paths: readonly string[], isDirectory: boolean): ArtifactFormat {
  const names = paths.map((p) => p.toLowerCase());
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  if (isDirectory) {
    if (names.some((p) => base(p) === 'mlmodel')) return 'mlflow';
    if (names.some((p) => base(p) === 'saved_model.pb' || base(p) === 'saved_model.pbtxt')) return 'savedmodel';
  }
  const has = (...exts: string[]) => names.some((p) => exts.some((e) => p.endsWith(e)));
  if (has('.safetensors')) return 'safetensors';
  if (has('.onnx')) return 'onnx';
  if (has('.joblib')) return 'joblib';
  if (has('.pkl', '.pickle')) return 'pickle';
  if (has('.pt', '.pth')) return 'pt';
  return 'other';
}

/** A digest mismatch found while reading bytes back (pull, verify --full). */
export function integrityError(what: string, expected: string, actual: string): ModelgateError {
  return new ModelgateError('E_INTEGRITY', `${what}: sha256 is ${actual}, the manifest says ${expected}`, ExitCode.content, { expected, actual });
}
