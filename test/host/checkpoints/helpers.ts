// Shared fixtures for the checkpoint tests: temporary directories, real git
// with an isolated configuration, and a byte-exact picture of a directory.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckpointCause } from '../../../src/host/checkpoints/checkpoint-types.ts';

export const cause: CheckpointCause = { sessionId: 'sess-1', turn: 1, requestIds: ['req-1'], auditSeqs: [7] };

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `tether-cp-${prefix}-`));
}

/** Runs real git with no user or system configuration leaking in. */
export function git(cwd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): { stdout: string; stderr: string; status: number } {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: cwd,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.invalid',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.invalid',
    LC_ALL: 'C',
  };
  try {
    const stdout = execFileSync('git', args, { cwd, env, encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    return { stdout, stderr: '', status: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    if (!opts.allowFail) throw new Error(`git ${args.join(' ')} failed (${err.status}): ${err.stderr}`, { cause: e });
    return { stdout: err.stdout ?? '', stderr: err.stderr ?? '', status: err.status ?? 1 };
  }
}

/** `git fsck --strict` on a bare (shadow) repository; returns its complaints. */
export function fsckShadow(gitdir: string): { status: number; problems: string[] } {
  const r = git(gitdir, ['--git-dir', gitdir, 'fsck', '--strict', '--no-dangling'], { allowFail: true });
  const problems = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /^(error|warning|missing|broken|bad|fatal)/i.test(l));
  return { status: r.status, problems };
}

export interface PictureEntry {
  readonly type: 'file' | 'dir' | 'link';
  readonly mode: number;
  readonly hash?: string;
  readonly target?: string;
  readonly mtimeMs?: number;
}

/** Every entry under `dir` with type, permission bits and content hash (and mtime when asked). */
export function picture(dir: string, opts: { mtime?: boolean; skip?: (rel: string) => boolean } = {}): Record<string, PictureEntry> {
  const out: Record<string, PictureEntry> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (opts.skip?.(r)) continue;
      const abs = join(dir, r);
      const st = lstatSync(abs);
      const mtime = opts.mtime ? { mtimeMs: st.mtimeMs } : {};
      if (st.isSymbolicLink()) out[r] = { type: 'link', mode: 0, target: readlinkSync(abs), ...mtime };
      else if (st.isDirectory()) {
        out[r] = { type: 'dir', mode: st.mode & 0o777, ...mtime };
        walk(r);
      } else out[r] = { type: 'file', mode: st.mode & 0o777, hash: createHash('sha256').update(readFileSync(abs)).digest('hex'), ...mtime };
    }
  };
  walk('');
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
