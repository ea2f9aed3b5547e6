// Checkpoints for an agent session (broker effect hooks): a full snapshot
// before the first change of each turn, and a snapshot of the paths each
// change touched right after it. If the snapshot before a change cannot be
// taken, the change does not happen: an agent change must be undoable.

import type { AuditOutcome } from '../../common/audit-record.ts';
import { RESTORE_METHOD, type CapabilityRequest } from '../../common/capability.ts';
import type { EffectHooks } from '../broker.ts';
import type { CheckpointStore } from './checkpoint-store.ts';

export class SessionCheckpoints implements EffectHooks {
  private readonly store: CheckpointStore;
  private readonly sessionId: () => string;
  private turn = 0;
  private turnCheckpointed = false;
  /** The first full snapshot, started with the session (it can take seconds on a large workspace). */
  private baseline: Promise<unknown> | undefined;

  constructor(store: CheckpointStore, sessionId: () => string) {
    this.store = store;
    this.sessionId = sessionId;
  }

  /** Starts the baseline snapshot in the background. */
  start(): void {
    this.baseline = this.store.checkpoint({ sessionId: this.sessionId(), turn: 0, requestIds: [], auditSeqs: [], kind: 'turn-start' }).catch((e: unknown) => {
      this.baseline = undefined;
      throw e;
    });
    this.baseline.catch(() => {}); // reported when the first change needs it
  }

  beginTurn(): void {
    this.turn++;
    this.turnCheckpointed = false;
  }

  private changes(request: CapabilityRequest): boolean {
    return (request.kind === 'write' || request.kind === 'exec') && request.method !== RESTORE_METHOD;
  }

  async before(request: CapabilityRequest): Promise<void> {
    if (!this.changes(request) || this.turnCheckpointed) return;
    try {
      await this.baseline;
      await this.store.checkpoint({ sessionId: this.sessionId(), turn: this.turn, requestIds: [request.id], auditSeqs: [], kind: 'turn-start' });
    } catch (e) {
      throw new Error(`no checkpoint could be taken before this change, so it was not made (it could not be undone): ${(e as Error).message}`, { cause: e });
    }
    this.turnCheckpointed = true;
  }

  async after(request: CapabilityRequest, outcome: AuditOutcome, decisionSeq: number): Promise<void> {
    if (!this.changes(request) || !outcome.ok) return;
    // Audit records name files by absolute path; the store wants workspace-relative ones.
    const prefix = request.workspace.endsWith('/') ? request.workspace : `${request.workspace}/`;
    const changed = (outcome.changedFiles ?? []).map((f) => (f.path.startsWith(prefix) ? f.path.slice(prefix.length) : f.path.startsWith('/') ? undefined : f.path));
    const paths = [request.target?.relPath, request.destination?.relPath, ...changed]
      .filter((p): p is string => typeof p === 'string' && p !== '');
    try {
      await this.store.checkpoint({
        sessionId: this.sessionId(),
        turn: this.turn,
        requestIds: [request.id],
        auditSeqs: [decisionSeq],
        kind: 'change',
        ...(paths.length > 0 ? { paths } : {}),
      });
    } catch (e) {
      console.error(`tether: the checkpoint after ${request.action} ${request.target?.path ?? ''} failed: ${(e as Error).message}`);
    }
  }
}
