// The renderer's state: what the host has told it, kept in one class with
// $state fields so components stay presentational. The host is the source of
// truth: a consent question leaves the queue only when the host says it was
// settled (by the user, a timeout, or the stop button), never on a click alone.

import type {
  ActivityEntry, AgentCrash, AgentUpdate, CheckpointView, ConsentQuestionView, Disclosure, GrantView, ProviderOption, SessionStatus,
  TerminalOutput, TetherApi, AuditRecordView, AuditVerification, RestoreResultView, ShippingStatus,
} from '../../../src/common/ipc-contract.ts';
import { matchesFilter, type ActivityFilter } from './describe.ts';
import { undoPoints } from './undo.ts';

/** An undo the host refused because it would overwrite files changed outside Tether. */
export interface UndoConflict {
  readonly checkpoint: CheckpointView;
  /** Where the undo goes back to, in words ("before “Write src/app.ts”"). */
  readonly what: string;
  readonly conflicts: NonNullable<RestoreResultView['conflicts']>;
}

export interface TranscriptEntry {
  readonly key: number;
  kind: AgentUpdate['kind'];
  text: string;
  status?: string;
  toolCallId?: string;
}

const MAX_TRANSCRIPT = 500;
const MAX_TERMINAL_CHUNKS = 5000;
/** How long after a failed audit read the view asks again. */
const AUDIT_RETRY_MS = 5000;

export class AppState {
  readonly api: TetherApi;

  session = $state<SessionStatus>({ state: 'none' });
  providers = $state<ProviderOption[]>([]);
  workspace = $state<string | undefined>(undefined);
  activity = $state<ActivityEntry[]>([]);
  queue = $state<ConsentQuestionView[]>([]);
  grants = $state<GrantView[]>([]);
  transcript = $state<TranscriptEntry[]>([]);
  crash = $state<AgentCrash | undefined>(undefined);
  disclosure = $state<Disclosure | undefined>(undefined);
  disclosureRequired = $state(false);
  audit = $state<{ records: AuditRecordView[]; verification: AuditVerification; shipping: ShippingStatus[] } | undefined>(undefined);
  auditStale = $state(true);
  /** The last error to show in the banner. */
  error = $state<string | undefined>(undefined);
  connection = $state<'connecting' | 'ready' | 'lost'>('connecting');
  /** Settlements the user did not cause (timeouts, stop), to tell them what happened. */
  notice = $state<string | undefined>(undefined);
  /** The outcome of something the user did (an undo). */
  info = $state<string | undefined>(undefined);

  /** The workspace's checkpoints, newest first. */
  checkpoints = $state<CheckpointView[]>([]);
  checkpointsAvailable = $state(false);
  /** An undo is on its way (maybe waiting in the consent dialog). */
  undoing = $state(false);
  /** An undo waiting for the user's explicit yes to overwriting files changed outside Tether. */
  undoConflict = $state<UndoConflict | undefined>(undefined);

  filter = $state<ActivityFilter>('all');
  filterText = $state('');

  readonly current = $derived<ConsentQuestionView | undefined>(this.queue[0]);
  readonly filteredActivity = $derived(this.activity.filter((e) => matchesFilter(e, this.filter, this.filterText)));
  /** A session exists (maybe stopped): the task box replaces the start form. */
  readonly hasSession = $derived(['starting', 'running', 'idle', 'stopping', 'stopped', 'restarting'].includes(this.session.state));
  readonly canStop = $derived(['starting', 'running', 'idle', 'restarting'].includes(this.session.state) || this.queue.length > 0);
  readonly canSend = $derived(this.session.state === 'idle' || this.session.state === 'stopped');
  /** Request id → the checkpoint "undo to here" restores. */
  readonly undoPoints = $derived(undoPoints(this.checkpoints));
  /** The host refuses an undo while the agent works. */
  readonly canUndo = $derived(this.checkpointsAvailable && !this.undoing && (this.session.state === 'idle' || this.session.state === 'stopped'));

  private terminalChunks: TerminalOutput[] = [];
  private readonly terminalListeners = new Set<(t: TerminalOutput) => void>();
  private nextKey = 0;
  private loadingCheckpoints: Promise<void> | undefined;
  private checkpointsDirty = false;

  constructor(api: TetherApi) {
    this.api = api;
  }

  async init(): Promise<void> {
    const a = this.api;
    a.on('sessionStatus', (s) => {
      const was = this.session.state;
      this.session = s;
      if (s.state === 'starting') {
        this.crash = undefined;
        this.activity = [];
      }
      if (s.state !== was && ['idle', 'stopped', 'none'].includes(s.state)) void this.refreshCheckpoints();
    });
    a.on('checkpointsChanged', () => void this.refreshCheckpoints());
    a.on('consentAsked', (q) => {
      if (!this.queue.some((x) => x.id === q.id)) this.queue.push(q);
    });
    a.on('consentSettled', (s) => {
      const q = this.queue.find((x) => x.id === s.id);
      this.queue = this.queue.filter((x) => x.id !== s.id);
      if (q && s.by !== 'user') this.notice = `${s.by === 'timeout' ? 'Timed out' : s.by === 'stopped' ? 'Stopped' : 'Withdrawn'}: a request was denied (${s.reason}).`;
    });
    a.on('activity', (e) => {
      this.activity.push(e);
      this.auditStale = true;
    });
    a.on('activityOutcome', (o) => {
      const e = this.activity.findLast((x) => x.request.id === o.requestId);
      if (e) e.outcome = o.outcome;
    });
    a.on('grantsChanged', (g) => {
      this.grants = g.grants;
    });
    a.on('agentUpdate', (u) => this.addTranscript(u));
    a.on('terminalOutput', (t) => {
      this.terminalChunks.push(t);
      if (this.terminalChunks.length > MAX_TERMINAL_CHUNKS) this.terminalChunks.splice(0, this.terminalChunks.length - MAX_TERMINAL_CHUNKS);
      for (const l of this.terminalListeners) l(t);
    });
    a.on('agentCrashed', (c) => {
      this.crash = c;
    });
    a.on('auditAppended', () => {
      this.auditStale = true;
    });
    const snap = await a.getSnapshot();
    this.session = snap.session;
    this.providers = snap.providers;
    this.workspace = snap.workspace;
    this.activity = snap.activity;
    for (const q of snap.pending) if (!this.queue.some((x) => x.id === q.id)) this.queue.push(q);
    this.grants = snap.grants;
    this.disclosureRequired = snap.disclosureRequired;
    if (snap.disclosureRequired) await this.loadDisclosure();
    await this.refreshCheckpoints();
    this.connection = 'ready';
  }

  /** The terminal view replays what it missed, then follows. */
  followTerminal(listener: (t: TerminalOutput) => void): () => void {
    for (const t of this.terminalChunks) listener(t);
    this.terminalListeners.add(listener);
    return () => this.terminalListeners.delete(listener);
  }

  private addTranscript(u: AgentUpdate): void {
    const last = this.transcript.at(-1);
    if (u.kind === 'tool' && u.toolCallId) {
      const existing = this.transcript.findLast((t) => t.kind === 'tool' && t.toolCallId === u.toolCallId);
      if (existing) {
        if (u.text) existing.text = u.text;
        if (u.status) existing.status = u.status;
        return;
      }
    } else if (last && last.kind === u.kind && (u.kind === 'message' || u.kind === 'thought')) {
      last.text += u.text;
      return;
    }
    this.transcript.push({ key: this.nextKey++, kind: u.kind, text: u.text, ...(u.status ? { status: u.status } : {}), ...(u.toolCallId ? { toolCallId: u.toolCallId } : {}) });
    if (this.transcript.length > MAX_TRANSCRIPT) this.transcript.splice(0, this.transcript.length - MAX_TRANSCRIPT);
  }

  private async attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
    try {
      this.error = undefined;
      return await f();
    } catch (e) {
      this.error = `${what}: ${(e as Error).message}`;
      return undefined;
    }
  }

  async loadDisclosure(): Promise<void> {
    const d = await this.attempt('Could not load the access summary', () => this.api.getDisclosure(this.workspace ? { workspace: this.workspace } : {}));
    if (d) {
      this.disclosure = d;
      this.disclosureRequired = !d.acknowledged;
    }
  }

  async acknowledgeDisclosure(): Promise<void> {
    const d = this.disclosure;
    if (!d) return;
    const r = await this.attempt('Could not record your acknowledgement', () => this.api.acknowledgeDisclosure({ fingerprint: d.fingerprint }));
    if (r?.recorded) {
      this.disclosureRequired = false;
      this.disclosure = { ...d, acknowledged: true };
    } else {
      await this.loadDisclosure();
    }
  }

  async chooseWorkspace(): Promise<void> {
    const r = await this.attempt('Could not choose the folder', () => this.api.chooseWorkspace());
    if (r?.workspace) this.workspace = r.workspace;
  }

  async start(task: string, provider: ProviderOption['provider'], model: string): Promise<boolean> {
    const ws = this.workspace;
    if (!ws) {
      this.error = 'Choose a workspace folder first.';
      return false;
    }
    this.transcript = [];
    this.notice = undefined;
    const r = await this.attempt('The session did not start', () => this.api.startSession({ workspace: ws, task, provider, ...(model.trim() ? { model: model.trim() } : {}) }));
    return r !== undefined;
  }

  async send(task: string): Promise<boolean> {
    const r = await this.attempt('The task was not sent', () => this.api.sendPrompt({ task }));
    if (r && !r.accepted) this.error = r.reason ?? 'the host did not accept the task';
    return r?.accepted ?? false;
  }

  async stop(): Promise<void> {
    // Clear the dialogs at once; the host's consentSettled events confirm it.
    this.queue = [];
    await this.attempt('Stop failed', () => this.api.stopSession());
  }

  async end(): Promise<void> {
    this.queue = [];
    await this.attempt('Ending the session failed', () => this.api.endSession());
  }

  async answer(id: string, answer: 'once' | 'session' | 'deny'): Promise<void> {
    const r = await this.attempt('Your answer was not delivered', () => this.api.answerConsent({ id, answer }));
    if (r && !r.accepted) {
      this.notice = r.reason ?? 'that request is no longer waiting';
      this.queue = this.queue.filter((q) => q.id !== id);
    }
  }

  async revoke(id: string): Promise<void> {
    const r = await this.attempt('Revoking failed', () => this.api.revokeGrant({ id }));
    if (r && !r.revoked) this.error = 'That grant no longer exists.';
    const g = await this.attempt('Could not refresh grants', () => this.api.listGrants());
    if (g) this.grants = g.grants;
  }

  /** Reloads the checkpoint list; calls during a load coalesce into one more load. */
  refreshCheckpoints(): Promise<void> {
    if (this.loadingCheckpoints) {
      this.checkpointsDirty = true;
      return this.loadingCheckpoints;
    }
    this.loadingCheckpoints = (async () => {
      do {
        this.checkpointsDirty = false;
        try {
          const r = await this.api.listCheckpoints();
          this.checkpoints = r.checkpoints;
          this.checkpointsAvailable = r.available;
        } catch (e) {
          this.error = `Could not load the checkpoints: ${(e as Error).message}`;
        }
      } while (this.checkpointsDirty);
      this.loadingCheckpoints = undefined;
    })();
    return this.loadingCheckpoints;
  }

  /**
   * "Undo to here": the host asks through the consent dialog (with the diff).
   * Files changed outside Tether stop it before that: `undoConflict` tells the
   * user, and only overwrite=true (their explicit choice) goes on.
   */
  async undoTo(checkpoint: CheckpointView, what: string, overwrite = false): Promise<void> {
    if (this.undoing) return;
    this.undoing = true;
    this.undoConflict = undefined;
    this.info = undefined;
    try {
      const r = await this.attempt('Undo failed', () => this.api.restoreCheckpoint({ checkpoint: checkpoint.id, ...(overwrite ? { overwriteConflicts: true } : {}) }));
      if (!r) return;
      if (r.conflicts && r.conflicts.length > 0) {
        this.undoConflict = { checkpoint, what, conflicts: r.conflicts };
        return;
      }
      if (r.restored) this.info = `${r.message} This undo is in the activity list and can be undone too.`;
      else this.notice = r.message;
    } finally {
      this.undoing = false;
    }
    await this.refreshCheckpoints();
  }

  async refreshAudit(): Promise<void> {
    const r = await this.attempt('Could not read the audit log', () => this.api.readAudit({ limit: 1000 }));
    this.auditStale = false;
    // Records written since the last verification are verified on a later ask; after a failure, try again in a while, not at once.
    const again = r ? r.verification.recheckMs : AUDIT_RETRY_MS;
    if (again !== undefined) setTimeout(() => (this.auditStale = true), again);
    if (r) this.audit = r;
  }
}
