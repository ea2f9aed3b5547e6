// The host's port transport over a real Node MessageChannel (the same
// structured-clone semantics as Electron's utilityProcess port).
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { messagePortStream, type MessagePortLike } from '../../src/main/message-port-stream.ts';

function pair(): { host: MessagePortLike; agent: MessagePort; close: () => void } {
  const { port1, port2 } = new MessageChannel();
  let closed!: () => void;
  const closedP = new Promise<void>((r) => (closed = r));
  port1.on('close', () => closed());
  return {
    host: {
      post: (m) => port1.postMessage(m),
      onMessage: (l) => {
        port1.on('message', l);
        return () => port1.off('message', l);
      },
      closed: closedP,
    },
    agent: port2,
    close: () => port2.close(),
  };
}

const next = (p: MessagePort) => new Promise<unknown>((r) => p.once('message', r));

describe('message port stream', () => {
  it('carries JSON-RPC objects both ways', async () => {
    const { host, agent, close } = pair();
    const s = messagePortStream(host);
    const reader = s.readable.getReader();
    agent.postMessage({ jsonrpc: '2.0', id: 1, method: 'fs/read_text_file', params: { sessionId: 's', path: 'a' } });
    expect((await reader.read()).value).toMatchObject({ id: 1, method: 'fs/read_text_file' });
    const writer = s.writable.getWriter();
    const got = next(agent);
    await writer.write({ jsonrpc: '2.0', id: 1, result: { content: 'x' } } as never);
    expect(await got).toEqual({ jsonrpc: '2.0', id: 1, result: { content: 'x' } });
    close();
  });

  it.each([
    ['a string', '{"jsonrpc":"2.0","id":1,"method":"x"}'],
    ['an array', [{ jsonrpc: '2.0', id: 1, method: 'x' }]],
    ['an object without jsonrpc 2.0', { id: 1, method: 'x' }],
    ['null', null],
  ])('answers %s with a JSON-RPC error and keeps the connection', async (_what, bad) => {
    const issues: string[] = [];
    const { host, agent, close } = pair();
    const s = messagePortStream(host, { onIssue: (i) => issues.push(i.kind) });
    const reader = s.readable.getReader();
    const reply = next(agent);
    agent.postMessage(bad);
    expect(await reply).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600 } });
    agent.postMessage({ jsonrpc: '2.0', id: 2, method: 'ok' });
    expect((await reader.read()).value).toMatchObject({ id: 2 });
    expect(issues).toEqual(['malformed']);
    close();
  });

  it('refuses a message over the size limit', async () => {
    const issues: { kind: string; bytes: number }[] = [];
    const { host, agent, close } = pair();
    const s = messagePortStream(host, { maxMessageBytes: 1000, onIssue: (i) => issues.push(i) });
    const reader = s.readable.getReader();
    const reply = next(agent);
    agent.postMessage({ jsonrpc: '2.0', id: 1, method: 'fs/write_text_file', params: { content: 'x'.repeat(2000) } });
    expect(await reply).toMatchObject({ error: { code: -32600, message: expect.stringContaining('1000-byte limit') } });
    agent.postMessage({ jsonrpc: '2.0', id: 2, method: 'small' });
    expect((await reader.read()).value).toMatchObject({ id: 2 });
    expect(issues[0]!.kind).toBe('oversized');
    close();
  });

  it('ends the readable side when the agent goes away and refuses further writes', async () => {
    const { host, close } = pair();
    const s = messagePortStream(host);
    const reader = s.readable.getReader();
    close();
    expect((await reader.read()).done).toBe(true);
    await expect(s.writable.getWriter().write({ jsonrpc: '2.0', id: 1, result: {} } as never)).rejects.toThrow(/closed/);
  });
});
