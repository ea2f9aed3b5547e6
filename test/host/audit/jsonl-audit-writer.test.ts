import { appendFile, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/common/audit-record.ts';
import { AUDIT_FILE, JsonlAuditWriter, MAX_DEFER_MS, sha256Hex } from '../../../src/host/audit/jsonl-audit-writer.ts';

async function lines(dir: string): Promise<string[]> {
  return (await readFile(join(dir, AUDIT_FILE), 'utf8')).split('\n').filter(Boolean);
}

describe('JsonlAuditWriter', () => {
  it('chains each record to the hash of the one before, across concurrent appends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-audit-'));
    const w = await JsonlAuditWriter.open(dir);
    const receipts = await Promise.all(Array.from({ length: 50 }, (_, i) => w.append({ type: 'session.start', session: `s${i}` })));
    await w.close();
    expect(receipts.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const all = await lines(dir);
    expect(all).toHaveLength(50);
    all.forEach((line, i) => {
      const rec = JSON.parse(line) as AuditRecord;
      expect(rec.seq).toBe(i);
      expect(rec.prev).toBe(i === 0 ? '' : sha256Hex(all[i - 1]!));
      expect(receipts[i]!.hash).toBe(sha256Hex(line));
    });
  });

  it('continues the chain after reopening, and seals a torn tail', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-audit-'));
    const w = await JsonlAuditWriter.open(dir);
    await w.append({ type: 'session.start', session: 'a' });
    await w.close();
    await appendFile(join(dir, AUDIT_FILE), '{"half a rec');
    const w2 = await JsonlAuditWriter.open(dir);
    await w2.append({ type: 'session.end', session: 'a' });
    await w2.close();
    const all = (await lines(dir)).map((l) => JSON.parse(l) as AuditRecord);
    expect(all.map((r) => r.type)).toEqual(['session.start', 'log.sealed-tail', 'session.end']);
    expect(all[1]!.detail).toMatchObject({ droppedBytes: 12 });
    expect(all[1]!.prev).toBe(sha256Hex((await lines(dir))[0]!));
  });

  it('writes a deferred record on its own within MAX_DEFER_MS when no commit follows', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-audit-'));
    const w = await JsonlAuditWriter.open(dir);
    const started = performance.now();
    const receipt = await w.append({ type: 'session.start', session: 'deferred' }, { deferred: true });
    expect(performance.now() - started).toBeGreaterThanOrEqual(MAX_DEFER_MS - 1);
    expect(receipt.seq).toBe(0);
    expect((await lines(dir)).map((l) => (JSON.parse(l) as AuditRecord).session)).toEqual(['deferred']);
    await w.close();
  });

  it('commits a deferred record with the next plain append, in order and in one chain', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-audit-'));
    const w = await JsonlAuditWriter.open(dir);
    const deferred = w.append({ type: 'session.start', session: 'outcome' }, { deferred: true });
    const plain = await w.append({ type: 'session.start', session: 'decision' });
    const d = await deferred;
    expect([d.seq, plain.seq]).toEqual([0, 1]);
    const all = await lines(dir);
    expect(all.map((l) => (JSON.parse(l) as AuditRecord).session)).toEqual(['outcome', 'decision']);
    expect((JSON.parse(all[1]!) as AuditRecord).prev).toBe(sha256Hex(all[0]!));
    await w.close();
  });

  it('close writes deferred records before it returns', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-audit-'));
    const w = await JsonlAuditWriter.open(dir);
    const deferred = w.append({ type: 'session.end', session: 'last' }, { deferred: true });
    await w.close();
    expect((await deferred).seq).toBe(0);
    expect(await lines(dir)).toHaveLength(1);
  });

  it('rejects appends after close instead of dropping them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-audit-'));
    const w = await JsonlAuditWriter.open(dir);
    await w.close();
    await expect(w.append({ type: 'session.start', session: 'a' })).rejects.toThrow(/closed/);
  });
});
