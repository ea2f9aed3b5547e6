// The audit record: one canonical-JSON line per event. Written by the host's
// audit writer, read by the verifier, the UI's audit view and the SIEM
// exporters. File contents never appear here, only hashes and sizes.

import type { CapabilityAction, CapabilityKind } from './capability.ts';
import type { ConsentAnswer, DecidedBy, PolicyEffect } from './decision.ts';

export const AUDIT_RECORD_VERSION = 1;

export type AuditEventType =
  | 'session.start' | 'session.end'
  | 'decision' | 'outcome'
  | 'agent.exit' | 'protocol.violation'
  | 'consent.disclosure'
  | 'network.connection'
  | 'log.start' | 'log.sealed-tail'
  | 'log.key-rotation';

export interface AuditActor {
  readonly user: string;
  readonly device: string;
  readonly agent: string;
  readonly model?: string;
}

/** The request as recorded: resolved targets, never contents. */
export interface AuditRequest {
  readonly id: string;
  readonly method: string;
  readonly action: CapabilityAction;
  readonly kind: CapabilityKind;
  readonly path?: string;
  readonly destination?: string;
  readonly command?: string;
  readonly cwd?: string;
  readonly url?: string;
  /** Sandbox profile summary for exec (writable paths, network allowances). */
  readonly sandbox?: Readonly<Record<string, unknown>>;
}

export interface AuditDecision {
  readonly effect: PolicyEffect; // what policy said
  readonly allowed: boolean; // what finally happened
  readonly policyIds: readonly string[];
  readonly decidedBy: DecidedBy;
  readonly answer?: ConsentAnswer;
  readonly grantId?: string;
  readonly reason: string;
}

export interface AuditChangedFile {
  readonly path: string;
  readonly change: 'created' | 'modified' | 'deleted';
  readonly preSha256?: string;
  readonly postSha256?: string;
}

export interface AuditOutcome {
  readonly ok: boolean;
  readonly error?: string;
  readonly preSha256?: string;
  readonly postSha256?: string;
  readonly bytes?: number;
  readonly exitCode?: number | null;
  readonly signal?: string | null;
  readonly durationMs?: number;
  readonly changedFiles?: readonly AuditChangedFile[];
  /** Why `changedFiles` may be incomplete (too many entries, files too large to hash). */
  readonly changedFilesNote?: string;
}

/** What a caller hands the writer; the writer adds seq, time and chain fields. */
export interface AuditEntry {
  readonly type: AuditEventType;
  readonly session: string;
  readonly traceId?: string;
  readonly spanId?: string;
  readonly actor?: AuditActor;
  readonly request?: AuditRequest;
  readonly decision?: AuditDecision;
  readonly outcome?: AuditOutcome;
  /** Free-form, small, for session and lifecycle events. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface AuditRecord extends AuditEntry {
  readonly v: typeof AUDIT_RECORD_VERSION;
  readonly seq: number;
  readonly time: string; // RFC 3339, UTC, ms
  /**
   * Hex hash of the previous record ('' for the first): SHA-256 of its canonical
   * line (JsonlAuditWriter) or its RFC 6962 leaf hash (SignedAuditLog).
   */
  readonly prev: string;
  /** Set on every record of a log that managed policy allowed to run without a signing key. */
  readonly unsigned?: true;
}

/** `detail` of the first record of every chain of the signed log (one Merkle tree, one origin). */
export interface AuditChainStart {
  readonly origin: string;
  readonly chain: number;
  /** Verifier key ("name+id+base64") that signs this chain's checkpoints; null when unsigned. */
  readonly key: string | null;
  readonly reason: string;
  /** The chain this one follows, as this writer found it (absent for a new log). */
  readonly previous?: {
    readonly origin: string;
    readonly size: number;
    /** Base64 root of the previous chain at `size`. */
    readonly root: string;
    /** The last checkpoint of the previous chain, if any. */
    readonly checkpoint?: { readonly size: number; readonly root: string; readonly noteSha256: string };
  };
}

/** `detail` of a key rotation record: the next checkpoint is signed by both keys. */
export interface AuditKeyRotation {
  readonly previous: string;
  readonly next: string;
}

/** `detail` of a record that seals bytes a crash left after the last complete record. */
export interface AuditSealedTail {
  readonly file: string;
  readonly offset: number;
  readonly bytes: number;
  readonly sha256: string;
  /** Where the cut bytes were kept, relative to the log directory. */
  readonly copy: string;
  readonly reason: string;
}
