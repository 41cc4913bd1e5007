import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, ModelgateError } from '../errors.js';
import { LOAD_LIMITS } from '../manifest/limits.js';

/**
 * The bytes of a registry file in the work tree, undefined when it does not exist. Reads at most
 * one byte past the manifest size limit, so the loader reports E_TOO_LARGE without a huge file
 * (or a link to /dev/zero) ever being read whole; a folder, FIFO or device where a manifest
 * belongs is E_NOT_A_FILE (exit 1), never a hang.
 */
export function readRegistryFileSync(root: string, path: string): Buffer | undefined {
  let fd: number;
  try {
    // Non-blocking, so that opening a FIFO does not wait for a writer.
    fd = openSync(join(root, path), constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      const what = stat.isDirectory() ? 'a folder' : stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : 'a device';
      throw new ModelgateError('E_NOT_A_FILE', `${path}: is ${what}, not a file; registry manifests are plain files`, ExitCode.content, { file: path });
    }
    // The recorded size is a first guess only (files under /proc claim 0 bytes): grow until EOF or the cap.
    const cap = LOAD_LIMITS.maxBytes + 1;
    let buffer = Buffer.allocUnsafe(Math.min(stat.size + 1, cap));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length === cap) break;
        const grown = Buffer.allocUnsafe(Math.min(buffer.length * 4, cap));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** An fs error saying the file, or a folder on its path, does not exist. */
export function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
