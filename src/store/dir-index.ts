import { createHash } from 'node:crypto';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Artifact, ArtifactFile } from '../manifest/types.js';
import { artifactUri, assertRelativePath, contentKey, SHA256_HEX, type StoreLocation } from './layout.js';
import type { ArtifactStore } from './store.js';

/**
 * SPEC v2 §5 `artifact.index`: a directory artifact of more than INDEX_THRESHOLD files keeps its
 * file list in the store. The index object holds the canonical list itself (one
 * `<sha256>  <size>  <path>\n` line per file, sorted by UTF-8 bytes), so its sha256 is the
 * directory digest: it lives at `<model>/sha256/<digest>/modelgate.index`, a content-addressed
 * file like any other, and verifies itself. Each listed file is stored once per model under its
 * own content key, `<model>/sha256/<file sha256>/<base name>`, so a file any earlier version
 * stored (an unchanged weight shard) is found there and not sent again.
 */
export const INDEX_NAME = 'modelgate.index';

/** Directories with more files than this register with an index instead of `artifact.files`. */
export const INDEX_THRESHOLD = 1000;

/** Store key of a directory's index. */
export function indexKey(model: string, digest: string): string {
  return contentKey(model, digest, INDEX_NAME);
}

/** Store key of one file of an indexed directory: its own content address. */
export function indexedFileKey(model: string, file: { sha256: string; path: string }): string {
  return contentKey(model, file.sha256, file.path.slice(file.path.lastIndexOf('/') + 1));
}

/** The manifest's `artifact` section for an indexed directory. */
export function indexedArtifact(location: StoreLocation, model: string, digest: string, size: number, count: number): Artifact {
  return {
    uri: artifactUri(location, contentKey(model, digest, '')),
    sha256: digest,
    size,
    index: { uri: artifactUri(location, indexKey(model, digest)), sha256: digest, count },
  };
}

/** The index's bytes, in chunks of about 1 MiB: files must be sorted like `directoryDigest`. */
export function* indexChunks(files: readonly ArtifactFile[]): Generator<Buffer> {
  let lines: string[] = [];
  let n = 0;
  for (const f of files) {
    const line = `${f.sha256}  ${f.size}  ${f.path}\n`;
    lines.push(line);
    n += line.length;
    if (n >= 1 << 20) {
      yield Buffer.from(lines.join(''), 'utf8');
      lines = [];
      n = 0;
    }
  }
  if (lines.length) yield Buffer.from(lines.join(''), 'utf8');
}

function indexError(what: string, message: string): ModelgateError {
  return new ModelgateError('E_INDEX', `${what}: ${message}`, ExitCode.content);
}

/**
 * The files an index lists, checked line by line: the format, strict UTF-8 byte order (so no
 * path twice), valid relative paths. The caller has already checked the bytes' digest.
 */
export function parseIndex(bytes: Buffer, what: string): ArtifactFile[] {
  const text = bytes.toString('utf8');
  if (text.length && !text.endsWith('\n')) throw indexError(what, 'the last line has no newline');
  const out: ArtifactFile[] = [];
  let previous: Buffer | undefined;
  let start = 0;
  let line = 0;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    line++;
    const m = /^([0-9a-f]{64}) {2}(0|[1-9][0-9]{0,15}) {2}(.+)$/.exec(text.slice(start, end));
    if (!m) throw indexError(what, `line ${line} is not "<sha256>  <size>  <path>"`);
    const path = m[3]!;
    try {
      assertRelativePath(path);
    } catch {
      throw indexError(what, `line ${line}: unusual path ${JSON.stringify(path)}`);
    }
    const key = Buffer.from(path, 'utf8');
    if (previous && Buffer.compare(previous, key) >= 0) throw indexError(what, `line ${line}: ${JSON.stringify(path)} is out of order or listed twice`);
    previous = key;
    out.push({ path, sha256: m[1]!, size: Number(m[2]) });
    start = end + 1;
  }
  return out;
}

/**
 * Reads and checks the index of `artifact` (which has `index`): its bytes must hash to the
 * directory digest, list `count` files and add up to `artifact.size`. Any mismatch is
 * E_INDEX / E_INTEGRITY (exit 1); a missing index is E_ARTIFACT_MISSING.
 */
export async function readIndex(store: ArtifactStore, model: string, artifact: Artifact): Promise<ArtifactFile[]> {
  const index = artifact.index!;
  if (!SHA256_HEX.test(index.sha256) || index.sha256 !== artifact.sha256)
    throw indexError(artifact.uri, `artifact.index.sha256 must be artifact.sha256 (${artifact.sha256})`);
  const key = indexKey(model, artifact.sha256);
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  for await (const c of await store.read(key)) {
    hash.update(c as Buffer);
    chunks.push(c as Buffer);
  }
  const sha256 = hash.digest('hex');
  const what = `${store.location.uri}/${key}`;
  if (sha256 !== artifact.sha256) {
    throw new ModelgateError('E_INTEGRITY', `${what}: sha256 is ${sha256}, the manifest says ${artifact.sha256}`, ExitCode.content, {
      expected: artifact.sha256,
      actual: sha256,
    });
  }
  const files = parseIndex(Buffer.concat(chunks), what);
  if (files.length !== index.count) throw indexError(what, `lists ${files.length} files, artifact.index.count says ${index.count}`);
  const total = files.reduce((n, f) => n + f.size, 0);
  if (total !== artifact.size) throw indexError(what, `its files add up to ${total} bytes, artifact.size says ${artifact.size}`);
  return files;
}

/** The model name of a content-addressed key `<model>/sha256/…`. */
export function modelOfKey(key: string): string {
  return key.slice(0, key.indexOf('/'));
}
