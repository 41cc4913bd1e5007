/**
 * Chooses how to read an artifact file for `scan: pickle` (SPEC v2 §8) from its first bytes, never
 * from its name alone: a PyTorch zip archive (every `.pkl` member, stored or deflated, with the
 * central directory checked against the local headers so a member cannot hide under another
 * name), a zlib- or gzip-compressed joblib file (inflated on the fly), or a pickle stream. Other
 * compressions (bz2, xz, lz4, the pre-0.10 joblib format) are refused as unscannable: the scan
 * fails closed. Pure: bytes in, findings out (node:zlib only inflates).
 */
import { createGunzip, createInflate, inflateRawSync } from 'node:zlib';
import { PickleScanner, type PickleFinding } from './pickle.js';

export interface ArtifactScanOptions {
  /** The manifest's `format`: `joblib` reads joblib's raw arrays; `pickle` and `pt` do not. */
  format?: string;
  allowGlobals?: readonly string[];
}

/** Longest deflated `.pkl` member the scanner inflates (a model's pickle is small; its tensors are separate members). */
const MAX_INFLATED_MEMBER = 512 * 1024 * 1024;

/** Pulls exact byte counts out of an async iterable of chunks. */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private it: AsyncIterator<Uint8Array>;
  offset = 0;
  done = false;
  constructor(src: AsyncIterable<Uint8Array>) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async fill(): Promise<boolean> {
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const c = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    return true;
  }
  /** Up to `n` bytes without consuming them (fewer at the end of the stream). */
  async peek(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.fill()));
    return this.buf.subarray(0, Math.min(n, this.buf.length));
  }
  async read(n: number): Promise<Buffer | undefined> {
    const b = await this.peek(n);
    if (b.length < n) return undefined;
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return b;
  }
  /** Hands the next `n` bytes to `sink` chunk by chunk; false if the stream ends first. */
  async forward(n: number, sink?: (c: Buffer) => void): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) return false;
      const take = Math.min(left, this.buf.length);
      sink?.(this.buf.subarray(0, take));
      this.buf = this.buf.subarray(take);
      this.offset += take;
      left -= take;
    }
    return true;
  }
  async *rest(): AsyncIterable<Buffer> {
    if (this.buf.length) {
      const b = this.buf;
      this.buf = Buffer.alloc(0);
      this.offset += b.length;
      yield b;
    }
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
      this.offset += r.value.length;
      yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
    }
  }
}

const startsWith = (b: Buffer, sig: number[]) => sig.every((x, i) => b[i] === x);

/**
 * Scans one file of an artifact: `name` is reported in findings. Returns every finding; an empty
 * list means every global the file's pickles reference is allowed.
 */
export async function scanArtifactFile(name: string, stream: AsyncIterable<Uint8Array>, opts: ArtifactScanOptions = {}): Promise<PickleFinding[]> {
  const r = new ChunkReader(stream);
  const head = await r.peek(8);
  const refuse = (message: string): PickleFinding[] => [{ file: name, offset: 0, kind: 'unscannable', message }];
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return scanZip(name, r, opts);
  const joblib = opts.format === 'joblib' || /\.joblib$/i.test(name);
  if (head[0] === 0x78 && head.length > 1 && ((head[0] << 8) | head[1]!) % 31 === 0) return scanInflated(name, r.rest(), createInflate(), joblib, opts);
  if (startsWith(head, [0x1f, 0x8b])) return scanInflated(name, r.rest(), createGunzip(), joblib, opts);
  if (startsWith(head, [0x42, 0x5a, 0x68]))
    return refuse('bz2-compressed file: the scanner cannot read it (store joblib files with zlib/gzip compression or none)');
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a]) || startsWith(head, [0x5d, 0x00, 0x00]))
    return refuse('xz/lzma-compressed file: the scanner cannot read it');
  if (startsWith(head, [0x04, 0x22, 0x4d, 0x18])) return refuse('lz4-compressed file: the scanner cannot read it');
  if (startsWith(head, [0x5a, 0x46])) return refuse('pre-0.10 joblib format (ZF): the scanner cannot read it');
  const s = new PickleScanner({ file: name, joblib, allowGlobals: opts.allowGlobals });
  for await (const c of r.rest()) s.push(c);
  return s.end();
}

async function scanInflated(
  name: string,
  src: AsyncIterable<Buffer>,
  inflater: NodeJS.ReadWriteStream,
  joblib: boolean,
  opts: ArtifactScanOptions,
): Promise<PickleFinding[]> {
  // Offsets in findings are offsets in the inflated stream.
  const s = new PickleScanner({ file: `${name} (inflated)`, joblib, allowGlobals: opts.allowGlobals });
  const out = (async () => {
    for await (const c of inflater as AsyncIterable<Buffer>) s.push(c);
  })();
  try {
    for await (const c of src) {
      if (!inflater.write(c)) await new Promise((res) => inflater.once('drain', res));
    }
    inflater.end();
    await out;
  } catch (e) {
    return [...s.findings, { file: name, offset: 0, kind: 'unscannable', message: `compressed stream does not inflate: ${(e as Error).message}` }];
  }
  return s.end();
}

interface LocalEntry {
  name: string;
  offset: number;
  csize: number;
}

async function scanZip(name: string, r: ChunkReader, opts: ArtifactScanOptions): Promise<PickleFinding[]> {
  const findings: PickleFinding[] = [];
  const locals = new Map<number, LocalEntry>();
  const refuse = (offset: number, message: string) => {
    findings.push({ file: name, offset, kind: 'unscannable', message });
    return findings;
  };
  let central = 0;
  for (;;) {
    const at = r.offset;
    const sigBuf = await r.peek(4);
    if (sigBuf.length < 4) return refuse(at, 'zip archive ends without its central directory');
    const sig = sigBuf.readUInt32LE(0);
    if (sig === 0x04034b50) {
      const h = await r.read(30);
      if (!h) return refuse(at, 'truncated zip local header');
      const flags = h.readUInt16LE(6);
      const method = h.readUInt16LE(8);
      let csize = h.readUInt32LE(18);
      const nameLen = h.readUInt16LE(26);
      const extraLen = h.readUInt16LE(28);
      const nameExtra = await r.read(nameLen + extraLen);
      if (!nameExtra) return refuse(at, 'truncated zip local header');
      const member = nameExtra.toString('utf8', 0, nameLen);
      if (csize === 0xffffffff) csize = zip64Size(nameExtra.subarray(nameLen), h.readUInt32LE(22) === 0xffffffff) ?? -1;
      if (csize < 0) return refuse(at, `zip member ${member}: zip64 size missing`);
      if (flags & 0x08) return refuse(at, `zip member ${member}: sizes in a trailing data descriptor, which the streaming scanner cannot follow`);
      if (flags & 0x01) return refuse(at, `zip member ${member} is encrypted`);
      locals.set(at, { name: member, offset: at, csize });
      const file = `${name}!${member}`;
      if (!/\.pkl$/i.test(member)) {
        if (!(await r.forward(csize))) return refuse(at, `zip member ${member} is truncated`);
        continue;
      }
      const s = new PickleScanner({ file, allowGlobals: opts.allowGlobals });
      if (method === 0) {
        if (!(await r.forward(csize, (c) => s.push(c)))) return refuse(at, `zip member ${member} is truncated`);
      } else if (method === 8) {
        if (csize > MAX_INFLATED_MEMBER) return refuse(at, `zip member ${member}: deflated pickle too large to scan`);
        const parts: Buffer[] = [];
        if (!(await r.forward(csize, (c) => parts.push(Buffer.from(c))))) return refuse(at, `zip member ${member} is truncated`);
        try {
          s.push(inflateRawSync(Buffer.concat(parts), { maxOutputLength: MAX_INFLATED_MEMBER }));
        } catch (e) {
          findings.push({ file, offset: 0, kind: 'unscannable', message: `deflated member does not inflate: ${(e as Error).message}` });
          continue;
        }
      } else {
        return refuse(at, `zip member ${member}: compression method ${method} is not supported`);
      }
      findings.push(...s.end());
      continue;
    }
    if (sig === 0x02014b50) {
      const h = await r.read(46);
      if (!h) return refuse(at, 'truncated zip central directory');
      const nameLen = h.readUInt16LE(28);
      const extraLen = h.readUInt16LE(30);
      const commentLen = h.readUInt16LE(32);
      const rest = await r.read(nameLen + extraLen + commentLen);
      if (!rest) return refuse(at, 'truncated zip central directory');
      const member = rest.toString('utf8', 0, nameLen);
      let localOffset = h.readUInt32LE(42);
      if (localOffset === 0xffffffff) localOffset = zip64Offset(rest.subarray(nameLen, nameLen + extraLen), h) ?? -1;
      const local = locals.get(localOffset);
      // Readers (torch's miniz, Python's zipfile) trust the central directory: it must name what we scanned.
      if (!local || local.name !== member)
        return refuse(at, `zip central directory names ${member} at offset ${localOffset}, which is not the member the scanner read there`);
      central += 1;
      continue;
    }
    if (sig === 0x06064b50 || sig === 0x07064b50 || sig === 0x06054b50) {
      if (central !== locals.size) return refuse(at, `zip central directory lists ${central} members, the archive holds ${locals.size}`);
      for await (const _ of r.rest()); // EOCD records and the comment: nothing executable
      return findings;
    }
    return refuse(at, `unexpected bytes in the zip archive (signature 0x${sig.toString(16)})`);
  }
}

/** Compressed size from a local header's zip64 extra field. */
function zip64Size(extra: Buffer, hasUncompressed: boolean): number | undefined {
  for (let i = 0; i + 4 <= extra.length;) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (id === 0x0001) {
      const at = i + 4 + (hasUncompressed ? 8 : 0);
      return at + 8 <= i + 4 + len ? Number(extra.readBigUInt64LE(at)) : undefined;
    }
    i += 4 + len;
  }
  return undefined;
}

/** Local header offset from a central entry's zip64 extra field (after the sizes that overflowed). */
function zip64Offset(extra: Buffer, h: Buffer): number | undefined {
  for (let i = 0; i + 4 <= extra.length;) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (id === 0x0001) {
      let at = i + 4;
      if (h.readUInt32LE(24) === 0xffffffff) at += 8;
      if (h.readUInt32LE(20) === 0xffffffff) at += 8;
      return at + 8 <= i + 4 + len ? Number(extra.readBigUInt64LE(at)) : undefined;
    }
    i += 4 + len;
  }
  return undefined;
}
