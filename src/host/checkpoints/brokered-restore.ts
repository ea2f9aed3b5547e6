// A restore is an action like any other: the broker decides it (policy sees a
// write to the workspace), the user consents with the plan's diff in front of
// them, the decision is audited before any file changes, and the store
// refuses if the workspace moved on since the plan was shown (fingerprint).
// A plan that overwrites files changed outside Tether is refused before
// anyone is asked, unless the caller already has the user's explicit
// confirmation (`overwriteConflicts`); the dialog then marks those files.
// Restores are always the user's doing, so a stopped agent does not block them.

import { randomUUID } from 'node:crypto';
import { RESTORE_METHOD, type CapabilityRequest } from '../../common/capability.ts';
import { newTrace, type TraceContext } from '../../common/trace.ts';
import type { Broker } from '../broker.ts';
import { RestoreConflictError, type CheckpointStore } from './checkpoint-store.ts';
import type { RestoreResult } from './checkpoint-types.ts';

export interface BrokeredRestoreOptions {
  readonly broker: Broker;
  readonly store: CheckpointStore;
  readonly sessionId: string;
  readonly checkpoint: string;
  readonly paths?: readonly string[];
  readonly overwriteConflicts?: boolean;
  readonly trace?: TraceContext;
}

export async function restoreThroughBroker(opts: BrokeredRestoreOptions): Promise<RestoreResult> {
  const { store } = opts;
  const plan = await store.planRestore(opts.checkpoint, opts.paths ? { paths: opts.paths } : {});
  if (plan.conflicts.length > 0 && !opts.overwriteConflicts) throw new RestoreConflictError(plan);
  // Nothing would change: nothing to ask about or record.
  if (plan.files.length === 0) return { plan, undoId: undefined, after: undefined };
  const request: CapabilityRequest = {
    id: randomUUID(),
    sessionId: opts.sessionId,
    action: 'write',
    kind: 'write',
    method: RESTORE_METHOD,
    workspace: store.workspace,
    target: { path: store.workspace, relPath: '', inWorkspace: true, exists: true, type: 'directory' },
    trace: opts.trace ?? newTrace(),
  };
  return opts.broker.execute(request, {
    userInitiated: true,
    preview: async () => ({
      type: 'restore',
      checkpoint: plan.checkpoint.seq,
      summary: plan.summary,
      files: plan.files.map((f) => ({ path: f.path, action: f.action, ...(f.conflict ? { conflict: f.conflict } : {}) })),
      diff: plan.diff,
    }),
    effect: async () => {
      const result = await store.restore(opts.checkpoint, {
        ...(opts.paths ? { paths: opts.paths } : {}),
        overwriteConflicts: opts.overwriteConflicts ?? false,
        expectedFingerprint: plan.fingerprint,
        cause: { sessionId: opts.sessionId, turn: 0, requestIds: [request.id], auditSeqs: [] },
      });
      return { result, outcome: { bytes: result.plan.files.length, changedFiles: result.plan.files.map((f) => ({ path: f.path, change: f.action === 'create' ? 'created' : f.action === 'delete' ? 'deleted' : 'modified' })) } };
    },
  });
}
