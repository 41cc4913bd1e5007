/**
 * `scan: pickle` over a version's artifact in the store (the gate's I/O edge for SPEC v2 §8): a
 * single-file artifact of format pickle, joblib or pt is scanned whatever its name; in a
 * directory artifact, every file whose name marks it as a pickle container is. The bytes scanned
 * are hashed in the same read and compared with the manifest: a passing scan (and the decision
 * record naming the digest) is about the bytes the digest names, whatever `artifact:` checks.
 */
import { createHash } from 'node:crypto';
import type { ModelVersion } from '../manifest/types.js';
import { artifactObjects } from '../store/fetch.js';
import type { ArtifactStore } from '../store/store.js';
import { scanArtifactFile } from './artifact.js';
import type { PickleFinding } from './pickle.js';

const PICKLE_FORMATS = new Set(['pickle', 'joblib', 'pt']);
const PICKLE_NAMES = /\.(pkl|pickle|joblib|pt|pth|bin|ckpt)$/i;

export interface StoredScan {
  /** Names (paths inside the artifact) of the files scanned. */
  files: string[];
  findings: PickleFinding[];
}

/** Findings for every pickle stream of `version`'s artifact; file names are paths inside the artifact. */
export async function scanStoredArtifact(store: ArtifactStore, version: ModelVersion, allowGlobals: readonly string[] = []): Promise<PickleFinding[]> {
  return (await scanStoredArtifactFiles(store, version, allowGlobals)).findings;
}

/** Like scanStoredArtifact, also naming the files scanned. */
export async function scanStoredArtifactFiles(store: ArtifactStore, version: ModelVersion, allowGlobals: readonly string[] = []): Promise<StoredScan> {
  const out: StoredScan = { files: [], findings: [] };
  for (const obj of artifactObjects(store, version.artifact)) {
    const name = obj.path ?? obj.key.slice(obj.key.lastIndexOf('/') + 1);
    if (obj.path !== undefined ? !PICKLE_NAMES.test(obj.path) : !PICKLE_FORMATS.has(version.format)) continue;
    out.files.push(name);
    const src = (await store.read(obj.key))[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const hash = createHash('sha256');
    let size = 0;
    const next = async () => {
      const r = await src.next();
      if (!r.done) {
        hash.update(r.value);
        size += r.value.length;
      }
      return r;
    };
    // The scanner may stop reading early (a refused file): the rest is still hashed, so `return`
    // does not end the source.
    const hashed: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => ({ next, return: async () => ({ done: true, value: undefined }) }) };
    const findings = await scanArtifactFile(name, hashed, { format: version.format, allowGlobals });
    while (!(await next()).done);
    const sha256 = hash.digest('hex');
    out.findings.push(...findings);
    if (sha256 !== obj.sha256 || size !== obj.size) {
      out.findings.push({
        file: name,
        offset: 0,
        kind: 'unscannable',
        message: `the bytes scanned (sha256 ${sha256.slice(0, 12)}…, ${size} bytes) are not the manifest's (${obj.sha256.slice(0, 12)}…, ${obj.size} bytes)`,
      });
    }
  }
  return out;
}
