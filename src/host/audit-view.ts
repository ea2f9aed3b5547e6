// The audit log as the UI's audit view sees it: the newest records, and
// whether the whole log verifies (hash chain, Merkle tree, checkpoint
// signatures) with the key this install signs with. Reading and verifying are
// the signed log's own reader and verifier; this only shapes their answers.
//
// Verifying runs on a worker thread (a log of years takes seconds, and this
// host's event loop serves the broker and the window), one at a time (callers
// arriving meanwhile share the one next verification). A log that verified is
// not verified again for up to CACHE_MS while the directory's fingerprint
// (every file's name, size, inode and times) and the key stay the same:
// appends, checkpoints, rotations and ordinary edits change it. A failure, or
// a fingerprint that changed during the verification, is never reused. And
// while the live log only grows, a log that verified is verified (and
// checkpointed) again at most every recheckMs (10 s), however often the view asks:
// the answer in between says how many records are not verified yet.
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
  /** Monotonic clock (ms) for how long a verification's answer is reused; default performance.now (tests pass their own). */
  readonly now?: () => number;
  /** The least time between two verifications of a live log that only grows (default RECHECK_MS). */
  readonly recheckMs?: number;
}

/**
 * How long an answer is reused while the fingerprint stays the same. Bounded
 * because a write through a shared memory mapping can change a file without
 * changing its times again; after this the whole log is verified anew.
 */
const CACHE_MS = 30_000;
/** The least time between two verifications of a log that verified, however often the view asks. */
const RECHECK_MS = 10_000;

export class SignedAuditView implements AuditView {
  private readonly dir: string;
  private readonly opts: SignedAuditViewOptions;
  private checkpointedSize = -1;
  /** Global seq of the last record the newest checkpoint covers. */
  private checkpointedSeq = -1;
  /** The verification running, and the one waiting behind it (shared by every caller that arrives meanwhile). */
  private running: Promise<AuditVerification> | undefined;
  private queued: Promise<AuditVerification> | undefined;
  /** The last answer, and what the directory and the key were when it was computed. */
  /** The last verification that passed; `fingerprint` only if nothing changed while it ran (then its answer can be reused). */
  private last: { fingerprint: string | undefined; key: string | undefined; answer: AuditVerification; at: number; treeSize: number } | undefined;
  private readonly now: () => number;

  constructor(dir: string, opts: SignedAuditViewOptions) {
    this.dir = dir;
    this.opts = opts;
    this.now = opts.now ?? (() => performance.now());
  }

  async read(limit: number): Promise<AuditRecord[]> {
    return readLastAuditRecords(this.dir, limit);
  }

  verify(): Promise<AuditVerification> {
    if (!this.running) {
      this.running = this.verifyNow().finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running.then(noop, noop).then(() => {
      this.queued = undefined;
      return this.verify();
    });
    return this.queued;
  }

  private async verifyNow(): Promise<AuditVerification> {
    const key = this.opts.verifierKey();
    const log = this.opts.log;
    const last = this.last?.key === key ? this.last : undefined;
    const age = last ? this.now() - last.at : Infinity;
    const within = (ms: number) => age >= 0 && age < ms; // a clock that went back expires the answer
    // A view kept open while the agent works is refreshed after every record: while the live log
    // only grows, verify (and checkpoint) at most every `every` ms.
    const every = this.opts.recheckMs ?? RECHECK_MS;
    if (log && last && log.status.treeSize > last.treeSize && within(every)) {
      const recheckMs = Math.min(every, Math.max(0, Math.ceil(every - age)));
      return { ...last.answer, message: `${last.answer.message}; the ${log.status.treeSize - last.treeSize} records written since are verified within ${Math.ceil(every / 1000)} s`, recheckMs };
    }
    let report: AuditVerifyReport;
    let fingerprint: string;
    let clean: boolean;
    try {
      // A live log grows while it is verified: records that land after the
      // checkpoint written here are not yet vouched for, which is not tampering (answer() says so).
      if (log && log.status.treeSize !== this.checkpointedSize) {
        const cp = await log.checkpoint();
        this.checkpointedSize = cp.size;
        this.checkpointedSeq = cp.lastSeq;
      }
      fingerprint = await auditDirFingerprint(this.dir);
      if (last?.fingerprint === fingerprint && within(CACHE_MS)) return last.answer;
      report = await verifyAuditDirOffThread(this.dir, { trustedKeys: key ? [key] : [], allowUnsigned: this.opts.allowUnsigned ?? false });
      // Reusable only if nothing changed while it ran (a change in the same clock tick as the read would not show).
      clean = report.ok && (await auditDirFingerprint(this.dir)) === fingerprint;
    } catch (e) {
      this.last = undefined;
      return { ok: false, records: 0, message: `the audit log cannot be read: ${(e as Error).message}` };
    }
    const answer = this.answer(report, log !== undefined);
    // What passed is what the view's checkpoint covers (all of a log that is not live).
    this.last = answer.ok ? { fingerprint: clean ? fingerprint : undefined, key, answer, at: this.now(), treeSize: log ? this.checkpointedSize : 0 } : undefined;
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

const noop = (): void => undefined;
