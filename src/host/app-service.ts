// The host side of the renderer contract (src/common/ipc-contract.ts): one
// object that implements every invoke channel and emits every event, for the
// Electron main process (over IPC) and the dev bridge (over a WebSocket) alike.
// It owns the UI's view of a session: the consent queue, the activity
// timeline, grants, the stop button, the disclosure and agent crash handling.
//
// Invariants:
//  1. Only a folder the user picked in the host's own picker becomes a workspace.
//  2. No session starts before the disclosure for the policy in force is acknowledged.
//  3. Stop denies every pending question before it returns and halts the
//     broker, then cancels the agent's turn; nothing the agent asks afterwards
//     is allowed until the user sends a new task. Ending a session closes it.
//  4. An agent that dies unexpectedly is shown to the user (the session
//     records it in the audit log) and restarted with backoff as a fresh
//     session: new ACP session, no grants carried over, the task not replayed.
//  5. "Undo to here" runs only while the agent is not working (idle or
//     stopped), one at a time, and never lifts a stop. A restore that would
//     overwrite files changed outside Tether is not asked about: the renderer
//     is told which files, and only a second call with the user's explicit
//     overwriteConflicts goes on to the consent dialog.

import { realpath, stat, readFile, writeFile, mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditEntry, AuditRecord } from '../common/audit-record.ts';
import type { CapabilityRequest } from '../common/capability.ts';
import type { ConsentPreview, GrantScope, SessionGrant } from '../common/consent.ts';
import { Emitter, type Event } from '../common/emitter.ts';
import {
  ContractError, checkEvent,
  type ActivityEntry, type AgentUpdate, type ApiHandlers, type ArgsOf, type AuditRecordView, type ConsentPreviewView, type ConsentQuestionView, type DecisionView,
  type Disclosure, type EventName, type GrantView, type OutcomeView, type PayloadOf, type ProviderOption, type RequestView, type RuleInfo,
  type SessionStatus, type Snapshot, type TerminalOutput, type CheckpointView, type RestoreResultView,
} from '../common/ipc-contract.ts';
import { describeAgentExit } from './agent-starter.ts';
import type { OutboxMetrics } from './audit/audit-outbox.ts';
import type { AuditView } from './audit-view.ts';
import { RequestDenied, type Broker, type DecisionEvent, type OutcomeEvent } from './broker.ts';
import { RestoreConflictError } from './checkpoints/checkpoint-store.ts';
import type { CheckpointInfo, RestoreResult } from './checkpoints/checkpoint-types.ts';
import type { ConsentPort, GrantStore } from './consent.ts';
import { disclosureFingerprint, discloseAccess } from './disclosure.ts';
import type { PolicyEngine } from './policy/policy-engine.ts';
import { UiConsent, type PendingConsent } from './ui-consent.ts';

type Provider = ArgsOf<'startSession'>['provider'];

/** The slice of TetherSession (src/host/session.ts) the app drives. */
export interface HostSession {
  readonly id: string;
  readonly broker: Broker;
  readonly grants: GrantStore;
  prompt(task: string): Promise<{ stopReason: string }>;
  /** The stop button: halts the broker (until the next prompt) and cancels the agent's turn. */
  stop(reason?: string): Promise<void>;
  close(): Promise<void>;
  /** ACP `session/update` notifications. */
  readonly onDidUpdate: Event<unknown>;
  /** The agent process ended (crash, kill, or close). */
  readonly onDidAgentExit: Event<{ readonly code: number | null; readonly signal: string | null }>;
  /** What commands print, while they run. */
  readonly onDidTerminalOutput: Event<TerminalOutput>;
  /** Description of a policy rule, for "allowed by rule X". */
  describeRule?(id: string): string | undefined;
  /** Whether changes are checkpointed, so "undo to here" is possible. */
  readonly checkpointsEnabled: boolean;
  /** The workspace's checkpoints, newest first. */
  listCheckpoints(): Promise<readonly CheckpointInfo[]>;
  /** A brokered, consented restore; RestoreConflictError (before asking) unless overwriteConflicts. */
  restoreCheckpoint(id: string, opts: { paths?: readonly string[]; overwriteConflicts?: boolean }): Promise<RestoreResult>;
  readonly onDidCheckpoint: Event<CheckpointInfo>;
}

export interface SessionRequest {
  readonly workspace: string;
  readonly provider: Provider;
  readonly model?: string;
  readonly consent: ConsentPort;
  readonly consentTimeoutMs: number;
}

export interface AuditSink {
  append(entry: AuditEntry): Promise<{ readonly seq: number }>;
}

export interface SettingsStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}

export interface AppServiceDeps {
  readonly startSession: (req: SessionRequest) => Promise<HostSession>;
  /** The host's folder picker (Electron dialog; a fixed list in the dev bridge). */
  readonly chooseFolder: () => Promise<string | undefined>;
  readonly providers: () => ProviderOption[];
  /** The policy in force, for the disclosure. */
  readonly policy: () => Promise<PolicyEngine>;
  /** App-level audit records (disclosure acknowledgement, agent crashes). Same log as the sessions'. */
  readonly audit: AuditSink;
  readonly auditView: AuditView;
  /** Where shipping the log to each collector stands (HostCore.shipping). */
  readonly shipping?: () => readonly OutboxMetrics[];
  readonly settings: SettingsStore;
  readonly openExternal?: (url: string) => Promise<boolean>;
  readonly consentTimeoutMs?: number;
  readonly restart?: Partial<RestartPolicy>;
  readonly home?: string;
  readonly now?: () => number;
}

export interface RestartPolicy {
  /** Delay before the first restart; doubles each time up to `maxDelayMs`. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Crashes within `windowMs` after which Tether stops restarting. */
  readonly maxAttempts: number;
  readonly windowMs: number;
}

const DEFAULT_RESTART: RestartPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000, maxAttempts: 5, windowMs: 5 * 60_000 };
const MAX_ACTIVITY = 5000;
const MAX_CHECKPOINTS = 200;
const MAX_CHANGED_SHOWN = 200;
const SETTINGS_ACK = 'disclosure.acknowledged';
const SETTINGS_WORKSPACES = 'workspaces.chosen';

export class RestartBackoff {
  private crashes: number[] = [];
  private readonly policy: RestartPolicy;
  constructor(policy: RestartPolicy) {
    this.policy = policy;
  }
  /** Records a crash; returns the delay before the next start, or null to give up. */
  next(now: number): { attempt: number; delayMs: number | null } {
    this.crashes = [...this.crashes.filter((t) => now - t < this.policy.windowMs), now];
    const attempt = this.crashes.length;
    if (attempt > this.policy.maxAttempts) return { attempt, delayMs: null };
    return { attempt, delayMs: Math.min(this.policy.maxDelayMs, this.policy.initialDelayMs * 2 ** (attempt - 1)) };
  }
  /** A start the user asked for begins a new count. */
  reset(): void {
    this.crashes = [];
  }
}

interface Active {
  readonly session: HostSession;
  readonly params: { workspace: string; provider: Provider; model?: string };
  readonly disposers: (() => void)[];
  closing: boolean;
  agentExited: boolean;
  stopped: boolean;
  /** An "undo to here" is in progress (maybe waiting for consent). */
  restoring: boolean;
}

export class AppService implements ApiHandlers {
  private readonly didEmit = new Emitter<{ name: EventName; payload: unknown }>();
  /** Every event for the renderer, already checked against the contract. */
  readonly onDidEmit = this.didEmit.event;

  private readonly deps: AppServiceDeps;
  private readonly consent: UiConsent;
  private readonly backoff: RestartBackoff;
  private readonly now: () => number;
  private readonly consentTimeoutMs: number;

  private status: SessionStatus = { state: 'none' };
  private active: Active | undefined;
  private activity: ActivityEntry[] = [];
  private readonly rulesByRequest = new Map<string, RuleInfo[]>();
  private readonly sessionIds = new Set<string>();
  private readonly appSeqs = new Set<number>();
  private chosen: Set<string> | undefined;
  private lastWorkspace: string | undefined;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;
  /** The policy in force, kept for rule descriptions in the timeline. */
  private engine: PolicyEngine | undefined;

  constructor(deps: AppServiceDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.consent = new UiConsent(this.now);
    this.backoff = new RestartBackoff({ ...DEFAULT_RESTART, ...deps.restart });
    this.consentTimeoutMs = deps.consentTimeoutMs ?? 120_000;
    this.consent.onDidAsk((p) => this.emit('consentAsked', this.questionView(p)));
    this.consent.onDidSettle((s) => this.emit('consentSettled', s));
  }

  // ------------------------------------------------------------ channels --

  getSnapshot = async (): Promise<Snapshot> => {
    const disclosure = await this.getDisclosure({});
    return {
      session: this.status,
      providers: this.deps.providers(),
      pending: this.consent.pending().map((p) => this.questionView(p)),
      activity: this.activity,
      grants: this.grantViews(),
      disclosureRequired: !disclosure.acknowledged,
      ...(this.lastWorkspace ? { workspace: this.lastWorkspace } : {}),
    };
  };

  chooseWorkspace = async (): Promise<{ workspace: string | null }> => {
    const picked = await this.deps.chooseFolder();
    if (picked === undefined) return { workspace: null };
    const real = await realpath(picked);
    if (!(await stat(real)).isDirectory()) throw new ContractError('refused', `${picked} is not a folder`);
    const chosen = await this.chosenWorkspaces();
    chosen.add(real);
    this.lastWorkspace = real;
    await this.deps.settings.set(SETTINGS_WORKSPACES, [...chosen].slice(-20));
    return { workspace: real };
  };

  startSession = async (args: { workspace: string; task: string; provider: Provider; model?: string | undefined }): Promise<SessionStatus> => {
    if (this.active && !this.active.closing) throw new ContractError('refused', 'a session is already running; stop it before starting another');
    if (!(await this.chosenWorkspaces()).has(args.workspace)) {
      throw new ContractError('refused', `${args.workspace} was not chosen as a workspace; pick the folder with "Choose…"`);
    }
    const disclosure = await this.getDisclosure({ workspace: args.workspace });
    if (!disclosure.acknowledged) throw new ContractError('refused', 'read and acknowledge what the agent can access before starting a session');
    const provider = this.deps.providers().find((p) => p.provider === args.provider);
    if (!provider) throw new ContractError('refused', `the provider ${args.provider} is not available here`);
    if (!provider.ready) throw new ContractError('refused', `${provider.label} is not configured: ${provider.note ?? 'set its API key in the host environment'}`);
    this.backoff.reset();
    this.lastWorkspace = args.workspace;
    const params = { workspace: args.workspace, provider: args.provider, ...(args.model ? { model: args.model } : {}) };
    await this.open(params);
    this.runPrompt(args.task);
    return this.status;
  };

  sendPrompt = async ({ task }: { task: string }): Promise<{ accepted: boolean; reason?: string }> => {
    const a = this.active;
    if (!a || a.closing) return { accepted: false, reason: 'no session is running; start one first' };
    if (this.status.state === 'running' || this.status.state === 'stopping') return { accepted: false, reason: 'the agent is still working on the last task; stop it first' };
    if (a.restoring) return { accepted: false, reason: 'an undo is in progress; answer it first' };
    a.stopped = false;
    this.runPrompt(task);
    return { accepted: true };
  };

  stopSession = async (): Promise<{ stopped: boolean; deniedQuestions: number }> => {
    clearTimeout(this.restartTimer);
    const a = this.active;
    // Deny first, synchronously: the user pressed stop, nothing pending may be allowed after this.
    const denied = this.consent.denyAll('stopped by you');
    if (!a || a.closing) {
      if (this.status.state === 'restarting') this.setStatus({ ...this.status, state: 'stopped', detail: 'stopped by you; the agent was not restarted' });
      return { stopped: false, deniedQuestions: denied };
    }
    a.stopped = true;
    a.session.broker.halt('the agent was stopped by the user');
    this.setStatus({ ...this.status, state: 'stopping' });
    try {
      await a.session.stop('stopped by the user');
    } catch {
      // a dead agent cannot be cancelled; the broker is halted either way
    }
    if (this.active === a && !a.closing) this.setStatus({ ...this.status, state: 'stopped', detail: 'Stopped by you. Pending requests were denied. Send a new task to continue, or end the session.' });
    return { stopped: true, deniedQuestions: denied };
  };

  endSession = async (): Promise<SessionStatus> => {
    clearTimeout(this.restartTimer);
    this.consent.denyAll('the session ended');
    const a = this.active;
    if (a) {
      a.closing = true;
      a.session.broker.halt('the session ended');
      await this.closeActive();
    }
    this.setStatus({ state: 'none', ...(this.lastWorkspace ? { workspace: this.lastWorkspace } : {}) });
    return this.status;
  };

  answerConsent = async ({ id, answer }: { id: string; answer: 'once' | 'session' | 'deny' }) => this.consent.answer(id, answer);

  listGrants = async (): Promise<{ grants: GrantView[] }> => ({ grants: this.grantViews() });

  revokeGrant = async ({ id }: { id: string }): Promise<{ revoked: boolean }> => {
    const a = this.active;
    if (!a || !a.session.grants.list(a.session.id).some((g) => g.id === id)) return { revoked: false };
    return { revoked: a.session.grants.revoke(id) };
  };

  readAudit = async ({ limit }: { limit?: number | undefined }) => {
    const [records, verification] = await Promise.all([this.deps.auditView.read(5000), this.deps.auditView.verify()]);
    const mine = records.filter((r) => this.sessionIds.has(r.session) || this.appSeqs.has(r.seq));
    const shipping = (this.deps.shipping?.() ?? []).slice(0, 20).map((m) => ({
      collector: m.sink, behind: m.backlogRecords, state: m.state, ...(m.lastError ? { lastError: m.lastError.slice(0, 2000) } : {}),
    }));
    return { records: mine.slice(-(limit ?? 1000)).map(auditRecordView), verification, shipping };
  };

  getDisclosure = async ({ workspace }: { workspace?: string | undefined }): Promise<Disclosure> => {
    const ws = workspace ?? this.lastWorkspace;
    const engine = await this.deps.policy();
    this.engine = engine;
    const items = discloseAccess(engine, ws ?? `${this.deps.home ?? '~'}/your-project`, this.deps.home);
    const fingerprint = disclosureFingerprint(items);
    const acked = await this.deps.settings.get(SETTINGS_ACK);
    return {
      fingerprint,
      acknowledged: Array.isArray(acked) && acked.includes(fingerprint),
      ...(ws ? { workspace: ws } : {}),
      items,
      notes: [
        'The agent runs in its own process with no API keys and no file or network access of its own: everything it does goes through Tether.',
        'Commands run in an OS sandbox: the workspace is writable, your home secrets are hidden and the network is off unless policy opens it.',
        'Every request and decision is recorded in the audit log.',
      ],
    };
  };

  acknowledgeDisclosure = async ({ fingerprint }: { fingerprint: string }): Promise<{ recorded: boolean; seq?: number }> => {
    const current = await this.getDisclosure({});
    if (current.fingerprint !== fingerprint) {
      throw new ContractError('refused', 'the policy changed since this disclosure was shown; read the new one');
    }
    const { seq } = await this.deps.audit.append({
      type: 'consent.disclosure',
      session: this.active?.session.id ?? '',
      detail: { fingerprint, acknowledged: true, items: current.items.map((i) => ({ capability: i.capability, effect: i.effect, rules: i.rules.map((r) => r.id) })) },
    });
    this.appSeqs.add(seq);
    const acked = await this.deps.settings.get(SETTINGS_ACK);
    await this.deps.settings.set(SETTINGS_ACK, [...(Array.isArray(acked) ? acked : []), fingerprint].slice(-20));
    this.emit('auditAppended', { seq });
    return { recorded: true, seq };
  };

  listCheckpoints = async (): Promise<{ available: boolean; checkpoints: CheckpointView[] }> => {
    const a = this.active;
    if (!a || a.closing || !a.session.checkpointsEnabled) return { available: false, checkpoints: [] };
    const list = await a.session.listCheckpoints();
    return { available: true, checkpoints: list.slice(0, MAX_CHECKPOINTS).map(checkpointView) };
  };

  restoreCheckpoint = async (args: { checkpoint: string; overwriteConflicts?: boolean | undefined; paths?: string[] | undefined }): Promise<RestoreResultView> => {
    const a = this.active;
    if (!a || a.closing) throw new ContractError('refused', 'no session is open; undo works on the changes of the open session\'s workspace');
    if (!a.session.checkpointsEnabled) throw new ContractError('refused', 'checkpoints are off for this session, so there is nothing to undo to');
    if (this.status.state !== 'idle' && this.status.state !== 'stopped') {
      throw new ContractError('refused', 'the agent is still working; wait until it has finished or stop it, then undo');
    }
    if (a.restoring) throw new ContractError('refused', 'another undo is waiting for your answer; answer it first');
    a.restoring = true;
    try {
      const r = await a.session.restoreCheckpoint(args.checkpoint, {
        ...(args.paths ? { paths: args.paths } : {}),
        ...(args.overwriteConflicts ? { overwriteConflicts: true } : {}),
      });
      const n = r.plan.files.length;
      if (n === 0) return { restored: false, message: `Nothing to undo: the workspace already matches checkpoint ${r.plan.checkpoint.seq}.`, files: 0 };
      return {
        restored: true,
        message: `Restored ${n} file${n === 1 ? '' : 's'} to checkpoint ${r.plan.checkpoint.seq}.`,
        files: n,
        ...(r.undoId ? { undoCheckpoint: r.undoId } : {}),
      };
    } catch (e) {
      if (e instanceof RestoreConflictError) {
        return { restored: false, message: e.message, conflicts: e.conflicts.map((c) => ({ path: c.path, conflict: c.conflict ?? 'changed outside Tether' })) };
      }
      if (e instanceof RequestDenied) return { restored: false, message: `Not restored: ${e.message}` };
      throw new ContractError('failed', `the restore failed: ${(e as Error).message}`);
    } finally {
      a.restoring = false;
    }
  };

  openExternal = async ({ url }: { url: string }): Promise<{ opened: boolean }> => {
    if (!isSafeExternalUrl(url) || !this.deps.openExternal) return { opened: false };
    return { opened: await this.deps.openExternal(url) };
  };

  /** Stops everything (app quit). */
  async dispose(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.restartTimer);
    this.consent.denyAll('Tether is closing');
    if (this.active) {
      this.active.closing = true;
      this.active.session.broker.halt('Tether is closing');
      await this.closeActive();
    }
  }

  // ------------------------------------------------------------ sessions --

  private async open(params: Active['params'], detail?: string): Promise<void> {
    this.consent.reset();
    this.rulesByRequest.clear();
    // The timeline shows the current session; the audit view keeps the history.
    this.activity = [];
    this.setStatus({ state: 'starting', workspace: params.workspace, provider: params.provider, ...(params.model ? { model: params.model } : {}) });
    let session: HostSession;
    try {
      session = await this.deps.startSession({ ...params, consent: this.consent, consentTimeoutMs: this.consentTimeoutMs });
    } catch (e) {
      this.setStatus({ ...this.status, state: 'failed', detail: `the session could not start: ${(e as Error).message}` });
      throw new ContractError('failed', `the session could not start: ${(e as Error).message}`);
    }
    const a: Active = { session, params, disposers: [], closing: false, agentExited: false, stopped: false, restoring: false };
    this.active = a;
    this.sessionIds.add(session.id);
    const { broker, grants } = session;
    a.disposers.push(
      broker.onDidDecide((e) => this.onDecide(e)),
      broker.onDidComplete((e) => this.onComplete(e)),
      grants.onDidChange(() => this.emit('grantsChanged', { grants: this.grantViews() })),
      session.onDidUpdate((u) => this.onUpdate(session.id, u)),
      session.onDidCheckpoint((c) => this.emit('checkpointsChanged', { latestSeq: c.seq })),
      session.onDidAgentExit((exit) => {
        a.agentExited = true;
        if (!a.closing && this.active === a && !this.disposed) void this.onAgentCrash(a, exit);
      }),
    );
    a.disposers.push(session.onDidTerminalOutput((t) => this.emit('terminalOutput', t)));
    const { detail: _old, stopReason: _reason, ...rest } = this.status;
    this.setStatus({ ...rest, state: 'idle', sessionId: session.id, ...(detail ? { detail } : {}) });
    this.emit('grantsChanged', { grants: this.grantViews() });
  }

  private runPrompt(task: string): void {
    const a = this.active;
    if (!a) return;
    const { stopReason: _done, detail: _detail, ...rest } = this.status;
    this.setStatus({ ...rest, state: 'running' });
    this.emit('agentUpdate', { sessionId: a.session.id, kind: 'user', text: task });
    a.session.prompt(task).then(
      ({ stopReason }) => {
        if (this.active !== a || a.closing) return;
        if (a.stopped) this.setStatus({ ...this.status, state: 'stopped', stopReason });
        else this.setStatus({ ...this.status, state: 'idle', stopReason });
      },
      async (e: Error) => {
        // A dying agent rejects the prompt too; the crash path reports that one.
        await delay(200);
        if (this.active !== a || a.closing || a.agentExited) return;
        this.setStatus({ ...this.status, state: a.stopped ? 'stopped' : 'idle', stopReason: 'error', detail: `the agent's turn failed: ${e.message}` });
      },
    );
  }

  private async onAgentCrash(a: Active, exit: { code: number | null; signal: string | null }): Promise<void> {
    a.closing = true;
    this.consent.denyAll('the agent process died');
    a.session.broker.halt('the agent process died');
    // The session has written the agent.exit record; the audit view picks it up.
    this.emit('auditAppended', { seq: 0 });
    await this.closeActive();
    this.scheduleRestart(a.params, `The agent process ${describeAgentExit(exit)} unexpectedly.`, exit);
  }

  /** Counts a crash (or a failed restart) and starts a fresh session after the backoff, or gives up. */
  private scheduleRestart(params: Active['params'], message: string, exit: { code: number | null; signal: string | null }): void {
    const { attempt, delayMs } = this.backoff.next(this.now());
    this.emit('agentCrashed', { message, exitCode: exit.code, signal: exit.signal, attempt, restartInMs: delayMs });
    if (delayMs === null) {
      this.setStatus({ ...this.status, state: 'crashed', detail: `${message} It failed ${attempt} times in a row, so Tether stopped restarting it; start a new session to try again.` });
      return;
    }
    this.setStatus({ ...this.status, state: 'restarting', detail: `${message} Restarting in ${Math.round(delayMs / 100) / 10} s (attempt ${attempt}).` });
    this.restartTimer = setTimeout(() => {
      if (this.disposed || this.active || this.status.state !== 'restarting') return;
      this.setStatus({ ...this.status, state: 'restarting' });
      this.open(params, 'The agent was restarted after a crash in a new session; grants were reset. Send the task again to continue.').catch((e: Error) => {
        if (!this.disposed && !this.active) this.scheduleRestart(params, `The agent could not be restarted: ${e.message}`, { code: null, signal: null });
      });
    }, delayMs);
  }

  private async closeActive(): Promise<void> {
    const a = this.active;
    if (!a) return;
    a.closing = true;
    for (const d of a.disposers.splice(0)) d();
    try {
      await a.session.close();
    } catch (e) {
      console.error('tether: closing the session failed:', e);
    }
    if (this.active === a) this.active = undefined;
    this.emit('grantsChanged', { grants: [] });
  }

  // -------------------------------------------------------------- events --

  private onDecide({ request, decision, seq }: DecisionEvent): void {
    const ruleInfo = this.rulesByRequest.get(request.id) ?? decision.policy.policyIds.map((id) => ({ id, description: this.describeRule(id) }));
    this.rulesByRequest.delete(request.id);
    const view: DecisionView = {
      allowed: decision.allowed,
      effect: decision.policy.effect,
      policyIds: [...decision.policy.policyIds],
      rules: ruleInfo,
      decidedBy: decision.decidedBy,
      ...(decision.answer ? { answer: decision.answer } : {}),
      ...(decision.grantId ? { grantId: decision.grantId } : {}),
      reason: decision.reason,
    };
    const entry: ActivityEntry = { seq, time: new Date(this.now()).toISOString(), sessionId: request.sessionId, request: requestView(request), decision: view };
    this.activity.push(entry);
    if (this.activity.length > MAX_ACTIVITY) this.activity = this.activity.slice(-MAX_ACTIVITY);
    this.emit('activity', entry);
    this.emit('auditAppended', { seq });
  }

  private onComplete({ request, outcome, seq }: OutcomeEvent): void {
    const view: OutcomeView = {
      ok: outcome.ok,
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      ...(outcome.bytes !== undefined ? { bytes: outcome.bytes } : {}),
      ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}),
      ...(outcome.signal !== undefined ? { signal: outcome.signal } : {}),
      ...(outcome.durationMs !== undefined ? { durationMs: outcome.durationMs } : {}),
      ...(outcome.changedFiles ? { changedFiles: outcome.changedFiles.map((f) => ({ path: f.path, change: f.change })) } : {}),
    };
    const entry = this.activity.findLast((e) => e.request.id === request.id);
    if (entry) entry.outcome = view;
    this.emit('activityOutcome', { requestId: request.id, seq, outcome: view });
    this.emit('auditAppended', { seq });
  }

  private onUpdate(sessionId: string, raw: unknown): void {
    const u = agentUpdate(sessionId, raw);
    if (u) this.emit('agentUpdate', u);
  }

  private describeRule(id: string): string {
    return this.active?.session.describeRule?.(id) ?? this.engine?.rule(id)?.description ?? id;
  }

  private questionView({ question: q, deadline }: PendingConsent): ConsentQuestionView {
    const rules = q.ruleDescriptions.map((r) => ({ id: r.id, description: r.description }));
    this.rulesByRequest.set(q.request.id, rules);
    return {
      id: q.id,
      sessionId: q.request.sessionId,
      request: requestView(q.request),
      policy: { effect: q.decision.effect, policyIds: [...q.decision.policyIds], reason: q.decision.reason },
      rules,
      preview: previewView(q.preview),
      ...(q.proposedGrant ? { proposedGrant: { scope: scopeView(q.proposedGrant), description: describeScope(q.proposedGrant, q.request) } } : {}),
      timeoutMs: q.timeoutMs,
      deadline,
    };
  }

  private grantViews(): GrantView[] {
    const a = this.active;
    if (!a || a.closing) return [];
    return a.session.grants.list(a.session.id).map(grantView);
  }

  private setStatus(s: SessionStatus): void {
    this.status = s;
    this.emit('sessionStatus', s);
  }

  private emit<E extends EventName>(name: E, payload: PayloadOf<E>): void {
    const checked = checkEvent(name, payload);
    if (checked === undefined) {
      console.error(`tether: dropped a ${name} event that does not match the contract`);
      return;
    }
    this.didEmit.fire({ name, payload: checked });
  }

  private async chosenWorkspaces(): Promise<Set<string>> {
    if (!this.chosen) {
      const saved = await this.deps.settings.get(SETTINGS_WORKSPACES);
      this.chosen = new Set(Array.isArray(saved) ? saved.filter((s): s is string => typeof s === 'string') : []);
      if (!this.lastWorkspace && this.chosen.size > 0) this.lastWorkspace = [...this.chosen].at(-1);
    }
    return this.chosen;
  }
}

// -------------------------------------------------------------- mapping ----

export function requestView(r: CapabilityRequest): RequestView {
  return {
    id: r.id,
    action: r.action,
    kind: r.kind,
    method: r.method,
    ...(r.target ? { path: r.target.path, inWorkspace: r.target.inWorkspace } : {}),
    ...(r.target?.relPath !== undefined ? { relPath: r.target.relPath } : {}),
    ...(r.destination ? { destination: r.destination.relPath ?? r.destination.path } : {}),
    ...(r.command ? { command: r.command.line, cwd: r.command.cwd } : {}),
    ...(r.url ? { url: r.url } : {}),
    traceId: r.trace.traceId,
  };
}

/** Field by field, so a new preview kind fails to compile here instead of being dropped at run time. */
export function previewView(p: ConsentPreview): ConsentPreviewView {
  switch (p.type) {
    case 'write':
      return { type: 'write', path: p.path, created: p.created, bytes: p.bytes, diff: p.diff };
    case 'delete':
      return { type: 'delete', path: p.path, recursive: p.recursive, ...(p.diff !== undefined ? { diff: p.diff } : {}) };
    case 'move':
      return { type: 'move', from: p.from, to: p.to, overwrite: p.overwrite };
    case 'read':
      return { type: 'read', path: p.path, ...(p.note !== undefined ? { note: p.note } : {}) };
    case 'exec':
      return {
        type: 'exec', command: p.command, cwd: p.cwd, notes: [...p.notes],
        sandbox: p.sandbox === 'unsandboxed' ? 'unsandboxed' : {
          writable: [...p.sandbox.writable], hidden: [...p.sandbox.hidden],
          network: p.sandbox.network === 'none' ? 'none' : { allowedDomains: [...p.sandbox.network.allowedDomains] },
        },
      };
    case 'net':
      return { type: 'net', destination: p.destination, method: p.method, bytes: p.bytes, summary: p.summary };
    case 'restore':
      return {
        type: 'restore', checkpoint: p.checkpoint, summary: p.summary, diff: p.diff,
        files: p.files.map((f) => ({ path: f.path, action: f.action, ...(f.conflict !== undefined ? { conflict: f.conflict } : {}) })),
      };
  }
}

function checkpointView(c: CheckpointInfo): CheckpointView {
  return {
    id: c.id,
    seq: c.seq,
    time: c.time,
    kind: c.kind,
    sessionId: c.sessionId,
    turn: c.turn,
    requestIds: c.requestIds.slice(0, 1000),
    changed: c.changed.slice(0, MAX_CHANGED_SHOWN).map((f) => ({ path: f.path, status: f.status })),
    changedCount: c.changed.length,
    ...(c.restoredFrom ? { restoredFrom: c.restoredFrom } : {}),
  };
}

function scopeView(s: GrantScope): GrantView['scope'] {
  return {
    actions: [...s.actions],
    ...(s.pathPattern !== undefined ? { pathPattern: s.pathPattern } : {}),
    ...(s.command ? { command: { program: s.command.program, args: [...s.command.args] } } : {}),
    ...(s.host !== undefined ? { host: s.host } : {}),
  };
}

/** The exact scope "allow for this session" grants, in words. */
export function describeScope(s: GrantScope, r?: CapabilityRequest): string {
  const verbs = s.actions.join(', ');
  if (s.command) return `${verbs} exactly \`${[s.command.program, ...s.command.args].join(' ')}\` (no other arguments, no other program) until this session ends`;
  if (s.host) return `${verbs} to ${s.host} (this host only) until this session ends`;
  const where = r?.workspace ? ' in this workspace' : '';
  return `${verbs} the file ${s.pathPattern ?? '(nothing)'}${where} (this path only) until this session ends`;
}

function grantView(g: SessionGrant): GrantView {
  return { id: g.id, sessionId: g.sessionId, scope: scopeView(g.scope), createdAt: g.createdAt, fromRequest: g.fromRequest, description: g.description };
}

function auditRecordView(r: AuditRecord): AuditRecordView {
  return {
    seq: r.seq,
    time: r.time,
    type: r.type,
    session: r.session,
    ...(r.traceId ? { traceId: r.traceId } : {}),
    ...(r.request ? {
      request: {
        id: r.request.id, method: r.request.method, action: r.request.action, kind: r.request.kind,
        ...(r.request.path !== undefined ? { path: r.request.path } : {}),
        ...(r.request.destination !== undefined ? { destination: r.request.destination } : {}),
        ...(r.request.command !== undefined ? { command: r.request.command } : {}),
        ...(r.request.cwd !== undefined ? { cwd: r.request.cwd } : {}),
        ...(r.request.url !== undefined ? { url: r.request.url } : {}),
      },
    } : {}),
    ...(r.decision ? {
      decision: {
        effect: r.decision.effect, allowed: r.decision.allowed, policyIds: [...r.decision.policyIds], decidedBy: r.decision.decidedBy,
        ...(r.decision.answer ? { answer: r.decision.answer } : {}),
        ...(r.decision.grantId ? { grantId: r.decision.grantId } : {}),
        reason: r.decision.reason,
      },
    } : {}),
    ...(r.outcome ? {
      outcome: {
        ok: r.outcome.ok,
        ...(r.outcome.error !== undefined ? { error: r.outcome.error } : {}),
        ...(r.outcome.bytes !== undefined ? { bytes: r.outcome.bytes } : {}),
        ...(r.outcome.exitCode !== undefined ? { exitCode: r.outcome.exitCode } : {}),
        ...(r.outcome.durationMs !== undefined ? { durationMs: r.outcome.durationMs } : {}),
      },
    } : {}),
    ...(r.detail ? { detail: { ...r.detail } } : {}),
  };
}

/**
 * ACP `session/update` → what the UI shows. Unknown update kinds are ignored.
 * Command output reaches the terminal view from the shell itself
 * (HostSession.onDidTerminalOutput), not from the agent's reports.
 */
export function agentUpdate(sessionId: string, raw: unknown): AgentUpdate | undefined {
  const params = raw as { update?: Record<string, unknown> } | undefined;
  const u = params?.update;
  if (!u || typeof u !== 'object') return undefined;
  const textOf = (c: unknown): string => {
    const block = c as { type?: string; text?: unknown; content?: unknown } | undefined;
    if (!block) return '';
    if (block.type === 'text' && typeof block.text === 'string') return block.text;
    if (block.type === 'content') return textOf(block.content);
    return '';
  };
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  switch (u['sessionUpdate']) {
    case 'agent_message_chunk':
      return { sessionId, kind: 'message', text: textOf(u['content']) };
    case 'agent_thought_chunk':
      return { sessionId, kind: 'thought', text: textOf(u['content']) };
    case 'tool_call':
    case 'tool_call_update': {
      const status = str(u['status']);
      return { sessionId, kind: 'tool', text: str(u['title']) ?? '', toolCallId: str(u['toolCallId']) ?? '', ...(status ? { status } : {}) };
    }
    case 'plan': {
      const entries = Array.isArray(u['entries']) ? (u['entries'] as { content?: unknown; status?: unknown }[]) : [];
      return { sessionId, kind: 'plan', text: entries.map((e) => `${e.status === 'completed' ? '✓' : '•'} ${str(e.content) ?? ''}`).join('\n') };
    }
    default:
      return undefined;
  }
}

/** http(s) only, with a host, no credentials in the URL. */
export function isSafeExternalUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '' && url.username === '' && url.password === '';
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Settings in one JSON file, written atomically (temp file + rename). */
export class JsonFileSettings implements SettingsStore {
  private readonly file: string;
  private cache: Record<string, unknown> | undefined;
  private writing: Promise<void> = Promise.resolve();
  constructor(file: string) {
    this.file = file;
  }
  private async load(): Promise<Record<string, unknown>> {
    if (this.cache) return this.cache;
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as unknown;
      this.cache = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') console.error(`tether: settings in ${this.file} are unreadable (${(e as Error).message}); starting from defaults`);
      this.cache = {};
    }
    return this.cache;
  }
  async get(key: string): Promise<unknown> {
    return (await this.load())[key];
  }
  async set(key: string, value: unknown): Promise<void> {
    const data = { ...(await this.load()), [key]: value };
    this.cache = data;
    this.writing = this.writing.then(async () => {
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(data, null, 2), { mode: 0o600 });
      await rename(tmp, this.file);
    });
    await this.writing;
  }
}
