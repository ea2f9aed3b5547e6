// Spreads the per-line work of verification (prepared-lines.ts) over worker
// threads while the verifier's thread does the sequential part. Chunks are
// queued at the workers ahead of time, but whoever starts a chunk first
// claims it (a shared flag): this thread takes any chunk no worker has
// started rather than wait, so a starved or slow worker costs little. A chunk
// a worker fails on (or a worker that dies) is prepared on this thread
// instead: a worker can slow verification down, never change its result.

import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PrepareJob } from './audit-verify-worker.ts';
import { CLAIM_HERE, CLAIM_NONE, PreparedSegment, prepareLines, type PreparedChunk } from './prepared-lines.ts';

const workerUrl = new URL(`./audit-verify-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export interface LinePreparerOptions {
  /** Worker threads (default: defaultWorkerCount()). */
  readonly workers?: number;
  /** Bytes of whole lines per chunk (default 1 MiB). */
  readonly chunkBytes?: number;
  /** Chunks queued at each worker (default 6). */
  readonly depth?: number;
}

interface Chunk {
  readonly id: number;
  readonly segment: number;
  readonly bytes: Uint8Array; // the segment's
  readonly start: number;
  readonly end: number;
  state: 'todo' | 'sent' | 'done';
  worker?: WorkerSlot;
  result?: PreparedChunk;
  waiters: Array<() => void>;
}

interface WorkerSlot {
  readonly worker: Worker;
  outstanding: number;
  dead: boolean;
}

const turn = () => new Promise<void>((r) => setImmediate(r));
/** A chunk a worker has not finished after this long is prepared here as well. */
const STUCK_MS = 10_000;

/**
 * One less than the cores, at most 4; none below 4 cores: with two, the
 * worker mostly competes with this thread and the rest of the machine
 * (measured slower than one thread whenever the machine was busy).
 */
export function defaultWorkerCount(): number {
  const cores = availableParallelism();
  return cores >= 4 ? Math.min(4, cores - 1) : 0;
}

export class LinePreparer {
  private readonly chunks: Chunk[] = [];
  private readonly bySegment: Chunk[][] = [];
  private readonly slots: WorkerSlot[] = [];
  private readonly depth: number;
  private nextTodo = 0;
  private byWorkers = 0;
  /** Per chunk: CLAIM_*, set by whoever starts it (Atomics). */
  private readonly claims: Int32Array;

  /** Segments that do not end with a newline get no chunks: the verifier refuses them before reading a line. */
  constructor(segments: readonly Uint8Array[], opts: LinePreparerOptions = {}) {
    const chunkBytes = opts.chunkBytes ?? 1024 * 1024;
    this.depth = opts.depth ?? 6;
    segments.forEach((bytes, segment) => {
      const list: Chunk[] = [];
      if (bytes.length > 0 && bytes[bytes.length - 1] === 10) {
        for (let start = 0; start < bytes.length; ) {
          const nl = bytes.indexOf(10, Math.min(start + chunkBytes, bytes.length) - 1);
          const end = nl + 1;
          const c: Chunk = { id: this.chunks.length, segment, bytes, start, end, state: 'todo', waiters: [] };
          this.chunks.push(c);
          list.push(c);
          start = end;
        }
      }
      this.bySegment.push(list);
    });
    this.claims = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, this.chunks.length)));
    const workers = Math.min(opts.workers ?? defaultWorkerCount(), this.chunks.length);
    for (let i = 0; i < workers; i++) this.startWorker();
  }

  /** All lines of segment i, prepared; undefined for a segment without chunks. */
  async segment(i: number): Promise<PreparedSegment | undefined> {
    const list = this.bySegment[i]!;
    if (list.length === 0) return undefined;
    for (const c of list) {
      for (;;) {
        this.dispatch();
        if (c.state === 'done') break;
        if (c.state === 'todo' || this.claimHere(c)) {
          this.prepareHere(c);
          await turn(); // workers' messages (results, and their start) need this thread's event loop
          break;
        }
        // A worker is preparing c: prepare another chunk meanwhile, or wait.
        const other = this.unclaimedAfter(c);
        if (other) {
          this.prepareHere(other);
          await turn();
        } else {
          // Wait; a worker that seems stuck (a bug) is not waited for: prepare it here too, first result wins.
          const arrived = await new Promise<boolean>((r) => {
            const timer = setTimeout(() => r(false), STUCK_MS);
            c.waiters.push(() => {
              clearTimeout(timer);
              r(true);
            });
          });
          if (!arrived && c.state === 'sent') this.prepareHere(c);
        }
      }
    }
    const bytes = list[0]!.bytes;
    return new PreparedSegment(bytes, list.map((c) => c.result!));
  }

  /** How many chunks there are and how many workers prepared. */
  get stats(): { chunks: number; byWorkers: number } {
    return { chunks: this.chunks.length, byWorkers: this.byWorkers };
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private firstTodo(): Chunk | undefined {
    while (this.nextTodo < this.chunks.length && this.chunks[this.nextTodo]!.state !== 'todo') this.nextTodo++;
    return this.chunks[this.nextTodo];
  }

  /** Claims a chunk queued at a worker that has not started it. */
  private claimHere(c: Chunk): boolean {
    return c.state === 'sent' && Atomics.compareExchange(this.claims, c.id, CLAIM_NONE, CLAIM_HERE) === CLAIM_NONE;
  }

  /** The first chunk after c that nobody has started, claimed for this thread. */
  private unclaimedAfter(c: Chunk): Chunk | undefined {
    for (let id = c.id + 1; id < this.chunks.length; id++) {
      const d = this.chunks[id]!;
      if (d.state === 'todo' || this.claimHere(d)) return d;
    }
    return undefined;
  }

  private prepareHere(c: Chunk): void {
    this.finish(c, prepareLines(c.bytes, c.start, c.end));
  }

  private finish(c: Chunk, result: PreparedChunk): void {
    c.result = result;
    c.state = 'done';
    for (const w of c.waiters.splice(0)) w();
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      while (!slot.dead && slot.outstanding < this.depth) {
        const c = this.firstTodo();
        if (!c) return;
        c.state = 'sent';
        c.worker = slot;
        slot.outstanding++;
        const copy = new Uint8Array(c.end - c.start); // (Buffer#slice would be a view of the whole segment)
        copy.set(c.bytes.subarray(c.start, c.end));
        const job: PrepareJob = { id: c.id, bytes: copy };
        slot.worker.postMessage(job, [copy.buffer]);
      }
    }
  }

  private startWorker(): void {
    const worker = new Worker(workerUrl, { workerData: { claims: this.claims } });
    const slot: WorkerSlot = { worker, outstanding: 0, dead: false };
    this.slots.push(slot);
    worker.on('message', (m: { id: number; chunk?: PreparedChunk; error?: string }) => {
      const c = this.chunks[m.id]!;
      slot.outstanding--;
      if (c.state !== 'sent') return; // claimed here meanwhile: the worker skipped it
      if (m.chunk) {
        this.byWorkers++;
        this.finish(c, { ...m.chunk, start: c.start, end: c.end });
      } else this.retakeHere(c);
      this.dispatch();
    });
    const lost = () => {
      if (slot.dead) return;
      slot.dead = true;
      for (const c of this.chunks) if (c.state === 'sent' && c.worker === slot) this.retakeHere(c);
    };
    worker.on('error', lost);
    worker.on('exit', lost);
  }

  /** A chunk its worker could not prepare: back to this thread. */
  private retakeHere(c: Chunk): void {
    c.state = 'todo';
    if (c.id < this.nextTodo) this.nextTodo = c.id;
    for (const w of c.waiters.splice(0)) w();
  }
}
