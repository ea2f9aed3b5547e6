// The consent port and session grants. The broker calls `ConsentPort.ask`
// only when policy says "ask" and no grant covers the request; how the answer
// is obtained (renderer dialog, TTY prompt, a fixed --on-ask answer) is the
// port's business. Timeouts and cancellation are the broker's.

import { randomUUID } from 'node:crypto';
import type { CapabilityRequest } from '../common/capability.ts';
import type { ConsentQuestion, GrantScope, SessionGrant } from '../common/consent.ts';
import type { ConsentAnswer } from '../common/decision.ts';
import { describeGrant, grantCovers } from '../common/grants.ts';

export interface ConsentPort {
  /** Resolves with the user's answer. Must settle (deny) when `signal` aborts. */
  ask(question: ConsentQuestion, signal: AbortSignal): Promise<ConsentAnswer>;
  /** Set when answers come from configuration, not a person (recorded as decidedBy 'preset'). */
  readonly preset?: string;
}

/** Non-interactive runs: every "ask" gets the same answer (`--on-ask`). Never 'session'. */
export class FixedConsent implements ConsentPort {
  private readonly answer: 'once' | 'deny';
  readonly preset: string;
  constructor(answer: 'once' | 'deny', preset = `--on-ask ${answer === 'once' ? 'allow' : 'deny'}`) {
    this.answer = answer;
    this.preset = preset;
  }
  ask(): Promise<ConsentAnswer> {
    return Promise.resolve(this.answer);
  }
}

export class GrantStore {
  private readonly grants = new Map<string, SessionGrant>();
  private readonly listeners = new Set<(grants: readonly SessionGrant[]) => void>();

  add(sessionId: string, scope: GrantScope, fromRequest: string): SessionGrant {
    const grant: SessionGrant = {
      id: randomUUID(),
      sessionId,
      scope,
      createdAt: new Date().toISOString(),
      fromRequest,
      description: describeGrant(scope),
    };
    this.grants.set(grant.id, grant);
    this.emit();
    return grant;
  }

  /** The grant covering this request in its session, if any. */
  find(req: CapabilityRequest): SessionGrant | undefined {
    for (const g of this.grants.values()) {
      if (g.sessionId === req.sessionId && grantCovers(g.scope, req)) return g;
    }
    return undefined;
  }

  list(sessionId?: string): SessionGrant[] {
    return [...this.grants.values()].filter((g) => sessionId === undefined || g.sessionId === sessionId);
  }

  revoke(id: string): boolean {
    const had = this.grants.delete(id);
    if (had) this.emit();
    return had;
  }

  revokeSession(sessionId: string): void {
    for (const g of this.list(sessionId)) this.grants.delete(g.id);
    this.emit();
  }

  onDidChange(listener: (grants: readonly SessionGrant[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    const all = this.list();
    for (const l of this.listeners) l(all);
  }
}
