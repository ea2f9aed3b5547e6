// A small rule list implementing the PolicyEngine port for tests of the
// broker's compound decisions, where the point is how decisions combine, not
// which rule language produced them. Forbids win; otherwise the first
// matching permit decides (ask or allow); nothing matching denies.

import type { CapabilityRequest } from '../../../src/common/capability.ts';
import type { PolicyDecision } from '../../../src/common/decision.ts';
import type { PolicyEngine, PolicyRuleInfo } from '../../../src/host/policy/policy-engine.ts';

export interface Rule {
  readonly id: string;
  readonly effect: 'forbid' | 'allow' | 'ask';
  readonly description: string;
  readonly when: (r: CapabilityRequest) => boolean;
}

export class RulePolicy implements PolicyEngine {
  readonly rules: readonly Rule[];
  decisions = 0;
  constructor(rules: readonly Rule[]) {
    this.rules = rules;
  }
  decide(request: CapabilityRequest): PolicyDecision {
    this.decisions++;
    const forbid = this.rules.filter((r) => r.effect === 'forbid' && r.when(request));
    if (forbid.length > 0) return { effect: 'deny', policyIds: forbid.map((r) => r.id), reason: forbid[0]!.description };
    const permit = this.rules.find((r) => r.effect !== 'forbid' && r.when(request));
    if (!permit) return { effect: 'deny', policyIds: [], reason: 'no policy permits this' };
    return { effect: permit.effect === 'ask' ? 'ask' : 'allow', policyIds: [permit.id], reason: permit.description };
  }
  rule(id: string): PolicyRuleInfo | undefined {
    const r = this.rules.find((x) => x.id === id);
    return r ? { id: r.id, description: r.description, source: 'default' } : undefined;
  }
}
