// Proves the loopback S3 server (scripts/s3-server.sh: OpenStack Swift 2.30 +
// s3api + tempauth, Debian 12) behaves the way modelgate's artifact store needs.
// Run after: bash scripts/s3-server.sh install && bash scripts/s3-server.sh start
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createTestBucket, s3Config, s3TestClient } from './helpers/s3.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function readAll(s3: S3Client, Bucket: string, Key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as S3ServiceException;
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error('expected the request to fail');
}

describe('S3 server (Swift s3api) on loopback', () => {
  let s3: S3Client;
  let bucket: string;

  beforeAll(async () => {
    s3 = s3TestClient();
    bucket = await createTestBucket('s3-server', s3);
  });
  afterAll(() => s3?.destroy());

  it('PutObject + GetObject round trip keeps the bytes (sha256)', async () => {
    const body = randomBytes(1024 * 1024 + 17);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'small/blob.bin', Body: body }));
    const back = await readAll(s3, bucket, 'small/blob.bin');
    expect(back.length).toBe(body.length);
    expect(sha256(back)).toBe(sha256(body));
  });

  it('multipart Upload of ~20 MiB (5 MiB parts, queueSize 4) reads back byte-exact', async () => {
    const body = randomBytes(20 * 1024 * 1024 + 12345);
    const up = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: 'big/model.bin', Body: body },
      partSize: 5 * 1024 * 1024,
      queueSize: 4,
      leavePartsOnError: false,
    });
    const res = await up.done();
    console.log('multipart ETag:', res.ETag);
    const back = await readAll(s3, bucket, 'big/model.bin');
    expect(back.length).toBe(body.length);
    expect(sha256(back)).toBe(sha256(body));

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/model.bin' }));
    console.log('head', head.ContentLength, head.ETag);
    expect(head.ContentLength).toBe(body.length);
  }, 120_000);

  it('HeadObject reports the size', async () => {
    const body = randomBytes(4321);
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'head.bin', Body: body }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'head.bin' }));
    console.log('put etag', put.ETag, 'head etag', head.ETag);
    expect(head.ContentLength).toBe(4321);
  });

  it('faults', async () => {
    const c = s3Config();
    const bad = new S3Client({
      endpoint: c.endpoint, region: c.region, forcePathStyle: true,
      credentials: { accessKeyId: c.accessKeyId, secretAccessKey: 'wrong-secret' },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    const badKey = new S3Client({
      endpoint: c.endpoint, region: c.region, forcePathStyle: true,
      credentials: { accessKeyId: 'nobody:nobody', secretAccessKey: 'x' },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    console.log('wrong secret put', await failure(bad.send(new PutObjectCommand({ Bucket: bucket, Key: 'x', Body: 'x' }))));
    console.log('wrong secret get', await failure(bad.send(new GetObjectCommand({ Bucket: bucket, Key: 'small/blob.bin' }))));
    console.log('wrong secret head', await failure(bad.send(new HeadObjectCommand({ Bucket: bucket, Key: 'small/blob.bin' }))));
    console.log('unknown key put', await failure(badKey.send(new PutObjectCommand({ Bucket: bucket, Key: 'x', Body: 'x' }))));
    console.log('missing bucket put', await failure(s3.send(new PutObjectCommand({ Bucket: 'no-such-bucket-' + Date.now(), Key: 'x', Body: 'x' }))));
    console.log('missing bucket get', await failure(s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket-' + Date.now(), Key: 'x' }))));
    console.log('missing bucket list', await failure(s3.send(new ListObjectsV2Command({ Bucket: 'no-such-bucket-' + Date.now() }))));
    console.log('missing key get', await failure(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'nope' }))));
    console.log('missing key head', await failure(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nope' }))));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cond', Body: 'one' }));
    try {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cond', Body: 'two', IfNoneMatch: '*' }));
      console.log('IfNoneMatch ignored; now', (await readAll(s3, bucket, 'cond')).toString());
    } catch (e) {
      console.log('IfNoneMatch', (e as Error).name, (e as S3ServiceException).$metadata?.httpStatusCode);
    }
    try {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cond-new', Body: 'new', IfNoneMatch: '*' }));
      console.log('IfNoneMatch on new key ok');
    } catch (e) {
      console.log('IfNoneMatch new', (e as Error).name, (e as S3ServiceException).$metadata?.httpStatusCode);
    }
    // tiny part
    const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'tiny-mp' }));
    console.log('upload id', mp.UploadId);
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'tiny-mp', UploadId: mp.UploadId, PartNumber: 1, Body: 'a' }));
    const lu = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    console.log('uploads', lu.Uploads?.map((u) => [u.Key, u.UploadId]));
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'tiny-mp', UploadId: mp.UploadId }));
    const lu2 = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    console.log('uploads after abort', lu2.Uploads);
    console.log('head aborted', await failure(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'tiny-mp' }))));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'head.bin' }), { expiresIn: 300 });
    console.log(url);
    const r = await fetch(url);
    console.log('presigned', r.status, (await r.arrayBuffer()).byteLength);
  });
});
