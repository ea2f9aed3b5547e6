// The spine end to end (DESIGN.md, "The spine"): the built-in agent as a real
// child process, a scripted model over real HTTP in both dialects, the real
// broker, Cedar policy, workspace jail and audit log.
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentExit, AgentProcess } from '../../src/host/agent-starter.ts';
import type { EgressRequestInfo } from '../../src/host/egress/gateway.ts';
import { sequenceScript, toolHistory, type ScriptedReply } from '../../src/host/scripted-model.ts';
import { fsDecisions, ScriptedUser, startTestHost, type TestHost } from '../support/test-host.ts';

let running: TestHost | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const call = (name: string, input: unknown): ScriptedReply => ({ toolCalls: [{ name, input }] });
const done: ScriptedReply = { text: 'done' };

async function start(opts: Parameters<typeof startTestHost>[0]): Promise<TestHost> {
  running = await startTestHost(opts);
  return running;
}

describe.each(['anthropic', 'openai'] as const)('the brokered agent (%s dialect)', (provider) => {
  it('reads, writes after consent, is denied outside the workspace, and the audit log shows every decision', async () => {
    const user = new ScriptedUser(() => 'once');
    const outside = await mkdtemp(join(tmpdir(), 'tether-outside-'));
    await writeFile(join(outside, 'secret.txt'), 'outside');
    const t = await start({
      provider,
      user,
      script: sequenceScript(
        call('read_file', { path: 'README.md' }),
        call('write_file', { path: 'src/notes.md', content: 'hello\n' }),
        call('read_file', { path: join(outside, 'secret.txt') }),
        done,
      ),
    });
    await writeFile(join(t.workspace, 'README.md'), '# project\n');

    const result = await t.host.session.prompt('do the thing');
    expect(result.stopReason).toBe('end_turn');
    expect(await readFile(join(t.workspace, 'src/notes.md'), 'utf8')).toBe('hello\n');

    // The user was asked exactly once, for the write, with a diff.
    expect(user.questions).toHaveLength(1);
    const q = user.questions[0]!;
    expect(q.request.action).toBe('write');
    expect(q.preview.type).toBe('write');
    expect(q.preview.type === 'write' && q.preview.diff).toContain('+hello');
    expect(q.ruleDescriptions.map((r) => r.id)).toContain('workspace-write');

    const records = await t.audit();
    expect(fsDecisions(records, t.workspace)).toEqual([
      ['read', 'README.md', true, 'policy'],
      ['write', 'src/notes.md', true, 'user'],
      ['read', join(outside, 'secret.txt'), false, 'policy'],
    ]);
    const denied = records.find((r) => r.type === 'decision' && r.decision?.allowed === false)!;
    expect(denied.decision!.policyIds).toContain('outside-workspace');
    // Every record carries the prompt's trace; decision precedes outcome for the write.
    const trace = records.find((r) => r.type === 'decision')!.traceId;
    expect(trace).toMatch(/^[0-9a-f]{32}$/);
    expect(records.filter((r) => r.type === 'decision' || r.type === 'outcome').every((r) => r.traceId === trace)).toBe(true);
    const writeDecision = records.findIndex((r) => r.type === 'decision' && r.request?.action === 'write');
    const writeOutcome = records.findIndex((r) => r.type === 'outcome' && r.request?.action === 'write');
    expect(writeOutcome).toBeGreaterThan(writeDecision);
    expect(records[writeOutcome]!.outcome).toMatchObject({ ok: true, bytes: 6 });
    expect(records[writeOutcome]!.outcome!.postSha256).toMatch(/^[0-9a-f]{64}$/);
    // Model calls were brokered too, and the agent never held the provider key.
    expect(records.some((r) => r.type === 'decision' && r.request?.kind === 'model' && r.decision?.allowed)).toBe(true);
    for (const req of t.model.requests) {
      expect(JSON.stringify(req.headers)).toContain('test-upstream-key');
    }
  });

  it('gives the model a denial as a tool error naming the rule, and it can go on', async () => {
    const t = await start({ provider, script: sequenceScript(call('read_file', { path: '.env' }), done) });
    await writeFile(join(t.workspace, '.env'), 'TOKEN=x\n');
    await t.host.session.prompt('read the config');
    const conv = t.model.requests.at(-1)!.conversation!;
    const [first] = toolHistory(conv);
    expect(first!.result!.isError).toBe(true);
    expect(first!.result!.content).toContain('secret-env-files');
    expect(first!.result!.content).not.toContain('TOKEN=x');
  });
});

describe('search', () => {
  it('never quotes a file policy forbids the agent to read', async () => {
    const t = await start({ provider: 'anthropic', script: sequenceScript(call('search', { pattern: 'PASSWORD' }), done) });
    await writeFile(join(t.workspace, '.env'), 'DB_PASSWORD=hunter2\n');
    await writeFile(join(t.workspace, 'app.ts'), 'const PASSWORD_FIELD = "pw";\n');
    await t.host.session.prompt('find the password');
    const [first] = toolHistory(t.model.requests.at(-1)!.conversation!);
    expect(first!.result!.content).toContain('app.ts');
    expect(first!.result!.content).not.toContain('hunter2');
    expect(first!.result!.content).toMatch(/withheld/);
  });
});

describe('consent', () => {
  it('ask → deny leaves the file untouched and tells the model the user said no', async () => {
    const user = new ScriptedUser(() => 'deny');
    const t = await start({ provider: 'anthropic', user, script: sequenceScript(call('write_file', { path: 'a.txt', content: 'x' }), done) });
    await t.host.session.prompt('write');
    await expect(readFile(join(t.workspace, 'a.txt'))).rejects.toThrow(/ENOENT/);
    expect(fsDecisions(await t.audit(), t.workspace)).toEqual([['write', 'a.txt', false, 'user']]);
    const [first] = toolHistory(t.model.requests.at(-1)!.conversation!);
    expect(first!.result!.content).toMatch(/denied by the user/);
  });

  it('allow for this session grants exactly that path, is listed, and can be revoked', async () => {
    const user = new ScriptedUser(() => 'session');
    const t = await start({
      provider: 'openai',
      user,
      script: sequenceScript(
        call('write_file', { path: 'a.txt', content: '1' }),
        call('write_file', { path: 'a.txt', content: '2' }),
        call('write_file', { path: 'b.txt', content: '3' }),
        done,
      ),
    });
    await t.host.session.prompt('write twice');
    expect(user.questions.map((q) => q.request.target?.relPath)).toEqual(['a.txt', 'b.txt']);
    expect(fsDecisions(await t.audit(), t.workspace).map((d) => d[3])).toEqual(['user', 'grant', 'user']);
    const grants = t.host.session.grants.list(t.host.session.id);
    expect(grants.map((g) => g.scope.pathPattern)).toEqual(['a.txt', 'b.txt']);
    expect(t.host.session.grants.revoke(grants[0]!.id)).toBe(true);
    expect(t.host.session.grants.list(t.host.session.id)).toHaveLength(1);
  });

  it('an unanswered question is denied when it times out', async () => {
    const user = new ScriptedUser(() => new Promise(() => {}));
    const t = await start({ provider: 'anthropic', user, consentTimeoutMs: 300, script: sequenceScript(call('write_file', { path: 'a.txt', content: 'x' }), done) });
    await t.host.session.prompt('write');
    expect(fsDecisions(await t.audit(), t.workspace)).toEqual([['write', 'a.txt', false, 'timeout']]);
  });

  it('stop denies the pending question at once and ends the turn as cancelled', async () => {
    let asked!: () => void;
    const wasAsked = new Promise<void>((r) => (asked = r));
    const user = new ScriptedUser(() => {
      asked();
      return new Promise(() => {});
    });
    const t = await start({ provider: 'anthropic', user, script: sequenceScript(call('write_file', { path: 'a.txt', content: 'x' }), done) });
    const turn = t.host.session.prompt('write');
    await wasAsked;
    await t.host.session.stop();
    expect((await turn).stopReason).toBe('cancelled');
    await expect(readFile(join(t.workspace, 'a.txt'))).rejects.toThrow(/ENOENT/);
    expect(fsDecisions(await t.audit(), t.workspace)).toEqual([['write', 'a.txt', false, 'kill-switch']]);
  });
});

describe('after the agent process exits', () => {
  it('a new prompt is refused and the broker stays halted: nothing lifts that halt', async () => {
    const t = await start({ provider: 'anthropic', script: sequenceScript(done) });
    const exited = new Promise<AgentExit>((r) => t.host.session.onDidAgentExit(r));
    (t.host.session as unknown as { agent: AgentProcess }).agent.kill();
    expect((await exited).signal).toBe('SIGKILL');
    await expect(t.host.session.prompt('go on')).rejects.toThrow(/the agent process was killed by SIGKILL; start a new session/);
    const call: EgressRequestInfo = { sessionId: t.host.session.id, provider: 'anthropic', url: 'https://api.anthropic.com/v1/messages', method: 'POST', bytes: 1, summary: 'x', model: undefined, traceparent: undefined, redactions: 0, signal: new AbortController().signal };
    await expect(t.host.session.authorizeModelCall(call)).rejects.toThrow(/the agent process exited/);
  });
});

describe('path tricks are denied and audited', () => {
  const outsideDir = () => mkdtemp(join(tmpdir(), 'tether-outside-'));
  const cases: { name: string; tool: string; path: (ws: string, out: string) => string; setup?: (ws: string, out: string) => Promise<void> }[] = [
    { name: 'a .. escape', tool: 'read_file', path: () => '../../etc/passwd' },
    { name: 'an absolute path outside', tool: 'read_file', path: (_ws, out) => join(out, 'secret.txt') },
    { name: 'a symlinked directory pointing outside', tool: 'read_file', path: () => 'linkdir/secret.txt', setup: (ws, out) => symlink(out, join(ws, 'linkdir')) },
    { name: 'a final-component symlink to a file outside', tool: 'read_file', path: () => 'link.txt', setup: (ws, out) => symlink(join(out, 'secret.txt'), join(ws, 'link.txt')) },
    { name: 'a write through a final-component symlink', tool: 'write_file', path: () => 'link.txt', setup: (ws, out) => symlink(join(out, 'secret.txt'), join(ws, 'link.txt')) },
    { name: 'a NUL byte', tool: 'read_file', path: () => 'README.md\u0000.txt' },
    { name: 'a device file', tool: 'read_file', path: () => '/dev/zero' },
    { name: 'a git hook', tool: 'write_file', path: () => '.git/hooks/pre-commit', setup: async (ws) => void (await mkdir(join(ws, '.git/hooks'), { recursive: true })) },
  ];

  it.each(cases)('$name', async ({ tool, path, setup }) => {
    const out = await outsideDir();
    await writeFile(join(out, 'secret.txt'), 'TOP-SECRET-CONTENT');
    const ws = await mkdtemp(join(tmpdir(), 'tether-ws-'));
    await writeFile(join(ws, 'README.md'), 'readme');
    await setup?.(ws, out);
    const input = tool === 'write_file' ? { path: path(ws, out), content: 'pwned' } : { path: path(ws, out) };
    const user = new ScriptedUser(() => 'once');
    const t = await start({ provider: 'anthropic', user, workspace: ws, script: sequenceScript(call(tool, input), done) });
    await t.host.session.prompt('try it');
    const [first] = toolHistory(t.model.requests.at(-1)!.conversation!);
    expect(first!.result!.isError).toBe(true);
    expect(first!.result!.content).not.toContain('TOP-SECRET-CONTENT');
    expect(await readFile(join(out, 'secret.txt'), 'utf8')).toBe('TOP-SECRET-CONTENT');
    expect(user.questions).toEqual([]);
    const decisions = (await t.audit()).filter((r) => r.type === 'decision' && r.request?.kind !== 'model');
    expect(decisions).toHaveLength(1);
    expect(decisions[0]!.decision!.allowed).toBe(false);
  });
});

describe('failures end the turn cleanly', () => {
  it('a provider error ends the turn with its message and the host keeps running', async () => {
    const t = await start({ provider: 'openai', script: () => ({ fault: 'http', status: 529, message: 'overloaded, try later' }) });
    await expect(t.host.session.prompt('hi')).rejects.toThrow(/overloaded, try later/);
    // The same session still answers.
    await expect(t.host.session.prompt('again')).rejects.toThrow(/overloaded/);
  });

  it('a malformed stream ends the turn with a clear message', async () => {
    const t = await start({ provider: 'anthropic', script: () => ({ fault: 'malformed' }) });
    await expect(t.host.session.prompt('hi')).rejects.toThrow(/model failed/);
  });
});
