// The workspace jail: turns a path an agent sent into the canonical target the
// broker decides on, and lets the effects reach that target again later
// without following anything swapped in since (DESIGN.md, "The spine", step 3).
//
// Resolution: `..` is normalised lexically, then the path is walked from the
// root one component at a time like realpath(3), so a symlink at any component
// is resolved; a final-component symlink is followed for read and write
// intents (the canonical path is where the bytes really are) and kept as
// itself for the `entry` intent (delete, move). The walk never touches
// anything outside the root: a path, or a link target, that leaves it comes
// back unexamined with `inWorkspace: false` for policy to deny with a named
// rule. So an agent cannot probe files outside, trigger automounts (/net) or
// make the host open a network path (UNC, which leaks credentials on Windows).
// A link that leaves the root and one behind it that leads back is denied,
// not followed. Malformed input, devices/FIFOs/sockets and loops throw
// `PathRefused`.
//
// Reaching a target again (`anchor`): on Linux the jail opens the directory
// with O_NOFOLLOW|O_DIRECTORY and checks with the kernel (readlink of
// /proc/self/fd/N, fstat) that the fd is exactly the canonical directory seen
// at resolution; every later operation on an entry goes through
// /proc/self/fd/N/name, which starts from that fd as openat() would, so a
// symlink swapped in above it afterwards is never followed. Elsewhere (macOS, Windows,
// or no /proc) Node has no openat/renameat, so an anchor checks by path that
// every component below the root is a real directory with the identity seen
// at resolution, and `verify()` repeats that just before anything is
// committed; a swap inside that last window cannot be prevented there.
//
// System calls run in place (synchronously) on a local file system and on the
// root's own device, through the thread pool otherwise: fs-io.ts says why and
// what that costs. The checks are the same either way.
//
// Not handled: the root itself being moved while Tether runs (the user's
// doing); hard links cannot be told apart from an ordinary file except by
// their count, which is flagged (`hardLinked`) for policy.

import { constants as C, type BigIntStats, readlinkSync, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import type { PathIdentity, ResolvedPath } from '../common/capability.ts';
import { LIMITS } from '../common/limits.ts';
import * as io from './fs-io.ts';

/** A path the jail will not resolve at all. The message says why. */
export class PathRefused extends Error {
  override readonly name = 'PathRefused';
  readonly input: string;
  constructor(input: string, reason: string) {
    super(`refused path ${show(input)}: ${reason}`);
    this.input = input;
  }
}

/** The file system changed between resolution and the effect; nothing was done. */
export class PathChanged extends Error {
  override readonly name = 'PathChanged';
  readonly path: string;
  constructor(p: string, what: string) {
    super(`${show(p)} ${what} after it was checked; nothing was done (ask again to act on what is there now)`);
    this.path = p;
  }
}

/**
 * read: follow a final symlink (the canonical path is its target).
 * write: the same; the effect writes the canonical target, never through a link.
 * entry: the directory entry itself, a final symlink included (delete, move).
 */
export type ResolveIntent = 'read' | 'write' | 'entry';

export interface ResolveOptions {
  readonly intent?: ResolveIntent;
}

export interface JailOptions {
  /** Override the probe of the root's file system (tests; volumes the probe gets wrong). */
  readonly caseInsensitive?: boolean;
  /** 'path' forces the by-path fallback that non-Linux platforms use (tests). Default: 'auto'. */
  readonly anchoring?: 'auto' | 'path';
  /** 'thread-pool' sends every call through libuv's thread pool, as on a network volume (tests; volumes the probe gets wrong). Default: 'auto'. */
  readonly io?: 'auto' | 'thread-pool';
}

const MAX_SYMLINK_HOPS = 40;
const PROC_FD = procFdDir();
const DIR_FLAGS = C.O_RDONLY | (C.O_DIRECTORY ?? 0) | (C.O_NOFOLLOW ?? 0);

export class WorkspaceJail {
  /** Canonical absolute path of the workspace root. */
  readonly root: string;
  /** Whether names on the root's volume compare case-insensitively (macOS, Windows defaults). */
  readonly caseInsensitive: boolean;
  /** How effects reach a directory again: through held fds (Linux) or by checked paths. */
  readonly anchoring: 'procfd' | 'path';
  /** Whether calls on the root's device run in place (fs-io.ts): a local file system on Linux. */
  readonly syncIo: boolean;
  private readonly rootHandle: fsp.FileHandle | undefined;
  private readonly rootId: string;
  private readonly rootDev: bigint;
  /** The root, then the root as given, folded and with its separator-terminated prefix (every resolution compares against them). */
  private readonly roots: readonly { readonly path: string; readonly folded: string; readonly prefix: string }[];
  /** The root as the user gave it (absolute), when symlinks make it differ from `root`. */
  private readonly givenRoot: string | undefined;
  private readonly platform: NodeJS.Platform;

  private constructor(root: string, givenRoot: string, rootSt: BigIntStats, caseInsensitive: boolean, handle: fsp.FileHandle | undefined, syncIo: boolean) {
    this.root = root;
    this.givenRoot = givenRoot !== root ? givenRoot : undefined;
    this.rootId = idOf(rootSt);
    this.rootDev = rootSt.dev;
    this.syncIo = syncIo;
    this.caseInsensitive = caseInsensitive;
    this.rootHandle = handle;
    this.anchoring = handle ? 'procfd' : 'path';
    this.platform = process.platform;
    this.roots = [root, ...(this.givenRoot ? [this.givenRoot] : [])].map((r) => {
      const folded = fold(r, caseInsensitive);
      return { path: r, folded, prefix: folded.endsWith(path.sep) ? folded : folded + path.sep };
    });
  }

  /** Opens a jail on `root`. Refuses the file-system root, the home directory (or any ancestor of it) and non-directories. */
  static async open(root: string, opts: JailOptions = {}): Promise<WorkspaceJail> {
    if (root.length === 0 || root.includes('\0')) throw new PathRefused(root, 'not a usable workspace path');
    const given = path.resolve(root);
    let real: string;
    try {
      real = await fsp.realpath(given);
    } catch (e) {
      throw new PathRefused(root, `the workspace cannot be opened (${errCode(e)}); pass an existing directory`);
    }
    const st = await fsp.stat(real, { bigint: true });
    if (!st.isDirectory()) throw new PathRefused(root, 'the workspace is not a directory');
    if (path.parse(real).root === real) throw new PathRefused(root, 'the workspace cannot be the file-system root; pass a project directory');
    const home = await fsp.realpath(homedir()).catch(() => homedir());
    if (real === home || isBelow(home, real, false)) {
      throw new PathRefused(root, 'the workspace cannot be your home directory or contain it; pass a project directory');
    }
    const caseInsensitive = opts.caseInsensitive ?? (await probeCaseInsensitive(real, st));
    let handle: fsp.FileHandle | undefined;
    if ((opts.anchoring ?? 'auto') === 'auto' && process.platform === 'linux') {
      handle = await fsp.open(real, DIR_FLAGS);
      const seen = await fsp.readlink(`${PROC_FD}/${handle.fd}`).catch(() => undefined);
      if (seen !== real || idOf(await handle.stat({ bigint: true })) !== idOf(st)) {
        await handle.close();
        handle = undefined;
      }
    }
    const syncIo = (opts.io ?? 'auto') === 'auto' && (await io.isLocalFileSystem(real));
    return new WorkspaceJail(real, given, st, caseInsensitive, handle, syncIo);
  }

  /** Whether calls on the directory or file with this identity ("dev:ino…") may run in place: the root's own device, on a local file system. */
  inPlace(id: string | undefined): boolean {
    return this.syncIo && id !== undefined && id.startsWith(`${this.rootDev}:`);
  }

  async close(): Promise<void> {
    await this.rootHandle?.close();
  }

  /** Resolves what an agent sent. Relative paths are taken from the root; absolute ones are allowed and canonicalised. */
  async resolve(input: string, opts: ResolveOptions = {}): Promise<ResolvedPath> {
    const intent = opts.intent ?? 'read';
    checkInput(input);
    const lexical = path.resolve(this.root, input);
    if (lexical.length > LIMITS.maxPathChars) throw new PathRefused(input, `the resolved path is over ${LIMITS.maxPathChars} characters`);
    if (this.platform === 'win32') {
      for (const part of lexical.slice(path.parse(lexical).root.length).split(path.sep)) {
        const problem = windowsNameProblem(part);
        if (problem) throw new PathRefused(input, problem);
      }
    }
    const resolved = await this.resolveAbsolute(input, lexical, intent);
    // A symlink's target can bring in names the input check would have refused.
    if (resolved.path !== lexical && (hasControlChar(resolved.path) || BIDI.test(resolved.path))) {
      throw new PathRefused(input, 'it leads through a symbolic link to a name with control characters');
    }
    return resolved.path === lexical ? resolved : { ...resolved, requested: lexical };
  }

  /** Whether a canonical absolute path is the root or below it. */
  contains(p: string): boolean {
    if (p === this.root) return true;
    const f = fold(p, this.caseInsensitive);
    return f === this.roots[0]!.folded || f.startsWith(this.roots[0]!.prefix);
  }

  /** Workspace-relative, '/'-separated, in the case on disk; undefined outside. */
  relative(p: string): string | undefined {
    if (!this.contains(p)) return undefined;
    return p.length <= this.root.length ? '' : p.slice(this.root.length + 1).split(path.sep).join('/');
  }

  /**
   * Reaches the canonical directory `dir` (inside the workspace) without following
   * any symlink, and checks it is the directory seen at resolution (`expectedId`).
   * The caller must close the anchor.
   */
  async anchor(dir: string, expectedId: string | undefined): Promise<DirAnchor> {
    const rel = this.relative(dir);
    if (rel === undefined) throw new PathChanged(dir, 'is outside the workspace');
    const sync = this.inPlace(expectedId);
    if (this.rootHandle) return DirAnchor.openFd({ path: this.root, fd: this.rootHandle.fd, id: this.rootId }, dir, expectedId, sync);
    const parts = rel === '' ? [] : rel.split('/');
    const a = await DirAnchor.walkPath(this.root, this.rootId, parts, sync);
    try {
      if (expectedId !== undefined && (await a.id()) !== expectedId) throw new PathChanged(dir, 'was replaced by another directory');
    } catch (e) {
      await a.close();
      throw e;
    }
    return a;
  }

  /**
   * Walks from the root one component at a time, as realpath(3) would, but
   * never touches anything outside: a path or a link target that leaves the
   * root ends the walk there and comes back unexamined with inWorkspace: false.
   * A link target is joined with the rest of the path and normalised
   * lexically, and the walk starts again from the root.
   */
  private async resolveAbsolute(input: string, lexical: string, intent: ResolveIntent): Promise<ResolvedPath> {
    let pending = lexical;
    let sync = this.syncIo;
    for (let hops = 0; ; hops++) {
      if (hops > MAX_SYMLINK_HOPS) throw new PathRefused(input, 'too many levels of symbolic links');
      const parts = this.partsBelowRoot(pending);
      if (parts === undefined) return this.outside(input, pending);
      let dir = this.root;
      let dirId = this.rootId;
      let next: string | undefined;
      for (let i = 0; i < parts.length && next === undefined; i++) {
        const candidate = path.join(dir, parts[i]!);
        const last = i === parts.length - 1;
        const st = await lstatOrThrow(input, candidate, sync);
        if (!st) return this.describe(path.join(dir, ...parts.slice(i)), undefined, { dir, dirId });
        // Another device (a mount inside the workspace): the thread pool from here on.
        if (st.dev !== this.rootDev) sync = false;
        if (st.isSymbolicLink() && (!last || intent !== 'entry')) {
          const target = await io.readlink(candidate, sync).catch((e: unknown) => {
            throw refusal(input, e);
          });
          next = path.resolve(dir, target, ...parts.slice(i + 1));
        } else if (last) {
          if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink() && intent !== 'entry') {
            throw new PathRefused(input, `${show(candidate)} is a device, FIFO or socket; Tether reads and writes regular files only`);
          }
          return this.describe(candidate, st, { dir, dirId });
        } else if (!st.isDirectory()) {
          throw new PathRefused(input, `${show(candidate)} is not a directory`);
        } else {
          dir = candidate;
          dirId = idOf(st);
        }
      }
      if (next === undefined) {
        // The root itself: it is its own anchor (its parent is outside and never looked at).
        const st = await lstatOrThrow(input, this.root, sync);
        if (!st) throw new PathRefused(input, 'the workspace root is gone; reopen the workspace');
        return this.describe(this.root, st, { dir: this.root, dirId: this.rootId });
      }
      pending = next;
    }
  }

  /** Components of `p` below the root (canonical, or as given), or undefined when it is not below it. */
  private partsBelowRoot(p: string): string[] | undefined {
    const f = fold(p, this.caseInsensitive);
    for (const r of this.roots) {
      if (f === r.folded) return [];
      if (f.startsWith(r.prefix)) return p.slice(r.path.length + 1).split(path.sep).filter((x) => x !== '');
    }
    return undefined;
  }

  /** A path outside the root, reported without touching it (no probing, no automounts, no network paths). */
  private outside(input: string, p: string): ResolvedPath {
    if (this.platform !== 'win32' && /^\/(dev|proc|sys)(\/|$)/.test(p)) {
      throw new PathRefused(input, `${show(p)} is on a device or kernel file system (/dev, /proc, /sys); Tether reads and writes regular files only`);
    }
    if (this.platform === 'win32' && /^[\\/]{2}[.?][\\/]/.test(p)) {
      throw new PathRefused(input, `${show(p)} is a Windows device path`);
    }
    return { path: p, inWorkspace: false, exists: false };
  }

  private describe(p: string, st: BigIntStats | undefined, seen: { dir: string; dirId: string }): ResolvedPath {
    const inWorkspace = this.contains(p);
    const rel = this.relative(p);
    const identity: PathIdentity = { ...(st ? { target: idOf(st) } : {}), dir: seen.dir, dirId: seen.dirId };
    return {
      path: p,
      ...(inWorkspace && rel !== undefined ? { relPath: this.caseInsensitive ? fold(rel, true) : rel } : {}),
      inWorkspace,
      exists: st !== undefined,
      ...(st ? { type: typeOf(st) } : {}),
      ...(st?.isFile() && st.nlink > 1n ? { hardLinked: true } : {}),
      identity,
    };
  }
}

/**
 * A directory the effects can act in. With an fd (Linux), `entry(name)` is a
 * path through /proc/self/fd/N, so the kernel starts from the held directory
 * whatever happens to the path above it. Without, it is the canonical path
 * and `verify()` re-checks it.
 */
export class DirAnchor {
  /** Canonical path (for messages and results; operations use `entry`/`self`). */
  readonly path: string;
  /** Whether calls in this directory run in place rather than on the thread pool (fs-io.ts). */
  readonly syncIo: boolean;
  private readonly fd: number | undefined;
  private readonly owned: boolean;
  private readonly check: (() => Promise<string>) | undefined;
  /** By-path mode: the identity seen when the anchor was made. */
  private readonly seenId: string | undefined;
  private closed = false;

  private constructor(p: string, fd: number | undefined, owned: boolean, syncIo: boolean, check: (() => Promise<string>) | undefined, seenId?: string) {
    this.path = p;
    this.fd = fd;
    this.owned = owned;
    this.syncIo = syncIo;
    this.check = check;
    this.seenId = seenId;
  }

  /**
   * Opens `dir` with O_NOFOLLOW|O_DIRECTORY and asks the kernel where the fd
   * really is: readlink(/proc/self/fd/N) must be exactly `dir`, so a symlink
   * followed at any component (or a directory moved in) is caught; everything
   * after this goes through the fd.
   */
  static async openFd(root: { path: string; fd: number; id: string }, dir: string, expectedId: string | undefined, sync: boolean): Promise<DirAnchor> {
    if (dir === root.path) {
      // The held root fd is the directory checked when the jail opened, and an fd's inode never changes.
      if (expectedId !== undefined && expectedId !== root.id) throw new PathChanged(dir, 'was replaced by another directory');
      return new DirAnchor(root.path, root.fd, false, sync, undefined);
    }
    let fd: number;
    try {
      fd = await io.openFd(dir, DIR_FLAGS, undefined, sync);
    } catch (e) {
      throw changedOrIo(dir, e);
    }
    try {
      const [seen, st] = await Promise.all([io.readlink(`${PROC_FD}/${fd}`, sync), io.fstatBig(fd, sync)]);
      if (seen !== dir) throw new PathChanged(dir, 'was moved, or a directory above it was replaced by a symbolic link,');
      if (expectedId !== undefined && idOf(st) !== expectedId) throw new PathChanged(dir, 'was replaced by another directory');
    } catch (e) {
      await io.closeFd(fd, sync);
      throw e;
    }
    return new DirAnchor(dir, fd, true, sync, undefined);
  }

  static async walkPath(root: string, rootId: string, parts: readonly string[], sync: boolean): Promise<DirAnchor> {
    const target = path.join(root, ...parts);
    const check = async (): Promise<string> => {
      let p = root;
      let id = await dirIdAt(p, sync);
      if (id !== rootId) throw new PathChanged(root, 'was replaced');
      for (const part of parts) {
        p = path.join(p, part);
        id = await dirIdAt(p, sync);
      }
      return id;
    };
    return new DirAnchor(target, undefined, false, sync, check, await check());
  }

  /** Path that reaches `name` in this directory without going through the path above it (fd mode). */
  entry(name: string): string {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes(path.sep) || name.includes('\0')) {
      throw new Error(`internal: ${show(name)} is not a single directory entry name`);
    }
    return this.fd !== undefined ? `${PROC_FD}/${this.fd}/${name}` : path.join(this.path, name);
  }

  /** Path of the directory itself, for opendir. */
  get self(): string {
    return this.fd !== undefined ? `${PROC_FD}/${this.fd}` : this.path;
  }

  /** Stats of this directory now (never of a link in its place). */
  async stat(): Promise<Stats> {
    if (this.fd !== undefined) return io.fstatNum(this.fd, this.syncIo);
    await this.check!();
    return fsp.lstat(this.path);
  }

  /** "dev:ino" of this directory now. */
  async id(): Promise<string> {
    if (this.fd !== undefined) return idOf(await io.fstatBig(this.fd, this.syncIo));
    return this.check!();
  }

  /** Re-checks, just before a commit, that the path still leads to this directory (by-path mode; an fd needs no re-check). */
  async verify(): Promise<void> {
    if (!this.check) return;
    if ((await this.check()) !== this.seenId) throw new PathChanged(this.path, 'was replaced by another directory');
  }

  /** The subdirectory `name`, refusing a symlink or anything that is not a directory. */
  async descend(name: string): Promise<DirAnchor> {
    const childPath = path.join(this.path, name);
    if (this.fd !== undefined) {
      let fd: number;
      try {
        fd = await io.openFd(this.entry(name), DIR_FLAGS, undefined, this.syncIo);
      } catch (e) {
        throw changedOrIo(childPath, e);
      }
      return new DirAnchor(childPath, fd, true, this.syncIo, undefined);
    }
    const sync = this.syncIo;
    const seen = await dirIdAt(childPath, sync);
    const parentCheck = this.check!;
    const parentId = this.seenId;
    return new DirAnchor(childPath, undefined, false, sync, async () => {
      if ((await parentCheck()) !== parentId) throw new PathChanged(this.path, 'was replaced by another directory');
      return dirIdAt(childPath, sync);
    }, seen);
  }

  /** fsync of the directory, so a rename in it survives a crash. Best effort where directories cannot be opened. */
  async sync(): Promise<void> {
    if (this.fd !== undefined) {
      await io.fsyncFd(this.fd);
      return;
    }
    const h = await fsp.open(this.path, C.O_RDONLY).catch(() => undefined);
    if (!h) return;
    try {
      await h.sync().catch(() => undefined);
    } finally {
      await h.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owned && this.fd !== undefined) await io.closeFd(this.fd, this.syncIo);
  }
}

/**
 * /proc/<our pid>/fd: the same directory as /proc/self/fd, but the kernel does
 * not resolve the "self" link on every use (about half the lookup cost of each
 * entry reached through it). Only when /proc/self names our pid, i.e. this
 * /proc shows our pid namespace; otherwise /proc/self/fd.
 */
function procFdDir(): string {
  try {
    if (process.platform === 'linux' && readlinkSync('/proc/self') === String(process.pid)) return `/proc/${process.pid}/fd`;
  } catch {
    // no /proc: by-path anchoring is used anyway
  }
  return '/proc/self/fd';
}

/** Why a single Windows path component cannot be used safely, or undefined. Exported for tests on any platform. */
export function windowsNameProblem(part: string): string | undefined {
  if (part === '') return undefined;
  if (/[<>:"|?*]/.test(part)) return `${show(part)} contains a character Windows reserves (alternate data streams use ':')`;
  if (/[. ]$/.test(part) && part !== '.' && part !== '..') return `${show(part)} ends with a dot or space, which Windows silently drops`;
  if (/^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i.test(part)) return `${show(part)} is a reserved device name on Windows`;
  return undefined;
}

/** Lower-cased NFC form used to compare names on case-insensitive volumes (an approximation of the volume's own folding). */
export function fold(s: string, caseInsensitive: boolean): string {
  return caseInsensitive ? s.normalize('NFC').toLowerCase() : s;
}

/**
 * "dev:ino", plus the birth time where the file system records one: inode
 * numbers are reused at once after a delete, so dev:ino alone cannot tell a
 * file from one deleted and recreated in its place.
 */
export function idOf(st: BigIntStats): string {
  return st.birthtimeNs > 0n ? `${st.dev}:${st.ino}:${st.birthtimeNs}` : `${st.dev}:${st.ino}`;
}

export function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): 'file' | 'directory' | 'symlink' | 'other' {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  return 'other';
}

export function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

function checkInput(input: string): void {
  if (typeof input !== 'string' || input.length === 0) throw new PathRefused(String(input), 'the path is empty');
  if (input.length > LIMITS.maxPathChars) throw new PathRefused(input, `the path is over ${LIMITS.maxPathChars} characters`);
  if (input.includes('\0')) throw new PathRefused(input, 'the path contains a NUL byte');
  if (!input.isWellFormed()) throw new PathRefused(input, 'the path is not well-formed Unicode');
  // Control and bidi characters can forge or disguise lines in consent prompts and logs.
  if (hasControlChar(input)) throw new PathRefused(input, 'the path contains a control character');
  if (BIDI.test(input)) {
    throw new PathRefused(input, 'the path contains a bidirectional control character that can disguise a name');
  }
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

function isBelow(p: string, dir: string, caseInsensitive: boolean): boolean {
  const a = fold(p, caseInsensitive);
  const d = fold(dir, caseInsensitive);
  return a.startsWith(d.endsWith(path.sep) ? d : d + path.sep);
}

async function lstatOrThrow(input: string, p: string, sync: boolean): Promise<BigIntStats | undefined> {
  try {
    return await io.lstatBig(p, sync);
  } catch (e) {
    throw refusal(input, e);
  }
}

async function dirIdAt(p: string, sync: boolean): Promise<string> {
  let st: BigIntStats | undefined;
  try {
    st = await io.lstatBig(p, sync);
  } catch (e) {
    throw changedOrIo(p, e);
  }
  if (!st) throw new PathChanged(p, 'was removed');
  if (st.isSymbolicLink()) throw new PathChanged(p, 'became a symbolic link');
  if (!st.isDirectory()) throw new PathChanged(p, 'is no longer a directory');
  return idOf(st);
}

function changedOrIo(p: string, e: unknown): Error {
  switch (errCode(e)) {
    case 'ELOOP':
    case 'ENOTDIR':
      return new PathChanged(p, 'became a symbolic link or a file');
    case 'ENOENT':
      return new PathChanged(p, 'was removed');
    default:
      return e instanceof Error ? e : new Error(String(e));
  }
}

function refusal(input: string, e: unknown): PathRefused {
  const code = errCode(e);
  const reasons: Record<string, string> = {
    ELOOP: 'too many levels of symbolic links',
    ENOTDIR: 'a component of the path is a file, not a directory',
    ENAMETOOLONG: 'a name in the path is too long for the file system',
    EACCES: 'permission denied while resolving it',
    EPERM: 'permission denied while resolving it',
  };
  return new PathRefused(input, (code && reasons[code]) ?? `it could not be resolved (${code ?? (e as Error).message})`);
}

async function probeCaseInsensitive(real: string, st: BigIntStats): Promise<boolean> {
  const base = path.basename(real);
  const flipped = [...base].map((c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())).join('');
  if (flipped === base) return process.platform === 'darwin' || process.platform === 'win32';
  try {
    return idOf(await fsp.stat(path.join(path.dirname(real), flipped), { bigint: true })) === idOf(st);
  } catch {
    return false;
  }
}

function show(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 200 ? `${j.slice(0, 190)}…"` : j;
}
