// The operation mix of the broker benchmarks (broker.bench.ts and
// broker-floor.bench.ts) and the figures they print.

export const READS = 5000;
export const WRITES = 500;
export const LISTS = 50;
/** Distinct 4 KB files read, in ten directories. */
export const FILES = 500;
export const WARMUP_OPS = 1100;

export type Op = { kind: 'read' | 'write' | 'list'; path: string };

/** Reads over `files` 4 KB files in dirs `${prefix}0..9`, with a write every 11th op and a list every 100th. */
export function mix(prefix: string, reads: number, writes: number, lists: number, files: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < reads; i++) ops.push({ kind: 'read', path: `${prefix}${i % 10}/f${i % files}.txt` });
  for (let i = 0; i < writes; i++) ops.splice(i * 11, 0, { kind: 'write', path: `${prefix}${i % 10}/w${i}.txt` });
  for (let i = 0; i < lists; i++) ops.splice(i * 100, 0, { kind: 'list', path: `${prefix}${i % 10}` });
  return ops;
}

/** The measured mix and its warm-up (same shape, other files). */
export const measuredOps = () => mix('d', READS, WRITES, LISTS, FILES);
export const warmupOps = () => mix('warm', WARMUP_OPS - 110, 100, 10, FILES);

export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export const f = (ms: number) => `${ms.toFixed(3)} ms`;
