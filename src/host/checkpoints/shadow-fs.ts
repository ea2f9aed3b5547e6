// The file system handed to isomorphic-git. It is confined to the shadow git
// directory: any read or write outside it throws, so a mistake (a forgotten
// `gitdir`, a `dir` default of `<dir>/.git`) fails loudly instead of touching
// the user's repository. Every file write lands via a temporary file and a
// rename, so a process killed mid-write never leaves a truncated object or ref
// under its final name (isomorphic-git skips writing an object whose file
// already exists, so a torn object would otherwise stay corrupt forever).
//
// Not here: fsync. A SIGKILL keeps the page cache; a power cut may lose the
// newest objects, which recovery on open detects (see checkpoint-store.ts).

import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import type { PromiseFsClient } from 'isomorphic-git';

export const TMP_PREFIX = '.tether-tmp-';

export class ShadowFsViolation extends Error {
  override readonly name = 'ShadowFsViolation';
}

export type ShadowFs = PromiseFsClient;

/** `tmpDir` must be on the same file system as `gitdir` (renames are atomic only there). */
export function createShadowFs(gitdir: string, tmpDir: string): ShadowFs {
  const root = resolve(gitdir);
  const inside = (p: unknown, op: string): string => {
    if (typeof p !== 'string') throw new ShadowFsViolation(`isomorphic-git called ${op} with a non-string path; refused`);
    const abs = resolve(p);
    if (abs !== root && !abs.startsWith(root + sep)) {
      throw new ShadowFsViolation(`isomorphic-git tried to ${op} ${abs}, outside the shadow repository ${root}; refused (pass gitdir explicitly, never dir)`);
    }
    return abs;
  };
  // Every function is async: isomorphic-git detects a promise-based fs by
  // calling readFile() with no arguments and looking for a promise.
  const promises = {
    readFile: async (p: string, opts?: unknown) => fsp.readFile(inside(p, 'read'), opts as never),
    async writeFile(p: string, data: string | Uint8Array, opts?: unknown) {
      const abs = inside(p, 'write');
      await atomicWrite(abs, data, { tmpDir, encoding: encodingOf(opts) });
    },
    unlink: async (p: string) => fsp.unlink(inside(p, 'delete')),
    readdir: async (p: string, opts?: unknown) => fsp.readdir(inside(p, 'list'), opts as never),
    mkdir: async (p: string, opts?: unknown) => fsp.mkdir(inside(p, 'create a directory at'), opts as never),
    rmdir: async (p: string) => fsp.rmdir(inside(p, 'remove a directory at')),
    rm: async (p: string, opts?: unknown) => fsp.rm(inside(p, 'remove'), opts as never),
    stat: async (p: string, opts?: unknown) => fsp.stat(inside(p, 'stat'), opts as never),
    lstat: async (p: string, opts?: unknown) => fsp.lstat(inside(p, 'lstat'), opts as never),
    readlink: async (p: string, opts?: unknown) => fsp.readlink(inside(p, 'read a link at'), opts as never),
    symlink: async (_target: string, p: string) => Promise.reject(new ShadowFsViolation(`isomorphic-git tried to create a symlink at ${String(p)}; the shadow repository never holds links`)),
    chmod: async (p: string, mode: number) => fsp.chmod(inside(p, 'chmod'), mode),
  };
  return { promises };
}

function encodingOf(opts: unknown): BufferEncoding | undefined {
  return typeof opts === 'string' ? (opts as BufferEncoding) : (opts as { encoding?: BufferEncoding } | undefined)?.encoding;
}

export interface AtomicWriteOptions {
  /** Where the temporary file goes; the target's own directory when absent. */
  readonly tmpDir?: string;
  readonly encoding?: BufferEncoding | undefined;
  readonly fsync?: boolean;
  readonly mode?: number;
}

/** Write to a temporary file, then rename over the target. */
export async function atomicWrite(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = `${opts.tmpDir ?? dirname(path)}/${TMP_PREFIX}${randomBytes(8).toString('hex')}`;
  const encoding = opts.encoding;
  const fsync = opts.fsync ?? false;
  const handle = await fsp.open(tmp, 'wx', opts.mode ?? 0o644);
  try {
    await handle.writeFile(data, encoding ? { encoding } : {});
    if (fsync) await handle.sync();
  } catch (e) {
    await handle.close();
    await fsp.unlink(tmp).catch(() => {});
    throw e;
  }
  await handle.close();
  try {
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.unlink(tmp).catch(() => {});
    throw e;
  }
}
