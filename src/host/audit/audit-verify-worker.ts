// Worker-thread entry for verifyAuditDirOffThread (audit-verify-thread.ts):
// verifies one log directory and posts the report back.

import { parentPort, workerData } from 'node:worker_threads';
import { type AuditVerifyOptions, verifyAuditDir } from './audit-verifier.ts';

const job = (workerData as { tetherAuditVerify?: { dir: string; opts: AuditVerifyOptions } } | null)?.tetherAuditVerify;
if (job && parentPort) {
  const port = parentPort;
  verifyAuditDir(job.dir, job.opts).then(
    (report) => port.postMessage({ report }),
    (e: unknown) => port.postMessage({ error: e instanceof Error ? e.message : String(e) }),
  );
}
