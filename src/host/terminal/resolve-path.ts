// Resolves a path a command line writes to (a redirection target, tee's file)
// into the ResolvedPath policy decides on, the way the workspace jail does for
// the agent's own fs requests: `..` removed lexically, the parent realpath'd,
// a final symlink followed (writing through a link writes its target), and
// the result placed inside or outside the workspace. The terminal service
// takes any function of this shape, so the jail can be passed in instead.
//
// Not here: device and FIFO refusal is the caller's (a write to /dev/sda is
// refused as a device, pseudo-files like /dev/null never reach this), and
// case folding (Linux only).

import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { ResolvedPath } from '../../common/capability.ts';

export type PathIntent = 'write' | 'entry';
export type PathResolver = (absolutePath: string, intent: PathIntent) => Promise<ResolvedPath>;

const MAX_HOPS = 40;

export function createPathResolver(workspaceRoot: string): PathResolver {
  return (p, intent) => resolveCommandPath(workspaceRoot, p, intent);
}

export async function resolveCommandPath(workspaceRoot: string, input: string, intent: PathIntent): Promise<ResolvedPath> {
  if (!isAbsolute(input)) throw new Error(`the path "${input}" is not absolute`);
  if (input.includes('\0')) throw new Error('the path contains a NUL byte');
  let current = resolve(input);
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    const parent = await realParent(dirname(current));
    const full = parent === '/' ? `/${baseOf(current)}` : join(parent, baseOf(current));
    let st;
    try {
      st = await lstat(full);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return place(workspaceRoot, full, { exists: false });
    }
    if (st.isSymbolicLink() && intent === 'write') {
      const target = await readlink(full);
      current = resolve(dirname(full), target);
      continue;
    }
    const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';
    return place(workspaceRoot, full, { exists: true, type, hardLinked: st.isFile() && st.nlink > 1 });
  }
  throw new Error(`too many symbolic links resolving "${input}"`);
}

function baseOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** realpath of the deepest existing ancestor, with the missing rest appended. */
async function realParent(dir: string): Promise<string> {
  const missing: string[] = [];
  let d = dir;
  for (;;) {
    try {
      const real = await realpath(d);
      return missing.length === 0 ? real : join(real, ...missing.reverse());
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      if (d === '/') return dir;
      missing.push(baseOf(d));
      d = dirname(d);
    }
  }
}

function place(root: string, full: string, extra: Omit<ResolvedPath, 'path' | 'inWorkspace' | 'relPath'>): ResolvedPath {
  const rel = relative(root, full);
  const inside = rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
  return inside ? { path: full, relPath: rel.split(sep).join('/'), inWorkspace: true, ...extra } : { path: full, inWorkspace: false, ...extra };
}

/** Canonical directory, or undefined when it does not exist or is not a directory. */
export async function canonicalDir(p: string): Promise<string | undefined> {
  try {
    const real = await realpath(p);
    return (await stat(real)).isDirectory() ? real : undefined;
  } catch {
    return undefined;
  }
}
