/**
 * Reads an artifact file as the loaders would (SPEC v3 §14), whatever its name: a zip archive as
 * `torch.load`, `numpy.load` and `zipfile` read it (the central directory of the last
 * end-of-central-directory record, every member by content), a tar as torch's legacy loader, a
 * `.npy` as `numpy.load` (an object array is a pickle), a file joblib would decompress as joblib
 * does, and any other bytes as `pickle.load`, `joblib.load` and torch's legacy loader read them.
 *
 * A file the loaders read by that name or place (`loaded`) reports every finding; a member that
 * no loader reads as a pickle (a tensor's storage in a torch zip) is sniffed: it reports findings
 * only if its bytes really are a pickle. Random access (`ByteSource`) lets the scan skip what is
 * no pickle (tensor storages, joblib arrays) without reading it.
 */
import { open } from 'node:fs/promises';
import { createInflateRaw } from 'node:zlib';
import { Readable } from 'node:stream';
import { decompressed, joblibCompressor } from './decompress.js';
import type { FileLoad } from './mlmodel.js';
import { PickleScanner, type PickleFinding, type PickleValue } from './pickle.js';

/** Random access to the bytes of one file. */
export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes at `offset` (fewer only at the end). */
  read(offset: number, length: number): Promise<Buffer>;
}

export interface ArtifactScanOptions {
  /** The manifest's `format`: checked against the bytes. */
  format?: string;
  allowGlobals?: readonly string[];
  /** How a loader an MLflow MLmodel names reads this file (src/scan/mlmodel.ts). */
  loadedAs?: FileLoad;
}

/** Formats whose files are no pickle: a pickle declared as one of them is refused. */
const NOT_PICKLE_FORMATS = new Set(['onnx', 'safetensors', 'savedmodel']);
/** Largest zip member that is inflated into memory to be read as an archive itself. */
const MAX_NESTED_ARCHIVE = 256 * 1024 * 1024;
const MAX_DEPTH = 3;
const CHUNK = 1 << 20;

/** A ByteSource over bytes in memory. */
export function bufferSource(bytes: Uint8Array): ByteSource {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return { size: b.length, read: async (offset, length) => b.subarray(offset, Math.min(b.length, offset + length)) };
}

/** A ByteSource over a file; `close` it when done. */
export async function openFileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const fh = await open(path, 'r');
  const { size } = await fh.stat();
  return {
    size,
    async read(offset, length) {
      const n = Math.max(0, Math.min(length, size - offset));
      const buf = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const { bytesRead } = await fh.read(buf, got, n - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    },
    close: () => fh.close(),
  };
}

/** Bytes `start`..`start+size` of `src` as a source of their own. */
function slice(src: ByteSource, start: number, size: number): ByteSource {
  return { size, read: (offset, length) => src.read(start + offset, Math.max(0, Math.min(length, size - offset))) };
}

async function* chunksOf(src: ByteSource, from = 0): AsyncIterable<Buffer> {
  for (let at = from; at < src.size;) {
    const c = await src.read(at, CHUNK);
    if (!c.length) return;
    at += c.length;
    yield c;
  }
}

/** What one file read as: its findings, and whether some reading found a whole pickle (for the format check). */
interface ContentScan {
  findings: PickleFinding[];
  pickle: boolean;
}

interface Ctx {
  allowGlobals: readonly string[];
  depth: number;
}

/**
 * Scans one file of an artifact; `name` is reported in findings (members of an archive as
 * `name!member`). An empty list means no loader reading these bytes imports anything outside the
 * allowed globals.
 */
export async function scanArtifactFile(name: string, src: ByteSource, opts: ArtifactScanOptions = {}): Promise<PickleFinding[]> {
  const scan = await scanContent(name, src, 'loaded', ctx(opts));
  const findings = scan.findings;
  const format = opts.format;
  if (format && NOT_PICKLE_FORMATS.has(format) && scan.pickle)
    findings.push({ file: name, offset: 0, kind: 'format', message: `declared format ${format}, but the bytes are a pickle` });
  const load = opts.loadedAs;
  if (load?.as === 'pickle') findings.push(...(await scanAsPickle(name, src, load, ctx(opts))));
  else if (load?.as === 'no-pickle' && scan.pickle) findings.push({ file: name, offset: 0, kind: 'format', message: `${load.by}, but the bytes are a pickle` });
  else if (load?.as === 'zip' && !isZip(await src.read(0, 4)))
    findings.push({ file: name, offset: 0, kind: 'format', message: `${load.by}, but the bytes are no zip archive` });
  return dedupe(findings);
}

/** A zip archive's first bytes: a member's local header, or the end record of an empty archive. */
const isZip = (head: Buffer) => head.length === 4 && [0x04034b50, 0x06054b50].includes(head.readUInt32LE(0));

const ctx = (opts: ArtifactScanOptions): Ctx => ({ allowGlobals: opts.allowGlobals ?? [], depth: 0 });

/**
 * A file a loader unpickles whatever its bytes (MLflow's python_model, sklearn's pickled_model):
 * read as one `pickle.load` reads it, after the decompression the loader applies. Bytes that are
 * no pickle, or that the scanner cannot decompress, are refused rather than passed.
 */
async function scanAsPickle(name: string, src: ByteSource, load: Extract<FileLoad, { as: 'pickle' }>, c: Ctx): Promise<PickleFinding[]> {
  const because = (f: PickleFinding): PickleFinding => (f.global ? f : { ...f, message: `${f.message} (${load.by} unpickles it)` });
  if (!load.compression) {
    const s = new PickleScanner({ file: name, allowGlobals: c.allowGlobals, strict: true });
    await drive([s], src);
    return s.findings.map(because);
  }
  // lzma.open reads xz and the older "alone" format alike
  const kind = load.compression === 'lzma' && joblibCompressor(await src.read(0, 6)) === 'xz' ? 'xz' : load.compression;
  const s = new PickleScanner({ file: `${name} (${kind}-decompressed)`, allowGlobals: c.allowGlobals, strict: true });
  try {
    for await (const chunk of decompressed(kind, chunksOf(src))) {
      s.push(chunk);
      if (s.done) break;
    }
  } catch (e) {
    s.end();
    const failed: PickleFinding = {
      file: name,
      offset: 0,
      kind: 'unscannable',
      message: `${kind} stream the scanner cannot decompress: ${(e as Error).message}`,
    };
    return [...s.findings, failed].map(because);
  }
  s.end();
  return s.findings.map(because);
}

function dedupe(findings: PickleFinding[]): PickleFinding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.file}\0${f.offset}\0${f.kind}\0${f.global ?? f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

async function scanContent(name: string, src: ByteSource, role: 'loaded' | 'sniffed', ctx: Ctx): Promise<ContentScan> {
  const head = await src.read(0, 512);
  if (ctx.depth > MAX_DEPTH) return { findings: [{ file: name, offset: 0, kind: 'unscannable', message: 'archives nested too deeply' }], pickle: false };
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return scanZip(name, src, ctx);
  if (head.length >= 4 && head.readUInt32LE(0) === 0x06054b50) return { findings: [], pickle: false };
  if (head.subarray(0, 6).equals(Buffer.from('\x93NUMPY', 'latin1'))) return scanNpy(name, src, ctx);
  const out: ContentScan = { findings: [], pickle: false };
  // pickle.load, joblib.load of an uncompressed file, torch's legacy loader
  const plain = await readPickles(name, src, role, ctx);
  out.findings.push(...plain.findings);
  out.pickle = plain.pickle;
  const compressor = joblibCompressor(head);
  // joblib < 0.10 ('ZF'): a hex length (int(…, 16) of the next 19 bytes), then zlib; other bytes fail there
  if (compressor === 'compat' && /^\s*[+-]?(0x)?[0-9a-f_]+\s*$/i.test(head.toString('latin1', 2, 21))) {
    out.findings.push({
      file: name,
      offset: 0,
      kind: 'unscannable',
      message: 'joblib < 0.10 format (ZF): its arrays live in other files, the scanner does not read it',
    });
  } else if (compressor && compressor !== 'compat') {
    const inner = new PickleScanner({ file: `${name} (${compressor}-decompressed)`, joblib: true, strict: false, allowGlobals: ctx.allowGlobals });
    try {
      for await (const c of decompressed(compressor, chunksOf(src))) {
        inner.push(c);
        if (inner.done) break;
      }
    } catch (e) {
      // node:zlib is the zlib joblib uses: where it stops, joblib stops. Another decoder might
      // stop where Python's does not: a file a loader reads is refused then.
      inner.end();
      out.findings.push(...inner.findings);
      if (role === 'loaded' && compressor !== 'zlib' && compressor !== 'gzip')
        out.findings.push({
          file: name,
          offset: 0,
          kind: 'unscannable',
          message: `${compressor} stream the scanner cannot decompress: ${(e as Error).message}`,
        });
      return out;
    }
    inner.end();
    out.findings.push(...inner.findings);
    out.pickle ||= inner.pickles > 0;
  }
  if (isTar(head)) {
    out.findings.push(...(await scanTar(name, src, ctx)));
  }
  return out;
}

/**
 * The bytes read as pickles from offset 0, as pickle.load / torch's legacy loader (persistent ids
 * allowed) and as joblib's unpickler (when a NumpyArrayWrapper appears), both in one pass.
 */
async function readPickles(name: string, src: ByteSource, role: 'loaded' | 'sniffed', ctx: Ctx): Promise<{ findings: PickleFinding[]; pickle: boolean }> {
  const base = { file: name, allowGlobals: ctx.allowGlobals, strict: false, sniffed: role === 'sniffed' };
  const scanners = [new PickleScanner(base), new PickleScanner({ ...base, joblib: true })];
  await drive(scanners, src);
  const [plain, joblib] = scanners as [PickleScanner, PickleScanner];
  const findings = [...plain.findings, ...(plain.joblibSeen ? joblib.findings : [])];
  for (const [from, to] of plain.straddles) {
    const again = new PickleScanner(base);
    await drive([again], without(src, from, to));
    findings.push(...again.findings.map((f) => ({ ...f, offset: f.offset >= from ? f.offset + (to - from) : f.offset })));
  }
  return { findings, pickle: plain.pickles > 0 || joblib.pickles > 0 };
}

/** `src` without bytes [from, to). */
function without(src: ByteSource, from: number, to: number): ByteSource {
  const cut = to - from;
  return {
    size: src.size - cut,
    async read(offset, length) {
      if (offset >= from) return src.read(offset + cut, length);
      const head = await src.read(offset, Math.min(length, from - offset));
      return head.length < length ? Buffer.concat([head, await src.read(to, length - head.length)]) : head;
    },
  };
}

/**
 * Feeds `scanners` the bytes of `src` they need: a scanner skipping a raw array or a large
 * argument is told the bytes went by, so stretches no scanner reads are never read from disk.
 */
async function drive(scanners: PickleScanner[], src: ByteSource): Promise<void> {
  const fed = scanners.map(() => 0);
  let chunk = 64 * 1024;
  for (;;) {
    let next = Infinity;
    scanners.forEach((s, i) => {
      if (!s.done) next = Math.min(next, fed[i]! + s.skipping);
    });
    if (next >= src.size) break;
    const data = await src.read(next, chunk);
    if (!data.length) break;
    chunk = Math.min(chunk * 4, CHUNK);
    const end = next + data.length;
    scanners.forEach((s, i) => {
      if (s.done || fed[i]! + s.skipping > end) return;
      if (fed[i]! < next) s.skipped(next - fed[i]!);
      else if (fed[i]! > next) {
        s.push(data.subarray(fed[i]! - next));
        fed[i] = end;
        return;
      }
      s.push(data);
      fed[i] = end;
    });
  }
  for (const [i, s] of scanners.entries()) {
    if (!s.done && fed[i]! < src.size) s.skipped(Math.min(s.skipping, src.size - fed[i]!));
    s.end();
  }
}

// ---------------------------------------------------------------------------------------------
// zip, as torch.load (miniz) and zipfile read it

interface CentralEntry {
  name: string;
  flags: number;
  method: number;
  csize: number;
  usize: number;
  localOffset: number;
}

const EOCD = 0x06054b50;

async function scanZip(name: string, src: ByteSource, ctx: Ctx): Promise<{ findings: PickleFinding[]; pickle: boolean }> {
  const findings: PickleFinding[] = [];
  const refuse = (offset: number, message: string) => findings.push({ file: name, offset, kind: 'unscannable', message });
  const tailStart = Math.max(0, src.size - (0xffff + 22));
  const tail = await src.read(tailStart, src.size - tailStart);
  // zipfile: a comment-less record at the very end, else the last signature in the tail;
  // miniz (torch): the last signature with a whole record after it. Every record either reads is scanned.
  const records = new Set<number>();
  const end = tail.length - 22;
  if (end >= 0 && tail.readUInt32LE(end) === EOCD && tail.readUInt16LE(end + 20) === 0) records.add(tailStart + end);
  else {
    const last = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (last >= 0) records.add(tailStart + last);
  }
  for (let i = end; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      records.add(tailStart + i);
      break;
    }
  }
  if (!records.size) {
    refuse(0, 'zip archive without an end-of-central-directory record');
    return { findings, pickle: false };
  }
  const scanned = new Set<string>();
  let pickle = false;
  const errors: string[] = [];
  let read = 0;
  for (const at of records) {
    for (const reader of ['zipfile', 'miniz'] as const) {
      const cd = await centralDirectory(src, at, reader);
      if (typeof cd === 'string') {
        errors.push(`${reader}: ${cd}`);
        continue;
      }
      read += 1;
      for (const e of cd) {
        const key = `${e.localOffset}:${e.csize}:${e.method}`;
        if (scanned.has(key)) continue;
        scanned.add(key);
        const r = await scanMember(name, src, e, ctx);
        findings.push(...r.findings);
        pickle ||= r.pickle;
      }
    }
  }
  // A central directory only one reader can read still counts; none at all is refused.
  if (!read) for (const m of errors) refuse(Math.max(...records), m);
  return { findings, pickle };
}

/**
 * The members that the end record at `at` names as `reader` reads them, or why it cannot: zipfile
 * takes the zip64 record just before the locator and shifts every offset by the bytes before the
 * archive (`concat`); miniz (torch) follows the locator's pointer and shifts nothing.
 */
async function centralDirectory(src: ByteSource, at: number, reader: 'zipfile' | 'miniz'): Promise<CentralEntry[] | string> {
  const rec = await src.read(at, 22);
  if (rec.length < 22) return 'truncated end-of-central-directory record';
  let cdSize = rec.readUInt32LE(12);
  let cdOffset = rec.readUInt32LE(16);
  let zip64 = false;
  const loc = at >= 20 ? await src.read(at - 20, 20) : Buffer.alloc(0);
  if (loc.length === 20 && loc.readUInt32LE(0) === 0x07064b50) {
    const recAt = reader === 'zipfile' ? at - 20 - 56 : Number(loc.readBigUInt64LE(8));
    const r64 = recAt >= 0 ? await src.read(recAt, 56) : Buffer.alloc(0);
    if (r64.length === 56 && r64.readUInt32LE(0) === 0x06064b50) {
      cdSize = Number(r64.readBigUInt64LE(40));
      cdOffset = Number(r64.readBigUInt64LE(48));
      zip64 = true;
    } else if (reader === 'zipfile') return 'corrupt zip64 end of central directory record';
  }
  const shift = reader === 'zipfile' ? at - (zip64 ? 76 : 0) - cdSize - cdOffset : 0;
  if (shift < 0 || cdOffset + shift + cdSize > src.size) return 'central directory beyond the end of the file';
  const cd = await src.read(cdOffset + shift, cdSize);
  const entries: CentralEntry[] = [];
  let p = 0;
  while (p + 46 <= cd.length && cd.readUInt32LE(p) === 0x02014b50) {
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const flags = cd.readUInt16LE(p + 8);
    const e: CentralEntry = {
      name: cd.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLen),
      flags,
      method: cd.readUInt16LE(p + 10),
      csize: cd.readUInt32LE(p + 20),
      usize: cd.readUInt32LE(p + 24),
      localOffset: cd.readUInt32LE(p + 42),
    };
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    if (e.usize === 0xffffffff || e.csize === 0xffffffff || e.localOffset === 0xffffffff) {
      const z = zip64Extra(extra);
      if (!z) return `member ${e.name}: zip64 sizes missing`;
      // the zip64 field holds, in this order, only the values that overflowed
      const take = (v: number) => (v === 0xffffffff ? (z.shift() ?? NaN) : v);
      e.usize = take(e.usize);
      e.csize = take(e.csize);
      e.localOffset = take(e.localOffset);
      if ([e.usize, e.csize, e.localOffset].some((x) => !Number.isSafeInteger(x))) return `member ${e.name}: zip64 sizes missing`;
    }
    e.localOffset += shift;
    entries.push(e);
    p += 46 + nameLen + extraLen + commentLen;
  }
  if (!entries.length && cdSize > 0) return 'no central directory entry where the end record points';
  return entries;
}

function zip64Extra(extra: Buffer): number[] | undefined {
  for (let i = 0; i + 4 <= extra.length;) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (id === 0x0001) {
      const out: number[] = [];
      for (let j = i + 4; j + 8 <= i + 4 + len && j + 8 <= extra.length; j += 8) out.push(Number(extra.readBigUInt64LE(j)));
      return out;
    }
    i += 4 + len;
  }
  return undefined;
}

async function scanMember(name: string, src: ByteSource, e: CentralEntry, ctx: Ctx): Promise<ContentScan> {
  const file = `${name}!${e.name}`;
  const refuse = (message: string): ContentScan => ({ findings: [{ file, offset: e.localOffset, kind: 'unscannable', message }], pickle: false });
  const local = await src.read(e.localOffset, 30);
  // no local header: the reader that follows this central directory fails there
  if (local.length < 30 || local.readUInt32LE(0) !== 0x04034b50) return { findings: [], pickle: false };
  // the data starts after the local header's own name and extra field; its size is the central directory's
  const dataStart = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  if (dataStart + e.csize > src.size) return refuse('member data beyond the end of the file');
  // the encryption flag is not trusted: torch reads stored members whatever it says
  // torch reads `<archive>/data.pkl` (and constants.pkl) as pickles; other members are sniffed
  const role = /\.pkl$/i.test(e.name) ? 'loaded' : 'sniffed';
  const data = slice(src, dataStart, e.csize);
  const inner = { ...ctx, depth: ctx.depth + 1 };
  if (e.method === 0) return scanContent(file, data, role, inner);
  if (e.method !== 8) return refuse(`compression method ${e.method}, which the scanner does not read`);
  if (e.usize <= MAX_NESTED_ARCHIVE) {
    try {
      const bytes = await inflateAll(data, e.usize);
      return await scanContent(file, bufferSource(bytes), role, inner);
    } catch (err) {
      return role === 'loaded' ? refuse(`deflated member does not inflate: ${(err as Error).message}`) : { findings: [], pickle: false };
    }
  }
  return refuse(`deflated member of ${e.usize} bytes, larger than the scanner inflates`);
}

async function inflateAll(src: ByteSource, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  for await (const c of Readable.from(chunksOf(src)).pipe(createInflateRaw()) as AsyncIterable<Buffer>) {
    got += c.length;
    if (got > size) throw new RangeError('inflates to more than its declared size');
    parts.push(c);
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// tar, as torch's legacy loader (tarfile) reads it

/** A tar header field: its text up to the first NUL, as tarfile's nts() reads it. */
function untilNul(text: string): string {
  const end = text.indexOf('\0');
  return end < 0 ? text : text.slice(0, end);
}

/** tarfile accepts a first block whose header checksum is right, with or without the ustar magic. */
function isTar(head: Buffer): boolean {
  if (head.length < 512) return false;
  const stored = parseInt(head.toString('latin1', 148, 156).replaceAll('\0', ' ').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let unsigned = 256;
  let signed = 256;
  for (let i = 0; i < 512; i++) {
    if (i >= 148 && i < 156) continue;
    unsigned += head[i]!;
    signed += (head[i]! << 24) >> 24;
  }
  return stored === unsigned || stored === signed;
}

async function scanTar(name: string, src: ByteSource, ctx: Ctx): Promise<PickleFinding[]> {
  const findings: PickleFinding[] = [];
  let at = 0;
  let longName: string | undefined;
  while (at + 512 <= src.size) {
    const h = await src.read(at, 512);
    if (!isTar(h)) break;
    const sizeField = h.subarray(124, 136);
    const size = sizeField[0]! & 0x80 ? Number(sizeField.subarray(1).readBigUInt64BE(3)) : parseInt(untilNul(sizeField.toString('latin1')).trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    const member = longName ?? untilNul(h.toString('latin1', 0, 100));
    const dataAt = at + 512;
    if (!Number.isSafeInteger(size) || dataAt + size > src.size) {
      findings.push({ file: name, offset: at, kind: 'unscannable', message: `tar member ${member} runs past the end of the file` });
      break;
    }
    longName = undefined;
    if (type === 'L') longName = untilNul((await src.read(dataAt, size)).toString('utf8'));
    else if (type === 'x') {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec((await src.read(dataAt, size)).toString('utf8'));
      if (path) longName = path[1];
    } else if (type === '0' || type === '\0' || type === '7') {
      const file = `${name}!${member}`;
      // torch's legacy tar: `pickle` is the main pickle; `storages` and `tensors` interleave pickles and raw data
      if (member === 'storages' || member === 'tensors') {
        findings.push(...(await scanTorchTarMember(file, slice(src, dataAt, size), member, ctx)).map((f) => ({ ...f, offset: f.offset + dataAt })));
      } else {
        const r = await scanContent(file, slice(src, dataAt, size), member === 'pickle' ? 'loaded' : 'sniffed', { ...ctx, depth: ctx.depth + 1 });
        findings.push(...r.findings.map((f) => ({ ...f, offset: f.file === file ? f.offset + dataAt : f.offset })));
      }
    }
    at = dataAt + Math.ceil(size / 512) * 512;
  }
  return findings;
}

/** Element sizes of torch's typed storage classes, as the legacy tar format names them. */
const STORAGE_ELEMENT_SIZE: Record<string, number> = {
  DoubleStorage: 8,
  FloatStorage: 4,
  HalfStorage: 2,
  BFloat16Storage: 2,
  LongStorage: 8,
  IntStorage: 4,
  ShortStorage: 2,
  CharStorage: 1,
  ByteStorage: 1,
  BoolStorage: 1,
  ComplexFloatStorage: 8,
  ComplexDoubleStorage: 16,
  QInt8Storage: 1,
  QUInt8Storage: 1,
  QInt32Storage: 4,
};

/**
 * torch.serialization's legacy_load of the `storages` and `tensors` members: a pickled count, then
 * per item a pickle and raw bytes (a storage: an int64 element count and its elements; a tensor:
 * ndim, sizes, strides and an offset), and for storages one more pickle of views.
 */
async function scanTorchTarMember(file: string, src: ByteSource, member: 'storages' | 'tensors', ctx: Ctx): Promise<PickleFinding[]> {
  const findings: PickleFinding[] = [];
  let at = 0;
  const refuse = (message: string) => findings.push({ file, offset: at, kind: 'unscannable', message });
  const next = async (): Promise<PickleValue | undefined> => {
    const s = new PickleScanner({ file, allowGlobals: ctx.allowGlobals, strict: false, single: true, baseOffset: at });
    await drive([s], slice(src, at, src.size - at));
    findings.push(...s.findings);
    if (s.endOffset === undefined) return undefined;
    at = s.endOffset;
    return s.result ?? null;
  };
  const count = await next();
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) return findings;
  for (let i = 0; i < count; i++) {
    const args = await next();
    if (!Array.isArray(args)) return findings;
    if (member === 'storages') {
      const type = args[2];
      const elementSize =
        type && typeof type === 'object' && !Array.isArray(type) && /^torch\.\w+$/.test(type.global) ? STORAGE_ELEMENT_SIZE[type.global.slice(6)] : undefined;
      if (!elementSize) {
        refuse('legacy torch storage of a type the scanner cannot size');
        return findings;
      }
      const n = (await src.read(at, 8)).readBigInt64LE(0);
      at += 8 + Number(n) * elementSize;
    } else {
      const ndim = (await src.read(at, 4)).readInt32LE(0);
      if (ndim < 0) return findings;
      at += 8 + 16 * ndim + 8;
    }
    if (!Number.isSafeInteger(at) || at > src.size) return findings;
  }
  if (member === 'storages') await next();
  return findings;
}

// ---------------------------------------------------------------------------------------------
// .npy, as numpy.lib.format.read_array reads it

async function scanNpy(name: string, src: ByteSource, ctx: Ctx): Promise<{ findings: PickleFinding[]; pickle: boolean }> {
  const refuse = (message: string) => ({ findings: [{ file: name, offset: 0, kind: 'unscannable' as const, message }], pickle: false });
  const pre = await src.read(0, 12);
  const major = pre[6];
  if (major !== 1 && major !== 2 && major !== 3) return refuse(`.npy format version ${major}, which the scanner does not read`);
  const headerLen = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = (await src.read(start, headerLen)).toString(major === 3 ? 'utf8' : 'latin1');
  let descr: unknown;
  try {
    const d = parsePyLiteral(header);
    if (!d || typeof d !== 'object' || Array.isArray(d) || !('descr' in d)) throw new Error('no descr');
    descr = (d as Record<string, unknown>).descr;
  } catch (e) {
    return refuse(`.npy header the scanner cannot read (${(e as Error).message})`);
  }
  if (!dtypeHoldsObjects(descr)) return { findings: [], pickle: false };
  // numpy.load(allow_pickle=True) unpickles an object array from the bytes after the header
  const s = new PickleScanner({ file: name, allowGlobals: ctx.allowGlobals, strict: false, baseOffset: start + headerLen });
  await drive([s], slice(src, start + headerLen, src.size - start - headerLen));
  return { findings: s.findings, pickle: s.pickles > 0 };
}

/** Whether a `.npy` descr may hold Python objects: any field type that is not a plain fixed-size code. */
function dtypeHoldsObjects(descr: unknown): boolean {
  if (typeof descr === 'string') return !/^[<>|=]?(?:[?bBhHiIlLqQpPefdgFDG]|[biufcSUVa]\d*|[Mm]8(?:\[\w+\])?)$/.test(descr);
  if (!Array.isArray(descr)) return true;
  return descr.some((field) => !Array.isArray(field) || field.length < 2 || dtypeHoldsObjects(field[1]));
}

/** The Python literal of a `.npy` header: dicts, tuples, lists, strings, ints, True/False/None. */
function parsePyLiteral(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const items: unknown[] = [];
      const dict: Record<string, unknown> = {};
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          return c === '{' ? dict : items;
        }
        const v = value();
        ws();
        if (c === '{') {
          if (text[i++] !== ':') throw new Error('expected :');
          dict[String(v)] = value();
          ws();
        } else items.push(v);
        if (text[i] === ',') i++;
        else if (text[i] !== close) throw new Error(`unexpected ${text[i]}`);
      }
    }
    if (c === "'" || c === '"') {
      const j = text.indexOf(c, i + 1);
      if (j < 0 || text.slice(i + 1, j).includes('\\')) throw new Error('string');
      const s = text.slice(i + 1, j);
      i = j + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+)/.exec(text.slice(i));
    if (!m) throw new Error(`unexpected ${c}`);
    i += m[0].length;
    return m[0] === 'True' ? true : m[0] === 'False' ? false : m[0] === 'None' ? null : Number(m[0]);
  };
  const v = value();
  ws();
  if (i !== text.length) throw new Error('trailing text');
  return v;
}
