// The two model dialects against the scripted model server, over real
// loopback HTTP, through the real egress gateway.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnthropicDialect } from '../../src/agent/dialects/anthropic.ts';
import { type ChatMessage, IdleGuard, type ModelClient, ModelError, type ModelRequest } from '../../src/agent/dialects/dialect.ts';
import { OpenAiDialect } from '../../src/agent/dialects/openai.ts';
import { readSse } from '../../src/agent/dialects/sse.ts';
import { TOOL_SPECS } from '../../src/agent/tools.ts';
import { EgressGateway, type ModelProvider } from '../../src/host/egress/gateway.ts';
import { type ScriptedReply, type ScriptedModelServer, startScriptedModel } from '../../src/host/scripted-model.ts';
import { ALLOW_ALL_MODEL_CALLS } from '../support/allow-all-model-calls.ts';

let model: ScriptedModelServer;
let gateway: EgressGateway;
let next: ScriptedReply = { text: 'unset' };
let sessions = 0;

beforeAll(async () => {
  model = await startScriptedModel({ script: () => next });
  gateway = await EgressGateway.start({ getApiKey: () => ['sk-', 'test-0123456789abcdefghij'].join(''), upstreamTimeoutMs: 5000 , authorize: ALLOW_ALL_MODEL_CALLS });
});
afterAll(async () => {
  await gateway.close();
  await model.close();
});

function dialect(provider: ModelProvider, stream: boolean, timeoutMs = 5000, token?: string): ModelClient {
  const s = gateway.openSession({ sessionId: `d${++sessions}`, provider, upstreamBaseUrl: model.url });
  const opts = { baseUrl: s.baseUrl, token: token ?? s.token, model: 'scripted-1', stream, timeoutMs };
  return provider === 'anthropic' ? new AnthropicDialect(opts) : new OpenAiDialect(opts);
}

function request(messages: ChatMessage[] = [{ role: 'user', text: 'hi' }], signal = new AbortController().signal): ModelRequest {
  return { system: 'You are a test.', messages, tools: TOOL_SPECS, maxTokens: 256, signal };
}

async function failure(p: Promise<unknown>): Promise<ModelError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(ModelError);
  return e as ModelError;
}

const CASES = [['anthropic', true], ['anthropic', false], ['openai', true], ['openai', false]] as const;

describe.each(CASES)('%s dialect, stream=%s', (provider, stream) => {
  it('returns text and tool calls, reassembling streamed argument deltas', async () => {
    const bigInput = { path: 'src/ünïcode/файл.ts', content: 'line\n'.repeat(200) + '"quoted" \\ backslash 🎉' };
    next = { text: 'Let me look at two files.', toolCalls: [{ name: 'read_file', input: { path: 'a.txt' } }, { name: 'write_file', input: bigInput }], usage: { inputTokens: 123, outputTokens: 45 } };
    const deltas: string[] = [];

    const r = await dialect(provider, stream).complete(request(), (d) => deltas.push(d));

    expect(r.text).toBe('Let me look at two files.');
    expect(deltas.join('')).toBe(r.text);
    if (stream) expect(deltas.length).toBeGreaterThan(1);
    expect(r.toolCalls.map((c) => c.name)).toEqual(['read_file', 'write_file']);
    expect(JSON.parse(r.toolCalls[0]!.argumentsJson)).toEqual({ path: 'a.txt' });
    expect(JSON.parse(r.toolCalls[1]!.argumentsJson)).toEqual(bigInput);
    expect(r.toolCalls[0]!.id).not.toBe(r.toolCalls[1]!.id);
    expect(r.stopReason).toBe('tool_use');
    expect(r.usage).toEqual({ inputTokens: 123, outputTokens: 45 });
  });

  it('sends the conversation (tool calls, results and errors) in a form the provider format round-trips', async () => {
    next = { text: 'ok' };
    const messages: ChatMessage[] = [
      { role: 'user', text: 'fix it' },
      { role: 'assistant', text: 'Reading.', toolCalls: [{ id: 'call_1', name: 'read_file', argumentsJson: '{"path":"a"}' }, { id: 'call_2', name: 'read_file', argumentsJson: '{"path":".env"}' }] },
      { role: 'tool', results: [{ id: 'call_1', name: 'read_file', content: 'A', isError: false }, { id: 'call_2', name: 'read_file', content: 'Error: denied by policy forbid-secrets', isError: true }] },
      { role: 'user', text: 'and then?' },
    ];

    const r = await dialect(provider, stream).complete(request(messages), () => {});

    expect(r.stopReason).toBe('end_turn');
    const conv = model.requests.at(-1)!.conversation!;
    expect(conv).toMatchObject({ dialect: provider, model: 'scripted-1', stream, system: 'You are a test.', maxTokens: 256 });
    expect(conv.tools).toEqual(TOOL_SPECS.map((t) => t.name));
    expect(conv.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'user']);
    expect(conv.messages[1]!.toolCalls).toEqual([{ id: 'call_1', name: 'read_file', input: { path: 'a' } }, { id: 'call_2', name: 'read_file', input: { path: '.env' } }]);
    expect(conv.messages[2]!.toolResults).toEqual([
      { id: 'call_1', content: 'A', isError: false },
      { id: 'call_2', content: 'Error: denied by policy forbid-secrets', isError: true },
    ]);
  });

  it('maps a reply cut at max_tokens to stopReason max_tokens', async () => {
    next = { text: 'cut', stopReason: 'max_tokens' };
    const r = await dialect(provider, stream).complete(request(), () => {});
    expect(r.stopReason).toBe('max_tokens');
  });

  it('reports a provider HTTP error with its status, type and message', async () => {
    next = { fault: 'http', status: 400, errorType: 'invalid_request_error', message: 'messages: field required' };
    const e = await failure(dialect(provider, stream).complete(request(), () => {}));
    expect(e.kind).toBe('http');
    expect(e.status).toBe(400);
    expect(e.message).toContain(`the ${provider} model request failed with HTTP 400 (invalid_request_error: messages: field required)`);
  });

  it('reports a malformed response as malformed', async () => {
    next = { fault: 'malformed' };
    const e = await failure(dialect(provider, stream).complete(request(), () => {}));
    expect(e.kind).toBe('malformed');
    expect(e.message).toMatch(/not JSON/);
  });

  it('reports a connection dropped before the response', async () => {
    next = { fault: 'drop' };
    const e = await failure(dialect(provider, stream).complete(request(), () => {}));
    // The gateway answers 502 for a dropped upstream connection.
    expect(e.kind).toBe('http');
    expect(e.status).toBe(502);
    expect(e.message).toMatch(/could not reach the .* API/);
  });

  it('gives up on a stalled provider with a timeout error', async () => {
    next = { fault: 'stall', afterText: 'partial' };
    const started = Date.now();
    const e = await failure(dialect(provider, stream, 300).complete(request(), () => {}));
    expect(e.kind).toBe('timeout');
    expect(e.message).toContain('timeout');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('stops at once when the caller cancels', async () => {
    next = { fault: 'stall', afterText: 'partial' };
    const c = new AbortController();
    const p = dialect(provider, stream).complete(request(undefined, c.signal), () => {});
    setTimeout(() => c.abort(new Error('user')), 100);
    const e = await failure(p);
    expect(e.kind).toBe('cancelled');
  });

  it('reports a wrong gateway token with the gateway message', async () => {
    next = { text: 'never' };
    const e = await failure(dialect(provider, stream, 5000, 'tether-gw-not-the-right-token-at-all').complete(request(), () => {}));
    expect(e.status).toBe(401);
    expect(e.message).toContain('invalid or revoked gateway token');
  });
});

describe('streaming-only failures', () => {
  it.each(['anthropic', 'openai'] as const)('%s: a connection cut mid-stream ends with an error, not a partial success', async (provider) => {
    next = { fault: 'drop', afterText: 'Half an ans' };
    const deltas: string[] = [];
    const e = await failure(dialect(provider, true).complete(request(), (d) => deltas.push(d)));
    expect(['connection', 'malformed']).toContain(e.kind);
    expect(deltas.join('')).toBe('Half an ans');
  });
});

describe('SSE reader', () => {
  function response(parts: (string | Uint8Array)[]): Response {
    const enc = new TextEncoder();
    return new Response(new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(typeof p === 'string' ? enc.encode(p) : p);
        c.close();
      },
    }));
  }

  it('handles CRLF, comments, multi-line data and a UTF-8 character split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: {"t":"é"}\n\n');
    const split = bytes.indexOf(0xc3) + 1;
    const events: { event: string | undefined; data: string }[] = [];
    const guard = new IdleGuard(5000, new AbortController().signal);
    for await (const ev of readSse(response([': comment\r\nevent: a\r\ndata: 1\r\ndata: 2\r\n\r\n', bytes.slice(0, split), bytes.slice(split), 'data: last']), guard)) events.push(ev);
    expect(events).toEqual([{ event: 'a', data: '1\n2' }, { event: undefined, data: '{"t":"é"}' }, { event: undefined, data: 'last' }]);
  });
});
