// Walks the workspace for checkpoints: regular files and symlinks that are
// not excluded, with their stat keys; never follows a symlink, never enters
// an excluded directory. Reading a file opens it with O_NOFOLLOW so a file
// swapped for a link between scan and read is not followed out of the tree.

import { constants, lstatSync, promises as fsp, readdirSync, type Dirent, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { SkippedPath } from './checkpoint-types.ts';
import type { FileMode } from './git-objects.ts';
import { unstorableName, type IgnoreRules } from './ignore-rules.ts';
import type { StatKey } from './snapshot-tree.ts';

export interface ScannedFile {
  readonly mode: FileMode;
  readonly stat: StatKey;
}

export interface ScanResult {
  readonly files: Map<string, ScannedFile>;
  readonly skipped: SkippedPath[];
  /** The subtrees this scan covered ('' is the whole workspace): what is not in `files` there is gone. */
  readonly roots: string[];
}

/** A file that changed within this window of a scan may change again unseen by size+mtime. */
export const RACY_MS = 2000;

export function statKey(st: Stats): StatKey {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}

export function sameStat(a: StatKey | undefined, b: StatKey): boolean {
  return a !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

export function modeOf(st: Stats): FileMode | undefined {
  if (st.isSymbolicLink()) return '120000';
  if (st.isFile()) return st.mode & 0o100 ? '100755' : '100644';
  return undefined;
}

export interface ScannerOptions {
  readonly workspace: string;
  readonly rules: IgnoreRules;
  readonly maxFileBytes: number;
}

export class WorkspaceScanner {
  private readonly opts: ScannerOptions;
  constructor(opts: ScannerOptions) {
    this.opts = opts;
  }

  abs(rel: string): string {
    return rel === '' ? this.opts.workspace : join(this.opts.workspace, rel);
  }

  async scanAll(): Promise<ScanResult> {
    await this.opts.rules.beginPass();
    const out: ScanResult = { files: new Map(), skipped: [], roots: [''] };
    await this.scanDir('', out);
    return out;
  }

  /** Scans only the given workspace-relative paths (files or directories, present or gone). */
  async scanPaths(paths: readonly string[]): Promise<ScanResult> {
    const roots = minimalRoots(paths);
    if (roots.includes('')) return this.scanAll();
    await this.opts.rules.beginPass();
    const out: ScanResult = { files: new Map(), skipped: [], roots };
    for (const rel of roots) {
      if (!(await this.reachable(rel))) continue;
      let st: Stats;
      try {
        st = await fsp.lstat(this.abs(rel));
      } catch (e) {
        if (isMissing(e)) continue;
        throw e;
      }
      if (await this.opts.rules.isExcludedPath(rel, st.isDirectory())) continue;
      const bad = rel.split('/').map(unstorableName).find((r) => r !== undefined);
      if (bad) {
        out.skipped.push({ path: rel, reason: 'unstorable-name', detail: bad });
        continue;
      }
      if (st.isDirectory()) await this.scanDir(rel, out);
      else this.addEntry(rel, st, out);
    }
    return out;
  }

  /** Whether every directory above `rel` is a real directory (not a link, not a file). */
  async reachable(rel: string): Promise<boolean> {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      try {
        const st = await fsp.lstat(this.abs(parts.slice(0, i).join('/')));
        if (!st.isDirectory()) return false;
      } catch (e) {
        if (isMissing(e)) return false;
        throw e;
      }
    }
    return true;
  }

  /** Content of a file (or a link's target) and the stat key taken before reading it. */
  async read(rel: string, mode: FileMode): Promise<{ content: Buffer; stat: StatKey }> {
    const path = this.abs(rel);
    if (mode === '120000') {
      const st = await fsp.lstat(path);
      if (!st.isSymbolicLink()) throw new Error(`${rel} changed type while being read`);
      return { content: await fsp.readlink(path, { encoding: 'buffer' }), stat: statKey(st) };
    }
    const handle = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new Error(`${rel} is no longer a regular file`);
      if (st.size > this.opts.maxFileBytes) throw new Error(`${rel} grew past the size limit while being read`);
      const content = await handle.readFile();
      return { content, stat: statKey(st) };
    } finally {
      await handle.close();
    }
  }

  // One directory at a time with synchronous readdir/lstat, yielding to the
  // event loop between directories: several times faster than a promise per
  // file, and the loop is never blocked for longer than one directory takes.
  private async scanDir(rel: string, out: ScanResult): Promise<void> {
    const stack = [rel];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let entries: Dirent[];
      try {
        entries = readdirSync(this.abs(dir), { withFileTypes: true });
      } catch (e) {
        if (!isMissing(e)) out.skipped.push({ path: dir, reason: 'unreadable', detail: (e as Error).message });
        continue;
      }
      await this.opts.rules.enterDir(dir, entries.some((d) => d.name === '.gitignore'));
      for (const d of entries) {
        const path = dir === '' ? d.name : `${dir}/${d.name}`;
        const isDir = d.isDirectory();
        if (this.opts.rules.isExcluded(path, isDir)) continue;
        const bad = unstorableName(d.name);
        if (bad) {
          out.skipped.push({ path, reason: 'unstorable-name', detail: bad });
        } else if (isDir) {
          stack.push(path);
        } else if (!d.isFile() && !d.isSymbolicLink()) {
          out.skipped.push({ path, reason: 'special-file' });
        } else {
          try {
            this.addEntry(path, lstatSync(this.abs(path)), out);
          } catch (e) {
            if (!isMissing(e)) out.skipped.push({ path, reason: 'unreadable', detail: (e as Error).message });
          }
        }
      }
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  private addEntry(rel: string, st: Stats, out: ScanResult): void {
    const mode = modeOf(st);
    if (mode === undefined) {
      if (!st.isDirectory()) out.skipped.push({ path: rel, reason: 'special-file' });
      return;
    }
    if (mode !== '120000' && st.size > this.opts.maxFileBytes) {
      out.skipped.push({ path: rel, reason: 'too-large', detail: `${st.size} bytes, over the ${this.opts.maxFileBytes}-byte limit` });
      return;
    }
    out.files.set(rel, { mode, stat: statKey(st) });
  }
}

export function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Drops paths covered by another path in the list ('' covers everything). */
export function minimalRoots(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths)].sort();
  const out: string[] = [];
  for (const p of sorted) {
    if (out.some((r) => r === '' || p === r || p.startsWith(`${r}/`))) continue;
    out.push(p);
  }
  return out;
}

export function underRoot(path: string, root: string): boolean {
  return root === '' || path === root || path.startsWith(`${root}/`);
}
