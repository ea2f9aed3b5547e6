// Process-count limits for one command, so a fork bomb stays a command's
// problem. Where it can, a command gets its own pids cgroup (v2 under the
// cgroup root, or v1's pids hierarchy), which counts every process and thread
// the command starts and nothing else. Otherwise, for a non-root user, an
// RLIMIT_NPROC a margin above the processes the user already has (Linux counts
// that limit per user, so the margin is what the command may add). For root
// without a writable cgroup nothing can be enforced (Linux exempts uid 0 from
// RLIMIT_NPROC); the timeout is then what ends a fork bomb, and `kind` says so.
//
// The launcher (a bash one-liner that the pty starts) joins the cgroup and
// sets the rlimits before it execs bubblewrap, so nothing runs unlimited.

import { randomUUID } from 'node:crypto';
import { constants as C } from 'node:fs';
import { access, mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type LimiterKind = 'cgroup-v2' | 'cgroup-v1' | 'rlimit' | 'none';

export interface CommandLimits {
  /** File the launcher writes its pid to (cgroup.procs), if any. */
  readonly procsFile?: string;
  /** RLIMIT_NPROC for the launcher, if used. */
  readonly nproc?: number;
  /** SIGKILLs whatever is still in the cgroup (a child that left the process group). */
  killRemaining(): Promise<void>;
  /** Removes the cgroup (killing anything left in it); may take a few ms after the last exit. */
  release(): Promise<void>;
}

export interface ProcessLimiter {
  readonly kind: LimiterKind;
  prepare(maxProcesses: number): Promise<CommandLimits>;
  /** Removes what the limiter made for itself (its parent cgroup). */
  dispose(): Promise<void>;
}

const NONE: CommandLimits = { killRemaining: async () => {}, release: async () => {} };

export async function createProcessLimiter(): Promise<ProcessLimiter> {
  const v2 = await cgroupV2Root();
  if (v2) return new CgroupLimiter('cgroup-v2', v2);
  const v1 = '/sys/fs/cgroup/pids';
  if (await writableDir(v1)) return new CgroupLimiter('cgroup-v1', v1);
  if (process.getuid?.() !== 0) return new RlimitLimiter();
  return { kind: 'none', prepare: async () => NONE, dispose: async () => {} };
}

/** The cgroup2 root, if it is writable and offers the pids controller. */
async function cgroupV2Root(): Promise<string | undefined> {
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    try {
      const controllers = (await readFile(join(root, 'cgroup.controllers'), 'utf8')).split(/\s+/);
      if (!controllers.includes('pids') || !(await writableDir(root))) continue;
      const subtree = await readFile(join(root, 'cgroup.subtree_control'), 'utf8');
      if (!subtree.split(/\s+/).includes('pids')) await writeFile(join(root, 'cgroup.subtree_control'), '+pids');
      return root;
    } catch {
      // not cgroup2, or not ours to change
    }
  }
  return undefined;
}

async function writableDir(p: string): Promise<boolean> {
  try {
    await access(p, C.W_OK);
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

class CgroupLimiter implements ProcessLimiter {
  readonly kind: LimiterKind;
  private readonly parent: string;
  private ready: Promise<void> | undefined;
  constructor(kind: LimiterKind, root: string) {
    this.kind = kind;
    this.parent = join(root, `tether-${process.pid}-${randomUUID().slice(0, 8)}`);
  }

  async prepare(maxProcesses: number): Promise<CommandLimits> {
    this.ready ??= mkdir(this.parent, { recursive: true }).then(async () => {
      if (this.kind === 'cgroup-v2') await writeFile(join(this.parent, 'cgroup.subtree_control'), '+pids').catch(() => {});
    });
    await this.ready;
    const dir = join(this.parent, randomUUID());
    await mkdir(dir);
    await writeFile(join(dir, 'pids.max'), String(maxProcesses));
    return {
      procsFile: join(dir, 'cgroup.procs'),
      killRemaining: () => killCgroup(dir, this.kind),
      release: () => removeCgroup(dir, this.kind),
    };
  }

  async dispose(): Promise<void> {
    if (!this.ready) return;
    this.ready = undefined;
    await rmdir(this.parent).catch(() => {});
  }
}

async function removeCgroup(dir: string, kind: LimiterKind): Promise<void> {
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw e;
    }
    // Something is still in it: the tree should already be dead; make sure.
    await killCgroup(dir, kind);
    // A pid namespace's last processes can take a moment to be reaped after bubblewrap exits.
    await new Promise((r) => setTimeout(r, Math.min(2 ** attempt, 50)));
  }
  throw new Error(`the cgroup ${dir} could not be removed: processes are still in it`);
}

async function killCgroup(dir: string, kind: LimiterKind): Promise<void> {
  if (kind === 'cgroup-v2') await writeFile(join(dir, 'cgroup.kill'), '1').catch(() => {});
  const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const pid of procs.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

class RlimitLimiter implements ProcessLimiter {
  readonly kind: LimiterKind = 'rlimit';
  private cached: { at: number; count: number } | undefined;

  async prepare(maxProcesses: number): Promise<CommandLimits> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at > 2000) this.cached = { at: now, count: await countOwnProcesses() };
    return { nproc: this.cached.count + maxProcesses, killRemaining: async () => {}, release: async () => {} };
  }

  async dispose(): Promise<void> {}
}

/** Processes (and threads, which RLIMIT_NPROC also counts) of this user. */
async function countOwnProcesses(): Promise<number> {
  const uid = process.getuid?.();
  let count = 0;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = await stat(join('/proc', name));
      if (st.uid !== uid) continue;
      const threads = /^Threads:\s*(\d+)/m.exec(await readFile(join('/proc', name, 'status'), 'utf8'));
      count += threads ? Number(threads[1]) : 1;
    } catch {
      // exited meanwhile
    }
  }
  return count;
}
