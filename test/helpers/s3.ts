// Test helper for the loopback S3 server started by scripts/s3-server.sh
// (OpenStack Swift + s3api). Values come from the env vars that
// `bash scripts/s3-server.sh env` prints, else the script's defaults.
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

export interface S3TestConfig {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: true;
}

/** Defaults baked into scripts/s3-server.sh. */
export const S3_SERVER_DEFAULTS = {
  endpoint: `http://127.0.0.1:${process.env.MODELGATE_S3_PORT ?? '8380'}`,
  region: 'us-east-1',
  accessKeyId: 'modelgate:admin',
  secretAccessKey: 'modelgate-secret-key',
} as const;

export function s3Config(): S3TestConfig {
  const env = process.env;
  return {
    endpoint: env.MODELGATE_S3_ENDPOINT || S3_SERVER_DEFAULTS.endpoint,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || S3_SERVER_DEFAULTS.region,
    accessKeyId: env.AWS_ACCESS_KEY_ID || S3_SERVER_DEFAULTS.accessKeyId,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY || S3_SERVER_DEFAULTS.secretAccessKey,
    forcePathStyle: true,
  };
}

/** An S3Client for the test server; checksums only when an operation requires them. */
export function s3TestClient(overrides: Partial<S3ClientConfig> = {}): S3Client {
  const c = s3Config();
  return new S3Client({
    endpoint: c.endpoint,
    region: c.region,
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...overrides,
  });
}

/** Creates a uniquely named (DNS-compliant) bucket and returns its name. */
export async function createTestBucket(prefix = 'test', client?: S3Client): Promise<string> {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'test';
  const name = `${clean}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const s3 = client ?? s3TestClient();
  try {
    await s3.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    if (!client) s3.destroy();
  }
  return name;
}
