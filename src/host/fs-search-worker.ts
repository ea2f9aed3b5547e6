// One content search for FsEffects, run in a worker thread so that a pattern
// which backtracks catastrophically can be stopped (Worker.terminate) without
// freezing the host. The walk never follows a symlink (they are skipped), never
// enters `skipDirs`, reads regular files only, skips files that look binary
// and stops at the file, match and time bounds it is given.
//
// With fd anchoring (Linux) every directory is opened relative to its parent's
// fd with O_NOFOLLOW|O_DIRECTORY, so nothing swapped in during the walk can
// lead it outside the workspace. With path anchoring a directory is read only
// if its realpath is still its own path; a swap in the instant between that
// check and the open cannot be excluded there. A terminated worker may leave
// the fds of the directories it was inside open (one per level).

import * as fs from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { globToRegExp } from '../common/grants.ts';
import type { SearchMatch, SearchResult } from '../common/protocol.ts';

export interface SearchJob {
  /** A path reaching the start directory (/proc/self/fd/N with fd anchoring). */
  readonly start: string;
  /** Workspace-relative path of the start directory ('' for the root). */
  readonly startRel: string;
  /** Search only this entry of the start directory. */
  readonly file?: string;
  readonly fdAnchoring: boolean;
  readonly source: string;
  readonly flags: string;
  readonly include?: string;
  readonly caseInsensitiveFs: boolean;
  readonly maxResults: number;
  readonly maxFiles: number;
  readonly maxFileBytes: number;
  readonly skipDirs: readonly string[];
  readonly budgetMs: number;
}

export type SearchReply = { readonly ok: true; readonly result: SearchResult } | { readonly ok: false; readonly message: string };

const C = fs.constants;
const FILE_FLAGS = C.O_RDONLY | (C.O_NOFOLLOW ?? 0) | (C.O_NONBLOCK ?? 0);
const DIR_FLAGS = C.O_RDONLY | (C.O_DIRECTORY ?? 0) | (C.O_NOFOLLOW ?? 0);
const EXCERPT_CHARS = 400;

export function runSearch(job: SearchJob): SearchResult {
  const re = new RegExp(job.source, job.flags.replace(/[gy]/g, ''));
  const fold = (s: string) => (job.caseInsensitiveFs ? s.normalize('NFC').toLowerCase() : s);
  const include = job.include ? globToRegExp(fold(job.include)) : undefined;
  const includeWholePath = job.include?.includes('/') ?? false;
  const skip = new Set(job.skipDirs.map(fold));
  const deadline = Date.now() + job.budgetMs;
  const buf = Buffer.alloc(job.maxFileBytes + 1);
  const matches: SearchMatch[] = [];
  let filesScanned = 0;
  let truncated = false;

  const join = (rel: string, name: string) => (rel === '' ? name : `${rel}/${name}`);

  const scanFile = (ref: string, rel: string, name: string): boolean => {
    if (include && !include.test(fold(includeWholePath ? rel : name))) return true;
    if (filesScanned >= job.maxFiles || Date.now() > deadline) {
      truncated = true;
      return false;
    }
    let fd: number;
    try {
      fd = fs.openSync(ref, FILE_FLAGS);
    } catch {
      return true; // gone, or became a symlink: not ours to read
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) return true;
      filesScanned++;
      if (st.size > job.maxFileBytes) {
        truncated = true;
        return true;
      }
      let n = 0;
      for (;;) {
        const got = fs.readSync(fd, buf, n, buf.length - n, n);
        if (got === 0) break;
        n += got;
        if (n === buf.length) break;
      }
      if (n > job.maxFileBytes) {
        truncated = true;
        return true;
      }
      const data = buf.subarray(0, n);
      if (data.subarray(0, 8192).includes(0)) return true;
      const text = data.toString('utf8');
      let start = 0;
      let line = 0;
      while (start < text.length) {
        const nl = text.indexOf('\n', start);
        const end = nl === -1 ? text.length : nl;
        line++;
        let s = text.slice(start, end);
        if (s.endsWith('\r')) s = s.slice(0, -1);
        const m = re.exec(s);
        if (m) {
          if (matches.length >= job.maxResults) {
            truncated = true;
            return false;
          }
          matches.push({ path: rel, line, text: excerpt(s, m.index), ...(st.nlink > 1 ? { hardLinked: true } : {}) });
        }
        if ((line & 1023) === 0 && Date.now() > deadline) {
          truncated = true;
          return false;
        }
        start = end + 1;
      }
      return true;
    } finally {
      fs.closeSync(fd);
    }
  };

  const walk = (dirRef: string, rel: string): boolean => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dirRef, { withFileTypes: true });
    } catch {
      return true;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const childRel = join(rel, e.name);
      const ref = path.join(dirRef, e.name);
      if (e.isSymbolicLink()) continue;
      if (e.isFile()) {
        if (!scanFile(ref, childRel, e.name)) return false;
      } else if (e.isDirectory() && !skip.has(fold(e.name))) {
        if (Date.now() > deadline) {
          truncated = true;
          return false;
        }
        if (job.fdAnchoring) {
          let fd: number;
          try {
            fd = fs.openSync(ref, DIR_FLAGS);
          } catch {
            continue;
          }
          try {
            if (!walk(`/proc/self/fd/${fd}`, childRel)) return false;
          } finally {
            fs.closeSync(fd);
          }
        } else {
          let real: string;
          try {
            real = fs.realpathSync.native(ref);
          } catch {
            continue;
          }
          if (real === ref && !walk(ref, childRel)) return false;
        }
      }
    }
    return true;
  };

  if (job.file !== undefined) scanFile(path.join(job.start, job.file), join(job.startRel, job.file), job.file);
  else walk(job.start, job.startRel);
  return { matches, truncated, filesScanned };
}

function excerpt(line: string, at: number): string {
  if (line.length <= EXCERPT_CHARS) return line;
  const from = Math.max(0, Math.min(at - 100, line.length - EXCERPT_CHARS));
  return `${from > 0 ? '…' : ''}${line.slice(from, from + EXCERPT_CHARS)}${from + EXCERPT_CHARS < line.length ? '…' : ''}`;
}

const data = workerData as { tetherSearch?: SearchJob } | null | undefined;
if (parentPort && data?.tetherSearch) {
  let reply: SearchReply;
  try {
    reply = { ok: true, result: runSearch(data.tetherSearch) };
  } catch (e) {
    reply = { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
  parentPort.postMessage(reply);
}
