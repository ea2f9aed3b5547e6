// The broker's ordering guarantees around an effect's groundwork (invariant 6)
// and its durability (invariant 5), with the real Cedar engine and a real
// hash-chained audit writer. The writer is wrapped in a gate the test opens,
// so "before the decision record is durable" is a state the test can hold.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/common/audit-record.ts';
import type { CapabilityRequest } from '../../src/common/capability.ts';
import { newTrace } from '../../src/common/trace.ts';
import type { AppendOptions, AuditReceipt, AuditWriter } from '../../src/host/audit/audit-writer.ts';
import { JsonlAuditWriter } from '../../src/host/audit/jsonl-audit-writer.ts';
import { Broker, RequestDenied, type EffectHooks, type ExecuteOptions } from '../../src/host/broker.ts';
import { FixedConsent, GrantStore, type ConsentPort } from '../../src/host/consent.ts';
import { CedarPolicyEngine } from '../../src/host/policy/cedar-policy-engine.ts';
import { WorkspaceJail } from '../../src/host/workspace-jail.ts';

/** A real writer whose decision records are held until `open()` (or fail with `fail()`). */
class GatedAudit implements AuditWriter {
  readonly entries: AuditEntry[] = [];
  private readonly inner: JsonlAuditWriter;
  private gate: { promise: Promise<void>; open: () => void; fail: (e: Error) => void };
  constructor(inner: JsonlAuditWriter) {
    this.inner = inner;
    this.gate = GatedAudit.newGate();
  }
  private static newGate() {
    let open!: () => void;
    let fail!: (e: Error) => void;
    const promise = new Promise<void>((resolve, reject) => {
      open = resolve;
      fail = reject;
    });
    promise.catch(() => {});
    return { promise, open, fail };
  }
  async append(entry: AuditEntry, opts?: AppendOptions): Promise<AuditReceipt> {
    if (entry.type === 'decision') await this.gate.promise;
    const receipt = await this.inner.append(entry, opts);
    this.entries.push(entry);
    return receipt;
  }
  open(): void {
    this.gate.open();
  }
  fail(e: Error): void {
    this.gate.fail(e);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe('Broker: groundwork overlaps the decision commit, nothing is released before it', () => {
  let ws: string;
  let auditDir: string;
  let audit: GatedAudit;
  let jail: WorkspaceJail;
  let broker: Broker;
  let policy: CedarPolicyEngine;
  const calls: string[] = [];
  const hooks: EffectHooks = {
    before: async (r) => {
      calls.push(`before ${r.action}`);
    },
  };

  beforeEach(async () => {
    ws = await mkdtemp(join(tmpdir(), 'tether-broker-ws-'));
    auditDir = await mkdtemp(join(tmpdir(), 'tether-broker-audit-'));
    await writeFile(join(ws, 'a.txt'), 'A');
    await writeFile(join(ws, '.env'), 'SECRET=1');
    jail = await WorkspaceJail.open(ws);
    policy = await CedarPolicyEngine.load();
    audit = new GatedAudit(await JsonlAuditWriter.open(auditDir));
    broker = new Broker({ policy, consent: new FixedConsent('deny'), grants: new GrantStore(), audit, actor: { user: 'u', device: 'd', agent: 'a' }, consentTimeoutMs: 1000, hooks });
    calls.length = 0;
  });

  afterEach(async () => {
    audit.open();
    await broker.settled();
    await audit.close();
    await jail.close();
    await Promise.all([ws, auditDir].map((d) => rm(d, { recursive: true, force: true })));
  });

  const read = async (p: string): Promise<CapabilityRequest> => ({
    id: `req-${p}`, sessionId: 's', action: 'read', kind: 'read', method: 'fs/read_text_file', workspace: jail.root, trace: newTrace(),
    target: await jail.resolve(p, { intent: 'read' }),
  });

  /** A read whose groundwork stages 'staged' (discarded into `discarded`) and whose effect notes 'effect' in `calls`. */
  const staged = (discarded: string[]): ExecuteOptions<string, string> => ({
    preview: async () => ({ kind: 'read', path: 'a.txt' }) as never,
    prepare: async () => 'staged',
    discard: async (p) => {
      discarded.push(p);
    },
    effect: async () => {
      calls.push('effect');
      return { result: 'x' };
    },
  });

  it('runs the hook and prepare while the decision is being committed, and the effect only after it is durable', async () => {
    const pending = broker.execute(await read('a.txt'), {
      preview: async () => ({ kind: 'read', path: 'a.txt' }) as never,
      prepare: async () => {
        calls.push('prepare');
        return readFile(join(ws, 'a.txt'), 'utf8');
      },
      effect: async (content) => {
        calls.push(`effect ${content}`);
        return { result: content };
      },
    });
    let settled = false;
    void pending.then(() => (settled = true));
    await tick();
    expect(calls).toEqual(['before read', 'prepare']);
    expect(settled).toBe(false);
    expect(audit.entries).toEqual([]);
    audit.open();
    expect(await pending).toBe('A');
    expect(calls).toEqual(['before read', 'prepare', 'effect A']);
    await broker.settled();
    expect(audit.entries.map((e) => e.type)).toEqual(['decision', 'outcome']);
  });

  it('discards what was prepared, and runs no effect, when the decision record cannot be written', async () => {
    const discarded: string[] = [];
    const pending = broker.execute(await read('a.txt'), staged(discarded));
    await tick();
    audit.fail(new Error('disk full'));
    await expect(pending).rejects.toThrow('disk full');
    await tick();
    expect(discarded).toEqual(['staged']);
    expect(calls).not.toContain('effect');
  });

  it('prepares nothing for a denied request', async () => {
    audit.open();
    const pending = broker.execute(await read('.env'), {
      preview: async () => ({ kind: 'read', path: '.env' }) as never,
      prepare: async () => {
        calls.push('prepare');
      },
      effect: async () => ({ result: undefined }),
    });
    await expect(pending).rejects.toBeInstanceOf(RequestDenied);
    expect(calls).toEqual([]);
  });

  it('records a failed groundwork as the failed outcome, after the decision', async () => {
    audit.open();
    const pending = broker.execute(await read('a.txt'), {
      preview: async () => ({ kind: 'read', path: 'a.txt' }) as never,
      prepare: async () => {
        throw new Error('the file vanished');
      },
      effect: async () => ({ result: undefined }),
    });
    await expect(pending).rejects.toThrow('the file vanished');
    await broker.settled();
    expect(audit.entries.map((e) => [e.type, e.outcome?.ok, e.outcome?.error])).toEqual([['decision', undefined, undefined], ['outcome', false, 'the file vanished']]);
  });

  it('appends the outcome only once the effect is durable, and records a durability failure as such', async () => {
    audit.open();
    let makeDurable!: () => void;
    const durable = new Promise<void>((r) => (makeDurable = r));
    const result = await broker.execute(await read('a.txt'), {
      preview: async () => ({ kind: 'read', path: 'a.txt' }) as never,
      effect: async () => ({ result: 'done', outcome: { bytes: 1 }, durable }),
    });
    expect(result).toBe('done');
    await tick();
    expect(audit.entries.map((e) => e.type)).toEqual(['decision']);
    makeDurable();
    await broker.settled();
    expect(audit.entries.map((e) => [e.type, e.outcome?.ok])).toEqual([['decision', undefined], ['outcome', true]]);

    await broker.execute(await read('a.txt'), {
      preview: async () => ({ kind: 'read', path: 'a.txt' }) as never,
      effect: async () => ({ result: 'done', durable: Promise.reject(new Error('EIO')) }),
    });
    await broker.settled();
    expect(audit.entries.at(-1)!.outcome).toMatchObject({ ok: false, error: 'the change was made but may not survive a crash: EIO' });
  });

  it('starts no effect when stopped after the decision but before the effect, and records why', async () => {
    const discarded: string[] = [];
    const pending = broker.execute(await read('a.txt'), staged(discarded));
    await tick();
    broker.halt('stopped by the user');
    audit.open();
    await expect(pending).rejects.toMatchObject({ data: { decidedBy: 'kill-switch', reason: 'stopped by the user (before the effect started)' } });
    await broker.settled();
    expect(calls).not.toContain('effect');
    expect(discarded).toEqual(['staged']);
    expect(audit.entries.map((e) => [e.type, e.decision?.allowed, e.outcome?.ok])).toEqual([['decision', true, undefined], ['outcome', undefined, false]]);
  });
});

describe('Broker: a sandboxed command\'s tunnel', () => {
  it('is on record as it opens, and its closing names the same connection; a stopped broker or a failed log opens none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-broker-tunnel-'));
    const audit = new GatedAudit(await JsonlAuditWriter.open(dir));
    const broker = new Broker({ policy: await CedarPolicyEngine.load(), consent: new FixedConsent('deny'), grants: new GrantStore(), audit, actor: { user: 'u', device: 'd', agent: 'a' }, consentTimeoutMs: 1000 });
    const command: CapabilityRequest = { id: 'cmd-1', sessionId: 's', action: 'exec', kind: 'exec', method: 'terminal/create', workspace: dir, trace: newTrace(), command: { line: 'curl -p http://registry.test/', cwd: dir } };
    const tunnel = { id: 'conn-1', via: 'connect' as const, host: 'registry.test', port: 443, startedAt: Date.parse('2026-11-21T10:00:00Z') };
    try {
      await broker.recordTunnelOpened(command, tunnel);
      broker.recordConnection(command, { ...tunnel, allowed: true, status: 200, bytesOut: 120, bytesIn: 4000, durationMs: 12 });
      await broker.settled();
      expect(audit.entries.map((e) => [e.type, e.request?.id, e.request?.url, e.detail?.['phase'], e.detail?.['command'], e.outcome?.bytes])).toEqual([
        ['network.connection', 'conn-1', 'tcp://registry.test:443', 'opened', 'cmd-1', undefined],
        ['network.connection', 'conn-1', 'tcp://registry.test:443', 'closed', 'cmd-1', 120],
      ]);
      broker.halt('stopped by IT');
      await expect(broker.recordTunnelOpened(command, { ...tunnel, id: 'conn-2' })).rejects.toThrow('no tunnel opens while Tether is stopped (stopped by IT)');
      broker.resume();
      await audit.close();
      await expect(broker.recordTunnelOpened(command, { ...tunnel, id: 'conn-3' })).rejects.toThrow(/^its opening could not be recorded \(.+\)$/);
      expect(audit.entries).toHaveLength(2);
    } finally {
      await audit.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Broker: consent answers', () => {
  let ws: string;
  let auditDir: string;
  let jail: WorkspaceJail;
  let writer: JsonlAuditWriter;
  beforeEach(async () => {
    ws = await mkdtemp(join(tmpdir(), 'tether-broker-ws-'));
    auditDir = await mkdtemp(join(tmpdir(), 'tether-broker-audit-'));
    jail = await WorkspaceJail.open(ws);
    writer = await JsonlAuditWriter.open(auditDir);
  });
  afterEach(async () => {
    await writer.close();
    await jail.close();
    await Promise.all([ws, auditDir].map((d) => rm(d, { recursive: true, force: true })));
  });
  const brokerWith = async (consent: ConsentPort) => new Broker({ policy: await CedarPolicyEngine.load(), consent, grants: new GrantStore(), audit: writer, actor: { user: 'u', device: 'd', agent: 'a' }, consentTimeoutMs: 1000 });
  const write = async (p: string): Promise<CapabilityRequest> => ({
    id: `req-${p}`, sessionId: 's', action: 'write', kind: 'write', method: 'fs/write_text_file', workspace: jail.root, trace: newTrace(),
    target: await jail.resolve(p, { intent: 'write' }),
  });

  it('denies on an answer it does not know, whatever the consent port returned', async () => {
    const broker = await brokerWith({ ask: async () => 'yes please' as never });
    let ran = false;
    const pending = broker.execute(await write('b.txt'), {
      preview: async () => ({ kind: 'write', path: 'b.txt' }) as never,
      effect: async () => {
        ran = true;
        return { result: undefined };
      },
    });
    await expect(pending).rejects.toMatchObject({ data: { decidedBy: 'error', reason: 'the consent answer "yes please" is not one Tether knows; denied' } });
    expect(ran).toBe(false);
  });

  it('does not let a preset answer (--on-ask allow) stand in for a person where one must be asked', async () => {
    const broker = await brokerWith(new FixedConsent('once'));
    const request = await write('c.txt');
    const pending = broker.executeCompound({ ...request, action: 'exec', kind: 'exec', method: 'terminal/create', target: undefined, command: { line: 'cd "$(x)" && make', cwd: jail.root } }, {
      parts: [{ request, label: 'write c.txt' }],
      mustAsk: ['the command line cannot be fully analysed: a command substitution'],
      preview: async () => ({ kind: 'exec' }) as never,
      effect: async () => ({ result: undefined, outcome: Promise.resolve({}) }),
    });
    await expect(pending).rejects.toMatchObject({ data: { decidedBy: 'preset', reason: expect.stringMatching(/cannot be fully analysed.*needs a person to answer, and there is none \(--on-ask allow\)/) } });
  });
});

