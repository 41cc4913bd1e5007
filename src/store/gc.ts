import { createHash } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortMultipartUploadCommand, DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand } from '@aws-sdk/client-s3';
import { ExitCode, ModelgateError } from '../errors.js';
import type { GitRepo } from '../git/repo.js';
import { INDEX_NAME, parseIndex } from './dir-index.js';
import { FileStore } from './file-store.js';
import { REGISTRATION_MARKS } from './layout.js';
import { S3Store } from './s3-store.js';
import type { ArtifactStore } from './store.js';

/**
 * What `gc` removes (or would remove with --dry-run):
 * - `staging`: a registration's staging area `<model>/.uploads/<id>/` (a failed or killed upload);
 * - `multipart`: an incomplete multipart upload (S3);
 * - `uncommitted`: an artifact whose upload finished but whose manifest never came: no manifest
 *   references it and its registration marks are all older than --older-than;
 * - `unreferenced` (--unreferenced): an artifact no manifest references, marked or not;
 * - `mark`: a registration mark older than --older-than whose artifact is referenced or gone.
 */
export interface Garbage {
  kind: 'staging' | 'multipart' | 'uncommitted' | 'unreferenced' | 'mark';
  /** Store-relative key: a folder (`…/`) for a staging area or an artifact, `key?uploadId=…` for a multipart upload. */
  key: string;
  bytes: number;
  /** The newest time anything in it was written (a multipart upload: its newest part). */
  modified: Date;
  /** The store objects it is made of (store-relative keys). */
  objects: string[];
}

const STAGING = /^([^/]+)\/\.uploads\/([^/]+)(?:\/|$)/;
const CONTENT = /^([^/]+)\/sha256\/([0-9a-f]{64})(?:\/|$)/;
const MARK = new RegExp(`^${REGISTRATION_MARKS.replace(/\./g, '\\.')}([^/]+)/([0-9a-f]{64})/[^/]+$`);
const INDEXED = new RegExp(`^([^/]+)/sha256/([0-9a-f]{64})/${INDEX_NAME.replace('.', '\\.')}$`);

/**
 * The references gc must honour, read from a clone that holds every commit: refuses a shallow
 * or partial clone (E_INCOMPLETE_CLONE), fetches every branch and pull request head of every
 * remote (a remote that does not answer stops gc: E_GIT_REMOTE, exit 3), then returns
 * `<model>/<sha256>` of every artifact any manifest in any commit of any ref references.
 */
export async function referencesOfEveryHead(repo: GitRepo): Promise<Set<string>> {
  const missing = await repo.missingHistory();
  if (missing.shallow || missing.partial) {
    const how = missing.shallow
      ? 'run `git fetch --unshallow` (CI: actions/checkout with fetch-depth: 0), or clone without --depth'
      : 'clone the registry again without --filter (CI: actions/checkout without filter)';
    throw new ModelgateError(
      'E_INCOMPLETE_CLONE',
      `gc refused: this clone is ${missing.shallow ? 'shallow' : 'partial'}, so manifests in the commits it lacks are unknown and their artifacts would look unreferenced; ${how}`,
      ExitCode.content,
      missing,
    );
  }
  for (const remote of await repo.remotes()) await repo.fetchEveryHead(remote);
  return referencedArtifacts(repo);
}

/**
 * `<model>/<sha256>` of every artifact that any manifest in any commit reachable from any ref
 * (branches, remote-tracking branches, fetched pull request heads, tags) references. Read from git
 * objects, not the work tree: what gc keeps does not depend on what is checked out.
 */
async function referencedArtifacts(repo: GitRepo): Promise<Set<string>> {
  const oids = new Set<string>();
  for await (const batch of repo.reachableObjects()) {
    for (const { oid, path } of batch) if (/(^|\/)models\/[^/]+\/versions\/[^/]+\.ya?ml$/.test(path)) oids.add(oid);
  }
  const blobs = await repo.readBlobs([...oids]);
  const refs = new Set<string>();
  for (const blob of blobs.values()) {
    for (const m of blob.toString('utf8').matchAll(/\/([A-Za-z0-9][A-Za-z0-9._-]*)\/sha256\/([0-9a-f]{64})\//g)) refs.add(`${m[1]}/${m[2]}`);
  }
  return refs;
}

/** One object of the store as gc sees it. */
interface Entry {
  key: string;
  bytes: number;
  modified: Date;
}

/** An incomplete multipart upload, with the bytes its parts hold. */
interface Upload {
  key: string;
  uploadId: string;
  bytes: number;
  modified: Date;
}

/**
 * What the store holds that gc may remove, everything last touched before `cutoff`: staging
 * areas, incomplete multipart uploads, artifacts whose manifest never came (`uncommitted`), and
 * with `unreferenced` every artifact no manifest references. An artifact a manifest in
 * `referenced` names is never garbage, nor one a registration marked after `cutoff` (reused or
 * new bytes of a registration under way), nor a file that an index of such an artifact lists.
 */
export async function findGarbage(
  store: ArtifactStore,
  cutoff: Date,
  referenced: ReadonlySet<string>,
  options: { unreferenced?: boolean } = {},
): Promise<Garbage[]> {
  const { objects, uploads } = await inventory(store);
  const out: Garbage[] = [];
  const stale = (d: Date) => d < cutoff;

  const staging = new Map<string, Garbage>();
  const artifacts = new Map<string, { objects: Entry[]; newest: Date }>();
  const marks = new Map<string, Entry[]>();
  for (const e of objects) {
    let m: RegExpExecArray | null;
    if ((m = MARK.exec(e.key))) {
      const id = `${m[1]}/${m[2]}`;
      marks.set(id, [...(marks.get(id) ?? []), e]);
    } else if ((m = STAGING.exec(e.key))) {
      const key = `${m[1]}/.uploads/${m[2]}/`;
      const g = staging.get(key) ?? { kind: 'staging', key, bytes: 0, modified: e.modified, objects: [] };
      g.bytes += e.bytes;
      if (e.modified > g.modified) g.modified = e.modified;
      g.objects.push(e.key);
      staging.set(key, g);
    } else if ((m = CONTENT.exec(e.key))) {
      const id = `${m[1]}/${m[2]}`;
      const a = artifacts.get(id) ?? { objects: [], newest: e.modified };
      a.objects.push(e);
      if (e.modified > a.newest) a.newest = e.modified;
      artifacts.set(id, a);
    }
  }
  for (const g of staging.values()) if (stale(g.modified)) out.push(g);
  for (const u of uploads) {
    if (stale(u.modified) && (STAGING.test(u.key) || CONTENT.test(u.key)))
      out.push({ kind: 'multipart', key: `${u.key}?uploadId=${u.uploadId}`, bytes: u.bytes, modified: u.modified, objects: [u.key] });
  }

  const newestMark = (id: string) => (marks.get(id) ?? []).reduce<Date | undefined>((n, e) => (n === undefined || e.modified > n ? e.modified : n), undefined);
  const fresh = (id: string) => {
    const a = artifacts.get(id);
    const mark = newestMark(id);
    return (a !== undefined && !stale(a.newest)) || (mark !== undefined && !stale(mark));
  };
  // Kept: what manifests reference, what registrations under way want, and the files their indexes list.
  const kept = new Set(referenced);
  for (const id of artifacts.keys()) if (fresh(id)) kept.add(id);
  await addIndexedFiles(
    store,
    kept,
    objects.map((e) => e.key).filter((key) => INDEXED.test(key)),
  );

  const removed = new Set<string>();
  for (const [id, a] of artifacts) {
    if (kept.has(id)) continue;
    const kind = marks.has(id) ? 'uncommitted' : options.unreferenced ? 'unreferenced' : undefined;
    if (!kind) continue;
    const [model, hex] = id.split('/') as [string, string];
    const bytes = a.objects.reduce((n, e) => n + e.bytes, 0);
    out.push({ kind, key: `${model}/sha256/${hex}/`, bytes, modified: a.newest, objects: a.objects.map((e) => e.key) });
    removed.add(id);
  }
  for (const [id, entries] of marks) {
    if (!(kept.has(id) || removed.has(id) || !artifacts.has(id))) continue;
    for (const e of entries) if (stale(e.modified)) out.push({ kind: 'mark', key: e.key, bytes: e.bytes, modified: e.modified, objects: [e.key] });
  }
  return out;
}

/**
 * Adds to `kept` the files listed by each index among `indexKeys` whose directory is kept: an
 * indexed directory's files live under their own content keys, which no manifest names. An
 * index that cannot be read or does not verify stops gc (nothing removed): what it lists cannot
 * be known, so nothing it might list may go.
 */
async function addIndexedFiles(store: ArtifactStore, kept: Set<string>, indexKeys: readonly string[]): Promise<void> {
  for (const key of indexKeys) {
    const m = INDEXED.exec(key);
    if (!m || !kept.has(`${m[1]}/${m[2]}`)) continue;
    const chunks: Buffer[] = [];
    const hash = createHash('sha256');
    for await (const c of await store.read(key)) {
      hash.update(c as Buffer);
      chunks.push(c as Buffer);
    }
    const sha256 = hash.digest('hex');
    if (sha256 !== m[2]) {
      throw new ModelgateError(
        'E_INDEX',
        `gc stopped: the index ${store.location.uri}/${key} has sha256 ${sha256}, not its directory digest; nothing was removed`,
        ExitCode.content,
      );
    }
    for (const f of parseIndex(Buffer.concat(chunks), `${store.location.uri}/${key}`)) kept.add(`${m[1]}/${f.sha256}`);
  }
}

/** Every object of the store (with its size and time) and every incomplete multipart upload. */
async function inventory(store: ArtifactStore): Promise<{ objects: Entry[]; uploads: Upload[] }> {
  if (store instanceof S3Store) return s3Inventory(store);
  if (store instanceof FileStore) return { objects: await fileInventory(store.location.root), uploads: [] };
  throw new ModelgateError('E_STORE_URI', `gc does not know the store ${store.location.uri}`, ExitCode.content);
}

async function s3Inventory(store: S3Store): Promise<{ objects: Entry[]; uploads: Upload[] }> {
  const Bucket = store.location.bucket;
  const base = store.location.prefix ? `${store.location.prefix}/` : '';
  const objects: Entry[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await store.send(`listing ${store.location.uri}`, () =>
      store.client.send(new ListObjectsV2Command({ Bucket, Prefix: base, ContinuationToken })),
    );
    for (const o of page.Contents ?? []) objects.push({ key: o.Key!.slice(base.length), bytes: o.Size ?? 0, modified: o.LastModified ?? new Date(0) });
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  const uploads: Upload[] = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  do {
    const page = await store.send(`listing the multipart uploads of ${store.location.uri}`, () =>
      store.client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: base, KeyMarker, UploadIdMarker })),
    );
    for (const u of page.Uploads ?? []) {
      // An upload's bytes are its parts'; it is as old as its newest part (one still moving is fresh).
      let bytes = 0;
      let modified = u.Initiated ?? new Date(0);
      let PartNumberMarker: string | undefined;
      do {
        const parts = await store.send(`listing the parts of ${u.Key}`, () =>
          store.client.send(new ListPartsCommand({ Bucket, Key: u.Key!, UploadId: u.UploadId!, PartNumberMarker })),
        );
        for (const p of parts.Parts ?? []) {
          bytes += p.Size ?? 0;
          if (p.LastModified && p.LastModified > modified) modified = p.LastModified;
        }
        PartNumberMarker = parts.IsTruncated ? parts.NextPartNumberMarker : undefined;
      } while (PartNumberMarker);
      uploads.push({ key: u.Key!.slice(base.length), uploadId: u.UploadId!, bytes, modified });
    }
    KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (KeyMarker);
  return { objects, uploads };
}

/**
 * Every file under `root` as a store key, and the folders of staging areas and artifacts as
 * empty entries (an emptied staging folder is garbage too; a folder's time is part of its age).
 */
async function fileInventory(root: string): Promise<Entry[]> {
  let entries;
  try {
    entries = await readdir(root, { recursive: true, withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ModelgateError('E_STORE_UNAVAILABLE', `cannot read the file store ${root}: ${(e as NodeJS.ErrnoException).code}`, ExitCode.service);
  }
  const out: Entry[] = [];
  for (const e of entries) {
    const path = join(e.parentPath, e.name);
    const key = path
      .slice(root.length + 1)
      .split('\\')
      .join('/');
    const folder = e.isDirectory() && /^[^/]+\/(\.uploads\/[^/]+|sha256\/[0-9a-f]{64})$/.test(key);
    if (!e.isFile() && !folder) continue;
    const s = await stat(path).catch(() => undefined);
    if (s) out.push({ key: folder ? `${key}/` : key, bytes: folder ? 0 : s.size, modified: s.mtime });
  }
  return out;
}

/**
 * Removes what `findGarbage` found and returns what it really removed, with the bytes that
 * freed. An artifact a registration marked since it was found (its bytes reused meanwhile) is
 * left alone; so are things already gone. A store that fails or stalls stops gc with its error.
 */
export async function removeGarbage(store: ArtifactStore, items: readonly Garbage[]): Promise<{ removed: Garbage[]; bytes: number }> {
  const removed: Garbage[] = [];
  let bytes = 0;
  const knownMarks = new Set(items.filter((g) => g.kind === 'mark').map((g) => g.key));
  const wanted = new Set<string>();
  for (const g of items) {
    const m = CONTENT.exec(g.key) ?? MARK.exec(g.key);
    const marks = m ? `${REGISTRATION_MARKS}${m[1]}/${m[2]}/` : undefined;
    if (marks && wanted.has(marks)) continue;
    if (marks && (g.kind === 'uncommitted' || g.kind === 'unreferenced')) {
      // A mark written since the listing: a registration wants these bytes now.
      if ((await store.list(marks)).some((k) => !knownMarks.has(k))) {
        wanted.add(marks);
        continue;
      }
    }
    const freed = await removeOne(store, g);
    if (freed === undefined) continue;
    removed.push({ ...g, bytes: freed });
    bytes += freed;
  }
  return { removed, bytes };
}

/** Removes one thing; the bytes that freed, undefined when it was gone already. */
async function removeOne(store: ArtifactStore, g: Garbage): Promise<number | undefined> {
  if (store instanceof S3Store) {
    const Bucket = store.location.bucket;
    const base = store.location.prefix ? `${store.location.prefix}/` : '';
    if (g.kind === 'multipart') {
      const [key, UploadId] = g.key.split('?uploadId=') as [string, string];
      await store.send(`aborting the upload of ${key}`, () => store.client.send(new AbortMultipartUploadCommand({ Bucket, Key: base + key, UploadId })));
      return g.bytes;
    }
    let freed = 0;
    let found = false;
    for (const key of g.objects) {
      const there = await store.stat(key);
      if (!there) continue;
      found = true;
      await store.send(`removing ${key}`, () => store.client.send(new DeleteObjectCommand({ Bucket, Key: base + key })));
      freed += there.size;
    }
    return found ? freed : undefined;
  }
  if (store instanceof FileStore) {
    const path = join(store.location.root, ...g.key.split('/').filter(Boolean));
    const before = await sizeOf(path);
    if (before === undefined) return undefined;
    if (g.kind === 'mark') await store.remove(g.key);
    else await rm(path, { recursive: true, force: true });
    return before;
  }
  return undefined;
}

/** Bytes of the files at `path` (a file or a folder), undefined when nothing is there. */
async function sizeOf(path: string): Promise<number | undefined> {
  const s = await stat(path).catch(() => undefined);
  if (!s) return undefined;
  if (!s.isDirectory()) return s.size;
  let bytes = 0;
  for (const e of await readdir(path, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) bytes += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return bytes;
}
