// A lock file holding the owner's pid: one writer for the audit log, one
// shipper per collector cursor. A lock whose process is gone is taken over.
//
// Taking over is a race when two processes find the same stale lock: each
// first renames the lock aside under a name of its own (only one rename of a
// given file succeeds), checks that what it moved is the stale lock it saw and
// not a fresh one someone else just made (putting a fresh one back with
// link(2), which never replaces), and only then tries to create its own.

import { randomBytes } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';

/**
 * Creates `path` with this process's pid, or throws `fail(message)` saying
 * who holds `what` (e.g. "the audit log /x").
 */
export async function acquirePidLock(path: string, what: string, fail: (message: string) => Error): Promise<void> {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fail(`cannot lock ${what}: ${(e as Error).message}`);
    }
    const pid = await holder(path);
    if (pid === process.pid) throw fail(`${what} is already open in this process`);
    if (pid !== undefined && processAlive(pid)) throw fail(`${what} is in use by another Tether process (pid ${pid}); close it first`);
    // Left by a process that no longer runs (or unreadable): move it aside, then try again.
    const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await rename(path, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // someone else moved it first
      throw fail(`cannot take over the stale lock of ${what}: ${(e as Error).message}`);
    }
    const moved = await holder(aside);
    if (moved !== pid && moved !== undefined && processAlive(moved)) {
      // A fresh lock was made between our look and our rename: give it back.
      await link(aside, path).catch(() => undefined);
      await rm(aside, { force: true });
      throw fail(`${what} is in use by another Tether process (pid ${moved}); close it first`);
    }
    await rm(aside, { force: true });
  }
  throw fail(`cannot lock ${what}: another process keeps taking it over`);
}

export async function releasePidLock(path: string): Promise<void> {
  if ((await holder(path)) === process.pid) await rm(path, { force: true });
}

async function holder(path: string): Promise<number | undefined> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
