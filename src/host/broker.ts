// The broker: the only path from an agent's request to an effect.
//
//   policy → (ask → grant | consent, with timeout) → audit decision (durable)
//   → effect → audit outcome → result
//
// Invariants:
//  1. No effect runs unless a decision record for it is durable.
//  2. Anything that fails on the way (policy engine, consent UI, audit disk)
//     denies the request; nothing here falls back to allow.
//  3. A grant can turn "ask" into allow; nothing turns "deny" into allow.
//  4. After `halt()` (stop button, kill switch) every pending and new request
//     is denied, and an allowed one whose effect has not started yet does not
//     start, until `resume()`, except new requests the user started from
//     Tether itself (a restore: `userInitiated`), which are still decided.
//  5. The outcome record is appended before the result goes back, but the
//     reply does not wait for its fsync: it is a deferred append that rides
//     the next group commit (the next decision's, or a few ms later on its
//     own; `settled()` and the writer's close wait for it). A crash in that
//     window can lose an outcome, never a decision. An effect that is made
//     durable after it returns (`EffectResult.durable`: a write's directory
//     fsync) has its outcome appended once that settles, so an outcome
//     record never claims a change the disk might not have.
//  6. What an allowed effect needs and nobody can observe — reading the
//     file, staging a write's new content in a temp file beside the target —
//     may run while the decision record is being committed (`prepare`),
//     after the checkpoint hook. Nothing leaves the host and nothing in the
//     workspace changes until that record is durable; if it cannot be
//     written, the staged work is discarded. This takes the effect's own
//     I/O off the critical path of the audit fsync.

import { channel } from 'node:diagnostics_channel';
import type { AuditActor, AuditOutcome, AuditRequest } from '../common/audit-record.ts';
import type { CapabilityRequest } from '../common/capability.ts';
import type { ConsentPreview, ConsentQuestion, GrantScope } from '../common/consent.ts';
import { DENIED_ERROR_CODE, type DecidedBy, type DeniedErrorData, type FinalDecision, type PolicyDecision } from '../common/decision.ts';
import { Emitter } from '../common/emitter.ts';
import { proposeGrant } from '../common/grants.ts';
import type { AuditReceipt, AuditWriter } from './audit/audit-writer.ts';
import type { ConsentPort, GrantStore } from './consent.ts';
import type { PolicyEngine } from './policy/policy-engine.ts';
import type { OpenedTunnel, TappedConnection } from './sandbox/network-tap.ts';

/** Thrown to the agent as a JSON-RPC error (code DENIED_ERROR_CODE) naming the rule. */
export class RequestDenied extends Error {
  override readonly name = 'RequestDenied';
  readonly code = DENIED_ERROR_CODE;
  readonly data: DeniedErrorData;
  constructor(data: DeniedErrorData) {
    super(formatDenial(data));
    this.data = data;
  }
}

function formatDenial(d: DeniedErrorData): string {
  const rule = d.policyIds.length > 0 ? ` by ${d.policyIds.join(', ')}` : '';
  const who: Record<DecidedBy, string> = {
    policy: `denied by policy${rule}`,
    user: 'denied by the user',
    grant: 'denied',
    timeout: 'denied: nobody answered the consent request in time',
    'kill-switch': 'denied: the agent was stopped',
    preset: 'denied',
    host: 'refused by the host',
    error: 'denied because the decision could not be made',
  };
  return `${who[d.decidedBy]}: ${d.reason}`;
}

/** One step of an execute() done: `at` is performance.now(). */
export interface BrokerStep {
  readonly request: string;
  readonly step: 'decided' | 'submitted' | 'recorded' | 'ready' | 'done';
  readonly at: number;
}
/**
 * When each step of every execute() ends, for profilers (the broker bench
 * splits its round trips with it): decided (policy, consent), submitted (the
 * decision record handed to the writer; with an in-place commit, written),
 * recorded (durable), ready (groundwork), done (the effect). Nothing is
 * published, and it costs nothing, without a subscriber.
 */
export const brokerSteps = channel('tether.broker.step');

export interface EffectResult<T> {
  readonly result: T;
  readonly outcome?: Omit<AuditOutcome, 'ok'>;
  /**
   * Settles when the effect is on disk, if that comes after the result (a
   * write's directory fsync). The outcome record waits for it; a rejection
   * is recorded as a failed outcome ("the change was made but may not survive a crash").
   */
  readonly durable?: Promise<void>;
}

export interface ExecuteOptions<T, P = undefined> {
  /** Built only when consent is needed. */
  readonly preview: () => Promise<ConsentPreview>;
  /**
   * Invisible groundwork for the effect (invariant 6): started once the
   * request is allowed, while its decision record is committed. Must change
   * nothing the agent, a command or the user could observe. Its failure is
   * the effect's failure.
   */
  readonly prepare?: () => Promise<P>;
  /**
   * `prepare` does enough on this thread (creating and writing a temp file)
   * that the decision record is better committed on a pool thread meanwhile
   * (AppendOptions.overlap). A read's groundwork is shorter than that hand-off.
   */
  readonly overlapCommit?: boolean;
  /** Undoes `prepare` when the effect will not run (the decision record could not be written). */
  readonly discard?: (prepared: P) => Promise<void>;
  /** Gets what `prepare` returned (undefined without one). */
  readonly effect: (prepared: P) => Promise<EffectResult<T>>;
  /** Aborts a pending consent question (agent cancelled the request). */
  readonly signal?: AbortSignal;
  /**
   * The user started this from Tether itself (a restore), not the agent: a
   * halt of the agent (the stop button) does not deny it. Policy, consent and
   * audit apply as to any request; halting while it is pending still denies it.
   */
  readonly userInitiated?: boolean;
}

/** One part of a compound request (a command of a shell line, a file it writes). */
export interface CompoundPart {
  readonly request: CapabilityRequest;
  /** What the part is, for the dialog and the record: "`rm -rf build`", "write /ws/out.txt". */
  readonly label: string;
}

/** How policy (and grants) saw one part. */
export interface PartDecision {
  readonly part: CompoundPart;
  readonly decision: PolicyDecision;
  /** The session grant that covers this part's "ask", if any. */
  readonly grantId?: string;
}

/** An effect that starts now and reports its outcome later (a command that keeps running). */
export interface DeferredEffect<T> {
  readonly result: T;
  /** Settles when the effect has finished; a rejection is recorded as a failed outcome. */
  readonly outcome: Promise<Omit<AuditOutcome, 'ok'> & { readonly ok?: boolean }>;
}

export interface CompoundOptions<T> {
  /** Each is decided by policy; any deny denies the whole request, any ask asks once for all. */
  readonly parts: readonly CompoundPart[];
  /** Reasons the user must be asked whatever policy and grants say (an uncertain parse, an unsandboxed run). */
  readonly mustAsk?: readonly string[];
  /** Never offer "allow for this session". */
  readonly noSessionGrant?: boolean;
  /** Recorded with the decision: the sandbox profile (AuditRequest.sandbox). */
  readonly auditSandbox?: Readonly<Record<string, unknown>>;
  /** Built only when consent is needed; gets every part's decision to explain why. */
  readonly preview: (parts: readonly PartDecision[]) => Promise<ConsentPreview>;
  readonly effect: () => Promise<DeferredEffect<T>>;
  readonly signal?: AbortSignal;
}

export interface CompoundExecution<T> {
  readonly result: T;
  readonly decision: FinalDecision;
  /** Sequence number of the decision record. */
  readonly seq: number;
  /** Resolves once the outcome record is durable. Never rejects. */
  readonly completed: Promise<{ readonly outcome: AuditOutcome; readonly seq: number | undefined }>;
}

export interface DecisionEvent {
  readonly request: CapabilityRequest;
  readonly decision: FinalDecision;
  readonly seq: number;
}
export interface OutcomeEvent {
  readonly request: CapabilityRequest;
  readonly outcome: AuditOutcome;
  readonly seq: number;
}

/** Runs around every allowed effect (checkpoints). `before` failing fails the effect. */
export interface EffectHooks {
  before?(request: CapabilityRequest): Promise<void>;
  after?(request: CapabilityRequest, outcome: AuditOutcome, decisionSeq: number): Promise<void>;
}

export interface BrokerOptions {
  readonly policy: PolicyEngine;
  readonly consent: ConsentPort;
  readonly grants: GrantStore;
  readonly audit: AuditWriter;
  readonly actor: AuditActor;
  /** How long a consent question waits before it is denied. */
  readonly consentTimeoutMs: number;
  readonly hooks?: EffectHooks;
}

export class Broker {
  private readonly didAsk = new Emitter<ConsentQuestion>();
  private readonly didDecide = new Emitter<DecisionEvent>();
  private readonly didComplete = new Emitter<OutcomeEvent>();
  readonly onDidAsk = this.didAsk.event;
  readonly onDidDecide = this.didDecide.event;
  readonly onDidComplete = this.didComplete.event;

  private halted: string | undefined;
  private readonly pending = new Set<AbortController>();
  private readonly outcomes = new Set<Promise<void>>();

  private readonly opts: BrokerOptions;
  constructor(opts: BrokerOptions) {
    this.opts = opts;
  }

  get grants(): GrantStore {
    return this.opts.grants;
  }

  /** Denies every pending and future request until `resume()`. */
  halt(reason: string): void {
    this.halted = reason;
    for (const c of this.pending) c.abort(new Error(reason));
  }

  resume(): void {
    this.halted = undefined;
  }

  async execute<T, P = undefined>(request: CapabilityRequest, options: ExecuteOptions<T, P>): Promise<T> {
    const step = brokerSteps.hasSubscribers ? (s: BrokerStep['step']) => brokerSteps.publish({ request: request.id, step: s, at: performance.now() } satisfies BrokerStep) : undefined;
    const decision = await this.decide(request, options);
    step?.('decided');
    const recorded = this.record(request, decision, { overlap: decision.allowed && options.overlapCommit === true });
    step?.('submitted');
    const started = performance.now();
    // Invariant 6: the checkpoint hook and the effect's groundwork overlap the commit.
    const ready = decision.allowed ? this.groundwork(request, options) : undefined;
    let receipt: AuditReceipt;
    try {
      receipt = await recorded;
      step?.('recorded');
    } catch (e) {
      if (ready) void ready.then((r) => (r.ok && options.discard ? options.discard(r.prepared) : undefined)).catch(() => undefined);
      throw e;
    }
    this.didDecide.fire({ request, decision, seq: receipt.seq });
    if (!decision.allowed) {
      throw new RequestDenied({ decidedBy: decision.decidedBy, policyIds: decision.policy.policyIds, reason: decision.reason });
    }
    let done: EffectResult<T>;
    try {
      const r = await ready!;
      step?.('ready');
      if (!r.ok) throw r.error;
      // Stopped while the record was committed or the checkpoint taken: the effect does not start.
      if (this.halted !== undefined && !options.userInitiated) {
        if (options.discard) await options.discard(r.prepared).catch(() => undefined);
        throw this.stoppedBeforeEffect();
      }
      done = await options.effect(r.prepared);
      step?.('done');
    } catch (e) {
      this.recordOutcome(request, { ok: false, error: (e as Error).message, durationMs: round(performance.now() - started) });
      throw e;
    }
    const outcome: AuditOutcome = { ...done.outcome, ok: true, durationMs: round(performance.now() - started) };
    if (done.durable) {
      const durable = done.durable.then(
        () => outcome,
        (e: unknown): AuditOutcome => ({ ...outcome, ok: false, error: `the change was made but may not survive a crash: ${(e as Error).message}` }),
      );
      this.recordOutcome(request, durable);
    } else {
      this.recordOutcome(request, outcome);
    }
    await this.opts.hooks?.after?.(request, outcome, receipt.seq);
    return done.result;
  }

  /**
   * The before-effect hook, then `prepare`, started right after the decision
   * record went to the writer (the signed log has its write on the way to the
   * disk by then). Never rejects.
   */
  private async groundwork<T, P>(request: CapabilityRequest, options: ExecuteOptions<T, P>): Promise<{ ok: true; prepared: P } | { ok: false; error: unknown }> {
    try {
      await this.opts.hooks?.before?.(request);
      return { ok: true, prepared: (options.prepare ? await options.prepare() : undefined) as P };
    } catch (error) {
      return { ok: false, error };
    }
  }

  /** A request allowed, then halted before its effect started (its outcome records the failure). */
  private stoppedBeforeEffect(): RequestDenied {
    const reason = `${this.halted ?? 'stopped'} (before the effect started)`;
    return new RequestDenied({ decidedBy: 'kill-switch', policyIds: [], reason });
  }

  /** Resolves when every outcome record appended so far is durable. */
  async settled(): Promise<void> {
    while (this.outcomes.size > 0) await Promise.allSettled([...this.outcomes]);
  }

  /**
   * A request made of several parts (a shell line: its commands and the files
   * it writes), decided together: every part by policy, any deny denies the
   * whole, any "ask" not covered by a session grant (or any `mustAsk` reason)
   * asks the user ONE question for the whole, and ONE decision record lists
   * every determining policy. The effect starts after that record is durable
   * and may keep running: its outcome is recorded when it settles.
   *
   * "Allow for this session" is offered only when exactly one part needs
   * consent and it has an exact grant (proposeGrant); it then grants that part.
   * The effect hooks (checkpoints) run before the effect starts and after its
   * outcome is recorded, as for execute().
   */
  async executeCompound<T>(request: CapabilityRequest, options: CompoundOptions<T>): Promise<CompoundExecution<T>> {
    const { decision, parts } = await this.decideCompound(request, options);
    const receipt = await this.record(request, decision, {
      ...(options.auditSandbox ? { sandbox: options.auditSandbox } : {}),
      detail: {
        parts: parts.map((p) => ({
          action: p.part.request.action,
          subject: p.part.label,
          effect: p.decision.effect,
          policyIds: p.decision.policyIds,
          ...(p.grantId ? { grantId: p.grantId } : {}),
        })),
        ...(options.mustAsk && options.mustAsk.length > 0 ? { mustAsk: options.mustAsk } : {}),
      },
    });
    this.didDecide.fire({ request, decision, seq: receipt.seq });
    if (!decision.allowed) {
      throw new RequestDenied({ decidedBy: decision.decidedBy, policyIds: decision.policy.policyIds, reason: decision.reason });
    }
    const started = performance.now();
    // Unlike execute(), `completed` waits for the outcome's fsync: a command's
    // outcome (its changed files) is durable before wait_for_exit answers.
    const finish = async (outcome: AuditOutcome, effectRan: boolean) => {
      let seq: number | undefined;
      const append = this.appendOutcome(request, outcome);
      const tracked = append.then(() => {}, () => {});
      this.outcomes.add(tracked);
      void tracked.finally(() => this.outcomes.delete(tracked));
      try {
        seq = await append;
        this.didComplete.fire({ request, outcome, seq });
      } catch (e) {
        console.error(`tether: an outcome record could not be written: ${(e as Error).message}`);
      }
      if (effectRan) {
        try {
          await this.opts.hooks?.after?.(request, outcome, receipt.seq);
        } catch (e) {
          console.error(`tether: the after-effect hook failed: ${(e as Error).message}`);
        }
      }
      return { outcome, seq };
    };
    let deferred: DeferredEffect<T>;
    try {
      await this.opts.hooks?.before?.(request);
      if (this.halted !== undefined) throw this.stoppedBeforeEffect();
      deferred = await options.effect();
    } catch (e) {
      await finish({ ok: false, error: (e as Error).message, durationMs: round(performance.now() - started) }, false);
      throw e;
    }
    const completed = deferred.outcome.then(
      (o) => finish({ durationMs: round(performance.now() - started), ...o, ok: o.ok ?? true }, true),
      (e: unknown) => finish({ ok: false, error: (e as Error).message, durationMs: round(performance.now() - started) }, true),
    );
    return { result: deferred.result, decision, seq: receipt.seq, completed };
  }

  private async decideCompound<T>(request: CapabilityRequest, options: CompoundOptions<T>): Promise<{ decision: FinalDecision; parts: PartDecision[] }> {
    const parts: PartDecision[] = [];
    if (this.halted !== undefined) {
      return { decision: deny({ effect: 'deny', policyIds: [], reason: this.halted }, 'kill-switch', this.halted), parts };
    }
    for (const part of options.parts) {
      let d: PolicyDecision;
      try {
        d = this.opts.policy.decide(part.request);
      } catch (e) {
        const reason = `the policy engine failed on ${part.label}: ${(e as Error).message}`;
        return { decision: deny({ effect: 'deny', policyIds: [], reason, errors: [reason] }, 'error', reason), parts };
      }
      const grant = d.effect === 'ask' ? this.opts.grants.find(part.request) : undefined;
      parts.push({ part, decision: d, ...(grant ? { grantId: grant.id } : {}) });
    }
    const policyIds = [...new Set(parts.flatMap((p) => p.decision.policyIds))];
    const denied = parts.filter((p) => p.decision.effect === 'deny');
    if (denied.length > 0) {
      // The denying parts' policies decided; every part's are in the record's detail.
      const reason = denied.map((p) => `${p.part.label}: ${p.decision.reason}`).join('; ');
      const errors = denied.flatMap((p) => p.decision.errors ?? []);
      const denyIds = [...new Set(denied.flatMap((p) => p.decision.policyIds))];
      const policy: PolicyDecision = { effect: 'deny', policyIds: denyIds, reason, ...(errors.length > 0 ? { errors } : {}) };
      return { decision: deny(policy, errors.length > 0 ? 'error' : 'policy', reason), parts };
    }
    const mustAsk = options.mustAsk ?? [];
    const asking = parts.filter((p) => p.decision.effect === 'ask' && (mustAsk.length > 0 || !p.grantId));
    if (parts.length === 0 && mustAsk.length === 0) {
      const reason = 'the request has no parts to decide';
      return { decision: deny({ effect: 'deny', policyIds: [], reason }, 'host', reason), parts };
    }
    const effect = asking.length > 0 || mustAsk.length > 0 ? 'ask' : parts.some((p) => p.decision.effect === 'ask') ? 'ask' : 'allow';
    const why = [...mustAsk, ...asking.map((p) => `${p.part.label}: ${p.decision.reason}`)];
    const policy: PolicyDecision = {
      effect,
      policyIds,
      reason: effect === 'allow' ? parts.map((p) => p.decision.reason).filter((r, i, a) => a.indexOf(r) === i).join('; ') : why.join('; ') || 'covered by session grants',
    };
    if (asking.length === 0 && mustAsk.length === 0) {
      const grantIds = parts.flatMap((p) => (p.grantId ? [p.grantId] : []));
      if (grantIds.length === 0) return { decision: { allowed: true, policy, decidedBy: 'policy', reason: policy.reason }, parts };
      const names = grantIds.map((id) => this.opts.grants.list().find((g) => g.id === id)?.description ?? id);
      return { decision: { allowed: true, policy, decidedBy: 'grant', grantId: grantIds[0]!, reason: `covered by the session grant${names.length > 1 ? 's' : ''} ${names.map((n) => `"${n}"`).join(', ')}` }, parts };
    }
    // What must be asked (a line policy could not fully see, an unsandboxed run)
    // needs a person: a preset answer (--on-ask allow) does not stand in for one.
    const preset = this.opts.consent.preset;
    if (mustAsk.length > 0 && preset !== undefined) {
      const reason = `${mustAsk.join('; ')}: this needs a person to answer, and there is none (${preset})`;
      return { decision: deny({ ...policy, effect: 'ask' }, 'preset', reason), parts };
    }
    const single = asking.length === 1 && mustAsk.length === 0 && !options.noSessionGrant ? asking[0]!.part.request : undefined;
    const decision = await this.consent(
      request,
      policy,
      () => options.preview(parts),
      () => (single ? proposeGrant(single) : undefined),
      options.signal,
    );
    return { decision, parts };
  }

  /**
   * Records and throws a refusal that happened before policy could run
   * (malformed path, device file, over a limit). The agent sees the reason.
   */
  async refuse(request: CapabilityRequest, reason: string): Promise<never> {
    const policy: PolicyDecision = { effect: 'deny', policyIds: [], reason };
    const decision: FinalDecision = { allowed: false, policy, decidedBy: 'host', reason };
    const receipt = await this.record(request, decision);
    this.didDecide.fire({ request, decision, seq: receipt.seq });
    throw new RequestDenied({ decidedBy: 'host', policyIds: [], reason });
  }

  private async decide(request: CapabilityRequest, options: Pick<ExecuteOptions<unknown, unknown>, 'userInitiated' | 'preview' | 'signal'>): Promise<FinalDecision> {
    if (this.halted !== undefined && !options.userInitiated) {
      return deny({ effect: 'deny', policyIds: [], reason: this.halted }, 'kill-switch', this.halted);
    }
    let policy: PolicyDecision;
    try {
      policy = this.opts.policy.decide(request);
    } catch (e) {
      const reason = `the policy engine failed: ${(e as Error).message}`;
      return deny({ effect: 'deny', policyIds: [], reason, errors: [reason] }, 'error', reason);
    }
    if (policy.effect === 'deny') return deny(policy, 'policy', policy.reason);
    if (policy.effect === 'allow') return { allowed: true, policy, decidedBy: 'policy', reason: policy.reason };

    const grant = this.opts.grants.find(request);
    if (grant) return { allowed: true, policy, decidedBy: 'grant', grantId: grant.id, reason: `covered by the session grant "${grant.description}"` };
    return this.askUser(request, policy, options);
  }

  private askUser(request: CapabilityRequest, policy: PolicyDecision, options: Pick<ExecuteOptions<unknown, unknown>, 'preview' | 'signal'>): Promise<FinalDecision> {
    return this.consent(request, policy, options.preview, () => proposeGrant(request), options.signal);
  }

  private async consent(
    request: CapabilityRequest,
    policy: PolicyDecision,
    buildPreview: () => Promise<ConsentPreview>,
    buildGrant: () => GrantScope | undefined,
    signal: AbortSignal | undefined,
  ): Promise<FinalDecision> {
    const controller = new AbortController();
    this.pending.add(controller);
    const onAbort = () => controller.abort(new Error('the agent cancelled the request'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new ConsentTimeout()), this.opts.consentTimeoutMs);
    try {
      const preview = await buildPreview();
      const proposedGrant = buildGrant();
      const question: ConsentQuestion = {
        id: request.id,
        request,
        decision: policy,
        ruleDescriptions: policy.policyIds.map((id) => ({ id, description: this.opts.policy.rule(id)?.description ?? id })),
        preview,
        ...(proposedGrant ? { proposedGrant } : {}),
        timeoutMs: this.opts.consentTimeoutMs,
      };
      this.didAsk.fire(question);
      const answer = await raceAbort(this.opts.consent.ask(question, controller.signal), controller.signal);
      // Only a known "allow" answer allows; anything else a consent port returns denies.
      if (answer !== 'once' && answer !== 'session' && answer !== 'deny') {
        return deny(policy, 'error', `the consent answer "${String(answer)}" is not one Tether knows; denied`);
      }
      const preset = this.opts.consent.preset;
      if (preset !== undefined) {
        return answer === 'deny'
          ? deny(policy, 'preset', `denied without asking (${preset})`, answer)
          : { allowed: true, policy, decidedBy: 'preset', answer: 'once', reason: `allowed without asking (${preset})` };
      }
      if (answer === 'deny') return deny(policy, 'user', 'the user denied it', answer);
      let grantId: string | undefined;
      if (answer === 'session' && proposedGrant) grantId = this.opts.grants.add(request.sessionId, proposedGrant, request.id).id;
      return { allowed: true, policy, decidedBy: 'user', answer, ...(grantId ? { grantId } : {}), reason: answer === 'session' ? 'the user allowed it for this session' : 'the user allowed it once' };
    } catch (e) {
      const reason = controller.signal.reason;
      if (reason instanceof ConsentTimeout) return deny(policy, 'timeout', `no answer within ${Math.round(this.opts.consentTimeoutMs / 1000)} s`);
      if (this.halted !== undefined) return deny(policy, 'kill-switch', this.halted);
      if (controller.signal.aborted) return deny(policy, 'user', (reason as Error).message);
      return deny(policy, 'error', `consent could not be obtained: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.pending.delete(controller);
    }
  }

  private record(request: CapabilityRequest, decision: FinalDecision, extra?: { readonly sandbox?: Readonly<Record<string, unknown>>; readonly detail?: Readonly<Record<string, unknown>>; readonly overlap?: boolean }) {
    return this.opts.audit.append({
      type: 'decision',
      session: request.sessionId,
      traceId: request.trace.traceId,
      spanId: request.trace.spanId,
      actor: this.opts.actor,
      request: extra?.sandbox ? { ...auditRequest(request), sandbox: extra.sandbox } : auditRequest(request),
      ...(extra?.detail ? { detail: extra.detail } : {}),
      decision: {
        effect: decision.policy.effect,
        allowed: decision.allowed,
        policyIds: decision.policy.policyIds,
        decidedBy: decision.decidedBy,
        reason: decision.reason,
        ...(decision.answer ? { answer: decision.answer } : {}),
        ...(decision.grantId ? { grantId: decision.grantId } : {}),
      },
    }, extra?.overlap ? { overlap: true } : undefined);
  }

  /**
   * Records a tunnel the sandbox's proxy granted a command (network-tap.ts),
   * before anything passes through it: a `network.connection` record with
   * `detail.phase` "opened", durable when the promise resolves (the tunnel
   * waits for it, and is cut if it rejects: also while Tether is stopped).
   * Its closing record, written when it ends, has the same `request.id`.
   */
  async recordTunnelOpened(command: CapabilityRequest, t: OpenedTunnel): Promise<void> {
    if (this.halted !== undefined) throw new Error(`no tunnel opens while Tether is stopped (${this.halted})`);
    const target = tcpTarget(t.host, t.port);
    const written = this.opts.audit.append({
      type: 'network.connection',
      session: command.sessionId,
      traceId: command.trace.traceId,
      spanId: command.trace.spanId,
      actor: this.opts.actor,
      request: { id: t.id, method: 'sandbox/connect', action: 'net', kind: 'net', url: target },
      decision: { effect: 'allow', allowed: true, policyIds: [], decidedBy: 'policy', reason: `the sandbox's network proxy opened a tunnel for the command to ${target}, a domain policy opened for it` },
      detail: { command: command.id, phase: 'opened', via: t.via, host: t.host, port: t.port, startedAt: new Date(t.startedAt).toISOString() },
    });
    await written.catch((e: unknown) => {
      throw new Error(`its opening could not be recorded (${(e as Error).message})`);
    });
    // Stopped while the record was written: the record stands, the tunnel does not open.
    if (this.halted !== undefined) throw new Error(`no tunnel opens while Tether is stopped (${this.halted})`);
  }

  /**
   * Records one network connection a sandboxed command made (network-tap.ts),
   * once it has ended: a `network.connection` record (`detail.phase`
   * "closed") tied to the command's request by `detail.command` and by its
   * trace, and to a tunnel's opening record by `request.id`. Nobody waits on
   * it but `settled()`; a record that cannot be written fails the log, which
   * then denies every further request.
   */
  recordConnection(command: CapabilityRequest, c: TappedConnection): void {
    const target = c.url ?? (c.host ? tcpTarget(c.host, c.port) : undefined);
    const where = target ?? 'a destination it did not get to name';
    const p = this.opts.audit.append({
      type: 'network.connection',
      session: command.sessionId,
      traceId: command.trace.traceId,
      spanId: command.trace.spanId,
      actor: this.opts.actor,
      request: { id: c.id, method: 'sandbox/connect', action: 'net', kind: 'net', ...(target ? { url: target } : {}) },
      decision: c.allowed
        ? { effect: 'allow', allowed: true, policyIds: [], decidedBy: 'policy', reason: `the sandbox's network proxy let the command reach ${where}, a domain policy opened for it` }
        : { effect: 'deny', allowed: false, policyIds: [], decidedBy: 'host', reason: c.reason?.startsWith('cut by Tether') ? `Tether did not let the command reach ${where}: ${c.reason}` : `the sandbox's network proxy refused ${where}: ${c.reason ?? 'no reason given'}` },
      outcome: {
        ok: c.allowed && c.reason === undefined,
        ...(c.allowed && c.reason !== undefined ? { error: c.reason } : {}),
        bytes: c.bytesOut,
        durationMs: c.durationMs,
      },
      detail: {
        command: command.id,
        phase: 'closed',
        via: c.via,
        host: c.host,
        port: c.port,
        ...(c.method !== undefined ? { method: c.method } : {}),
        ...(c.status !== undefined ? { status: c.status } : {}),
        bytesOut: c.bytesOut,
        bytesIn: c.bytesIn,
        startedAt: new Date(c.startedAt).toISOString(),
      },
    }, { deferred: true }).then(
      () => undefined,
      (e: unknown) => console.error(`tether: a network connection record could not be written: ${(e as Error).message}`),
    );
    this.outcomes.add(p);
    void p.finally(() => this.outcomes.delete(p));
  }

  /** Appends the outcome (once it is known, for an effect still becoming durable) without waiting for its fsync. */
  private recordOutcome(request: CapabilityRequest, settling: AuditOutcome | Promise<AuditOutcome>): void {
    let outcome: AuditOutcome;
    const p = Promise.resolve(settling).then((o) => this.appendOutcome(request, (outcome = o))).then(
      (seq) => this.didComplete.fire({ request, outcome, seq }),
      // The writer is now failed and denies every further decision (fail closed).
      (e: unknown) => console.error(`tether: an outcome record could not be written: ${(e as Error).message}`),
    );
    this.outcomes.add(p);
    void p.finally(() => this.outcomes.delete(p));
  }

  private async appendOutcome(request: CapabilityRequest, outcome: AuditOutcome): Promise<number> {
    const receipt = await this.opts.audit.append({
      type: 'outcome',
      session: request.sessionId,
      traceId: request.trace.traceId,
      spanId: request.trace.spanId,
      actor: this.opts.actor,
      request: { id: request.id, method: request.method, action: request.action, kind: request.kind },
      outcome,
    }, { deferred: true });
    return receipt.seq;
  }
}

class ConsentTimeout extends Error {}

function deny(policy: PolicyDecision, decidedBy: DecidedBy, reason: string, answer?: 'deny'): FinalDecision {
  return { allowed: false, policy, decidedBy, reason, ...(answer ? { answer } : {}) };
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function auditRequest(r: CapabilityRequest): AuditRequest {
  return {
    id: r.id,
    method: r.method,
    action: r.action,
    kind: r.kind,
    ...(r.target ? { path: r.target.path } : {}),
    ...(r.destination ? { destination: r.destination.path } : {}),
    ...(r.command ? { command: r.command.line, cwd: r.command.cwd } : {}),
    ...(r.url ? { url: r.url } : {}),
  };
}

/** A raw TCP destination as the audit log names it: tcp://host:port, an IPv6 host in brackets. */
function tcpTarget(host: string, port: number): string {
  return `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
