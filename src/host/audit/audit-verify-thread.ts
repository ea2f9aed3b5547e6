// verifyAuditDir in a worker thread. Verifying a log that has grown for years
// takes seconds of hashing (about 186k records/s on a 2-core laptop), and the
// desktop host's event loop serves the broker and the window meanwhile.
//
// Also here: a fingerprint of the directory (every file's name, size, inode
// and change time), so a caller can tell that nothing was written since it
// last verified. Any write, rename or truncation changes it; so does chmod.

import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { auditDirNames, type AuditVerifyOptions, type AuditVerifyReport } from './audit-verifier.ts';

const workerUrl = new URL(`./audit-verify-worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** How long a verification may take before its thread is stopped (a read stuck on a stalled network file system). */
const VERIFY_LIMIT_MS = 10 * 60_000;

/** Same answer as verifyAuditDir(dir, opts), computed on a worker thread that is stopped after `limitMs`. */
export function verifyAuditDirOffThread(dir: string, opts: AuditVerifyOptions, limitMs = VERIFY_LIMIT_MS): Promise<AuditVerifyReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: { tetherAuditVerify: { dir, opts } } });
    let answered = false;
    const answer = (f: () => void) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      answer(() => reject(new Error(`verifying ${dir} took longer than ${Math.round(limitMs / 1000)} s and was stopped; check that its file system responds`)));
      void worker.terminate();
    }, limitMs);
    worker.once('message', (m: { report?: AuditVerifyReport; error?: string }) => answer(() => (m.report ? resolve(m.report) : reject(new Error(m.error ?? 'the verifier thread gave no answer')))));
    worker.once('error', (e) => answer(() => reject(e)));
    worker.once('exit', (code) => answer(() => reject(new Error(`the verifier thread exited (code ${code}) without an answer`))));
  });
}

/** What the files of a log directory look like now; equal fingerprints mean nothing was written in between. */
export async function auditDirFingerprint(dir: string): Promise<string> {
  const names = await auditDirNames(dir);
  const parts = await Promise.all(names.map(async (name) => {
    const st = await stat(path.join(dir, name), { bigint: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined; // replaced or removed since the listing: a change like any other
      throw e;
    });
    return st ? `${name}\0${st.size}\0${st.ino}\0${st.ctimeNs}\0${st.mtimeNs}` : `${name}\0gone`;
  }));
  return parts.join('\n');
}
