// The audit writer port. The broker writes a decision record before any
// effect and an outcome record after it; `append` resolves only once the
// record is durable on disk. Implementations: JsonlAuditWriter (hash-chained
// JSON lines) and SignedAuditLog (segments, Merkle tree, signed checkpoints).

import type { AuditEntry, AuditRecord } from '../../common/audit-record.ts';

export interface AuditReceipt {
  readonly seq: number;
  /** Hex SHA-256 identifying the record (what the next record names as `prev`). */
  readonly hash: string;
}

export interface AuditWriter {
  /** Resolves after the record is on disk (fsync); rejects if it cannot be made durable. */
  append(entry: AuditEntry): Promise<AuditReceipt>;
  /** Flushes, seals and closes. Further appends reject. */
  close(): Promise<void>;
  /** Called with every record after it is durable (UI timeline, exporters). */
  onDidAppend?(listener: (record: AuditRecord, receipt: AuditReceipt) => void): () => void;
}

export class AuditUnavailableError extends Error {
  override readonly name = 'AuditUnavailableError';
}
