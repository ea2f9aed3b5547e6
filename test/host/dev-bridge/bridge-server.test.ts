// The dev bridge over real loopback HTTP and WebSocket: who it lets in, what
// it serves, and that it carries the contract both ways.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Emitter } from '../../../src/common/emitter.ts';
import { BRIDGE_SUBPROTOCOL, BRIDGE_TOKEN_PREFIX, INVOKE, type ApiHandlers } from '../../../src/common/ipc-contract.ts';
import { startBridgeServer, type BridgeServer } from '../../../src/host/dev-bridge/bridge-server.ts';

let dir: string;
let bridge: BridgeServer;
const events = new Emitter<{ name: string; payload: unknown }>();
const revoked: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-bridge-'));
  await mkdir(join(dir, 'dist', 'assets'), { recursive: true });
  await writeFile(join(dir, 'dist', 'index.html'), '<!doctype html><html><head><title>t</title></head><body></body></html>');
  await writeFile(join(dir, 'dist', 'assets', 'a.js'), 'export {}');
  await writeFile(join(dir, 'secret'), 'nope');
  const fail = async () => {
    throw new Error('not in this test');
  };
  const handlers = Object.fromEntries(Object.keys(INVOKE).map((k) => [k, fail])) as unknown as ApiHandlers;
  bridge = await startBridgeServer({
    service: { ...handlers, revokeGrant: async ({ id }) => (revoked.push(id), { revoked: true }), onDidEmit: events.event },
    staticRoot: join(dir, 'dist'),
  });
});
afterAll(async () => {
  await bridge.close();
  await rm(dir, { recursive: true, force: true });
});

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: bridge.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function connect(opts: { token?: string; origin?: string; host?: string; protocols?: string[] } = {}): Promise<WebSocket> {
  const protocols = opts.protocols ?? [BRIDGE_SUBPROTOCOL, `${BRIDGE_TOKEN_PREFIX}${opts.token ?? bridge.token}`];
  const ws = new WebSocket(`ws://127.0.0.1:${bridge.port}/bridge`, protocols, {
    headers: { Origin: opts.origin ?? bridge.origin, ...(opts.host ? { Host: opts.host } : {}) },
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

describe('dev bridge', () => {
  it('listens on 127.0.0.1 only', () => {
    expect(bridge.pageUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}$/);
  });

  it('serves index.html only with the token, with the bridge address in it and a CSP that allows only that socket', async () => {
    expect((await get('/')).status).toBe(401);
    expect((await get('/?token=wrong')).status).toBe(401);
    const page = await get(`/?token=${bridge.token}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(`<meta name="tether-bridge" content="ws://127.0.0.1:${bridge.port}/bridge">`);
    expect(page.body).toContain(`content="${bridge.token}"`);
    expect(String(page.headers['content-security-policy'])).toContain(`connect-src ws://127.0.0.1:${bridge.port}`);
    expect(String(page.headers['content-security-policy'])).toContain("script-src 'self'");
  });

  it('refuses a request whose Host is not the loopback address (DNS rebinding)', async () => {
    expect((await get(`/?token=${bridge.token}`, { Host: `evil.example:${bridge.port}` })).status).toBe(421);
  });

  it('serves assets but nothing outside the renderer folder', async () => {
    expect((await get('/assets/a.js')).status).toBe(200);
    expect((await get('/../secret')).status).toBe(404);
    expect((await get('/assets/%2e%2e/%2e%2e/secret')).status).toBe(404);
  });

  it.each<[string, Parameters<typeof connect>[0], string]>([
    ['no token', { protocols: [BRIDGE_SUBPROTOCOL] }, 'HTTP 401'],
    ['a wrong token', { token: 'a'.repeat(64) }, 'HTTP 401'],
    ['a token without the bridge subprotocol', { protocols: [`${BRIDGE_TOKEN_PREFIX}TOKEN`] }, 'HTTP 401'],
    ['a foreign Origin', { origin: 'https://evil.example' }, 'HTTP 403'],
    ['a foreign Host', { host: 'evil.example' }, 'HTTP 421'],
  ])('refuses a WebSocket with %s', async (_what, opts, error) => {
    const o = { ...opts };
    if (o.protocols) o.protocols = o.protocols.map((p) => p.replace('TOKEN', bridge.token));
    await expect(connect(o)).rejects.toThrow(error);
    expect(bridge.clients()).toBe(0);
  });

  it('carries invokes and events for a client with the token', async () => {
    const ws = await connect();
    const messages: unknown[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(String(d))));
    ws.send(JSON.stringify({ t: 'invoke', id: 1, name: 'revokeGrant', args: { id: 'g-1' } }));
    ws.send(JSON.stringify({ t: 'invoke', id: 2, name: 'revokeGrant', args: { id: 7 } }));
    ws.send(JSON.stringify({ t: 'invoke', id: 3, name: 'dropDatabase', args: {} }));
    await new Promise((r) => setTimeout(r, 100));
    events.fire({ name: 'sessionStatus', payload: { state: 'idle' } });
    await new Promise((r) => setTimeout(r, 100));
    expect(messages).toContainEqual({ t: 'result', id: 1, envelope: { ok: true, value: { revoked: true } } });
    expect(messages).toContainEqual({ t: 'result', id: 2, envelope: { ok: false, error: expect.objectContaining({ code: 'invalid-args' }) } });
    expect(messages).toContainEqual({ t: 'result', id: 3, envelope: { ok: false, error: expect.objectContaining({ code: 'unknown-channel' }) } });
    expect(messages).toContainEqual({ t: 'event', name: 'sessionStatus', payload: { state: 'idle' } });
    expect(revoked).toEqual(['g-1']);
    ws.close();
  });

  it('closes a connection that sends something other than a bridge message', async () => {
    const ws = await connect();
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send('{"hello": "there"}');
    expect(await closed).toBe(1008);
  });
});
