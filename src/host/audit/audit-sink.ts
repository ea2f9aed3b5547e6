// What the outbox hands a SIEM sink. A sink resolves only once the collector
// has taken the data (HTTP 2xx; for plain syslog, written to the socket — see
// syslog-sink.ts); it rejects to have the outbox retry later. Every payload
// carries an idempotency key and every event a stable uid, so a collector can
// drop what it already has after a retry.
import type { AuditRecord } from '../../common/audit-record.ts';

export interface ShippedRecord {
  readonly seq: number;
  readonly leafIndex: number;
  /** The record's exact canonical line. */
  readonly line: string;
  readonly leafHash: string;
  readonly record: AuditRecord;
}

export interface RecordBatch {
  readonly origin: string;
  readonly chain: number;
  readonly records: readonly ShippedRecord[];
  /** `${origin}:records:${firstLeaf}-${lastLeaf}` */
  readonly idempotencyKey: string;
}

export interface CheckpointShipment {
  readonly origin: string;
  readonly chain: number;
  readonly size: number;
  /** The signed checkpoint (C2SP note) exactly as stored. */
  readonly note: string;
  /** RFC 6962 consistency proof (base64) from the last checkpoint the collector accepted for this origin; null for the first. */
  readonly consistency: { readonly fromSize: number; readonly proof: readonly string[] } | null;
  /** `${origin}:checkpoint:${size}:${sha256(note) prefix}` */
  readonly idempotencyKey: string;
}

export interface AuditSink {
  /** Names the sink in metrics, state files and messages. */
  readonly name: string;
  sendRecords(batch: RecordBatch, signal: AbortSignal): Promise<void>;
  sendCheckpoint(checkpoint: CheckpointShipment, signal: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}

export class SinkError extends Error {
  override readonly name = 'SinkError';
  /** False when retrying cannot help without someone fixing something (bad token, bad URL). The outbox still retries, slowly. */
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.retryable = retryable;
  }
}
