// A real host for terminal tests: the broker with a JSONL audit log on disk,
// the Cedar engine with the built-in default policy (plus a user policy where
// a test needs one), a scripted consent port (the one fake: it stands in for
// the person answering dialogs) and the real bubblewrap sandbox.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../../../src/common/audit-record.ts';
import type { ConsentQuestion } from '../../../src/common/consent.ts';
import type { ConsentAnswer } from '../../../src/common/decision.ts';
import { JsonlAuditWriter } from '../../../src/host/audit/jsonl-audit-writer.ts';
import { Broker, type EffectHooks } from '../../../src/host/broker.ts';
import { GrantStore, type ConsentPort } from '../../../src/host/consent.ts';
import { CedarPolicyEngine } from '../../../src/host/policy/cedar-policy-engine.ts';
import type { Sandbox } from '../../../src/host/sandbox/sandbox.ts';
import { TerminalService, type TerminalServiceOptions } from '../../../src/host/terminal/terminal-service.ts';
import type { Scratch } from '../sandbox/sandbox-fixture.ts';

export class ScriptedConsent implements ConsentPort {
  readonly questions: ConsentQuestion[] = [];
  /** Answers in order; the last one repeats. */
  answers: ConsentAnswer[] = ['once'];
  ask(q: ConsentQuestion): Promise<ConsentAnswer> {
    this.questions.push(q);
    const a = this.answers.length > 1 ? this.answers.shift()! : this.answers[0]!;
    return Promise.resolve(a);
  }
  notes(i = this.questions.length - 1): string[] {
    const p = this.questions[i]?.preview;
    return p?.type === 'exec' ? [...p.notes] : [];
  }
}

export interface Host {
  readonly broker: Broker;
  readonly consent: ScriptedConsent;
  readonly audit: JsonlAuditWriter;
  readonly service: TerminalService;
  readonly grants: GrantStore;
  readonly policy: CedarPolicyEngine;
  records(): AuditRecord[];
  close(): Promise<void>;
}

let policyFiles = 0;

export async function makeHost(s: Scratch, sandbox: Sandbox, opts: { userPolicy?: string; service?: Partial<TerminalServiceOptions>; hooks?: EffectHooks } = {}): Promise<Host> {
  const audit = await JsonlAuditWriter.open(join(s.base, 'audit'));
  const consent = new ScriptedConsent();
  const grants = new GrantStore();
  const userFiles: string[] = [];
  if (opts.userPolicy) {
    const file = join(s.base, `user-${++policyFiles}.cedar`);
    writeFileSync(file, opts.userPolicy);
    userFiles.push(file);
  }
  const policy = await CedarPolicyEngine.load({ protectedPaths: [s.state, join(s.base, 'audit')], userFiles });
  const broker = new Broker({ policy, consent, grants, audit, actor: { user: 'tester', device: 'ci', agent: 'red-team' }, consentTimeoutMs: 10_000, ...(opts.hooks ? { hooks: opts.hooks } : {}) });
  const service = new TerminalService({
    broker,
    sandbox,
    workspace: s.workspace,
    policy,
    hostEnv: { ...process.env, HOME: s.home },
    ...opts.service,
  });
  return {
    broker, consent, audit, service, grants, policy,
    records: () => readFileSync(audit.path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord),
    close: async () => {
      await service.dispose();
      await audit.close();
    },
  };
}

/** create + waitForExit + output, the way the agent's run_command does it. */
export async function runCommand(h: Host, command: string, extra: Record<string, unknown> = {}): Promise<{ terminalId: string; exitCode: number | null; signal: string | null; output: string; truncated: boolean }> {
  const { terminalId } = await h.service.create({ sessionId: 's1', command, ...extra });
  const exit = await h.service.waitForExit({ sessionId: 's1', terminalId });
  const out = h.service.output({ sessionId: 's1', terminalId });
  h.service.release({ sessionId: 's1', terminalId });
  return { terminalId, ...exit, output: out.output, truncated: out.truncated };
}
