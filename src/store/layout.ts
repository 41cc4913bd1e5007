import { posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { assertModelName } from '../registry/layout.js';

/** Where a registry keeps its bytes: `s3://bucket/prefix` or `file:///abs/path`. */
export type StoreLocation = { scheme: 's3'; uri: string; bucket: string; prefix: string } | { scheme: 'file'; uri: string; root: string };

/** Parses `storage.uri` from modelgate.yaml; the trailing slash is dropped. */
export function parseStoreUri(uri: string): StoreLocation {
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (s3) {
    const prefix = (s3[2] ?? '').replace(/(?<!\/)\/+$/, '');
    return { scheme: 's3', bucket: s3[1]!, prefix, uri: `s3://${s3[1]}${prefix ? `/${prefix}` : ''}` };
  }
  if (uri.startsWith('file://')) {
    let root: string;
    try {
      root = fileURLToPath(uri).replace(/(?<!\/)\/+$/, '') || '/';
    } catch {
      throw invalidStore(uri);
    }
    return { scheme: 'file', root, uri: pathToFileURL(root).href };
  }
  throw invalidStore(uri);
}

function invalidStore(uri: string): ModelgateError {
  return new ModelgateError('E_STORE_URI', `storage.uri ${JSON.stringify(uri)} is not an s3://bucket/prefix or file:///path URI`, ExitCode.content);
}

/**
 * One path segment (a file name inside an artifact): no separators, no `.`/`..`, no control
 * characters. Keys are built from validated names only.
 */
export function assertArtifactName(name: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses.
  if (!name || name === '.' || name === '..' || /[/\\\u0000-\u001f\u007f]/.test(name) || Buffer.byteLength(name) > 255) {
    throw usageError(`artifact file name ${JSON.stringify(name)} cannot be stored: it must be one path segment`);
  }
  return name;
}

/** A relative path inside a directory artifact, `/`-separated, each segment valid. */
export function assertRelativePath(path: string): string {
  if (
    path.split('/').some((seg) => {
      try {
        assertArtifactName(seg);
        return false;
      } catch {
        return true;
      }
    }) ||
    posix.normalize(path) !== path
  ) {
    throw usageError(`file ${JSON.stringify(path)} inside the artifact cannot be stored: unusual path`);
  }
  return path;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Store-relative key of a content-addressed object: `<model>/sha256/<hex>/<path>`. */
export function contentKey(model: string, sha256: string, path: string): string {
  if (!SHA256_HEX.test(sha256)) throw new ModelgateError('E_DIGEST', `not a sha256 digest: ${sha256}`);
  return `${assertModelName(model)}/sha256/${sha256}/${path === '' ? '' : assertRelativePath(path)}`;
}

/** Store-relative prefix where uploads are staged before they have a digest. */
export function stagingKey(model: string, uploadId: string, path: string): string {
  return `${assertModelName(model)}/.uploads/${uploadId}/${assertRelativePath(path)}`;
}

/**
 * Store-relative key of a registration mark, `.modelgate/registrations/<model>/<sha256>/<uploadId>`
 * (SPEC v3 §14): an empty object written once a registration knows its artifact's digest, before
 * the bytes are committed or reused. Its time is when a registration last wanted those bytes, so
 * gc keeps them for --older-than after that; a mark older than that whose bytes no manifest
 * references names an upload whose manifest never came (a killed or failed register).
 */
export function registrationMarkKey(model: string, sha256: string, uploadId: string): string {
  if (!SHA256_HEX.test(sha256)) throw new ModelgateError('E_DIGEST', `not a sha256 digest: ${sha256}`);
  return `${REGISTRATION_MARKS}${assertModelName(model)}/${sha256}/${assertArtifactName(uploadId)}`;
}

/** Where registration marks live in a store. */
export const REGISTRATION_MARKS = '.modelgate/registrations/';

/** The artifact URI recorded in a manifest: `<store uri>/<key>`. */
export function artifactUri(store: StoreLocation, key: string): string {
  return `${store.uri}/${key.split('/').map(encodeSegment).join('/')}`;
}

/**
 * One key segment as it appears in a URI: percent-encoded UTF-8, so spaces, non-ASCII letters
 * and `#` or `?` (which would end the path) survive a round trip (`modèle final.json` →
 * `mod%C3%A8le%20final.json`, `model#1.onnx` → `model%231.onnx`).
 */
export const encodeSegment = (segment: string): string => encodeURIComponent(segment);

/** The inverse for one segment; a segment that is not valid percent-encoding is taken as written. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The store-relative key an artifact URI points at, or undefined when it is not inside this
 * store (a manifest may reference another store; verify and pull refuse those explicitly).
 */
export function keyOfUri(store: StoreLocation, uri: string): string | undefined {
  const base = store.uri + '/';
  if (!uri.startsWith(base)) return undefined;
  const segments = uri.slice(base.length).split('/').map(decodeSegment);
  if (segments.some((s) => s === '..' || s === '.' || s.includes('/'))) return undefined;
  return segments.join('/');
}

/** A content-addressed artifact URI taken apart (`modelgate pull <uri> <dest>`, outside any registry). */
export interface ContentAddress {
  /** The store's URI, as `storage.uri` would say it. */
  store: string;
  model: string;
  sha256: string;
  /** The file name of a file artifact; undefined for a directory artifact (the URI ends in `/`). */
  fileName?: string;
  /** The store-relative key: the file's, or the directory's prefix (ending in `/`). */
  key: string;
}

const CONTENT_ADDRESS =
  /^((?:s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]|file:\/\/)(?:\/[^?#]*?)?)\/([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\/sha256\/([0-9a-f]{64})\/([^/?#]*)$/;

/**
 * Parses `<store>/<model>/sha256/<hex>/<file-name>` (or `…/<hex>/` for a directory), the URIs
 * modelgate writes; anything else is refused (exit 2), since only these carry the digest the
 * bytes are checked against.
 */
export function parseContentAddress(uri: string): ContentAddress {
  const m = CONTENT_ADDRESS.exec(uri);
  if (!m) {
    throw usageError(
      `${uri} is not a content-addressed artifact URI: expected <store>/<model>/sha256/<64 hex>/<file-name> (or …/<64 hex>/ for a folder), with an s3:// or file:// store`,
    );
  }
  const [, store, model, sha256, encodedName] = m as unknown as [string, string, string, string, string];
  const location = parseStoreUri(store === 'file://' ? 'file:///' : store);
  const fileName = encodedName === '' ? undefined : assertArtifactName(decodeSegment(encodedName));
  return { store: location.uri, model, sha256, ...(fileName !== undefined ? { fileName } : {}), key: contentKey(model, sha256, fileName ?? '') };
}
