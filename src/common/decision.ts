// Decisions: what policy said, and what finally happened after consent.

export type PolicyEffect = 'allow' | 'ask' | 'deny';

export interface PolicyDecision {
  readonly effect: PolicyEffect;
  /** Ids of the determining policies (empty when nothing matched: default deny). */
  readonly policyIds: readonly string[];
  /** Human-readable reason: the rule's description, or why nothing matched. */
  readonly reason: string;
  /** Evaluation errors reported by the engine; any error makes the decision deny. */
  readonly errors?: readonly string[];
}

/** Who settled the request. */
// 'host': a host check refused before policy (path jail, limits); 'error': the decision
// machinery itself failed (policy engine, consent UI) and the request was denied.
// 'preset': a non-interactive run's fixed answer (`--on-ask`), not a person.
export type DecidedBy = 'policy' | 'user' | 'preset' | 'grant' | 'timeout' | 'kill-switch' | 'host' | 'error';

export type ConsentAnswer = 'once' | 'session' | 'deny';

export interface FinalDecision {
  readonly allowed: boolean;
  readonly policy: PolicyDecision;
  readonly decidedBy: DecidedBy;
  /** Set when a session grant covered an "ask", or the user created one. */
  readonly grantId?: string;
  /** The user's answer when decidedBy is 'user'. */
  readonly answer?: ConsentAnswer;
  readonly reason: string;
}

/** The error code and data the agent gets back when a request is denied. */
export const DENIED_ERROR_CODE = -32001;
export interface DeniedErrorData {
  readonly decidedBy: DecidedBy;
  readonly policyIds: readonly string[];
  readonly reason: string;
}
