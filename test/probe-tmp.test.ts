import { randomBytes } from 'node:crypto';
import { it } from 'vitest';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, GetObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { createTestBucket, s3TestClient } from './helpers/s3.js';
it('probe', async () => {
  const s3 = s3TestClient({ maxAttempts: 1 });
  const b = await createTestBucket('probe', s3);
  const err = async (p: Promise<unknown>) => { try { const r = await p; return 'ok ' + JSON.stringify((r as any).$metadata?.httpStatusCode); } catch (e: any) { return `${e.name} ${e.$metadata?.httpStatusCode} ${e.message} ${e.Code}`; } };
  const mpu = async (key: string, inm?: string) => {
    const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket: b, Key: key }));
    const p1 = await s3.send(new UploadPartCommand({ Bucket: b, Key: key, UploadId: mp.UploadId, PartNumber: 1, Body: randomBytes(100) }));
    return [mp.UploadId, await err(s3.send(new CompleteMultipartUploadCommand({ Bucket: b, Key: key, UploadId: mp.UploadId, IfNoneMatch: inm, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }] } })))];
  };
  console.log('fresh key IfNoneMatch', await mpu('fresh', '*'));
  console.log('existing key IfNoneMatch', await mpu('fresh', '*'));
  console.log('existing key no cond', await mpu('fresh'));
  console.log('uploads left', (await s3.send(new ListMultipartUploadsCommand({ Bucket: b }))).Uploads?.length);
  const r = await s3.send(new GetObjectCommand({ Bucket: b, Key: 'fresh' }));
  console.log('etag', r.ETag);
});
