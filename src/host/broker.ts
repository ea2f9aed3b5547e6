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
//     is denied until `resume()`.
//  5. The outcome record is appended before the result goes back, but the
//     reply does not wait for its fsync: it is a deferred append that rides
//     the next group commit (the next decision's, or a few ms later on its
//     own; `settled()` and the writer's close wait for it). A crash in that
//     window can lose an outcome, never a decision.

import type { AuditActor, AuditOutcome, AuditRequest } from '../common/audit-record.ts';
import type { CapabilityRequest } from '../common/capability.ts';
import type { ConsentPreview, ConsentQuestion } from '../common/consent.ts';
import { DENIED_ERROR_CODE, type DecidedBy, type DeniedErrorData, type FinalDecision, type PolicyDecision } from '../common/decision.ts';
import { Emitter } from '../common/emitter.ts';
import { proposeGrant } from '../common/grants.ts';
import type { AuditWriter } from './audit/audit-writer.ts';
import type { ConsentPort, GrantStore } from './consent.ts';
import type { PolicyEngine } from './policy/policy-engine.ts';

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

export interface EffectResult<T> {
  readonly result: T;
  readonly outcome?: Omit<AuditOutcome, 'ok'>;
}

export interface ExecuteOptions<T> {
  /** Built only when consent is needed. */
  readonly preview: () => Promise<ConsentPreview>;
  readonly effect: () => Promise<EffectResult<T>>;
  /** Aborts a pending consent question (agent cancelled the request). */
  readonly signal?: AbortSignal;
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

export interface BrokerOptions {
  readonly policy: PolicyEngine;
  readonly consent: ConsentPort;
  readonly grants: GrantStore;
  readonly audit: AuditWriter;
  readonly actor: AuditActor;
  /** How long a consent question waits before it is denied. */
  readonly consentTimeoutMs: number;
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

  async execute<T>(request: CapabilityRequest, options: ExecuteOptions<T>): Promise<T> {
    const decision = await this.decide(request, options);
    const receipt = await this.record(request, decision);
    this.didDecide.fire({ request, decision, seq: receipt.seq });
    if (!decision.allowed) {
      throw new RequestDenied({ decidedBy: decision.decidedBy, policyIds: decision.policy.policyIds, reason: decision.reason });
    }
    const started = performance.now();
    let outcome: AuditOutcome;
    let result: T;
    try {
      const done = await options.effect();
      result = done.result;
      outcome = { ...done.outcome, ok: true, durationMs: round(performance.now() - started) };
    } catch (e) {
      outcome = { ok: false, error: (e as Error).message, durationMs: round(performance.now() - started) };
      this.recordOutcome(request, outcome);
      throw e;
    }
    this.recordOutcome(request, outcome);
    return result;
  }

  /** Resolves when every outcome record appended so far is durable. */
  async settled(): Promise<void> {
    while (this.outcomes.size > 0) await Promise.allSettled([...this.outcomes]);
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

  private async decide<T>(request: CapabilityRequest, options: ExecuteOptions<T>): Promise<FinalDecision> {
    if (this.halted !== undefined) {
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

  private async askUser<T>(request: CapabilityRequest, policy: PolicyDecision, options: ExecuteOptions<T>): Promise<FinalDecision> {
    const controller = new AbortController();
    this.pending.add(controller);
    const onAbort = () => controller.abort(new Error('the agent cancelled the request'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new ConsentTimeout()), this.opts.consentTimeoutMs);
    try {
      const preview = await options.preview();
      const proposedGrant = proposeGrant(request);
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
      options.signal?.removeEventListener('abort', onAbort);
      this.pending.delete(controller);
    }
  }

  private record(request: CapabilityRequest, decision: FinalDecision) {
    return this.opts.audit.append({
      type: 'decision',
      session: request.sessionId,
      traceId: request.trace.traceId,
      spanId: request.trace.spanId,
      actor: this.opts.actor,
      request: auditRequest(request),
      decision: {
        effect: decision.policy.effect,
        allowed: decision.allowed,
        policyIds: decision.policy.policyIds,
        decidedBy: decision.decidedBy,
        reason: decision.reason,
        ...(decision.answer ? { answer: decision.answer } : {}),
        ...(decision.grantId ? { grantId: decision.grantId } : {}),
      },
    });
  }

  private recordOutcome(request: CapabilityRequest, outcome: AuditOutcome): void {
    const p = this.appendOutcome(request, outcome).then(
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
