// Checkpoints on a generated 10,000-file workspace (~100 MB): the first full
// checkpoint, a checkpoint after one known-path write (target ≤ 50 ms), a
// full-scan checkpoint with one changed file (target ≤ 1 s), restoring one
// file, and the space used after 1,000 checkpoints.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointStore } from '../../src/host/checkpoints/checkpoint-store.ts';

const FILES = 10_000;
const DIRS = 100;
const cause = { sessionId: 'bench', turn: 1, requestIds: ['r'], auditSeqs: [1] };

function fileName(i: number): string {
  return `pkg${String(i % DIRS).padStart(3, '0')}/mod${String(Math.floor(i / DIRS) % 10)}/file${i}.${i % 3 === 0 ? 'bin' : 'txt'}`;
}

/** ~10 KB average; text files are compressible, every third file is random bytes. */
async function generate(dir: string): Promise<number> {
  let bytes = 0;
  for (let i = 0; i < FILES; i++) {
    const size = 2_000 + ((i * 7919) % 16_000);
    const content = i % 3 === 0 ? randomBytes(size) : Buffer.from(randomBytes(Math.ceil(size * 0.75)).toString('base64').replace(/(.{72})/g, '$1\n').slice(0, size));
    const path = join(dir, fileName(i));
    if (i < DIRS * 10) await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, content);
    bytes += content.length;
  }
  return bytes;
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `median ${q(0.5).toFixed(1)} ms, p95 ${q(0.95).toFixed(1)} ms, max ${s.at(-1)!.toFixed(1)} ms (n=${s.length})`;
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

export default async function (): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'tether-bench-cp-'));
  const ws = join(root, 'ws');
  const data = join(root, 'data');
  try {
    await mkdir(ws);
    const [genMs, bytes] = await time(() => generate(ws));
    console.log(`workspace: ${FILES} files, ${mb(bytes)} (generated in ${(genMs / 1000).toFixed(1)} s); load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${availableParallelism()} cores`);

    const store = await CheckpointStore.open({ workspace: ws, dataDir: data });
    const [firstMs, first] = await time(() => store.checkpoint(cause));
    console.log(`first full checkpoint: ${(firstMs / 1000).toFixed(2)} s, ${first?.changed.length} files`);
    const afterFirst = await store.usage();
    console.log(`store after first checkpoint: ${mb(afterFirst.bytes)} (${mb(afterFirst.allocatedBytes)} on disk, ${afterFirst.objects} objects)`);

    // Let the first checkpoint's files age past the racy window so stat keys are trusted.
    await new Promise((r) => setTimeout(r, 2100));
    await store.checkpoint(cause);

    const known: number[] = [];
    for (let i = 0; i < 30; i++) {
      const path = fileName((i * 37) % FILES);
      await writeFile(join(ws, path), `edit ${i}\n${randomBytes(3000).toString('base64')}\n`);
      known.push((await time(() => store.checkpoint({ ...cause, paths: [path] })))[0]);
    }
    console.log(`checkpoint after one known-path write: ${stats(known)} (target ≤ 50 ms)`);

    const full: number[] = [];
    for (let i = 0; i < 8; i++) {
      const path = fileName((i * 101 + 5) % FILES);
      await writeFile(join(ws, path), `full ${i}\n${randomBytes(3000).toString('base64')}\n`);
      const [ms, info] = await time(() => store.checkpoint(cause));
      if (info === undefined || !info.changed.some((c) => c.path === path)) throw new Error('full scan missed the change');
      full.push(ms);
    }
    console.log(`full-scan checkpoint, one changed file: ${stats(full)} (target ≤ 1 s)`);
    const [noChangeMs] = await time(() => store.checkpoint(cause));
    console.log(`full-scan checkpoint, nothing changed: ${noChangeMs.toFixed(1)} ms`);

    const target = (await store.list()).at(-1)!;
    const restores: number[] = [];
    const plans: number[] = [];
    for (let i = 0; i < 5; i++) {
      const path = fileName((i * 37) % FILES);
      const [planMs] = await time(() => store.planRestore(target.id, { paths: [path] }));
      plans.push(planMs);
      const [ms, res] = await time(() => store.restore(target.id, { paths: [path], overwriteConflicts: true }));
      if (res.plan.files.length !== 1) throw new Error(`expected one file restored, got ${res.plan.files.length}`);
      restores.push(ms);
    }
    console.log(`plan restore of one file: ${stats(plans)}`);
    console.log(`restore of one file (with its before/after checkpoints): ${stats(restores)}`);

    const before = await store.usage();
    const each: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const path = fileName((i * 7) % FILES);
      await writeFile(join(ws, path), `many ${i}\n${randomBytes(1500).toString('base64')}\n`);
      each.push((await time(() => store.checkpoint({ ...cause, turn: i, paths: [path] })))[0]);
    }
    const after = await store.usage();
    const total = each.reduce((a, b) => a + b, 0);
    console.log(`1,000 single-file checkpoints: ${(total / 1000).toFixed(1)} s; each ${stats(each)} (retention at 1,000 kept prunes every 50 drops)`);
    console.log(`space used after 1,000 more checkpoints: ${mb(after.bytes)} (${mb(after.allocatedBytes)} on disk, ${after.objects} objects, ${after.checkpoints} checkpoints kept); grew ${mb(after.bytes - before.bytes)} (${mb(after.allocatedBytes - before.allocatedBytes)} on disk)`);
    const [pruneMs, pruned] = await time(() => store.prune());
    console.log(`prune: ${pruneMs.toFixed(0)} ms, removed ${pruned.removedObjects} objects`);
    await store.close();
    const [openMs, reopened] = await time(() => CheckpointStore.open({ workspace: ws, dataDir: data }));
    const [listMs, listed] = await time(() => reopened.list());
    console.log(`reopen: ${openMs.toFixed(0)} ms; first list() of ${listed.length} checkpoints: ${listMs.toFixed(0)} ms`);
    await reopened.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
