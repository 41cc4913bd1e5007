import { scanStoredArtifactFiles } from '../scan/stored-artifact.js';
import { openStore, type ArtifactStore, type StorageConfig } from '../store/store.js';
import type { ArtifactScanner } from './types.js';

/** `scan: pickle` over the registry's store: the bytes are read (and hashed) once per scanned file. */
export class StoreArtifactScanner implements ArtifactScanner {
  constructor(readonly store: ArtifactStore) {}

  async scanPickles(version: Parameters<ArtifactScanner['scanPickles']>[0], allowGlobals: readonly string[]) {
    const { files, findings } = await scanStoredArtifactFiles(this.store, version, allowGlobals);
    return {
      files,
      findings: findings.map(({ file, offset, global, line, message }) => ({
        file,
        offset,
        ...(global ? { global } : {}),
        ...(line !== undefined ? { line } : {}),
        message,
      })),
    };
  }
}

/** A scanner that opens the store only when a rule asks for a scan; `close` releases its connections. */
export function lazyStoreScanner(storage: () => Promise<StorageConfig>, env: NodeJS.ProcessEnv = process.env): ArtifactScanner & { close(): Promise<void> } {
  let store: Promise<ArtifactStore> | undefined;
  return {
    async scanPickles(version, allowGlobals) {
      store ??= storage().then((s) => openStore(s, env));
      return new StoreArtifactScanner(await store).scanPickles(version, allowGlobals);
    },
    async close() {
      if (store) (await store.catch(() => undefined))?.close();
    },
  };
}

/**
 * For a preview before anyone approved (`promote --pr`): no bytes are read, the check says the
 * Action scans the artifact on the pull request. Never used where a decision counts.
 */
export const deferredScanner: ArtifactScanner = {
  async scanPickles() {
    return { files: [], findings: [], note: 'not scanned in the preview: the Action scans the stored artifact on the pull request' };
  },
};
