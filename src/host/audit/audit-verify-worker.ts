// Worker thread of the parallel verifier (line-preparer.ts): prepares the
// lines of the chunks it is sent (prepared-lines.ts) and sends the results
// back. It checks nothing itself; the verifier thread does.
import { parentPort, workerData } from 'node:worker_threads';
import { CLAIM_NONE, CLAIM_WORKER, prepareLines } from './prepared-lines.ts';

export interface PrepareJob {
  readonly id: number;
  /** A copy of the chunk's bytes: whole lines. */
  readonly bytes: Uint8Array;
}

const port = parentPort;
if (!port) throw new Error('audit-verify-worker.ts runs only as a worker thread');
const claims = (workerData as { claims: Int32Array }).claims;
port.on('message', (job: PrepareJob) => {
  // The verifier's thread may have started this chunk itself meanwhile.
  if (Atomics.compareExchange(claims, job.id, CLAIM_NONE, CLAIM_WORKER) !== CLAIM_NONE) {
    port.postMessage({ id: job.id, skipped: true });
    return;
  }
  try {
    const bytes = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.length); // native indexOf
    const c = prepareLines(bytes, 0, bytes.length);
    const transfer = [c.ends, c.status, c.flags, c.types, c.seqs, c.prevs].map((a) => a.buffer as ArrayBuffer);
    port.postMessage({ id: job.id, chunk: c }, transfer);
  } catch (e) {
    port.postMessage({ id: job.id, error: (e as Error).message });
  }
});
