// Runs a command WITHOUT an OS sandbox: the command can read and write
// anything the user can and reach the network. The terminal service uses it
// only when the sandbox is unavailable, policy (the `allowUnsandboxed`
// setting) permits it, and the user answered a consent question for this one
// command that said so. The environment is still scrubbed and the limits
// still apply; the tree is ended through the command's process group and,
// where available, its pids cgroup (a process that left the group and the
// cgroup-less case can survive a kill: one more reason this is the exception).

import { createProcessLimiter, type ProcessLimiter } from './process-limits.ts';
import { spawnInPty } from './pty-process.ts';
import type { RunOptions, SandboxProcess } from './sandbox.ts';

const LAUNCHER = [
  'p=$1 n=$2 f=$3; shift 3',
  'if [ -n "$p" ]; then echo $$ > "$p" || exit 125; fi',
  'ulimit -c 0; ulimit -f "$f" || exit 125',
  'if [ -n "$n" ]; then ulimit -u "$n" || exit 125; fi',
  'exec "$@"',
].join('\n');

export class UnsandboxedRunner {
  private limiter: Promise<ProcessLimiter> | undefined;
  private readonly running = new Set<SandboxProcess>();
  private readonly releasing = new Set<Promise<void>>();
  private readonly bash: string;

  constructor(bash = '/bin/bash') {
    this.bash = bash;
  }

  async run(options: Omit<RunOptions, 'profile'> & { readonly limits: RunOptions['profile']['limits'] }): Promise<SandboxProcess> {
    this.limiter ??= createProcessLimiter();
    const limiter = await this.limiter;
    const limits = await limiter.prepare(options.limits.maxProcesses);
    const proc = spawnInPty({
      file: this.bash,
      args: ['-c', LAUNCHER, 'tether-launch', limits.procsFile ?? '', limits.nproc !== undefined ? String(limits.nproc) : '',
        String(Math.max(1, Math.floor(options.limits.maxFileBytes / 1024))),
        // The launcher runs with a fixed environment; the command's is set for the command alone.
        '/usr/bin/env', '-i', ...Object.entries(options.env).map(([k, v]) => `${k}=${v}`), this.bash, '--noprofile', '--norc', '-c', options.line],
      cwd: options.cwd,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
      ...(options.cols !== undefined ? { cols: options.cols } : {}),
      ...(options.rows !== undefined ? { rows: options.rows } : {}),
      timeoutMs: options.limits.timeoutMs,
      maxOutputBytes: options.limits.maxOutputBytes,
      // The pty child leads its own session and process group.
      killTree: (pid) => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          process.kill(pid, 'SIGKILL');
        }
      },
      // Without a pid namespace, a child that left the process group is found through the cgroup.
      cleanup: async () => {
        await limits.killRemaining();
        const done = limits.release().catch((e: unknown) => console.error('tether:', (e as Error).message)).finally(() => this.releasing.delete(done));
        this.releasing.add(done);
      },
    });
    this.running.add(proc);
    void proc.exited.finally(() => this.running.delete(proc));
    return proc;
  }

  async dispose(): Promise<void> {
    const all = [...this.running];
    for (const p of all) p.kill('killed');
    await Promise.allSettled(all.map((p) => p.exited));
    await Promise.allSettled([...this.releasing]);
    await (await this.limiter)?.dispose();
  }
}
