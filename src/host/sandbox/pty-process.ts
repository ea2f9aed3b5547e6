// Runs one process in a real pseudo-terminal (node-pty) and enforces the
// command limits around it: wall-clock timeout, total output, and a kill that
// ends the whole tree. Who the process is (bubblewrap, or a plain shell for an
// unsandboxed run) and what "the whole tree" means is the caller's: it passes
// `killTree`, which must end every descendant (for bubblewrap, killing it
// tears down its pid namespace; for a plain shell, the command's cgroup).

import { constants } from 'node:os';
import { spawn as spawnPty, type IPty } from 'node-pty';
import type { ExitReason, SandboxExit, SandboxProcess } from './sandbox.ts';

export interface PtySpawnOptions {
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly cols?: number;
  readonly rows?: number;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  /** Ends every process of the command. Called with the pty child's pid. */
  readonly killTree: (pid: number) => void;
  /** Runs after the process has exited and before `exited` resolves (release cgroups, proxy lists). */
  readonly cleanup?: () => Promise<void>;
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

export function signalName(n: number): string {
  return SIGNAL_NAMES.get(n) ?? `SIG${n}`;
}

export function spawnInPty(opts: PtySpawnOptions): SandboxProcess {
  const started = performance.now();
  let pty: IPty;
  try {
    pty = spawnPty(opts.file, [...opts.args], {
      name: 'xterm-256color',
      cols: opts.cols ?? 120,
      rows: opts.rows ?? 30,
      cwd: opts.cwd,
      env: { ...opts.env },
      encoding: 'utf8',
    });
  } catch (e) {
    const failure: SandboxExit = { exitCode: null, signal: null, reason: 'spawn-failed', outputBytes: 0, durationMs: 0 };
    void opts.cleanup?.();
    throw Object.assign(new Error(`the command could not be started: ${(e as Error).message}`), { exit: failure });
  }
  const listeners = new Set<(text: string) => void>();
  let outputBytes = 0;
  let killedFor: ExitReason | undefined;
  let done = false;

  const kill = (reason: 'killed' | 'timeout' | 'output-limit' = 'killed') => {
    if (done) return;
    killedFor ??= reason;
    try {
      opts.killTree(pty.pid);
    } catch {
      // already gone
    }
  };

  const timer = setTimeout(() => kill('timeout'), opts.timeoutMs);
  timer.unref?.();

  const dataSub = pty.onData((text) => {
    if (done) return;
    outputBytes += Buffer.byteLength(text, 'utf8');
    for (const l of listeners) l(text);
    if (outputBytes > opts.maxOutputBytes) kill('output-limit');
  });

  const exited = new Promise<SandboxExit>((resolve) => {
    pty.onExit(({ exitCode, signal }) => {
      done = true;
      clearTimeout(timer);
      dataSub.dispose();
      const sig = signal !== undefined && signal !== 0 ? signalName(signal) : null;
      const reason: ExitReason = killedFor ?? (sig ? 'signal' : 'exit');
      const exit: SandboxExit = {
        exitCode: sig ? null : exitCode,
        signal: sig,
        reason,
        outputBytes,
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      };
      // Never signal the pid again from here: it has been reaped and may be reused.
      const finish = () => resolve(exit);
      (opts.cleanup ? opts.cleanup().catch((e: unknown) => console.error('tether: sandbox cleanup failed:', e)) : Promise.resolve()).then(finish, finish);
    });
  });

  return {
    pid: pty.pid,
    onData(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    exited,
    kill,
    write(data) {
      if (!done) pty.write(data);
    },
    resize(cols, rows) {
      if (!done) pty.resize(Math.max(1, Math.min(cols, 1000)), Math.max(1, Math.min(rows, 1000)));
    },
  };
}
