// Shipping the signed log to a real HTTP collector on loopback that fails,
// stalls, drops answers and restarts, while the shipper itself is restarted.
import { mkdtemp, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../src/common/audit-record.ts';
import { AuditOutbox, readLinesFrom, type BacklogState } from '../../../src/host/audit/audit-outbox.ts';
import { verifyAuditDir } from '../../../src/host/audit/audit-verifier.ts';
import { HttpCollectorSink } from '../../../src/host/audit/http-collector-sink.ts';
import { hmacPathTransform } from '../../../src/host/audit/path-hmac.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';
import { LoopbackCollector } from './loopback-collector.ts';

const key = NoteSigningKey.generate('tether-audit-ship');

function entry(i: number): AuditEntry {
  return i % 2 === 0
    ? { type: 'decision', session: `s${i >> 10}`, traceId: i.toString(16).padStart(32, '0'), request: { id: `r${i}`, method: 'fs/read_text_file', action: 'read', kind: 'read', path: `/w/src/file-${i}.ts` }, decision: { effect: 'allow', allowed: true, policyIds: ['read-workspace'], decidedBy: 'policy', reason: 'reads inside the workspace' } }
    : { type: 'outcome', session: `s${i >> 10}`, request: { id: `r${i - 1}`, method: 'fs/read_text_file', action: 'read', kind: 'read' }, outcome: { ok: true, bytes: i, durationMs: 0.2 } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('audit outbox', () => {
  it('delivers 100,000 records through failures, stalls, lost answers, a collector restart and a shipper restart: none lost, none duplicated after dedup', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-ship-'));
    const collector = new LoopbackCollector('collector-token', [key.verifier()]);
    await collector.start();
    collector.faults = { fail: 0.15, stall: 0.03, dropAfterStore: 0.08 };

    const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key), checkpointEvery: 2000, segmentMaxBytes: 4 * 1024 * 1024 });
    const warnings: string[] = [];
    const states: BacklogState[] = [];
    const outboxOptions = {
      dir,
      log,
      sink: new HttpCollectorSink({ url: collector.url, token: async () => 'collector-token', timeoutMs: 400, name: 'siem' }),
      batchSize: 1000,
      maxBacklogRecords: 40_000,
      retryInitialMs: 10,
      retryMaxMs: 200,
      onWarning: (w: string) => warnings.push(w),
    };
    let outbox = await AuditOutbox.start(outboxOptions);
    outbox.onDidChangeBacklogState((s) => states.push(s));

    const total = 100_000;
    let written = 0;
    const write = async (n: number) => {
      for (const end = written + n; written < end; ) {
        const chunk = Math.min(2000, end - written);
        await Promise.all(Array.from({ length: chunk }, (_, j) => log.append(entry(written + j))));
        written += chunk;
      }
    };

    await write(20_000);
    // The collector goes down while 45,000 more records are written: the backlog passes its warning level.
    await collector.stop();
    await write(45_000);
    await sleep(300);
    expect(outbox.metrics().backlogRecords).toBeGreaterThan(32_000);
    await collector.start();
    // The shipper crashes (stops without a goodbye) and a new one takes over from its saved cursor.
    await sleep(300);
    await outbox.stop();
    outbox = await AuditOutbox.start(outboxOptions);
    outbox.onDidChangeBacklogState((s) => states.push(s));
    await write(20_000);
    await collector.restart(200);
    await write(total - written);
    await log.close();
    await outbox.drain(60_000); // still failing, stalling and dropping answers
    const metrics = outbox.metrics();
    await outbox.stop();

    const records = total + 1; // + log.start
    expect(collector.problems).toEqual([]);
    expect(collector.uids.size).toBe(records);
    expect([...collector.seqs.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: records }, (_, i) => i));
    const origin = [...collector.origins.values()][0]!;
    expect(origin.accepted?.size).toBe(records); // the shutdown checkpoint was accepted with a consistency proof
    expect(collector.duplicates, JSON.stringify({ requests: collector.requests, ...collector.faultsInjected })).toBeGreaterThan(0); // retries after lost answers did resend …
    expect(collector.faultsInjected.fail + collector.faultsInjected.stall + collector.faultsInjected.dropAfterStore, JSON.stringify({ requests: collector.requests, ...collector.faultsInjected })).toBeGreaterThan(5);
    expect(metrics.backlogRecords).toBe(0);
    expect(warnings.some((w) => /AUDIT SHIPPING BACKLOG NEAR-FULL/.test(w))).toBe(true);
    expect(states).toContain('near-full');
    expect(states.at(-1)).toBe('ok');
    expect(outbox.prometheusMetrics()).toMatch(/tether_audit_outbox_backlog_records\{sink="siem"\} 0/);
    // The shipping state does not disturb the log's own verification.
    expect((await verifyAuditDir(dir, { trustedKeys: [key.verifierKey] })).ok).toBe(true);
  }, 120_000);

  it('ships a new chain after a key change with its own checkpoints, and skips nothing at the boundary', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-ship-chain-'));
    const other = NoteSigningKey.generate('tether-audit-ship-2');
    const collector = new LoopbackCollector('t', [key.verifier(), other.verifier()]);
    await collector.start();
    const sink = new HttpCollectorSink({ url: collector.url, token: async () => 't', name: 'siem' });
    const a = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key), checkpointEvery: 7 });
    for (let i = 0; i < 30; i++) await a.append(entry(i));
    await a.close();
    const b = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(other), checkpointEvery: 7 });
    for (let i = 30; i < 50; i++) await b.append(entry(i));
    await b.close();
    const outbox = await AuditOutbox.start({ dir, sink, batchSize: 5, pollMs: 50 });
    await outbox.drain(20_000);
    await outbox.stop();
    await collector.stop();
    expect(collector.problems).toEqual([]);
    expect(collector.origins.size).toBe(2);
    expect([...collector.origins.values()].map((o) => o.accepted?.size)).toEqual([31, 21]);
    expect(collector.uids.size).toBe(52);
  }, 30_000);

  it('keeps retrying, slowly, when the collector refuses the token, and says why', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-ship-401-'));
    const collector = new LoopbackCollector('right', [key.verifier()]);
    await collector.start();
    const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key) });
    await log.append(entry(0));
    const warnings: string[] = [];
    const outbox = await AuditOutbox.start({ dir, log, sink: new HttpCollectorSink({ url: collector.url, token: async () => 'wrong', name: 'siem' }), retryInitialMs: 20, retryMaxMs: 50, onWarning: (w) => warnings.push(w) });
    await expect(outbox.drain(500)).rejects.toThrow(/did not drain/);
    expect(outbox.metrics().lastError).toMatch(/answered 401 \(check the URL and the token\)/);
    expect(outbox.metrics().retries).toBeGreaterThan(2);
    expect(warnings.join('\n')).toMatch(/keeps failing.*nothing is dropped/);
    expect(collector.uids.size).toBe(0);
    await outbox.stop();
    await log.close();
    await collector.stop();
  });

  it('stops with a damage error, shipping nothing past it, when durable records of the live log read as NULs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-ship-nul-'));
    const collector = new LoopbackCollector('t', [key.verifier()]);
    await collector.start();
    const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key) });
    for (let i = 0; i < 10; i++) await log.append(entry(i));
    const segment = (await readdir(dir)).find((f) => f.startsWith('seg-'))!;
    const bytes = await readFile(join(dir, segment));
    const sixth = bytes.indexOf('"seq":6,');
    const from = bytes.lastIndexOf(10, sixth) + 1;
    const h = await open(join(dir, segment), 'r+');
    await h.write(Buffer.alloc(bytes.indexOf(10, sixth) - from), 0, bytes.indexOf(10, sixth) - from, from);
    await h.close();
    const outbox = await AuditOutbox.start({ dir, log, sink: new HttpCollectorSink({ url: collector.url, token: async () => 't', name: 'siem' }), retryInitialMs: 20, retryMaxMs: 50 });
    await expect(outbox.drain(2000)).rejects.toThrow(new RegExp(`${segment}: a NUL byte at offset ${from} among records that are on disk`));
    expect([...collector.seqs.keys()].every((seq) => seq < 6)).toBe(true);
    await outbox.stop();
    await log.close().catch(() => undefined);
    await collector.stop();
  });

  it('speaks Splunk HEC: newline-separated {"event"} objects with "Authorization: Splunk <token>"', async () => {
    const bodies: Array<{ auth: string | undefined; channel: string | undefined; key: string | undefined; body: string }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push({ auth: req.headers.authorization, channel: req.headers['x-splunk-request-channel'] as string, key: req.headers['idempotency-key'] as string, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const dir = await mkdtemp(join(tmpdir(), 'tether-ship-hec-'));
    const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key) });
    for (let i = 0; i < 4; i++) await log.append(entry(i));
    await log.close();
    const hmacKey = 'a-key-from-the-keychain-32-bytes!';
    const sink = new HttpCollectorSink({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/collector/event`, format: 'splunk-hec', token: async () => 'hec-token', transformPath: hmacPathTransform(hmacKey), name: 'hec' });
    const outbox = await AuditOutbox.start({ dir, sink, pollMs: 50 });
    await outbox.drain(10_000);
    await outbox.stop();
    server.close();
    expect(bodies.every((b) => b.auth === 'Splunk hec-token' && b.channel && b.key)).toBe(true);
    const events = bodies.flatMap((b) => b.body.split('\n').map((l) => JSON.parse(l) as { sourcetype: string; event: Record<string, unknown> }));
    const ocsf = events.filter((e) => e.sourcetype.startsWith('ocsf:'));
    expect(ocsf).toHaveLength(5);
    expect(events.some((e) => e.sourcetype === 'tether:audit:checkpoint')).toBe(true);
    const read = ocsf.find((e) => e.sourcetype === 'ocsf:1001')!.event as { file: { path: string } };
    expect(read.file.path).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(JSON.stringify(ocsf)).not.toContain('/w/src/');
    expect(read.file.path).toBe(hmacPathTransform(hmacKey)('/w/src/file-0.ts'));
    // The shipping cursor lives next to the log, outside what the verifier checks.
    expect(JSON.parse(await readFile(join(dir, 'outbox', 'hec.json'), 'utf8'))).toMatchObject({ nextSeq: 5 });
  });
});

describe('reading segment lines (readLinesFrom)', () => {
  const lines = (...ls: string[]) => Buffer.from(ls.map((l) => `${l}\n`).join(''));
  async function read(bytes: Buffer, opts: { size?: number; newest?: boolean } = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'tether-lines-'));
    await writeFile(join(dir, 'seg'), bytes);
    const h = await open(join(dir, 'seg'), 'r');
    try {
      const r = await readLinesFrom(h, 'seg', 0, opts.size ?? bytes.length, 100, opts.newest ?? true);
      return { lines: r.lines.map((l) => l.toString()), end: r.end, atNul: r.atNul };
    } finally {
      await h.close();
    }
  }

  it('stops at the runway of the newest segment, and at an incomplete last line', async () => {
    const records = lines('{"a":1}', '{"b":2}');
    expect(await read(Buffer.concat([records, Buffer.alloc(5000)]))).toEqual({ lines: ['{"a":1}', '{"b":2}'], end: records.length, atNul: true });
    expect((await read(Buffer.concat([records, Buffer.from('{"c":')]))).lines).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('ends where the file ends when it was cut after its size was taken (a runway cut by rotation or close)', async () => {
    const records = lines('{"a":1}', '{"b":2}');
    expect(await read(records, { size: records.length + 1024 * 1024 })).toEqual({ lines: ['{"a":1}', '{"b":2}'], end: records.length, atNul: false });
  });

  it('ends the newest segment at its first NUL (a commit being written can read as data, NULs, data), and refuses any NUL in another', async () => {
    const hole = Buffer.concat([lines('{"a":1}'), Buffer.alloc(8), lines('{"b":2}'), Buffer.alloc(100)]);
    expect(await read(hole)).toEqual({ lines: ['{"a":1}'], end: 8, atNul: true });
    await expect(read(Buffer.concat([lines('{"a":1}'), Buffer.alloc(100)]), { newest: false })).rejects.toThrow(/seg: a NUL byte at offset 8 among records that are on disk/);
  });
});
