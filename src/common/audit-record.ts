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
  | 'log.start' | 'log.sealed-tail';

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
  /** Hex SHA-256 of the previous record's canonical line ('' for the first). */
  readonly prev: string;
}
