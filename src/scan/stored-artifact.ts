/**
 * `scan: pickle` over a version's artifact in the store (the gate's I/O edge for SPEC v3 §14):
 * every file of the artifact is read by content, whatever its name or the declared format (a
 * single file's format is checked against its bytes).
 *
 * The scan reads what it needs by range (a zip's central directory at its end, the pickles, never
 * the tensor storages), in blocks whose digests it keeps; then the whole object is read once for
 * its sha256, and the blocks the scan read are hashed again from that read. A passing scan, and
 * the decision record naming the digest, is so about the bytes the digest names, even from a store
 * that would answer ranges with other bytes. A store without ranged reads is copied to a private
 * temporary file while it is hashed, and the copy is scanned.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode, ModelgateError } from '../errors.js';
import type { ModelVersion } from '../manifest/types.js';
import { artifactObjects, type ArtifactObject } from '../store/fetch.js';
import type { ArtifactStore } from '../store/store.js';
import { openFileSource, scanArtifactFile, type ByteSource } from './artifact.js';
import { planMLmodels } from './mlmodel.js';
import type { PickleFinding } from './pickle.js';

export interface StoredScan {
  /** Names (paths inside the artifact) of the files scanned. */
  files: string[];
  findings: PickleFinding[];
}

const BLOCK = 1 << 20;
const CACHED_BLOCKS = 16;

/** Findings for every pickle a loader would read from `version`'s artifact; file names are paths inside the artifact. */
export async function scanStoredArtifact(store: ArtifactStore, version: ModelVersion, allowGlobals: readonly string[] = []): Promise<PickleFinding[]> {
  return (await scanStoredArtifactFiles(store, version, allowGlobals)).findings;
}

/** Findings for every file of `version`'s artifact, with the files scanned; file names are paths inside the artifact. */
export async function scanStoredArtifactFiles(store: ArtifactStore, version: ModelVersion, allowGlobals: readonly string[] = []): Promise<StoredScan> {
  const out: StoredScan = { files: [], findings: [] };
  const objects = await artifactObjects(store, version.artifact);
  const byPath = new Map(objects.filter((o) => o.path !== undefined).map((o) => [o.path!, o]));
  // An MLflow model folder: what its MLmodel files make the loaders read, from the manifest's bytes.
  const mlflow = await planMLmodels(
    {
      files: new Map([...byPath].map(([p, o]) => [p, o.size])),
      links: new Set(),
      read: (path) => readVerified(store, byPath.get(path)!),
    },
    allowGlobals,
  );
  out.findings.push(...mlflow.findings);
  for (const obj of objects) {
    const name = obj.path ?? obj.key.slice(obj.key.lastIndexOf('/') + 1);
    out.files.push(name);
    const loadedAs = obj.path === undefined ? undefined : mlflow.loads.get(obj.path);
    const opts = { format: obj.path === undefined ? version.format : undefined, allowGlobals, ...(loadedAs ? { loadedAs } : {}) };
    const { findings, sha256, size, mismatch } = store.readRange
      ? await scanByRanges(store, obj, (src) => scanArtifactFile(name, src, opts))
      : await scanCopy(store, obj, (src) => scanArtifactFile(name, src, opts));
    if (sha256 !== obj.sha256 || size !== obj.size) {
      out.findings.push(...findings, {
        file: name,
        offset: 0,
        kind: 'unscannable',
        message: `the bytes scanned (sha256 ${sha256.slice(0, 12)}…, ${size} bytes) are not the manifest's (${obj.sha256.slice(0, 12)}…, ${obj.size} bytes)`,
      });
    } else if (mismatch !== undefined) {
      out.findings.push({
        file: name,
        offset: mismatch,
        kind: 'unscannable',
        message: 'the store answered a ranged read with other bytes than the object holds',
      });
    } else out.findings.push(...findings);
  }
  return out;
}

/** A small object's bytes (an MLmodel), refused unless they are the manifest's. */
async function readVerified(store: ArtifactStore, obj: ArtifactObject): Promise<Buffer> {
  const bytes = await collect(await store.read(obj.key));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== obj.sha256 || bytes.length !== obj.size)
    throw new ModelgateError(
      'E_INTEGRITY',
      `${obj.path ?? obj.key}: the store answered other bytes than the manifest names (sha256 ${sha256.slice(0, 12)}…)`,
      ExitCode.content,
    );
  return bytes;
}

interface ObjectScan {
  findings: PickleFinding[];
  sha256: string;
  size: number;
  /** Offset of a block the scan read that the whole-object read does not hold. */
  mismatch?: number;
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function scanByRanges(store: ArtifactStore, obj: ArtifactObject, scan: (src: ByteSource) => Promise<PickleFinding[]>): Promise<ObjectScan> {
  // A few blocks are kept for the scan's next reads; every block read keeps its digest.
  const cache = new Map<number, Buffer>();
  const digests = new Map<number, string>();
  let refetched: number | undefined;
  const block = async (i: number): Promise<Buffer> => {
    let b = cache.get(i);
    if (!b) {
      const start = i * BLOCK;
      const end = Math.min(obj.size, start + BLOCK) - 1;
      b = end < start ? Buffer.alloc(0) : await collect(await store.readRange!(obj.key, start, end));
      const d = createHash('sha256').update(b).digest('hex');
      if (digests.has(i) && digests.get(i) !== d) refetched ??= start;
      digests.set(i, d);
      cache.set(i, b);
      if (cache.size > CACHED_BLOCKS) cache.delete(cache.keys().next().value!);
    }
    return b;
  };
  const src: ByteSource = {
    size: obj.size,
    async read(offset, length) {
      const end = Math.min(obj.size, offset + length);
      const parts: Buffer[] = [];
      for (let i = Math.floor(offset / BLOCK); i * BLOCK < end; i++) {
        const b = await block(i);
        parts.push(b.subarray(Math.max(0, offset - i * BLOCK), Math.max(0, end - i * BLOCK)));
      }
      return Buffer.concat(parts);
    },
  };
  const findings = await scan(src);
  // The whole object, hashed; the blocks the scan read must be its bytes.
  const again = new Map<number, ReturnType<typeof createHash>>();
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of await store.read(obj.key)) {
    const c = chunk as Buffer;
    hash.update(c);
    for (let at = 0; at < c.length;) {
      const i = Math.floor((size + at) / BLOCK);
      const take = Math.min(c.length - at, (i + 1) * BLOCK - (size + at));
      if (digests.has(i)) {
        if (!again.has(i)) again.set(i, createHash('sha256'));
        again.get(i)!.update(c.subarray(at, at + take));
      }
      at += take;
    }
    size += c.length;
  }
  const badBlock = [...digests].find(([i, d]) => again.get(i)?.digest('hex') !== d);
  const mismatch = refetched ?? (badBlock ? badBlock[0] * BLOCK : undefined);
  return { findings, sha256: hash.digest('hex'), size, ...(mismatch === undefined ? {} : { mismatch }) };
}

async function scanCopy(store: ArtifactStore, obj: ArtifactObject, scan: (src: ByteSource) => Promise<PickleFinding[]>): Promise<ObjectScan> {
  const dir = await mkdtemp(join(tmpdir(), 'modelgate-scan-'));
  try {
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
    const src = await openFileSource(copy);
    try {
      return { findings: await scan(src), sha256: hash.digest('hex'), size };
    } finally {
      await src.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
