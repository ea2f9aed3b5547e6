// The pid lock file the audit log and each shipper hold, on real files and
// real processes.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquirePidLock, releasePidLock } from '../../../src/host/audit/pid-lock.ts';

const fail = (m: string) => new Error(m);
/** The pid of a process that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

describe('acquirePidLock', () => {
  it('takes a free lock, refuses a second taker while held, and is free again once released', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'tether-lock-')), 'x.lock');
    await acquirePidLock(path, 'the thing', fail);
    expect((await readFile(path, 'utf8')).trim()).toBe(String(process.pid));
    await expect(acquirePidLock(path, 'the thing', fail)).rejects.toThrow('the thing is already open in this process');
    await releasePidLock(path);
    await acquirePidLock(path, 'the thing', fail);
  });

  it('refuses a lock a live process holds, naming it; never removes it on release', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'tether-lock-')), 'x.lock');
    await writeFile(path, `${process.ppid}\n`);
    await expect(acquirePidLock(path, 'the thing', fail)).rejects.toThrow(`the thing is in use by another Tether process (pid ${process.ppid}); close it first`);
    await releasePidLock(path);
    expect((await readFile(path, 'utf8')).trim()).toBe(String(process.ppid));
  });

  it('takes over a lock left by a process that is gone; of many racing for it, exactly one wins and nothing is left aside', async () => {
    const dead = deadPid();
    for (let round = 0; round < 20; round++) {
      const dir = await mkdtemp(join(tmpdir(), 'tether-lock-'));
      const path = join(dir, 'x.lock');
      await writeFile(path, round % 4 === 3 ? '' : `${dead}\n`); // sometimes left empty by a crash
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => acquirePidLock(path, 'the thing', fail)));
      expect(results.filter((r) => r.status === 'fulfilled'), `round ${round}`).toHaveLength(1);
      expect((await readFile(path, 'utf8')).trim()).toBe(String(process.pid));
      expect(await readdir(dir)).toEqual(['x.lock']);
    }
  });
});
