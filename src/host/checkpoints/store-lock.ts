// One process at a time in a checkpoint store: a lock file created with
// O_EXCL holding the owner's pid. A lock whose owner is gone (killed, crashed)
// is taken over. Within a process, `CheckpointStore` serialises its own calls.
//
// Not here: locks across machines (a store on a network share) — a pid means
// nothing there, so do not put Tether's data directory on one.

import { hostname } from 'node:os';
import { promises as fsp, readFileSync } from 'node:fs';

export class StoreBusyError extends Error {
  override readonly name = 'StoreBusyError';
}

export async function acquireLock(path: string, timeoutMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  const me = `${process.pid} ${hostname()}\n`;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      const handle = await fsp.open(path, 'wx', 0o600);
      await handle.writeFile(me);
      await handle.close();
      return async () => {
        await fsp.unlink(path).catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = await fsp.readFile(path, 'utf8').catch(() => '');
    const [pidText, host] = owner.trim().split(' ');
    const pid = Number(pidText);
    if (owner !== '' && host === hostname() && Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
      // Stale: its owner died holding it. Remove only if it is still the same file.
      const again = await fsp.readFile(path, 'utf8').catch(() => '');
      if (again === owner) await fsp.unlink(path).catch(() => {});
      continue;
    }
    if (owner === '') {
      // Being created right now, or left empty by a crash between create and write.
      const st = await fsp.stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 5000) await fsp.unlink(path).catch(() => {});
    }
    if (Date.now() >= deadline) {
      throw new StoreBusyError(`the checkpoint store is in use by process ${pidText || 'unknown'} (lock file ${path}); wait for it to finish, or remove the lock file if no Tether process is running`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process nobody has reaped yet (a zombie) still answers signal 0.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
