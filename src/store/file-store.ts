import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, link, lstat, mkdir, open, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExitCode, ModelgateError } from '../errors.js';
import { HashingStream, hashFile } from './digest.js';
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
      throw new ModelgateError('E_STORE_UNAVAILABLE', `cannot create the file store ${this.location.root}: ${(e as NodeJS.ErrnoException).code}`, ExitCode.service);
    }
  }

  async stage(localFile: string, options: StageOptions): Promise<StagedUpload> {
    const staging = this.file(stagingKey(options.model, options.uploadId, options.path));
    await mkdir(dirname(staging), { recursive: true });
    const hashing = new HashingStream(options.onBytes);
    try {
      await pipeline(createReadStream(localFile, { highWaterMark: 4 << 20 }), hashing, createWriteStream(staging, { flags: 'wx', highWaterMark: 4 << 20 }));
      // The manifest will promise these bytes: they must survive a crash before it is committed.
      const fh = await open(staging, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await chmod(staging, 0o444);
    } catch (e) {
      await rm(staging, { force: true });
      throw new ModelgateError('E_STORE_WRITE', `writing ${options.path} to the file store failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.service);
    }
    const sha256 = hashing.digest();
    const size = hashing.bytes;
    const root = this.location.root;
    const uploadDir = join(root, options.model, '.uploads', options.uploadId);
    return {
      sha256,
      size,
      commit: async (key: string): Promise<CommitOutcome> => {
        const target = this.file(key);
        await mkdir(dirname(target), { recursive: true });
        try {
          await link(staging, target);
          return 'created';
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
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
    throw new ModelgateError('E_PRESIGN_UNSUPPORTED', `presigned URLs need an S3 store; this registry stores artifacts at ${this.location.uri}`, ExitCode.usage);
  }

  close(): void {}
}

export function conflict(key: string, size: number, existingSize: number | undefined): ModelgateError {
  return new ModelgateError(
    'E_ARTIFACT_CONFLICT',
    `${key} already holds different bytes (${existingSize ?? '?'} bytes there, ${size} bytes here); nothing was overwritten`,
    ExitCode.content,
    { key },
  );
}
