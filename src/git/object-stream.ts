import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { ExitCode, ModelgateError, serviceError } from '../errors.js';

/** An object as `git cat-file --batch-command` gives it: its id, type and (for `contents`) bytes. */
export interface GitObject {
  oid: string;
  type: string;
  size: number;
  /** Undefined for an `info` request. */
  bytes?: Buffer;
}

interface Request {
  contents: boolean;
  resolve: (o: GitObject | undefined) => void;
  reject: (e: Error) => void;
}

/**
 * One long-lived `git cat-file --batch-command --buffer` process of a repository: every object a
 * command reads (blobs by id, `<rev>:<path>`, trees, `<rev>^{commit}`) goes through it, however
 * many, in order. Requests made in one turn of the event loop are written together and flushed
 * once, so a caller that asks for many objects before awaiting any pays one round trip, not one
 * process or one round trip each. The process holds the event loop only while requests are
 * pending: an idle stream never keeps a command from exiting, and ends its process after IDLE_MS
 * (git ends at the end of its input), so a long-lived server holds none while it does nothing.
 */
export class ObjectStream {
  private child?: ChildProcessByStdio<Writable, Readable, Readable>;
  /** Requests in the order asked; those before `head` are answered (emptied, so an answer is not kept alive by its request). */
  private readonly queue: Array<Request | undefined> = [];
  private head = 0;
  private lines: string[] = [];
  private flushing = false;
  /** Ends the process once nothing was asked for a while (a long-lived server keeps no idle git). */
  private idle?: NodeJS.Timeout;
  /** Bytes received and not yet consumed (part of a header). */
  private rest: Buffer = EMPTY;
  /** The response being read: its header, and the bytes of its content still to come. */
  private current?: { request: Request; object: GitObject; parts: Buffer[]; missing: number };
  private stderr = '';

  constructor(
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** The object named `name` (an id or any revision expression without a line break), or undefined when there is none. */
  read(name: string): Promise<GitObject | undefined> {
    return this.request(name, true);
  }

  /** The id, type and size of `name`, without its content; undefined when there is none. */
  info(name: string): Promise<GitObject | undefined> {
    return this.request(name, false);
  }

  private request(name: string, contents: boolean): Promise<GitObject | undefined> {
    // A name with a line break would be read as two commands; no object of the registry has one.
    if (/[\n\r]/.test(name)) return Promise.resolve(undefined);
    clearTimeout(this.idle);
    const child = this.start();
    return new Promise((resolve, reject) => {
      this.queue.push({ contents, resolve, reject });
      if (this.pending() === 1) this.hold(child, true);
      this.lines.push(`${contents ? 'contents' : 'info'} ${name}\n`);
      if (!this.flushing) {
        this.flushing = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  private pending(): number {
    return this.queue.length - this.head;
  }

  private flush(): void {
    this.flushing = false;
    if (!this.child || this.lines.length === 0) return;
    this.child.stdin.write(this.lines.join('') + 'flush\n');
    this.lines = [];
  }

  /** Whether the process keeps the event loop alive (only while answers are awaited). */
  private hold(child: ChildProcessByStdio<Writable, Readable, Readable>, on: boolean): void {
    const pipes = [child.stdout, child.stderr, child.stdin] as unknown as Array<{ ref(): void; unref(): void }>;
    for (const handle of [child, ...pipes]) {
      if (on) handle.ref();
      else handle.unref();
    }
  }

  private start(): ChildProcessByStdio<Writable, Readable, Readable> {
    if (this.child) return this.child;
    const child = spawn('git', ['cat-file', '--batch-command', '--buffer'], { cwd: this.dir, env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.stderr = '';
    child.stdout.on('data', (chunk: Buffer) => this.child === child && this.receive(chunk));
    child.stderr.on('data', (b: Buffer) => (this.stderr = (this.stderr + b.toString('utf8')).slice(-2000)));
    child.stdin.on('error', () => {});
    // A process ended on purpose (retire) has nothing pending and is no longer `this.child`.
    child.on('error', (e) => this.child === child && this.fail(serviceError('E_GIT', `git could not be started: ${e.message}`, e)));
    child.on('close', (code) => {
      if (this.child !== child) return;
      const detail = this.stderr.trim().split('\n').filter(Boolean).slice(-2).join('; ');
      // A folder that is no repository holds no objects: every name is missing there, as
      // `git rev-parse --verify --quiet` and `git cat-file -e` answer (callers say what is wrong).
      if (code === 128 && /not a git repository/.test(detail)) return this.missingAll();
      this.fail(
        new ModelgateError('E_GIT', `git cat-file ended (${code ?? 'signal'})${detail ? `: ${detail}` : ''}`, ExitCode.service, { exitCode: code ?? -1 }),
      );
    });
    this.hold(child, false);
    return child;
  }

  /** Rejects what is pending; the next request starts a new process. */
  private fail(e: Error): void {
    for (const r of this.drain()) r.reject(e);
  }

  /** Answers everything pending as missing; the next request starts a new process. */
  private missingAll(): void {
    for (const r of this.drain()) r.resolve(undefined);
  }

  /** What is pending, taken off the queue, with the process forgotten. */
  private drain(): Request[] {
    const waiting = this.queue.slice(this.head) as Request[];
    this.queue.length = 0;
    this.head = 0;
    this.current = undefined;
    this.rest = EMPTY;
    this.child = undefined;
    return waiting;
  }

  /** Ends an idle process: git exits at the end of its input. */
  private retire(): void {
    const child = this.child;
    if (!child || this.pending() > 0) return;
    this.child = undefined;
    child.stdin.end();
  }

  private receive(chunk: Buffer): void {
    const data = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    let at = 0;
    for (;;) {
      const cur = this.current;
      if (cur) {
        // The content, then the newline git writes after it.
        const take = Math.min(cur.missing, data.length - at);
        const content = Math.min(take, cur.missing - 1);
        if (content > 0) cur.parts.push(data.subarray(at, at + content));
        cur.missing -= take;
        at += take;
        if (cur.missing > 0) break;
        this.current = undefined;
        // A copy: the object must not keep the whole chunk it came in alive.
        cur.object.bytes = cur.parts.length === 1 ? Buffer.from(cur.parts[0]!) : Buffer.concat(cur.parts);
        this.answer(cur.request, cur.object);
        continue;
      }
      const nl = data.indexOf(10, at);
      if (nl < 0) break;
      const header = data.toString('latin1', at, nl);
      at = nl + 1;
      const request = this.queue[this.head];
      this.queue[this.head++] = undefined;
      // A stream kept busy never drains its queue: the answered part is dropped now and then.
      if (this.head >= COMPACT_AFTER) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (!request) continue;
      // `<oid> <type> <size>`, or `<name> missing` / `<name> ambiguous`.
      const last = header.lastIndexOf(' ');
      const second = header.lastIndexOf(' ', last - 1);
      const size = Number(header.slice(last + 1));
      if (second < 0 || !/^\d+$/.test(header.slice(last + 1))) {
        this.answer(request, undefined);
        continue;
      }
      const object: GitObject = { oid: header.slice(0, second), type: header.slice(second + 1, last), size };
      if (request.contents) this.current = { request, object, parts: [], missing: size + 1 };
      else this.answer(request, object);
    }
    this.rest = at < data.length ? Buffer.from(data.subarray(at)) : EMPTY;
  }

  private answer(request: Request, object: GitObject | undefined): void {
    if (this.head === this.queue.length && !this.current) {
      this.queue.length = 0;
      this.head = 0;
      if (this.child) this.hold(this.child, false);
      this.idle = setTimeout(() => this.retire(), IDLE_MS);
      this.idle.unref();
    }
    request.resolve(object);
  }
}

const EMPTY = Buffer.alloc(0);

/** Answered requests after which the queue drops them. */
const COMPACT_AFTER = 4096;

/** How long an idle stream keeps its process. */
const IDLE_MS = 500;
