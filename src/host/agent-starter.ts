// Starts the agent process. Two implementations share this interface (as VS
// Code's IAgentHostStarter does): a plain child process over stdio here (CLI
// and tests), and an Electron utilityProcess over a MessagePort in src/main.
//
// The agent gets an explicit, minimal environment: no API keys, no tokens, no
// NODE_OPTIONS. It reaches the model only through the host's egress gateway.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Stream } from '@agentclientprotocol/sdk';
import { ndjsonStream, type FramingIssue } from './acp-transport.ts';

export interface AgentExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** "was killed by SIGKILL", "exited with code 1": how the agent process ended, for messages. */
export function describeAgentExit(exit: AgentExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

export interface AgentProcess {
  readonly stream: Stream;
  readonly exited: Promise<AgentExit>;
  readonly pid: number | undefined;
  kill(): void;
}

export interface AgentStartOptions {
  /** Extra variables for the agent (never secrets). */
  readonly env?: Readonly<Record<string, string>>;
  readonly onFramingIssue?: (issue: FramingIssue) => void;
}

export interface AgentStarter {
  start(opts?: AgentStartOptions): Promise<AgentProcess>;
}

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const BUILTIN_AGENT_ENTRY = fileURLToPath(new URL(`../agent/main${ext}`, import.meta.url));

/** Variables the agent process may inherit; everything else is dropped. */
const INHERITED_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SYSTEMROOT'];

export function minimalAgentEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return { ...env, ...extra, TETHER_AGENT: '1' };
}

export class ForkAgentStarter implements AgentStarter {
  private readonly entry: string;
  private readonly execArgv: readonly string[];
  constructor(entry: string = BUILTIN_AGENT_ENTRY, execArgv: readonly string[] = []) {
    this.entry = entry;
    this.execArgv = execArgv;
  }

  start(opts: AgentStartOptions = {}): Promise<AgentProcess> {
    const child = spawn(process.execPath, [...this.execArgv, this.entry], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: minimalAgentEnv(opts.env),
    });
    const exited = new Promise<AgentExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    return new Promise((resolve, reject) => {
      child.once('error', (e) => reject(new Error(`cannot start the agent process (${this.entry}): ${e.message}`)));
      child.once('spawn', () => {
        child.stdin.on('error', () => {}); // EPIPE after the agent died is reported through `exited`
        resolve({
          stream: ndjsonStream(child.stdout, child.stdin, opts.onFramingIssue ? { onIssue: opts.onFramingIssue } : {}),
          exited,
          pid: child.pid,
          kill: () => child.kill('SIGKILL'),
        });
      });
    });
  }
}
