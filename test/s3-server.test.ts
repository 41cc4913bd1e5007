// Proves that the loopback S3 server of scripts/s3-server.sh (OpenStack Swift
// 2.30 from Debian 12 + s3api + tempauth) behaves the way modelgate's artifact
// store needs, and pins down its error names and quirks.
// Run after: bash scripts/s3-server.sh install && bash scripts/s3-server.sh start
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createTestBucket, s3Config, s3TestClient } from './helpers/s3.js';

const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function readAll(s3: S3Client, Bucket: string, Key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

interface Failure {
  name: string;
  status: number | undefined;
  message: string;
}

async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    const err = e as S3ServiceException;
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error('expected the request to fail, it succeeded');
}

function clientWith(accessKeyId: string, secretAccessKey: string): S3Client {
  const c = s3Config();
  return new S3Client({
    endpoint: c.endpoint,
    region: c.region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

describe('S3 server (Swift s3api) on loopback', () => {
  let s3: S3Client;
  let bucket: string;

  beforeAll(async () => {
    s3 = s3TestClient({ maxAttempts: 1 });
    try {
      bucket = await createTestBucket('s3-server', s3);
    } catch (e) {
      throw new Error(`S3 server not reachable at ${s3Config().endpoint}: run 'bash scripts/s3-server.sh start' (${String(e)})`, { cause: e });
    }
  });
  afterAll(() => s3?.destroy());

  it('PutObject + GetObject round trip keeps the bytes (sha256)', async () => {
    const body = randomBytes(MiB + 17);
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'small/blob.bin', Body: body }));
    // Single-part ETag is the plain quoted MD5 of the bytes.
    expect(put.ETag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    const back = await readAll(s3, bucket, 'small/blob.bin');
    expect(back.length).toBe(body.length);
    expect(sha256(back)).toBe(sha256(body));
  });

  it('multipart Upload of ~20 MiB (5 MiB parts, queueSize 4) reads back byte-exact', async () => {
    const body = randomBytes(20 * MiB + 12345); // 5 parts, the last one short
    const up = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: 'big/model.bin', Body: body },
      partSize: 5 * MiB,
      queueSize: 4,
      leavePartsOnError: false,
    });
    const res = await up.done();
    // Multipart ETag: "<md5 of the part md5s>-<part count>", as on AWS.
    expect(res.ETag).toMatch(/^"[0-9a-f]{32}-5"$/);
    const back = await readAll(s3, bucket, 'big/model.bin');
    expect(back.length).toBe(body.length);
    expect(sha256(back)).toBe(sha256(body));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/model.bin' }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.ETag).toBe(res.ETag);
  }, 360_000);

  it('HeadObject reports the size', async () => {
    const body = randomBytes(4321);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'head.bin', Body: body }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'head.bin' }));
    expect(head.ContentLength).toBe(4321);
  });

  it('a wrong secret key or an unknown access key fails with SignatureDoesNotMatch (403)', async () => {
    const c = s3Config();
    const wrongSecret = clientWith(c.accessKeyId, 'wrong-secret');
    const unknownKey = clientWith('nobody:nobody', 'whatever');
    try {
      const put = await failure(wrongSecret.send(new PutObjectCommand({ Bucket: bucket, Key: 'x', Body: 'x' })));
      expect(put).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
      const get = await failure(wrongSecret.send(new GetObjectCommand({ Bucket: bucket, Key: 'head.bin' })));
      expect(get).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
      // HEAD responses have no body, so the SDK cannot read the S3 code: only 403.
      const head = await failure(wrongSecret.send(new HeadObjectCommand({ Bucket: bucket, Key: 'head.bin' })));
      expect(head.status).toBe(403);
      // Swift's tempauth does not tell an unknown key from a wrong secret:
      // no InvalidAccessKeyId, it is SignatureDoesNotMatch as well.
      const unknown = await failure(unknownKey.send(new PutObjectCommand({ Bucket: bucket, Key: 'x', Body: 'x' })));
      expect(unknown).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
    } finally {
      wrongSecret.destroy();
      unknownKey.destroy();
    }
  });

  it('a missing bucket is NoSuchBucket (404); a missing key NoSuchKey (GET) / NotFound (HEAD)', async () => {
    const missing = `no-such-bucket-${Date.now().toString(36)}`;
    expect(await failure(s3.send(new PutObjectCommand({ Bucket: missing, Key: 'x', Body: 'x' })))).toMatchObject({
      name: 'NoSuchBucket',
      status: 404,
    });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: missing, Key: 'x' })))).toMatchObject({
      name: 'NoSuchBucket',
      status: 404,
    });
    expect(await failure(s3.send(new ListObjectsV2Command({ Bucket: missing })))).toMatchObject({
      name: 'NoSuchBucket',
      status: 404,
    });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'nope' })))).toMatchObject({
      name: 'NoSuchKey',
      status: 404,
    });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nope' })))).toMatchObject({
      name: 'NotFound',
      status: 404,
    });
  });

  it('conditional PutObject (IfNoneMatch "*") is REJECTED with 501 NotImplemented, new key or not', async () => {
    // Swift 2.30's s3api refuses every conditional PUT (If-Match, If-None-Match,
    // If-(Un)Modified-Since) with 501 NotImplemented "Conditional object PUTs are
    // not supported." — it is neither honoured (412) nor silently ignored. So a
    // "never overwrite" check must not rely on PutObject+IfNoneMatch here: use
    // HeadObject first, or CompleteMultipartUpload+IfNoneMatch (next test).
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cond/existing', Body: 'one' }));
    const onExisting = await failure(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cond/existing', Body: 'two', IfNoneMatch: '*' })));
    expect(onExisting).toMatchObject({ name: 'NotImplemented', status: 501 });
    expect((await readAll(s3, bucket, 'cond/existing')).toString()).toBe('one');

    const onNew = await failure(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cond/new', Body: 'new', IfNoneMatch: '*' })));
    expect(onNew).toMatchObject({ name: 'NotImplemented', status: 501 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cond/new' })))).toMatchObject({
      status: 404,
    });
  });

  it('CompleteMultipartUpload with IfNoneMatch "*" IS honoured: 412 on an existing key (code InvalidRequest)', async () => {
    const complete = async (Key: string) => {
      const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
      const part = await s3.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId: mp.UploadId, PartNumber: 1, Body: randomBytes(100) }));
      const done = s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key,
          UploadId: mp.UploadId,
          IfNoneMatch: '*',
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
        }),
      );
      return { uploadId: mp.UploadId!, done };
    };
    const first = await complete('cond/mpu');
    await first.done; // fresh key: succeeds
    const before = sha256(await readAll(s3, bucket, 'cond/mpu'));

    const second = await complete('cond/mpu');
    // Swift's object server answers the manifest PUT with 412; s3api reports it
    // as status 412 but with the code "InvalidRequest", not "PreconditionFailed".
    expect(await failure(second.done)).toMatchObject({ name: 'InvalidRequest', status: 412 });
    expect(sha256(await readAll(s3, bucket, 'cond/mpu'))).toBe(before);
    // The refused upload stays open until aborted.
    const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'cond/mpu' }));
    expect(open.Uploads?.map((u) => u.UploadId)).toEqual([second.uploadId]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'cond/mpu', UploadId: second.uploadId }));
  });

  it('AbortMultipartUpload leaves no object and no listed upload', async () => {
    const Key = 'aborted/model.bin';
    const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId: mp.UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }));
    const during = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'aborted/' }));
    expect(during.Uploads?.map((u) => u.Key)).toEqual([Key]);

    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId: mp.UploadId }));
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'aborted/' }));
    expect(after.Uploads ?? []).toEqual([]);
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: bucket, Key })))).toMatchObject({ status: 404 });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'aborted/' }));
    expect(listed.KeyCount).toBe(0);
  });

  it('parts below 5 MiB (other than the last) fail at completion with EntityTooSmall (400)', async () => {
    const Key = 'tiny/parts.bin';
    const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
    const parts = [];
    for (const PartNumber of [1, 2]) {
      const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId: mp.UploadId, PartNumber, Body: randomBytes(1000) }));
      parts.push({ PartNumber, ETag: r.ETag });
    }
    const err = await failure(s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key, UploadId: mp.UploadId, MultipartUpload: { Parts: parts } })));
    expect(err).toMatchObject({ name: 'EntityTooSmall', status: 400 });
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId: mp.UploadId }));
  });

  it('quirk: DeleteObjects (multi-delete) needs Content-MD5, which this SDK no longer sends', async () => {
    // The SDK sends an x-amz-checksum-* header instead of Content-MD5;
    // Swift 2.30 rejects that with 400 InvalidRequest. Use DeleteObject per key.
    const err = await failure(s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: 'head.bin' }] } })));
    expect(err).toMatchObject({ name: 'InvalidRequest', status: 400 });
    expect(err.message).toMatch(/Content-MD5/);
  });

  it('a presigned GET URL fetched with fetch() returns the bytes', async () => {
    const body = randomBytes(64 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'presigned.bin', Body: body }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'presigned.bin' }), {
      expiresIn: 300,
    });
    const r = await fetch(url);
    expect(r.status).toBe(200);
    const got = Buffer.from(await r.arrayBuffer());
    expect(sha256(got)).toBe(sha256(body));
    // Tampered signature is refused.
    const bad = await fetch(url.replace(/X-Amz-Signature=[0-9a-f]/, 'X-Amz-Signature=z'));
    expect(bad.status).toBe(403);
    await bad.arrayBuffer();
  });
});
