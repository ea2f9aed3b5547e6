// The scripted model server over real loopback HTTP (raw fetch, no dialect
// code in between), its normalisers, and the demo script.

import { afterEach, describe, expect, it } from 'vitest';
import {
  createDemoScript, DEMO_LABEL, normaliseAnthropic, normaliseOpenAi, type ScriptedConversation, type ScriptedMessage,
  type ScriptedModelServer, type ScriptedReply, sequenceScript, startScriptedModel, type ScriptedTextReply,
} from '../../src/host/scripted-model.ts';

let server: ScriptedModelServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(reply: ScriptedReply) {
  server = await startScriptedModel({ script: () => reply });
  return server;
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

const anthropic = (extra: Record<string, unknown> = {}) => ({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], ...extra });
const openai = (extra: Record<string, unknown> = {}) => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('scripted model server', () => {
  it('answers an Anthropic Messages request with a message holding text and tool_use blocks', async () => {
    const s = await serve({ text: 'hello', toolCalls: [{ name: 'read_file', input: { path: 'a' } }], usage: { inputTokens: 7, outputTokens: 3 } });
    const r = await post(`${s.url}/v1/messages`, anthropic(), { 'x-api-key': 'k1' });
    const body = await r.json();
    expect(body).toMatchObject({
      type: 'message', role: 'assistant', stop_reason: 'tool_use', usage: { input_tokens: 7, output_tokens: 3 },
      content: [{ type: 'text', text: 'hello' }, { type: 'tool_use', name: 'read_file', input: { path: 'a' } }],
    });
    expect(s.requests[0]!.headers['x-api-key']).toBe('k1');
    expect(s.requests[0]!.dialect).toBe('anthropic');
  });

  it('answers an OpenAI Chat Completions request with a choice holding content and tool_calls', async () => {
    const s = await serve({ text: 'hello', toolCalls: [{ name: 'list_dir', input: { path: '.' } }] });
    const body = await (await post(`${s.url}/v1/chat/completions`, openai(), { authorization: 'Bearer k2' })).json();
    expect(body.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: { role: 'assistant', content: 'hello', tool_calls: [{ type: 'function', function: { name: 'list_dir', arguments: '{"path":"."}' } }] },
    });
    expect(s.requests[0]!.headers['authorization']).toBe('Bearer k2');
  });

  it('streams Anthropic events in order, ending with message_stop', async () => {
    const s = await serve({ text: 'abcdef', toolCalls: [{ name: 'read_file', input: { path: 'p' } }] });
    const text = await (await post(`${s.url}/v1/messages`, anthropic({ stream: true }))).text();
    const events = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(events[0]).toBe('message_start');
    expect(events.at(-1)).toBe('message_stop');
    expect(events.filter((e) => e === 'content_block_start')).toHaveLength(2);
    expect(events.filter((e) => e === 'content_block_delta').length).toBeGreaterThan(2);
  });

  it('streams OpenAI chunks ending with [DONE], and a usage chunk only when asked', async () => {
    const s = await serve({ text: 'abc' });
    const plain = await (await post(`${s.url}/v1/chat/completions`, openai({ stream: true }))).text();
    const withUsage = await (await post(`${s.url}/v1/chat/completions`, openai({ stream: true, stream_options: { include_usage: true } }))).text();
    expect(plain.trim().endsWith('data: [DONE]')).toBe(true);
    expect(plain).not.toContain('"usage"');
    expect(withUsage).toContain('"usage"');
  });

  it('answers HTTP faults in each provider error shape', async () => {
    const s = await serve({ fault: 'http', status: 429, message: 'slow down' });
    const a = await post(`${s.url}/v1/messages`, anthropic());
    expect(a.status).toBe(429);
    expect(await a.json()).toEqual({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } });
    const o = await post(`${s.url}/v1/chat/completions`, openai());
    expect(await o.json()).toEqual({ error: { message: 'slow down', type: 'rate_limit_error', code: null } });
  });

  it('answers an unknown path with 404 and an invalid body with 400, recording both', async () => {
    const s = await serve({ text: 'x' });
    expect((await post(`${s.url}/v1/embeddings`, {})).status).toBe(404);
    expect((await post(`${s.url}/v1/messages`, { model: 'm', messages: [] })).status).toBe(400);
    expect(s.requests.map((r) => r.path)).toEqual(['/v1/embeddings', '/v1/messages']);
  });

  it('drops the connection on a drop fault', async () => {
    const s = await serve({ fault: 'drop' });
    await expect(post(`${s.url}/v1/messages`, anthropic())).rejects.toThrow();
  });

  it('never answers on a stall fault', async () => {
    const s = await serve({ fault: 'stall' });
    await expect(post(`${s.url}/v1/messages`, anthropic(), {}, AbortSignal.timeout(300))).rejects.toThrow(/abort|timeout/i);
  });
});

describe('normalisers', () => {
  it('bring equivalent Anthropic and OpenAI conversations to the same shape', () => {
    const a = normaliseAnthropic({
      model: 'm', max_tokens: 5, system: [{ type: 'text', text: 'sys' }],
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: [{ type: 'text', text: 't' }, { type: 'tool_use', id: 'c1', name: 'read_file', input: { path: 'a' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c1', content: [{ type: 'text', text: 'Error: denied' }], is_error: true }] },
      ],
    });
    const o = normaliseOpenAi({
      model: 'm', max_tokens: 5,
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 't', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a"}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'Error: denied' },
      ],
    });
    const strip = (c: ScriptedConversation) => ({ ...c, dialect: undefined });
    expect(strip(a)).toEqual(strip(o));
    expect(a.messages[2]!.toolResults[0]!.isError).toBe(true);
  });
});

function conv(messages: ScriptedMessage[]): ScriptedConversation {
  return { dialect: 'openai', model: 'm', stream: false, system: '', messages, tools: [], maxTokens: undefined };
}
const user = (text: string): ScriptedMessage => ({ role: 'user', text, toolCalls: [], toolResults: [] });
const assistant = (name: string, input: unknown, id: string): ScriptedMessage => ({ role: 'assistant', text: '', toolCalls: [{ id, name, input }], toolResults: [] });
const result = (id: string, content: string, isError = false): ScriptedMessage => ({ role: 'tool', text: '', toolCalls: [], toolResults: [{ id, content, isError }] });

describe('scripts', () => {
  it('sequenceScript replies by assistant turn and repeats the last', async () => {
    const s = sequenceScript({ text: 'one' }, { text: 'two' });
    const reply = (c: ScriptedConversation) => (s(c, undefined as never) as ScriptedTextReply).text;
    expect(reply(conv([user('a')]))).toBe('one');
    expect(reply(conv([user('a'), { ...user('x'), role: 'assistant' }, user('b')]))).toBe('two');
    expect(reply(conv([user('a'), { ...user('x'), role: 'assistant' }, { ...user('y'), role: 'assistant' }]))).toBe('two');
  });

  it('the demo script adapts to a failed read and a denied write, and labels itself', async () => {
    const demo = createDemoScript();
    const step = (c: ScriptedConversation) => demo(c, undefined as never) as ScriptedTextReply;

    const first = step(conv([user('go')]));
    expect(first.text).toContain(DEMO_LABEL);
    expect(first.toolCalls).toEqual([{ name: 'read_file', input: { path: 'README.md' } }]);

    const afterRead = step(conv([user('go'), assistant('read_file', { path: 'README.md' }, 'c1'), result('c1', 'Error: fs/read_text_file failed: ENOENT', true)]));
    expect(afterRead.text).toContain('could not read README.md');
    expect(afterRead.toolCalls![0]!.name).toBe('write_file');

    const history = [user('go'), assistant('read_file', { path: 'README.md' }, 'c1'), result('c1', 'Error: ENOENT', true),
      assistant('write_file', { path: 'NOTES.md', content: 'x' }, 'c2'), result('c2', 'Error: denied (fs/write_text_file): denied by the user: the user denied it', true)];
    const afterWrite = step(conv(history));
    expect(afterWrite.text).toContain('Writing NOTES.md did not happen');
    expect(afterWrite.toolCalls).toEqual([{ name: 'read_file', input: { path: '.env' } }]);

    const summary = step(conv([...history, assistant('read_file', { path: '.env' }, 'c3'), result('c3', 'Error: denied by policy forbid-secrets: .env', true)]));
    expect(summary.toolCalls).toBeUndefined();
    expect(summary.text).toContain('read README.md: ENOENT');
    expect(summary.text).toContain('write NOTES.md: denied (fs/write_text_file): denied by the user');
    expect(summary.text).toContain('read .env: denied by policy forbid-secrets');
  });
});
