// Starts the built-in agent in an Electron utilityProcess (the desktop app's
// AgentStarter; the CLI and tests fork a plain Node child over stdio). The
// transport is the utility process's own message port: the agent reads
// `process.parentPort`. The child gets an explicit, minimal environment.
//
// A utilityProcess is not OS-sandboxed and ignores Node's --permission
// (DESIGN.md): containment is the broker, and an agent that holds nothing.

import type { AgentExit, AgentProcess, AgentStarter, AgentStartOptions } from '../host/agent-starter.ts';
import { minimalAgentEnv } from '../host/agent-starter.ts';
import { messagePortStream } from './message-port-stream.ts';

/** The slice of Electron's UtilityProcess used here. */
export interface UtilityProcessLike {
  readonly pid: number | undefined;
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  once(event: 'spawn', listener: () => void): unknown;
  once(event: 'exit', listener: (code: number) => void): unknown;
  removeListener(event: 'message', listener: (message: unknown) => void): unknown;
  kill(): boolean;
}

export type UtilityFork = (modulePath: string, args: string[], options: { env: Record<string, string>; serviceName: string; stdio: 'inherit' | 'ignore' }) => UtilityProcessLike;

/** Names that must never reach the agent, even when a caller passes them on purpose. */
const FORBIDDEN = /(_KEY|_TOKEN|_SECRET|PASSWORD|^NODE_OPTIONS$|^ELECTRON_|^LD_|^DYLD_)/i;

export function utilityAgentEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  for (const k of Object.keys(extra)) {
    if (FORBIDDEN.test(k)) throw new Error(`refusing to pass ${k} to the agent process: it must hold no secrets or loader settings`);
  }
  return { ...minimalAgentEnv(extra), TETHER_AGENT_TRANSPORT: 'parent-port' };
}

export class UtilityAgentStarter implements AgentStarter {
  private readonly fork: UtilityFork;
  private readonly entry: string;
  constructor(fork: UtilityFork, entry: string) {
    this.fork = fork;
    this.entry = entry;
  }

  start(opts: AgentStartOptions = {}): Promise<AgentProcess> {
    const child = this.fork(this.entry, [], { env: utilityAgentEnv(opts.env), serviceName: 'Tether agent', stdio: 'inherit' });
    // Electron reports only an exit code; a crash (V8 fatal, killed) is a non-zero code.
    const exited = new Promise<AgentExit>((resolve) => child.once('exit', (code) => resolve({ code, signal: null })));
    return new Promise((resolve, reject) => {
      const failed = (code: number) => reject(new Error(`the agent process exited (code ${code}) before it started; entry: ${this.entry}`));
      child.once('exit', failed);
      child.once('spawn', () => {
        const stream = messagePortStream({
          post: (m) => child.postMessage(m),
          onMessage: (l) => {
            child.on('message', l);
            return () => child.removeListener('message', l);
          },
          closed: exited.then(() => undefined),
        }, opts.onFramingIssue ? { onIssue: opts.onFramingIssue } : {});
        resolve({ stream, exited, pid: child.pid, kill: () => void child.kill() });
      });
    });
  }
}
