import { availableParallelism, loadavg } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ExitCode, ModelgateError } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import { formatProblem, type Problem } from '../manifest/problem.js';
import type { ModelVersion, Stage } from '../manifest/types.js';
import { matchWhere, type Expr } from '../query/where.js';

/**
 * Version files parsed for the catalog (src/registry/catalog.ts): in this thread at first, then,
 * once a scan has parsed POOL_AFTER of them (a registry big enough for a pool to pay for its
 * start), by a pool of worker threads (poolSize; each loads this same module), this thread
 * taking a batch itself whenever every worker has BUSY waiting. Texts go to the pool in
 * batches, as one buffer handed over; what comes back is the catalog line's fields as text (no
 * objects to copy back), and whether the version matches the scan's `--where` filter, so a
 * scan keeps only the versions it shows.
 */

/** A version file that loads without a problem, as the catalog keeps it. */
export interface ParsedVersion {
  stage: Stage;
  /** `<artifact json>\t<version json>`: the last two fields of the file's catalog line. */
  record: string;
  /** Where the artifact's JSON ends in `record`. */
  artifactLength: number;
  /** Whether it matches the filter the parsers were made with (true without one). */
  matches: boolean;
  /** The loaded value, when parsed in this thread. */
  value?: ModelVersion;
}

type Outcome = ParsedVersion | { problems: Problem[] };

/** Parses done in this thread before a scan starts its pool: below that, starting one costs more than it saves. */
const POOL_AFTER = 512;

/** Batches a worker may have waiting before this thread parses the next one itself. */
const BUSY = 2;

/** Texts sent to a worker at once, at most. */
const BATCH = 64;

/** Marks a worker started by this module (`workerData.role`). */
const WORKER_ROLE = 'modelgate-version-parser';

function parseVersionFile(text: string, path: string, where: Expr | undefined): Outcome {
  const loaded = loadManifest(text, path, 'ModelVersion');
  const v = loaded.value;
  if (!v) return { problems: loaded.problems };
  const artifact = JSON.stringify(v.artifact);
  return { stage: v.stage, record: `${artifact}\t${JSON.stringify(v)}`, artifactLength: artifact.length, matches: !where || matchWhere(where, v), value: v };
}

function settled(outcome: Outcome): ParsedVersion {
  if ('problems' in outcome) {
    throw new ModelgateError('E_INVALID_MANIFEST', outcome.problems.map(formatProblem).join('\n'), ExitCode.content, { problems: outcome.problems });
  }
  return outcome;
}

interface Job {
  path: string;
  bytes: Buffer;
  resolve: (v: ParsedVersion) => void;
  reject: (e: unknown) => void;
}

interface PoolWorker {
  worker: Worker;
  ready: boolean;
  /** Batches sent and not answered, in the order sent (a worker answers in order). */
  sent: Job[][];
}

/** Parses version files for one scan; `close` ends its workers. */
export class VersionParsers {
  private parsed = 0;
  private workers: PoolWorker[] | undefined;
  private queue: Job[] = [];
  private scheduled = false;

  constructor(
    private readonly where: Expr | undefined,
    /** Whether a pool may start (false: every file is parsed in this thread). */
    private readonly threads = true,
  ) {}

  /** The version in `bytes` (file `path`, UTF-8); rejects with E_INVALID_MANIFEST when it does not load. */
  parse(path: string, bytes: Buffer): Promise<ParsedVersion> {
    if (++this.parsed > POOL_AFTER && !this.workers) this.workers = this.threads ? this.startWorkers() : [];
    if (!this.workers?.length) {
      return new Promise((resolve) => resolve(settled(parseVersionFile(bytes.toString('utf8'), path, this.where))));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ path, bytes, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Everything asked for in this turn (the files of one read from git) goes out together.
        setImmediate(() => this.dispatch());
      }
    });
  }

  /** Ends the workers; what they were still parsing is not awaited by anyone then. */
  close(): void {
    const workers = this.workers ?? [];
    this.workers = [];
    for (const w of workers) {
      w.worker.removeAllListeners('exit');
      void w.worker.terminate();
    }
  }

  private dispatch(): void {
    this.scheduled = false;
    const jobs = this.queue;
    this.queue = [];
    const workers = this.workers ?? [];
    for (let at = 0; at < jobs.length; at += BATCH) {
      const batch = jobs.slice(at, at + BATCH);
      let target: PoolWorker | undefined;
      for (const w of workers) if (w.ready && (!target || w.sent.length < target.sent.length)) target = w;
      // This thread is a parser too: it takes a batch when every worker has enough to do.
      if (!target || target.sent.length >= BUSY) {
        this.parseHere(batch); // the workers are still starting (or gone): this thread parses meanwhile
        continue;
      }
      if (target.sent.length === 0) target.worker.ref();
      target.sent.push(batch);
      // The texts as one buffer, handed over (not copied), with where each ends.
      const ends: number[] = [];
      let size = 0;
      for (const j of batch) ends.push((size += j.bytes.length));
      const all = Buffer.allocUnsafeSlow(size);
      batch.forEach((j, i) => j.bytes.copy(all, i === 0 ? 0 : ends[i - 1]));
      const message: Batch = { paths: batch.map((j) => j.path), ends, bytes: all.buffer };
      target.worker.postMessage(message, [all.buffer]);
    }
  }

  /** Answers from a worker: one outcome per text of its oldest unanswered batch. */
  private received(w: PoolWorker, outcomes: Outcome[]): void {
    const batch = w.sent.shift() ?? [];
    if (w.sent.length === 0) w.worker.unref();
    batch.forEach((j, i) => {
      try {
        j.resolve(settled(outcomes[i]!));
      } catch (e) {
        j.reject(e);
      }
    });
  }

  /** A worker that ended (a crash, out of memory): its batches are parsed here, the others take the rest. */
  private failed(w: PoolWorker): void {
    this.workers = this.workers?.filter((x) => x !== w);
    for (const batch of w.sent.splice(0)) this.parseHere(batch);
  }

  private parseHere(batch: Job[]): void {
    for (const j of batch) {
      try {
        j.resolve(settled(parseVersionFile(j.bytes.toString('utf8'), j.path, this.where)));
      } catch (e) {
        j.reject(e);
      }
    }
  }

  /** The workers (poolSize), none when this module runs from its TypeScript source (tests: the workers load the built module). */
  private startWorkers(): PoolWorker[] {
    const size = poolSize();
    if (size < 1 || !import.meta.url.endsWith('.js')) return [];
    return Array.from({ length: size }, () => {
      const w: PoolWorker = { worker: new Worker(new URL(import.meta.url), { workerData: { role: WORKER_ROLE, where: this.where } }), ready: false, sent: [] };
      w.worker.unref();
      w.worker.on('message', (m: 'ready' | Outcome[]) => {
        if (m !== 'ready') return this.received(w, m);
        w.ready = true;
        this.dispatch();
      });
      w.worker.on('error', () => this.failed(w));
      w.worker.on('exit', () => this.failed(w));
      return w;
    });
  }
}

/**
 * Worker threads for a scan: MODELGATE_PARSE_THREADS when set (0: none), else one per core that
 * is idle (the cores but this thread's, less the load average): a worker on a busy core only
 * adds its start (about 0.3 s of CPU) and its memory (about 40 MB) to the same work, measured on
 * 2 shared cores at a load of 5 (README, Benchmarks).
 */
function poolSize(): number {
  const set = process.env.MODELGATE_PARSE_THREADS;
  if (set !== undefined && /^\d{1,3}$/.test(set)) return Number(set);
  return Math.max(0, Math.min(availableParallelism() - 1, Math.floor(availableParallelism() - loadavg()[0]!)));
}

/** Files sent to a worker: their paths, and their bytes in one buffer, file `i` ending at `ends[i]`. */
interface Batch {
  paths: string[];
  ends: number[];
  bytes: ArrayBuffer;
}

// In a worker of the pool: parse each batch and answer with the outcomes, in order.
if (!isMainThread && parentPort && (workerData as { role?: unknown } | null)?.role === WORKER_ROLE) {
  const port = parentPort;
  const where = (workerData as { where?: Expr }).where;
  port.on('message', ({ paths, ends, bytes }: Batch) => {
    const all = Buffer.from(bytes);
    port.postMessage(
      paths.map((path, i) => {
        const outcome = parseVersionFile(all.toString('utf8', i === 0 ? 0 : ends[i - 1], ends[i]), path, where);
        if ('value' in outcome) delete outcome.value; // the record says it all; an object would be copied back
        return outcome;
      }),
    );
  });
  port.postMessage('ready');
}
