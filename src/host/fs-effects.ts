// The file-system effects the broker runs once a request is allowed. Each one
// takes a ResolvedPath from the WorkspaceJail and acts only if the file system
// still looks as it did at resolution (same directory, same file identity, no
// symlink in place of either); otherwise it throws PathChanged and does nothing.
//
// How the check-then-use gap is closed (see workspace-jail.ts). Node has no
// openat/renameat. On Linux the effects get them anyway: the directory is
// opened once (O_NOFOLLOW|O_DIRECTORY), the kernel confirms where that fd is
// and which inode it is, and every later call names an entry as
// /proc/self/fd/N/name, so a symlink swapped in above it is never followed.
// Files are opened with O_NOFOLLOW (a final-component swap fails) and their
// identity compared with what resolution saw. Writes go to a temp file created
// with O_CREAT|O_EXCL|O_NOFOLLOW in that same directory and renamed over the
// target, so a write never goes through a link, and a hard link to a file
// outside is replaced, not written through. Where /proc/self/fd is missing
// (macOS, Windows) the directory is reached by path, checked component by
// component before use and re-checked right before the rename or unlink; a
// swap inside that last window cannot be prevented there, only narrowed.
// Everywhere, the target is checked again just before the commit, so a change
// after the first check is refused; what changes between that last check and
// the rename itself is replaced by the rename, never followed.
//
// A write can be staged (stageWrite: the temp file written, nothing else
// changed) while its decision record is committed, then committed (the
// re-checks and the rename); its directory's fsync, and a new file's own,
// finish after the rename in `durable`, which the outcome record waits for.
//
// Reads, writes and lists make their calls in place on a local file system and
// through the thread pool elsewhere or above SYNC_MAX_BYTES (fs-io.ts); fsync
// always goes to the thread pool. Delete, move and search use the thread pool.
//
// Not done here: policy (the broker decides first), anything outside the
// workspace (refused even if a policy allowed it), owner and extended
// attributes of a replaced file (a write keeps the permission bits only, not
// setuid/setgid).

import { createHash, randomBytes } from 'node:crypto';
import { constants as C, type BigIntStats, opendirSync, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PathIdentity, ResolvedPath } from '../common/capability.ts';
import { LIMITS } from '../common/limits.ts';
import type { DirEntry, ListResult, SearchResult, StatResult } from '../common/protocol.ts';
import * as io from './fs-io.ts';
import type { SearchJob, SearchReply } from './fs-search-worker.ts';
import { type DirAnchor, errCode, fold, idOf, PathChanged, typeOf, type WorkspaceJail } from './workspace-jail.ts';

export type FsErrorCode =
  | 'outside' | 'unresolved' | 'root'
  | 'not-found' | 'exists' | 'not-a-file' | 'not-a-directory' | 'not-empty'
  | 'too-large' | 'binary' | 'invalid-pattern' | 'timeout' | 'io';

/** An effect that cannot be done as asked; the message says what to do instead. */
export class FsEffectError extends Error {
  override readonly name = 'FsEffectError';
  readonly code: FsErrorCode;
  constructor(code: FsErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface FsEffectsOptions {
  /** fsync file and directory on write/move/delete (default true). */
  readonly durable?: boolean;
  /** Cooperative time budget of one search (default 10 s); the worker is killed 2 s after it. */
  readonly searchBudgetMs?: number;
  /** Directory names a search does not descend into, besides `.git` (default: node_modules). */
  readonly searchSkipDirs?: readonly string[];
}

export interface ReadTextOptions {
  /** First line, 1-based. */
  readonly line?: number | null;
  /** Number of lines. */
  readonly limit?: number | null;
}

export interface ReadTextResult {
  readonly content: string;
  /** Bytes read from the file. */
  readonly bytes: number;
  /** SHA-256 of the whole file, when it was read whole. */
  readonly sha256?: string;
}

export interface WriteTextResult {
  readonly created: boolean;
  readonly bytes: number;
  readonly preSha256?: string;
  readonly postSha256: string;
  /** Canonical paths of directories created for the file, outermost first. */
  readonly createdDirs: readonly string[];
  /**
   * Settles when the write is on disk (at once when not durable): a replaced
   * file's content was fsync'd before the rename; a new file's is fsync'd
   * after it, then the directory.
   */
  readonly durable: Promise<void>;
}

/** A write staged by FsEffects.stageWrite: its content in a temp file beside the target. */
export interface StagedWrite {
  readonly bytes: number;
}

interface Staged extends StagedWrite {
  readonly jail: WorkspaceJail;
  readonly target: string;
  readonly content: string;
  readonly dir: DirAnchor;
  readonly name: string;
  readonly tmpName: string;
  readonly postSha256: string;
  readonly preSha256?: string;
  /** A new file's temp file, still open (its fsync comes after the rename); cleared once closed. */
  unsyncedFd?: number | undefined;
  /** Renamed into place or discarded. */
  settled: boolean;
}

/** Temp files of writes in progress are named `${TEMP_PREFIX}<16 hex>${TEMP_SUFFIX}` (checkpoints leave them out). */
export const TEMP_PREFIX = '.tether-';
export const TEMP_SUFFIX = '.tmp';

export interface DeleteResult {
  /** SHA-256 of a deleted regular file. */
  readonly preSha256?: string;
  /** Directory entries removed (1 for a file). */
  readonly removed: number;
}

export interface MoveResult {
  readonly from: string;
  readonly to: string;
  readonly overwritten: boolean;
  /** SHA-256 of the file that was overwritten at the destination. */
  readonly preSha256?: string;
  readonly createdDirs: readonly string[];
}

export interface SearchOptions {
  /** Glob over workspace-relative paths; without a '/', it matches the file name at any depth. */
  readonly include?: string;
  readonly maxResults?: number;
  readonly caseSensitive?: boolean;
}

const NOFOLLOW = C.O_NOFOLLOW ?? 0;
const READ_FLAGS = C.O_RDONLY | NOFOLLOW | (C.O_NONBLOCK ?? 0);
const CREATE_FLAGS = C.O_WRONLY | C.O_CREAT | C.O_EXCL | NOFOLLOW;
/** Files above this are not hashed before being replaced or deleted (the audit then has no pre-hash). */
const MAX_HASH_BYTES = 256 * 1024 * 1024;
const CHUNK = 64 * 1024;
const WORKER_GRACE_MS = 2000;
const workerUrl = new URL(`./fs-search-worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export class FsEffects {
  readonly jail: WorkspaceJail;
  private readonly durable: boolean;
  private readonly searchBudgetMs: number;
  private readonly skipDirs: readonly string[];

  constructor(jail: WorkspaceJail, opts: FsEffectsOptions = {}) {
    this.jail = jail;
    this.durable = opts.durable ?? true;
    this.searchBudgetMs = opts.searchBudgetMs ?? 10_000;
    this.skipDirs = ['.git', ...(opts.searchSkipDirs ?? ['node_modules'])];
  }

  /** Text of a regular file, whole or a range of lines. Refuses binary files and files over LIMITS.maxReadBytes read whole. */
  async readText(t: ResolvedPath, opts: ReadTextOptions = {}): Promise<ReadTextResult> {
    const id = this.jailed(t);
    if (!t.exists || id.target === undefined) throw notFound(t);
    if (t.type === 'directory') throw new FsEffectError('not-a-file', `${t.path} is a directory; list it instead`);
    if (t.type !== 'file') throw new FsEffectError('not-a-file', `${t.path} is a ${t.type ?? 'special file'}, not a regular file`);
    return this.withDir(id.dir, id.dirId, async (dir) => {
      const sync = this.inPlace(dir, t);
      const { fd, st } = await openChecked(dir, t, READ_FLAGS, sync);
      try {
        const ranged = opts.line != null || opts.limit != null;
        const first = opts.line ?? 1;
        const count = opts.limit ?? Infinity;
        if (ranged && st.size > BigInt(LIMITS.maxReadBytes)) return await readLineRange(fd, t.path, first, count);
        const buf = await readUpTo(fd, Number(st.size), LIMITS.maxReadBytes, sync);
        if (buf === undefined) {
          throw new FsEffectError('too-large', `${t.path} is over ${LIMITS.maxReadBytes} bytes; read it in parts with line and limit`);
        }
        if (looksBinary(buf)) throw binary(t.path);
        const text = buf.toString('utf8');
        return { content: ranged ? sliceLines(text, first, count) : text, bytes: buf.length, sha256: sha256(buf) };
      } finally {
        await io.closeFd(fd, sync);
      }
    });
  }

  /**
   * Replaces (or creates) a file with `content`: temp file in the same directory,
   * then rename. Creates missing parent directories inside the workspace.
   */
  async writeText(t: ResolvedPath, content: string, staged?: StagedWrite): Promise<WriteTextResult> {
    const id = this.jailed(t);
    this.notRoot(t, 'write');
    if (staged !== undefined) return this.commitStaged(t, content, staged);
    const data = this.writeData(t, content);
    const created: string[] = [];
    return this.withDir(id.dir, id.dirId, (base) => this.withParents(base, id, t.path, created, async (dir) => this.commit(t, await this.stageIn(dir, t, content, data), created, false)));
  }

  /**
   * The part of a write nobody can observe (broker invariant 6): the new
   * content in a temp file beside the target (fsync'd when it will replace a
   * file), the old content hashed. Changes nothing at the target. Returns
   * undefined when the target's directory does not exist yet: creating it is
   * the write's to do. Commit with writeText(t, content, staged); if the
   * write will not happen, discardStaged.
   */
  async stageWrite(t: ResolvedPath, content: string): Promise<StagedWrite | undefined> {
    const id = this.jailed(t);
    this.notRoot(t, 'write');
    const data = this.writeData(t, content);
    if (path.dirname(t.path) !== id.dir) return undefined;
    const dir = await this.jail.anchor(id.dir, id.dirId);
    try {
      return await this.stageIn(dir, t, content, data);
    } catch (e) {
      await dir.close();
      throw e;
    }
  }

  /** Removes a staged write's temp file. */
  async discardStaged(staged: StagedWrite): Promise<void> {
    const s = staged as Staged;
    if (s.settled) return;
    s.settled = true;
    try {
      await closeUnsynced(s);
      await io.unlink(s.dir.entry(s.tmpName), s.dir.syncIo).catch(() => undefined);
    } finally {
      await s.dir.close();
    }
  }

  private writeData(t: ResolvedPath, content: string): Buffer {
    if (t.exists && t.type !== 'file') throw new FsEffectError('not-a-file', `${t.path} is a ${t.type ?? 'special file'}, not a regular file`);
    const data = Buffer.from(content, 'utf8');
    if (data.length > LIMITS.maxWriteBytes) throw new FsEffectError('too-large', `the content is ${data.length} bytes, over the write limit of ${LIMITS.maxWriteBytes}`);
    return data;
  }

  /** Hashes what is there now (checking it is what resolution saw) and writes the new content to a temp file in `dir`. */
  private async stageIn(dir: DirAnchor, t: ResolvedPath, content: string, data: Buffer): Promise<Staged> {
    const name = path.basename(t.path);
    let preSha256: string | undefined;
    let mode: number | undefined;
    if (t.exists) {
      // O_NOFOLLOW + identity check: the same test as expectSame, and the file is then open for its hash.
      const sync = this.inPlace(dir, t);
      const { fd, st } = await openChecked(dir, t, READ_FLAGS, sync);
      try {
        mode = Number(st.mode) & 0o777;
        preSha256 = await hashFile(fd, Number(st.size), sync);
      } finally {
        await io.closeFd(fd, sync);
      }
    } else {
      expectSame(t, await lstatEntry(dir, name));
    }
    const sync = dir.syncIo;
    const tmpName = `${TEMP_PREFIX}${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`;
    const tmp = dir.entry(tmpName);
    const fd = await io.openFd(tmp, CREATE_FLAGS, mode ?? 0o666, sync);
    // Replacing a file: its new content is on disk before the rename, so a
    // crash leaves the old content or the new, never an empty file. A new
    // file has no old content to lose: its fsync can follow the rename (the
    // outcome record waits for it), so the fd stays open until then.
    const syncLater = this.durable && !t.exists;
    try {
      try {
        await Promise.all([mode !== undefined ? io.fchmod(fd, mode, sync) : undefined, io.writeAll(fd, data, sync && data.length <= io.SYNC_MAX_BYTES)]);
        if (this.durable && !syncLater) await io.fsyncFd(fd);
      } finally {
        if (!syncLater) await io.closeFd(fd, sync);
      }
    } catch (e) {
      if (syncLater) await io.closeFd(fd, sync).catch(() => undefined);
      await io.unlink(tmp, sync).catch(() => undefined);
      throw e;
    }
    return {
      jail: this.jail, target: t.path, content, dir, name, tmpName, bytes: data.length, postSha256: sha256(data),
      ...(preSha256 ? { preSha256 } : {}), ...(syncLater ? { unsyncedFd: fd } : {}), settled: false,
    };
  }

  private async commitStaged(t: ResolvedPath, content: string, staged: StagedWrite): Promise<WriteTextResult> {
    const s = staged as Staged;
    if (s.settled || s.jail !== this.jail || s.target !== t.path || s.content !== content) throw new FsEffectError('unresolved', `the staged write is not this write to ${t.path}`);
    let result: WriteTextResult | undefined;
    try {
      result = await this.commit(t, s, [], true);
      return result;
    } finally {
      if (!result) await this.discardStaged(s);
    }
  }

  /**
   * Renames the staged file over the target if the directory and the target
   * are still what resolution saw. With `background`, the directory's fsync
   * (if durable) is left running in `durable` and closes the staged
   * directory when done; otherwise it is awaited here.
   */
  private async commit(t: ResolvedPath, s: Staged, created: string[], background: boolean): Promise<WriteTextResult> {
    const { dir } = s;
    const tmp = dir.entry(s.tmpName);
    try {
      await dir.verify();
      expectSame(t, await lstatEntry(dir, s.name));
      await io.rename(tmp, dir.entry(s.name), dir.syncIo);
    } catch (e) {
      await closeUnsynced(s);
      await io.unlink(tmp, dir.syncIo).catch(() => undefined);
      throw e;
    }
    s.settled = true;
    // The new file's data (if not synced before the rename), then the rename itself.
    const makeDurable = async () => {
      if (s.unsyncedFd !== undefined) {
        try {
          await io.fsyncFd(s.unsyncedFd);
        } finally {
          await closeUnsynced(s, true);
        }
      }
      await this.syncDir(dir);
    };
    let durable: Promise<void>;
    if (background) {
      durable = makeDurable().finally(() => dir.close());
      durable.catch(() => undefined); // the broker observes it; never an unhandled rejection
    } else {
      await makeDurable();
      durable = Promise.resolve();
    }
    return { created: !t.exists, bytes: s.bytes, ...(s.preSha256 ? { preSha256: s.preSha256 } : {}), postSha256: s.postSha256, createdDirs: created, durable };
  }

  /** Entries of a directory (symlinks listed as symlinks, never followed), sorted by name, at most LIMITS.maxListEntries. */
  async list(t: ResolvedPath): Promise<ListResult> {
    const id = this.jailed(t);
    if (!t.exists || id.target === undefined) throw notFound(t);
    if (t.type !== 'directory') throw new FsEffectError('not-a-directory', `${t.path} is not a directory; read it instead`);
    return this.withDir(t.path, id.target, async (dir) => {
      const { entries, truncated } = await readEntries(dir, LIMITS.maxListEntries);
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      // Sizes for files; a real type where the file system gave none (d_type unknown).
      // In batches of 64: in place with a yield between batches, or 64 at a time on the thread pool.
      const toStat = entries.filter((e) => e.type === 'file' || e.type === 'other');
      for (let i = 0; i < toStat.length; i += 64) {
        if (i > 0 && dir.syncIo) await new Promise((resolve) => setImmediate(resolve));
        await Promise.all(toStat.slice(i, i + 64).map(async (e) => {
          let st: Stats | undefined;
          try {
            st = await io.lstatNum(dir.entry(e.name), dir.syncIo);
          } catch {
            return; // unreadable entry: listed with the type readdir gave
          }
          if (!st) return;
          e.type = typeOf(st);
          if (st.isFile()) e.size = st.size;
        }));
      }
      return { path: t.path, entries, truncated };
    });
  }

  /** What is at the target now (a symlink is reported as one, not followed). */
  async stat(t: ResolvedPath): Promise<StatResult> {
    const id = this.jailed(t);
    let st: Stats | undefined;
    if (t.path === this.jail.root) {
      st = await this.withDir(t.path, id.target, (dir) => dir.stat());
    } else if (id.dir === path.dirname(t.path)) {
      st = await this.withDir(id.dir, id.dirId, (dir) => io.lstatNum(dir.entry(path.basename(t.path)), dir.syncIo));
    }
    if (!st) return { path: t.path, exists: false };
    return { path: t.path, exists: true, type: typeOf(st), size: st.size, mtimeMs: st.mtimeMs };
  }

  /** Deletes a file, symlink (the link itself) or directory; a non-empty directory needs `recursive`. */
  async delete(t: ResolvedPath, opts: { recursive?: boolean } = {}): Promise<DeleteResult> {
    const id = this.jailed(t);
    this.notRoot(t, 'delete');
    if (!t.exists || id.target === undefined) throw notFound(t);
    const name = path.basename(t.path);
    return this.withDir(id.dir, id.dirId, async (dir) => {
      const st = await lstatEntry(dir, name);
      expectSame(t, st);
      if (st!.isDirectory()) {
        let removed = 1;
        if (opts.recursive) {
          const sub = await dir.descend(name);
          try {
            if ((await sub.id()) !== id.target) throw new PathChanged(t.path, 'was replaced by another directory');
            removed += await this.removeContents(sub);
          } finally {
            await sub.close();
          }
        }
        await dir.verify();
        try {
          await fsp.rmdir(dir.entry(name));
        } catch (e) {
          if (errCode(e) === 'ENOTEMPTY' || errCode(e) === 'EEXIST') {
            throw new FsEffectError('not-empty', `${t.path} is a directory that is not empty; pass recursive: true to delete it and everything in it`);
          }
          throw e;
        }
        await this.syncDir(dir);
        return { removed };
      }
      let preSha256: string | undefined;
      if (st!.isFile()) {
        const sync = this.inPlace(dir, t);
        const { fd, st: fst } = await openChecked(dir, t, READ_FLAGS, sync);
        try {
          preSha256 = await hashFile(fd, Number(fst.size), sync);
        } finally {
          await io.closeFd(fd, sync);
        }
      }
      await dir.verify();
      expectSame(t, await lstatEntry(dir, name));
      await fsp.unlink(dir.entry(name));
      await this.syncDir(dir);
      return { ...(preSha256 ? { preSha256 } : {}), removed: 1 };
    });
  }

  /**
   * Renames `from` (the entry itself; resolve it with intent 'entry') to `to`.
   * Without `overwrite` an existing destination is refused; a file is then moved
   * with link + unlink so that a destination appearing at the last moment is
   * never replaced.
   */
  async move(from: ResolvedPath, to: ResolvedPath, opts: { overwrite?: boolean } = {}): Promise<MoveResult> {
    const fid = this.jailed(from);
    const tid = this.jailed(to);
    this.notRoot(from, 'move');
    this.notRoot(to, 'move onto');
    if (!from.exists || fid.target === undefined) throw notFound(from);
    if (to.exists && to.type === 'directory' && from.type !== 'directory') {
      throw new FsEffectError('exists', `${to.path} is a directory; give the full destination path, including the new name`);
    }
    const fromName = path.basename(from.path);
    const toName = path.basename(to.path);
    // A case-only rename on a case-insensitive volume: the destination is the source itself.
    const sameEntry = to.exists && tid.target === fid.target && fold(to.path, this.jail.caseInsensitive) === fold(from.path, this.jail.caseInsensitive);
    if (to.exists && !sameEntry && tid.target === fid.target) {
      throw new FsEffectError('exists', `${from.path} and ${to.path} are hard links to the same file; delete one of them instead`);
    }
    if (to.exists && !sameEntry && !opts.overwrite) throw new FsEffectError('exists', `${to.path} already exists; pass overwrite: true to replace it`);
    const created: string[] = [];
    return this.withDir(fid.dir, fid.dirId, (src) => this.withDir(tid.dir, tid.dirId, (base) => this.withParents(base, tid, to.path, created, async (dst) => {
      expectSame(from, await lstatEntry(src, fromName));
      const existing = sameEntry ? undefined : await lstatEntry(dst, toName);
      if (!sameEntry) expectSame(to, existing);
      let preSha256: string | undefined;
      if (existing?.isFile()) {
        const sync = this.inPlace(dst, to);
        const { fd, st } = await openChecked(dst, to, READ_FLAGS, sync);
        try {
          preSha256 = await hashFile(fd, Number(st.size), sync);
        } finally {
          await io.closeFd(fd, sync);
        }
      }
      await src.verify();
      await dst.verify();
      const linked = !existing && !sameEntry && from.type !== 'directory' && (await tryLinkThenUnlink(src, fromName, dst, toName, to.path));
      if (!linked) {
        expectSame(from, await lstatEntry(src, fromName));
        if (!sameEntry) expectSame(to, await lstatEntry(dst, toName));
        try {
          await fsp.rename(src.entry(fromName), dst.entry(toName));
        } catch (e) {
          throw moveError(from, to, e);
        }
      }
      await this.syncDir(dst);
      if (src.path !== dst.path) await this.syncDir(src);
      return { from: from.path, to: to.path, overwritten: existing !== undefined, ...(preSha256 ? { preSha256 } : {}), createdDirs: created };
    })));
  }

  /**
   * Lines matching a JavaScript regular expression, in files under `t` (or in `t`).
   * Skips symlinks, binary files, `.git` and the configured directories; bounded by
   * LIMITS (files, matches, bytes per file) and a time budget. `truncated` says the
   * answer may be incomplete (a bound was hit or a file was too large to scan).
   */
  async search(t: ResolvedPath, pattern: string, opts: SearchOptions = {}): Promise<SearchResult> {
    const id = this.jailed(t);
    if (!t.exists || id.target === undefined) throw notFound(t);
    if (t.type !== 'directory' && t.type !== 'file') throw new FsEffectError('not-a-file', `${t.path} is neither a file nor a directory`);
    const re = compileSearchPattern(pattern, opts.caseSensitive ?? true);
    const isDir = t.type === 'directory';
    return this.withDir(isDir ? t.path : id.dir, isDir ? id.target : id.dirId, async (dir) => {
      if (!isDir) expectSame(t, await lstatEntry(dir, path.basename(t.path)));
      const job: SearchJob = {
        start: dir.self,
        startRel: this.jail.relative(dir.path) ?? '',
        ...(isDir ? {} : { file: path.basename(t.path) }),
        fdAnchoring: this.jail.anchoring === 'procfd',
        source: re.source,
        flags: re.flags,
        ...(opts.include ? { include: opts.include } : {}),
        caseInsensitiveFs: this.jail.caseInsensitive,
        maxResults: Math.min(opts.maxResults ?? LIMITS.maxSearchMatches, LIMITS.maxSearchMatches),
        maxFiles: LIMITS.maxSearchFiles,
        maxFileBytes: LIMITS.maxSearchFileBytes,
        skipDirs: this.skipDirs,
        budgetMs: this.searchBudgetMs,
      };
      return runSearchWorker(job, this.searchBudgetMs + WORKER_GRACE_MS);
    });
  }

  private jailed(t: ResolvedPath): PathIdentity {
    if (!t.inWorkspace || !this.jail.contains(t.path)) {
      throw new FsEffectError('outside', `${t.path} is outside the workspace ${this.jail.root}; Tether's file effects act only inside it`);
    }
    if (!t.identity || (!this.jail.contains(t.identity.dir) && t.path !== this.jail.root)) {
      throw new FsEffectError('unresolved', `${t.path} was not resolved by this workspace's jail`);
    }
    return t.identity;
  }

  /** Calls on this file may run in place: its directory's may, and the file is on the root's device too (not a mount of its own). */
  private inPlace(dir: DirAnchor, t: ResolvedPath): boolean {
    return dir.syncIo && this.jail.inPlace(t.identity?.target);
  }

  private notRoot(t: ResolvedPath, verb: string): void {
    if (t.path === this.jail.root) throw new FsEffectError('root', `will not ${verb} the workspace root itself`);
  }

  private async withDir<T>(dir: string, expectedId: string | undefined, fn: (d: DirAnchor) => Promise<T>): Promise<T> {
    const d = await this.jail.anchor(dir, expectedId);
    try {
      return await fn(d);
    } finally {
      await d.close();
    }
  }

  /**
   * Runs `fn` in the target's parent directory, creating the directories between
   * the nearest existing one (`base`) and that parent one level at a time, each
   * entered without following a link.
   */
  private async withParents<T>(base: DirAnchor, id: PathIdentity, target: string, created: string[], fn: (d: DirAnchor) => Promise<T>): Promise<T> {
    const parent = path.dirname(target);
    if (parent === id.dir) return fn(base);
    let cur = base;
    try {
      for (const part of parent.slice(id.dir.length + 1).split(path.sep)) {
        try {
          await io.mkdir(cur.entry(part), cur.syncIo);
          created.push(path.join(cur.path, part));
        } catch (e) {
          if (errCode(e) !== 'EEXIST') throw e;
        }
        const next = await cur.descend(part);
        if (cur !== base) await cur.close();
        cur = next;
      }
      return await fn(cur);
    } finally {
      if (cur !== base) await cur.close();
    }
  }

  private async removeContents(dir: DirAnchor): Promise<number> {
    const names: string[] = [];
    for await (const e of await fsp.opendir(dir.self)) names.push(e.name);
    let removed = 0;
    for (const n of names) {
      const st = await fsp.lstat(dir.entry(n)).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) {
        const sub = await dir.descend(n);
        try {
          removed += await this.removeContents(sub);
        } finally {
          await sub.close();
        }
        await dir.verify();
        await fsp.rmdir(dir.entry(n));
      } else {
        await dir.verify();
        await fsp.unlink(dir.entry(n));
      }
      removed++;
    }
    return removed;
  }

  private async syncDir(dir: DirAnchor): Promise<void> {
    if (this.durable) await dir.sync();
  }
}

/**
 * Compiles an agent's search pattern, refusing invalid ones and the classic
 * exponential shape (a quantified group that contains a quantifier). This is a
 * first filter, not a proof: other slow patterns are stopped by the time budget.
 */
export function compileSearchPattern(pattern: string, caseSensitive = true): RegExp {
  if (pattern.length === 0) throw new FsEffectError('invalid-pattern', 'the search pattern is empty');
  if (pattern.length > LIMITS.maxSearchPatternChars) {
    throw new FsEffectError('invalid-pattern', `the search pattern is over ${LIMITS.maxSearchPatternChars} characters`);
  }
  let re: RegExp;
  try {
    re = new RegExp(pattern, caseSensitive ? '' : 'i');
  } catch (e) {
    throw new FsEffectError('invalid-pattern', `the search pattern is not a valid JavaScript regular expression: ${(e as Error).message}`);
  }
  const nested = nestedQuantifier(pattern);
  if (nested) {
    throw new FsEffectError('invalid-pattern', `the search pattern repeats a group that itself repeats (${nested}), which can take exponential time; rewrite it without the nesting`);
  }
  return re;
}

/** The first `( … + … )+`-shaped group in a pattern, or undefined. */
function nestedQuantifier(p: string): string | undefined {
  const stack: { start: number; inner: boolean }[] = [];
  const unbounded = (i: number): number => {
    // length of an unbounded quantifier at i (*, +, {n,} or {n,m} with m > 1), else 0
    const c = p[i];
    if (c === '*' || c === '+') return 1;
    if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
      if (m && m[2] !== undefined && (m[3] === '' || Number(m[3]) > 1)) return m[0].length;
    }
    return 0;
  };
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      for (i++; i < p.length && p[i] !== ']'; i++) if (p[i] === '\\') i++;
    } else if (c === '(') {
      stack.push({ start: i, inner: false });
    } else if (c === ')') {
      const g = stack.pop();
      if (!g) continue;
      const q = unbounded(i + 1);
      if (q > 0 && g.inner) return p.slice(g.start, i + 1 + q);
      const parent = stack[stack.length - 1];
      if (parent && (g.inner || q > 0)) parent.inner = true;
    } else if (unbounded(i) > 0) {
      const top = stack[stack.length - 1];
      if (top) top.inner = true;
    }
  }
  return undefined;
}

function runSearchWorker(job: SearchJob, hardLimitMs: number): Promise<SearchResult> {
  // The worker uses the caller's directory fd. Failures are answered on 'exit', once the
  // worker is gone, so that fd is never closed (and its number reused) under a running walk.
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: { tetherSearch: job } });
    let settled = false;
    let failure: FsEffectError | undefined;
    const timer = setTimeout(() => {
      failure = new FsEffectError('timeout', `the search was stopped after ${Math.round(hardLimitMs / 1000)} s; the pattern may backtrack catastrophically — simplify it or search a smaller path`);
      void worker.terminate();
    }, hardLimitMs);
    worker.once('message', (reply: SearchReply) => {
      if (reply.ok) {
        settled = true;
        clearTimeout(timer);
        resolve(reply.result);
      } else failure = new FsEffectError('io', `the search failed: ${reply.message}`);
    });
    worker.once('error', (e) => {
      failure ??= new FsEffectError('io', `the search failed: ${e.message}`);
    });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      if (!settled) reject(failure ?? new FsEffectError('io', `the search worker exited (${code}) without an answer`));
    });
  });
}

function lstatEntry(dir: DirAnchor, name: string): Promise<BigIntStats | undefined> {
  return io.lstatBig(dir.entry(name), dir.syncIo);
}

/** Up to `max` entries of the directory (d_type as readdir gives it); truncated when there were more. */
async function readEntries(dir: DirAnchor, max: number): Promise<{ entries: DirEntry[]; truncated: boolean }> {
  const entries: DirEntry[] = [];
  if (!dir.syncIo) {
    for await (const e of await fsp.opendir(dir.self, { bufferSize: 256 })) {
      if (entries.length >= max) return { entries, truncated: true };
      entries.push({ name: e.name, type: typeOf(e) });
    }
    return { entries, truncated: false };
  }
  // In place, yielding to the event loop every 256 entries.
  const d = opendirSync(dir.self, { bufferSize: 256 });
  try {
    for (let e = d.readSync(); e !== null; e = d.readSync()) {
      if (entries.length >= max) return { entries, truncated: true };
      entries.push({ name: e.name, type: typeOf(e) });
      if (entries.length % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    return { entries, truncated: false };
  } finally {
    d.closeSync();
  }
}

/** Throws PathChanged unless the entry is what resolution saw. */
/**
 * Closes a staged new file's descriptor once: the number is forgotten before
 * the close, so no later path can close it again after the kernel has given
 * it to someone else.
 */
async function closeUnsynced(s: Staged, report = false): Promise<void> {
  const fd = s.unsyncedFd;
  if (fd === undefined) return;
  s.unsyncedFd = undefined;
  const closing = io.closeFd(fd, s.dir.syncIo);
  if (report) await closing;
  else await closing.catch(() => undefined);
}

function expectSame(t: ResolvedPath, st: BigIntStats | undefined): void {
  if (!t.exists) {
    if (st) throw new PathChanged(t.path, 'appeared');
    return;
  }
  if (!st) throw new PathChanged(t.path, 'was removed');
  if (st.isSymbolicLink() && t.type !== 'symlink') throw new PathChanged(t.path, 'became a symbolic link');
  if (idOf(st) !== t.identity?.target) throw new PathChanged(t.path, 'was replaced by another file');
}

/** Opens the target without following a final symlink and checks it is the file resolution saw. */
async function openChecked(dir: DirAnchor, t: ResolvedPath, flags: number, sync: boolean): Promise<{ fd: number; st: BigIntStats }> {
  let fd: number;
  try {
    fd = await io.openFd(dir.entry(path.basename(t.path)), flags, undefined, sync);
  } catch (e) {
    if (errCode(e) === 'ELOOP') throw new PathChanged(t.path, 'became a symbolic link');
    if (errCode(e) === 'ENOENT') throw new PathChanged(t.path, 'was removed');
    throw e;
  }
  let st: BigIntStats;
  try {
    st = await io.fstatBig(fd, sync);
    if (!st.isFile()) throw new PathChanged(t.path, 'is no longer a regular file');
    if (idOf(st) !== t.identity?.target) throw new PathChanged(t.path, 'was replaced by another file');
  } catch (e) {
    await io.closeFd(fd, sync);
    throw e;
  }
  return { fd, st };
}

/** link(2) + unlink: a move that fails instead of replacing a destination. False when links are unsupported here. */
async function tryLinkThenUnlink(src: DirAnchor, fromName: string, dst: DirAnchor, toName: string, toPath: string): Promise<boolean> {
  try {
    await fsp.link(src.entry(fromName), dst.entry(toName));
  } catch (e) {
    const code = errCode(e);
    if (code === 'EEXIST') throw new PathChanged(toPath, 'appeared');
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EMLINK') return false;
    throw e;
  }
  await fsp.unlink(src.entry(fromName));
  return true;
}

function moveError(from: ResolvedPath, to: ResolvedPath, e: unknown): Error {
  switch (errCode(e)) {
    case 'EXDEV':
      return new FsEffectError('io', `cannot move ${from.path} to ${to.path}: they are on different file systems`);
    case 'EINVAL':
      return new FsEffectError('io', `cannot move the directory ${from.path} into itself (${to.path})`);
    case 'ENOTEMPTY':
    case 'EEXIST':
      return new FsEffectError('not-empty', `cannot replace ${to.path}: it is a directory that is not empty`);
    case 'EISDIR':
    case 'ENOTDIR':
      return new FsEffectError('exists', `cannot replace ${to.path} with ${from.path}: one is a directory and the other is not`);
    default:
      return e instanceof Error ? e : new Error(String(e));
  }
}

/**
 * The file's bytes, or undefined when there are more than `max`. A short read ends it (regular files).
 * Reads that end within SYNC_MAX_BYTES run in place when `sync`.
 */
async function readUpTo(fd: number, sizeHint: number, max: number, sync: boolean): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  let want = Math.min(sizeHint + 1, max + 1);
  for (;;) {
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(want, max + 1 - total)));
    const bytesRead = await io.readAt(fd, buf, 0, buf.length, total, sync && total + buf.length <= io.SYNC_MAX_BYTES + 1);
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
    if (total > max) return undefined;
    if (bytesRead < buf.length) break;
    want = CHUNK * 16;
  }
  return Buffer.concat(chunks, total);
}

/** Streams a big file for a line range, stopping once it is read. No hash: the file is not read whole. */
async function readLineRange(fd: number, p: string, first: number, count: number): Promise<ReadTextResult> {
  const last = first + count - 1;
  const decoder = new TextDecoder('utf-8');
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  let line = 1;
  let out = '';
  for (;;) {
    const bytesRead = await io.readAt(fd, buf, 0, buf.length, pos, false);
    if (bytesRead === 0) break;
    if (pos === 0 && looksBinary(buf.subarray(0, bytesRead))) throw binary(p);
    pos += bytesRead;
    const s = decoder.decode(buf.subarray(0, bytesRead), { stream: true });
    let i = 0;
    while (i < s.length && line <= last) {
      const nl = s.indexOf('\n', i);
      const end = nl === -1 ? s.length : nl + 1;
      if (line >= first) out += s.slice(i, end);
      if (nl !== -1) line++;
      i = end;
    }
    if (out.length > LIMITS.maxReadBytes) break;
    if (line > last) break;
  }
  if (line <= last && line >= first) out += decoder.decode();
  if (Buffer.byteLength(out) > LIMITS.maxReadBytes) {
    throw new FsEffectError('too-large', `lines ${first}–${last} of ${p} are over ${LIMITS.maxReadBytes} bytes; ask for fewer lines`);
  }
  return { content: out, bytes: pos };
}

/** Lines [first, first + count) of `text`, each with its line ending. */
export function sliceLines(text: string, first: number, count: number): string {
  let start = 0;
  for (let line = 1; line < first; line++) {
    const nl = text.indexOf('\n', start);
    if (nl === -1) return '';
    start = nl + 1;
  }
  let end = start;
  for (let n = 0; n < count && end < text.length; n++) {
    const nl = text.indexOf('\n', end);
    end = nl === -1 ? text.length : nl + 1;
  }
  return text.slice(start, end);
}

/** SHA-256 of an open file, in place when `sync` and it is within SYNC_MAX_BYTES. */
async function hashFile(fd: number, size: number, sync: boolean): Promise<string | undefined> {
  if (size > MAX_HASH_BYTES) return undefined;
  const inPlace = sync && size <= io.SYNC_MAX_BYTES;
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(size + 1, CHUNK * 16));
  let pos = 0;
  for (;;) {
    const bytesRead = await io.readAt(fd, buf, 0, buf.length, pos, inPlace && pos + buf.length <= io.SYNC_MAX_BYTES + 1);
    h.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
    if (bytesRead < buf.length) break; // a short read is the end of a regular file
    if (pos > MAX_HASH_BYTES) return undefined;
  }
  return h.digest('hex');
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A NUL byte in the first 8 KiB: the heuristic git and grep use. */
export function looksBinary(buf: Uint8Array): boolean {
  return buf.subarray(0, 8192).includes(0);
}

function notFound(t: ResolvedPath): FsEffectError {
  return new FsEffectError('not-found', `${t.path} does not exist`);
}

function binary(p: string): FsEffectError {
  return new FsEffectError('binary', `${p} looks like a binary file (it contains NUL bytes); Tether reads text files only`);
}
