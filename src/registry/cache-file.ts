import { createHmac, randomBytes, type Hmac } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
  type BigIntStats,
} from 'node:fs';
import { join } from 'node:path';

/**
 * What the local caches (the catalog in `.git/modelgate/`, a remote registry's cache folder)
 * share: a key that seals them, kept in its own file beside them, and reads that take regular
 * files only. A cache whose seal does not verify under the key, or that is anything but a
 * regular file (a FIFO would block the read, a symlink would read elsewhere), is ignored and
 * rebuilt: a damaged or planted cache costs time, never a wrong answer or a hang.
 */

/** The key's file name, in the folder of the caches it seals. */
const CACHE_KEY_FILE = 'cache.key';
const KEY_BYTES = 32;

/** Opens `path` for reading when it is a regular file (never following a symlink, never waiting on a FIFO); undefined otherwise. */
export function openRegularFile(path: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (fstatSync(fd).isFile()) return fd;
  } catch {
    // unreadable: as if absent
  }
  closeSync(fd);
  return undefined;
}

/** The bytes of `path` when it is a regular file (see openRegularFile), else undefined. */
export function readRegularFile(path: string): Buffer | undefined {
  const fd = openRegularFile(path);
  if (fd === undefined) return undefined;
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The key sealing the caches in `dir`: 32 random bytes in `dir/cache.key` (mode 0600). Made when
 * missing or not a key (another size, not a regular file): written whole to a private file
 * created with O_EXCL, then linked into place, so a reader never sees half a key and two
 * processes agree on the one that got there first. A new key unseals every cache made under the
 * old one, which is then rebuilt. Undefined when no key can be read or made (a read-only folder):
 * the caller then runs without its cache.
 */
export function cacheKey(dir: string): Buffer | undefined {
  const path = join(dir, CACHE_KEY_FILE);
  const found = readRegularFile(path);
  if (found?.length === KEY_BYTES) return found;
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dir, { recursive: true });
    // Something that is not a key is replaced (a folder there makes this throw: no cache then).
    if (lstatSync(path, { throwIfNoEntry: false })) rmSync(path, { force: true });
    const key = randomBytes(KEY_BYTES);
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, key);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
      return key;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
      const theirs = readRegularFile(path); // another process made one first: theirs is the key
      return theirs?.length === KEY_BYTES ? theirs : undefined;
    }
  } catch {
    return undefined;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** A seal under `key`: HMAC-SHA256, so that only a holder of the key can make one that verifies. */
export function sealer(key: Buffer): Hmac {
  return createHmac('sha256', key);
}

/**
 * How long after its last change a file's stat is taken to tell any later change: file times
 * come from a coarse clock (a few ms on Linux, seconds on some file systems), so an edit made
 * within that tick may keep size, mtime and ctime. git's racy-clean rule, with a wide margin.
 */
const RACY_MS = 2000;

/** What changes whenever a file's bytes are replaced or edited in place (ctime cannot be set back). */
function statKey(s: BigIntStats): string {
  return `${s.dev} ${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}`;
}

/** Whether `a` and `b` are stats of one file, not written between them (what a stamp compares). */
export function sameStat(a: BigIntStats, b: BigIntStats): boolean {
  return statKey(a) === statKey(b);
}

/** `label`, the stats, and a seal of both under `key`: without the key, no stamp names a planted file. */
function stampText(label: string, key: Buffer, stats: BigIntStats[]): string {
  const stated = `${label} ${stats.map(statKey).join(' ')}`;
  return `${stated} ${sealer(key).update(stated).digest('hex')}\n`;
}

/**
 * Whether the stamp file `stamp` says that files with exactly these stats (same inode, size,
 * mtime and ctime) were checked: such files were not written since, so the check still holds.
 * Any write, rename or truncation changes a stat and brings the full check back.
 */
export function stampHolds(stamp: string, label: string, key: Buffer, stats: BigIntStats[]): boolean {
  return readRegularFile(stamp)?.toString('latin1') === stampText(label, key, stats);
}

/**
 * Records in `stamp` that files with these stats were checked, once the last change of each is
 * RACY_MS old (until then a later edit could keep the stat, and the next call checks in full
 * again). Best effort: a read-only folder only costs speed.
 */
export function writeStamp(stamp: string, label: string, key: Buffer, stats: BigIntStats[]): void {
  if (stats.some((s) => Date.now() - Number(s.ctimeNs / 1_000_000n) < RACY_MS)) return;
  const tmp = `${stamp}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, stampText(label, key, stats), { flag: 'wx' });
    renameSync(tmp, stamp);
  } catch {
    rmSync(tmp, { force: true });
  }
}
