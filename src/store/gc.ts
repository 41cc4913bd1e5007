import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortMultipartUploadCommand, DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { GitRepo } from '../git/repo.js';
import { FileStore } from './file-store.js';
import { S3Store } from './s3-store.js';
import type { ArtifactStore } from './store.js';

/** One thing `gc` removes (or would remove with --dry-run). */
export interface Garbage {
  kind: 'staging' | 'multipart' | 'unreferenced';
  /** Store-relative key (a folder for the file store's staging areas). */
  key: string;
  bytes: number;
  modified: Date;
}

const STAGING = /^[^/]+\/\.uploads\//;
const CONTENT = /^([^/]+)\/sha256\/([0-9a-f]{64})\//;

/**
 * `<model>/<sha256>` of every artifact that any manifest in any commit reachable from any ref
 * (branches, remote-tracking branches, tags) references. Read from git objects, not the work
 * tree: what gc keeps does not depend on what is checked out.
 */
export async function referencedArtifacts(repo: GitRepo): Promise<Set<string>> {
  const listing = await repo.out(['rev-list', '--all', '--objects']);
  const oids = new Set<string>();
  for (const line of listing.split('\n')) {
    const space = line.indexOf(' ');
    if (space < 0) continue;
    const path = line.slice(space + 1);
    if (/(^|\/)models\/[^/]+\/versions\/[^/]+\.ya?ml$/.test(path)) oids.add(line.slice(0, space));
  }
  const blobs = await repo.readBlobs([...oids]);
  const refs = new Set<string>();
  for (const blob of blobs.values()) {
    for (const m of blob.toString('utf8').matchAll(/\/([A-Za-z0-9][A-Za-z0-9._-]*)\/sha256\/([0-9a-f]{64})\//g)) refs.add(`${m[1]}/${m[2]}`);
  }
  return refs;
}

/**
 * What failed or cancelled uploads left (staging objects, incomplete multipart uploads) and,
 * with `referenced`, content objects no manifest references, all last touched before `cutoff`.
 */
export async function findGarbage(store: ArtifactStore, cutoff: Date, referenced?: ReadonlySet<string>): Promise<Garbage[]> {
  const out: Garbage[] = [];
  const unreferenced = (key: string) => {
    const m = CONTENT.exec(key);
    return referenced !== undefined && m !== null && !referenced.has(`${m[1]}/${m[2]}`);
  };
  if (store instanceof S3Store) {
    const Bucket = store.location.bucket;
    const base = store.location.prefix ? `${store.location.prefix}/` : '';
    let ContinuationToken: string | undefined;
    do {
      const page = await store.client.send(new ListObjectsV2Command({ Bucket, Prefix: base, ContinuationToken }));
      for (const o of page.Contents ?? []) {
        const key = o.Key!.slice(base.length);
        const modified = o.LastModified ?? new Date(0);
        if (modified >= cutoff) continue;
        if (STAGING.test(key)) out.push({ kind: 'staging', key, bytes: o.Size ?? 0, modified });
        else if (unreferenced(key)) out.push({ kind: 'unreferenced', key, bytes: o.Size ?? 0, modified });
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await store.client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: base, KeyMarker, UploadIdMarker }));
      for (const u of page.Uploads ?? []) {
        const key = u.Key!.slice(base.length);
        const modified = u.Initiated ?? new Date(0);
        if (modified < cutoff && (STAGING.test(key) || CONTENT.test(key)))
          out.push({ kind: 'multipart', key: `${key}?uploadId=${u.UploadId}`, bytes: 0, modified });
      }
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return out;
  }
  if (store instanceof FileStore) {
    const root = store.location.root;
    for (const model of await readdir(root).catch(() => [] as string[])) {
      for (const id of await readdir(join(root, model, '.uploads')).catch(() => [] as string[])) {
        const dir = join(root, model, '.uploads', id);
        const { bytes, newest } = await treeSize(dir);
        if (newest < cutoff) out.push({ kind: 'staging', key: `${model}/.uploads/${id}/`, bytes, modified: newest });
      }
      if (referenced === undefined) continue;
      for (const hex of await readdir(join(root, model, 'sha256')).catch(() => [] as string[])) {
        if (!/^[0-9a-f]{64}$/.test(hex) || referenced.has(`${model}/${hex}`)) continue;
        const { bytes, newest } = await treeSize(join(root, model, 'sha256', hex));
        if (newest < cutoff) out.push({ kind: 'unreferenced', key: `${model}/sha256/${hex}/`, bytes, modified: newest });
      }
    }
  }
  return out;
}

async function treeSize(dir: string): Promise<{ bytes: number; newest: Date }> {
  let bytes = 0;
  let newest = (await stat(dir)).mtime;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const s = await stat(join(e.parentPath, e.name));
    bytes += s.size;
    if (s.mtime > newest) newest = s.mtime;
  }
  return { bytes, newest };
}

/** Removes what `findGarbage` found. */
export async function removeGarbage(store: ArtifactStore, items: readonly Garbage[]): Promise<void> {
  for (const g of items) {
    if (store instanceof S3Store) {
      const Bucket = store.location.bucket;
      const base = store.location.prefix ? `${store.location.prefix}/` : '';
      if (g.kind === 'multipart') {
        const [key, id] = g.key.split('?uploadId=') as [string, string];
        await store.client.send(new AbortMultipartUploadCommand({ Bucket, Key: base + key, UploadId: id }));
      } else {
        await store.client.send(new DeleteObjectCommand({ Bucket, Key: base + g.key }));
      }
    } else if (store instanceof FileStore) {
      await rm(join(store.location.root, ...g.key.split('/').filter(Boolean)), { recursive: true, force: true });
    }
  }
}
