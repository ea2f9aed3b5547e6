// The agent app in-process, connected to the stand-in host over a real
// MessagePort pair (the same adapter Electron's utilityProcess uses, fed by
// Node's MessageChannel instead of Electron's parentPort), with the real
// gateway and scripted model. Covers the tool contract's edge cases.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { createAgentApp } from '../../src/agent/acp-agent.ts';
import { portStream } from '../../src/agent/port-stream.ts';
import { EgressGateway } from '../../src/host/egress/gateway.ts';
import { type ModelScript, type ScriptedModelServer, type ScriptedToolResult, sequenceScript, startScriptedModel } from '../../src/host/scripted-model.ts';
import { TestHost } from './acp-test-client.ts';
import { ALLOW_ALL_MODEL_CALLS } from '../support/allow-all-model-calls.ts';

function nodePort(port: MessagePort) {
  return { postMessage: (m: unknown) => port.postMessage(m), onMessage: (l: (d: unknown) => void) => port.on('message', l), close: () => port.close() };
}

interface Stack { host: TestHost; model: ScriptedModelServer; gateway: EgressGateway; workspace: string; sessionId: string; ports: MessagePort[] }
let stack: Stack | undefined;

afterEach(async () => {
  if (!stack) return;
  const s = stack;
  stack = undefined;
  s.host.connection.close();
  for (const p of s.ports) p.close();
  await s.gateway.close();
  await s.model.close();
  await rm(s.workspace, { recursive: true, force: true });
});

async function start(script: ModelScript, config: Record<string, unknown> = {}): Promise<Stack> {
  const workspace = await mkdtemp(join(tmpdir(), 'tether-tools-'));
  const model = await startScriptedModel({ script });
  const gateway = await EgressGateway.start({ getApiKey: () => ['sk-', 'test-key-0123456789abcdef'].join('') , authorize: ALLOW_ALL_MODEL_CALLS });
  const gw = gateway.openSession({ sessionId: 'tools', provider: 'openai', upstreamBaseUrl: model.url });
  const { port1, port2 } = new MessageChannel();
  createAgentApp().connect(portStream(nodePort(port1)));
  const host = new TestHost({ workspace });
  await host.connect(portStream(nodePort(port2)));
  const sessionId = await host.newSession({ provider: 'openai', model: 'scripted', baseUrl: gw.baseUrl, token: gw.token, timeoutMs: 5000, ...config });
  stack = { host, model, gateway, workspace, sessionId, ports: [port1, port2] };
  return stack;
}

/** Runs one round of tool calls and returns the results the model saw. */
async function runCalls(calls: { name: string; input: unknown }[], files: Record<string, string> = {}): Promise<{ results: readonly ScriptedToolResult[]; s: Stack }> {
  const s = await start(sequenceScript({ toolCalls: calls }, { text: 'done' }));
  for (const [name, content] of Object.entries(files)) await writeFile(join(s.workspace, name), content);
  const r = await s.host.prompt(s.sessionId, 'go');
  expect(r.stopReason).toBe('end_turn');
  return { results: s.model.requests[1]!.conversation!.messages.at(-1)!.toolResults, s };
}

describe('MessagePort transport', () => {
  it('carries a whole session: initialize, session/new, a prompt with streamed text', async () => {
    const s = await start(sequenceScript({ text: 'over the port' }));
    const r = await s.host.prompt(s.sessionId, 'hello');
    expect(r.stopReason).toBe('end_turn');
    expect(s.host.text()).toBe('over the port');
  });

  it('drops a port message that is not a JSON-RPC object and keeps working', async () => {
    const s = await start(sequenceScript({ text: 'still here' }));
    s.ports[1]!.postMessage('garbage');
    s.ports[1]!.postMessage({ not: 'jsonrpc' });
    const r = await s.host.prompt(s.sessionId, 'hello');
    expect(r.stopReason).toBe('end_turn');
  });

  it('drops messages that arrive after the stream closed on a port without close(), without throwing', async () => {
    const { port1, port2 } = new MessageChannel();
    // Like Electron's parentPort shim: no close(), so messages keep arriving after the stream is done.
    const stream = portStream({ postMessage: (m) => port2.postMessage(m), onMessage: (l) => port2.on('message', l) });
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    try {
      await stream.readable.cancel();
      port1.postMessage({ jsonrpc: '2.0', method: 'session/update', params: {} });
      await new Promise((r) => setTimeout(r, 50));
      expect(errors).toEqual([]);
    } finally {
      process.off('uncaughtException', onError);
      port1.close();
    }
  });
});

describe('tools', () => {
  it('edit_file replaces exactly one occurrence and writes through the host', async () => {
    const { results, s } = await runCalls([{ name: 'edit_file', input: { path: 'f.txt', old_string: 'b\n', new_string: 'B\n' } }], { 'f.txt': 'a\nb\nc\n' });
    expect(results[0]).toMatchObject({ isError: false, content: 'edited f.txt at line 2' });
    expect(await readFile(join(s.workspace, 'f.txt'), 'utf8')).toBe('a\nB\nc\n');
    expect(s.host.calls.map((c) => c.method)).toEqual(['fs/read_text_file', 'fs/write_text_file']);
    const diff = s.host.updates.map((u) => u.update).find((u) => u.sessionUpdate === 'tool_call_update' && u.status === 'completed');
    expect(JSON.stringify(diff)).toContain('"type":"diff"');
  });

  it('edit_file refuses an old_string that is not found, and writes nothing', async () => {
    const { results, s } = await runCalls([{ name: 'edit_file', input: { path: 'f.txt', old_string: 'zzz', new_string: 'y' } }], { 'f.txt': 'abc' });
    expect(results[0]!.isError).toBe(true);
    expect(results[0]!.content).toContain('old_string was not found in f.txt');
    expect(s.host.calls.some((c) => c.method === 'fs/write_text_file')).toBe(false);
  });

  it('edit_file refuses an ambiguous old_string, saying how many times it occurs', async () => {
    const { results, s } = await runCalls([{ name: 'edit_file', input: { path: 'f.txt', old_string: 'x', new_string: 'y' } }], { 'f.txt': 'x x x' });
    expect(results[0]!.content).toContain('old_string occurs 3 times in f.txt');
    expect(await readFile(join(s.workspace, 'f.txt'), 'utf8')).toBe('x x x');
  });

  it('answers invalid arguments and unknown tools with tool errors, not a crash', async () => {
    const { results, s } = await runCalls([
      { name: 'write_file', input: { path: 'a.txt' } },
      { name: 'read_file', input: { path: 'a', extra: 1 } },
      { name: 'read_file', input: 'not an object' },
      { name: 'delete_everything', input: {} },
    ]);
    expect(results.map((r) => r.isError)).toEqual([true, true, true, true]);
    expect(results[0]!.content).toMatch(/^Error: invalid arguments for write_file: content/);
    expect(results[1]!.content).toContain('extra');
    expect(results[2]!.content).toContain('invalid arguments for read_file');
    expect(results[3]!.content).toContain('unknown tool "delete_everything"');
    expect(s.host.calls).toHaveLength(0);
  });

  it('reports a host failure (missing file) as a tool error with the host message', async () => {
    const { results } = await runCalls([{ name: 'read_file', input: { path: 'missing.txt' } }]);
    expect(results[0]!.isError).toBe(true);
    expect(results[0]!.content).toMatch(/^Error: fs\/read_text_file failed: .*ENOENT/);
  });

  it('list_dir and search go through _tether/list and _tether/search', async () => {
    const { results, s } = await runCalls([
      { name: 'list_dir', input: { path: '.' } },
      { name: 'search', input: { pattern: 'needle' } },
    ], { 'one.txt': 'hay\nneedle here\n', 'two.txt': 'nothing' });
    expect(results[0]!.content.split('\n').sort()).toEqual(['one.txt (16 bytes)', 'two.txt (7 bytes)']);
    expect(results[1]!.content).toBe('one.txt:2: needle here');
    expect(s.host.calls.map((c) => c.method)).toEqual(['_tether/list', '_tether/search']);
  });

  it('stops with max_tokens once the per-prompt token budget is used up', async () => {
    const s = await start(() => ({ text: 'x', toolCalls: [{ name: 'list_dir', input: { path: '.' } }], usage: { inputTokens: 600, outputTokens: 10 } }), { maxTotalTokens: 1000 });
    const r = await s.host.prompt(s.sessionId, 'go');
    expect(r.stopReason).toBe('max_tokens');
    expect(s.model.requests).toHaveLength(2);
    expect(s.host.calls.filter((c) => c.method === '_tether/list')).toHaveLength(1);
    expect(r._meta).toMatchObject({ tether: { modelRequests: 2, inputTokens: 1200, outputTokens: 20 } });
  });

  it('refuses a second prompt while one is running', async () => {
    const s = await start(sequenceScript({ fault: 'stall', afterText: 'busy' }));
    const first = s.host.prompt(s.sessionId, 'one');
    await s.host.waitForUpdate((u) => u.update.sessionUpdate === 'agent_message_chunk');
    await expect(s.host.prompt(s.sessionId, 'two')).rejects.toThrow(/already running/);
    await s.host.cancel(s.sessionId);
    expect((await first).stopReason).toBe('cancelled');
  });
});
