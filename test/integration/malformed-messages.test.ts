// A hostile agent speaking garbage: every bad message gets a JSON-RPC error,
// nothing happens, and the host keeps serving. The agent side here is the test
// writing raw bytes into the host's real transport (framing, SDK dispatch,
// schema validation, broker, Cedar, audit).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAcpHost } from '../../src/host/acp-host.ts';
import { ndjsonStream } from '../../src/host/acp-transport.ts';
import { JsonlAuditWriter } from '../../src/host/audit/jsonl-audit-writer.ts';
import { Broker } from '../../src/host/broker.ts';
import { FixedConsent, GrantStore } from '../../src/host/consent.ts';
import { FsEffects } from '../../src/host/fs-effects.ts';
import { CedarPolicyEngine } from '../../src/host/policy/cedar-policy-engine.ts';
import { WorkspaceJail } from '../../src/host/workspace-jail.ts';

const toHost = new PassThrough();
const fromHost = new PassThrough();
const responses: Record<string, unknown>[] = [];
let waiters: (() => void)[] = [];
let audit: JsonlAuditWriter;
let ws: string;

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'tether-ws-'));
  await writeFile(join(ws, 'hello.txt'), 'hi there');
  const jail = await WorkspaceJail.open(ws);
  const policy = await CedarPolicyEngine.load();
  audit = await JsonlAuditWriter.open(await mkdtemp(join(tmpdir(), 'tether-audit-')));
  const broker = new Broker({ policy, consent: new FixedConsent('deny'), grants: new GrantStore(), audit, actor: { user: 't', device: 'd', agent: 'evil' }, consentTimeoutMs: 1000 });
  const app = createAcpHost({ broker, policy, jail, fs: new FsEffects(jail), sessions: new Set(['S1']) });
  app.connect(ndjsonStream(toHost, fromHost, { maxMessageBytes: 64 * 1024 }));
  let buf = '';
  fromHost.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
      responses.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
      waiters.forEach((w) => w());
      waiters = [];
    }
  });
});
afterAll(() => audit.close());

async function send(line: string): Promise<Record<string, unknown>> {
  const before = responses.length;
  toHost.write(line + '\n');
  while (responses.length === before) await new Promise<void>((r) => waiters.push(r));
  return responses.at(-1)!;
}
const req = (id: number, method: string, params: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
const code = (r: Record<string, unknown>) => (r['error'] as { code: number } | undefined)?.code;

describe('malformed agent messages', () => {
  it.each([
    ['not JSON', -32700, 'this is not json'],
    ['a truncated object', -32700, '{"jsonrpc":"2.0","id":1,'],
    ['a message over the size limit', -32600, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'fs/read_text_file', params: { sessionId: 'S1', path: 'x'.repeat(70_000) } })],
    ['a JSON-RPC batch', -32600, '[1,2,3]'],
    ['an unknown method', -32601, req(3, '_tether/format_disk', {})],
    ['a path of the wrong type', -32602, req(4, 'fs/read_text_file', { sessionId: 'S1', path: 42 })],
    ['a session the host does not know', -32602, req(5, 'fs/read_text_file', { sessionId: 'nope', path: 'hello.txt' })],
    ['an extension call without its path', -32602, req(6, '_tether/list', { sessionId: 'S1' })],
    ['a path longer than the limit', -32602, req(7, '_tether/stat', { sessionId: 'S1', path: 'a/'.repeat(2100) })],
    ['a permission request (the host decides, not the agent)', -32601, req(8, 'session/request_permission', { sessionId: 'S1', toolCall: { toolCallId: 't' }, options: [] })],
  ])('%s gets error %i', async (_name, expected, line) => {
    expect(code(await send(line))).toBe(expected);
  });

  it('keeps serving valid requests after all of that', async () => {
    const r = await send(req(100, 'fs/read_text_file', { sessionId: 'S1', path: 'hello.txt' }));
    expect(r['result']).toEqual({ content: 'hi there' });
  });

  it('a denied request is a -32001 error naming the rule', async () => {
    const r = await send(req(101, 'fs/read_text_file', { sessionId: 'S1', path: '/etc/passwd' }));
    expect(code(r)).toBe(-32001);
    expect((r['error'] as { data: { policyIds: string[] } }).data.policyIds).toEqual(['outside-workspace']);
  });
});
