// A real host for terminal tests: the broker with a JSONL audit log on disk,
// a policy engine, a scripted consent port (the one fake: it stands in for the
// person answering dialogs) and the real bubblewrap sandbox.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../../../src/common/audit-record.ts';
import type { ConsentQuestion } from '../../../src/common/consent.ts';
import type { ConsentAnswer } from '../../../src/common/decision.ts';
import { JsonlAuditWriter } from '../../../src/host/audit/jsonl-audit-writer.ts';
import { Broker } from '../../../src/host/broker.ts';
import { GrantStore, type ConsentPort } from '../../../src/host/consent.ts';
import type { PolicyEngine } from '../../../src/host/policy/policy-engine.ts';
import type { Sandbox } from '../../../src/host/sandbox/sandbox.ts';
import { TerminalService, type TerminalServiceOptions } from '../../../src/host/terminal/terminal-service.ts';
import type { Scratch } from '../sandbox/sandbox-fixture.ts';
import { RulePolicy } from './rule-policy.ts';

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

const SECRET = /\/(\.ssh|\.aws|\.gnupg|\.config\/gcloud|\.netrc)(\/|$)|\.env$/;

/** The default policy's rules that matter for commands, as a rule list. */
export function defaultLikePolicy(): RulePolicy {
  return new RulePolicy([
    { id: 'outside-workspace', effect: 'forbid', description: 'Files outside the workspace are off limits to the agent.', when: (r) => r.target !== undefined && !r.target.inWorkspace },
    { id: 'secret-credential-stores', effect: 'forbid', description: 'Credential stores are never available to the agent.', when: (r) => r.target !== undefined && SECRET.test(r.target.path) },
    { id: 'command-outside-workspace', effect: 'forbid', description: 'Commands run only with a working directory inside the workspace.', when: (r) => r.action === 'exec' && !(r.command!.cwd === r.workspace || r.command!.cwd.startsWith(`${r.workspace}/`)) },
    { id: 'no-privilege', effect: 'forbid', description: 'Commands cannot raise their privileges.', when: (r) => r.action === 'exec' && ['sudo', 'su', 'doas', 'pkexec'].includes(r.command?.program ?? '') },
    { id: 'net-registry', effect: 'allow', description: 'The test registry is open.', when: (r) => r.action === 'net' && (r.url ?? '').startsWith('https://127.0.0.1:') },
    { id: 'command', effect: 'ask', description: 'Running a command needs your consent.', when: (r) => r.action === 'exec' },
    { id: 'workspace-write', effect: 'ask', description: 'Creating or changing a file inside the workspace needs your consent.', when: (r) => (r.action === 'write' || r.action === 'delete') && r.target?.inWorkspace === true },
  ]);
}

export interface Host {
  readonly broker: Broker;
  readonly consent: ScriptedConsent;
  readonly audit: JsonlAuditWriter;
  readonly service: TerminalService;
  readonly grants: GrantStore;
  records(): AuditRecord[];
  close(): Promise<void>;
}

export async function makeHost(s: Scratch, sandbox: Sandbox, opts: { policy?: PolicyEngine; service?: Partial<TerminalServiceOptions> } = {}): Promise<Host> {
  const audit = await JsonlAuditWriter.open(join(s.base, 'audit'));
  const consent = new ScriptedConsent();
  const grants = new GrantStore();
  const policy = opts.policy ?? defaultLikePolicy();
  const broker = new Broker({ policy, consent, grants, audit, actor: { user: 'tester', device: 'ci', agent: 'red-team' }, consentTimeoutMs: 10_000 });
  const service = new TerminalService({
    broker,
    sandbox,
    workspace: s.workspace,
    policy,
    hostEnv: { ...process.env, HOME: s.home },
    ...opts.service,
  });
  return {
    broker, consent, audit, service, grants,
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
