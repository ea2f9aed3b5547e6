// The OS sandbox commands run in, as a port: the terminal service asks for a
// profile, shows it in the consent dialog, and runs the command with it. The
// Linux implementation is bubblewrap-sandbox.ts; unsandboxed-runner.ts runs a
// command without one (only ever after its own consent question).
//
// Invariants every implementation keeps:
//  1. A command never runs with less confinement than its profile says; if the
//     profile cannot be applied, `run` throws and nothing runs.
//  2. `kill` and `dispose` end every process the command started, however it
//     detached itself (a process tree, not a pid).
//  3. Nothing is left behind on the host after a command ends (mounts, temp
//     directories, cgroups, proxy registrations).

import type { SandboxProfileSummary } from '../../common/consent.ts';
import type { OpenedTunnel, TappedConnection } from './network-tap.ts';

export interface SandboxLimits {
  /** Wall-clock limit; the whole tree is killed after it. */
  readonly timeoutMs: number;
  /** Total output a command may produce before it is killed (the agent sees a note). */
  readonly maxOutputBytes: number;
  /** Processes (and threads) the command may have at once; enforced where the OS allows (see `enforced`). */
  readonly maxProcesses: number;
  /** Largest file the command may write, bytes. */
  readonly maxFileBytes: number;
}

export interface SandboxProfile {
  /** Canonical workspace root: writable. */
  readonly workspace: string;
  /** Paths the command may write (the workspace; /tmp is private and empty). */
  readonly writable: readonly string[];
  /** Paths that exist and are hidden (an empty directory or an empty file in their place). */
  readonly hidden: readonly string[];
  /** Paths inside the workspace that stay read-only (git hooks and config). */
  readonly readOnly: readonly string[];
  /**
   * Workspace folders made mount points of their own (still writable), so the
   * command can neither rename nor remove them: the folders holding hidden
   * files, which would otherwise carry those files somewhere unchecked.
   */
  readonly pinned?: readonly string[];
  /** 'none', or the domains the sandbox's proxy lets through for this command. */
  readonly network: 'none' | { readonly allowedDomains: readonly string[] };
  readonly limits: SandboxLimits;
}

/** Why a command ended. */
export type ExitReason = 'exit' | 'signal' | 'timeout' | 'output-limit' | 'killed' | 'spawn-failed';

export interface SandboxExit {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly reason: ExitReason;
  /** Bytes of output the command produced (all of it, including what was dropped). */
  readonly outputBytes: number;
  readonly durationMs: number;
}

export interface RunOptions {
  /** A shell command line, run by bash -c. */
  readonly line: string;
  /** Absolute, canonical; inside the workspace. */
  readonly cwd: string;
  /** The whole environment the command gets (already scrubbed: see sandbox-env.ts). */
  readonly env: Readonly<Record<string, string>>;
  readonly profile: SandboxProfile;
  /** More paths inside the workspace to keep read-only (hooks and config of nested repositories). */
  readonly readOnly?: readonly string[];
  readonly cols?: number;
  readonly rows?: number;
  /**
   * Told of each network connection the command makes (when the profile opens
   * any domain), once it has ended; every one has been told before `exited`
   * resolves.
   */
  readonly onConnection?: (c: TappedConnection) => void;
  /**
   * Told of each tunnel (CONNECT, SOCKS) the proxy grants the command, before
   * anything passes through it: the tunnel waits for the returned promise and
   * is cut if it rejects (so a tunnel is on record before it carries a byte).
   * Required when the profile opens any domain: without it the command does not run.
   */
  readonly onTunnelOpened?: (t: OpenedTunnel) => Promise<void>;
}

export interface SandboxProcess {
  /** Host pid of the outermost process (for diagnostics only). */
  readonly pid: number;
  /** Output as it arrives (terminal text, decoded as UTF-8). */
  onData(listener: (text: string) => void): () => void;
  readonly exited: Promise<SandboxExit>;
  /** Ends the whole tree. Safe to call more than once and after exit. */
  kill(reason?: 'killed' | 'timeout' | 'output-limit'): void;
  write(data: string): void;
  resize(cols: number, rows: number): void;
}

/** What a sandbox cannot do here, and what the user can do about it. */
export interface SandboxUnavailable {
  readonly reason: string;
  readonly fix: string;
}

export interface Sandbox {
  /** 'bubblewrap' on Linux; 'unavailable' where commands cannot be confined. */
  readonly kind: string;
  /** Set when commands cannot be sandboxed here: every run throws SandboxUnavailableError. */
  readonly unavailable: SandboxUnavailable | undefined;
  /** Which limits the OS lets this sandbox enforce, for the profile summary. */
  readonly enforced: { readonly maxProcesses: boolean; readonly maxFileBytes: boolean };
  /** The profile for a command in `workspace` (canonical). */
  profile(workspace: string, options?: { readonly allowedDomains?: readonly string[]; readonly limits?: Partial<SandboxLimits> }): SandboxProfile;
  run(options: RunOptions): Promise<SandboxProcess>;
  /** Kills every running command and releases the sandbox's own resources (proxy). */
  dispose(): Promise<void>;
}

export class SandboxUnavailableError extends Error {
  override readonly name = 'SandboxUnavailableError';
  readonly fix: string;
  constructor(u: SandboxUnavailable) {
    super(`commands cannot be sandboxed here: ${u.reason}. ${u.fix}`);
    this.fix = u.fix;
  }
}

export const DEFAULT_LIMITS: SandboxLimits = {
  timeoutMs: 10 * 60_000,
  maxOutputBytes: 64 * 1024 * 1024,
  maxProcesses: 512,
  maxFileBytes: 4 * 1024 * 1024 * 1024,
};

/** What the consent dialog and the audit record show about a profile. */
export function summarizeProfile(p: SandboxProfile): SandboxProfileSummary {
  return {
    writable: p.writable,
    hidden: p.hidden,
    network: p.network === 'none' ? 'none' : { allowedDomains: p.network.allowedDomains },
  };
}

/** The profile as the audit log records it (request.sandbox). */
export function auditProfile(p: SandboxProfile | 'unsandboxed', kind: string): Readonly<Record<string, unknown>> {
  if (p === 'unsandboxed') return { kind: 'unsandboxed' };
  return {
    kind,
    writable: p.writable,
    readOnly: p.readOnly,
    hidden: p.hidden,
    ...(p.pinned && p.pinned.length > 0 ? { pinned: p.pinned } : {}),
    network: p.network === 'none' ? 'none' : { allowedDomains: p.network.allowedDomains },
    limits: p.limits,
  };
}
