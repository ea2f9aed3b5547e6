// Accounting of what a command changed in the workspace. Before a command the
// tree is snapshotted by metadata only (type, size, mtime, ctime, inode); after
// it, again; entries whose metadata differ are the changes. Only those are
// hashed (SHA-256), so a command costs two directory walks, not a read of the
// workspace. The "before" hash of a changed file comes from a cache filled by
// earlier commands and by a background pass over small files when a workspace
// is first seen: a file nobody hashed before it changed has no `preSha256`.
//
// Limits, recorded in the note rather than silently: walks stop at
// `maxEntries`; files over `maxHashBytes` (or past the per-command budget) are
// listed without a hash; at most `maxListed` changes are listed.
//
// Not covered: changes made at the same time by something else (the user, a
// second command in the same workspace) are attributed to this command; a
// change that restores size, mtime and ctime exactly is invisible (ctime
// cannot be set from user space, so only a clock jump does that).

import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, type Dirent } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditChangedFile } from '../../common/audit-record.ts';

export interface EntryMeta {
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
}

export interface WorkspaceSnapshot {
  readonly root: string;
  /** Workspace-relative '/'-separated path → metadata. */
  readonly entries: ReadonlyMap<string, EntryMeta>;
  /** The walk stopped early: changes beyond what was seen are not known. */
  readonly incomplete: boolean;
  /** Relative paths of `.git` entries (directories and worktree files), for read-only mounts. */
  readonly gitDirs: readonly string[];
}

export interface AccountingLimits {
  readonly maxEntries: number;
  readonly maxHashBytes: number;
  readonly hashBudgetBytes: number;
  readonly maxListed: number;
}

export const DEFAULT_ACCOUNTING: AccountingLimits = {
  maxEntries: 200_000,
  maxHashBytes: 256 * 1024 * 1024,
  hashBudgetBytes: 1024 * 1024 * 1024,
  maxListed: 5000,
};

export interface ChangeReport {
  readonly changedFiles: readonly AuditChangedFile[];
  /** Set when the list is incomplete (walk limit, files not hashed, list cut). */
  readonly note?: string;
}

/** Entries examined between yields to the event loop. */
const WALK_SLICE = 1000;

/**
 * Metadata of every entry under `root`. Synchronous readdir/lstat (ten times
 * faster than the promise API here: ~120 ms for 18,000 entries against
 * ~1.2 s), in slices with a yield to the event loop between them, so the host
 * stays responsive.
 */
export async function snapshotWorkspace(root: string, maxEntries = DEFAULT_ACCOUNTING.maxEntries): Promise<WorkspaceSnapshot> {
  const entries = new Map<string, EntryMeta>();
  const gitDirs: string[] = [];
  let incomplete = false;
  const stack: string[] = [''];
  let sinceYield = 0;
  walk: while (stack.length > 0) {
    const rel = stack.pop()!;
    let names: Dirent[];
    try {
      names = readdirSync(rel === '' ? root : join(root, rel), { withFileTypes: true });
    } catch {
      continue; // vanished or unreadable: nothing to compare
    }
    for (const d of names) {
      if (entries.size >= maxEntries) {
        incomplete = true;
        break walk;
      }
      const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
      const st = lstatSync(join(root, childRel), { throwIfNoEntry: false });
      if (!st) continue;
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
      entries.set(childRel, { type, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino });
      if (d.name === '.git') gitDirs.push(childRel);
      if (type === 'dir') stack.push(childRel);
      if (++sinceYield >= WALK_SLICE) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
  }
  return { root, entries, incomplete, gitDirs };
}

function sameMeta(a: EntryMeta, b: EntryMeta): boolean {
  return a.type === b.type && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

function cacheKey(m: EntryMeta): string {
  return `${m.type}:${m.size}:${m.mtimeMs}:${m.ctimeMs}:${m.ino}`;
}

/** SHA-256 of files by path and metadata: valid only while the metadata is unchanged. */
export class HashCache {
  private readonly map = new Map<string, { key: string; sha256: string }>();
  private readonly limit: number;
  constructor(limit = 100_000) {
    this.limit = limit;
  }

  get(path: string, meta: EntryMeta): string | undefined {
    const hit = this.map.get(path);
    return hit && hit.key === cacheKey(meta) ? hit.sha256 : undefined;
  }

  set(path: string, meta: EntryMeta, sha256: string): void {
    if (this.map.size >= this.limit && !this.map.has(path)) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    this.map.set(path, { key: cacheKey(meta), sha256 });
  }

  /**
   * Hashes small files of a snapshot that are not cached yet, within a byte
   * budget, skipping node_modules and .git. For a "before" hash of files a
   * later command changes. Run in the background; never throws.
   */
  async prime(snapshot: WorkspaceSnapshot, opts: { maxFileBytes?: number; budgetBytes?: number; signal?: AbortSignal } = {}): Promise<number> {
    const maxFile = opts.maxFileBytes ?? 1024 * 1024;
    let budget = opts.budgetBytes ?? 64 * 1024 * 1024;
    let hashed = 0;
    for (const [rel, meta] of snapshot.entries) {
      if (opts.signal?.aborted || budget <= 0) break;
      if (meta.type !== 'file' || meta.size > maxFile || /(^|\/)(node_modules|\.git)(\/|$)/.test(rel)) continue;
      const abs = join(snapshot.root, rel);
      if (this.get(abs, meta)) continue;
      const sha = await hashEntry(abs, meta);
      // Only keep it if the file did not change while it was read.
      const again = await metaOf(abs);
      if (sha && again && sameMeta(again, meta)) this.set(abs, meta, sha);
      budget -= meta.size;
      hashed++;
    }
    return hashed;
  }
}

async function metaOf(abs: string): Promise<EntryMeta | undefined> {
  try {
    const st = await lstat(abs);
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
    return { type, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
  } catch {
    return undefined;
  }
}

/** SHA-256 of a file's bytes, or of a symlink's target string. */
async function hashEntry(abs: string, meta: EntryMeta): Promise<string | undefined> {
  try {
    if (meta.type === 'symlink') return createHash('sha256').update(await readlink(abs)).digest('hex');
    if (meta.type !== 'file') return undefined;
    const h = createHash('sha256');
    for await (const chunk of createReadStream(abs)) h.update(chunk as Buffer);
    return h.digest('hex');
  } catch {
    return undefined;
  }
}

/** Compares two snapshots of one workspace and hashes what changed. */
export async function diffSnapshots(before: WorkspaceSnapshot, after: WorkspaceSnapshot, cache: HashCache, limits: AccountingLimits = DEFAULT_ACCOUNTING): Promise<ChangeReport> {
  const changes: { rel: string; change: AuditChangedFile['change']; pre?: EntryMeta; post?: EntryMeta }[] = [];
  for (const [rel, post] of after.entries) {
    const pre = before.entries.get(rel);
    if (!pre) changes.push({ rel, change: 'created', post });
    else if (!sameMeta(pre, post)) {
      // A directory whose listing changed shows up through its entries.
      if (pre.type === 'dir' && post.type === 'dir') continue;
      changes.push({ rel, change: 'modified', pre, post });
    }
  }
  if (!after.incomplete) {
    for (const [rel, pre] of before.entries) if (!after.entries.has(rel)) changes.push({ rel, change: 'deleted', pre });
  }
  changes.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const listed = changes.slice(0, limits.maxListed);
  let budget = limits.hashBudgetBytes;
  let unhashed = 0;
  const out: AuditChangedFile[] = [];
  for (const c of listed) {
    const abs = join(after.root, c.rel);
    const preSha = c.pre ? cache.get(abs, c.pre) : undefined;
    let postSha: string | undefined;
    if (c.post && (c.post.type === 'file' || c.post.type === 'symlink')) {
      if (c.post.type === 'file' && (c.post.size > limits.maxHashBytes || c.post.size > budget)) unhashed++;
      else {
        postSha = await hashEntry(abs, c.post);
        budget -= c.post.size;
        if (postSha) cache.set(abs, c.post, postSha);
      }
    }
    out.push({
      path: abs,
      change: c.change,
      ...(preSha ? { preSha256: preSha } : {}),
      ...(postSha ? { postSha256: postSha } : {}),
    });
  }
  const notes: string[] = [];
  if (before.incomplete || after.incomplete) notes.push(`the workspace has more entries than the accounting walks (${Math.max(before.entries.size, after.entries.size)}); changes beyond those are not known`);
  if (changes.length > listed.length) notes.push(`${changes.length - listed.length} more changed entries are not listed`);
  if (unhashed > 0) notes.push(`${unhashed} changed files were too large to hash`);
  return notes.length > 0 ? { changedFiles: out, note: notes.join('; ') } : { changedFiles: out };
}
