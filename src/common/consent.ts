// What a consent dialog shows (renderer, CLI TTY) and what "allow for this
// session" would grant. The preview is built by the host from the resolved
// request; the renderer only displays it.

import type { CapabilityAction, CapabilityRequest } from './capability.ts';
import type { PolicyDecision } from './decision.ts';

export interface SandboxProfileSummary {
  readonly writable: readonly string[];
  readonly hidden: readonly string[];
  readonly network: 'none' | { readonly allowedDomains: readonly string[] };
}

export type ConsentPreview =
  | { readonly type: 'write'; readonly path: string; readonly created: boolean; readonly bytes: number; readonly diff: string }
  | { readonly type: 'delete'; readonly path: string; readonly recursive: boolean; readonly diff?: string }
  | { readonly type: 'move'; readonly from: string; readonly to: string; readonly overwrite: boolean }
  | { readonly type: 'read'; readonly path: string; readonly note?: string }
  | { readonly type: 'exec'; readonly command: string; readonly cwd: string; readonly sandbox: SandboxProfileSummary | 'unsandboxed'; readonly notes: readonly string[] }
  | { readonly type: 'net'; readonly destination: string; readonly method: string; readonly bytes: number; readonly summary: string }
  | {
      readonly type: 'restore';
      readonly checkpoint: number;
      readonly summary: string;
      readonly files: readonly { readonly path: string; readonly action: 'create' | 'overwrite' | 'delete'; readonly conflict?: string }[];
      readonly diff: string;
    };

/** The scope a session grant covers. Paths are workspace-relative globs (`*`, `**`). */
export interface GrantScope {
  readonly actions: readonly CapabilityAction[];
  readonly pathPattern?: string;
  /** Exec grants: exact program and an argument pattern; never a bare prefix. */
  readonly command?: { readonly program: string; readonly args: readonly string[] };
  readonly host?: string;
}

export interface SessionGrant {
  readonly id: string;
  readonly sessionId: string;
  readonly scope: GrantScope;
  readonly createdAt: string;
  /** The request whose consent created it. */
  readonly fromRequest: string;
  readonly description: string;
}

export interface ConsentQuestion {
  readonly id: string;
  readonly request: CapabilityRequest;
  readonly decision: PolicyDecision;
  /** Descriptions of the determining policies, for "why policy asked". */
  readonly ruleDescriptions: readonly { readonly id: string; readonly description: string }[];
  readonly preview: ConsentPreview;
  /** What "allow for this session" would grant. Absent when a session grant is not offered. */
  readonly proposedGrant?: GrantScope;
  /** Milliseconds until the question times out (and is denied). */
  readonly timeoutMs: number;
}
