// Worker thread of the parallel verifier (line-preparer.ts): prepares the
// lines of the chunks it is sent (prepared-lines.ts) and sends the results
// back. It checks nothing itself; the verifier thread does.
import { parentPort } from 'node:worker_threads';
import { prepareLines } from './prepared-lines.ts';

export interface PrepareJob {
  readonly id: number;
  /** A copy of the chunk's bytes: whole lines. */
  readonly bytes: Uint8Array;
}

const port = parentPort;
if (!port) throw new Error('audit-verify-worker.ts runs only as a worker thread');
port.on('message', (job: PrepareJob) => {
  try {
    const bytes = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.length); // native indexOf
    const c = prepareLines(bytes, 0, bytes.length);
    const transfer = [c.ends, c.status, c.flags, c.types, c.seqs, c.prevs].map((a) => a.buffer as ArrayBuffer);
    port.postMessage({ id: job.id, chunk: c }, transfer);
  } catch (e) {
    port.postMessage({ id: job.id, error: (e as Error).message });
  }
});
