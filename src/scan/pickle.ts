/**
 * A pickle reader that never unpickles (SPEC v2 §8): it walks the opcodes of protocols 0–5 with a
 * symbolic stack and memo, so a STACK_GLOBAL whose module and name arrive through BINPUT/BINGET/
 * MEMOIZE (picklescan#14, picklescan#52) is resolved exactly as pickle would, and anything it cannot
 * resolve is a finding, never a pass. It also understands joblib's layout: after the BUILD of a
 * NumpyArrayWrapper, joblib writes the array's raw bytes (or, for object arrays, a nested pickle)
 * into the same stream; the scanner computes their length from the wrapper's shape and dtype and
 * skips them, and refuses the file when it cannot. Pure: bytes in, findings out.
 */
import { DEFAULT_ALLOWED_GLOBALS, effectiveModule, globalMatcher } from './allowlist.js';

/** One reason an artifact is refused. `offset` is the byte offset of the opcode in `file`. */
export interface PickleFinding {
  file: string;
  offset: number;
  kind: 'global' | 'unresolved-global' | 'unscannable';
  /** `module.name` of the refused global, when known. */
  global?: string;
  message: string;
}

export interface PickleScanOptions {
  /** Name reported in findings (a path inside the artifact). */
  file?: string;
  /** Globals allowed besides DEFAULT_ALLOWED_GLOBALS (policy `scan.allowGlobals`). */
  allowGlobals?: readonly string[];
  /** Read joblib's raw arrays after NumpyArrayWrapper BUILDs (set for `joblib` artifacts and sniffed ones). */
  joblib?: boolean;
  /** Byte offset of the first byte in the file (a pickle inside a zip member is reported relative to the member). */
  baseOffset?: number;
}

type V =
  | { t: 'str'; v: string }
  | { t: 'int'; v: number }
  | { t: 'none' }
  | { t: 'global'; module: string; name: string }
  | { t: 'tuple'; items: V[] }
  | { t: 'dict'; entries: Array<[V, V]> }
  | { t: 'call'; fn: V; args: V; state?: V }
  | { t: 'obj'; cls: V; state?: V }
  | { t: 'other' };

const OTHER: V = { t: 'other' };
const NONE: V = { t: 'none' };
/** Longest string kept for global resolution; longer ones are skipped and become unknown. */
const MAX_KEPT = 1 << 16;
/** Longest text argument (GLOBAL, INT, …) a well-formed pickle has. */
const MAX_LINE = 1 << 16;
const MAX_DICT_KEPT = 64;
const NAW = 'joblib.numpy_pickle.NumpyArrayWrapper';

const OPNAMES: Record<number, string> = {};
for (const [name, ch] of Object.entries({
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  POP_MARK: 0x31,
  DUP: 0x32,
  FLOAT: 0x46,
  INT: 0x49,
  BININT: 0x4a,
  BININT1: 0x4b,
  LONG: 0x4c,
  BININT2: 0x4d,
  NONE: 0x4e,
  PERSID: 0x50,
  BINPERSID: 0x51,
  REDUCE: 0x52,
  STRING: 0x53,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  UNICODE: 0x56,
  BINUNICODE: 0x58,
  APPEND: 0x61,
  BUILD: 0x62,
  GLOBAL: 0x63,
  DICT: 0x64,
  EMPTY_DICT: 0x7d,
  APPENDS: 0x65,
  GET: 0x67,
  BINGET: 0x68,
  INST: 0x69,
  LONG_BINGET: 0x6a,
  LIST: 0x6c,
  EMPTY_LIST: 0x5d,
  OBJ: 0x6f,
  PUT: 0x70,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  SETITEM: 0x73,
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  SETITEMS: 0x75,
  BINFLOAT: 0x47,
  PROTO: 0x80,
  NEWOBJ: 0x81,
  EXT1: 0x82,
  EXT2: 0x83,
  EXT4: 0x84,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  LONG4: 0x8b,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  NEWOBJ_EX: 0x92,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97,
  READONLY_BUFFER: 0x98,
}))
  OPNAMES[ch] = name;

class Malformed extends Error {}

interface Machine {
  stack: V[];
  meta: V[][];
  memo: Map<number, V>;
  proto: number;
}
const freshMachine = (): Machine => ({ stack: [], meta: [], memo: new Map(), proto: 0 });

/**
 * Push parser over one pickle-bearing byte stream: `push` chunks in order, then `end`. Memory stays
 * bounded: large byte/str arguments and joblib array bodies are skipped, not buffered.
 */
export class PickleScanner {
  readonly findings: PickleFinding[] = [];
  private readonly file: string;
  private readonly allowed: (module: string, name: string) => boolean;
  private readonly joblib: boolean;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** File offset of buf[0]. */
  private base: number;
  private skip = 0;
  /** After skipping, a value to push (a large string or bytes). */
  private afterSkip: V | undefined;
  private m: Machine = freshMachine();
  /** Machines suspended while joblib's nested object-array pickles run. */
  private outer: Machine[] = [];
  private joblibSeen = false;
  /** Joblib alignment padding: a length byte still to read. */
  private padPending = false;
  private pendingArrayBytes = 0;
  private stopped = false;
  private started = false;
  /** Inside a pickle (between its first opcode and its STOP). */
  private inPickle = false;
  private afterStop = false;

  constructor(opts: PickleScanOptions = {}) {
    this.file = opts.file ?? '(pickle)';
    this.allowed = globalMatcher([...DEFAULT_ALLOWED_GLOBALS, ...(opts.allowGlobals ?? [])]);
    this.joblib = opts.joblib ?? false;
    this.base = opts.baseOffset ?? 0;
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

  /** Ends the stream; a pickle cut short is a finding. */
  end(): PickleFinding[] {
    if (!this.stopped) {
      const pendingBytes = this.buf.length - this.pos;
      if (!this.started || this.inPickle || this.skip > 0 || this.padPending || pendingBytes > 0) {
        this.refuse(
          this.base + this.pos,
          'unscannable',
          !this.started ? 'empty stream: no pickle to read' : 'the pickle stream ends before its STOP opcode (truncated or not a pickle)',
        );
      }
    }
    this.stopped = true;
    return this.findings;
  }

  private refuse(offset: number, kind: PickleFinding['kind'], message: string, global?: string): void {
    this.findings.push({ file: this.file, offset, kind, ...(global === undefined ? {} : { global }), message });
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
      if (!(e instanceof Malformed)) throw e;
      this.refuse(this.base + this.pos, 'unscannable', `malformed pickle: ${e.message}`);
      this.stopped = true;
    }
  }

  private pop(): V {
    const v = this.m.stack.pop();
    if (v === undefined) throw new Malformed('stack underflow');
    return v;
  }

  private popMark(): V[] {
    const items = this.m.stack;
    const prev = this.m.meta.pop();
    if (prev === undefined) throw new Malformed('no MARK on the stack');
    this.m.stack = prev;
    return items;
  }

  private top(): V {
    const v = this.m.stack[this.m.stack.length - 1];
    if (v === undefined) throw new Malformed('stack underflow');
    return v;
  }

  /** Checks and pushes a global reference. */
  private global(offset: number, rawModule: string, name: string, opname: string): void {
    const module = effectiveModule(rawModule, this.m.proto);
    const full = `${module}.${name}`;
    if (!this.allowed(module, name)) {
      this.refuse(offset, 'global', `${opname} ${full} is not in the allowed globals`, full);
    }
    if (full === NAW) this.joblibSeen = true;
    this.m.stack.push({ t: 'global', module, name });
  }

  /** The class an object value was built from, when the scanner can tell. */
  private classOf(v: V): string | undefined {
    const g = (x: V | undefined) => (x && x.t === 'global' ? `${x.module}.${x.name}` : undefined);
    if (v.t === 'obj') return g(v.cls);
    if (v.t === 'call') {
      const fn = g(v.fn);
      if (fn === 'copyreg._reconstructor' || fn === 'copyreg.__newobj__') return v.args.t === 'tuple' ? g(v.args.items[0]) : undefined;
      return fn;
    }
    return undefined;
  }

  /** Reads one opcode; false when the buffer does not hold all of it yet. */
  private step(): boolean {
    const b = this.buf;
    const at = this.pos;
    const offset = this.base + at;
    const op = b[at]!;
    const avail = b.length - at - 1;
    const need = (n: number) => avail >= n;
    const line = (from: number): number | undefined => {
      const nl = b.indexOf(0x0a, from);
      if (nl >= 0) return nl;
      if (b.length - from > MAX_LINE) throw new Malformed('text argument too long');
      return undefined;
    };
    const stack = this.m.stack;
    if (!this.inPickle) {
      this.started = true;
      this.inPickle = true;
    }
    switch (op) {
      case 0x80: {
        // PROTO
        if (!need(1)) return false;
        this.m.proto = b[at + 1]!;
        if (this.m.proto > 5) throw new Malformed(`unsupported protocol ${this.m.proto}`);
        this.pos += 2;
        return true;
      }
      case 0x95: {
        // FRAME: frames only batch reads; the opcodes inside are read in line
        if (!need(8)) return false;
        this.pos += 9;
        return true;
      }
      case 0x2e: {
        // STOP
        this.pos += 1;
        const outer = this.outer.pop();
        if (outer) {
          this.m = outer; // joblib object array done: the object array replaces the wrapper
          this.m.stack.push(OTHER);
        } else {
          this.m = freshMachine(); // a following pickle is a new load(), with its own memo
          this.inPickle = false;
          this.afterStop = true;
        }
        return true;
      }
      case 0x28:
        this.m.meta.push(stack);
        this.m.stack = [];
        this.pos += 1;
        return true; // MARK
      case 0x30:
        this.pop();
        this.pos += 1;
        return true; // POP
      case 0x31:
        this.popMark();
        this.pos += 1;
        return true; // POP_MARK
      case 0x32:
        stack.push(this.top());
        this.pos += 1;
        return true; // DUP
      case 0x4e:
        stack.push(NONE);
        this.pos += 1;
        return true;
      case 0x88:
      case 0x89:
        stack.push(OTHER);
        this.pos += 1;
        return true; // NEWTRUE / NEWFALSE
      case 0x4a:
        if (!need(4)) return false;
        stack.push({ t: 'int', v: b.readInt32LE(at + 1) });
        this.pos += 5;
        return true;
      case 0x4b:
        if (!need(1)) return false;
        stack.push({ t: 'int', v: b[at + 1]! });
        this.pos += 2;
        return true;
      case 0x4d:
        if (!need(2)) return false;
        stack.push({ t: 'int', v: b.readUInt16LE(at + 1) });
        this.pos += 3;
        return true;
      case 0x47:
        if (!need(8)) return false;
        stack.push(OTHER);
        this.pos += 9;
        return true; // BINFLOAT
      case 0x8a:
      case 0x8b: {
        // LONG1 / LONG4
        const w = op === 0x8a ? 1 : 4;
        if (!need(w)) return false;
        const n = w === 1 ? b[at + 1]! : b.readUInt32LE(at + 1);
        if (n <= 6) {
          if (!need(w + n)) return false;
          stack.push({ t: 'int', v: n === 0 ? 0 : b.readIntLE(at + 1 + w, n) });
          this.pos += 1 + w + n;
          return true;
        }
        this.pos += 1 + w;
        this.afterSkip = OTHER;
        this.skipBytes(n);
        return true;
      }
      case 0x49:
      case 0x4c:
      case 0x46: {
        // INT / LONG / FLOAT (text)
        const nl = line(at + 1);
        if (nl === undefined) return false;
        const text = b.toString('latin1', at + 1, nl).replace(/L$/, '');
        const n = Number(text);
        stack.push(op !== 0x46 && Number.isSafeInteger(n) && text !== '00' && text !== '01' ? { t: 'int', v: n } : OTHER);
        this.pos = nl + 1;
        return true;
      }
      case 0x53: {
        // STRING: a quoted Python 2 str repr
        const nl = line(at + 1);
        if (nl === undefined) return false;
        const raw = b.toString('latin1', at + 1, nl);
        const m = /^(['"])(.*)\1$/s.exec(raw);
        if (!m) throw new Malformed('STRING argument is not quoted');
        const body = m[2]!;
        stack.push(body.includes('\\') ? OTHER : { t: 'str', v: body });
        this.pos = nl + 1;
        return true;
      }
      case 0x56: {
        // UNICODE: raw-unicode-escape text
        const nl = line(at + 1);
        if (nl === undefined) return false;
        const raw = b.toString('latin1', at + 1, nl);
        stack.push(raw.includes('\\') ? OTHER : { t: 'str', v: Buffer.from(raw, 'latin1').toString('latin1') });
        this.pos = nl + 1;
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
        if (!Number.isSafeInteger(len)) throw new Malformed('argument length out of range');
        const isText = op === 0x8c || op === 0x58 || op === 0x8d || op === 0x55 || op === 0x54;
        if (len <= MAX_KEPT) {
          if (!need(w + len)) return false;
          const start = at + 1 + w;
          // str arguments decode as UTF-8 (unicode) or, with the default encoding, ASCII (py2 str)
          stack.push(isText ? { t: 'str', v: b.toString(op === 0x55 || op === 0x54 ? 'latin1' : 'utf8', start, start + len) } : OTHER);
          this.pos = start + len;
          return true;
        }
        this.pos += 1 + w;
        this.afterSkip = OTHER;
        this.skipBytes(len);
        return true;
      }
      case 0x97:
      case 0x98:
        this.pos += 1;
        if (op === 0x97) stack.push(OTHER);
        return true; // NEXT_BUFFER / READONLY_BUFFER
      case 0x5d:
      case 0x8f:
        stack.push(OTHER);
        this.pos += 1;
        return true; // EMPTY_LIST / EMPTY_SET
      case 0x29:
        stack.push({ t: 'tuple', items: [] });
        this.pos += 1;
        return true;
      case 0x7d:
        stack.push({ t: 'dict', entries: [] });
        this.pos += 1;
        return true;
      case 0x6c:
      case 0x91:
        this.popMark();
        this.m.stack.push(OTHER);
        this.pos += 1;
        return true; // LIST / FROZENSET
      case 0x74: {
        const items = this.popMark();
        this.m.stack.push({ t: 'tuple', items });
        this.pos += 1;
        return true;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        const n = op - 0x84;
        if (stack.length < n) throw new Malformed('stack underflow');
        stack.push({ t: 'tuple', items: stack.splice(stack.length - n, n) });
        this.pos += 1;
        return true;
      }
      case 0x64: {
        // DICT
        const items = this.popMark();
        const entries: Array<[V, V]> = [];
        for (let i = 0; i + 1 < items.length && entries.length < MAX_DICT_KEPT; i += 2) entries.push([items[i]!, items[i + 1]!]);
        this.m.stack.push({ t: 'dict', entries });
        this.pos += 1;
        return true;
      }
      case 0x61:
        this.pop();
        this.top();
        this.pos += 1;
        return true; // APPEND
      case 0x65:
      case 0x90:
        this.popMark();
        this.top();
        this.pos += 1;
        return true; // APPENDS / ADDITEMS
      case 0x73: {
        // SETITEM
        const v = this.pop();
        const k = this.pop();
        const d = this.top();
        if (d.t === 'dict' && d.entries.length < MAX_DICT_KEPT) d.entries.push([k, v]);
        this.pos += 1;
        return true;
      }
      case 0x75: {
        // SETITEMS
        const items = this.popMark();
        const d = this.top();
        for (let i = 0; i + 1 < items.length; i += 2) if (d.t === 'dict' && d.entries.length < MAX_DICT_KEPT) d.entries.push([items[i]!, items[i + 1]!]);
        this.pos += 1;
        return true;
      }
      case 0x63:
      case 0x69: {
        // GLOBAL / INST: "module\nname\n"
        const nl1 = line(at + 1);
        if (nl1 === undefined) return false;
        const nl2 = line(nl1 + 1);
        if (nl2 === undefined) return false;
        // GLOBAL's arguments decode as UTF-8 in Python 3's C unpickler
        const module = b.toString('utf8', at + 1, nl1);
        const name = b.toString('utf8', nl1 + 1, nl2);
        this.pos = nl2 + 1;
        if (op === 0x63) {
          this.global(offset, module, name, 'GLOBAL');
        } else {
          const args = this.popMark();
          this.global(offset, module, name, 'INST');
          const cls = this.m.stack.pop()!;
          this.m.stack.push({ t: 'obj', cls, state: { t: 'tuple', items: args } });
        }
        return true;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        this.pos += 1;
        if (module.t === 'str' && name.t === 'str') {
          this.global(offset, module.v, name.v, 'STACK_GLOBAL');
        } else {
          this.refuse(offset, 'unresolved-global', 'STACK_GLOBAL whose module or name the scanner cannot resolve statically');
          stack.push(OTHER);
        }
        return true;
      }
      case 0x82:
      case 0x83:
      case 0x84: {
        // EXT1/2/4: copyreg's extension registry names a global at load time
        const w = op === 0x82 ? 1 : op === 0x83 ? 2 : 4;
        if (!need(w)) return false;
        this.pos += 1 + w;
        this.refuse(offset, 'unresolved-global', 'EXT opcode: the global comes from the loading process’s copyreg extension registry');
        stack.push(OTHER);
        return true;
      }
      case 0x6f: {
        // OBJ: cls and args after the MARK
        const items = this.popMark();
        const cls = items.shift();
        if (!cls) throw new Malformed('OBJ without a class');
        if (cls.t !== 'global') this.refuse(offset, 'unresolved-global', 'OBJ on a class the scanner cannot resolve statically');
        this.m.stack.push({ t: 'obj', cls });
        this.pos += 1;
        return true;
      }
      case 0x81: {
        // NEWOBJ
        this.pop();
        const cls = this.pop();
        stack.push({ t: 'obj', cls });
        this.pos += 1;
        return true;
      }
      case 0x92: {
        // NEWOBJ_EX
        this.pop();
        this.pop();
        const cls = this.pop();
        stack.push({ t: 'obj', cls });
        this.pos += 1;
        return true;
      }
      case 0x52: {
        // REDUCE
        const args = this.pop();
        const fn = this.pop();
        stack.push({ t: 'call', fn, args });
        this.pos += 1;
        return true;
      }
      case 0x62: {
        // BUILD
        const state = this.pop();
        const target = this.top();
        if (target.t === 'call' || target.t === 'obj') target.state = state;
        this.pos += 1;
        if (this.joblib) this.afterBuild(offset, target, state);
        return true;
      }
      case 0x50: {
        // PERSID: the loader's persistent_load decides (torch storages)
        const nl = line(at + 1);
        if (nl === undefined) return false;
        stack.push(OTHER);
        this.pos = nl + 1;
        return true;
      }
      case 0x51:
        this.pop();
        stack.push(OTHER);
        this.pos += 1;
        return true; // BINPERSID
      case 0x70:
      case 0x67: {
        // PUT / GET (text index)
        const nl = line(at + 1);
        if (nl === undefined) return false;
        const idx = Number(b.toString('latin1', at + 1, nl));
        if (!Number.isSafeInteger(idx)) throw new Malformed('bad memo index');
        this.pos = nl + 1;
        this.memoOp(op === 0x70, idx);
        return true;
      }
      case 0x71:
      case 0x68:
        if (!need(1)) return false;
        this.pos += 2;
        this.memoOp(op === 0x71, b[at + 1]!);
        return true;
      case 0x72:
      case 0x6a:
        if (!need(4)) return false;
        this.pos += 5;
        this.memoOp(op === 0x72, b.readUInt32LE(at + 1));
        return true;
      case 0x94:
        this.pos += 1;
        this.m.memo.set(this.m.memo.size, this.top());
        return true; // MEMOIZE: index is len(memo), as pickle does
      default:
        if (this.afterStop) {
          this.refuse(offset, 'unscannable', `bytes after the pickle's STOP are not a pickle (byte 0x${op.toString(16).padStart(2, '0')})`);
        } else {
          this.refuse(offset, 'unscannable', `unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
        }
        this.stopped = true;
        return true;
    }
  }

  private memoOp(put: boolean, idx: number): void {
    if (put) {
      this.m.memo.set(idx, this.top());
      return;
    }
    // A GET of an index never PUT makes pickle fail; the value is unknown, so anything it feeds is unresolved.
    this.m.stack.push(this.m.memo.get(idx) ?? OTHER);
  }

  /** Joblib: after a NumpyArrayWrapper's BUILD come the array bytes; work out how many. */
  private afterBuild(offset: number, target: V, state: V): void {
    const cls = this.classOf(target);
    if (cls !== NAW) {
      if (cls === undefined && this.joblibSeen) {
        this.refuse(offset, 'unscannable', 'joblib: BUILD on an object the scanner cannot identify, so it cannot tell whether array bytes follow');
        this.stopped = true;
      }
      return;
    }
    const field = (key: string): V | undefined => (state.t === 'dict' ? state.entries.find(([k]) => k.t === 'str' && k.v === key)?.[1] : undefined);
    const shape = field('shape');
    const dtype = field('dtype');
    const align = field('numpy_array_alignment_bytes');
    const fail = (why: string) => {
      this.refuse(offset, 'unscannable', `joblib: cannot read the array that follows this NumpyArrayWrapper (${why})`);
      this.stopped = true;
    };
    if (!shape || shape.t !== 'tuple' || !shape.items.every((i) => i.t === 'int' && i.v >= 0)) return fail('shape');
    const count = shape.items.reduce((n, i) => n * (i as { v: number }).v, 1);
    const item = dtypeInfo(dtype);
    if (item === undefined) return fail('dtype');
    if (item === 'object') {
      this.outer.push(this.m); // joblib pickles object arrays as a nested pickle (protocol 2) here
      this.m = freshMachine();
      return;
    }
    this.m.stack.pop();
    this.m.stack.push(OTHER);
    const bytes = count * item;
    if (!Number.isSafeInteger(bytes)) return fail('size');
    if (align !== undefined && align.t !== 'none') {
      if (align.t !== 'int') return fail('alignment');
      this.padPending = true;
      this.pendingArrayBytes = bytes;
      return;
    }
    this.skipBytes(bytes);
  }
}

/** Item size of a pickled numpy dtype (`numpy.dtype('f8', False, True)` + state), or 'object'. */
function dtypeInfo(d: V | undefined): number | 'object' | undefined {
  if (!d || d.t !== 'call' || d.fn.t !== 'global' || d.fn.name !== 'dtype' || !d.fn.module.startsWith('numpy')) return undefined;
  if (d.args.t !== 'tuple' || d.args.items[0]?.t !== 'str') return undefined;
  const code = d.args.items[0].v;
  const st = d.state?.t === 'tuple' ? d.state.items : [];
  const names = st[3];
  if (names && names.t !== 'none') return undefined; // structured: fields may hold objects
  if (code.startsWith('O')) return 'object';
  const elsize = st[5];
  if (elsize && elsize.t === 'int' && elsize.v > 0) return elsize.v;
  const m = /^[a-zA-Z](\d+)$/.exec(code);
  if (!m) return code === 'b1' ? 1 : undefined;
  return Number(m[1]);
}

/** Scans one complete pickle stream (or a joblib file's bytes). */
export function scanPickleBytes(bytes: Uint8Array, opts: PickleScanOptions = {}): PickleFinding[] {
  const s = new PickleScanner(opts);
  s.push(bytes);
  return s.end();
}

/** Streaming variant: the same scan over chunks, for files too large to hold. */
export async function scanPickleStream(chunks: AsyncIterable<Uint8Array>, opts: PickleScanOptions = {}): Promise<PickleFinding[]> {
  const s = new PickleScanner(opts);
  for await (const c of chunks) s.push(c);
  return s.end();
}
