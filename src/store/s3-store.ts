import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ExitCode, ModelgateError } from '../errors.js';
import { redactUrl } from '../git/repo.js';
import { ioTimeoutSeconds, stallError } from '../io-timeout.js';
import { hashStream, HashingStream, readHashing } from './digest.js';
import { conflict } from './file-store.js';
import { stagingKey, type StoreLocation } from './layout.js';
import type { ArtifactStore, CommitOutcome, StagedUpload, StageOptions, StorageConfig, StoredObject } from './store.js';

/**
 * Multipart geometry: QUEUE_SIZE parts upload while the next one is read and hashed, in
 * QUEUE_SIZE + 1 buffers of PART_SIZE allocated once: memory is bounded whatever the file size.
 */
export const PART_SIZE = 16 * 1024 * 1024;
/** S3's limits: at most 10,000 parts per upload, each at most 5 GiB. */
export const MAX_PARTS = 10_000;
const MAX_PART_SIZE = 5 * 1024 ** 3;

/**
 * The part size for an object of `size` bytes: PART_SIZE, grown in whole MiB just enough that
 * the object fits in MAX_PARTS parts (any object S3 accepts, up to 48.8 TiB, fits).
 */
export function partSizeFor(size: number): number {
  const needed = Math.ceil(size / MAX_PARTS / 2 ** 20) * 2 ** 20;
  return Math.min(MAX_PART_SIZE, Math.max(PART_SIZE, needed));
}
const QUEUE_SIZE = 4;
/** Objects up to this size are copied with one CopyObject; bigger ones by ranges in parallel. */
const SINGLE_COPY = 32 * 1024 * 1024;
/** About this many ranges, COPY_QUEUE at a time: S3 copies each range independently. */
const COPY_PARTS = 16;
const COPY_QUEUE = 8;
const MIN_COPY_PART = 16 * 1024 * 1024;
const MAX_COPY_PART = 5 * 1024 ** 3;
/** Most bytes of small staged files held in memory at once (the rest wait in staging keys). */
export const MEMORY_BUDGET = 64 * 1024 * 1024;

/**
 * AWS S3 and S3-compatible stores (MinIO, Ceph, OpenStack Swift, R2).
 *
 * Why stage-then-copy: a content-addressed key needs the sha256, which is known only after the
 * last byte, but a (multipart) upload must name its key before the first. Reading the file twice
 * (hash, then upload) would break the one-read rule and let a file that changes in between be
 * stored under the wrong digest. So the single read streams through a hash into a unique staging
 * key, and S3's server-side copy — S3 has no rename — puts it under its final key once the digest
 * is known, only if that key is free (HEAD check; stores that honour `If-None-Match: *` also get
 * the conditional write, on the PUT or on the CompleteMultipartUpload of a copy by ranges). Files
 * no larger than one part skip staging: they are hashed in memory and written straight to their
 * final key. A multipart upload onto a content key is checked right before and after its
 * complete (`completeOnto`), since a store may ignore the condition there (Ceph RGW 16 does).
 */
export class S3Store implements ArtifactStore {
  readonly client: S3Client;
  private readonly endpoint: string | undefined;
  /** MODELGATE_IO_TIMEOUT: seconds a request may go without a byte moving. */
  readonly timeoutSeconds: number;
  /** Swift's s3api answers 501 to conditional writes; remembered so we ask only once. */
  private conditionalWrites = true;
  /**
   * The same for `If-None-Match: *` on CompleteMultipartUpload, which Swift does honour (and
   * Ceph RGW 16 accepts but ignores: no answer tells, hence the checks of `completeOnto`).
   */
  private conditionalCompletes = true;
  /** Bytes of staged small files held in memory until their commit or discard. */
  private held = 0;
  /** Multipart uploads in progress (key, UploadId), aborted by `abandon`. */
  private readonly open = new Map<string, string>();
  private abandoned = false;

  /** Starts a multipart upload that `abandon` can find and abort. */
  private async createUpload(Key: string, Metadata?: Record<string, string>): Promise<string> {
    if (this.abandoned) throw new ModelgateError('E_CANCELLED', 'the registration was cancelled', ExitCode.service);
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.location.bucket, Key, ...(Metadata ? { Metadata } : {}) }));
    this.open.set(UploadId!, Key);
    return UploadId!;
  }

  async abandon(model: string, uploadId: string): Promise<void> {
    this.abandoned = true;
    const Bucket = this.location.bucket;
    const aborts = [...this.open].map(([UploadId, Key]) => this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {}));
    await Promise.all(aborts);
    // Staging objects of this registration (small files spilled, completed large ones).
    const Prefix = this.key(`${model}/.uploads/${uploadId}/`);
    const listed = await this.client.send(new ListObjectsV2Command({ Bucket, Prefix })).catch(() => undefined);
    await Promise.all((listed?.Contents ?? []).map((o) => this.client.send(new DeleteObjectCommand({ Bucket, Key: o.Key! })).catch(() => {})));
    // An upload created while we listed is found by its prefix.
    const uploads = await this.client.send(new ListMultipartUploadsCommand({ Bucket, Prefix })).catch(() => undefined);
    await Promise.all(
      (uploads?.Uploads ?? []).map((u) => this.client.send(new AbortMultipartUploadCommand({ Bucket, Key: u.Key!, UploadId: u.UploadId! })).catch(() => {})),
    );
  }

  constructor(
    readonly location: Extract<StoreLocation, { scheme: 's3' }>,
    storage: StorageConfig,
    env: NodeJS.ProcessEnv,
    overrides: Partial<S3ClientConfig> = {},
  ) {
    this.endpoint = env.AWS_ENDPOINT_URL_S3 || storage.endpoint || undefined;
    this.timeoutSeconds = ioTimeoutSeconds(env);
    const idleMs = Math.round(this.timeoutSeconds * 1000);
    const config: S3ClientConfig = {
      region: storage.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: storage.forcePathStyle ?? false,
      // Many S3-compatible servers refuse aws-chunked bodies with flexible checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // socketTimeout is the bound without progress: the socket's idle timer, reset by every
      // byte either way, rejects the request (or destroys a response body mid-stream). The SDK's
      // requestTimeout, a whole-request deadline, would only log a warning without
      // throwOnRequestTimeout and would cut a slow but moving transfer: not used.
      requestHandler: { connectionTimeout: Math.min(10_000, idleMs), socketTimeout: idleMs },
      ...overrides,
    };
    if (this.endpoint) config.endpoint = this.endpoint;
    // The command's environment comes first (it is injectable); otherwise the default AWS chain
    // (environment, shared profile, web identity in GitHub Actions, instance roles).
    if (!overrides.credentials && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
      config.credentials = {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
      };
    }
    this.client = new S3Client(config);
  }

  private key(key: string): string {
    return this.location.prefix ? `${this.location.prefix}/${key}` : key;
  }

  private fail(e: unknown, action: string): ModelgateError {
    return s3Error(e, action, this.location.bucket, this.endpoint, this.timeoutSeconds);
  }

  /** Runs one S3 request, turning its failure into the typed error that names `action` (a stall: E_IO_TIMEOUT). */
  async send<T>(action: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw this.fail(e, action);
    }
  }

  async preflight(): Promise<void> {
    await this.send(`checking access to bucket ${this.location.bucket}`, () => this.client.send(new HeadBucketCommand({ Bucket: this.location.bucket })));
  }

  async stage(localFile: string, options: StageOptions): Promise<StagedUpload> {
    const expected = (await stat(localFile)).size;
    if (expected > PART_SIZE) return this.multipart(localFile, options);
    const source = createReadStream(localFile, { highWaterMark: 1 << 20 });
    const hashing = new HashingStream(options.onBytes);
    source.on('error', (e) => hashing.destroy(e));
    const piped = source.pipe(hashing);
    // Small file: one part at most, so it is held in memory and PUT straight to its final key.
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of piped) {
      chunks.push(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (bytes > PART_SIZE) throw new ModelgateError('E_SOURCE_CHANGED', `${localFile} grew while it was being read`, ExitCode.content);
    }
    const body = Buffer.concat(chunks);
    const sha256 = hashing.digest();
    // A directory's small files all wait for the directory digest: beyond the budget they wait
    // in staging instead of in memory, so a folder of many small files stays bounded too.
    if (this.held + body.length > MEMORY_BUDGET) return this.spill(body, sha256, options);
    this.held += body.length;
    let released = false;
    const release = () => {
      if (!released) this.held -= body.length;
      released = true;
    };
    const staged = this.inMemory(body, sha256);
    return { ...staged, discard: async () => release() };
  }

  async putFile(localFile: string, key: string, expected: { sha256: string; size: number }, onBytes?: (n: number) => void): Promise<CommitOutcome> {
    const existing = await this.compareExisting(key, expected.sha256, expected.size);
    if (existing) {
      onBytes?.(expected.size);
      return existing;
    }
    const changed = () =>
      new ModelgateError('E_SOURCE_CHANGED', `${localFile} changed while it was being registered (sha256 differs between reads)`, ExitCode.content);
    if (expected.size <= PART_SIZE) {
      const file = await open(localFile, 'r');
      let body: Buffer;
      try {
        body = Buffer.allocUnsafe(expected.size + 1);
        const { bytesRead } = await file.read(body, 0, body.length, 0);
        body = body.subarray(0, bytesRead);
      } finally {
        await file.close();
      }
      if (body.length !== expected.size || (await hashStream(Readable.from([body]))).sha256 !== expected.sha256) throw changed();
      onBytes?.(body.length);
      return this.inMemory(body, expected.sha256).commit(key);
    }
    const Bucket = this.location.bucket;
    const to = this.key(key);
    const name = key.replace(/^.*?\/sha256\/[0-9a-f]{64}\//, '');
    const UploadId = await this.send(`starting the upload of ${name}`, () => this.createUpload(to, { sha256: expected.sha256 }));
    let completed = false;
    const file = await open(localFile, 'r');
    try {
      const partSize = partSizeFor(expected.size);
      const buffers = Array.from({ length: QUEUE_SIZE + 1 }, () => Buffer.allocUnsafe(partSize));
      const parts: Array<{ PartNumber: number; ETag: string }> = [];
      const read = await this.send(`uploading ${name}`, () =>
        readHashing(
          file,
          buffers,
          async (chunk, offset) => {
            const PartNumber = offset / partSize + 1;
            if (PartNumber > MAX_PARTS) throw changed();
            const r = await this.client.send(new UploadPartCommand({ Bucket, Key: to, UploadId, PartNumber, Body: chunk, ContentLength: chunk.length }));
            parts.push({ PartNumber, ETag: r.ETag! });
          },
          { onBytes, inFlight: QUEUE_SIZE },
        ),
      );
      if (read.sha256 !== expected.sha256 || read.size !== expected.size) throw changed();
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      const outcome = await this.send(`completing the upload of ${name}`, () => this.completeOnto(key, UploadId, parts, expected.sha256, expected.size));
      completed = outcome === 'created';
      return outcome;
    } finally {
      this.open.delete(UploadId);
      await file.close();
      if (!completed) await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key: to, UploadId })).catch(() => {});
    }
  }

  /** A small file written to its staging key, to be copied to its content key by `commit`. */
  private async spill(body: Buffer, sha256: string, options: StageOptions): Promise<StagedUpload> {
    const staging = this.key(stagingKey(options.model, options.uploadId, options.path));
    await this.send(`uploading ${options.path}`, () =>
      this.client.send(new PutObjectCommand({ Bucket: this.location.bucket, Key: staging, Body: body, ContentLength: body.length })),
    );
    return this.stagedAt(staging, sha256, body.length, options.path);
  }

  private inMemory(bytes: Buffer, sha256: string): StagedUpload {
    return {
      sha256,
      size: bytes.length,
      commit: async (key) => {
        const existing = await this.compareExisting(key, sha256, bytes.length);
        if (existing) return existing;
        const conditional = this.conditionalWrites;
        try {
          await this.client.send(
            new PutObjectCommand({
              Bucket: this.location.bucket,
              Key: this.key(key),
              Body: bytes,
              ContentLength: bytes.length,
              Metadata: { sha256 },
              ...(conditional ? { IfNoneMatch: '*' } : {}),
            }),
          );
          return 'created';
        } catch (e) {
          const status = statusOf(e);
          // Parallel writes may all learn it at once: each retries without the condition.
          if (status === 501 && conditional) {
            this.conditionalWrites = false;
            return (await this.compareExisting(key, sha256, bytes.length)) ?? this.inMemory(bytes, sha256).commit(key);
          }
          // Someone wrote the key between our HEAD and PUT: compare, never replace.
          if (status === 412 || status === 409) {
            const after = await this.compareExisting(key, sha256, bytes.length);
            if (after) return after;
          }
          throw this.fail(e, `writing ${key}`);
        }
      },
      discard: async () => {},
    };
  }

  /**
   * The multipart upload, driven here rather than by lib-storage's `Upload`: parts are read
   * once into buffers allocated up front and reused only after their part finished, so the file
   * is read, hashed and uploaded in one overlapped pass with a fixed memory ceiling (`Upload`
   * copies each part out of its input stream and hashes nothing), and an abort follows any failure.
   */
  private async multipart(localFile: string, options: StageOptions): Promise<StagedUpload> {
    const Bucket = this.location.bucket;
    const staging = this.key(stagingKey(options.model, options.uploadId, options.path));
    const UploadId = await this.send(`starting the upload of ${options.path}`, () => this.createUpload(staging));
    const parts: Array<{ PartNumber: number; ETag: string }> = [];
    let read: { sha256: string; size: number };
    const file = await open(localFile, 'r');
    try {
      const partSize = partSizeFor((await file.stat()).size);
      const buffers = Array.from({ length: QUEUE_SIZE + 1 }, () => Buffer.allocUnsafe(partSize));
      read = await readHashing(
        file,
        buffers,
        async (chunk, offset) => {
          const PartNumber = offset / partSize + 1;
          if (PartNumber > MAX_PARTS) throw new ModelgateError('E_SOURCE_CHANGED', `${localFile} grew while it was being read`, ExitCode.content);
          const r = await this.client.send(new UploadPartCommand({ Bucket, Key: staging, UploadId, PartNumber, Body: chunk, ContentLength: chunk.length }));
          parts.push({ PartNumber, ETag: r.ETag! });
        },
        { onBytes: options.onBytes, inFlight: QUEUE_SIZE },
      );
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key: staging, UploadId, MultipartUpload: { Parts: parts } }));
      this.open.delete(UploadId);
    } catch (e) {
      this.open.delete(UploadId);
      await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key: staging, UploadId })).catch(() => {});
      await this.client.send(new DeleteObjectCommand({ Bucket, Key: staging })).catch(() => {});
      throw this.fail(e, `uploading ${options.path}`);
    } finally {
      await file.close();
    }
    return this.stagedAt(staging, read.sha256, read.size, options.path);
  }

  private stagedAt(staging: string, sha256: string, size: number, path: string): StagedUpload {
    return {
      sha256,
      size,
      commit: async (key) => {
        const existing = await this.compareExisting(key, sha256, size);
        if (existing) return existing;
        return this.send(`copying ${path} to ${key}`, () => this.copy(staging, key, size, sha256));
      },
      discard: () =>
        this.send(`removing the staging copy of ${path}`, async () => {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: staging }));
        }),
    };
  }

  /**
   * Server-side copy of the staged object to `key`, which `commit` just found free. A key taken
   * meanwhile is compared, never replaced, as far as the store lets us (see `completeOnto`).
   */
  private async copy(from: string, key: string, size: number, sha256: string): Promise<CommitOutcome> {
    const Bucket = this.location.bucket;
    const to = this.key(key);
    const CopySource = encodeURI(`${Bucket}/${from}`);
    if (size <= SINGLE_COPY) {
      // Unconditional (Swift refuses a conditional copy, RGW 16 ignores it): the window is the
      // copy itself, at most SINGLE_COPY bytes inside the server, between `commit`'s HEAD and here.
      const r = await this.client.send(new CopyObjectCommand({ Bucket, Key: to, CopySource, MetadataDirective: 'REPLACE', Metadata: { sha256 } }));
      return this.verifyWritten(key, sha256, size, r.CopyObjectResult?.ETag);
    }
    // One CopyObject is one sequential stream on the server (Swift rewrites every byte through
    // one proxy worker); ranges copied in parallel use all of its workers.
    const UploadId = await this.createUpload(to, { sha256 });
    let completed = false;
    try {
      const partSize = Math.min(MAX_COPY_PART, Math.max(MIN_COPY_PART, Math.ceil(size / COPY_PARTS / 2 ** 20) * 2 ** 20));
      const ranges: Array<[number, number]> = [];
      for (let start = 0; start < size; start += partSize) ranges.push([start, Math.min(size, start + partSize) - 1]);
      const parts: Array<{ PartNumber: number; ETag: string }> = [];
      let next = 0;
      let failed = false;
      const worker = async () => {
        while (next < ranges.length && !failed) {
          const i = next++;
          const [a, b] = ranges[i]!;
          const r = await this.client.send(
            new UploadPartCopyCommand({ Bucket, Key: to, UploadId, PartNumber: i + 1, CopySource, CopySourceRange: `bytes=${a}-${b}` }),
          );
          parts.push({ PartNumber: i + 1, ETag: r.CopyPartResult!.ETag! });
        }
      };
      // Every worker settles before the upload may be aborted or completed.
      const outcomes = await Promise.allSettled(
        Array.from({ length: COPY_QUEUE }, () =>
          worker().catch((e) => {
            failed = true;
            throw e;
          }),
        ),
      );
      const failure = outcomes.find((o) => o.status === 'rejected');
      if (failure) throw failure.reason;
      parts.sort((x, y) => x.PartNumber - y.PartNumber);
      // The copy took a while since the HEAD check of `commit`: completeOnto checks again.
      const outcome = await this.completeOnto(key, UploadId, parts, sha256, size);
      completed = outcome === 'created';
      return outcome;
    } finally {
      this.open.delete(UploadId);
      if (!completed) await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key: to, UploadId })).catch(() => {});
    }
  }

  /**
   * Completes the multipart upload `UploadId`, whose parts hold `size` bytes of digest `sha256`,
   * onto the content key `key` — never over an object with other bytes, as far as the store
   * allows. The caller aborts the upload unless this returns 'created'.
   *
   * 1. HEAD right before completing: a key taken while the parts were uploaded or copied (which
   *    can take minutes) is compared, and the upload left to be aborted.
   * 2. Complete with `If-None-Match: *`: AWS S3 and Swift's s3api refuse it (412) when the key
   *    appeared after that HEAD; a store answering 501 gets an unconditional complete after a
   *    second HEAD (`conditionalCompletes`).
   * 3. HEAD after completing: the object there must be ours (size, sha256 metadata, and the ETag
   *    the complete returned); otherwise it is compared by its bytes.
   *
   * The window left: Ceph RGW 16 (Debian 12's ceph) takes `If-None-Match` on a complete without a
   * word and replaces the object (conditional multipart completes came with ceph/ceph#64830, tested
   * by ceph/s3-tests#693, after pacific). There an object written by someone else between step 1's
   * HEAD and the server committing our complete — one round trip plus the complete itself — is
   * replaced by our bytes, and step 3 cannot tell. Those are the bytes the key names (it holds their
   * sha256), so a registry never points at wrong bytes; what can be lost is a foreign object that
   * was itself wrong for its key. Two modelgate uploaders racing for one key hold the same bytes,
   * whichever wins. A writer landing after our complete is caught by step 3.
   */
  private async completeOnto(
    key: string,
    UploadId: string,
    parts: Array<{ PartNumber: number; ETag: string }>,
    sha256: string,
    size: number,
  ): Promise<CommitOutcome> {
    const before = await this.compareExisting(key, sha256, size);
    if (before) return before;
    const complete = (conditional: boolean) =>
      this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.location.bucket,
          Key: this.key(key),
          UploadId,
          MultipartUpload: { Parts: parts },
          ...(conditional ? { IfNoneMatch: '*' } : {}),
        }),
      );
    const conditional = this.conditionalCompletes;
    let done;
    try {
      done = await complete(conditional);
    } catch (e) {
      const status = statusOf(e);
      // Taken between the HEAD and the complete: compare, never replace.
      if (status === 412 || status === 409) return this.taken(key, sha256, size);
      if (status !== 501 || !conditional) throw e;
      this.conditionalCompletes = false;
      const after = await this.compareExisting(key, sha256, size);
      if (after) return after;
      done = await complete(false);
    }
    return this.verifyWritten(key, sha256, size, done.ETag);
  }

  /** After a write refused because `key` is taken: 'reused' or a conflict. */
  private async taken(key: string, sha256: string, size: number): Promise<CommitOutcome> {
    const found = await this.compareExisting(key, sha256, size);
    if (found) return found;
    throw new ModelgateError('E_S3', `S3 refused to write ${key} as already taken, yet holds no object there`, ExitCode.service);
  }

  /**
   * After this store wrote `key`: 'created' when the object there is ours — our size and sha256
   * metadata, and the ETag the write returned, if any (RGW quotes a copy's ETag, or returns none
   * from a complete). Anything else was written after us: its bytes are hashed, so the same bytes
   * stand and other bytes are a conflict.
   */
  private async verifyWritten(key: string, sha256: string, size: number, etag: string | undefined): Promise<CommitOutcome> {
    const found = await this.head(key);
    if (!found) throw new ModelgateError('E_S3', `S3 accepted ${key} but holds no object there`, ExitCode.service);
    const bare = (t: string | undefined) => t?.replace(/"/g, '') || undefined;
    const sameEtag = !bare(etag) || !bare(found.etag) || bare(etag) === bare(found.etag);
    if (found.size === size && found.sha256 === sha256 && sameEtag) return 'created';
    if (found.size !== size || (await this.hashObject(key)) !== sha256) throw conflict(key, size, found.size);
    return 'created';
  }

  /**
   * 'reused' when `key` already holds these bytes, undefined when it is free; throws
   * E_ARTIFACT_CONFLICT when it holds other bytes. Objects written without our sha256 metadata
   * are read and hashed rather than trusted.
   */
  private async compareExisting(key: string, sha256: string, size: number): Promise<CommitOutcome | undefined> {
    const found = await this.stat(key);
    if (!found) return undefined;
    if (found.size !== size) throw conflict(key, size, found.size);
    const existing = found.sha256 ?? (await this.hashObject(key));
    if (existing !== sha256) throw conflict(key, size, found.size);
    return 'reused';
  }

  private async hashObject(key: string): Promise<string> {
    return (await hashStream(await this.read(key))).sha256;
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const full = this.key(prefix);
    const cut = full.length - prefix.length;
    let token: string | undefined;
    do {
      const r = await this.send(`listing ${prefix}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: full, ContinuationToken: token })),
      );
      for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key.slice(cut));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async touch(key: string): Promise<void> {
    await this.send(`writing ${key}`, () =>
      this.client.send(new PutObjectCommand({ Bucket: this.location.bucket, Key: this.key(key), Body: Buffer.alloc(0), ContentLength: 0 })),
    );
  }

  async remove(key: string): Promise<void> {
    await this.send(`removing ${key}`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.key(key) })));
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    const found = await this.head(key);
    return found && { size: found.size, ...(found.sha256 ? { sha256: found.sha256 } : {}) };
  }

  private async head(key: string): Promise<(StoredObject & { etag?: string }) | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(key) }));
      const sha256 = r.Metadata?.sha256;
      return { size: r.ContentLength ?? 0, ...(sha256 ? { sha256 } : {}), ...(r.ETag ? { etag: r.ETag } : {}) };
    } catch (e) {
      if (statusOf(e) === 404 && (e as Error).name !== 'NoSuchBucket') return undefined;
      throw this.fail(e, `reading ${key}`);
    }
  }

  /** Bytes `start` to `end` (inclusive) of the object at `key`: one ranged GET. */
  readRange(key: string, start: number, end: number): Promise<Readable> {
    return this.read(key, `bytes=${start}-${end}`);
  }

  async read(key: string, Range?: string): Promise<Readable> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(key), ...(Range ? { Range } : {}) }));
      // A body that stalls mid-stream fails with the same typed stall error as a request.
      const body = r.Body as Readable;
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      body.on('error', (e) => out.destroy(this.fail(e, `reading ${key}`)));
      out.on('close', () => body.destroy());
      return body.pipe(out);
    } catch (e) {
      if ((e as Error).name === 'NoSuchKey') {
        throw new ModelgateError('E_ARTIFACT_MISSING', `${this.location.uri}/${key} does not exist`, ExitCode.content);
      }
      throw this.fail(e, `reading ${key}`);
    }
  }

  async presignGet(key: string, seconds: number): Promise<string> {
    return this.send(`presigning ${key}`, () =>
      getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(key) }), { expiresIn: seconds }),
    );
  }

  close(): void {
    this.client.destroy();
  }
}

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

/**
 * Turns an SDK error into a sentence that says which outside failure it was. The SDK's own
 * message is never shown (requests carry credentials); only names, codes and HTTP statuses.
 */
function s3Error(e: unknown, action: string, bucket: string, endpoint: string | undefined, timeoutSeconds?: number): ModelgateError {
  if (e instanceof ModelgateError) return e;
  const err = e as Error & { code?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string } };
  const name = err?.name ?? 'Error';
  const status = statusOf(e);
  const where = endpoint ? redactUrl(endpoint) : 'AWS S3';
  const code = err?.code ?? err?.cause?.code;
  if (timeoutSeconds !== undefined && status === undefined && (name === 'TimeoutError' || /timed out after .* inactivity/.test(err?.message ?? ''))) {
    return stallError(`S3 at ${where}`, action, timeoutSeconds, { bucket });
  }
  if (name === 'CredentialsProviderError') {
    return new ModelgateError(
      'E_S3_CREDENTIALS',
      `no AWS credentials found while ${action} (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a web identity)`,
      ExitCode.service,
    );
  }
  if (
    ['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'AccessDenied', 'InvalidToken', 'ExpiredToken', 'InvalidSecurity'].includes(name) ||
    status === 403 ||
    status === 401
  ) {
    return new ModelgateError(
      'E_S3_CREDENTIALS',
      `S3 at ${where} refused the credentials while ${action} (${name === 'Unknown' ? `HTTP ${status}` : name}): check the access key and secret, or the bucket's permissions`,
      ExitCode.service,
      { status },
    );
  }
  if (name === 'NoSuchBucket' || (status === 404 && action.startsWith('checking access to bucket'))) {
    return new ModelgateError('E_S3_NO_BUCKET', `bucket ${bucket} does not exist at ${where}`, ExitCode.service, { bucket });
  }
  if (
    (code && NETWORK_CODES.has(code)) ||
    name === 'TimeoutError' ||
    name === 'RequestTimeout' ||
    (status === undefined && /socket|network|connect|ECONN|EPIPE|timed? ?out/i.test(err?.message ?? ''))
  ) {
    return new ModelgateError('E_S3_UNREACHABLE', `cannot reach the S3 endpoint ${where} while ${action} (${code ?? name})`, ExitCode.service);
  }
  return new ModelgateError('E_S3', `S3 at ${where} failed while ${action}: ${name}${status ? ` (HTTP ${status})` : ''}`, ExitCode.service, { status });
}
