// The Linux sandbox: bubblewrap namespaces and mounts, the seccomp filter of
// @anthropic-ai/sandbox-runtime (its apply-seccomp helper), its filtering
// proxy for the domains policy opened, and a pids cgroup or rlimit.
//
// Why not the library's own wrapper (SandboxManager.wrapWithSandbox): it
// derives its mandatory write denies (.git/hooks, .git/config, shell rc files)
// from the *host process's* working directory, which in Tether is not the
// workspace (and one host serves several workspaces); it adds write access to
// ~/.npm/_logs and /tmp/claude that this profile does not want; it leaves mount
// points on the host that must be cleaned up after each command; and it costs
// 15–30 ms per wrap plus ~40 ms per start on this machine (its rg scan, its
// socat relays even with no network). So the bubblewrap argv is built here —
// for the workspace, not the host's cwd — and the library supplies what is
// hard to get right: the seccomp filter and the network proxy.
//
// The profile (bwrap arguments in this order, later mounts win):
//   new user, pid, ipc, uts, cgroup and network namespaces; all capabilities
//   dropped; `/` read-only; fresh /dev and /proc; private empty /tmp and
//   /var/tmp; the workspace read-write; git hooks and config read-only; the
//   hidden paths replaced by an empty directory or an empty file; the seccomp
//   helper itself read-only (it may lie inside a workspace); then, inside,
//   apply-seccomp (blocks new Unix sockets, io_uring and namespace/mount
//   calls, in a nested pid namespace) runs `bash -c LINE`.
//   Network, when policy opened domains: the command's own tap of the proxy
//   (network-tap.ts: each connection reported) bound in, and socat relaying
//   localhost:3128/1080 to it, started before the seccomp filter.
//
// Ends with the command: bubblewrap runs with --die-with-parent, and killing
// it (or Tether exiting) tears down its pid namespace and everything in it.
//
// Not covered: reads of the workspace's own secrets (.env) by commands; a
// hidden path created while a command runs; nested git repositories' hooks
// unless the caller passes them in `readOnly`; kernel bugs.

import { spawn } from 'node:child_process';
import { constants as C, existsSync, lstatSync, mkdirSync, statSync, accessSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultHiddenPaths } from './hidden-paths.ts';
import { createProcessLimiter, type ProcessLimiter } from './process-limits.ts';
import { spawnInPty } from './pty-process.ts';
import { SandboxNetwork } from './sandbox-network.ts';
import {
  DEFAULT_LIMITS, SandboxUnavailableError,
  type RunOptions, type Sandbox, type SandboxLimits, type SandboxProcess, type SandboxProfile, type SandboxUnavailable,
} from './sandbox.ts';

export interface BubblewrapSandboxOptions {
  /** Tether's own policy, audit and key directories: hidden from every command. */
  readonly protectedPaths?: readonly string[];
  /** More paths to hide (settings). */
  readonly extraHidden?: readonly string[];
  /** Defaults for every command. */
  readonly limits?: Partial<SandboxLimits>;
  readonly home?: string;
  /** Overrides for tests and unusual installs. */
  readonly bwrapPath?: string;
  readonly bashPath?: string;
  readonly socatPath?: string;
  readonly applySeccompPath?: string;
}

/** PATH for the launcher, bubblewrap and the helpers (never the agent's). */
const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** /tmp and /var/tmp are memory-backed: at most this much each. */
const PRIVATE_TMP_BYTES = 1024 * 1024 * 1024;

/** bash one-liner the pty starts: joins the cgroup, sets rlimits, execs bubblewrap. */
const LAUNCHER = [
  'p=$1 n=$2 f=$3; shift 3',
  'if [ -n "$p" ]; then echo $$ > "$p" || { echo "tether: cannot join the process-limit cgroup" >&2; exit 125; }; fi',
  'ulimit -c 0',
  'ulimit -f "$f" || { echo "tether: cannot set the file size limit" >&2; exit 125; }',
  'if [ -n "$n" ]; then ulimit -u "$n" || { echo "tether: cannot set the process limit" >&2; exit 125; }; fi',
  'exec "$@"',
].join('\n');

/** Inside the sandbox, before the seccomp filter: start the relays, wait until they listen, exec the rest. */
function relayScript(socat: string, relays: readonly { path: string; port: number }[]): string {
  const q = shq;
  const lines: string[] = [];
  for (const r of relays) {
    lines.push(
      `{ ${q(socat)} TCP6-LISTEN:${r.port},ipv6only=0,fork,reuseaddr,backlog=1024 UNIX-CONNECT:${q(r.path)} || ` +
      `exec ${q(socat)} TCP4-LISTEN:${r.port},fork,reuseaddr,backlog=1024 UNIX-CONNECT:${q(r.path)}; } >/dev/null 2>&1 &`,
    );
  }
  // Poll the namespace's TCP socket count without starting a program (nothing
  // may run here unfiltered); give up after ~1 s and let the command try.
  lines.push(
    `want=${relays.length}; start=\${EPOCHREALTIME/./}`,
    'while :; do',
    '  up=0',
    '  for f in /proc/net/sockstat /proc/net/sockstat6; do',
    '    [ -r "$f" ] || continue',
    '    while read -r kind _ inuse _; do case "$kind" in TCP:|TCP6:) up=$((up + inuse)); break;; esac; done < "$f"',
    '  done',
    '  [ "$up" -ge "$want" ] && break',
    '  now=${EPOCHREALTIME/./}; [ $((now - start)) -lt 1000000 ] || break',
    'done',
    'unset want start up f kind inuse now',
    'exec "$@"',
  );
  return lines.join('\n');
}

export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function which(name: string, pathVar = process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin'): string | undefined {
  for (const dir of pathVar.split(delimiter)) {
    if (!dir.startsWith('/')) continue;
    const p = join(dir, name);
    try {
      accessSync(p, C.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function applySeccompPath(): string | undefined {
  const arch = process.arch === 'x64' ? 'x64' : process.arch === 'arm64' ? 'arm64' : undefined;
  if (!arch) return undefined;
  const index = fileURLToPath(import.meta.resolve('@anthropic-ai/sandbox-runtime'));
  return join(dirname(index), '..', 'vendor', 'seccomp', arch, 'apply-seccomp');
}

/** uid 0 needs CAP_SETFCAP in bubblewrap for the helper's nested user namespace (as the library does). */
function hasBoundingSetfcap(): boolean {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const bnd = /^CapBnd:\s*([0-9a-f]+)/im.exec(status);
    const inh = /^CapInh:\s*([0-9a-f]+)/im.exec(status);
    if (!bnd || !inh) return false;
    return (((BigInt(`0x${bnd[1]}`) | BigInt(`0x${inh[1]}`)) >> 31n) & 1n) === 1n;
  } catch {
    return false;
  }
}

interface Tools {
  bwrap: string;
  bash: string;
  env: string;
  /** coreutils stat, for the pinned-folder check; without it no folder can be pinned, and commands that need pins do not run. */
  stat: string | undefined;
  socat: string | undefined;
  seccomp: string;
  capArgs: string[];
  tmpfsSize: boolean;
}

export class BubblewrapSandbox implements Sandbox {
  readonly kind = 'bubblewrap';
  readonly unavailable: SandboxUnavailable | undefined;
  readonly enforced: { readonly maxProcesses: boolean; readonly maxFileBytes: boolean };
  private readonly tools: Tools | undefined;
  private readonly limiter: ProcessLimiter | undefined;
  private readonly network = new SandboxNetwork();
  private readonly running = new Set<SandboxProcess>();
  /** Cgroup removals still retrying after their command ended. */
  private readonly releasing = new Set<Promise<void>>();
  private readonly opts: BubblewrapSandboxOptions;
  private readonly home: string;
  private readonly defaults: SandboxLimits;

  private constructor(opts: BubblewrapSandboxOptions, tools: Tools | undefined, unavailable: SandboxUnavailable | undefined, limiter: ProcessLimiter | undefined) {
    this.opts = opts;
    this.tools = tools;
    this.unavailable = unavailable;
    this.limiter = limiter;
    this.home = opts.home ?? homedir();
    this.defaults = { ...DEFAULT_LIMITS, ...opts.limits };
    this.enforced = { maxProcesses: limiter !== undefined && limiter.kind !== 'none', maxFileBytes: true };
  }

  /** Checks what this host offers and probes a real sandbox once (~30 ms). Never throws: see `unavailable`. */
  static async create(opts: BubblewrapSandboxOptions = {}): Promise<BubblewrapSandbox> {
    const unavailable = (reason: string, fix: string) => new BubblewrapSandbox(opts, undefined, { reason, fix }, undefined);
    if (process.platform !== 'linux') {
      return unavailable(`the sandbox for ${process.platform} is not built yet (Linux uses bubblewrap)`, 'Run Tether on Linux to run commands, or ask your administrator for a policy that permits unsandboxed commands (each one is then asked about).');
    }
    const bwrap = opts.bwrapPath ?? which('bwrap', SAFE_PATH);
    if (!bwrap || !isExecutable(bwrap)) {
      return unavailable(`bubblewrap (bwrap) is not installed${opts.bwrapPath ? ` at ${opts.bwrapPath}` : ''}`, 'Install it: `sudo apt-get install bubblewrap` (Debian, Ubuntu) or `sudo dnf install bubblewrap` (Fedora), then restart Tether.');
    }
    const bash = opts.bashPath ?? which('bash', SAFE_PATH);
    if (!bash) return unavailable('bash is not installed', 'Install bash, then restart Tether.');
    const envBin = which('env', SAFE_PATH);
    if (!envBin) return unavailable('env (coreutils) is not installed', 'Install coreutils, then restart Tether.');
    const seccomp = opts.applySeccompPath ?? applySeccompPath();
    if (!seccomp || !existsSync(seccomp)) {
      return unavailable(`the seccomp helper of @anthropic-ai/sandbox-runtime is missing for ${process.arch}`, 'Reinstall Tether; only x64 and arm64 are supported.');
    }
    const capArgs = ['--cap-drop', 'ALL'];
    if (process.geteuid?.() === 0 && hasBoundingSetfcap()) capArgs.push('--cap-add', 'CAP_SETFCAP');
    const tools: Tools = { bwrap, bash, env: envBin, stat: which('stat', SAFE_PATH), socat: opts.socatPath ?? which('socat', SAFE_PATH), seccomp, capArgs, tmpfsSize: false };
    const help = await run(bwrap, ['--help']);
    tools.tmpfsSize = help.out.includes('--size');
    const probe = await run(bwrap, [...namespaceArgs(), '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', ...capArgs, '--', seccomp, '/bin/true'], { SRT_ALLOW_NESTED_USERNS: '0', PATH: '/usr/bin:/bin' });
    if (probe.code !== 0) {
      const err = probe.out.trim().split('\n').slice(-3).join(' ');
      if (/namespace|uid map|setgroups|Operation not permitted|Permission denied|clone/i.test(err)) {
        return unavailable(`bubblewrap cannot create user namespaces here (${err})`,
          'Allow unprivileged user namespaces: `sudo sysctl -w kernel.unprivileged_userns_clone=1` (older Debian), or on Ubuntu 23.10+ `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile for bwrap); in a container, allow unshare (e.g. --security-opt seccomp=unconfined).');
      }
      return unavailable(`a test sandbox failed to start (${err || `exit code ${probe.code}`})`, 'Check that bubblewrap works: `bwrap --ro-bind / / --unshare-all true`.');
    }
    const limiter = await createProcessLimiter();
    return new BubblewrapSandbox(opts, tools, undefined, limiter);
  }

  profile(workspace: string, options: { readonly allowedDomains?: readonly string[]; readonly limits?: Partial<SandboxLimits> } = {}): SandboxProfile {
    const hidden = defaultHiddenPaths(this.home, [...(this.opts.protectedPaths ?? []), ...(this.opts.extraHidden ?? []), runtimeDir()]).filter((p) => exists(p));
    const readOnly: string[] = [];
    const dotGit = join(workspace, '.git');
    const kind = entryKind(dotGit);
    if (kind === 'dir') readOnly.push(join(dotGit, 'hooks'), join(dotGit, 'config'));
    else if (kind === 'file') readOnly.push(dotGit);
    const domains = options.allowedDomains ?? [];
    return {
      workspace,
      writable: [workspace],
      hidden: [...new Set(hidden)],
      readOnly,
      network: domains.length > 0 ? { allowedDomains: [...domains] } : 'none',
      limits: { ...this.defaults, ...options.limits },
    };
  }

  async run(options: RunOptions): Promise<SandboxProcess> {
    if (this.unavailable || !this.tools || !this.limiter) throw new SandboxUnavailableError(this.unavailable ?? { reason: 'not initialised', fix: 'Restart Tether.' });
    const t = this.tools;
    const { profile } = options;
    const limits = profile.limits;
    const releases: (() => Promise<void> | void)[] = [];
    const cleanup = async () => {
      for (const r of releases.reverse()) await r();
    };
    try {
      const env: Record<string, string> = { ...options.env };
      // bubblewrap and everything before the seccomp filter run with a fixed
      // environment: the command's (LD_PRELOAD, BASH_ENV, … from the agent)
      // is set by `env -i` only for the command itself, after the filter.
      const args: string[] = ['--die-with-parent', ...namespaceArgs(), '--hostname', 'tether-sandbox', '--clearenv', '--setenv', 'PATH', SAFE_PATH, '--setenv', 'SRT_ALLOW_NESTED_USERNS', '0', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc'];
      for (const tmp of ['/tmp', '/var/tmp']) {
        if (!isDir(tmp)) continue;
        if (t.tmpfsSize) args.push('--size', String(Math.min(limits.maxFileBytes, PRIVATE_TMP_BYTES)));
        args.push('--tmpfs', tmp);
      }
      args.push('--bind', profile.workspace, profile.workspace);
      // Before anything is mounted inside them (a later bind would cover those
      // mounts). bubblewrap follows symlinks in a bind's source, and these are
      // writable binds: each must be a real directory now, and the command
      // itself first checks (below) that each mount is that same directory,
      // so a folder swapped for a link in between runs nothing.
      const pins: string[] = [];
      for (const p of profile.pinned ?? []) {
        const st = lstatSync(p, { bigint: true, throwIfNoEntry: false });
        if (!st) continue; // gone: nothing hidden is left in it to carry away
        if (!st.isDirectory()) throw new Error(`${p} is no longer a folder (it was replaced since the workspace was checked); nothing ran. Run the command again.`);
        args.push('--bind', p, p);
        pins.push(p, `${st.dev}:${st.ino}`);
      }
      for (const p of [...profile.readOnly, ...(options.readOnly ?? [])]) {
        if (p.endsWith('/.git/hooks') && !exists(p) && isDir(dirname(p))) mkdirSync(p, { recursive: true });
        if (exists(p)) args.push('--ro-bind', p, p);
      }
      for (const p of profile.hidden) {
        const k = entryKind(p);
        if (k === 'dir') args.push('--tmpfs', p, '--remount-ro', p);
        else if (k !== 'none') args.push('--ro-bind', '/dev/null', p);
      }
      args.push('--ro-bind', t.seccomp, t.seccomp);

      if (pins.length > 0 && !t.stat) throw new SandboxUnavailableError({ reason: 'coreutils stat is not installed, and this command needs it to check the folders that hold hidden files', fix: 'Install coreutils, then run the command again.' });
      const shell = pins.length === 0
        ? [t.bash, '--noprofile', '--norc', '-c', options.line]
        : [t.bash, '--noprofile', '--norc', '-c', PIN_CHECK, 'tether-pins', t.stat!, t.bash, options.line, ...pins];
      const command = () => [t.seccomp, t.env, '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...shell];
      let inner: string[] | undefined;
      if (profile.network !== 'none') {
        if (!t.socat) throw new SandboxUnavailableError({ reason: 'socat is not installed, and commands with network access need it', fix: 'Install it: `sudo apt-get install socat`, then run the command again.' });
        const { onConnection, onTunnelOpened } = options;
        // A tunnel opens only once it is on record: no recorder, no network.
        if (!onTunnelOpened) throw new Error('a command with network access needs onTunnelOpened (the audit record of each tunnel); none was given, so it does not run');
        const net = await this.network.forCommand(profile.network.allowedDomains, { ended: (c) => onConnection?.(c), opened: onTunnelOpened });
        releases.push(() => net.release());
        for (const path of new Set(net.relays.map((r) => r.path))) args.push('--bind', path, path);
        Object.assign(env, net.env);
        inner = [t.bash, '--noprofile', '--norc', '-c', relayScript(t.socat, net.relays), 'tether-relay', ...command()];
      }
      args.push('--chdir', options.cwd, ...t.capArgs, '--', ...(inner ?? command()));

      const limitsForCommand = await this.limiter.prepare(limits.maxProcesses);
      // Everything in the pid namespace is dead when bubblewrap has exited; the
      // cgroup itself lingers a few ms more, so it is removed off the exit path.
      releases.push(() => {
        const done = limitsForCommand.release().catch((e: unknown) => console.error('tether:', (e as Error).message)).finally(() => this.releasing.delete(done));
        this.releasing.add(done);
      });
      const fileBlocks = String(Math.max(1, Math.floor(limits.maxFileBytes / 1024)));
      const proc = spawnInPty({
        file: t.bash,
        args: ['-c', LAUNCHER, 'tether-launch', limitsForCommand.procsFile ?? '', limitsForCommand.nproc !== undefined ? String(limitsForCommand.nproc) : '', fileBlocks, t.bwrap, ...args],
        cwd: options.cwd,
        env: { PATH: SAFE_PATH },
        ...(options.cols !== undefined ? { cols: options.cols } : {}),
        ...(options.rows !== undefined ? { rows: options.rows } : {}),
        timeoutMs: limits.timeoutMs,
        maxOutputBytes: limits.maxOutputBytes,
        // Killing bubblewrap ends its pid namespace: every process of the command.
        killTree: (pid) => process.kill(pid, 'SIGKILL'),
        cleanup,
      });
      this.running.add(proc);
      void proc.exited.finally(() => this.running.delete(proc));
      return proc;
    } catch (e) {
      await cleanup();
      throw e;
    }
  }

  async dispose(): Promise<void> {
    const all = [...this.running];
    for (const p of all) p.kill('killed');
    await Promise.allSettled(all.map((p) => p.exited));
    await Promise.allSettled([...this.releasing]);
    await this.network.dispose();
    await this.limiter?.dispose();
  }
}

function namespaceArgs(): string[] {
  return ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--unshare-net'];
}

/** /run/user/UID: the session bus, keyring and agent sockets. */
function runtimeDir(): string {
  return `/run/user/${process.getuid?.() ?? 0}`;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, C.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Runs first inside the sandbox when folders are pinned: each mount must be
 * the directory the host checked (device and inode), or nothing runs.
 * Arguments: stat, bash, the command line, then pairs of path and dev:ino.
 */
export const PIN_CHECK = [
  'st=$1; sh=$2; line=$3; shift 3',
  'while [ $# -ge 2 ]; do',
  '  [ "$("$st" -c %d:%i -- "$1" 2>/dev/null)" = "$2" ] || { echo "tether: $1 was replaced before the command started; nothing ran" >&2; exit 126; }',
  '  shift 2',
  'done',
  'exec "$sh" --noprofile --norc -c "$line"',
].join('\n');

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  return entryKind(p) === 'dir';
}

function entryKind(p: string): 'dir' | 'file' | 'other' | 'none' {
  try {
    const st = statSync(p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  } catch {
    return 'none';
  }
}

function run(file: string, args: string[], env?: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(file, args, { env: env ?? { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    } catch (e) {
      resolve({ code: null, out: (e as Error).message });
      return;
    }
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e) => resolve({ code: null, out: `${out}${e.message}` }));
    child.on('close', (code) => resolve({ code, out }));
  });
}
