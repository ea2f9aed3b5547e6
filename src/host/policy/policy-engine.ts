// The policy port the broker calls. The Cedar implementation lives beside it
// (cedar-policy-engine.ts). Decisions are synchronous and must be fast: they
// sit on the path of every request.

import type { CapabilityRequest } from '../../common/capability.ts';
import type { PolicyDecision } from '../../common/decision.ts';

export interface PolicyRuleInfo {
  readonly id: string;
  readonly description: string;
  /** managed | user | default */
  readonly source: PolicySourceKind;
  /** Where the policy is written, for `policy explain` and dialogs that link to it. */
  readonly file?: string;
  readonly line?: number;
  readonly effect?: 'permit' | 'forbid';
  /** A permit annotated `@ask`: it asks the user instead of allowing. */
  readonly ask?: boolean;
}

export type PolicySourceKind = 'managed' | 'user' | 'default';

export interface PolicyEngine {
  /** Never throws: an engine failure is a deny with `errors` set. */
  decide(request: CapabilityRequest): PolicyDecision;
  /** Description and source of a policy by id, for consent dialogs and `policy explain`. */
  rule(id: string): PolicyRuleInfo | undefined;
}

/** A policy file that does not parse or validate. Tether refuses to run with it. */
export class PolicyLoadError extends Error {
  override readonly name = 'PolicyLoadError';
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(message: string, file: string, line?: number, column?: number) {
    super(message);
    this.file = file;
    this.line = line;
    this.column = column;
  }
}
