// A small ACP client that stands in for the Tether host in agent-level tests:
// it serves fs/_tether/terminal requests from a temporary directory, denies
// what a test tells it to (as the broker would: JSON-RPC error
// DENIED_ERROR_CODE naming the rule), and records everything. It has no
// policy engine, consent or audit — the lead's integration tests run the
// agent against the real host. The agent itself is real: `node src/agent/main.ts`
// as a child process over stdio, or the same app over a real MessagePort.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { Readable, Writable } from 'node:stream';
import {
  client, type ClientApp, type ClientConnection, ndJsonStream, RequestError, type SessionNotification, type Stream,
} from '@agentclientprotocol/sdk';
import { DENIED_ERROR_CODE } from '../../src/common/decision.ts';
import { ListParams, SearchParams } from '../../src/common/protocol.ts';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const AGENT_MAIN = join(REPO_ROOT, 'src', 'agent', 'main.ts');

export interface RecordedCall { readonly method: string; readonly params: Record<string, unknown> }

export interface TestHostOptions {
  readonly workspace: string;
  /** Returns the rule id that denies this request, or undefined to allow. */
  readonly deny?: (method: string, path: string | undefined) => string | undefined;
  /** Advertise `terminal: true` and run commands with sh (no sandbox: test stand-in). */
  readonly terminal?: boolean;
  /** Called before a write; a test can hold it (simulating a pending consent) until the signal fires. */
  readonly beforeWrite?: (path: string, signal: AbortSignal) => Promise<void>;
}

export class TestHost {
  readonly calls: RecordedCall[] = [];
  readonly updates: SessionNotification[] = [];
  readonly cancelledRequests: string[] = [];
  private readonly opts: TestHostOptions;
  private readonly terminals = new Map<string, { child: ChildProcess; output: string; exit: Promise<{ exitCode: number | null; signal: string | null }> }>();
  private updateWaiters: (() => void)[] = [];
  connection!: ClientConnection;
  child: ChildProcess | undefined;
  stderr = '';

  constructor(opts: TestHostOptions) {
    this.opts = opts;
  }

  /** Starts `node src/agent/main.ts` with an environment that holds no API keys. */
  static async spawnAgent(opts: TestHostOptions): Promise<TestHost> {
    const host = new TestHost(opts);
    const child = spawn(process.execPath, [AGENT_MAIN], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env['PATH'] ?? '' },
    });
    host.child = child;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      host.stderr += d;
    });
    const stream = ndJsonStream(Writable.toWeb(child.stdin!) as WritableStream<Uint8Array>, Readable.toWeb(child.stdout!) as ReadableStream<Uint8Array>);
    await host.connect(stream);
    return host;
  }

  async connect(stream: Stream): Promise<void> {
    this.connection = this.app().connect(stream);
    await this.connection.agent.request('initialize', {
      protocolVersion: 1,
      clientCapabilities: { fs: { readTextFile: true, writeTextFile: true }, terminal: this.opts.terminal === true },
    });
  }

  async newSession(tether: Record<string, unknown>): Promise<string> {
    const r = await this.connection.agent.request('session/new', { cwd: this.opts.workspace, mcpServers: [], _meta: { tether } });
    return r.sessionId;
  }

  /**
   * The SDK runs notification handlers a few microtasks after a message
   * arrives but resolves responses at once, so the prompt's answer can overtake
   * the last session/update the agent sent before it. Drain a macrotask.
   */
  async prompt(sessionId: string, text: string, traceparent?: string) {
    const settle = () => new Promise((r) => setImmediate(r));
    try {
      return await this.connection.agent.request('session/prompt', {
        sessionId,
        prompt: [{ type: 'text', text }],
        ...(traceparent ? { _meta: { traceparent } } : {}),
      });
    } finally {
      await settle();
    }
  }

  cancel(sessionId: string): Promise<void> {
    return this.connection.agent.notify('session/cancel', { sessionId });
  }

  /** Resolves when an update matching `pred` has arrived. */
  async waitForUpdate(pred: (u: SessionNotification) => boolean, timeoutMs = 10_000): Promise<SessionNotification> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.updates.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('timed out waiting for a session/update');
      await new Promise<void>((r) => {
        this.updateWaiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  text(): string {
    return this.updates
      .map((u) => u.update)
      .filter((u) => u.sessionUpdate === 'agent_message_chunk')
      .map((u) => (u.sessionUpdate === 'agent_message_chunk' && u.content.type === 'text' ? u.content.text : ''))
      .join('');
  }

  async close(): Promise<void> {
    for (const t of this.terminals.values()) t.child.kill('SIGKILL');
    this.connection?.close();
    const child = this.child;
    if (child && child.exitCode === null) {
      child.stdin?.end();
      await Promise.race([
        new Promise((r) => child.once('exit', r)),
        new Promise((r) => setTimeout(r, 2000)).then(() => child.kill('SIGKILL')),
      ]);
    }
  }

  private resolvePath(p: string): string {
    return isAbsolute(p) ? p : join(this.opts.workspace, p);
  }

  private check(method: string, params: Record<string, unknown>): void {
    this.calls.push({ method, params });
    const path = typeof params['path'] === 'string' ? params['path'] : undefined;
    const rule = this.opts.deny?.(method, path);
    if (rule) {
      const reason = `${path ?? method} matches ${rule}`;
      throw new RequestError(DENIED_ERROR_CODE, `denied by policy ${rule}: ${reason}`, { decidedBy: 'policy', policyIds: [rule], reason });
    }
  }

  app(): ClientApp {
    return client({ name: 'tether-test-host' })
      .onRequest('fs/read_text_file', async ({ params }) => {
        this.check('fs/read_text_file', params as Record<string, unknown>);
        return { content: await readFile(this.resolvePath(params.path), 'utf8') };
      })
      .onRequest('fs/write_text_file', async ({ params, signal }) => {
        this.check('fs/write_text_file', params as Record<string, unknown>);
        signal.addEventListener('abort', () => this.cancelledRequests.push('fs/write_text_file'));
        await this.opts.beforeWrite?.(params.path, signal);
        const abs = this.resolvePath(params.path);
        await mkdir(dirname(abs), { recursive: true });
        await writeFile(abs, params.content);
        return {};
      })
      .onRequest('_tether/list', ListParams, async ({ params }) => {
        this.check('_tether/list', params);
        const abs = this.resolvePath(params.path);
        const entries = await readdir(abs, { withFileTypes: true });
        return {
          path: abs,
          truncated: false,
          entries: await Promise.all(entries.map(async (e) => ({
            name: e.name,
            type: e.isDirectory() ? 'directory' : 'file',
            ...(e.isFile() ? { size: (await stat(join(abs, e.name))).size } : {}),
          }))),
        };
      })
      .onRequest('_tether/search', SearchParams, async ({ params }) => {
        this.check('_tether/search', params);
        const root = this.resolvePath(params.path ?? '.');
        const re = new RegExp(params.pattern);
        const matches: { path: string; line: number; text: string }[] = [];
        let filesScanned = 0;
        for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
          if (!e.isFile()) continue;
          filesScanned++;
          const full = join(e.parentPath, e.name);
          (await readFile(full, 'utf8')).split('\n').forEach((text, i) => {
            if (re.test(text)) matches.push({ path: relative(this.opts.workspace, full), line: i + 1, text });
          });
        }
        return { matches, truncated: false, filesScanned };
      })
      .onRequest('terminal/create', ({ params }) => {
        this.check('terminal/create', params as Record<string, unknown>);
        const child = spawn('sh', ['-c', params.command], { cwd: this.resolvePath(params.cwd ?? '.'), stdio: ['ignore', 'pipe', 'pipe'] });
        const id = `term-${this.terminals.size + 1}`;
        const entry = {
          child,
          output: '',
          exit: new Promise<{ exitCode: number | null; signal: string | null }>((r) => child.once('exit', (exitCode, signal) => r({ exitCode, signal }))),
        };
        child.stdout!.setEncoding('utf8').on('data', (d: string) => { entry.output += d; });
        child.stderr!.setEncoding('utf8').on('data', (d: string) => { entry.output += d; });
        this.terminals.set(id, entry);
        return { terminalId: id };
      })
      .onRequest('terminal/wait_for_exit', async ({ params }) => {
        this.calls.push({ method: 'terminal/wait_for_exit', params: params as Record<string, unknown> });
        return this.terminal(params.terminalId).exit;
      })
      .onRequest('terminal/output', async ({ params }) => {
        this.calls.push({ method: 'terminal/output', params: params as Record<string, unknown> });
        const t = this.terminal(params.terminalId);
        const done = t.child.exitCode !== null || t.child.signalCode !== null;
        return { output: t.output, truncated: false, ...(done ? { exitStatus: { exitCode: t.child.exitCode, signal: t.child.signalCode } } : {}) };
      })
      .onRequest('terminal/kill', ({ params }) => {
        this.calls.push({ method: 'terminal/kill', params: params as Record<string, unknown> });
        this.terminal(params.terminalId).child.kill('SIGKILL');
        return {};
      })
      .onRequest('terminal/release', ({ params }) => {
        this.calls.push({ method: 'terminal/release', params: params as Record<string, unknown> });
        this.terminal(params.terminalId).child.kill('SIGKILL');
        this.terminals.delete(params.terminalId);
        return {};
      })
      .onNotification('session/update', ({ params }) => {
        this.updates.push(params);
        const waiters = this.updateWaiters;
        this.updateWaiters = [];
        for (const w of waiters) w();
      });
  }

  private terminal(id: string) {
    const t = this.terminals.get(id);
    if (!t) throw RequestError.resourceNotFound(id);
    return t;
  }
}
