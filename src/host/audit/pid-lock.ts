// A lock file holding the owner's pid: one writer for the audit log, one
// shipper per collector cursor. A lock whose process is gone is taken over.

import { readFile, rm, writeFile } from 'node:fs/promises';

/**
 * Creates `path` with this process's pid, or throws `fail(message)` saying
 * who holds `what` (e.g. "the audit log /x").
 */
export async function acquirePidLock(path: string, what: string, fail: (message: string) => Error): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fail(`cannot lock ${what}: ${(e as Error).message}`);
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw fail(`${what} is in use by another Tether process (pid ${pid}); close it first`);
    }
    if (pid === process.pid) throw fail(`${what} is already open in this process`);
    await rm(path, { force: true }); // left by a process that no longer runs
  }
  throw fail(`cannot lock ${what}`);
}

export async function releasePidLock(path: string): Promise<void> {
  await rm(path, { force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
