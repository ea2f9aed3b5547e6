// A process killed (SIGKILL) in the middle of a checkpoint must leave a
// shadow repository that opens, lists, checkpoints, restores and passes
// `git fsck --strict`.
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../../src/host/checkpoints/checkpoint-store.ts';
import { cause, fsckShadow, git, picture, sleep, tempDir } from './helpers.ts';

const child = join(import.meta.dirname, 'fixtures', 'checkpoint-loop.ts');

/** Runs the loop until it has started `afterBegins` checkpoints, waits `delayMs`, kills it; returns its output. */
async function killDuringCheckpoint(ws: string, data: string, afterBegins: number, delayMs: number): Promise<string> {
  const proc = spawn(process.execPath, [child, ws, data], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if ((out.match(/^begin /gm) ?? []).length >= afterBegins) resolve();
    });
    proc.once('exit', () => reject(new Error(`child exited early: ${err}`)));
  });
  await sleep(delayMs);
  proc.kill('SIGKILL');
  await exited;
  return out;
}

describe('checkpoints survive a SIGKILL', () => {
  it('leaves the shadow repository usable when the process is killed during checkpoints', async () => {
    const ws = await tempDir('crash-ws');
    const data = await tempDir('crash-data');
    let killedMidway = 0;
    for (const [begins, delay] of [[1, 40], [2, 5], [1, 150], [3, 20]] as const) {
      const out = await killDuringCheckpoint(ws, data, begins, delay);
      const started = (out.match(/^begin (\d+)$/gm) ?? []).length;
      const finished = (out.match(/^done (\d+)$/gm) ?? []).length;
      if (started > finished) killedMidway++;

      const store = await CheckpointStore.open({ workspace: ws, dataDir: data });
      const list = await store.list();
      expect(list.length).toBeGreaterThanOrEqual(0);
      // Every checkpoint that is listed is whole: real git finds nothing missing or corrupt.
      const gitdir = join(store.storeDir, 'git');
      expect(fsckShadow(gitdir)).toEqual({ status: 0, problems: [] });
      // And it keeps working: checkpoint the workspace, restore the latest one into it.
      const now = await store.checkpoint(cause);
      const latest = now ?? (await store.latest());
      expect(latest).toBeDefined();
      const shadowFiles = git(gitdir, ['--git-dir', gitdir, 'ls-tree', '-r', '--name-only', latest!.id]).stdout.split('\n').filter(Boolean);
      expect(shadowFiles.length).toBe(300);
      const before = picture(ws);
      const plan = await store.planRestore(latest!.id);
      expect(plan.files).toEqual([]);
      expect(picture(ws)).toEqual(before);
      expect(await readdir(join(store.storeDir, 'tmp'))).toEqual([]);
      await store.close();
    }
    // The kills landed inside checkpoints (not only between them).
    expect(killedMidway).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
