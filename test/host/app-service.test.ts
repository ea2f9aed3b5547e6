// The host side of the renderer contract against a real host: Cedar default
// policy, JSONL audit log, egress gateway, a forked agent process and the
// scripted model. No browser here; test/renderer/flows.test.ts adds that.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { CapabilityRequest } from '../../src/common/capability.ts';
import type { ActivityEntry, CheckpointView, ConsentQuestionView, EventName } from '../../src/common/ipc-contract.ts';
import { newTrace } from '../../src/common/trace.ts';
import { ForkAgentStarter, type AgentProcess, type AgentStartOptions } from '../../src/host/agent-starter.ts';
import { startAppHost, type AppHost, type AppHostOptions } from '../../src/host/app-host.ts';
import { RestartBackoff } from '../../src/host/app-service.ts';
import { SignedAuditView } from '../../src/host/audit-view.ts';
import { verifyAuditDir } from '../../src/host/audit/audit-verifier.ts';
import { verifyAuditDirOffThread } from '../../src/host/audit/audit-verify-thread.ts';
import { readAuditRecords } from '../../src/host/audit/read-records.ts';
import { SignedAuditLog } from '../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../src/host/keychain/static-key-store.ts';
import { toolHistory, type ModelScript } from '../../src/host/scripted-model.ts';

let tmp: string;
let workspace: string;
const hosts: AppHost[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tether-appsvc-'));
  workspace = join(tmp, 'ws');
  await mkdir(workspace);
  await writeFile(join(workspace, 'README.md'), '# hi\n');
});
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** Writes one file per turn step, forever (tests stop it). */
const writer: ModelScript = (conv) => ({ toolCalls: [{ name: 'write_file', input: { path: `out-${toolHistory(conv).length}.txt`, content: 'x\n' } }] });

const testKeys = new StaticKeyStore(NoteSigningKey.generate('tether-test'), 'a key made for this test');

class KillableStarter extends ForkAgentStarter {
  readonly started: AgentProcess[] = [];
  override async start(opts?: AgentStartOptions): Promise<AgentProcess> {
    const p = await super.start(opts);
    this.started.push(p);
    return p;
  }
}

async function host(over: Partial<AppHostOptions> = {}, dataDir?: string) {
  const starter = new KillableStarter();
  const h = await startAppHost({
    dataDir: dataDir ?? (await mkdtemp(join(tmp, 'data-'))),
    starter: () => starter,
    chooseFolder: async () => workspace,
    demoScript: writer,
    consentTimeoutMs: 30_000,
    restart: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 2, windowMs: 60_000 },
    // The OS keychain has its own tests against a real gnome-keyring (test/host/keychain).
    keyStore: testKeys,
    ...over,
  });
  hosts.push(h);
  const events: { name: EventName; payload: unknown }[] = [];
  h.service.onDidEmit((e) => events.push(e));
  const next = (name: EventName, pred: (p: never) => boolean = () => true) =>
    vi.waitFor(() => {
      const e = events.find((x) => x.name === name && pred(x.payload as never));
      if (!e) throw new Error(`no ${name} yet`);
      return e.payload as never;
    }, { timeout: 15_000, interval: 20 });
  return { h, s: h.service, events, next, starter };
}

async function ready(s: AppHost['service']) {
  await s.chooseWorkspace();
  const d = await s.getDisclosure({});
  await s.acknowledgeDisclosure({ fingerprint: d.fingerprint });
}

describe('AppService with a real host', () => {
  it('refuses to start a session before the disclosure is acknowledged, for an unchosen folder, or an unconfigured provider', async () => {
    const { s } = await host({ getApiKey: undefined });
    await s.chooseWorkspace();
    await expect(s.startSession({ workspace, task: 't', provider: 'scripted' })).rejects.toThrow(/acknowledge what the agent can access/);
    const d = await s.getDisclosure({});
    await s.acknowledgeDisclosure({ fingerprint: d.fingerprint });
    await expect(s.startSession({ workspace: tmp, task: 't', provider: 'scripted' })).rejects.toThrow(/was not chosen as a workspace/);
    const saved = process.env['OPENAI_API_KEY'];
    delete process.env['OPENAI_API_KEY'];
    try {
      await expect(s.startSession({ workspace, task: 't', provider: 'openai' })).rejects.toThrow(/not configured/);
    } finally {
      if (saved !== undefined) process.env['OPENAI_API_KEY'] = saved;
    }
  });

  it('describes access from the policy in force and audits the acknowledgement once per policy', async () => {
    const dataDir = await mkdtemp(join(tmp, 'data-'));
    const { s, h } = await host({}, dataDir);
    const d = await s.getDisclosure({ workspace });
    const byCap = Object.fromEntries(d.items.map((i) => [i.capability, i]));
    expect(byCap['Read files in the workspace']).toMatchObject({ effect: 'allow', rules: [{ id: 'workspace-read' }] });
    expect(byCap['Create or change files in the workspace']).toMatchObject({ effect: 'ask', rules: [{ id: 'workspace-write' }] });
    expect(byCap['Run commands in the workspace']).toMatchObject({ effect: 'ask', rules: [{ id: 'command' }] });
    expect(byCap['Read secrets in the workspace (.env)']).toMatchObject({ effect: 'deny', rules: [{ id: 'secret-env-files' }] });
    expect(byCap['Read your SSH keys']!.effect).toBe('deny');
    expect(d.acknowledged).toBe(false);
    await expect(s.acknowledgeDisclosure({ fingerprint: 'stale' })).rejects.toThrow(/policy changed/);
    const { seq } = await s.acknowledgeDisclosure({ fingerprint: d.fingerprint });
    const line = (await readAuditRecords(h.auditDir)).find((r) => r.seq === seq);
    expect(line).toMatchObject({ type: 'consent.disclosure', detail: { fingerprint: d.fingerprint } });
    await h.close();
    hosts.splice(hosts.indexOf(h), 1);
    const again = await host({}, dataDir);
    expect((await again.s.getDisclosure({})).acknowledged).toBe(true);
  });

  it('asks through events, takes the answer, and records the decision in the timeline and the audit log', async () => {
    const { s, next } = await host();
    await ready(s);
    await s.startSession({ workspace, task: 'write', provider: 'scripted' });
    const q = await next('consentAsked');
    expect(q).toMatchObject({ request: { action: 'write', relPath: 'out-0.txt' }, rules: [{ id: 'workspace-write' }], preview: { type: 'write', created: true } });
    expect((q as { deadline: number }).deadline).toBeGreaterThan(Date.now());
    expect(await s.answerConsent({ id: (q as { id: string }).id, answer: 'once' })).toEqual({ accepted: true });
    const entry = await next('activity', (e: { request: { relPath?: string }; decision: { decidedBy: string } }) => e.request.relPath === 'out-0.txt' && e.decision.decidedBy === 'user');
    expect(entry).toMatchObject({ decision: { allowed: true, answer: 'once', policyIds: ['workspace-write'], rules: [{ id: 'workspace-write' }] } });
    await vi.waitFor(async () => expect(await readFile(join(workspace, 'out-0.txt'), 'utf8')).toBe('x\n'));
    const audit = await s.readAudit({});
    expect(audit.verification).toMatchObject({ ok: true });
    expect(audit.records.some((r) => r.type === 'decision' && r.request?.path?.endsWith('out-0.txt') && r.decision?.answer === 'once')).toBe(true);
  });

  it('stop denies every pending question at once, keeps the session, and a new task resumes it', async () => {
    const { s, next, events } = await host();
    await ready(s);
    await s.startSession({ workspace, task: 'write', provider: 'scripted' });
    const q = (await next('consentAsked')) as { id: string };
    const r = await s.stopSession();
    expect(r).toEqual({ stopped: true, deniedQuestions: 1 });
    // The settlement was emitted before stopSession returned.
    expect(events.find((e) => e.name === 'consentSettled')?.payload).toMatchObject({ id: q.id, answer: 'deny', by: 'stopped' });
    expect((await s.answerConsent({ id: q.id, answer: 'once' })).accepted).toBe(false);
    await next('activity', (e: { decision: { decidedBy: string } }) => e.decision.decidedBy === 'kill-switch');
    await next('sessionStatus', (st: { state: string }) => st.state === 'stopped');
    expect((await s.getSnapshot()).session.state).toBe('stopped');
    expect(await s.sendPrompt({ task: 'again' })).toEqual({ accepted: true });
    await next('sessionStatus', (st: { state: string }) => st.state === 'running');
    const second = await next('consentAsked', (x: { id: string }) => x.id !== q.id);
    expect(second).toBeDefined();
  });

  it('restarts a crashed agent with backoff in a fresh session, then gives up and says so', async () => {
    const { s, next, starter, events } = await host();
    await ready(s);
    const first = await s.startSession({ workspace, task: 'write', provider: 'scripted' });
    await next('consentAsked');
    starter.started[0]!.kill();
    const crash = await next('agentCrashed');
    expect(crash).toMatchObject({ attempt: 1, restartInMs: 50, signal: 'SIGKILL' });
    // The pending question is denied (the connection to the dead agent aborts it), never left open.
    expect(await next('consentSettled')).toMatchObject({ answer: 'deny', by: expect.not.stringMatching(/^user$/) });
    const restarted = await next('sessionStatus', (st: { state: string; sessionId?: string }) => st.state === 'idle' && st.sessionId !== undefined && st.sessionId !== first.sessionId);
    expect((restarted as { detail?: string }).detail ?? '').toMatch(/restarted after a crash/);
    // The session wrote the crash into the audit log.
    await vi.waitFor(async () => {
      const { records } = await s.readAudit({});
      expect(records.some((r) => r.type === 'agent.exit' && r.session === first.sessionId)).toBe(true);
    });
    // Two more crashes inside the window exceed maxAttempts (2): no more restarts.
    starter.started[1]!.kill();
    await next('agentCrashed', (c: { attempt: number }) => c.attempt === 2);
    const third = (await next('sessionStatus', (st: { state: string; sessionId?: string }) => st.state === 'idle' && st.sessionId !== (restarted as { sessionId: string }).sessionId && st.sessionId !== first.sessionId)) as { sessionId: string };
    expect(starter.started).toHaveLength(3);
    expect(third.sessionId).toBeDefined();
    starter.started[2]!.kill();
    const last = await next('agentCrashed', (c: { attempt: number }) => c.attempt === 3);
    expect(last).toMatchObject({ restartInMs: null });
    await next('sessionStatus', (st: { state: string }) => st.state === 'crashed');
    expect(events.filter((e) => e.name === 'agentCrashed')).toHaveLength(3);
  });

  it('denies a question nobody answers when its time is up, and says it timed out', async () => {
    const { s, next } = await host({ consentTimeoutMs: 400 });
    await ready(s);
    await s.startSession({ workspace, task: 'write', provider: 'scripted' });
    const q = (await next('consentAsked')) as { id: string; timeoutMs: number };
    expect(q.timeoutMs).toBe(400);
    expect(await next('consentSettled')).toMatchObject({ id: q.id, answer: 'deny', by: 'timeout' });
    expect(await next('activity', (e: { decision: { decidedBy: string } }) => e.decision.decidedBy === 'timeout')).toMatchObject({ decision: { allowed: false } });
  });

  it('revokes only grants of the running session', async () => {
    const { s, next } = await host();
    await ready(s);
    await s.startSession({ workspace, task: 'write', provider: 'scripted' });
    const q = (await next('consentAsked')) as { id: string; proposedGrant?: { description: string } };
    expect(q.proposedGrant?.description).toMatch(/write the file out-0\.txt in this workspace \(this path only\)/);
    await s.answerConsent({ id: q.id, answer: 'session' });
    const changed = await next('grantsChanged', (g: { grants: unknown[] }) => g.grants.length === 1);
    const id = (changed as { grants: { id: string }[] }).grants[0]!.id;
    expect(await s.revokeGrant({ id: 'not-a-grant' })).toEqual({ revoked: false });
    expect(await s.revokeGrant({ id })).toEqual({ revoked: true });
    expect((await s.listGrants()).grants).toEqual([]);
  });
});

describe('undo to here', () => {
  /** Writes notes.txt once, then ends its turn. */
  const writesNotes: ModelScript = (conv) => (toolHistory(conv).length === 0 ? { toolCalls: [{ name: 'write_file', input: { path: 'notes.txt', content: 'agent\n' } }] } : { text: 'done' });

  it('tells about files changed outside Tether without asking, restores over them only with the explicit overwrite, and never lifts a stop', async () => {
    const ws = await mkdtemp(join(tmp, 'undo-ws-'));
    await writeFile(join(ws, 'notes.txt'), 'mine\n');
    const { s, h, next, events } = await host({ chooseFolder: async () => ws, demoScript: writesNotes });
    await ready(s);
    await s.startSession({ workspace: ws, task: 'write notes', provider: 'scripted' });
    const q = (await next('consentAsked')) as ConsentQuestionView;
    await s.answerConsent({ id: q.id, answer: 'once' });
    await next('sessionStatus', (st: { state: string; stopReason?: string }) => st.state === 'idle' && st.stopReason !== undefined);
    expect(await readFile(join(ws, 'notes.txt'), 'utf8')).toBe('agent\n');
    await next('checkpointsChanged');

    // The timeline entry of the write names the request; its checkpoint names it too.
    const write = (await s.getSnapshot()).activity.find((e: ActivityEntry) => e.request.relPath === 'notes.txt')!;
    const { available, checkpoints } = await s.listCheckpoints();
    expect(available).toBe(true);
    const after = checkpoints.findIndex((c: CheckpointView) => c.kind === 'change' && c.requestIds.includes(write.request.id));
    expect(after).toBeGreaterThanOrEqual(0);
    expect(checkpoints[after]!.changed).toEqual([{ path: 'notes.txt', status: 'modified' }]);
    const before = checkpoints[after + 1]!;

    // Changed outside Tether: refused before anyone is asked, with the file named.
    await writeFile(join(ws, 'notes.txt'), 'edited by hand\n');
    const asked = () => events.filter((e) => e.name === 'consentAsked').length;
    const askedBefore = asked();
    const refused = await s.restoreCheckpoint({ checkpoint: before.id });
    expect(refused).toMatchObject({ restored: false, conflicts: [{ path: 'notes.txt', conflict: expect.stringMatching(/changed outside Tether/) }] });
    expect(asked()).toBe(askedBefore);
    expect(await readFile(join(ws, 'notes.txt'), 'utf8')).toBe('edited by hand\n');

    // Stopped: the undo still works, through the consent dialog, marking the conflict.
    await s.stopSession();
    const restoring = s.restoreCheckpoint({ checkpoint: before.id, overwriteConflicts: true });
    const r = (await next('consentAsked', (x: ConsentQuestionView) => x.preview.type === 'restore')) as ConsentQuestionView;
    expect(r.request.method).toBe('tether/restore');
    expect(r.proposedGrant).toBeUndefined();
    expect(r.preview).toMatchObject({ type: 'restore', checkpoint: before.seq, files: [{ path: 'notes.txt', action: 'overwrite', conflict: expect.stringMatching(/changed outside Tether/) }] });
    expect(r.preview.type === 'restore' && r.preview.diff).toMatch(/-edited by hand\n\+mine/);
    await expect(s.sendPrompt({ task: 'more' })).resolves.toMatchObject({ accepted: false, reason: expect.stringMatching(/undo is in progress/) });
    await s.answerConsent({ id: r.id, answer: 'once' });
    const done = await restoring;
    expect(done).toMatchObject({ restored: true, files: 1 });
    expect(await readFile(join(ws, 'notes.txt'), 'utf8')).toBe('mine\n');
    await next('activity', (e: ActivityEntry) => e.request.method === 'tether/restore' && e.decision.decidedBy === 'user');

    // The agent is still halted: a request from it is denied by the stop.
    const session = h.sessions()[0]!;
    const agentWrite: CapabilityRequest = {
      id: randomUUID(), sessionId: session.id, action: 'write', kind: 'write', method: 'fs/write_text_file', workspace: ws,
      target: { path: join(ws, 'x.txt'), relPath: 'x.txt', inWorkspace: true, exists: false }, trace: newTrace(),
    };
    await expect(session.broker.execute(agentWrite, { preview: async () => ({ type: 'read', path: 'x' }), effect: async () => ({ result: 1 }) })).rejects.toThrow(/stopped/);

    // The restore can itself be undone; denying that changes nothing.
    const undoing = s.restoreCheckpoint({ checkpoint: done.undoCheckpoint! });
    const u = (await next('consentAsked', (x: ConsentQuestionView) => x.preview.type === 'restore' && x.id !== r.id)) as ConsentQuestionView;
    expect(u.preview.type === 'restore' && u.preview.diff).toMatch(/-mine\n\+edited by hand/);
    await s.answerConsent({ id: u.id, answer: 'deny' });
    expect(await undoing).toMatchObject({ restored: false, message: expect.stringMatching(/denied by the user/) });
    expect(await readFile(join(ws, 'notes.txt'), 'utf8')).toBe('mine\n');
  });

  it('refuses to undo while the agent is working or without a session', async () => {
    const { s, next } = await host();
    await ready(s);
    await expect(s.restoreCheckpoint({ checkpoint: 'a'.repeat(40) })).rejects.toThrow(/no session is open/);
    expect(await s.listCheckpoints()).toEqual({ available: false, checkpoints: [] });
    await s.startSession({ workspace, task: 'write', provider: 'scripted' });
    await next('consentAsked');
    await expect(s.restoreCheckpoint({ checkpoint: 'a'.repeat(40) })).rejects.toThrow(/still working/);
  });
});

describe('RestartBackoff', () => {
  it('doubles the delay up to the cap and gives up after too many crashes in the window', () => {
    const b = new RestartBackoff({ initialDelayMs: 1000, maxDelayMs: 3000, maxAttempts: 3, windowMs: 10_000 });
    expect([b.next(0), b.next(1), b.next(2), b.next(3)]).toEqual([
      { attempt: 1, delayMs: 1000 }, { attempt: 2, delayMs: 2000 }, { attempt: 3, delayMs: 3000 }, { attempt: 4, delayMs: null },
    ]);
    // Crashes older than the window no longer count.
    expect(b.next(20_000)).toEqual({ attempt: 1, delayMs: 1000 });
    b.reset();
    expect(b.next(20_001)).toEqual({ attempt: 1, delayMs: 1000 });
  });
});

describe('SignedAuditView', () => {
  async function log(records: number) {
    const dir = await mkdtemp(join(tmp, 'audit-'));
    const w = await SignedAuditLog.open({ dir, keyStore: testKeys });
    if (records > 100) await Promise.all(Array.from({ length: records }, (_, i) => w.append({ type: 'session.start', session: `s${i}` }))); // group commits
    else for (let i = 0; i < records; i++) await w.append({ type: 'session.start', session: `s${i}` });
    await w.close(); // writes a signed checkpoint
    const segment = (await readdir(dir)).find((f) => f.endsWith('.jsonl') && !f.startsWith('checkpoints'))!;
    return { dir, segment: join(dir, segment) };
  }
  const key = async () => testKeys.existingVerifierKey();

  it('verifies an intact log against this install\'s key and reads the newest records', async () => {
    const { dir } = await log(5);
    const k = await key();
    const view = new SignedAuditView(dir, { verifierKey: () => k });
    const v = await view.verify();
    expect(v).toMatchObject({ ok: true });
    expect(v.message).toMatch(/signed checkpoints? verified/);
    expect((await view.read(2)).map((r) => r.session)).toEqual(['s3', 's4']);
  });

  it.each<[string, (lines: string[]) => string[]]>([
    ['a modified record', (l) => l.map((x, i) => (i === 3 ? x.replace('"s2"', '"s9"') : x))],
    ['a deleted record', (l) => l.filter((_, i) => i !== 3)],
    ['swapped records', (l) => [l[0]!, l[1]!, l[3]!, l[2]!, ...l.slice(4)]],
  ])('reports %s', async (_what, tamper) => {
    const { dir, segment } = await log(5);
    const lines = (await readFile(segment, 'utf8')).split('\n').filter(Boolean);
    await writeFile(segment, tamper(lines).join('\n') + '\n');
    const k = await key();
    const v = await new SignedAuditView(dir, { verifierKey: () => k }).verify();
    expect(v.ok).toBe(false);
    expect(v.message.length).toBeGreaterThan(10);
  });

  it('answers from its last verification only while nothing in the directory has changed', async () => {
    const { dir, segment } = await log(5);
    const k = await key();
    let clock = 1_000_000;
    const view = new SignedAuditView(dir, { verifierKey: () => k, now: () => clock });
    const first = await view.verify();
    expect(first.ok).toBe(true);
    expect(await view.verify()).toBe(first); // the same answer object: not verified again
    // Not for long: after 30 s the whole log is verified again, fingerprint or not (a write through a
    // shared memory mapping can change a file without touching its times again).
    clock += 31_000;
    const later = await view.verify();
    expect(later).not.toBe(first);
    expect(later.ok).toBe(true);
    // A clock that went back does not make an answer fresh.
    clock -= 300_000;
    expect(await view.verify()).not.toBe(later);
    // One byte changed in place, size kept: the log is verified again and fails.
    const bytes = await readFile(segment);
    const at = bytes.indexOf('"s2"') + 2;
    bytes[at] = '9'.charCodeAt(0);
    await writeFile(segment, bytes);
    const after = await view.verify();
    expect(after.ok).toBe(false);
    // Callers arriving while one runs share the one verification queued behind it.
    const [p1, p2, p3] = [view.verify(), view.verify(), view.verify()];
    expect(p2).toBe(p3);
    expect(p1).not.toBe(p2);
    expect((await p3).ok).toBe(false);
    // Another key: verified again, even with the files as they were.
    const other = NoteSigningKey.generate('someone-else').verifierKey;
    let which = k;
    const switching = new SignedAuditView((await log(2)).dir, { verifierKey: () => which });
    expect((await switching.verify()).ok).toBe(true);
    which = other;
    expect((await switching.verify()).ok).toBe(false);
  });

  /** A live log of 5 records, for `use`, closed after. */
  async function withLiveLog(use: (dir: string, live: SignedAuditLog) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(tmp, 'audit-live-'));
    const live = await SignedAuditLog.open({ dir, keyStore: testKeys });
    try {
      for (let i = 0; i < 5; i++) await live.append({ type: 'session.start', session: `s${i}` });
      await use(dir, live);
    } finally {
      await live.close();
    }
  }

  it('while the live log only grows, verifies and checkpoints at most every 10 s however often it is asked', () => withLiveLog(async (dir, live) => {
    let clock = 1_000_000;
    const k = await key();
    const view = new SignedAuditView(dir, { verifierKey: () => k, log: live, now: () => clock });
    const first = await view.verify();
    expect(first).toMatchObject({ ok: true, records: 6 }); // the chain start and 5 records, covered by the checkpoint the view wrote
    const checkpoints = async () => (await readFile(join(dir, 'checkpoints.jsonl'), 'utf8')).split('\n').filter(Boolean).length;
    const before = await checkpoints();
    for (let i = 0; i < 3; i++) await live.append({ type: 'session.start', session: `t${i}` });
    clock += 5_000;
    const soon = await view.verify();
    expect(soon).toMatchObject({ ok: true, records: first.records });
    expect(soon.message).toMatch(/the 3 records written since are verified within 10 s/);
    expect(soon.recheckMs).toBe(5_000); // when to ask again
    expect(await checkpoints()).toBe(before); // no checkpoint for an answer that verified nothing
    clock += 6_000;
    const later = await view.verify();
    expect(later.ok).toBe(true);
    expect(later.records).toBeGreaterThan(first.records);
    expect(later.message).not.toMatch(/written since/);
  }));

  it('throttles also when records keep landing while it verifies (the part its checkpoint covers has passed)', () => withLiveLog(async (dir, live) => {
    let clock = 1_000_000;
    const k = await key();
    // A record lands right after each checkpoint the view writes, before the log is read.
    const busy = { get status() { return live.status; }, checkpoint: async () => {
      const cp = await live.checkpoint();
      await live.append({ type: 'session.start', session: 'landed' });
      return cp;
    } };
    const view = new SignedAuditView(dir, { verifierKey: () => k, log: busy, now: () => clock });
    const first = await view.verify();
    expect(first.ok).toBe(true);
    expect(first.message).toMatch(/newer records are still being written/);
    await live.append({ type: 'session.start', session: 'more' });
    clock += 2_000;
    const soon = await view.verify();
    expect(soon.recheckMs).toBe(8_000);
    expect(soon.message).toMatch(/records written since are verified within 10 s/);
  }));

  it('verifies on a worker thread: the event loop keeps turning meanwhile, and the verdicts are verifyAuditDir\'s', async () => {
    const { dir, segment } = await log(30_000);
    const k = (await key())!;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t = performance.now();
    const report = await verifyAuditDirOffThread(dir, { trustedKeys: [k] });
    const ms = performance.now() - t;
    clearInterval(timer);
    expect(report).toEqual(await verifyAuditDir(dir, { trustedKeys: [k] }));
    expect(report).toMatchObject({ ok: true, records: 30_001 });
    // The loop turned most milliseconds the verification took (on the event loop's thread: about one in ten, at its awaits).
    expect(ticks).toBeGreaterThan(ms / 4);
    const lines = (await readFile(segment, 'utf8')).split('\n');
    await writeFile(segment, lines.map((x, i) => (i === 100 ? x.replace('"s99"', '"s98"') : x)).join('\n'));
    const bad = await verifyAuditDirOffThread(dir, { trustedKeys: [k] });
    expect(bad.ok).toBe(false);
    expect(bad).toEqual(await verifyAuditDir(dir, { trustedKeys: [k] }));
    // A verification that does not finish in time is stopped, with the reason.
    await expect(verifyAuditDirOffThread(dir, { trustedKeys: [k] }, 1)).rejects.toThrow(/took longer than 0 s and was stopped/);
  });

  it('does not verify against another key', async () => {
    const { dir } = await log(3);
    const other = NoteSigningKey.generate('someone-else').verifierKey;
    expect((await new SignedAuditView(dir, { verifierKey: () => other }).verify()).ok).toBe(false);
  });
});
