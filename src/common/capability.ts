// The capability model: what an agent asks the host to do, after the host has
// resolved it (canonical paths, kind, session). Policy, consent, audit and the
// UI all speak in these shapes.

import type { TraceContext } from './trace.ts';

/** Coarse kind, used by grants, the UI and the audit log. */
export type CapabilityKind = 'read' | 'write' | 'exec' | 'net' | 'model';

/** The exact action; policy actions in resources/policy/tether.cedarschema have the same names. */
export type CapabilityAction =
  | 'read' | 'list' | 'search' | 'stat'
  | 'write' | 'delete' | 'move'
  | 'exec'
  | 'net'
  | 'model';

export const ACTION_KIND: Readonly<Record<CapabilityAction, CapabilityKind>> = {
  read: 'read', list: 'read', search: 'read', stat: 'read',
  write: 'write', delete: 'write', move: 'write',
  exec: 'exec', net: 'net', model: 'model',
};

/** The method of a restore from a checkpoint ("undo to here"): a write to the whole workspace the user started. */
export const RESTORE_METHOD = 'tether/restore';

/** A file-system target after resolution by the workspace jail. */
export interface ResolvedPath {
  /** Canonical absolute path (symlinks in the parent resolved). */
  readonly path: string;
  /** Path relative to the workspace root, '/'-separated; '' for the root itself. Absent when outside. */
  readonly relPath?: string;
  readonly inWorkspace: boolean;
  /** Whether the target exists at resolution time. */
  readonly exists: boolean;
  readonly type?: 'file' | 'directory' | 'symlink' | 'other';
  /** A regular file with more than one hard link: its content may belong to a file outside. */
  readonly hardLinked?: boolean;
  /** The absolute path as asked for (after `..` normalisation), when symlinks made `path` differ. */
  readonly requested?: string;
  /** Host-side: what the workspace jail saw, so an effect can refuse a target swapped in since. */
  readonly identity?: PathIdentity;
}

/** File identities ("dev:ino[:birth time]") seen at resolution. Set by the host only, never taken from the agent. */
export interface PathIdentity {
  /** The target itself, when it existed. */
  readonly target?: string;
  /** The nearest existing directory on the canonical path: the parent, or an ancestor when directories are missing. */
  readonly dir: string;
  readonly dirId: string;
}

export interface CapabilityRequest {
  /** Unique per request (host-generated). */
  readonly id: string;
  readonly sessionId: string;
  readonly action: CapabilityAction;
  readonly kind: CapabilityKind;
  /** The method the agent called (`fs/read_text_file`, `_tether/move`, …). */
  readonly method: string;
  readonly workspace: string;
  /** Primary target for fs actions. */
  readonly target?: ResolvedPath;
  /** Second target (move destination). */
  readonly destination?: ResolvedPath;
  /** Exec: the command line and working directory (shell issue fills in the parse). */
  readonly command?: {
    readonly line: string;
    readonly cwd: string;
    readonly program?: string;
    readonly args?: readonly string[];
    /** False when it would run without the OS sandbox (policy sees `resource.sandboxed`); absent means sandboxed. */
    readonly sandboxed?: boolean;
  };
  /** Net / model: where the bytes go. */
  readonly url?: string;
  readonly trace: TraceContext;
}
