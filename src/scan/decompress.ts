/**
 * joblib's compressors (joblib/compressor.py), told apart as `_detect_compressor` does, by the
 * first bytes of the file, and undone as a stream of the bytes joblib's unpickler reads. zlib and
 * gzip come from node:zlib; bz2 from `unbzip2-stream` and xz from `xz-decompress` (both stream:
 * pure JavaScript and WebAssembly, nothing native to build); lzma's "alone" format (`lzma`) and
 * lz4 frames (`lz4js`) are decoded in memory, up to MAX_IN_MEMORY bytes.
 */
import { PassThrough, Readable, type Transform } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import bz2 from 'unbzip2-stream';
import { XzReadableStream } from 'xz-decompress';
import lzmaDecoder from 'lzma/src/lzma-d.js';
import { decompress as lz4Decompress } from 'lz4js';

export type Compressor = 'zlib' | 'gzip' | 'bz2' | 'lzma' | 'xz' | 'lz4' | 'compat';

/** Largest compressed input the in-memory decoders (lzma, lz4) take. */
const MAX_IN_MEMORY = 256 * 1024 * 1024;

/** The compressor joblib.load would pick for a file starting with `head` (its `_COMPRESSORS` order). */
export function joblibCompressor(head: Uint8Array): Compressor | undefined {
  const starts = (...sig: number[]) => sig.every((x, i) => head[i] === x);
  if (starts(0x5a, 0x46)) return 'compat'; // 'ZF': joblib < 0.10
  if (starts(0x78)) return 'zlib';
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x42, 0x5a)) return 'bz2';
  if (starts(0x5d, 0x00)) return 'lzma';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a)) return 'xz';
  if (starts(0x04, 0x22, 0x4d, 0x18)) return 'lz4';
  return undefined;
}

/** The decompressed bytes of `input`; a stream that does not decode throws where it stops decoding. */
export async function* decompressed(kind: Exclude<Compressor, 'compat'>, input: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  if (kind === 'lzma' || kind === 'lz4') {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const c of input) {
      size += c.length;
      if (size > MAX_IN_MEMORY) throw new RangeError(`${kind}-compressed file larger than ${MAX_IN_MEMORY} bytes`);
      parts.push(c);
    }
    const all = Buffer.concat(parts);
    if (kind === 'lz4') {
      yield Buffer.from(lz4Decompress(all));
      return;
    }
    const out = await new Promise<Buffer>((resolve, reject) =>
      lzmaDecoder.LZMA.decompress(all, (result, error) => {
        if (error || result === null) reject(error instanceof Error ? error : new Error(typeof error === 'string' ? error : 'lzma: no output'));
        else resolve(typeof result === 'string' ? Buffer.from(result, 'utf8') : Buffer.from(Int8Array.from(result).buffer));
      }),
    );
    yield out;
    return;
  }
  if (kind === 'xz') {
    const web = new XzReadableStream(Readable.toWeb(Readable.from(input)) as ReadableStream<Uint8Array>);
    for await (const c of web as unknown as AsyncIterable<Uint8Array>) yield Buffer.from(c.buffer, c.byteOffset, c.length);
    return;
  }
  // unbzip2-stream is a classic (`through`) stream: a PassThrough makes it async-iterable
  const transform: Transform = kind === 'zlib' ? createInflate() : kind === 'gzip' ? createGunzip() : (bz2() as unknown as Transform);
  const out = kind === 'bz2' ? new PassThrough() : transform;
  const source = Readable.from(input);
  source.on('error', (e) => out.destroy(e));
  if (out !== transform) transform.on('error', (e: Error) => out.destroy(e));
  source.pipe(transform);
  if (out !== transform) transform.pipe(out);
  try {
    for await (const c of out as AsyncIterable<Buffer | Uint8Array>) yield Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.length);
  } finally {
    source.unpipe(transform);
    source.destroy();
  }
}
