// The egress gateway over real loopback HTTP, in front of the scripted model
// server (which records exactly what reached the "provider").

import { afterEach, describe, expect, it } from 'vitest';
import { EgressGateway, type EgressEvent, type EgressGatewayOptions, type EgressRequestInfo, type GatewaySessionOptions, upstreamEndpoint } from '../../../src/host/egress/gateway.ts';
import { type ScriptedReply, type ScriptedModelServer, startScriptedModel } from '../../../src/host/scripted-model.ts';
import { ALLOW_ALL_MODEL_CALLS } from '../../support/allow-all-model-calls.ts';

// Assembled at run time so this file does not itself look like a leak to scanners (this one included).
const KEY = ['sk-ant-', 'api03-realkey-0123456789abcdefghijklmnop'].join('');
const AWS_KEY = ['AKIA', 'IOSFODNN7EXAMPLE'].join('');
const PEM = ['-----BEGIN OPENSSH ', 'PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH ', 'PRIVATE KEY-----'].join('');

let model: ScriptedModelServer | undefined;
let gateway: EgressGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await model?.close();
  gateway = undefined;
  model = undefined;
});

async function setup(reply: ScriptedReply | ((h: Record<string, unknown>) => ScriptedReply) = { text: 'hello' }, options: EgressGatewayOptions = {}, session: Partial<GatewaySessionOptions> = {}) {
  model = await startScriptedModel({ script: (_c, req) => (typeof reply === 'function' ? reply(req.headers) : reply) });
  gateway = await EgressGateway.start({ getApiKey: () => KEY, authorize: ALLOW_ALL_MODEL_CALLS, ...options });
  const s = gateway.openSession({ sessionId: 's1', provider: 'anthropic', upstreamBaseUrl: model.url, ...session });
  return { model, gateway, s };
}

function anthropicBody(text = 'hi', extra: Record<string, unknown> = {}) {
  return { model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: text }], ...extra };
}

function post(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), ...(signal ? { signal } : {}) });
}

describe('egress gateway: session token', () => {
  it('refuses a request without a token with 401 and forwards nothing', async () => {
    const { s, model } = await setup();
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody());
    expect(r.status).toBe(401);
    expect((await r.json()).error.message).toContain('missing gateway token');
    expect(model.requests).toHaveLength(0);
  });

  it('refuses a wrong token and a revoked token with 401', async () => {
    const { s, gateway, model } = await setup();
    const wrong = await post(`${s.baseUrl}/v1/messages`, anthropicBody(), { authorization: `Bearer ${s.token.slice(0, -1)}x` });
    expect(wrong.status).toBe(401);
    gateway.closeSession('s1');
    const revoked = await post(`${s.baseUrl}/v1/messages`, anthropicBody(), { authorization: `Bearer ${s.token}` });
    expect(revoked.status).toBe(401);
    expect(model.requests).toHaveLength(0);
  });

  it('accepts the token as Bearer or as x-api-key (for third-party SDKs)', async () => {
    const { s } = await setup();
    expect((await post(`${s.baseUrl}/v1/messages`, anthropicBody(), { authorization: `Bearer ${s.token}` })).status).toBe(200);
    expect((await post(`${s.baseUrl}/v1/messages`, anthropicBody(), { 'x-api-key': s.token })).status).toBe(200);
  });

  it('keeps sessions apart: one session token does not open another session', async () => {
    const { s, gateway } = await setup();
    const other = gateway.openSession({ sessionId: 's2', provider: 'openai', upstreamBaseUrl: model!.url });
    const r = await post(`${s.baseUrl}/v1/chat/completions`, { model: 'm', messages: [] }, { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(403);
    expect(other.token).not.toBe(s.token);
  });
});

describe('egress gateway: endpoint allowlist', () => {
  it.each([
    ['GET', '/v1/messages'],
    ['POST', '/v1/models'],
    ['POST', '/v1/chat/completions'],
    ['POST', '/v1/messages/count_tokens'],
    ['POST', '/v1/messages/../../admin'],
    ['POST', '/'],
  ])('refuses %s %s on an anthropic session with 403 and a reason', async (method, path) => {
    const { s, model } = await setup();
    const r = await fetch(`${s.baseUrl}${path}`, { method, headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: JSON.stringify(anthropicBody()) } : {}) });
    expect(r.status).toBe(403);
    expect((await r.json()).error.message).toContain('forwards only POST /v1/messages');
    expect(model.requests).toHaveLength(0);
  });

  it.each([
    ['http://api.example.com', /https/],
    ['https://user:pw@api.example.com', /credentials/],
    ['https://api.example.com/v1?x=1', /query/],
    ['ftp://127.0.0.1', /https/],
  ])('refuses to open a session with upstream %s', async (url, message) => {
    gateway = await EgressGateway.start();
    expect(() => gateway!.openSession({ sessionId: 'x', provider: 'openai', upstreamBaseUrl: url })).toThrow(message);
  });

  it('refuses every request when no authorize hook is configured (fail closed)', async () => {
    gateway = await EgressGateway.start({ getApiKey: () => KEY });
    const s = gateway.openSession({ sessionId: 'nohook', provider: 'openai', upstreamBaseUrl: 'http://127.0.0.1:9/v1' });
    const res = await fetch(`${s.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/no authorization hook/);
  });

  it('maps base URLs with and without /v1 onto the dialect endpoint', () => {
    expect(upstreamEndpoint('https://api.anthropic.com', 'anthropic')).toBe('https://api.anthropic.com/v1/messages');
    expect(upstreamEndpoint('https://api.openai.com/v1', 'openai')).toBe('https://api.openai.com/v1/chat/completions');
    expect(upstreamEndpoint('http://127.0.0.1:11434/v1/', 'openai')).toBe('http://127.0.0.1:11434/v1/chat/completions');
  });
});

describe('egress gateway: credentials', () => {
  it('injects the anthropic key and strips every agent credential and unknown header', async () => {
    const { s, model } = await setup();
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody(), {
      authorization: `Bearer ${s.token}`, cookie: 'session=1', 'x-custom': 'leak', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'anthropic-beta': 'tools-2024',
    });
    expect(r.status).toBe(200);
    const h = model.requests[0]!.headers;
    expect(h['x-api-key']).toBe(KEY);
    expect(h['anthropic-version']).toBe('2023-06-01');
    expect(h['anthropic-beta']).toBe('tools-2024');
    expect(h['authorization']).toBeUndefined();
    expect(h['cookie']).toBeUndefined();
    expect(h['x-custom']).toBeUndefined();
    expect(h['traceparent']).toBeUndefined();
    expect(JSON.stringify(h)).not.toContain(s.token);
  });

  it('injects the openai key as a Bearer token', async () => {
    const { model } = await setup();
    const s = gateway!.openSession({ sessionId: 'o', provider: 'openai', upstreamBaseUrl: model.url });
    await post(`${s.baseUrl}/v1/chat/completions`, { model: 'gpt', messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': s.token });
    expect(model.requests[0]!.headers['authorization']).toBe(`Bearer ${KEY}`);
    expect(model.requests[0]!.headers['x-api-key']).toBeUndefined();
  });

  it('refuses with 503 naming the variable when no key is configured', async () => {
    const { s, model } = await setup(undefined, { getApiKey: () => undefined });
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody(), { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(503);
    expect((await r.json()).error.message).toContain('ANTHROPIC_API_KEY');
    expect(model.requests).toHaveLength(0);
  });

  it('forwards without a key to a local server when the session does not require one', async () => {
    const { model } = await setup(undefined, { getApiKey: () => undefined });
    const s = gateway!.openSession({ sessionId: 'local', provider: 'openai', upstreamBaseUrl: `${model.url}/v1`, requireApiKey: false });
    const r = await post(`${s.baseUrl}/v1/chat/completions`, { model: 'llama', messages: [] }, { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(200);
    expect(model.requests[0]!.headers['authorization']).toBeUndefined();
  });

  it('scrubs the key from an upstream error body that echoes it', async () => {
    const { s } = await setup((h) => ({ fault: 'http', status: 401, message: `invalid x-api-key ${String(h['x-api-key'])}` }));
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody(), { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(401);
    const text = await r.text();
    expect(text).not.toContain(KEY);
    expect(text).toContain('[REDACTED:api-key]');
  });
});

describe('egress gateway: outbound secrets', () => {
  const leaky = () => anthropicBody(`here is the config: aws_access_key_id = ${AWS_KEY}\n${PEM}`);

  it('blocks a request carrying secrets with 403 naming what and where, without echoing them', async () => {
    const { s, model } = await setup();
    const r = await post(`${s.baseUrl}/v1/messages`, leaky(), { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(403);
    const body = await r.text();
    expect(body).toContain('an AWS access key id');
    expect(body).toContain('a private key block');
    expect(body).toContain('messages[0].content');
    expect(body).not.toContain(AWS_KEY);
    expect(body).not.toContain('b3BlbnNzaC1rZXktdjEAAAAA');
    expect(model.requests).toHaveLength(0);
    expect(gateway!.metrics('s1')).toMatchObject({ requests: 1, rejected: 1, forwarded: 0 });
  });

  it('in redact mode forwards the request with the secrets replaced', async () => {
    const infos: EgressRequestInfo[] = [];
    const { s, model } = await setup(undefined, { secrets: 'redact', authorize: async (i) => { infos.push(i); } });
    const r = await post(`${s.baseUrl}/v1/messages`, leaky(), { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(200);
    const sent = model.requests[0]!.rawBody;
    expect(sent).not.toContain(AWS_KEY);
    expect(sent).not.toContain('b3BlbnNzaC1rZXktdjEAAAAA');
    expect(sent).toContain('[REDACTED:aws-access-key-id]');
    expect(sent).toContain('[REDACTED:private-key]');
    expect(infos[0]!.redactions).toBe(2);
    expect(infos[0]!.summary).toContain('2 secrets redacted');
  });
});

describe('egress gateway: authorize hook', () => {
  it('passes url, method, bytes and a summary, and forwards when it resolves', async () => {
    const infos: EgressRequestInfo[] = [];
    const { s, model } = await setup(undefined, { authorize: async (i) => { infos.push(i); } });
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await post(`${s.baseUrl}/v1/messages`, anthropicBody('x', { stream: true }), { authorization: `Bearer ${s.token}`, traceparent: tp });
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({ sessionId: 's1', provider: 'anthropic', url: `${model.url}/v1/messages`, method: 'POST', model: 'claude-test', traceparent: tp });
    expect(infos[0]!.bytes).toBe(Buffer.byteLength(model.requests[0]!.rawBody));
    expect(infos[0]!.summary).toMatch(/^anthropic claude-test: 1 message, 0 tools, \d+ B, streaming$/);
  });

  it('refuses with 403 and the hook message when it throws, forwarding nothing', async () => {
    const { s, model } = await setup(undefined, {}, { authorize: async () => { throw new Error('denied by policy forbid-model-egress'); } });
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody(), { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(403);
    expect((await r.json()).error.message).toBe('the model request was refused: denied by policy forbid-model-egress');
    expect(model.requests).toHaveLength(0);
  });
});

describe('egress gateway: agent hang-up', () => {
  it('aborts the authorize signal when the agent disconnects during a pending decision, forwarding nothing', async () => {
    let hookSignal: AbortSignal | undefined;
    const { s, model } = await setup(undefined, {
      authorize: (i) => new Promise<void>((resolve) => {
        hookSignal = i.signal;
        i.signal.addEventListener('abort', () => resolve());
      }),
    });
    const agent = new AbortController();
    const p = post(`${s.baseUrl}/v1/messages`, anthropicBody(), { authorization: `Bearer ${s.token}` }, agent.signal);
    await expect.poll(() => hookSignal).toBeDefined();
    agent.abort();
    await expect(p).rejects.toThrow();
    await expect.poll(() => hookSignal!.aborted).toBe(true);
    expect(model.requests).toHaveLength(0);
  });

  it('records a stream the agent hangs up on as cancelled, not as an upstream error', async () => {
    const { s } = await setup({ fault: 'stall', afterText: 'partial' });
    const events: EgressEvent[] = [];
    gateway!.onDidForward((e) => events.push(e));
    const agent = new AbortController();
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody('x', { stream: true }), { authorization: `Bearer ${s.token}` }, agent.signal);
    const reader = r.body!.getReader();
    await reader.read();
    agent.abort();
    await expect.poll(() => events.length).toBe(1);
    expect(events[0]!.outcome).toBe('cancelled');
    expect(gateway!.metrics('s1')!.upstreamErrors).toBe(0);
  });
});

describe('egress gateway: limits and timeouts', () => {
  it('refuses a body over the cap with 413', async () => {
    const { s, model } = await setup(undefined, { maxRequestBytes: 1000 });
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody('x'.repeat(5000)), { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(413);
    expect(model.requests).toHaveLength(0);
  });

  it('refuses a body that is not a JSON object with 400', async () => {
    const { s } = await setup();
    expect((await post(`${s.baseUrl}/v1/messages`, 'not json', { authorization: `Bearer ${s.token}` })).status).toBe(400);
    expect((await post(`${s.baseUrl}/v1/messages`, '[1]', { authorization: `Bearer ${s.token}` })).status).toBe(400);
  });

  it('answers 504 when the provider does not answer in time', async () => {
    const { s } = await setup({ fault: 'stall' }, { upstreamTimeoutMs: 200 });
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody(), { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(504);
    expect((await r.json()).error.message).toContain('did not answer within');
    expect(gateway!.metrics('s1')!.upstreamErrors).toBe(1);
  });

  it('cuts the connection when a stream stalls past the idle timeout', async () => {
    const { s } = await setup({ fault: 'stall', afterText: 'so far' }, { idleTimeoutMs: 200 });
    const events: EgressEvent[] = [];
    gateway!.onDidForward((e) => events.push(e));
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody('x', { stream: true }), { authorization: `Bearer ${s.token}` });
    expect(r.status).toBe(200);
    await expect(r.text()).rejects.toThrow();
    await expect.poll(() => events.length).toBe(1);
    expect(events[0]).toMatchObject({ outcome: 'upstream_error', reason: expect.stringContaining('stalled') });
  });

  it('streams unbuffered: the first event arrives while the provider is still sending', async () => {
    const { s } = await setup({ fault: 'stall', afterText: 'early words' });
    const r = await post(`${s.baseUrl}/v1/messages`, anthropicBody('x', { stream: true }), { authorization: `Bearer ${s.token}` });
    const reader = r.body!.getReader();
    let got = '';
    while (!got.includes('text_delta')) {
      const { value, done } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
    expect(got).toContain('"text_delta","text":"earl"');
    await reader.cancel();
  });
});

describe('egress gateway: metering', () => {
  it.each([
    ['anthropic', true], ['anthropic', false], ['openai', true], ['openai', false],
  ] as const)('%s stream=%s: meters tokens from usage, bytes and latency per session', async (provider, stream) => {
    const { model } = await setup({ text: 'metered reply', usage: { inputTokens: 321, outputTokens: 54 } });
    const s = gateway!.openSession({ sessionId: `m-${provider}-${stream}`, provider, upstreamBaseUrl: model.url });
    const path = provider === 'anthropic' ? '/v1/messages' : '/v1/chat/completions';
    const body = provider === 'anthropic'
      ? anthropicBody('count me', { stream })
      : { model: 'gpt', messages: [{ role: 'user', content: 'count me' }], stream, ...(stream ? { stream_options: { include_usage: true } } : {}) };
    for (let i = 0; i < 2; i++) {
      const r = await post(`${s.baseUrl}${path}`, body, { authorization: `Bearer ${s.token}` });
      await r.text();
    }
    const m = gateway!.metrics(s.sessionId)!;
    expect(m).toMatchObject({ requests: 2, forwarded: 2, rejected: 0, upstreamErrors: 0, inputTokens: 642, outputTokens: 108 });
    expect(m.bytesSent).toBe(2 * Buffer.byteLength(JSON.stringify(body)));
    expect(m.bytesReceived).toBeGreaterThan(100);
    expect(m.latencyMsTotal).toBeGreaterThan(0);
    expect(m.latencyMsMax).toBeGreaterThanOrEqual(m.lastLatencyMs);
    expect(gateway!.metrics('s1')!.requests).toBe(0);
  });
});
