// Crash suite: a writer process is SIGKILLed at random points while appending
// under load (including while it is still recovering from the previous kill).
// After every kill the log is reopened (recovery seals any torn tail), and then:
// every record the writer acknowledged is there with the hash it was given,
// and the whole log verifies.
//
// A SIGKILL alone never tears a line on Linux (a write() to a file completes or
// does not start), so every other round also simulates what a power cut can
// leave: part of the bytes written after the last fsync. Those bytes were never
// acknowledged; recovery must detect, seal and record them.
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/common/audit-record.ts';
import { verifyAuditDir } from '../../../src/host/audit/audit-verifier.ts';
import { leafHashOfLine, toHex } from '../../../src/host/audit/hashing.ts';
import { withoutRunway } from '../../../src/host/audit/log-layout.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';

const key = NoteSigningKey.generate('tether-audit-crash');
const writer = join(import.meta.dirname, 'crash-writer.ts');

/** Runs the writer, kills it with SIGKILL after `killAfterMs` (counted from spawn or from "ready"), returns what it acknowledged. */
async function runAndKill(dir: string, killAfterMs: number, fromReady: boolean): Promise<Map<number, string>> {
  const child = spawn(process.execPath, [writer, dir], { env: { ...process.env, TETHER_TEST_SIGNER_KEY: key.signerKeyText() }, stdio: ['ignore', 'pipe', 'pipe'] });
  const acked = new Map<number, string>();
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const lines = createInterface({ input: child.stdout! });
  const closed = new Promise((r) => lines.once('close', r));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  let timer: NodeJS.Timeout | undefined;
  const kill = () => child.kill('SIGKILL');
  if (!fromReady) timer = setTimeout(kill, killAfterMs);
  lines.on('line', (l) => {
    if (l === 'ready') {
      if (fromReady) timer = setTimeout(kill, killAfterMs);
      return;
    }
    const m = /^(\d+) ([0-9a-f]{64})$/.exec(l);
    if (m) acked.set(Number(m[1]), m[2]!);
  });
  const [code, signal] = await exited;
  clearTimeout(timer);
  await closed;
  if (signal !== 'SIGKILL') throw new Error(`writer exited by itself (${code}): ${stderr}`);
  return acked;
}

async function recordsIn(dir: string): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const f of (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort()) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n').filter(Boolean)) out.set((JSON.parse(line) as AuditRecord).seq, toHex(leafHashOfLine(line)));
  }
  return out;
}

/**
 * Leaves a torn line after the last acknowledged record, as a power cut can:
 * the unacknowledged bytes only partly on disk (cut mid-line; over a runway the
 * rest are still NULs), or half a line after the records.
 */
async function tearUnacknowledgedTail(dir: string, lastAcked: number): Promise<void> {
  const segs = (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort();
  const seg = segs.at(-1)!;
  // Bytes a checkpoint covers were fsynced before it was written: a power cut cannot take them.
  const chainFirst = Number(segs.find((n) => n.slice(0, 8) === seg.slice(0, 8))!.slice(9, 21));
  const lastCp = (await readFile(join(dir, 'checkpoints.jsonl'), 'utf8')).trim().split('\n').at(-1)!;
  const covered = chainFirst + Number((JSON.parse(lastCp) as { note: string }).note.split('\n')[1]) - 1;
  lastAcked = Math.max(lastAcked, covered);
  const path = join(dir, seg);
  const file = await readFile(path);
  const text = withoutRunway(file); // the writer was killed: its runway of NULs may follow the records
  let end = 0; // byte offset just after the last acknowledged record in this segment
  let offset = 0;
  for (const line of text.toString('utf8').split('\n').slice(0, -1)) {
    offset += Buffer.byteLength(line) + 1;
    if ((JSON.parse(line) as AuditRecord).seq <= lastAcked) end = offset;
  }
  // The file keeps its size when it has a runway (the cut bytes read as NULs); otherwise it is cut.
  const rewrite = (records: Buffer) => writeFile(path, file.length > text.length ? Buffer.concat([records, Buffer.alloc(Math.max(0, file.length - records.length))]) : records);
  if (text.length > end + 1) {
    const cut = end + 1 + Math.floor(Math.random() * (text.length - end - 1));
    await rewrite(text.subarray(0, cut));
    if (text[cut - 1] !== 10) return;
    await rewrite(Buffer.concat([text.subarray(0, cut), Buffer.from('{"decision":{"allowed":true,"decidedBy":"us')]));
    return;
  }
  await rewrite(Buffer.concat([text, Buffer.from('{"decision":{"allowed":true,"decidedBy":"us')]));
}

/** Runs the writer with `--once n` (append, close, exit) in `env`, returns what it acknowledged. */
async function runOnce(dir: string, n: number, env: Record<string, string>): Promise<Map<number, string>> {
  const child = spawn(process.execPath, [writer, dir, '--once', String(n)], { env: { ...process.env, ...env, TETHER_TEST_SIGNER_KEY: key.signerKeyText() }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`writer --once exited with ${code}: ${err}`);
  return new Map([...out.matchAll(/^(\d+) ([0-9a-f]{64})$/gm)].map((m) => [Number(m[1]), m[2]!]));
}

describe('audit crash suite', () => {
  it('keeps every acknowledged record through SIGKILLs at random points under load, and the log verifies after each', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-crash-'));
    const allAcked = new Map<number, string>();
    let sealed = 0;
    let torn = 0;
    const rounds = 16;
    for (let round = 0; round < rounds; round++) {
      // Mostly mid-load kills; every fourth round kills during start-up/recovery instead.
      const duringStartup = round % 4 === 3;
      const acked = await runAndKill(dir, duringStartup ? 30 + Math.random() * 250 : 20 + Math.random() * 300, !duringStartup);
      for (const [seq, hash] of acked) allAcked.set(seq, hash);
      if (round % 2 === 1) {
        await tearUnacknowledgedTail(dir, Math.max(...allAcked.keys()));
        torn++;
      }

      // Recovery in this process: seals a torn tail, continues the chain.
      const warnings: string[] = [];
      const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key), onWarning: (w) => warnings.push(w) });
      if (warnings.some((w) => /sealed/.test(w))) sealed++;
      await log.close();

      const onDisk = await recordsIn(dir);
      for (const [seq, hash] of allAcked) expect(onDisk.get(seq), `acknowledged record ${seq} after round ${round}`).toBe(hash);
      const report = await verifyAuditDir(dir, { trustedKeys: [key.verifierKey] });
      expect(report.problem, `round ${round}`).toBeUndefined();
    }
    expect(allAcked.size).toBeGreaterThan(1000);
    expect(sealed).toBe(torn);
  }, 120_000);

  it.runIf(process.platform === 'linux')('a writer without O_DSYNC (NODSYNC, as on other systems) reopening a crashed log writes after its records, not after the NULs, and keeps them', async () => {
    // What a crash leaves: a copy of a live log's files (every acknowledged record is on disk), runway included.
    const live = await mkdtemp(join(tmpdir(), 'tether-crash-live-'));
    const dir = await mkdtemp(join(tmpdir(), 'tether-crash-'));
    const log = await SignedAuditLog.open({ dir: live, keyStore: new StaticKeyStore(key) });
    const acked = new Map<number, string>();
    for (let i = 0; i < 5; i++) {
      const r = await log.append({ type: 'session.start', session: `before-${i}` });
      acked.set(r.seq, r.hash);
    }
    await cp(live, dir, { recursive: true, filter: (src) => !src.endsWith('/LOCK') });
    await log.close();
    const [segment] = (await readdir(dir)).filter((n) => n.startsWith('seg-'));
    const crashed = await readFile(join(dir, segment!));
    expect(withoutRunway(crashed).length).toBeLessThan(crashed.length);

    const more = await runOnce(dir, 3, { NODSYNC: '1' });
    expect(more.size).toBe(3);
    const onDisk = await recordsIn(dir);
    for (const [seq, hash] of [...acked, ...more]) expect(onDisk.get(seq), `acknowledged record ${seq}`).toBe(hash);
    expect((await verifyAuditDir(dir, { trustedKeys: [key.verifierKey] })).problem).toBeUndefined();
  }, 60_000);

  it('a new chain after a crash (another key) leaves the old chain cut to its records, and the whole log verifies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-crash-'));
    const acked = await runAndKill(dir, 150, true);
    expect(acked.size).toBeGreaterThan(0);
    const newKey = NoteSigningKey.generate('tether-audit-crash-next');
    const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(newKey) });
    expect(log.status.chain).toBe(2);
    await log.append({ type: 'session.start', session: 'after' });
    await log.close();
    for (const f of (await readdir(dir)).filter((n) => n.startsWith('seg-'))) {
      const bytes = await readFile(join(dir, f));
      expect(withoutRunway(bytes).length, f).toBe(bytes.length);
    }
    const onDisk = await recordsIn(dir);
    for (const [seq, hash] of acked) expect(onDisk.get(seq), `acknowledged record ${seq}`).toBe(hash);
    const report = await verifyAuditDir(dir, { trustedKeys: [key.verifierKey, newKey.verifierKey] });
    expect(report.problem).toBeUndefined();
  }, 60_000);
});
