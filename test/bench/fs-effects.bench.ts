// Cost of the jail and the checked effects against plain fs calls on the same
// files: resolve, read 4 KB, write 4 KB (with and without fsync), list, search.
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsEffects } from '../../src/host/fs-effects.ts';
import { WorkspaceJail } from '../../src/host/workspace-jail.ts';

function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function time(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

function row(name: string, samples: number[]): void {
  const f = (ms: number) => `${(ms * 1000).toFixed(0)} µs`.padStart(9);
  console.log(`${name.padEnd(44)} p50 ${f(pct(samples, 50))}  p99 ${f(pct(samples, 99))}  (n=${samples.length})`);
}

export default async function (): Promise<void> {
  const base = await realpath(await mkdtemp(join(tmpdir(), 'tether-bench-fx-')));
  const ws = join(base, 'ws');
  await mkdir(join(ws, 'src', 'a', 'b'), { recursive: true });
  const body = 'x'.repeat(4095) + '\n';
  for (let i = 0; i < 200; i++) await writeFile(join(ws, 'src', 'a', 'b', `f${i}.txt`), body);
  for (let i = 0; i < 50; i++) await writeFile(join(ws, 'src', `e${i}.ts`), `export const v${i} = ${i};\n`);

  for (const anchoring of ['auto', 'path'] as const) {
    const jail = await WorkspaceJail.open(ws, { anchoring });
    const fx = new FsEffects(jail);
    const fast = new FsEffects(jail, { durable: false });
    console.log(`\n# anchoring: ${jail.anchoring}`);
    const rel = (i: number) => `src/a/b/f${i % 200}.txt`;
    await time(200, async (i) => fx.readText(await jail.resolve(rel(i)))); // warm up
    row('resolve (read intent, depth 4)', await time(2000, (i) => jail.resolve(rel(i))));
    row('resolve + readText 4 KB', await time(2000, async (i) => fx.readText(await jail.resolve(rel(i)))));
    row('  direct fs.readFile 4 KB', await time(2000, (i) => readFile(join(ws, rel(i)), 'utf8')));
    row('resolve + writeText 4 KB (durable: fsync)', await time(300, async (i) => fx.writeText(await jail.resolve(rel(i), { intent: 'write' }), body)));
    row('resolve + writeText 4 KB (durable: false)', await time(500, async (i) => fast.writeText(await jail.resolve(rel(i), { intent: 'write' }), body)));
    row('  direct fs.writeFile 4 KB', await time(500, (i) => writeFile(join(ws, rel(i)), body)));
    row('resolve + list (50 entries)', await time(300, async () => fx.list(await jail.resolve('src'))));
    row('  direct readdir withFileTypes (50)', await time(300, () => readdir(join(ws, 'src'), { withFileTypes: true })));
    row('resolve + search (250 files, in a worker)', await time(20, async () => fx.search(await jail.resolve('.'), 'v4[0-9]')));
    await jail.close();
  }
  await rm(base, { recursive: true, force: true });
}
