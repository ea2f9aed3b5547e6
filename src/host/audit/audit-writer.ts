// The audit writer port. The broker writes a decision record before any
// effect and an outcome record after it; `append` resolves only once the
// record is durable on disk. Implementations: SignedAuditLog (segments, Merkle
// tree, signed checkpoints: what sessions use) and JsonlAuditWriter (plain
// hash-chained lines: component tests where signing is not what is tested).

import type { AuditEntry, AuditRecord } from '../../common/audit-record.ts';

export interface AuditReceipt {
  readonly seq: number;
  /** Hex SHA-256 identifying the record (what the next record names as `prev`). */
  readonly hash: string;
}

export interface AppendOptions {
  /**
   * Nobody waits on this record before acting (an outcome): it starts no disk
   * write of its own but rides the next group commit, or goes out on its own
   * after a few milliseconds. The promise still resolves only once it is durable.
   */
  readonly deferred?: boolean;
  /**
   * The caller has work to do on its own thread while this record is
   * committed (staging a write's content): a writer that commits on the
   * calling thread commits this one on a pool thread instead, so the two
   * overlap instead of running one after the other.
   */
  readonly overlap?: boolean;
}

export interface AuditWriter {
  /** Resolves after the record is on disk (fsync); rejects if it cannot be made durable. */
  append(entry: AuditEntry, opts?: AppendOptions): Promise<AuditReceipt>;
  /** Flushes, seals and closes. Further appends reject. */
  close(): Promise<void>;
  /** Called with every record after it is durable (UI timeline, exporters). */
  onDidAppend?(listener: (record: AuditRecord, receipt: AuditReceipt) => void): () => void;
}

/** Longest a deferred record waits for a commit to ride (its crash window grows by this much). */
export const MAX_DEFER_MS = 5;

export class AuditUnavailableError extends Error {
  override readonly name = 'AuditUnavailableError';
}
