// The audit log as the UI's audit view sees it: the newest records, and
// whether the whole log verifies (hash chain, Merkle tree, checkpoint
// signatures) with the key this install signs with. Reading and verifying are
// the signed log's own reader and verifier; this only shapes their answers.
//
// Verifying runs on a worker thread (a log of years takes seconds, and this
// host's event loop serves the broker and the window), one at a time, and is
// skipped when the directory's fingerprint (every file's name, size, inode and
// times) and the key are what they were at the last verification: any append,
// checkpoint, rotation or edit of a file changes it.
//
// Not here: trusting a key from elsewhere. The view checks against the key in
// this machine's keychain, so it shows tampering with the files, not a
// stolen key; `tether audit verify --pubkey` with a key held elsewhere does that.

import type { AuditRecord } from '../common/audit-record.ts';
import type { AuditVerification } from '../common/ipc-contract.ts';
import type { AuditVerifyReport } from './audit/audit-verifier.ts';
import { readLastAuditRecords } from './audit/read-records.ts';
import { auditDirFingerprint, verifyAuditDirOffThread } from './audit/audit-verify-thread.ts';

export interface AuditView {
  /** The newest records (up to `limit`), oldest first. */
  read(limit: number): Promise<AuditRecord[]>;
  verify(): Promise<AuditVerification>;
}

export interface SignedAuditViewOptions {
  /** The key this install signs checkpoints with ("name+id+base64"), if any. */
  readonly verifierKey: () => string | undefined;
  /**
   * The live log: before verifying, records written since its last checkpoint
   * are sealed with a new one, so "verifies" covers everything the view shows.
   */
  readonly log?: { readonly status: { readonly treeSize: number }; checkpoint(): Promise<{ readonly size: number; readonly lastSeq: number }> };
  readonly allowUnsigned?: boolean;
}

export class SignedAuditView implements AuditView {
  private readonly dir: string;
  private readonly opts: SignedAuditViewOptions;
  private checkpointedSize = -1;
  /** Global seq of the last record the newest checkpoint covers. */
  private checkpointedSeq = -1;
  /** Verifications run one after another (the last one's answer may serve the next). */
  private serial: Promise<unknown> = Promise.resolve();
  /** The last answer, and what the directory and the key were when it was computed. */
  private last: { fingerprint: string; key: string | undefined; answer: AuditVerification } | undefined;

  constructor(dir: string, opts: SignedAuditViewOptions) {
    this.dir = dir;
    this.opts = opts;
  }

  async read(limit: number): Promise<AuditRecord[]> {
    return readLastAuditRecords(this.dir, limit);
  }

  verify(): Promise<AuditVerification> {
    const next = this.serial.then(() => this.verifyNow(), () => this.verifyNow());
    this.serial = next;
    return next;
  }

  private async verifyNow(): Promise<AuditVerification> {
    const key = this.opts.verifierKey();
    const log = this.opts.log;
    let report;
    let fingerprint: string | undefined;
    try {
      // A live log grows while it is verified: records that land after the
      // checkpoint written here are not yet vouched for, which is not tampering.
      for (let attempt = 0; ; attempt++) {
        if (log && log.status.treeSize !== this.checkpointedSize) {
          const cp = await log.checkpoint();
          this.checkpointedSize = cp.size;
          this.checkpointedSeq = cp.lastSeq;
        }
        fingerprint = await auditDirFingerprint(this.dir);
        if (this.last && this.last.fingerprint === fingerprint && this.last.key === key) return this.last.answer;
        report = await verifyAuditDirOffThread(this.dir, { trustedKeys: key ? [key] : [], allowUnsigned: this.opts.allowUnsigned ?? false });
        if (report.ok || !log || attempt >= 2 || log.status.treeSize === this.checkpointedSize) break;
      }
    } catch (e) {
      return { ok: false, records: 0, message: `the audit log cannot be read: ${(e as Error).message}` };
    }
    const answer = this.answer(report, log !== undefined);
    if (fingerprint !== undefined) this.last = { fingerprint, key, answer };
    return answer;
  }

  private answer(report: AuditVerifyReport, live: boolean): AuditVerification {
    const unvouched = report.problem?.seq;
    if (!report.ok && live && unvouched !== undefined && this.checkpointedSeq >= 0 && unvouched > this.checkpointedSeq && report.records > 0) {
      return { ok: true, records: report.records, message: `${report.records} records verified through record ${this.checkpointedSeq}; newer records are still being written and will be covered by the next checkpoint` };
    }
    if (!report.ok) {
      const p = report.problem;
      const where = p ? [p.file, p.line !== undefined ? `line ${p.line}` : ''].filter(Boolean).join(' ') : '';
      return {
        ok: false,
        records: report.records,
        message: `${where ? `${where}: ` : ''}${p?.reason ?? 'the log does not verify'}`,
        ...(p?.seq !== undefined ? { badSeq: p.seq } : {}),
      };
    }
    const signed = report.keysUsed.length > 0 ? `${report.checkpoints} signed checkpoint${report.checkpoints === 1 ? '' : 's'} verified` : 'unsigned (integrity only)';
    const warning = report.warnings[0] ? `; note: ${report.warnings[0]}` : '';
    return { ok: true, records: report.records, message: `${report.records} records, hash chain and Merkle tree intact, ${signed}${warning}` };
  }
}
