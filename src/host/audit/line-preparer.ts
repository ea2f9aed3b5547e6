// Spreads the per-line work of verification (prepared-lines.ts) over worker
// threads while the verifier's thread does the sequential part, and takes
// chunks itself whenever it would otherwise wait. A chunk a worker fails on
// (or a worker that dies) is prepared on this thread instead: a worker can
// slow verification down, never change its result.

import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PrepareJob } from './audit-verify-worker.ts';
import { PreparedSegment, prepareLines, type PreparedChunk } from './prepared-lines.ts';

const workerUrl = new URL(`./audit-verify-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export interface LinePreparerOptions {
  /** Worker threads (default: one less than the cores, at most 4). */
  readonly workers?: number;
  /** Bytes of whole lines per chunk (default 2 MiB). */
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

export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export class LinePreparer {
  private readonly chunks: Chunk[] = [];
  private readonly bySegment: Chunk[][] = [];
  private readonly slots: WorkerSlot[] = [];
  private readonly depth: number;
  private nextTodo = 0;
  private byWorkers = 0;

  /** Segments that do not end with a newline get no chunks: the verifier refuses them before reading a line. */
  constructor(segments: readonly Uint8Array[], opts: LinePreparerOptions = {}) {
    const chunkBytes = opts.chunkBytes ?? 2 * 1024 * 1024;
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
        if (c.state === 'todo') {
          this.prepareHere(c);
          break;
        }
        // c is at a worker: prepare a later chunk meanwhile, or wait.
        const later = this.firstTodo();
        if (later) {
          this.prepareHere(later);
          await new Promise<void>((r) => setImmediate(r)); // let finished chunks arrive
        } else {
          await new Promise<void>((r) => c.waiters.push(r));
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
    const worker = new Worker(workerUrl);
    const slot: WorkerSlot = { worker, outstanding: 0, dead: false };
    this.slots.push(slot);
    worker.on('message', (m: { id: number; chunk?: PreparedChunk; error?: string }) => {
      const c = this.chunks[m.id]!;
      slot.outstanding--;
      if (c.state !== 'sent') return;
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
