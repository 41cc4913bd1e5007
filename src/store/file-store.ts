import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { constants, createReadStream, type BigIntStats } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { ExitCode, ModelgateError } from '../errors.js';
import { hashFile, readHashing } from './digest.js';
import { contentKey, SHA256_HEX, stagingKey, type StoreLocation } from './layout.js';
import { putSmallFiles, type SmallFile, type SmallFileStored } from './small-files.js';
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
      read = (await copyInKernel(localFile, staging, options.onBytes)) ?? (await copyHashing(localFile, staging, options.onBytes));
    } catch (e) {
      await rm(staging, { force: true });
      if (e instanceof ModelgateError) throw e;
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
          // The staging name goes before the seal: unlinking it changes the object's ctime.
          await unlink(staging);
          // The new name, and any folder made for it, must survive a crash like the bytes.
          await syncDirectories(created ? dirname(created) : dirname(target), dirname(target));
          await this.seal(key, sha256);
          return 'created';
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EEXIST')
            throw new ModelgateError('E_STORE_WRITE', `storing ${key} in the file store failed: ${code ?? (e as Error).name}`, ExitCode.service);
        }
        const existing = await hashFile(target);
        if (existing.sha256 !== sha256 || existing.size !== size) throw conflict(key, size, existing.size);
        await this.seal(key, sha256);
        return 'reused';
      },
      discard: async () => {
        await unlink(staging).catch(() => {});
        await rm(uploadDir, { recursive: true, force: true }).catch(() => {});
      },
    };
  }

  /**
   * For the large files of an indexed directory (SPEC v2 §5): `localFile`, whose digest is known,
   * stored at `key` unless the key holds those bytes already, without an fsync per file; the
   * caller makes them durable with one `flush` before anything names them.
   *
   * The key's folder `<model>/sha256/<hex>/` is created without `recursive`: when it is new, no
   * object of that digest exists and nothing needs comparing. The bytes go to a staging file of
   * the registration and are renamed into the fresh folder; when the folder existed, the key is
   * compared (by reading it: the file store keeps no metadata) or linked, never replaced.
   */
  async putFileDeferred(
    localFile: string,
    key: string,
    expected: { sha256: string; size: number },
    onBytes?: (n: number) => void,
    context: { uploadId: string; model: string } = { uploadId: 'deferred', model: key.slice(0, key.indexOf('/')) },
  ): Promise<CommitOutcome> {
    if (this.abandoned) throw new ModelgateError('E_CANCELLED', 'the registration was cancelled', ExitCode.service);
    const target = this.file(key);
    const compare = async (): Promise<CommitOutcome> => {
      const existing = await hashFile(target, undefined, expected.size);
      if (existing.sha256 === expected.sha256 && existing.size === expected.size) return 'reused';
      throw conflict(key, expected.size, existing.size);
    };
    const folder = dirname(target);
    let fresh: boolean;
    try {
      await mkdir(folder);
      fresh = true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await mkdir(folder, { recursive: true });
        fresh = true;
      } else if (code === 'EEXIST') fresh = false;
      else throw new ModelgateError('E_STORE_WRITE', `storing ${key} in the file store failed: ${code}`, ExitCode.service);
    }
    if (!fresh && (await this.stat(key))) {
      onBytes?.(expected.size);
      return compare();
    }
    const stagingDir = join(this.location.root, context.model, '.uploads', context.uploadId);
    if (!this.stagingMade.has(stagingDir)) {
      await mkdir(stagingDir, { recursive: true });
      this.stagingMade.add(stagingDir);
    }
    const staging = join(stagingDir, `${++this.staged}.partial`);
    let renamed = false;
    try {
      const read = await copyHashing(localFile, staging, onBytes, { sync: false });
      if (read.sha256 !== expected.sha256 || read.size !== expected.size) {
        throw new ModelgateError('E_SOURCE_CHANGED', `${localFile} changed while it was being registered (sha256 differs between reads)`, ExitCode.content);
      }
      if (fresh) {
        // The folder was made by this call: the name in it is free (another writer of the same
        // digest would have found the folder and linked, never renamed).
        await rename(staging, target);
        renamed = true;
        return 'created';
      }
      try {
        await link(staging, target);
        return 'created';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        return compare();
      }
    } catch (e) {
      if (e instanceof ModelgateError) throw e;
      throw new ModelgateError(
        'E_STORE_WRITE',
        `storing ${key} in the file store failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        ExitCode.service,
      );
    } finally {
      if (!renamed) await unlink(staging).catch(() => {});
    }
  }

  /**
   * Many small files of an indexed directory at once (see `putSmallFiles`): each read once,
   * hashed and stored under `<model>/sha256/<its sha256>/<name>`, without an fsync per file;
   * the caller makes them durable with one `flush` before anything names them. Staging files
   * go to the registration's staging folder, which `discardStaging` removes.
   */
  async putSmallFiles(files: readonly SmallFile[], context: { model: string; uploadId: string }, onBytes?: (n: number) => void): Promise<SmallFileStored[]> {
    if (this.abandoned) throw new ModelgateError('E_CANCELLED', 'the registration was cancelled', ExitCode.service);
    const staging = join(this.location.root, context.model, '.uploads', context.uploadId);
    await mkdir(staging, { recursive: true });
    this.stagingMade.add(staging);
    return putSmallFiles(
      files,
      { root: this.location.root, model: context.model, staging },
      {
        ...(onBytes ? { onBytes } : {}),
        cancelled: () => this.abandoned,
        conflict: (sha256, name, size, existing) => conflict(contentKey(context.model, sha256, name), size, existing),
      },
    );
  }

  /** Removes the staging folder `putFileDeferred` used for `uploadId`. */
  async discardStaging(model: string, uploadId: string): Promise<void> {
    const dir = join(this.location.root, model, '.uploads', uploadId);
    this.stagingMade.delete(dir);
    await rm(dir, { recursive: true, force: true });
  }

  private readonly stagingMade = new Set<string>();
  private staged = 0;

  /** Makes everything written to the store durable: one syncfs(2) of its file system (`sync -f`). */
  async flush(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      execFile('sync', ['-f', this.location.root], (e) =>
        e ? reject(new ModelgateError('E_STORE_WRITE', `syncing the file store ${this.location.root} failed: ${e.message}`, ExitCode.service)) : resolve(),
      ),
    );
  }

  async touch(key: string): Promise<void> {
    const path = this.file(key);
    // A concurrent gc removes a mark's folder once it is empty (remove below): one that goes
    // between our mkdir and our write is made again. Once the mark is in it, rmdir refuses it.
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, '');
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && attempt < 5) continue;
        throw new ModelgateError('E_STORE_WRITE', `writing ${key} to the file store failed: ${code}`, ExitCode.service);
      }
    }
  }

  async remove(key: string): Promise<void> {
    const path = this.file(key);
    await rm(path, { force: true });
    await rm(this.sealFile(key), { force: true });
    // The folder a mark was alone in goes with it (rmdir refuses a folder that is not empty).
    await rmdir(dirname(path)).catch(() => {});
  }

  /**
   * Size of the object at `key`, and its sha256 when its seal proves it: the object's signature
   * (device, inode, size, modification and change times, to the nanosecond) is still the one
   * recorded when its bytes were hashed. Writing to the object, replacing it or changing its
   * mode moves its change time, which no user can set back: then no digest, and callers compare.
   */
  async stat(key: string): Promise<StoredObject | undefined> {
    let s: BigIntStats;
    try {
      s = await stat(this.file(key), { bigint: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
    if (!s.isFile()) return undefined;
    const seal = await readFile(this.sealFile(key), 'utf8').catch(() => '');
    const [sha256, signature] = seal.split('\n');
    return { size: Number(s.size), ...(signature === objectSignature(s) && sha256 && SHA256_HEX.test(sha256) ? { sha256 } : {}) };
  }

  /**
   * Records that the object at `key` holds bytes of this sha256, hashed by this store as they were
   * written or compared: `.modelgate/seals/<key>` holds the digest and the object's signature.
   * A cache: written whole under a temporary name and renamed, lost or stale without harm.
   */
  private async seal(key: string, sha256: string): Promise<void> {
    const file = this.sealFile(key);
    const temp = `${file}.${randomUUID()}.partial`;
    try {
      const s = await stat(this.file(key), { bigint: true });
      await mkdir(dirname(file), { recursive: true });
      await writeFile(temp, `${sha256}\n${objectSignature(s)}\n`, { flag: 'wx' });
      await rename(temp, file);
    } catch {
      await unlink(temp).catch(() => {});
    }
  }

  private sealFile(key: string): string {
    return join(this.location.root, ...SEALS.split('/'), ...key.split('/'));
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
    let size: number;
    try {
      size = (await lstat(path)).size;
    } catch {
      throw new ModelgateError('E_ARTIFACT_MISSING', `${this.location.uri}/${key} does not exist`, ExitCode.content);
    }
    // A buffer of the object's size for small ones: 4 MiB per 10 KB file is most of the cost.
    return createReadStream(path, { highWaterMark: Math.max(64 << 10, Math.min(1 << 20, size)) });
  }

  /** Bytes `start` to `end` (inclusive) of the object at `key`. */
  async readRange(key: string, start: number, end: number): Promise<Readable> {
    const path = this.file(key);
    try {
      await lstat(path);
    } catch {
      throw new ModelgateError('E_ARTIFACT_MISSING', `${this.location.uri}/${key} does not exist`, ExitCode.content);
    }
    return createReadStream(path, { start, end, highWaterMark: 4 << 20 });
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

/** Files from this size on are copied by the kernel while they are hashed (`copyInKernel`). */
const KERNEL_COPY = 16 << 20;

/** A source changed less than this long ago may change again without its times moving (git's racy-clean rule). */
const RACY_MS = 2000n;

/**
 * Copies `source` to a new file `target` with copy_file_range (a reflink where the file system
 * shares blocks), the kernel moving the bytes while this thread hashes a second read of the
 * source: the copy costs no user-space write and runs beside the hash. The bytes hashed are the
 * bytes copied when the source did not change meanwhile, which its signature (device, inode,
 * size, modification and change times, to the nanosecond) before and after both proves, as
 * long as its times were not racily recent (a write in the same clock tick could leave them
 * unchanged): then undefined, and the caller copies with one read. A source whose signature
 * moved fails with E_SOURCE_CHANGED. The copy is made durable (fsync) and read-only.
 */
async function copyInKernel(source: string, target: string, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number } | undefined> {
  const before = await stat(source, { bigint: true });
  const now = BigInt(Date.now());
  if (!before.isFile() || before.size < KERNEL_COPY || now - before.mtimeMs < RACY_MS || now - before.ctimeMs < RACY_MS) return undefined;
  const input = await open(source, 'r');
  let read: { sha256: string; size: number };
  try {
    // Two buffers used in turn: memory stays flat, whatever the file's size.
    [, read] = await Promise.all([
      copyFile(source, target, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE),
      readHashing(input, [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)], async () => {}, { ...(onBytes ? { onBytes } : {}) }),
    ]);
  } finally {
    await input.close();
  }
  const after = await stat(source, { bigint: true });
  // Read-only is enough for fsync and fchmod (and the copy has the source's mode, maybe 0444).
  const out = await open(target, 'r');
  try {
    if (objectSignature(before) !== objectSignature(after) || BigInt(read.size) !== after.size || (await out.stat()).size !== read.size) {
      throw new ModelgateError('E_SOURCE_CHANGED', `${source} changed while it was being registered`, ExitCode.content);
    }
    // The manifest will promise these bytes: they must survive a crash before it is committed.
    await out.sync();
    await out.chmod(0o444);
  } finally {
    await out.close();
  }
  return read;
}

/** Chunk size of the one read: large enough that per-chunk costs vanish, small enough for memory. */
const CHUNK = 8 << 20;

/** Files below this size are read into one buffer of their own size. */
const SMALL_FILE = 1 << 20;

/**
 * Copies `source` to a new file `target` (never replacing one), hashing on the main thread while
 * the previous chunk is written, and makes the copy durable (fsync) and read-only. The disk
 * writes back dirty pages in the background as they accumulate, so the final fsync has little
 * left to do when the disk keeps up with the read.
 */
async function copyHashing(
  source: string,
  target: string,
  onBytes?: (n: number) => void,
  options: { sync?: boolean } = {},
): Promise<{ sha256: string; size: number }> {
  const input = await open(source, 'r');
  let output: FileHandle | undefined;
  try {
    output = await open(target, 'wx', 0o644);
    const small = await input.stat();
    if (small.size < SMALL_FILE) {
      // Small files (most of a 100,000-file directory): one buffer of their size, not three chunks.
      const bytes = await input.readFile();
      if (bytes.length < SMALL_FILE) {
        await writeAll(output, bytes, 0);
        onBytes?.(bytes.length);
        if (options.sync !== false) await output.sync();
        await output.chmod(0o444);
        return { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
      }
      await output.truncate(0);
    }
    const out = output;
    const read = await readHashing(
      input,
      [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)],
      (chunk, offset) => writeAll(out, chunk, offset),
      { onBytes, inFlight: 2 },
    );
    // The manifest will promise these bytes: they must survive a crash before it is committed.
    if (options.sync !== false) await out.sync();
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

/** Where the file store keeps its seals (`FileStore.stat`). */
const SEALS = '.modelgate/seals';

/** What changes whenever a file's bytes, name or mode do. */
const objectSignature = (s: BigIntStats) => `${s.dev} ${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}`;

export function conflict(key: string, size: number, existingSize: number | undefined): ModelgateError {
  return new ModelgateError(
    'E_ARTIFACT_CONFLICT',
    `${key} already holds different bytes (${existingSize ?? '?'} bytes there, ${size} bytes here); nothing was overwritten`,
    ExitCode.content,
    { key },
  );
}
