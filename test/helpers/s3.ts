// Test helper for the two loopback S3 servers the store tests run against:
//   - OpenStack Swift + s3api, started by scripts/s3-server.sh
//   - Ceph RGW (one-node cluster, memstore OSD), started by scripts/ceph-rgw.sh
// Values come from the env vars that `bash scripts/<script> env` prints, else the scripts'
// defaults. test/global-setup.ts starts both when MODELGATE_TEST_SERVICES is set.
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
const S3_SERVER_DEFAULTS = {
  endpoint: `http://127.0.0.1:${process.env.MODELGATE_S3_PORT ?? '8380'}`,
  region: 'us-east-1',
  accessKeyId: 'modelgate:admin',
  secretAccessKey: 'modelgate-secret-key',
} as const;

/** Defaults baked into scripts/ceph-rgw.sh. */
const RGW_SERVER_DEFAULTS = {
  endpoint: `http://127.0.0.1:${process.env.MODELGATE_RGW_PORT ?? '8480'}`,
  region: 'us-east-1',
  accessKeyId: 'modelgate-rgw-access-key',
  secretAccessKey: 'modelgate-rgw-secret-key',
} as const;

export type S3BackendId = 'swift' | 'rgw';

/** The Swift (s3api) server: the default of every helper here. */
export function s3Config(backend: S3BackendId = 'swift'): S3TestConfig {
  const env = process.env;
  if (backend === 'rgw') {
    return {
      endpoint: env.MODELGATE_RGW_ENDPOINT || RGW_SERVER_DEFAULTS.endpoint,
      region: env.MODELGATE_RGW_REGION || RGW_SERVER_DEFAULTS.region,
      accessKeyId: env.MODELGATE_RGW_ACCESS_KEY_ID || RGW_SERVER_DEFAULTS.accessKeyId,
      secretAccessKey: env.MODELGATE_RGW_SECRET_ACCESS_KEY || RGW_SERVER_DEFAULTS.secretAccessKey,
      forcePathStyle: true,
    };
  }
  return {
    endpoint: env.MODELGATE_S3_ENDPOINT || S3_SERVER_DEFAULTS.endpoint,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || S3_SERVER_DEFAULTS.region,
    accessKeyId: env.AWS_ACCESS_KEY_ID || S3_SERVER_DEFAULTS.accessKeyId,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY || S3_SERVER_DEFAULTS.secretAccessKey,
    forcePathStyle: true,
  };
}

/** An S3Client for a test server; checksums only when an operation requires them. */
export function s3TestClient(overrides: Partial<S3ClientConfig> = {}, backend: S3BackendId = 'swift'): S3Client {
  const c = s3Config(backend);
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

/**
 * One S3 server the suites run against, with what the server does with conditional writes
 * (`If-None-Match: *`), as test/s3-server.test.ts (Swift) and test/ceph-rgw.test.ts (RGW) pin it.
 */
export interface S3Backend {
  id: S3BackendId;
  /** Shown in the test names. */
  name: string;
  config: S3TestConfig;
  /** The command-line environment that reaches this server's credentials. */
  env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string; AWS_REGION: string };
  /** PutObject + If-None-Match: 'honoured' (412 on a taken key) or 'refused' (501 always). */
  conditionalPut: 'honoured' | 'refused';
  /** CompleteMultipartUpload + If-None-Match: 'honoured' (412 on a taken key) or 'ignored' (replaces it). */
  conditionalComplete: 'honoured' | 'ignored';
  client(overrides?: Partial<S3ClientConfig>): S3Client;
}

function backend(id: S3BackendId, name: string, conditionalPut: S3Backend['conditionalPut'], conditionalComplete: S3Backend['conditionalComplete']): S3Backend {
  const config = s3Config(id);
  return {
    id,
    name,
    config,
    env: { AWS_ACCESS_KEY_ID: config.accessKeyId, AWS_SECRET_ACCESS_KEY: config.secretAccessKey, AWS_REGION: config.region },
    conditionalPut,
    conditionalComplete,
    client: (overrides = {}) => s3TestClient(overrides, id),
  };
}

/** Both servers, for `describe.each(S3_BACKENDS)('... on $name', (b) => ...)`. */
export const S3_BACKENDS: readonly S3Backend[] = [backend('swift', 'Swift', 'refused', 'honoured'), backend('rgw', 'Ceph RGW', 'honoured', 'ignored')];

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
