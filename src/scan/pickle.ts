/**
 * A pickle reader that never unpickles (SPEC v3 §14): it walks the opcodes of protocols 0–5 with a
 * symbolic stack and memo, as CPython's unpicklers read them, so a STACK_GLOBAL whose module and
 * name arrive through BINPUT/BINGET/MEMOIZE (picklescan#14) is resolved exactly as pickle would,
 * and anything it cannot resolve is a finding, never a pass.
 *
 * Where a loader would stop with an error (an unknown opcode, a GET of an empty memo slot, the end
 * of the bytes), nothing after that point runs: the reader stops there too and records the error
 * (a finding only for `strict` reads, where the bytes must be a pickle). Where the scanner cannot
 * tell what the loader would do next, it refuses (`unscannable`): a frame that does not end where
 * an opcode or a STOP ends, joblib array bytes it cannot size, a text argument too long to hold.
 *
 * With `joblib`, it reads as joblib's NumpyUnpickler does: after the BUILD of a NumpyArrayWrapper
 * the array's bytes follow in the same stream (an alignment byte and its padding, then shape ×
 * itemsize bytes, with the item size NumPy itself would give the wrapper's dtype), or, for a dtype
 * that holds objects, a nested pickle read by `pickle.load`. After a STOP, further bytes are read
 * as further pickles (torch's legacy format holds five; a loader may call `load` again), with
 * errors there ending the read silently. Pure: bytes in, findings out.
 */
import { DEFAULT_ALLOWED_GLOBALS, effectiveModule, globalMatcher } from './allowlist.js';

/** One reason an artifact is refused. `offset` is the byte offset of the opcode in `file`. */
export interface PickleFinding {
  file: string;
  offset: number;
  kind: 'global' | 'unresolved-global' | 'unscannable' | 'format' | 'mlmodel';
  /** `module.name` of the refused global, when known. */
  global?: string;
  /** For a finding about a text file (an MLmodel): its line, 1-based. */
  line?: number;
  message: string;
}

export interface PickleScanOptions {
  /** Name reported in findings (a path inside the artifact). */
  file?: string;
  /** Globals allowed besides DEFAULT_ALLOWED_GLOBALS (policy `scan.allowGlobals`). */
  allowGlobals?: readonly string[];
  /** Read as joblib's NumpyUnpickler: raw array bytes (or nested pickles) follow NumpyArrayWrapper BUILDs. */
  joblib?: boolean;
  /** Byte offset of the first byte in the file. */
  baseOffset?: number;
  /** The bytes must be a pickle: an error before the first STOP is a finding (default true). */
  strict?: boolean;
  /**
   * No loader reads these bytes as a pickle (a tensor storage in a zip): findings count only when
   * they are one, that is when the pickle starts with PROTO or reaches its STOP.
   */
  sniffed?: boolean;
  /** Read one pickle and stop after its STOP (`result`, `end`): torch's legacy tar members. */
  single?: boolean;
}

/** A pickle's result as plain data: ints, strs, tuples as arrays, globals as `{ global }`, anything else null. */
export type PickleValue = number | string | PickleValue[] | { global: string } | null;

/** Where and why a loader reading these bytes would stop with an error. */
export interface PickleError {
  offset: number;
  message: string;
}

/** Symbolic values. `unknown` may be anything; `other` is known to be neither a str nor an object the scanner tracks. */
type V =
  | { t: 'str'; v: string }
  | { t: 'int'; v: number; big?: bigint }
  | { t: 'none' }
  | { t: 'bool' }
  | { t: 'global'; module: string; name: string }
  | { t: 'tuple'; items: V[] }
  | { t: 'dict'; entries: Array<[V, V]>; complete: boolean }
  | { t: 'call'; fn: V; args: V; state?: V }
  | { t: 'obj'; cls: V }
  | { t: 'wrapper'; attrs: Map<string, V>; complete: boolean }
  | { t: 'other' }
  | { t: 'unknown' };

const OTHER: V = { t: 'other' };
const UNKNOWN: V = { t: 'unknown' };
const NONE: V = { t: 'none' };
const BOOL: V = { t: 'bool' };
/** Longest string kept for global resolution; longer ones are skipped and become unknown. */
const MAX_KEPT = 1 << 16;
/** Longest text argument (GLOBAL, INT, …) the scanner holds; a longer one is refused. */
const MAX_LINE = 1 << 16;
const MAX_DICT_KEPT = 256;
/** joblib's object arrays nest pickles; more than this many levels is refused. */
const MAX_NESTING = 4;
const NAW = 'joblib.numpy_pickle.NumpyArrayWrapper';
/** Callables whose result is an instance of the class in their first argument. */
const CLASS_FROM_ARG = new Set(['copyreg._reconstructor', 'copyreg.__newobj__', 'copyreg.__newobj_ex__']);
/** Allowed callables that call or return an object their arguments choose. */
const ANY_RESULT = new Set(['torch._tensor._rebuild_from_type_v2', 'torch._utils._rebuild_wrapper_subclass']);
/** torch.serialization.MAGIC_NUMBER: the first of the five pickles of torch's legacy format. */
const TORCH_MAGIC = 0x1950a86a20f9469cfc6cn;
/** A module name the import system might find: anything else makes the loader stop (ModuleNotFoundError). */
const IDENT = /^[\p{L}\p{N}_-]+(\.[\p{L}\p{N}_-]+)*$/u;

/** A loader stops here with an error. */
class LoaderError extends Error {}
/** The scanner cannot tell what the loader does next: refuse. */
class Unscannable extends Error {}

interface Machine {
  stack: V[];
  meta: V[][];
  memo: Map<number, V>;
  proto: number;
  /** joblib semantics (false inside the nested `pickle.load` of an object array). */
  joblib: boolean;
  /** Absolute offset where the current FRAME ends. */
  frameEnd: number | undefined;
  /**
   * joblib arrays of wrappers built inside a frame: joblib reads them from the file, after the
   * frame, while the unpickler goes on with the frame's opcodes; they are read where the frame ends.
   */
  deferred: ArrayRead[];
  /** The pickle began with PROTO, as every pickle of protocol 2 and later does. */
  protoSeen: boolean;
}

type ArrayRead = { kind: 'raw'; bytes: number; pad: boolean } | { kind: 'nested' };

function machine(memo: Map<number, V>, joblib: boolean): Machine {
  return { stack: [], meta: [], memo, proto: 0, joblib, frameEnd: undefined, deferred: [], protoSeen: false };
}

/**
 * Push parser over one pickle-bearing byte stream: `push` chunks in order, then `end`. Memory stays
 * bounded: large byte/str arguments and joblib array bodies are skipped, not buffered.
 */
export class PickleScanner {
  readonly findings: PickleFinding[] = [];
  /** The loader's error, when the bytes make it stop before a clean end. */
  error: PickleError | undefined;
  /** Pickles read to their STOP. */
  pickles = 0;
  /** With `single`: the value the pickle returns, and the offset after its STOP. */
  result: PickleValue | undefined;
  endOffset: number | undefined;
  /** A NumpyArrayWrapper global appeared: joblib would read these bytes differently from pickle. */
  joblibSeen = false;
  /**
   * Opcodes that cross the end of their FRAME, as [from, to): reading a file, CPython's C
   * unpickler drops the rest of its frame buffer there and reads on after the frame; the scan
   * of these bytes read them in line, a second scan without [from, to) reads them as it does.
   */
  readonly straddles: Array<[number, number]> = [];
  private readonly file: string;
  private readonly allowed: (module: string, name: string) => boolean;
  private readonly strict: boolean;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** File offset of buf[0]. */
  private base: number;
  private skip = 0;
  /** After skipping, a value to push (a large string or bytes). */
  private afterSkip: V | undefined;
  private m: Machine;
  /** Machines suspended while joblib's nested object-array pickles run. */
  private outer: Machine[] = [];
  /** Joblib alignment padding: a length byte still to read, then the array bytes. */
  private padPending = false;
  private pendingArrayBytes = 0;
  private stopped = false;
  /** Inside a pickle (between its first opcode and its STOP). */
  private inPickle = false;
  /** Offset of the opcode being read: where an error is reported. */
  private opAt = 0;
  private readonly sniffed: boolean;
  private readonly single: boolean;
  /** The current pickle's findings wait for its STOP (a pickle no loader is known to read). */
  private provisional = false;
  private pending: PickleFinding[] = [];
  /** The first pickle held torch's magic number: torch's legacy loader reads four more. */
  private torchLegacy = false;

  constructor(opts: PickleScanOptions = {}) {
    this.file = opts.file ?? '(pickle)';
    this.allowed = globalMatcher([...DEFAULT_ALLOWED_GLOBALS, ...(opts.allowGlobals ?? [])]);
    this.base = opts.baseOffset ?? 0;
    this.strict = opts.strict ?? true;
    this.sniffed = opts.sniffed ?? false;
    this.single = opts.single ?? false;
    this.m = machine(new Map(), opts.joblib ?? false);
  }

  /** True once nothing further can change the result (an error, or a refusal that ends the read). */
  get done(): boolean {
    return this.stopped;
  }

  /** Bytes the scanner will skip before it needs input again (a raw array, a large argument). */
  get skipping(): number {
    return this.skip;
  }

  /** Tells the scanner `n` of the bytes it is skipping were passed over without being pushed. */
  skipped(n: number): void {
    if (n > this.skip) throw new RangeError('skipped more than the scanner skips');
    this.skip -= n;
    this.base += n;
    if (this.skip === 0) this.finishSkip();
  }

  push(chunk: Uint8Array): void {
    if (this.stopped || chunk.length === 0) return;
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.skip > 0) {
      const n = Math.min(this.skip, data.length);
      this.skip -= n;
      this.base += n;
      data = data.subarray(n);
      if (this.skip > 0) return;
      this.finishSkip();
    }
    if (this.pos < this.buf.length) {
      this.base += this.pos;
      this.buf = Buffer.concat([this.buf.subarray(this.pos), data]);
    } else {
      this.base += this.buf.length;
      this.buf = data;
    }
    this.pos = 0;
    this.run();
  }

  /** Ends the stream: a pickle cut short is where its loader stops. */
  end(): PickleFinding[] {
    if (!this.stopped) {
      const at = this.base + this.pos;
      if (this.pickles === 0 && !this.inPickle && this.skip === 0) this.loaderError(at, 'empty stream: no pickle to read');
      else if (this.inPickle || this.skip > 0 || this.padPending || this.outer.length)
        this.loaderError(at, 'the pickle stream ends before its STOP opcode (truncated)');
    }
    this.stopped = true;
    return this.findings;
  }

  private refuse(offset: number, kind: PickleFinding['kind'], message: string, global?: string): void {
    (this.provisional ? this.pending : this.findings).push({ file: this.file, offset, kind, ...(global === undefined ? {} : { global }), message });
  }

  private loaderError(offset: number, message: string): void {
    this.error ??= { offset, message };
    this.pending = [];
    this.provisional = false;
    if (this.strict && this.pickles === 0) this.refuse(offset, 'unscannable', `not a readable pickle: ${message}`);
    this.stopped = true;
  }

  private finishSkip(): void {
    if (this.afterSkip) {
      this.m.stack.push(this.afterSkip);
      this.afterSkip = undefined;
    }
  }

  /** Skips `n` bytes starting at `this.pos` (possibly beyond the buffer). */
  private skipBytes(n: number): void {
    const avail = this.buf.length - this.pos;
    if (n <= avail) {
      this.pos += n;
      this.finishSkip();
      return;
    }
    this.skip = n - avail;
    this.base += this.buf.length;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }

  private run(): void {
    try {
      while (!this.stopped && this.skip === 0 && this.pos < this.buf.length) {
        if (this.padPending) {
          const pad = this.buf[this.pos]!;
          this.pos += 1;
          this.padPending = false;
          this.skipBytes(pad + this.pendingArrayBytes);
          this.pendingArrayBytes = 0;
          continue;
        }
        if (!this.step()) return;
      }
    } catch (e) {
      if (e instanceof LoaderError) this.loaderError(this.opAt, e.message);
      else if (e instanceof Unscannable) {
        this.refuse(this.opAt, 'unscannable', e.message);
        this.pending = [];
        this.stopped = true;
      } else throw e;
    }
  }

  private pop(): V {
    const v = this.m.stack.pop();
    if (v === undefined) throw new LoaderError('unpickling stack underflow');
    return v;
  }

  private popMark(): V[] {
    const items = this.m.stack;
    const prev = this.m.meta.pop();
    if (prev === undefined) throw new LoaderError('could not find MARK');
    this.m.stack = prev;
    return items;
  }

  private top(): V {
    const v = this.m.stack[this.m.stack.length - 1];
    if (v === undefined) throw new LoaderError('unpickling stack underflow');
    return v;
  }

  /** Checks and pushes a global reference. */
  private global(offset: number, rawModule: string, name: string, opname: string): void {
    // A module that is no dotted name cannot be imported: the loader stops there.
    if (!IDENT.test(rawModule)) throw new LoaderError(`${opname}: no module named ${JSON.stringify(rawModule.slice(0, 40))}`);
    const module = effectiveModule(rawModule, this.m.proto);
    const full = `${module}.${name}`;
    if (!this.allowed(module, name)) this.refuse(offset, 'global', `${opname} ${full} is not in the allowed globals`, full);
    if (full === NAW) this.joblibSeen = true;
    this.m.stack.push({ t: 'global', module, name });
  }

  /** Whether `v` is a joblib NumpyArrayWrapper: yes, no, or cannot tell. */
  private isWrapper(v: V): boolean | undefined {
    if (v.t === 'wrapper') return true;
    if (v.t === 'unknown') return undefined;
    if (v.t === 'obj') return v.cls.t === 'global' ? false : undefined;
    if (v.t !== 'call') return false;
    if (v.fn.t !== 'global') return undefined;
    const fn = `${v.fn.module}.${v.fn.name}`;
    if (ANY_RESULT.has(fn)) return undefined;
    if (CLASS_FROM_ARG.has(fn)) return v.args.t === 'tuple' && v.args.items[0]?.t === 'global' ? false : undefined;
    return false;
  }

  /** The value an instantiation of `cls` with `args` makes (REDUCE, NEWOBJ, OBJ, INST, copyreg). */
  private instance(cls: V, args: V | undefined, init: boolean, fallback: V): V {
    if (cls.t !== 'global' || `${cls.module}.${cls.name}` !== NAW) return fallback;
    const attrs = new Map<string, V>();
    if (!init) return { t: 'wrapper', attrs, complete: true };
    // NumpyArrayWrapper.__init__(subclass, shape, order, dtype, allow_mmap=False, numpy_array_alignment_bytes=16)
    const items = args?.t === 'tuple' ? args.items : undefined;
    if (!items || items.length < 4 || items.length > 6) return { t: 'wrapper', attrs, complete: false };
    const names = ['subclass', 'shape', 'order', 'dtype', 'allow_mmap', 'numpy_array_alignment_bytes'];
    names.forEach((n, i) => attrs.set(n, items[i] ?? (i === 4 ? BOOL : i === 5 ? { t: 'int', v: 16 } : NONE)));
    return { t: 'wrapper', attrs, complete: true };
  }

  /** Reads one opcode; false when the buffer does not hold all of it yet. */
  private step(): boolean {
    const b = this.buf;
    const at = this.pos;
    const offset = this.base + at;
    const m = this.m;
    if (m.frameEnd !== undefined && offset >= m.frameEnd) {
      const read = m.deferred.shift();
      if (read) {
        this.startArray(read);
        return true;
      }
      m.frameEnd = undefined;
    }
    const op = b[at]!;
    this.opAt = offset;
    const avail = b.length - at - 1;
    const need = (n: number) => avail >= n;
    const line = (from: number): number | undefined => {
      const nl = b.indexOf(0x0a, from);
      if (nl >= 0) return nl;
      if (b.length - from > MAX_LINE) throw new Unscannable('a text argument longer than the scanner holds');
      return undefined;
    };
    /** Ends the opcode at buffer index `end`, which must not cross the frame it started in. */
    const advance = (end: number) => {
      if (m.frameEnd !== undefined && this.base + end > m.frameEnd) {
        this.frameIssue(offset, 'an opcode crosses the end of its FRAME');
        if (this.straddles.length < 4) this.straddles.push([offset + 1, m.frameEnd]);
      }
      this.pos = end;
    };
    const stack = m.stack;
    if (!this.inPickle) {
      this.inPickle = true;
      const loaded = this.pickles === 0 ? !this.sniffed : this.torchLegacy && this.pickles < 5;
      this.provisional = !loaded && !(op === 0x80 && avail >= 1 && b[at + 1]! <= 5);
    }
    switch (op) {
      case 0x80: {
        // PROTO
        if (!need(1)) return false;
        if (b[at + 1]! > 5) throw new LoaderError(`unsupported pickle protocol ${b[at + 1]}`);
        m.proto = b[at + 1]!;
        m.protoSeen = true;
        advance(at + 2);
        return true;
      }
      case 0x95: {
        // FRAME. CPython's C unpickler reads the whole frame from the file, the Python one (joblib)
        // reads opcodes from it: both agree only when opcodes end where frames end.
        if (!need(8)) return false;
        if (m.frameEnd !== undefined) this.frameIssue(offset, 'a FRAME begins before the current frame ends');
        const len = Number(b.readBigUInt64LE(at + 1));
        this.pos = at + 9;
        m.frameEnd = this.base + at + 9 + len;
        return true;
      }
      case 0x2e: {
        // STOP
        advance(at + 1);
        const value = this.pop();
        // both unpicklers have read the whole frame from the file: what follows starts after it
        const frameRest = m.frameEnd === undefined ? 0 : m.frameEnd - (this.base + this.pos);
        if (m.deferred.length) this.frameIssue(offset, 'STOP before joblib arrays of its FRAME were read');
        const outer = this.outer.pop();
        if (frameRest > 0) this.skipBytes(frameRest);
        if (outer) {
          this.m = outer; // joblib object array done
          return true;
        }
        // A following pickle is another load() (torch's legacy format): a new unpickler, a new memo.
        this.m = machine(new Map(), m.joblib);
        this.inPickle = false;
        if (this.pickles === 0 && value.t === 'int' && value.big === TORCH_MAGIC) this.torchLegacy = true;
        this.pickles += 1;
        this.findings.push(...this.pending);
        this.pending = [];
        this.provisional = false;
        if (this.single) {
          this.result = plain(value, 0);
          this.endOffset = this.base + this.pos + this.skip;
          this.stopped = true;
        }
        return true;
      }
      case 0x28:
        m.meta.push(stack);
        m.stack = [];
        advance(at + 1);
        return true; // MARK
      case 0x30:
        this.pop();
        advance(at + 1);
        return true; // POP
      case 0x31:
        this.popMark();
        advance(at + 1);
        return true; // POP_MARK
      case 0x32:
        stack.push(this.top());
        advance(at + 1);
        return true; // DUP
      case 0x4e:
        stack.push(NONE);
        advance(at + 1);
        return true;
      case 0x88:
      case 0x89:
        stack.push(BOOL);
        advance(at + 1);
        return true; // NEWTRUE / NEWFALSE
      case 0x4a:
        if (!need(4)) return false;
        stack.push({ t: 'int', v: b.readInt32LE(at + 1) });
        advance(at + 5);
        return true;
      case 0x4b:
        if (!need(1)) return false;
        stack.push({ t: 'int', v: b[at + 1]! });
        advance(at + 2);
        return true;
      case 0x4d:
        if (!need(2)) return false;
        stack.push({ t: 'int', v: b.readUInt16LE(at + 1) });
        advance(at + 3);
        return true;
      case 0x47:
        if (!need(8)) return false;
        stack.push(OTHER);
        advance(at + 9);
        return true; // BINFLOAT
      case 0x8a:
      case 0x8b: {
        // LONG1 / LONG4
        const w = op === 0x8a ? 1 : 4;
        if (!need(w)) return false;
        const n = w === 1 ? b[at + 1]! : b.readUInt32LE(at + 1);
        if (n <= 16) {
          if (!need(w + n)) return false;
          const v =
            n === 0
              ? 0n
              : BigInt.asIntN(
                  n * 8,
                  b.subarray(at + 1 + w, at + 1 + w + n).reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n),
                );
          stack.push(intValue(v));
          advance(at + 1 + w + n);
          return true;
        }
        advance(at + 1 + w);
        this.afterSkip = OTHER;
        this.skipData(n);
        return true;
      }
      case 0x49:
      case 0x4c:
      case 0x46: {
        // INT / LONG / FLOAT (text)
        const nl = line(at + 1);
        if (nl === undefined) return false;
        const text = b.toString('latin1', at + 1, nl);
        advance(nl + 1);
        if (op === 0x49 && (text === '00' || text === '01')) stack.push(BOOL);
        else {
          const digits = text.replace(/L$/, '').trim();
          stack.push(op !== 0x46 && /^[-+]?\d{1,40}$/.test(digits) ? intValue(BigInt(digits)) : OTHER);
        }
        return true;
      }
      case 0x53: {
        // STRING: a quoted Python 2 str repr
        const nl = line(at + 1);
        if (nl === undefined) return false;
        const raw = b.toString('latin1', at + 1, nl);
        const q = raw[0];
        if (raw.length < 2 || (q !== "'" && q !== '"') || raw[raw.length - 1] !== q) throw new LoaderError('the STRING opcode argument must be quoted');
        stack.push({ t: 'str', v: py2Str(escapeDecode(raw.slice(1, -1))) });
        advance(nl + 1);
        return true;
      }
      case 0x56: {
        // UNICODE: raw-unicode-escape text
        const nl = line(at + 1);
        if (nl === undefined) return false;
        stack.push({ t: 'str', v: rawUnicodeEscape(b.toString('latin1', at + 1, nl)) });
        advance(nl + 1);
        return true;
      }
      case 0x55:
      case 0x54:
      case 0x8c:
      case 0x58:
      case 0x8d:
      case 0x43:
      case 0x42:
      case 0x8e:
      case 0x96: {
        const w = op === 0x55 || op === 0x8c || op === 0x43 ? 1 : op === 0x8d || op === 0x8e || op === 0x96 ? 8 : 4;
        if (!need(w)) return false;
        const len = w === 1 ? b[at + 1]! : w === 4 ? b.readUInt32LE(at + 1) : Number(b.readBigUInt64LE(at + 1));
        if (!Number.isSafeInteger(len)) throw new LoaderError('argument length out of range');
        if (op === 0x54 && b.readInt32LE(at + 1) < 0) throw new LoaderError('BINSTRING pickle has negative byte count');
        const isText = op === 0x8c || op === 0x58 || op === 0x8d || op === 0x55 || op === 0x54;
        if (len <= MAX_KEPT) {
          if (!need(w + len)) return false;
          const start = at + 1 + w;
          // py2 str (SHORT_BINSTRING, BINSTRING) decodes as ASCII by default; unicode as UTF-8
          let v: V = OTHER;
          if (isText) {
            const text = b.toString(op === 0x55 || op === 0x54 ? 'latin1' : 'utf8', start, start + len);
            v = { t: 'str', v: op === 0x55 || op === 0x54 ? py2Str(text) : text };
          }
          stack.push(v);
          advance(start + len);
          return true;
        }
        advance(at + 1 + w);
        this.afterSkip = isText ? UNKNOWN : OTHER;
        this.skipData(len);
        return true;
      }
      case 0x97:
        throw new LoaderError('NEXT_BUFFER without out-of-band buffers');
      case 0x98:
        advance(at + 1);
        return true; // READONLY_BUFFER
      case 0x5d:
      case 0x8f:
        stack.push(OTHER);
        advance(at + 1);
        return true; // EMPTY_LIST / EMPTY_SET
      case 0x29:
        stack.push({ t: 'tuple', items: [] });
        advance(at + 1);
        return true;
      case 0x7d:
        stack.push({ t: 'dict', entries: [], complete: true });
        advance(at + 1);
        return true;
      case 0x6c:
      case 0x91:
        this.popMark();
        this.m.stack.push(OTHER);
        advance(at + 1);
        return true; // LIST / FROZENSET
      case 0x74: {
        const items = this.popMark();
        this.m.stack.push({ t: 'tuple', items });
        advance(at + 1);
        return true;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        const n = op - 0x84;
        if (stack.length < n) throw new LoaderError('unpickling stack underflow');
        stack.push({ t: 'tuple', items: stack.splice(stack.length - n, n) });
        advance(at + 1);
        return true;
      }
      case 0x64: {
        // DICT
        const items = this.popMark();
        const d: V = { t: 'dict', entries: [], complete: true };
        for (let i = 0; i + 1 < items.length; i += 2) setItem(d, items[i]!, items[i + 1]!);
        this.m.stack.push(d);
        advance(at + 1);
        return true;
      }
      case 0x61:
        this.pop();
        this.top();
        advance(at + 1);
        return true; // APPEND
      case 0x65:
      case 0x90:
        this.popMark();
        this.top();
        advance(at + 1);
        return true; // APPENDS / ADDITEMS
      case 0x73: {
        // SETITEM
        const v = this.pop();
        const k = this.pop();
        setItem(this.top(), k, v);
        advance(at + 1);
        return true;
      }
      case 0x75: {
        // SETITEMS
        const items = this.popMark();
        const d = this.top();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(d, items[i]!, items[i + 1]!);
        advance(at + 1);
        return true;
      }
      case 0x63:
      case 0x69: {
        // GLOBAL / INST: "module\nname\n"
        const nl1 = line(at + 1);
        if (nl1 === undefined) return false;
        const nl2 = line(nl1 + 1);
        if (nl2 === undefined) return false;
        const module = utf8(b, at + 1, nl1);
        const name = utf8(b, nl1 + 1, nl2);
        advance(nl2 + 1);
        if (op === 0x63) {
          this.global(offset, module, name, 'GLOBAL');
        } else {
          const args = this.popMark();
          this.global(offset, module, name, 'INST');
          const cls = this.m.stack.pop()!;
          this.m.stack.push(this.instance(cls, { t: 'tuple', items: args }, args.length > 0, { t: 'obj', cls }));
        }
        return true;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        advance(at + 1);
        if (module.t === 'str' && name.t === 'str') {
          this.global(offset, module.v, name.v, 'STACK_GLOBAL');
        } else if (!mayBeStr(module) || !mayBeStr(name)) {
          throw new LoaderError('STACK_GLOBAL requires str');
        } else {
          this.refuse(offset, 'unresolved-global', 'STACK_GLOBAL whose module or name the scanner cannot resolve statically');
          stack.push(UNKNOWN);
        }
        return true;
      }
      case 0x82:
      case 0x83:
      case 0x84: {
        // EXT1/2/4: copyreg's extension registry names a global at load time
        const w = op === 0x82 ? 1 : op === 0x83 ? 2 : 4;
        if (!need(w)) return false;
        advance(at + 1 + w);
        // A process's extension registry is empty unless a library fills it: in bytes that did not
        // start as a protocol-2+ pickle (random data) the loader fails here
        if (!m.protoSeen) throw new LoaderError('unregistered extension code');
        this.refuse(offset, 'unresolved-global', 'EXT opcode: the global comes from the loading process’s copyreg extension registry');
        stack.push(UNKNOWN);
        return true;
      }
      case 0x6f: {
        // OBJ: cls and args after the MARK
        const items = this.popMark();
        const cls = items.shift();
        if (!cls) throw new LoaderError('unpickling stack underflow');
        if (cls.t !== 'global') this.refuse(offset, 'unresolved-global', 'OBJ on a class the scanner cannot resolve statically');
        this.m.stack.push(this.instance(cls, { t: 'tuple', items }, items.length > 0, { t: 'obj', cls }));
        advance(at + 1);
        return true;
      }
      case 0x81:
      case 0x92: {
        // NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args), no __init__
        if (op === 0x92) this.pop();
        this.pop();
        const cls = this.pop();
        stack.push(this.instance(cls, undefined, false, { t: 'obj', cls }));
        advance(at + 1);
        return true;
      }
      case 0x52: {
        // REDUCE
        const args = this.pop();
        const fn = this.pop();
        const fallback: V = { t: 'call', fn, args };
        let made = this.instance(fn, args, true, fallback);
        if (made === fallback && fn.t === 'global' && CLASS_FROM_ARG.has(`${fn.module}.${fn.name}`) && args.t === 'tuple' && args.items[0])
          made = this.instance(args.items[0], undefined, false, fallback);
        stack.push(made);
        advance(at + 1);
        return true;
      }
      case 0x62: {
        // BUILD
        const state = this.pop();
        const target = this.top();
        advance(at + 1);
        this.build(offset, target, state);
        return true;
      }
      case 0x50: {
        // PERSID: the loader's persistent_load decides (torch storages)
        const nl = line(at + 1);
        if (nl === undefined) return false;
        stack.push(UNKNOWN);
        advance(nl + 1);
        return true;
      }
      case 0x51:
        this.pop();
        stack.push(UNKNOWN);
        advance(at + 1);
        return true; // BINPERSID
      case 0x70:
      case 0x67: {
        // PUT / GET (text index)
        const nl = line(at + 1);
        if (nl === undefined) return false;
        const idx = Number(b.toString('latin1', at + 1, nl));
        if (!Number.isSafeInteger(idx)) throw new LoaderError('bad memo index');
        advance(nl + 1);
        this.memoOp(op === 0x70, idx);
        return true;
      }
      case 0x71:
      case 0x68:
        if (!need(1)) return false;
        advance(at + 2);
        this.memoOp(op === 0x71, b[at + 1]!);
        return true;
      case 0x72:
      case 0x6a:
        if (!need(4)) return false;
        advance(at + 5);
        this.memoOp(op === 0x72, b.readUInt32LE(at + 1));
        return true;
      case 0x94:
        advance(at + 1);
        m.memo.set(m.memo.size, this.top());
        return true; // MEMOIZE: index is len(memo), as pickle does
      default:
        throw new LoaderError(`invalid load key 0x${op.toString(16).padStart(2, '0')}`);
    }
  }

  /** Skips a large argument's bytes: they must lie in the current frame, if any. */
  private skipData(n: number): void {
    if (this.m.frameEnd !== undefined && this.base + this.pos + n > this.m.frameEnd)
      this.frameIssue(this.base + this.pos, 'an opcode crosses the end of its FRAME');
    this.skipBytes(n);
  }

  private memoOp(put: boolean, idx: number): void {
    if (put) {
      this.m.memo.set(idx, this.top());
      return;
    }
    const v = this.m.memo.get(idx);
    if (v === undefined) throw new LoaderError(`memo value not found at index ${idx}`);
    this.m.stack.push(v);
  }

  /** BUILD: the state lands on the target; under joblib a NumpyArrayWrapper then reads its array. */
  private build(offset: number, target: V, state: V): void {
    if (target.t === 'call') target.state = state;
    if (!this.m.joblib) return;
    // BUILD's slot state calls setattr: a `__class__` there could make an object a wrapper, or not.
    if (state.t === 'tuple' && state.items.length === 2 && state.items[1]!.t !== 'none' && this.joblibSeen) {
      const slots = state.items[1]!;
      if (slots.t !== 'dict' || !slots.complete || slots.entries.some(([k]) => k.t !== 'str' || k.v === '__class__'))
        throw new Unscannable('joblib: a BUILD sets attributes the scanner cannot name, so it cannot tell whether array bytes follow');
    }
    const isWrapper = this.isWrapper(target);
    if (isWrapper === undefined && this.joblibSeen)
      throw new Unscannable('joblib: BUILD on an object the scanner cannot identify, so it cannot tell whether array bytes follow');
    if (target.t !== 'wrapper') return;
    mergeState(target, state);
    this.readArray(offset, target);
  }

  /** joblib's NumpyArrayWrapper.read_array: how many bytes follow, or a nested pickle. */
  private readArray(offset: number, w: Extract<V, { t: 'wrapper' }>): void {
    const fail = (why: string): never => {
      throw new Unscannable(`joblib: cannot size the array that follows the NumpyArrayWrapper at byte ${offset} (${why})`);
    };
    if (!w.complete) fail('its attributes are not all known');
    const shape = w.attrs.get('shape');
    if (!shape || shape.t !== 'tuple' || !shape.items.every((i) => i.t === 'int' && i.v >= 0)) return fail('shape');
    let count = 1;
    for (const i of shape.items) count *= (i as { v: number }).v;
    const dtype = numpyDtype(w.attrs.get('dtype'));
    if (!dtype) return fail('dtype');
    let read: ArrayRead;
    if (dtype.hasObject) {
      if (this.outer.length >= MAX_NESTING) fail('object arrays nested too deeply');
      read = { kind: 'nested' };
    } else {
      if (dtype.itemSize === 0) throw new LoaderError('an array of zero-sized items (joblib divides by the item size)');
      const bytes = count * dtype.itemSize;
      if (!Number.isSafeInteger(bytes)) return fail('size');
      const align = w.attrs.get('numpy_array_alignment_bytes');
      read = { kind: 'raw', bytes, pad: align !== undefined && align.t !== 'none' };
    }
    // the array replaces the wrapper on the stack; the memo keeps the wrapper
    this.m.stack.pop();
    this.m.stack.push(OTHER);
    if (this.m.frameEnd !== undefined && this.base + this.pos < this.m.frameEnd) this.m.deferred.push(read);
    else this.startArray(read);
  }

  /** Reads past one joblib array at the current position. */
  private startArray(read: ArrayRead): void {
    if (read.kind === 'nested') {
      this.outer.push(this.m); // joblib calls pickle.load on the file here: a new unpickler
      this.m = machine(new Map(), false);
    } else if (read.pad) {
      this.padPending = true;
      this.pendingArrayBytes = read.bytes;
    } else this.skipBytes(read.bytes);
  }

  /** A frame the C and the Python unpicklers read differently: refused, and read on as the C one reads it. */
  private frameIssue(offset: number, message: string): void {
    if (!this.findings.some((f) => f.kind === 'unscannable' && f.message === message)) this.refuse(offset, 'unscannable', message);
  }
}

/** A Python 2 str decoded as the loaders decode it (ASCII by default, UTF-8 in torch.load). */
function py2Str(latin1: string): string {
  const bytes = Buffer.from(latin1, 'latin1');
  const utf = bytes.toString('utf8');
  return Buffer.from(utf, 'utf8').equals(bytes) ? utf : latin1;
}

/** `codecs.escape_decode` of a STRING argument (latin1 in, latin1 out). */
function escapeDecode(s: string): string {
  const simple: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\n': '' };
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = s[++i];
    if (e === undefined) throw new LoaderError('trailing \\ in string');
    if (e in simple) out += simple[e];
    else if (e === 'x') {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new LoaderError('invalid \\x escape');
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (/[0-7]/.test(e)) {
      const oct = /^[0-7]{1,3}/.exec(s.slice(i))![0];
      out += String.fromCharCode(parseInt(oct, 8) & 0xff);
      i += oct.length - 1;
    } else out += `\\${e}`;
  }
  return out;
}

/** `raw_unicode_escape` decoding of a UNICODE argument: only \\uXXXX and \\UXXXXXXXX after an odd run of backslashes. */
function rawUnicodeEscape(s: string): string {
  let out = '';
  for (let i = 0; i < s.length;) {
    if (s[i] !== '\\') {
      out += s[i++];
      continue;
    }
    let run = 0;
    while (s[i + run] === '\\') run++;
    const kind = s[i + run];
    if ((kind === 'u' || kind === 'U') && run % 2 === 1) {
      const n = kind === 'u' ? 4 : 8;
      const hex = s.slice(i + run + 1, i + run + 1 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) throw new LoaderError(`truncated \\${kind} escape`);
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) throw new LoaderError('\\U escape out of range');
      out += '\\'.repeat(run - 1) + String.fromCodePoint(cp);
      i += run + 1 + n;
    } else {
      out += '\\'.repeat(run);
      i += run;
    }
  }
  return out;
}

function plain(v: V, depth: number): PickleValue {
  if (v.t === 'int') return v.v;
  if (v.t === 'str') return v.v;
  if (v.t === 'global') return { global: `${v.module}.${v.name}` };
  if (v.t === 'tuple' && depth < 4) return v.items.map((x) => plain(x, depth + 1));
  return null;
}

function intValue(v: bigint): V {
  const n = Number(v);
  return Number.isSafeInteger(n) ? { t: 'int', v: n, big: v } : { t: 'int', v: NaN, big: v };
}

function utf8(b: Buffer, start: number, end: number): string {
  const s = b.toString('utf8', start, end);
  if (s.includes('\ufffd') && !Buffer.from(s, 'utf8').equals(b.subarray(start, end))) throw new LoaderError('a global name is not valid UTF-8');
  return s;
}

/** A value that a loader might accept where it requires a str. */
function mayBeStr(v: V): boolean {
  return !['int', 'none', 'bool', 'tuple', 'dict', 'other'].includes(v.t);
}

function setItem(d: V, k: V, v: V): void {
  if (d.t !== 'dict') return;
  if (d.entries.length >= MAX_DICT_KEPT || (k.t !== 'str' && k.t !== 'int' && k.t !== 'none' && k.t !== 'bool')) {
    d.complete = false;
    return;
  }
  const i = k.t === 'str' ? d.entries.findIndex(([x]) => x.t === 'str' && x.v === k.v) : -1;
  if (i >= 0) d.entries[i] = [k, v];
  else d.entries.push([k, v]);
}

/** Python's load_build on an object without __setstate__: `__dict__.update(state)`, then setattr for slot state. */
function mergeState(w: Extract<V, { t: 'wrapper' }>, state: V): void {
  const parts = state.t === 'tuple' && state.items.length === 2 ? state.items : [state, NONE];
  parts.forEach((part, slots) => {
    if (part.t === 'none') return;
    if (part.t !== 'dict' || !part.complete) {
      w.complete = false;
      return;
    }
    for (const [k, v] of part.entries) {
      if (k.t === 'str') w.attrs.set(k.v, v);
      else if (slots) w.complete = false; // setattr with a name that is no str fails
    }
  });
}

interface DtypeInfo {
  itemSize: number;
  hasObject: boolean;
}

/** Item sizes NumPy gives the fixed-size kinds, by code letter. */
const FIXED_SIZES: Record<string, number[]> = { b: [1], i: [1, 2, 4, 8], u: [1, 2, 4, 8], f: [2, 4, 8, 12, 16], c: [8, 16, 24, 32], M: [8], m: [8], O: [4, 8] };

/**
 * What a pickled `numpy.dtype(code, False, True)` plus its `__setstate__` tuple is, as NumPy's
 * `arraydescr_setstate` builds it: a fixed-size kind keeps the size of its code, a flexible one
 * (S, U, V: strings, structured and subarray dtypes) takes the state's element size, and
 * `hasobject` is the state's NPY_ITEM_HASOBJECT flag, whatever the code says. Anything else is
 * undefined: the caller refuses.
 */
function numpyDtype(d: V | undefined): DtypeInfo | undefined {
  if (!d || d.t !== 'call' || d.fn.t !== 'global') return undefined;
  if (!['numpy.dtype', 'numpy.core.multiarray.dtype', 'numpy._core.multiarray.dtype'].includes(`${d.fn.module}.${d.fn.name}`)) return undefined;
  if (d.args.t !== 'tuple' || d.args.items[0]?.t !== 'str') return undefined;
  const m = /^([biufcOMmSUV])(\d+)$/.exec(d.args.items[0].v);
  if (!m) return undefined;
  const kind = m[1]!;
  const n = Number(m[2]);
  const flexible = kind === 'S' || kind === 'U' || kind === 'V';
  if (!flexible && !FIXED_SIZES[kind]!.includes(n)) return undefined;
  if (d.state === undefined) return { itemSize: kind === 'U' ? 4 * n : n, hasObject: kind === 'O' };
  const st = d.state.t === 'tuple' ? d.state.items : [];
  if (st.length < 8 || st.length > 9 || st[0]?.t !== 'int' || (st[0].v !== 3 && st[0].v !== 4)) return undefined;
  const elsize = st[5];
  const flags = st[7];
  if (elsize?.t !== 'int' || flags?.t !== 'int' || !Number.isSafeInteger(elsize.v) || !Number.isSafeInteger(flags.v)) return undefined;
  const itemSize = flexible ? elsize.v : n;
  if (itemSize < 0) return undefined;
  return { itemSize, hasObject: (flags.v & 1) === 1 };
}

/** Scans one complete pickle stream (or a joblib file's bytes). */
export function scanPickleBytes(bytes: Uint8Array, opts: PickleScanOptions = {}): PickleFinding[] {
  const s = new PickleScanner(opts);
  s.push(bytes);
  return s.end();
}
