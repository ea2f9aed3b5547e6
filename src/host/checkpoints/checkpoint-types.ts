// Shapes the checkpoint store hands out. Pure types (no node:*), so they can
// move to src/common when the renderer's timeline needs them.

export type CheckpointKind =
  /** Before the first change of an agent turn. */
  | 'turn-start'
  /** After a brokered write or a shell command that changed files. */
  | 'change'
  /** Taken by `restore` before it writes, so the restore can be undone. */
  | 'before-restore'
  /** Taken by `restore` after it wrote: the restored state. */
  | 'restore'
  /** Anything else (CLI, tests). */
  | 'manual';

export interface ChangedPath {
  readonly path: string;
  readonly status: 'added' | 'modified' | 'deleted';
}

export type SkipReason = 'too-large' | 'special-file' | 'unstorable-name' | 'unreadable';

/** A path present in the workspace but not captured by the checkpoint. */
export interface SkippedPath {
  readonly path: string;
  readonly reason: SkipReason;
  readonly detail?: string;
}

/** Who and what caused a checkpoint: joins it to the session and the audit log. */
export interface CheckpointCause {
  readonly sessionId: string;
  readonly turn: number;
  readonly requestIds: readonly string[];
  readonly auditSeqs: readonly number[];
}

export interface CheckpointRequest extends CheckpointCause {
  /**
   * Workspace-relative or absolute paths (files or directories, present or
   * deleted) known to have changed: only these are snapshotted. Absent: a
   * full scan of the workspace.
   */
  readonly paths?: readonly string[];
  readonly kind?: CheckpointKind;
}

export interface CheckpointInfo extends CheckpointCause {
  /** The shadow commit id (40 hex). Stable; use it to diff and restore. */
  readonly id: string;
  /** 1, 2, 3… per workspace; never reused. */
  readonly seq: number;
  /** ISO 8601. */
  readonly time: string;
  readonly kind: CheckpointKind;
  /** Changes relative to the checkpoint before it. */
  readonly changed: readonly ChangedPath[];
  /** Every path present but not captured at this checkpoint (cumulative). */
  readonly skipped: readonly SkippedPath[];
  readonly fullScan: boolean;
  /** For kind 'restore': the checkpoint restored from. */
  readonly restoredFrom?: string;
}

export type FileModeName = 'file' | 'executable' | 'symlink';

export interface FileChange {
  readonly path: string;
  readonly status: 'added' | 'modified' | 'deleted';
  readonly oldMode?: FileModeName;
  readonly newMode?: FileModeName;
  readonly binary: boolean;
}

export interface DiffResult {
  readonly from: CheckpointInfo;
  /** The other checkpoint, or 'workspace' for the current files. */
  readonly to: CheckpointInfo | 'workspace';
  readonly files: readonly FileChange[];
  /** Git-style unified diff, from `from` to `to`. */
  readonly diff: string;
}

export interface RestoreFile {
  readonly path: string;
  readonly action: 'create' | 'overwrite' | 'delete';
  /** Why this path conflicts, when it was changed outside Tether since the latest checkpoint. */
  readonly conflict?: string;
}

/**
 * What `restore` would do. `diff` (current workspace → restored state) and
 * `files` are the consent preview; `fingerprint` binds a consent to exactly
 * this plan (pass it to `restore` as `expectedFingerprint`).
 */
export interface RestorePlan {
  readonly checkpoint: CheckpointInfo;
  readonly files: readonly RestoreFile[];
  readonly conflicts: readonly RestoreFile[];
  readonly diff: string;
  readonly summary: string;
  readonly fingerprint: string;
}

export interface RestoreOptions {
  readonly paths?: readonly string[];
  /** Overwrite files changed outside Tether since the latest checkpoint. */
  readonly overwriteConflicts?: boolean;
  /** Refuse unless the plan is still the one the user consented to. */
  readonly expectedFingerprint?: string;
  /** Recorded on the before/after checkpoints. Default: session 'restore', turn 0. */
  readonly cause?: CheckpointCause;
}

export interface RestoreResult {
  readonly plan: RestorePlan;
  /** Restore this one to undo the restore. */
  readonly undoId: string | undefined;
  /** The checkpoint of the restored state (undefined when nothing changed). */
  readonly after: CheckpointInfo | undefined;
}

export interface StoreUsage {
  /** Sum of file sizes in the store. */
  readonly bytes: number;
  /** Disk blocks allocated to them. */
  readonly allocatedBytes: number;
  readonly objects: number;
  readonly checkpoints: number;
}

export interface PruneResult {
  readonly removedObjects: number;
  readonly freedBytes: number;
}
