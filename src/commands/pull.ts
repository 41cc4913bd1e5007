import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { cancellable } from '../cancel.js';
import { emit, parseCommand, type Command, type Misuse } from '../cli/context.js';
import { ExitCode, ModelgateError } from '../errors.js';
import { parseModelRef } from '../registry/layout.js';
import { openReadRegistry } from '../registry/snapshot.js';
import { downloadArtifact, pullContentAddressed } from '../store/fetch.js';
import { parseContentAddress } from '../store/layout.js';
import { createProgress } from '../store/progress.js';
import { openStore, type StorageConfig } from '../store/store.js';

/** A URI rather than a `model@version` reference: `pull <uri> <dest>`, KServe's storage-initializer form. */
const URI_ARG = /^[a-z][a-z0-9+.-]*:\/\//;

/**
 * `modelgate pull`: a version's artifact to a local path, placed there only once every sha256
 * matched. Cancelled (SIGINT, SIGTERM), it removes what it wrote before it exits 130 / 143.
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('pull', ctx.argv);
  if (positionals.length >= 1 && URI_ARG.test(positionals[0]!)) return pullUri(ctx, positionals, values.output, misuse);
  if (positionals.length !== 1 || !values.output) throw misuse('pull needs <ref> and -o <path>, or <content-addressed-uri> <dest>');
  const ref = parseModelRef(positionals[0]!);
  const target = resolve(ctx.cwd, values.output);
  if (existsSync(target) && !values.force) {
    throw new ModelgateError('E_OUTPUT_EXISTS', `${values.output} already exists; pass --force to replace it`, ExitCode.usage);
  }
  const { snapshot } = await openReadRegistry(ctx);
  const version = await snapshot.resolveRef(ref);
  const store = await openStore((await snapshot.config()).storage, ctx.env);
  const progress = createProgress(ctx, `pulling ${version.model}@${version.version}`, version.artifact.size);
  try {
    await cancellable((signal) => downloadArtifact(store, version.artifact, target, { replace: values.force, onBytes: (n) => progress.add(n), signal }));
  } finally {
    store.close();
  }
  progress.done();
  emit(
    ctx,
    { model: version.model, version: version.version, path: target, sha256: version.artifact.sha256, size: version.artifact.size },
    () => `${version.model}@${version.version} → ${values.output} (sha256 ${version.artifact.sha256} verified)`,
  );
  return ExitCode.ok;
};

/**
 * The storage settings for a bare URI, from the environment as KServe's storage initializer
 * receives it (the S3 Secret's variables): credentials from the AWS chain, the endpoint from
 * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, path-style addressing whenever an endpoint is set
 * unless S3_USER_VIRTUAL_BUCKET=true (KServe's switch for virtual-hosted buckets).
 */
export function storageForUri(store: string, env: NodeJS.ProcessEnv): StorageConfig {
  if (!store.startsWith('s3://')) return { uri: store };
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  return {
    uri: store,
    ...(endpoint ? { endpoint, forcePathStyle: env.S3_USER_VIRTUAL_BUCKET?.toLowerCase() !== 'true' } : {}),
  };
}

/**
 * `modelgate pull <content-addressed-uri> <dest>`: works outside any registry (the verifying
 * storage initializer's entrypoint); the digest the URI embeds is the only thing trusted.
 */
async function pullUri(ctx: Parameters<Command>[0], positionals: string[], output: string | undefined, misuse: Misuse): Promise<number> {
  if (positionals.length + (output === undefined ? 0 : 1) !== 2) {
    throw misuse('pull <content-addressed-uri> <dest>: expected the URI and one destination folder');
  }
  const uri = positionals[0]!;
  const dest = resolve(ctx.cwd, positionals[1] ?? output!);
  const address = parseContentAddress(uri);
  const store = await openStore(storageForUri(address.store, ctx.env), ctx.env);
  let pulled;
  try {
    // A file's size is one HEAD away; a folder's would be one per file, so it pulls without a progress bar.
    const size = address.fileName !== undefined ? (await store.stat(address.key))?.size : undefined;
    const progress = size ? createProgress(ctx, `pulling ${address.model} sha256:${address.sha256.slice(0, 12)}`, size) : { add() {}, done() {} };
    pulled = await cancellable((signal) => pullContentAddressed(store, address, dest, { onBytes: (n) => progress.add(n), signal }));
    progress.done();
  } finally {
    store.close();
  }
  emit(
    ctx,
    { uri, path: dest, sha256: pulled.sha256, size: pulled.size, files: pulled.files.map((f) => f.path) },
    () => `${uri} → ${dest} (${pulled.files.length} file(s), ${pulled.size} bytes, sha256 ${pulled.sha256} verified)`,
  );
  return ExitCode.ok;
}
