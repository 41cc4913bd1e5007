import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ExitCode, ModelgateError } from '../errors.js';

/** One small file of an indexed directory, as the file store's batch writer takes it. */
export interface SmallFile {
  absolute: string;
  /** The base name it is stored under: `<model>/sha256/<its sha256>/<name>`. */
  name: string;
}

/** What became of one small file: its digest and size as read, and whether this run wrote it. */
export interface SmallFileStored {
  sha256: string;
  size: number;
  outcome: 'created' | 'reused';
}

/** Where a batch writes: the store's root, the model's objects and this registration's staging folder (which exists). */
export interface SmallFileTarget {
  root: string;
  model: string;
  staging: string;
}

/** Files sent to a worker in one message: enough to make the message cost vanish, few enough to spread the work. */
const BATCH = 64;

/**
 * The per-file work, run in worker threads with blocking calls: a 10 KB file costs a handful of
 * system calls, and a round trip through the thread pool and the main thread for each (what the
 * promise API does) costs more than the call. Each file is read once; the bytes hashed are the
 * bytes written. Its content folder `<model>/sha256/<hex>/` made by this call means no object of
 * that digest exists: the bytes go to a staging file and are renamed into it. A folder that
 * existed is looked into: the same bytes there are reused (compared byte for byte, the file
 * store keeps no digest beside its objects), different ones are a conflict, none are linked in
 * from the staging file (`link` never replaces). No fsync per file: the caller syncs the file
 * system once before anything names the objects. Plain JavaScript, as `eval` workers take it.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const { join } = require('node:path');
let seq = 0;
function failure(phase, e, file) { return { error: { phase, code: e && e.code ? e.code : String(e && e.message), file } }; }
function writeAll(fd, bytes) { for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done); }
function putOne(t, f) {
  let bytes;
  try { bytes = fs.readFileSync(f.absolute); } catch (e) { return failure('read', e, f.absolute); }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const size = bytes.length;
  const folder = join(t.root, t.model, 'sha256', sha256);
  const target = join(folder, f.name);
  const held = () => {
    let st;
    try { st = fs.statSync(target); } catch (e) { if (e.code === 'ENOENT') return undefined; throw e; }
    if (st.isFile() && st.size === size && fs.readFileSync(target).equals(bytes)) return { sha256, size, outcome: 'reused' };
    return { sha256, size, conflict: st.size };
  };
  let tmp;
  try {
    let fresh = true;
    try { fs.mkdirSync(folder); } catch (e) {
      if (e.code === 'ENOENT') fs.mkdirSync(folder, { recursive: true });
      else if (e.code === 'EEXIST') fresh = false;
      else throw e;
    }
    if (!fresh) { const found = held(); if (found) return found; }
    tmp = join(t.staging, workerData + '-' + ++seq + '.partial');
    const fd = fs.openSync(tmp, 'wx', 0o444);
    try { writeAll(fd, bytes); } finally { fs.closeSync(fd); }
    if (fresh) { fs.renameSync(tmp, target); tmp = undefined; return { sha256, size, outcome: 'created' }; }
    try { fs.linkSync(tmp, target); return { sha256, size, outcome: 'created' }; }
    catch (e) { if (e.code !== 'EEXIST') throw e; return held() || { sha256, size, conflict: undefined }; }
  } catch (e) {
    return failure('write', e, target);
  } finally {
    if (tmp !== undefined) try { fs.unlinkSync(tmp); } catch {}
  }
}
parentPort.on('message', ({ id, target, files }) => {
  const out = [];
  for (const f of files) {
    const r = putOne(target, f);
    out.push(r);
    if (r.error || 'conflict' in r) break;
  }
  parentPort.postMessage({ id, out });
});
`;

type Reply = {
  sha256: string;
  size: number;
  outcome?: 'created' | 'reused';
  conflict?: number;
  error?: { phase: 'read' | 'write'; code: string; file: string };
};

/**
 * Stores `files` in the file store under their own content keys (an indexed directory's small
 * files, SPEC v2 §5), a few worker threads at a time; results in the files' order. `onBytes` is
 * called as batches finish. The first failure (a source that cannot be read, a write that fails,
 * a key holding other bytes) rejects after the batches in flight came back; objects already
 * renamed into place stay (complete, content-addressed, for gc when nothing names them).
 */
export async function putSmallFiles(
  files: readonly SmallFile[],
  target: SmallFileTarget,
  options: {
    onBytes?: (n: number) => void;
    cancelled?: () => boolean;
    /** The error for a key that holds other bytes (E_ARTIFACT_CONFLICT). */
    conflict: (sha256: string, name: string, size: number, existingSize: number | undefined) => Error;
  },
): Promise<SmallFileStored[]> {
  const out = new Array<SmallFileStored>(files.length);
  const workers = Math.max(2, Math.min(4, availableParallelism()));
  const pool = Array.from({ length: Math.min(workers, Math.ceil(files.length / BATCH)) }, (_, i) => new Worker(WORKER, { eval: true, workerData: i }));
  let next = 0;
  let failure: Error | undefined;
  const run = (worker: Worker) =>
    new Promise<void>((resolve, reject) => {
      const send = () => {
        if (failure !== undefined || next >= files.length) return resolve();
        if (options.cancelled?.()) {
          failure = new ModelgateError('E_CANCELLED', 'the registration was cancelled', ExitCode.service);
          return resolve();
        }
        const start = next;
        next = Math.min(files.length, next + BATCH);
        worker.postMessage({ id: start, target, files: files.slice(start, next) });
      };
      worker.on('message', ({ id, out: replies }: { id: number; out: Reply[] }) => {
        let bytes = 0;
        for (const [i, r] of replies.entries()) {
          if (r.error) {
            failure ??=
              r.error.phase === 'read'
                ? new ModelgateError('E_SOURCE_CHANGED', `${r.error.file} could not be read while it was being registered (${r.error.code})`, ExitCode.content)
                : new ModelgateError('E_STORE_WRITE', `storing ${r.error.file} in the file store failed: ${r.error.code}`, ExitCode.service);
            break;
          }
          if (!r.outcome) {
            failure ??= options.conflict(r.sha256, files[id + i]!.name, r.size, r.conflict);
            break;
          }
          out[id + i] = { sha256: r.sha256, size: r.size, outcome: r.outcome };
          bytes += r.size;
        }
        options.onBytes?.(bytes);
        send();
      });
      worker.on('error', reject);
      send();
    });
  try {
    await Promise.all(pool.map(run));
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  if (failure !== undefined) throw failure;
  return out;
}
