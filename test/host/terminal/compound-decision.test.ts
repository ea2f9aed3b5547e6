// Broker.executeCompound: several policy decisions, one consent question,
// one decision record — with a real audit writer on disk.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/common/audit-record.ts';
import type { CapabilityRequest } from '../../../src/common/capability.ts';
import type { ConsentQuestion } from '../../../src/common/consent.ts';
import type { ConsentAnswer } from '../../../src/common/decision.ts';
import { newTrace } from '../../../src/common/trace.ts';
import { JsonlAuditWriter } from '../../../src/host/audit/jsonl-audit-writer.ts';
import { Broker, RequestDenied, type CompoundPart } from '../../../src/host/broker.ts';
import { GrantStore, type ConsentPort } from '../../../src/host/consent.ts';
import { RulePolicy } from './rule-policy.ts';

const policy = new RulePolicy([
  { id: 'no-rm-root', effect: 'forbid', description: 'never rm /', when: (r) => r.command?.program === 'rm' && (r.command.args ?? []).includes('/') },
  { id: 'outside', effect: 'forbid', description: 'outside the workspace', when: (r) => r.target !== undefined && !r.target.inWorkspace },
  { id: 'read-only-tools', effect: 'allow', description: 'reading tools are allowed', when: (r) => ['ls', 'cat', 'echo'].includes(r.command?.program ?? '') },
  { id: 'command', effect: 'ask', description: 'commands ask', when: (r) => r.action === 'exec' },
  { id: 'write', effect: 'ask', description: 'writes ask', when: (r) => r.action === 'write' && r.target?.inWorkspace === true },
]);

class ScriptedConsent implements ConsentPort {
  readonly questions: ConsentQuestion[] = [];
  answer: ConsentAnswer = 'once';
  ask(q: ConsentQuestion): Promise<ConsentAnswer> {
    this.questions.push(q);
    return Promise.resolve(this.answer);
  }
}

let dir: string;
let audit: JsonlAuditWriter;
let consent: ScriptedConsent;
let broker: Broker;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tether-compound-'));
  audit = await JsonlAuditWriter.open(dir);
  consent = new ScriptedConsent();
  broker = new Broker({ policy, consent, grants: new GrantStore(), audit, actor: { user: 'u', device: 'd', agent: 'a' }, consentTimeoutMs: 5000 });
});

afterEach(async () => {
  await audit.close();
  rmSync(dir, { recursive: true, force: true });
});

const records = (): AuditRecord[] => readFileSync(audit.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);

const top = (line: string): CapabilityRequest => ({
  id: `req-${line}`, sessionId: 's1', action: 'exec', kind: 'exec', method: 'terminal/create', workspace: '/ws', command: { line, cwd: '/ws' }, trace: newTrace(),
});
const exec = (program: string, ...args: string[]): CompoundPart => ({
  label: `\`${[program, ...args].join(' ')}\``,
  request: { ...top(program), id: `p-${program}-${args.join('-')}`, command: { line: [program, ...args].join(' '), cwd: '/ws', program, args } },
});
const write = (path: string, inWorkspace = true): CompoundPart => ({
  label: `write ${path}`,
  request: { ...top('w'), id: `w-${path}`, action: 'write', kind: 'write', command: undefined, target: { path, inWorkspace, exists: false, ...(inWorkspace ? { relPath: path.slice(4) } : {}) } },
});

function run(line: string, parts: CompoundPart[], extra: { mustAsk?: string[]; noSessionGrant?: boolean } = {}) {
  let ran = 0;
  let finish: (o: { exitCode: number }) => void = () => {};
  const promise = broker.executeCompound(top(line), {
    parts,
    ...extra,
    auditSandbox: { kind: 'test' },
    preview: async (decided) => ({ type: 'exec', command: line, cwd: '/ws', sandbox: 'unsandboxed', notes: decided.map((d) => `${d.part.label}: ${d.decision.effect}`) }),
    effect: async () => {
      ran++;
      return { result: 'started', outcome: new Promise((resolve) => (finish = resolve)) };
    },
  });
  return { promise, ran: () => ran, finish: (code = 0) => finish({ exitCode: code }) };
}

describe('Broker.executeCompound', () => {
  it('denies the whole line when any part is denied, without asking or running, naming the denying policy and recording every part', async () => {
    const r = run('ls && rm -rf / > out', [exec('ls'), exec('rm', '-rf', '/'), write('/ws/out')]);
    await expect(r.promise).rejects.toBeInstanceOf(RequestDenied);
    await expect(r.promise).rejects.toThrow(/never rm \//);
    expect(r.ran()).toBe(0);
    expect(consent.questions).toHaveLength(0);
    const [rec] = records();
    expect(rec!.type).toBe('decision');
    expect(rec!.decision).toMatchObject({ effect: 'deny', allowed: false, decidedBy: 'policy' });
    expect(rec!.decision!.policyIds).toEqual(['no-rm-root']);
    expect(rec!.request!.sandbox).toEqual({ kind: 'test' });
    expect((rec!.detail as { parts: { policyIds: string[] }[] }).parts.map((p) => p.policyIds)).toEqual([['read-only-tools'], ['no-rm-root'], ['write']]);
  });

  it('runs without asking when policy allows every part', async () => {
    const r = run('ls | cat', [exec('ls'), exec('cat')]);
    const done = await r.promise;
    expect(done.decision).toMatchObject({ allowed: true, decidedBy: 'policy' });
    expect(consent.questions).toHaveLength(0);
    r.finish(0);
    const { outcome, seq } = await done.completed;
    expect(outcome).toMatchObject({ ok: true, exitCode: 0 });
    expect(seq).toBe(1);
    expect(records().map((x) => x.type)).toEqual(['decision', 'outcome']);
  });

  it('asks one question for several parts that ask, naming each, and offers no session grant', async () => {
    const r = run('make && make test > log', [exec('make'), exec('make', 'test'), write('/ws/log')]);
    const done = await r.promise;
    expect(consent.questions).toHaveLength(1);
    const q = consent.questions[0]!;
    expect(q.request.command?.line).toBe('make && make test > log');
    expect(q.decision.effect).toBe('ask');
    expect(q.decision.policyIds).toEqual(['command', 'write']);
    expect(q.proposedGrant).toBeUndefined();
    expect(q.preview.type === 'exec' && q.preview.notes).toEqual(['`make`: ask', '`make test`: ask', 'write /ws/log: ask']);
    expect(done.decision).toMatchObject({ allowed: true, decidedBy: 'user', answer: 'once' });
    expect(r.ran()).toBe(1);
  });

  it('grants exactly the one asked part for the session, never a prefix that also covers rm', async () => {
    consent.answer = 'session';
    const first = run('ls && npm test', [exec('ls'), exec('npm', 'test')]);
    const d1 = await first.promise;
    expect(consent.questions[0]!.proposedGrant).toEqual({ actions: ['exec'], command: { program: 'npm', args: ['test'] } });
    expect(d1.decision.grantId).toBeDefined();

    const again = await run('npm test', [exec('npm', 'test')]).promise;
    expect(again.decision).toMatchObject({ allowed: true, decidedBy: 'grant', grantId: d1.decision.grantId });
    expect(consent.questions).toHaveLength(1);

    consent.answer = 'deny';
    for (const parts of [[exec('npm', 'test', '--', '--update')], [exec('rm', 'test')], [exec('npm', 'test'), exec('rm', '-rf', 'src')]]) {
      await expect(run('x', parts).promise).rejects.toThrow(/denied by the user/);
    }
    expect(consent.questions).toHaveLength(4);
  });

  it('asks when a mustAsk reason is given even if policy allows everything, and offers no grant', async () => {
    const r = run('ls $X', [exec('ls')], { mustAsk: ['the command line cannot be fully analysed: x'] });
    await r.promise;
    expect(consent.questions).toHaveLength(1);
    expect(consent.questions[0]!.proposedGrant).toBeUndefined();
    expect(consent.questions[0]!.decision.reason).toMatch(/cannot be fully analysed/);
    expect((records()[0]!.detail as { mustAsk: string[] }).mustAsk).toEqual(['the command line cannot be fully analysed: x']);
  });

  it('asks again despite a covering grant when a mustAsk reason is given', async () => {
    consent.answer = 'session';
    await run('npm test', [exec('npm', 'test')]).promise;
    consent.answer = 'once';
    await run('npm test', [exec('npm', 'test')], { mustAsk: ['it runs WITHOUT the sandbox'] }).promise;
    expect(consent.questions).toHaveLength(2);
  });

  it('records a failed outcome when the effect\'s outcome rejects', async () => {
    let fail: (e: Error) => void = () => {};
    const done = await broker.executeCompound(top('ls'), {
      parts: [exec('ls')],
      preview: async () => ({ type: 'exec', command: 'ls', cwd: '/ws', sandbox: 'unsandboxed', notes: [] }),
      effect: async () => ({ result: 1, outcome: new Promise((_, reject) => (fail = reject)) }),
    });
    fail(new Error('the sandbox died'));
    const { outcome } = await done.completed;
    expect(outcome).toMatchObject({ ok: false, error: 'the sandbox died' });
    expect(records()[1]!.outcome).toMatchObject({ ok: false, error: 'the sandbox died' });
  });

  it('denies everything while halted, and when the policy engine throws', async () => {
    broker.halt('stopped by the user');
    await expect(run('ls', [exec('ls')]).promise).rejects.toThrow(/the agent was stopped/);
    broker.resume();
    const throwing = new Broker({
      policy: { decide: () => { throw new Error('boom'); }, rule: () => undefined },
      consent, grants: new GrantStore(), audit, actor: { user: 'u', device: 'd', agent: 'a' }, consentTimeoutMs: 1000,
    });
    await expect(throwing.executeCompound(top('ls'), { parts: [exec('ls')], preview: async () => ({ type: 'exec', command: 'ls', cwd: '/ws', sandbox: 'unsandboxed', notes: [] }), effect: async () => ({ result: 1, outcome: Promise.resolve({}) }) }))
      .rejects.toThrow(/the policy engine failed on `ls`: boom/);
    expect(records().map((x) => x.decision?.decidedBy)).toEqual(['kill-switch', 'error']);
  });

  it('leaves Broker.execute as it is: one request, one decision, no parts detail', async () => {
    const req = exec('make').request;
    const result = await broker.execute(req, {
      preview: async () => ({ type: 'exec', command: 'make', cwd: '/ws', sandbox: 'unsandboxed', notes: [] }),
      effect: async () => ({ result: 42, outcome: { exitCode: 0 } }),
    });
    expect(result).toBe(42);
    await broker.settled();
    expect(consent.questions[0]!.proposedGrant).toEqual({ actions: ['exec'], command: { program: 'make', args: [] } });
    expect(records().map((x) => x.type)).toEqual(['decision', 'outcome']);
    expect(records()[0]!.detail).toBeUndefined();
  });
});
