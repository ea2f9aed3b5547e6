// A lock file holding the owner's pid: one writer for the audit log, one
// shipper per collector cursor. A lock whose process is gone is taken over.
//
// Taking over is a race when several processes find the same stale lock. Only
// a process holding the takeover file (`<lock>.takeover`, created O_EXCL)
// removes a stale lock, and only after checking, while it holds it, that the
// lock is still the stale one it saw; then everyone competes again for the
// lock itself with O_EXCL, which exactly one wins. (A process that dies while
// holding the takeover file leaves it to be cleared as stale in turn; only if
// that coincides with other takers can two end up holding the lock.)

import { readFile, rm, writeFile } from 'node:fs/promises';

/** How many times a taker waits for another's takeover before giving up. */
const TAKEOVER_ATTEMPTS = 200;

/**
 * Creates `path` with this process's pid, or throws `fail(message)` saying
 * who holds `what` (e.g. "the audit log /x").
 */
export async function acquirePidLock(path: string, what: string, fail: (message: string) => Error): Promise<void> {
  const takeover = `${path}.takeover`;
  let unreadable = 0;
  for (let attempt = 0; attempt < TAKEOVER_ATTEMPTS; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fail(`cannot lock ${what}: ${(e as Error).message}`);
    }
    const pid = await holder(path);
    if (pid === undefined && ++unreadable < 20) {
      // Being written this instant, or left empty by a crash: look again shortly.
      await pause();
      continue;
    }
    if (pid === process.pid) throw fail(`${what} is already open in this process`);
    if (pid !== undefined && processAlive(pid)) throw fail(`${what} is in use by another Tether process (pid ${pid}); close it first`);
    // Left by a process that no longer runs: remove it, one taker at a time.
    try {
      await writeFile(takeover, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fail(`cannot take over the stale lock of ${what}: ${(e as Error).message}`);
      const taker = await holder(takeover);
      if (taker !== undefined && taker !== process.pid && !processAlive(taker)) await rm(takeover, { force: true });
      await pause();
      continue;
    }
    try {
      if ((await holder(path)) === pid) await rm(path, { force: true });
    } finally {
      await rm(takeover, { force: true });
    }
  }
  throw fail(`cannot lock ${what}: it stayed busy`);
}

export async function releasePidLock(path: string): Promise<void> {
  if ((await holder(path)) === process.pid) await rm(path, { force: true });
}

async function holder(path: string): Promise<number | undefined> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function pause(): Promise<void> {
  return new Promise((r) => setTimeout(r, 2 + Math.random() * 8));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
