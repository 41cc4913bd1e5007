import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ExitCode, ModelgateError } from '../errors.js';
import { firstInvalidUtf8 } from '../manifest/exact.js';

/** Bytes a metrics, parameters or signature file may have: what pipelines write is a few KiB, and it all ends up in a manifest. */
export const INPUT_FILE_MAX_BYTES = 1024 * 1024;

/**
 * A file named on the command line (`--metrics`, `--params`, `--signature`) as text, read only
 * when its size is within INPUT_FILE_MAX_BYTES (checked before a byte is read) and decoded only
 * when it is UTF-8: bytes that are not are refused with their line, never replaced. `shown` is the
 * path as the user wrote it, for messages. A file that cannot be opened throws the fs error.
 */
export function readInputText(path: string, shown: string): string {
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    const tooLarge = () =>
      new ModelgateError(
        'E_TOO_LARGE',
        `${shown}: more than ${INPUT_FILE_MAX_BYTES} bytes, the limit for a metrics, parameters or signature file; this looks like the wrong file`,
        ExitCode.content,
        { file: shown },
      );
    if (size > INPUT_FILE_MAX_BYTES) throw tooLarge();
    // One byte more than allowed: a file that grew since fstat is refused, not cut.
    const buffer = Buffer.alloc(INPUT_FILE_MAX_BYTES + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > INPUT_FILE_MAX_BYTES) throw tooLarge();
    const bytes = buffer.subarray(0, length);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      const at = firstInvalidUtf8(bytes);
      let line = 1;
      for (let i = bytes.indexOf(0x0a); i >= 0 && i < at; i = bytes.indexOf(0x0a, i + 1)) line++;
      throw new ModelgateError('E_ENCODING', `${shown}:${line}: bytes that are not UTF-8; save the file as UTF-8`, ExitCode.content, { file: shown, line });
    }
  } finally {
    closeSync(fd);
  }
}
