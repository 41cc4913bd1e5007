/**
 * `scan: pickle` over a version's artifact in the store (the gate's I/O edge for SPEC v3 §14):
 * every file of the artifact is read by content, whatever its name or the declared format (a
 * single file's format is checked against its bytes). Each object is copied once to a private
 * temporary file while it is hashed: the scan reads that copy (a zip's central directory is at its
 * end), so a passing scan, and the decision record naming the digest, is about the bytes the
 * digest names, whatever `artifact:` checks.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { ModelVersion } from '../manifest/types.js';
import { artifactObjects } from '../store/fetch.js';
import type { ArtifactStore } from '../store/store.js';
import { openFileSource, scanArtifactFile } from './artifact.js';
import type { PickleFinding } from './pickle.js';

export interface StoredScan {
  /** Names (paths inside the artifact) of the files scanned. */
  files: string[];
  findings: PickleFinding[];
}

/** Findings for every pickle a loader would read from `version`'s artifact; file names are paths inside the artifact. */
export async function scanStoredArtifact(store: ArtifactStore, version: ModelVersion, allowGlobals: readonly string[] = []): Promise<PickleFinding[]> {
  return (await scanStoredArtifactFiles(store, version, allowGlobals)).findings;
}

/** Findings for every file of `version`'s artifact, with the files scanned; file names are paths inside the artifact. */
export async function scanStoredArtifactFiles(store: ArtifactStore, version: ModelVersion, allowGlobals: readonly string[] = []): Promise<StoredScan> {
  const out: StoredScan = { files: [], findings: [] };
  const dir = await mkdtemp(join(tmpdir(), 'modelgate-scan-'));
  try {
    for (const obj of await artifactObjects(store, version.artifact)) {
      const name = obj.path ?? obj.key.slice(obj.key.lastIndexOf('/') + 1);
      out.files.push(name);
      const copy = join(dir, 'object');
      const hash = createHash('sha256');
      let size = 0;
      const sink = createWriteStream(copy, { mode: 0o600 });
      for await (const chunk of await store.read(obj.key)) {
        const c = chunk as Buffer;
        hash.update(c);
        size += c.length;
        if (!sink.write(c)) await once(sink, 'drain');
      }
      sink.end();
      await once(sink, 'close');
      const sha256 = hash.digest('hex');
      if (sha256 !== obj.sha256 || size !== obj.size) {
        out.findings.push({
          file: name,
          offset: 0,
          kind: 'unscannable',
          message: `the bytes read (sha256 ${sha256.slice(0, 12)}…, ${size} bytes) are not the manifest's (${obj.sha256.slice(0, 12)}…, ${obj.size} bytes)`,
        });
        continue;
      }
      const src = await openFileSource(copy);
      try {
        out.findings.push(...(await scanArtifactFile(name, src, { format: obj.path === undefined ? version.format : undefined, allowGlobals })));
      } finally {
        await src.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}
