import { createReadStream } from 'node:fs';
import { link, lstat, mkdir, open, readdir, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { ExitCode, ModelgateError } from '../errors.js';
import { hashFile, readHashing } from './digest.js';
import { stagingKey, type StoreLocation } from './layout.js';
import type { ArtifactStore, CommitOutcome, StagedUpload, StageOptions, StoredObject } from './store.js';

/**
 * The embedded `file://` store, for one machine. Objects are written to a staging file in the
 * store (same file system, so `link` works), then hard-linked to their content-addressed path:
 * `link` fails with EEXIST instead of replacing, which is the never-overwrite rule for free.
 */
export class FileStore implements ArtifactStore {
  constructor(readonly location: Extract<StoreLocation, { scheme: 'file' }>) {}

  private file(key: string): string {
    return join(this.location.root, ...key.split('/'));
  }

  async preflight(): Promise<void> {
    try {
      await mkdir(this.location.root, { recursive: true });
    } catch (e) {
      throw new ModelgateError(
        'E_STORE_UNAVAILABLE',
        `cannot create the file store ${this.location.root}: ${(e as NodeJS.ErrnoException).code}`,
        ExitCode.service,
      );
    }
  }

  async abandon(model: string, uploadId: string): Promise<void> {
    this.abandoned = true;
    await rm(join(this.location.root, model, '.uploads', uploadId), { recursive: true, force: true });
  }

  private abandoned = false;

  async stage(localFile: string, options: StageOptions): Promise<StagedUpload> {
    if (this.abandoned) throw new ModelgateError('E_CANCELLED', 'the registration was cancelled', ExitCode.service);
    const staging = this.file(stagingKey(options.model, options.uploadId, options.path));
    await mkdir(dirname(staging), { recursive: true });
    let read: { sha256: string; size: number };
    try {
      read = await copyHashing(localFile, staging, options.onBytes);
    } catch (e) {
      await rm(staging, { force: true });
      throw new ModelgateError(
        'E_STORE_WRITE',
        `writing ${options.path} to the file store failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        ExitCode.service,
      );
    }
    const { sha256, size } = read;
    const root = this.location.root;
    const uploadDir = join(root, options.model, '.uploads', options.uploadId);
    return {
      sha256,
      size,
      commit: async (key: string): Promise<CommitOutcome> => {
        const target = this.file(key);
        const created = await mkdir(dirname(target), { recursive: true });
        try {
          await link(staging, target);
          // The new name, and any folder made for it, must survive a crash like the bytes.
          await syncDirectories(created ? dirname(created) : dirname(target), dirname(target));
          return 'created';
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EEXIST')
            throw new ModelgateError('E_STORE_WRITE', `storing ${key} in the file store failed: ${code ?? (e as Error).name}`, ExitCode.service);
        }
        const existing = await hashFile(target);
        if (existing.sha256 === sha256 && existing.size === size) return 'reused';
        throw conflict(key, size, existing.size);
      },
      discard: async () => {
        await unlink(staging).catch(() => {});
        await rm(uploadDir, { recursive: true, force: true }).catch(() => {});
      },
    };
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const s = await stat(this.file(key));
      return s.isFile() ? { size: s.size } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const dir = this.file(prefix.replace(/\/$/, ''));
    try {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries.filter((e) => !e.isDirectory()).map((e) => `${prefix}${relative(dir, join(e.parentPath, e.name)).split(sep).join('/')}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw e;
    }
  }

  async read(key: string): Promise<Readable> {
    const path = this.file(key);
    try {
      await lstat(path);
    } catch {
      throw new ModelgateError('E_ARTIFACT_MISSING', `${this.location.uri}/${key} does not exist`, ExitCode.content);
    }
    return createReadStream(path, { highWaterMark: 4 << 20 });
  }

  async presignGet(): Promise<string> {
    throw new ModelgateError(
      'E_PRESIGN_UNSUPPORTED',
      `presigned URLs need an S3 store; this registry stores artifacts at ${this.location.uri}`,
      ExitCode.usage,
    );
  }

  close(): void {}
}

/** Chunk size of the one read: large enough that per-chunk costs vanish, small enough for memory. */
const CHUNK = 8 << 20;

/**
 * Copies `source` to a new file `target` (never replacing one), hashing on the main thread while
 * the previous chunk is written, and makes the copy durable (fsync) and read-only. The disk
 * writes back dirty pages in the background as they accumulate, so the final fsync has little
 * left to do when the disk keeps up with the read.
 */
async function copyHashing(source: string, target: string, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  const input = await open(source, 'r');
  let output: FileHandle | undefined;
  try {
    output = await open(target, 'wx', 0o644);
    const out = output;
    const read = await readHashing(
      input,
      [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)],
      (chunk, offset) => writeAll(out, chunk, offset),
      { onBytes, inFlight: 2 },
    );
    // The manifest will promise these bytes: they must survive a crash before it is committed.
    await out.sync();
    await out.chmod(0o444);
    return read;
  } finally {
    await output?.close();
    await input.close();
  }
}

async function writeAll(file: FileHandle, chunk: Buffer, position: number): Promise<void> {
  for (let done = 0; done < chunk.length;) {
    const { bytesWritten } = await file.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/** fsync of every folder from `top` down to `bottom` (their entries for new names). */
async function syncDirectories(top: string, bottom: string): Promise<void> {
  const dirs = [top];
  for (const part of relative(top, bottom).split('/').filter(Boolean)) dirs.push(join(dirs.at(-1)!, part));
  for (const dir of dirs) {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

export function conflict(key: string, size: number, existingSize: number | undefined): ModelgateError {
  return new ModelgateError(
    'E_ARTIFACT_CONFLICT',
    `${key} already holds different bytes (${existingSize ?? '?'} bytes there, ${size} bytes here); nothing was overwritten`,
    ExitCode.content,
    { key },
  );
}
