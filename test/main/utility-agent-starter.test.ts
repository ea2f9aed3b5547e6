// The utilityProcess starter with Electron's fork replaced by a real Node
// child process on an IPC channel (the Electron binary cannot run here): the
// child is real, only the launcher differs.
import { fork as cpFork } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UtilityAgentStarter, utilityAgentEnv, type UtilityFork, type UtilityProcessLike } from '../../src/main/utility-agent-starter.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'port-echo-agent.ts');
const forks: { env: Record<string, string>; serviceName: string }[] = [];
const kills: (() => void)[] = [];

const nodeFork: UtilityFork = (modulePath, args, options) => {
  forks.push(options);
  const child = cpFork(modulePath, args, { env: options.env, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  kills.push(() => child.kill('SIGKILL'));
  const p: UtilityProcessLike = {
    get pid() {
      return child.pid;
    },
    postMessage: (m) => void child.send(m as never),
    on: (_e: 'message', l: (m: unknown) => void) => child.on('message', l),
    once: ((e: 'spawn' | 'exit', l: (code?: number) => void) =>
      e === 'exit' ? child.once('exit', (code) => l(code ?? 1)) : child.once('spawn', () => l())) as UtilityProcessLike['once'],
    removeListener: (_e: 'message', l: (m: unknown) => void) => child.removeListener('message', l),
    kill: () => child.kill('SIGKILL'),
  };
  return p;
};

afterEach(() => {
  for (const k of kills.splice(0)) k();
  forks.length = 0;
  delete process.env['ANTHROPIC_API_KEY'];
});

async function call(stream: { readable: ReadableStream; writable: WritableStream }, msg: object) {
  const w = stream.writable.getWriter();
  await w.write({ jsonrpc: '2.0', ...msg });
  w.releaseLock();
  const r = stream.readable.getReader();
  const { value } = await r.read();
  r.releaseLock();
  return value as { result: unknown };
}

describe('UtilityAgentStarter', () => {
  it('starts the agent with a minimal environment and talks JSON-RPC over its port', async () => {
    process.env['ANTHROPIC_API_KEY'] = 'sk-must-not-leak';
    const agent = await new UtilityAgentStarter(nodeFork, FIXTURE).start({ env: { TETHER_EGRESS_URL: 'http://127.0.0.1:1/' } });
    expect(agent.pid).toBeGreaterThan(0);
    const echo = await call(agent.stream, { id: 1, method: 'echo', params: { hello: 'agent' } });
    expect(echo.result).toEqual({ hello: 'agent' });
    const { env } = (await call(agent.stream, { id: 2, method: 'env' })).result as { env: Record<string, string> };
    expect(env['ANTHROPIC_API_KEY']).toBeUndefined();
    expect(env['TETHER_EGRESS_URL']).toBe('http://127.0.0.1:1/');
    expect(env['TETHER_AGENT_TRANSPORT']).toBe('parent-port');
    expect(Object.keys(forks[0]!.env).every((k) => ['PATH', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SYSTEMROOT'].includes(k) || k.startsWith('TETHER_'))).toBe(true);
    expect(forks[0]!.serviceName).toBe('Tether agent');
    agent.kill();
    expect((await agent.exited).code).not.toBe(0);
  });

  it('reports a crash through exited and ends the stream', async () => {
    const agent = await new UtilityAgentStarter(nodeFork, FIXTURE).start();
    const w = agent.stream.writable.getWriter();
    await w.write({ jsonrpc: '2.0', id: 1, method: 'crash' } as never);
    expect(await agent.exited).toEqual({ code: 3, signal: null });
    const r = agent.stream.readable.getReader();
    expect((await r.read()).done).toBe(true);
  });

  it.each(['OPENAI_API_KEY', 'GITHUB_TOKEN', 'NODE_OPTIONS', 'ELECTRON_RUN_AS_NODE', 'LD_PRELOAD', 'DB_PASSWORD'])('refuses to hand %s to the agent', (name) => {
    expect(() => utilityAgentEnv({ [name]: 'x' })).toThrow(/refusing to pass/);
  });
});
