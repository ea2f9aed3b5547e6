// The built-in agent as a REAL child process (`node src/agent/main.ts`) over
// stdio, talking to the real egress gateway and the scripted model server
// over loopback HTTP. The ACP client on the other side is a test stand-in for
// the host (acp-test-client.ts: fs handlers over a temp dir, rule-named
// denials); the host's own integration tests run it against the real broker.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MODEL_ERROR_CODE } from '../../src/agent/acp-agent.ts';
import { COMMANDS_UNAVAILABLE } from '../../src/agent/tools.ts';
import { formatTraceparent, newTrace, parseTraceparent } from '../../src/common/trace.ts';
import { ForkAgentStarter } from '../../src/host/agent-starter.ts';
import { EgressGateway, type ModelProvider } from '../../src/host/egress/gateway.ts';
import {
  createDemoScript, DEMO_LABEL, type ModelScript, type ScriptedModelServer, sequenceScript, startScriptedModel,
} from '../../src/host/scripted-model.ts';
import { TestHost, type TestHostOptions } from './acp-test-client.ts';
import { ALLOW_ALL_MODEL_CALLS } from '../support/allow-all-model-calls.ts';

const API_KEY = ['sk-ant-', 'test-0123456789abcdefghij'].join('');

interface Stack { model: ScriptedModelServer; gateway: EgressGateway; host: TestHost; workspace: string; token: string; sessionId: string }
let stack: Stack | undefined;

async function start(script: ModelScript, o: { provider?: ModelProvider; stream?: boolean; host?: Partial<TestHostOptions>; config?: Record<string, unknown> } = {}): Promise<Stack> {
  const provider = o.provider ?? 'anthropic';
  const workspace = await mkdtemp(join(tmpdir(), 'tether-agent-'));
  const model = await startScriptedModel({ script });
  const gateway = await EgressGateway.start({ getApiKey: () => API_KEY, authorize: ALLOW_ALL_MODEL_CALLS });
  const gw = gateway.openSession({ sessionId: 'test-session', provider, upstreamBaseUrl: model.url });
  const host = await TestHost.spawnAgent({ workspace, ...o.host });
  const sessionId = await host.newSession({
    provider, model: 'scripted', baseUrl: gw.baseUrl, token: gw.token, stream: o.stream ?? true, timeoutMs: 5000, ...o.config,
  });
  stack = { model, gateway, host, workspace, token: gw.token, sessionId };
  return stack;
}

afterEach(async () => {
  if (!stack) return;
  const s = stack;
  stack = undefined;
  await s.host.close();
  await s.gateway.close();
  await s.model.close();
  await rm(s.workspace, { recursive: true, force: true });
});

describe('agent process over stdio', () => {
  describe.each([
    ['anthropic', true], ['anthropic', false], ['openai', true], ['openai', false],
  ] as const)('%s, stream=%s', (provider, stream) => {
    it('reads, writes and edits files through the host and ends the turn', async () => {
      const s = await start(sequenceScript(
        { text: 'Reading a.txt.', toolCalls: [{ name: 'read_file', input: { path: 'a.txt' } }] },
        { toolCalls: [{ name: 'write_file', input: { path: 'sub/b.txt', content: 'new file\n' } }, { name: 'edit_file', input: { path: 'a.txt', old_string: 'world', new_string: 'Tether' } }] },
        { text: 'Done: wrote sub/b.txt and edited a.txt.' },
      ), { provider, stream });
      await writeFile(join(s.workspace, 'a.txt'), 'hello world\n');
      const trace = newTrace();

      const r = await s.host.prompt(s.sessionId, 'do the thing', formatTraceparent(trace));

      expect(r.stopReason).toBe('end_turn');
      expect(await readFile(join(s.workspace, 'sub/b.txt'), 'utf8')).toBe('new file\n');
      expect(await readFile(join(s.workspace, 'a.txt'), 'utf8')).toBe('hello Tether\n');
      expect(s.host.text()).toContain('Done: wrote sub/b.txt and edited a.txt.');
      // The model saw the file content as a tool result.
      const second = s.model.requests[1]!.conversation!;
      expect(second.messages.at(-1)!.toolResults[0]).toMatchObject({ content: 'hello world\n', isError: false });
      // Tool calls were reported to the client with their status.
      const statuses = s.host.updates.map((u) => u.update).filter((u) => u.sessionUpdate === 'tool_call' || u.sessionUpdate === 'tool_call_update').map((u) => ('status' in u ? u.status : undefined));
      expect(statuses.filter((x) => x === 'completed')).toHaveLength(3);
      expect(s.host.updates.some((u) => u.update.sessionUpdate === 'tool_call' && u.update.kind === 'edit')).toBe(true);
      // Every request to the host carried the prompt's trace.
      const fsCalls = s.host.calls.filter((c) => c.method.startsWith('fs/'));
      expect(fsCalls).toHaveLength(4);
      for (const c of fsCalls) expect(parseTraceparent((c.params['_meta'] as Record<string, unknown>)['traceparent'])?.traceId).toBe(trace.traceId);
      // The key was added by the gateway; the agent's gateway token never reached the provider.
      for (const req of s.model.requests) {
        expect(JSON.stringify(req.headers)).not.toContain(s.token);
        if (provider === 'anthropic') expect(req.headers['x-api-key']).toBe(API_KEY);
        else expect(req.headers['authorization']).toBe(`Bearer ${API_KEY}`);
      }
    });
  });

  it('returns a denied read to the model as a tool error naming the rule, and the model adapts', async () => {
    const s = await start((conv) => {
      const last = conv.messages.at(-1)!;
      if (last.role !== 'tool') return { toolCalls: [{ name: 'read_file', input: { path: '.env' } }] };
      const r = last.toolResults[0]!;
      return { text: r.isError ? `I was stopped: ${r.content}` : 'I read it' };
    }, { host: { deny: (_m, p) => (p === '.env' ? 'forbid-secrets' : undefined) } });
    await writeFile(join(s.workspace, '.env'), 'TOKEN=1\n');

    const r = await s.host.prompt(s.sessionId, 'read the env');

    expect(r.stopReason).toBe('end_turn');
    const result = s.model.requests[1]!.conversation!.messages.at(-1)!.toolResults[0]!;
    expect(result.isError).toBe(true);
    expect(result.content).toMatch(/^Error: denied/);
    expect(result.content).toContain('forbid-secrets');
    expect(s.host.text()).toContain('I was stopped');
    const failed = s.host.updates.find((u) => u.update.sessionUpdate === 'tool_call_update' && u.update.status === 'failed');
    expect(failed).toBeDefined();
  });

  it('stops with max_turn_requests after maxTurns model requests', async () => {
    const s = await start(() => ({ text: 'again', toolCalls: [{ name: 'list_dir', input: { path: '.' } }] }), { config: { maxTurns: 3 } });

    const r = await s.host.prompt(s.sessionId, 'loop forever');

    expect(r.stopReason).toBe('max_turn_requests');
    expect(s.model.requests).toHaveLength(3);
    expect(s.host.calls.filter((c) => c.method === '_tether/list')).toHaveLength(3);
  });

  it('stops with max_tokens when the reply is cut at max_tokens, without running its tool calls', async () => {
    const s = await start(() => ({ text: 'partial', toolCalls: [{ name: 'write_file', input: { path: 'x', content: 'y' } }], stopReason: 'max_tokens' }), { config: { maxTokens: 16 } });

    const r = await s.host.prompt(s.sessionId, 'write a lot');

    expect(r.stopReason).toBe('max_tokens');
    expect(s.model.requests[0]!.conversation!.maxTokens).toBe(16);
    expect(s.host.calls.filter((c) => c.method === 'fs/write_text_file')).toHaveLength(0);
  });

  it('cancel mid-stream aborts the model request, ends with cancelled, and the session still works', async () => {
    const s = await start(sequenceScript({ fault: 'stall', afterText: 'Thinking about it' }, { text: 'second answer' }));

    const pending = s.host.prompt(s.sessionId, 'think');
    await s.host.waitForUpdate((u) => u.update.sessionUpdate === 'agent_message_chunk');
    await s.host.cancel(s.sessionId);
    const r = await pending;

    expect(r.stopReason).toBe('cancelled');
    const again = await s.host.prompt(s.sessionId, 'next');
    expect(again.stopReason).toBe('end_turn');
    expect(s.host.text()).toContain('second answer');
    // The partial reply is kept in the conversation.
    expect(s.model.requests[1]!.conversation!.messages.some((m) => m.role === 'assistant' && m.text.includes('Thinking'))).toBe(true);
  });

  it('cancel while a host request is pending cancels that request and ends with cancelled', async () => {
    let writeStarted!: () => void;
    const started = new Promise<void>((r) => { writeStarted = r; });
    const s = await start(sequenceScript({ toolCalls: [{ name: 'write_file', input: { path: 'w.txt', content: 'x' } }] }, { text: 'ok' }), {
      host: {
        beforeWrite: (_p, signal) => new Promise<void>((_resolve, reject) => {
          writeStarted();
          signal.addEventListener('abort', () => reject(new Error('consent aborted')));
        }),
      },
    });

    const pending = s.host.prompt(s.sessionId, 'write');
    await started;
    await s.host.cancel(s.sessionId);
    const r = await pending;

    expect(r.stopReason).toBe('cancelled');
    await expect.poll(() => s.host.cancelledRequests).toContain('fs/write_text_file');
    const next = await s.host.prompt(s.sessionId, 'again');
    expect(next.stopReason).toBe('end_turn');
    // The unrun call was answered for the model, so the conversation stays valid.
    const tool = s.model.requests[1]!.conversation!.messages.find((m) => m.role === 'tool')!;
    expect(tool.toolResults[0]!.content).toContain('cancelled');
  });

  it('a provider failure ends the turn with an error that carries the provider message', async () => {
    const s = await start(() => ({ fault: 'http', status: 529, errorType: 'overloaded_error', message: 'Overloaded, try later' }));

    const err = await s.host.prompt(s.sessionId, 'hi').then(() => undefined, (e: unknown) => e as { code: number; message: string; data: { kind: string; status: number } });

    expect(err).toBeDefined();
    expect(err!.code).toBe(MODEL_ERROR_CODE);
    expect(err!.message).toContain('HTTP 529');
    expect(err!.message).toContain('overloaded_error: Overloaded, try later');
    expect(err!.data).toMatchObject({ kind: 'http', status: 529 });
  });

  it('a stalled provider ends the turn with a timeout error, not a hang', async () => {
    const s = await start(() => ({ fault: 'stall' }), { config: { timeoutMs: 300 } });

    const err = await s.host.prompt(s.sessionId, 'hi').then(() => undefined, (e: unknown) => e as { code: number; message: string });

    expect(err?.code).toBe(MODEL_ERROR_CODE);
    expect(err?.message).toMatch(/timeout/);
  });

  it('refuses a session whose _meta.tether is invalid, naming each problem', async () => {
    const s = await start(() => ({ text: 'x' }));

    const err = await s.host.newSession({ provider: 'gemini', model: 'm', baseUrl: 'https://api.anthropic.com', token: 'short' })
      .then(() => undefined, (e: unknown) => e as { code: number; message: string });

    expect(err?.code).toBe(-32602);
    expect(err?.message).toContain('provider');
    expect(err?.message).toContain('baseUrl must be the host egress gateway');
    expect(err?.message).toContain('token');
  });

  it('answers run_command with "unavailable" when the client has no terminal', async () => {
    const s = await start(sequenceScript({ toolCalls: [{ name: 'run_command', input: { command: 'echo hi' } }] }, { text: 'ok' }));

    await s.host.prompt(s.sessionId, 'run');

    expect(s.model.requests[1]!.conversation!.messages.at(-1)!.toolResults[0]!.content).toBe(`Error: ${COMMANDS_UNAVAILABLE}`);
    expect(s.host.calls.some((c) => c.method === 'terminal/create')).toBe(false);
  });

  it('runs a command through terminal/create, wait_for_exit, output and release when the client has a terminal', async () => {
    const s = await start(sequenceScript({ toolCalls: [{ name: 'run_command', input: { command: 'echo out; echo err >&2; exit 3' } }] }, { text: 'ok' }), { host: { terminal: true } });

    await s.host.prompt(s.sessionId, 'run');

    const result = s.model.requests[1]!.conversation!.messages.at(-1)!.toolResults[0]!;
    expect(result.content).toContain('exit code 3');
    expect(result.content).toContain('out');
    expect(result.content).toContain('err');
    expect(s.host.calls.map((c) => c.method).filter((m) => m.startsWith('terminal/'))).toEqual(['terminal/create', 'terminal/wait_for_exit', 'terminal/output', 'terminal/release']);
  });

  it('kills a command that runs past timeout_ms and reports the timeout to the model', async () => {
    const s = await start(sequenceScript({ toolCalls: [{ name: 'run_command', input: { command: 'sleep 30', timeout_ms: 200 } }] }, { text: 'ok' }), { host: { terminal: true } });

    await s.host.prompt(s.sessionId, 'run');

    const result = s.model.requests[1]!.conversation!.messages.at(-1)!.toolResults[0]!;
    expect(result.isError).toBe(true);
    expect(result.content).toContain('killed after 200 ms (timeout)');
    expect(s.host.calls.map((c) => c.method)).toContain('terminal/kill');
    expect(s.host.calls.map((c) => c.method)).toContain('terminal/release');
  });

  it('runs under the host\'s ForkAgentStarter (minimal environment, host-side ndjson framing)', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'tether-agent-'));
    const model = await startScriptedModel({ script: sequenceScript({ toolCalls: [{ name: 'read_file', input: { path: 'a.txt' } }] }, { text: 'read it' }) });
    const gateway = await EgressGateway.start({ getApiKey: () => API_KEY, authorize: ALLOW_ALL_MODEL_CALLS });
    const agent = await new ForkAgentStarter().start();
    const host = new TestHost({ workspace });
    try {
      await writeFile(join(workspace, 'a.txt'), 'content');
      const gw = gateway.openSession({ sessionId: 'fork', provider: 'anthropic', upstreamBaseUrl: model.url });
      await host.connect(agent.stream);
      const sessionId = await host.newSession({ provider: 'anthropic', model: 'scripted', baseUrl: gw.baseUrl, token: gw.token });
      expect((await host.prompt(sessionId, 'go')).stopReason).toBe('end_turn');
      expect(host.text()).toBe('read it');
    } finally {
      // Agent first: closing the client connection before the agent's stdout ends trips a
      // controller.close() on an already-cancelled stream in src/host/acp-transport.ts (reported).
      agent.kill();
      await agent.exited;
      host.connection.close();
      await gateway.close();
      await model.close();
      await rm(workspace, { recursive: true, force: true });
    }
  });

  it('walks the demo script: read, write, denied .env, then a summary that names the rule', async () => {
    const s = await start(createDemoScript(), { provider: 'openai', host: { deny: (_m, p) => (p === '.env' ? 'forbid-secrets' : undefined) } });
    await writeFile(join(s.workspace, 'README.md'), '# Sample project\n\nSome text.\n');
    await writeFile(join(s.workspace, '.env'), 'API_TOKEN=abc\n');

    const r = await s.host.prompt(s.sessionId, 'show me Tether');

    expect(r.stopReason).toBe('end_turn');
    expect(await readFile(join(s.workspace, 'NOTES.md'), 'utf8')).toContain('# Sample project');
    const text = s.host.text();
    expect(text).toContain(DEMO_LABEL);
    expect(text).toContain('read README.md: ok');
    expect(text).toContain('write NOTES.md: ok');
    expect(text).toMatch(/read \.env: denied .*forbid-secrets/);
    expect(text).not.toContain('abc');
  });
});
