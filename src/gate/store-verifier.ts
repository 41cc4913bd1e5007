import { ExitCode, ModelgateError } from '../errors.js';
import type { Artifact } from '../manifest/types.js';
import { INDEX_NAME } from '../store/dir-index.js';
import { artifactObjects } from '../store/fetch.js';
import { directoryDigest, hashStream } from '../store/digest.js';
import { SHA256_HEX } from '../store/layout.js';
import { openStore, requireKey, type ArtifactStore, type StorageConfig } from '../store/store.js';
import type { ArtifactVerifier } from './types.js';

/**
 * The gate's artifact check over the registry's store: `exists` compares presence and size,
 * `full` reads the bytes and recomputes the sha256 (for a directory, every file and then the
 * canonical digest of the list). A store error propagates: the gate turns it into a failure.
 */
class StoreArtifactVerifier implements ArtifactVerifier {
  constructor(readonly store: ArtifactStore) {}

  private verifyIndexed(artifact: Artifact, key: string, mode: 'full' | 'exists'): Promise<{ ok: boolean; detail: string }> {
    return verifyIndexedDirectory(this.store, artifact, key, mode);
  }

  async verify(artifact: Artifact, mode: 'full' | 'exists'): Promise<{ ok: boolean; detail: string }> {
    if (!SHA256_HEX.test(artifact.sha256 ?? '')) return { ok: false, detail: 'the manifest has no valid sha256' };
    const key = requireKey(this.store, artifact.uri);
    if (!key.includes(`/sha256/${artifact.sha256}/`)) return { ok: false, detail: `${artifact.uri} is not addressed by its sha256` };
    if (artifact.index) return this.verifyIndexed(artifact, key, mode);
    const files = artifact.files ?? [{ path: '', sha256: artifact.sha256, size: artifact.size }];
    if (artifact.files) {
      const digest = directoryDigest(artifact.files);
      if (digest !== artifact.sha256) return { ok: false, detail: `the file list's digest is ${digest}, not the recorded ${artifact.sha256}` };
    }
    if (artifact.files && mode === 'full') {
      // KServe's initializer downloads the whole prefix: an object the manifest does not list
      // would be served unverified, so it fails the check like a wrong digest.
      const folder = key.replace(/\/?$/, '/');
      const listed = new Set(artifact.files.map((f) => `${folder}${f.path}`));
      const extra = (await this.store.list(folder)).filter((k) => !listed.has(k)).sort();
      if (extra.length) {
        const names = extra.slice(0, 5).map((k) => k.slice(folder.length));
        return {
          ok: false,
          detail: `${extra.length} object(s) under ${artifact.uri} are not in the manifest's file list: ${names.join(', ')}${extra.length > 5 ? ', …' : ''}`,
        };
      }
    }
    for (const f of files) {
      const fileKey = artifact.files ? `${key.replace(/\/?$/, '/')}${f.path}` : key;
      const stat = await this.store.stat(fileKey);
      const label = artifact.files ? f.path : artifact.uri;
      if (!stat) return { ok: false, detail: `${label} is missing from the store` };
      if (stat.size !== f.size) return { ok: false, detail: `${label} has ${stat.size} bytes in the store, the manifest says ${f.size}` };
      if (mode === 'full') {
        const { sha256: actual } = await hashStream(await this.store.read(fileKey));
        if (actual !== f.sha256) return { ok: false, detail: `${label}: sha256 in the store is ${actual}, the manifest says ${f.sha256}` };
      }
    }
    const what = artifact.files ? `${files.length} files` : `${artifact.size} bytes`;
    return { ok: true, detail: mode === 'full' ? `${what} re-hashed: sha256 ${artifact.sha256.slice(0, 12)}… matches` : `present, ${what}` };
  }
}

/**
 * An indexed directory (SPEC v2 §5): the index is read and checked against the digest, then
 * every file it lists is checked at its own content key. The prefix `<artifact.uri>` must hold
 * the index only: `modelgate pull` reads the index, but any other object there is refused like
 * an unlisted file of an inline directory.
 */
async function verifyIndexedDirectory(
  store: ArtifactStore,
  artifact: Artifact,
  key: string,
  mode: 'full' | 'exists',
): Promise<{ ok: boolean; detail: string }> {
  let objects;
  try {
    objects = await artifactObjects(store, artifact);
  } catch (e) {
    if (e instanceof ModelgateError && e.exit === ExitCode.content) return { ok: false, detail: e.message };
    throw e;
  }
  if (mode === 'full') {
    const folder = key.replace(/\/?$/, '/');
    const extra = (await store.list(folder)).filter((k) => k !== `${folder}${INDEX_NAME}`).sort();
    if (extra.length)
      return {
        ok: false,
        detail: `${extra.length} object(s) under ${artifact.uri} besides its index: ${extra
          .slice(0, 5)
          .map((k) => k.slice(folder.length))
          .join(', ')}`,
      };
  }
  let next = 0;
  let problem: string | undefined;
  const worker = async () => {
    while (problem === undefined && next < objects.length) {
      const f = objects[next++]!;
      const stat = await store.stat(f.key);
      if (!stat) problem ??= `${f.path} is missing from the store`;
      else if (stat.size !== f.size) problem ??= `${f.path} has ${stat.size} bytes in the store, the manifest says ${f.size}`;
      else if (mode === 'full') {
        const { sha256: actual } = await hashStream(await store.read(f.key));
        if (actual !== f.sha256) problem ??= `${f.path}: sha256 in the store is ${actual}, the index says ${f.sha256}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, objects.length) }, worker));
  if (problem !== undefined) return { ok: false, detail: problem };
  const what = `${objects.length} files (indexed)`;
  return { ok: true, detail: mode === 'full' ? `${what} re-hashed: sha256 ${artifact.sha256.slice(0, 12)}… matches` : `present, ${what}` };
}

/**
 * A verifier that opens the store only when a rule asks for an artifact check. `mode`, when
 * given, replaces the rule's own (the promotion pull request's preview checks presence only);
 * `close` releases the store's connections.
 */
export function lazyStoreVerifier(
  storage: () => Promise<StorageConfig>,
  env: NodeJS.ProcessEnv = process.env,
  opts: { mode?: 'exists' } = {},
): ArtifactVerifier & { close(): Promise<void> } {
  let store: Promise<ArtifactStore> | undefined;
  return {
    async verify(artifact, mode) {
      store ??= storage().then((s) => openStore(s, env));
      return new StoreArtifactVerifier(await store).verify(artifact, opts.mode ?? mode);
    },
    async close() {
      if (store) (await store.catch(() => undefined))?.close();
    },
  };
}
