/**
 * `scan: pickle` over a version's artifact in the store (the gate's I/O edge for SPEC v2 §8): a
 * single-file artifact of format pickle, joblib or pt is scanned whatever its name; in a
 * directory artifact, every file whose name marks it as a pickle container is.
 */
import type { ModelVersion } from '../manifest/types.js';
import { artifactObjects } from '../store/fetch.js';
import type { ArtifactStore } from '../store/store.js';
import { scanArtifactFile } from './artifact.js';
import type { PickleFinding } from './pickle.js';

const PICKLE_FORMATS = new Set(['pickle', 'joblib', 'pt']);
const PICKLE_NAMES = /\.(pkl|pickle|joblib|pt|pth|bin|ckpt)$/i;

/** Findings for every pickle stream of `version`'s artifact; file names are paths inside the artifact. */
export async function scanStoredArtifact(store: ArtifactStore, version: ModelVersion, allowGlobals: readonly string[] = []): Promise<PickleFinding[]> {
  const findings: PickleFinding[] = [];
  for (const obj of artifactObjects(store, version.artifact)) {
    const name = obj.path ?? obj.key.slice(obj.key.lastIndexOf('/') + 1);
    if (obj.path !== undefined ? !PICKLE_NAMES.test(obj.path) : !PICKLE_FORMATS.has(version.format)) continue;
    findings.push(...(await scanArtifactFile(name, await store.read(obj.key), { format: version.format, allowGlobals })));
  }
  return findings;
}
