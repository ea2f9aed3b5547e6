// The signed audit log against real files. Keys come from a StaticKeyStore
// here (the keychain has its own tests against a real Secret Service).
import { constants, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, readdir, readlink, realpath, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/common/audit-record.ts';
import { MerkleTree } from '../../../src/common/merkle.ts';
import { openNote, parseCheckpoint } from '../../../src/common/signed-note.ts';
import { verifyAuditDir } from '../../../src/host/audit/audit-verifier.ts';
import { leafHashOfLine, merkleHasher } from '../../../src/host/audit/hashing.ts';
import { CHECKPOINTS_FILE, parseCheckpointLine, withoutRunway } from '../../../src/host/audit/log-layout.ts';
import { readAuditRecords, readLastAuditRecords } from '../../../src/host/audit/read-records.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';

const tmp = () => mkdtemp(join(tmpdir(), 'tether-signed-'));
const keyStore = (name = 'tether-audit-test') => new StaticKeyStore(NoteSigningKey.generate(name));

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.startsWith('seg-')).sort();
}
async function allLines(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const s of await segments(dir)) out.push(...(await readFile(join(dir, s), 'utf8')).split('\n').filter(Boolean));
  return out;
}
async function checkpointLines(dir: string) {
  return (await readFile(join(dir, CHECKPOINTS_FILE), 'utf8')).split('\n').filter(Boolean).map(parseCheckpointLine);
}

describe('SignedAuditLog', () => {
  it('commits in place when asked: the record is on disk before append() returns, and the log verifies', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const log = await SignedAuditLog.open({ dir, keyStore: ks, commitInPlace: true });
    const pending = log.append({ type: 'session.start', session: 'in-place' });
    expect(readFileSync(join(dir, (await segments(dir))[0]!), 'utf8')).toContain('"session":"in-place"');
    expect((await pending).seq).toBe(1); // after log.start
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ type: 'session.start', session: `s${i}` })));
    await log.close();
    const report = await verifyAuditDir(dir, { pubkeys: [(await ks.loadSigningKey()).verifierKey] });
    expect(report.problem).toBeUndefined();
    expect(report.records).toBe(52);
  });

  it('commits an append marked overlap on a pool thread even when committing in place, so the caller can work meanwhile', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const log = await SignedAuditLog.open({ dir, keyStore: ks, commitInPlace: true });
    await log.checkpoint(); // idle: the next append starts its commit at once
    const before = log.durableSeq;
    const inPlace = log.append({ type: 'session.start', session: 'in-place' });
    expect(log.durableSeq).toBe(before + 1); // written before append() returned
    await inPlace;
    await log.checkpoint();
    const overlapped = log.append({ type: 'session.start', session: 'overlap' }, { overlap: true });
    expect(log.durableSeq).toBe(before + 1); // on its way to the disk, not there yet
    expect((await overlapped).seq).toBe((await inPlace).seq + 1);
    expect(log.durableSeq).toBe(before + 2);
    await log.close();
    expect((await verifyAuditDir(dir, { pubkeys: [(await ks.loadSigningKey()).verifierKey] })).problem).toBeUndefined();
  });

  it.runIf(process.platform === 'linux')('opens its segments O_DSYNC on Linux, so each commit is one durable write (the kernel says so in fdinfo), over a runway that close cuts off', async () => {
    const dir = await tmp();
    const log = await SignedAuditLog.open({ dir, keyStore: keyStore() });
    await log.append({ type: 'session.start', session: 's' });
    const [segment] = await segments(dir);
    let flags: number | undefined;
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
      if (target === join(await realpath(dir), segment!)) flags = parseInt(/^flags:\s+(\d+)/m.exec(await readFile(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    }
    expect(flags).toBeDefined();
    expect(flags! & constants.O_DSYNC).toBe(constants.O_DSYNC);
    // Positional writes over pre-written NULs: a commit changes no file size.
    expect(flags! & constants.O_APPEND).toBe(0);
    const open = await readFile(join(dir, segment!));
    const records = withoutRunway(open);
    expect(open.length - records.length).toBeGreaterThanOrEqual(256 * 1024);
    expect(records.toString('utf8').trim().split('\n').map((l) => (JSON.parse(l) as AuditRecord).type)).toEqual(['log.start', 'session.start']);
    await log.close();
    expect((await readFile(join(dir, segment!))).equals(records)).toBe(true);
  });

  it('chains concurrent appends by leaf hash, acknowledges each with its seq, and signs the tree at close', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const key = await ks.loadSigningKey();
    const log = await SignedAuditLog.open({ dir, keyStore: ks });
    const receipts = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append({ type: 'session.start', session: `s${i}` })));
    await log.close();

    expect(receipts.map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1)); // seq 0 is log.start
    const lines = await allLines(dir);
    expect(lines).toHaveLength(201);
    const tree = new MerkleTree(merkleHasher);
    lines.forEach((line, i) => {
      const r = JSON.parse(line) as AuditRecord;
      expect(r.seq).toBe(i);
      expect(r.prev).toBe(i === 0 ? '' : Buffer.from(leafHashOfLine(lines[i - 1]!)).toString('hex'));
      tree.append(leafHashOfLine(line));
    });
    expect(receipts[199]!.hash).toBe(Buffer.from(leafHashOfLine(lines[200]!)).toString('hex'));
    const last = (await checkpointLines(dir)).at(-1)!;
    const cp = parseCheckpoint(openNote(last.note, [key.verifier()]).text);
    expect(cp.size).toBe(201);
    expect(Buffer.from(cp.root).toString('hex')).toBe(Buffer.from(tree.root()).toString('hex'));
    const report = await verifyAuditDir(dir, { pubkeys: [key.verifierKey] });
    expect(report.problem).toBeUndefined();
    expect(report.records).toBe(201);
  });

  it('reads the last N records from the newest segments back, as the whole log read would end', async () => {
    const dir = await tmp();
    const log = await SignedAuditLog.open({ dir, keyStore: keyStore(), segmentMaxBytes: 2000 });
    for (let i = 0; i < 100; i++) await log.append({ type: 'session.start', session: `s${i}` });
    expect((await segments(dir)).length).toBeGreaterThan(5);
    const all = await readAuditRecords(dir);
    for (const n of [1, 7, 25, all.length, all.length + 10]) expect(await readLastAuditRecords(dir, n), `last ${n}`).toEqual(all.slice(-n));
    expect(await readLastAuditRecords(dir, 0)).toEqual([]);
    await log.close();
  });

  it('writes a checkpoint every N records and one per segment it closes', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const log = await SignedAuditLog.open({ dir, keyStore: ks, checkpointEvery: 10, segmentMaxBytes: 4096 });
    for (let i = 0; i < 60; i++) await log.append({ type: 'session.start', session: `session-${i}`, detail: { pad: 'x'.repeat(100) } });
    await log.close();
    const segs = await segments(dir);
    expect(segs.length).toBeGreaterThan(2);
    const verifier = (await ks.loadSigningKey()).verifier();
    const sizes = (await checkpointLines(dir)).map((c) => parseCheckpoint(openNote(c.note, [verifier]).text).size);
    expect(sizes.at(-1)).toBe(61);
    sizes.slice(1).forEach((n, i) => expect(n - sizes[i]!).toBeLessThanOrEqual(10));
    // every segment boundary is covered by a checkpoint at the size it closed with
    for (const s of segs.slice(1)) expect(sizes).toContain(Number(s.split('-')[2]!.slice(0, 12)));
    expect((await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] })).ok).toBe(true);
  });

  it('writes checkpoints while idle, with a fresh time line and the same size (proof of life)', async () => {
    const dir = await tmp();
    const log = await SignedAuditLog.open({ dir, keyStore: keyStore(), checkpointIdleMs: 60 });
    await log.append({ type: 'session.start', session: 'a' });
    const before = (await checkpointLines(dir)).length;
    await new Promise((r) => setTimeout(r, 400));
    const after = await checkpointLines(dir);
    expect(after.length).toBeGreaterThanOrEqual(before + 2);
    const bodies = after.slice(-2).map((c) => c.note.split('\n\n')[0]!);
    expect(bodies[0]!.split('\n')[1]).toBe(bodies[1]!.split('\n')[1]);
    expect(bodies[0]).not.toBe(bodies[1]);
    await log.close();
  });

  it('continues the same chain after a clean reopen with the same key', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const a = await SignedAuditLog.open({ dir, keyStore: ks });
    await a.append({ type: 'session.start', session: 'a' });
    const origin = a.status.origin;
    await a.close();
    const b = await SignedAuditLog.open({ dir, keyStore: ks });
    expect(b.status.origin).toBe(origin);
    expect((await b.append({ type: 'session.end', session: 'a' })).seq).toBe(2);
    await b.close();
    expect((await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] })).ok).toBe(true);
  });

  it('seals a torn last line after a crash: keeps a copy, cuts it, records it, and the log verifies', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const a = await SignedAuditLog.open({ dir, keyStore: ks });
    await a.append({ type: 'session.start', session: 'a' });
    await a.close();
    const seg = (await segments(dir))[0]!;
    await appendFile(join(dir, seg), '{"half":"a rec');
    await appendFile(join(dir, CHECKPOINTS_FILE), '{"frontier":["ab');
    const warnings: string[] = [];
    const b = await SignedAuditLog.open({ dir, keyStore: ks, onWarning: (w) => warnings.push(w) });
    await b.close();
    const records = (await allLines(dir)).map((l) => JSON.parse(l) as AuditRecord);
    const sealed = records.filter((r) => r.type === 'log.sealed-tail');
    expect(sealed.map((r) => r.detail?.file).sort()).toEqual([CHECKPOINTS_FILE, seg].sort());
    expect(sealed.find((r) => r.detail?.file === seg)!.detail).toMatchObject({ bytes: 14 });
    expect(await readFile(join(dir, String(sealed.find((r) => r.detail?.file === seg)!.detail!.copy)), 'utf8')).toBe('{"half":"a rec');
    expect(warnings.join('\n')).toMatch(/sealed 14 bytes/);
    const report = await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] });
    expect(report.problem).toBeUndefined();
  });

  it('refuses to open a log it finds damaged inside what a signed checkpoint covers, and changes nothing', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const a = await SignedAuditLog.open({ dir, keyStore: ks });
    await a.append({ type: 'session.start', session: 'alice' });
    await a.append({ type: 'session.end', session: 'alice' });
    await a.close();
    const seg = join(dir, (await segments(dir))[0]!);
    const text = await readFile(seg, 'utf8');
    await writeFile(seg, text.replace('"alice"', '"mallory"'));
    await expect(SignedAuditLog.open({ dir, keyStore: ks })).rejects.toThrow(/damaged.*inside what a signed checkpoint covers.*tether audit verify/s);
    expect(await readFile(seg, 'utf8')).toBe(text.replace('"alice"', '"mallory"'));
    expect(await readdir(dir)).not.toContain('LOCK');
  });

  it('starts a new chain naming the previous checkpoint when the key changed (reinstall)', async () => {
    const dir = await tmp();
    const ks1 = keyStore('tether-audit-one');
    const a = await SignedAuditLog.open({ dir, keyStore: ks1 });
    await a.append({ type: 'session.start', session: 'a' });
    const first = a.status;
    await a.close();
    const lastCp = (await checkpointLines(dir)).at(-1)!;
    const ks2 = keyStore('tether-audit-two');
    const b = await SignedAuditLog.open({ dir, keyStore: ks2 });
    await b.append({ type: 'session.start', session: 'b' });
    expect(b.status.chain).toBe(2);
    expect(b.status.origin).not.toBe(first.origin);
    await b.close();
    const start = (await allLines(dir)).map((l) => JSON.parse(l) as AuditRecord).find((r) => r.type === 'log.start' && r.detail?.chain === 2)!;
    expect(start.detail).toMatchObject({ previous: { origin: first.origin, size: 2, checkpoint: { size: 2, noteSha256: (await import('node:crypto')).createHash('sha256').update(lastCp.note).digest('hex') } } });
    const keys = [(await ks1.loadSigningKey()).verifierKey, (await ks2.loadSigningKey()).verifierKey];
    expect((await verifyAuditDir(dir, { trustedKeys: keys })).ok).toBe(true);
    const onlyNew = await verifyAuditDir(dir, { trustedKeys: [keys[1]!] });
    expect(onlyNew.problem?.reason).toMatch(/not signed by a trusted key/);
  });

  it('refuses to open when the key store is unavailable, saying how to fix it', async () => {
    const dir = await tmp();
    await expect(SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(undefined) })).rejects.toThrow(/cannot be signed.*will not start a session.*unlock your login keychain.*managed policy/s);
    expect(await readdir(dir)).toEqual([]);
  });

  it('runs unsigned only when managed policy allows it, and then every record and checkpoint says so', async () => {
    const dir = await tmp();
    const warnings: string[] = [];
    const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(undefined), allowUnsigned: true, onWarning: (w) => warnings.push(w) });
    await log.append({ type: 'session.start', session: 'a' });
    await log.close();
    const records = (await allLines(dir)).map((l) => JSON.parse(l) as AuditRecord);
    expect(records.every((r) => r.unsigned === true)).toBe(true);
    expect((await checkpointLines(dir)).every((c) => c.unsigned === true && !c.note.includes('—'))).toBe(true);
    expect(warnings.join('\n')).toMatch(/UNSIGNED/);
    expect((await verifyAuditDir(dir, { trustedKeys: [] })).problem?.reason).toMatch(/UNSIGNED.*--allow-unsigned/);
    expect((await verifyAuditDir(dir, { trustedKeys: [], allowUnsigned: true })).ok).toBe(true);
  });

  it('rotates the key with a checkpoint signed by both keys; a verifier trusting only the old key follows it', async () => {
    const dir = await tmp();
    const ks = keyStore('tether-audit-old');
    const old = await ks.loadSigningKey();
    const log = await SignedAuditLog.open({ dir, keyStore: ks });
    await log.append({ type: 'session.start', session: 'a' });
    const nextKey = await log.rotateKey();
    await log.append({ type: 'session.end', session: 'a' });
    await log.close();
    expect((await ks.loadSigningKey()).verifierKey).toBe(nextKey);
    const dual = (await checkpointLines(dir)).find((c) => c.note.includes('tether-audit-old') && c.note.includes(nextKey.split('+')[0]!))!;
    expect(openNote(dual.note, [old.verifier()]).unknown).toHaveLength(1);
    const report = await verifyAuditDir(dir, { trustedKeys: [old.verifierKey] });
    expect(report.problem).toBeUndefined();
    expect([...report.keysUsed].sort()).toEqual([old.verifierKey, nextKey].sort());
    // reopening with the new key continues the same chain
    const again = await SignedAuditLog.open({ dir, keyStore: ks });
    expect(again.status.chain).toBe(1);
    await again.close();
  });

  it('refuses a record too large to be metadata, without losing the others in the same batch', async () => {
    const dir = await tmp();
    const log = await SignedAuditLog.open({ dir, keyStore: keyStore(), maxRecordBytes: 2000 });
    const results = await Promise.allSettled([
      log.append({ type: 'session.start', session: 'ok-1' }),
      log.append({ type: 'session.start', session: 'big', detail: { content: 'x'.repeat(5000) } }),
      log.append({ type: 'session.start', session: 'ok-2' }),
    ]);
    await log.close();
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/never file contents/);
    expect((await allLines(dir)).map((l) => (JSON.parse(l) as AuditRecord).session)).toEqual(['', 'ok-1', 'ok-2']);
  });

  it('refuses records that cannot be canonical JSON without losing the others in the batch, and keeps non-ASCII text exact', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const log = await SignedAuditLog.open({ dir, keyStore: ks });
    const text = 'é "quoted" \\ tab\t ☃ 😀 \u2028';
    const results = await Promise.allSettled([
      log.append({ type: 'session.start', session: 'ok-1', detail: { text } }),
      log.append({ type: 'session.start', session: 'nan', detail: { n: NaN } }),
      log.append({ type: 'session.start', session: 'lone', detail: { s: 'a\ud800' } }),
      log.append({ type: 'session.start', session: 'ok-2' }),
    ]);
    await log.close();
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/audit record refused: canonical JSON/);
    const records = (await allLines(dir)).map((l) => JSON.parse(l) as AuditRecord);
    expect(records.map((r) => r.session)).toEqual(['', 'ok-1', 'ok-2']);
    expect(records.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect((records[1]!.detail as { text: string }).text).toBe(text);
    const report = await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey], strict: true });
    expect(report.problem).toBeUndefined();
  });

  it('lets only one process write a log directory at a time', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const a = await SignedAuditLog.open({ dir, keyStore: ks });
    await expect(SignedAuditLog.open({ dir, keyStore: ks })).rejects.toThrow(/already open in this process/);
    await a.close();
    await expect(a.append({ type: 'session.start', session: 'x' })).rejects.toThrow(/closed/);
    const b = await SignedAuditLog.open({ dir, keyStore: ks });
    await b.close();
  });

  it('reopens from the latest checkpoint, reading only the end of a long checkpoints file', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const a = await SignedAuditLog.open({ dir, keyStore: ks, checkpointEvery: 5 });
    for (let i = 0; i < 23; i++) await a.append({ type: 'session.start', session: `s${i}` });
    await a.close();
    await appendFile(join(dir, CHECKPOINTS_FILE), '{"torn":');
    const b = await SignedAuditLog.open({ dir, keyStore: ks, checkpointTailBytes: 1500 });
    expect(b.status.treeSize).toBe(25); // + the record of the sealed checkpoint tail
    expect(b.status.chain).toBe(1);
    await b.append({ type: 'session.end', session: 'x' });
    await b.close();
    expect((await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] })).ok).toBe(true);
  });
});

describe.runIf(process.platform === 'linux')('SignedAuditLog runway (Linux)', () => {
  const record = (i: number) => ({ type: 'decision', session: 's', detail: { i, pad: 'x'.repeat(600) } }) as const;
  const nuls = (b: Buffer) => b.length - withoutRunway(b).length;

  it('keeps NULs ahead of its records as they grow; readers and the verifier see only records while it is open; closing cuts them', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const log = await SignedAuditLog.open({ dir, keyStore: ks, commitInPlace: true, checkpointEvery: 100_000 });
    // ~1.3 MB of records: more than the first runway, so it must have been extended.
    for (let i = 0; i < 2000; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => log.append(record(i + j))));
    await log.checkpoint();
    const [segment] = await segments(dir);
    const open = await readFile(join(dir, segment!));
    expect(withoutRunway(open).length).toBeGreaterThan(1024 * 1024);
    expect(nuls(open)).toBeGreaterThanOrEqual(256 * 1024);
    expect((await readAuditRecords(dir)).length).toBe(2001);
    const live = await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] });
    expect(live.problem).toBeUndefined();
    expect(live.records).toBe(2001);
    await log.close();
    expect(nuls(await readFile(join(dir, segment!)))).toBe(0);
  });

  it('refills the runway after a small commit, not after a big one (a throughput-bound load grows the file instead)', async () => {
    const dir = await tmp();
    const log = await SignedAuditLog.open({ dir, keyStore: keyStore(), segmentMaxBytes: 256 * 1024 });
    await log.append(record(0));
    const [segment] = await segments(dir);
    const size = async () => (await readFile(join(dir, segment!))).length;
    expect(await size()).toBe(256 * 1024);
    // ~230 KB in one group commit: the runway drops under a quarter and is not refilled.
    await Promise.all(Array.from({ length: 330 }, (_, i) => log.append(record(i + 1))));
    await log.checkpoint();
    const after = await readFile(join(dir, segment!));
    expect(withoutRunway(after).length).toBeGreaterThan(192 * 1024);
    expect(after.length).toBe(256 * 1024);
    await log.append(record(331));
    await log.checkpoint(); // runs after that commit's flush, refill included
    expect(await size()).toBe(512 * 1024);
    await log.close();
  });

  it('the verifier reads the newest segment up to its first NUL: a commit half landed is not called tampering, a zeroed covered record still fails', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const trustedKeys = [(await ks.loadSigningKey()).verifierKey];
    const log = await SignedAuditLog.open({ dir, keyStore: ks });
    for (let i = 0; i < 3; i++) await log.append(record(i));
    await log.checkpoint();
    for (let i = 3; i < 5; i++) await log.append(record(i));
    const [segment] = await segments(dir);
    const live = await readFile(join(dir, segment!));
    await log.close();
    const lineOf = (seq: number) => {
      const at = live.indexOf(`"seq":${seq},`);
      return { from: live.lastIndexOf(10, at) + 1, to: live.indexOf(10, at) };
    };
    // The last commit as a reader can see it mid-write: its start, NULs, its end.
    const half = Buffer.from(live);
    const last = lineOf(5);
    half.fill(0, last.from + 20, last.to - 20);
    await writeFile(join(dir, segment!), half);
    const seen = await verifyAuditDir(dir, { trustedKeys });
    expect(seen.problem?.reason).toMatch(/incomplete/);
    expect(seen.problem?.reason).not.toMatch(/altered/);
    // A record a checkpoint covers, zeroed.
    const zeroed = Buffer.from(live);
    const covered = lineOf(2);
    zeroed.fill(0, covered.from, covered.to + 1);
    await writeFile(join(dir, segment!), zeroed);
    expect((await verifyAuditDir(dir, { trustedKeys })).ok).toBe(false);
  });

  it('cuts the runway of a segment it rotates, so only the newest segment has one; a NUL in any other is damage', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const log = await SignedAuditLog.open({ dir, keyStore: ks, segmentMaxBytes: 20_000 });
    for (let i = 0; i < 100; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => log.append(record(i + j))));
    const segs = await segments(dir);
    expect(segs.length).toBeGreaterThan(2);
    for (const s of segs.slice(0, -1)) expect(nuls(await readFile(join(dir, s))), s).toBe(0);
    expect(nuls(await readFile(join(dir, segs.at(-1)!)))).toBeGreaterThan(0);
    await log.close();
    const trustedKeys = [(await ks.loadSigningKey()).verifierKey];
    expect((await verifyAuditDir(dir, { trustedKeys })).problem).toBeUndefined();
    await appendFile(join(dir, segs[0]!), Buffer.alloc(100));
    const report = await verifyAuditDir(dir, { trustedKeys });
    expect(report.problem).toMatchObject({ file: segs[0] });
  });

  it('removes a segment a crash left holding only its runway, and carries on in the one before', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const a = await SignedAuditLog.open({ dir, keyStore: ks });
    await a.append(record(0));
    const next = a.status.nextSeq;
    await a.close();
    const [first] = await segments(dir);
    const empty = `seg-0001-${String(next).padStart(12, '0')}.jsonl`;
    await writeFile(join(dir, empty), Buffer.alloc(64 * 1024));
    const b = await SignedAuditLog.open({ dir, keyStore: ks });
    expect(await segments(dir)).toEqual([first]);
    await b.append(record(1));
    await b.close();
    expect((await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] })).problem).toBeUndefined();
  });
});

describe.runIf(process.platform === 'linux')('SignedAuditLog recovery of segments with no records', () => {
  it('refuses, removing nothing, when the newest segment is all NULs but a checkpoint covered its records', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const a = await SignedAuditLog.open({ dir, keyStore: ks, segmentMaxBytes: 4096 });
    for (let i = 0; i < 20; i++) await a.append({ type: 'session.start', session: `s${i}`, detail: { pad: 'x'.repeat(300) } });
    await a.close();
    const segs = await segments(dir);
    const newest = join(dir, segs.at(-1)!);
    await writeFile(newest, Buffer.alloc((await readFile(newest)).length));
    await expect(SignedAuditLog.open({ dir, keyStore: ks })).rejects.toThrow(/damaged/);
    expect(await segments(dir)).toEqual(segs);
  });

  it('removes a new log\'s first segment that a crash left as a whole runway, even when this writer makes smaller runways', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'seg-0001-000000000000.jsonl'), Buffer.alloc(1024 * 1024));
    const ks = keyStore();
    const log = await SignedAuditLog.open({ dir, keyStore: ks, segmentMaxBytes: 256 * 1024 });
    await log.append({ type: 'session.start', session: 's' });
    await log.close();
    expect((await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] })).problem).toBeUndefined();
  });

  it('refuses, removing nothing, when a newer chain\'s checkpointed first segment reads as NULs', async () => {
    const dir = await tmp();
    const a = await SignedAuditLog.open({ dir, keyStore: keyStore('tether-audit-one') });
    await a.append({ type: 'session.start', session: 'a' });
    await a.close();
    const ksB = keyStore('tether-audit-two');
    const b = await SignedAuditLog.open({ dir, keyStore: ksB });
    for (let i = 0; i < 5; i++) await b.append({ type: 'session.start', session: `b${i}` });
    await b.close();
    const segs = await segments(dir);
    const second = join(dir, segs.at(-1)!);
    expect(segs.at(-1)).toMatch(/^seg-0002-/);
    await writeFile(second, Buffer.alloc((await readFile(second)).length));
    await expect(SignedAuditLog.open({ dir, keyStore: ksB })).rejects.toThrow(/damaged: seg-0002-\d+\.jsonl holds nothing but NUL bytes/);
    expect(await segments(dir)).toEqual(segs);
  });

  it('keeps an all-NUL newest segment bigger than a runway (not what a crash leaves): no checkpoint covered it, so the log goes on in it', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const a = await SignedAuditLog.open({ dir, keyStore: ks });
    await a.append({ type: 'session.start', session: 's' });
    const next = a.status.nextSeq;
    await a.close();
    const big = `seg-0001-${String(next).padStart(12, '0')}.jsonl`;
    await writeFile(join(dir, big), Buffer.alloc(2 * 1024 * 1024));
    const b = await SignedAuditLog.open({ dir, keyStore: ks });
    await b.append({ type: 'session.start', session: 't' });
    await b.close();
    expect(await segments(dir)).toContain(big);
    expect((await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] })).problem).toBeUndefined();
  });
});

describe('SignedAuditLog deferred appends', () => {
  it('a deferred record rides the next commit: it is not durable before it, and both land in one batch', async () => {
    const dir = await tmp();
    const ks = keyStore();
    const log = await SignedAuditLog.open({ dir, keyStore: ks });
    const before = log.durableSeq;
    const outcome = log.append({ type: 'outcome', session: 's' }, { deferred: true });
    expect(log.durableSeq).toBe(before);
    const decision = await log.append({ type: 'decision', session: 's' });
    const deferred = await outcome;
    expect(deferred.seq).toBe(decision.seq - 1);
    await log.close();
    expect((await verifyAuditDir(dir, { trustedKeys: [(await ks.loadSigningKey()).verifierKey] })).ok).toBe(true);
  });

  it('a deferred record with nothing after it is still written on its own, soon', async () => {
    const dir = await tmp();
    const log = await SignedAuditLog.open({ dir, keyStore: keyStore() });
    const receipt = await log.append({ type: 'outcome', session: 's' }, { deferred: true });
    expect(log.durableSeq).toBeGreaterThanOrEqual(receipt.seq);
    await log.close();
    const lines = await allLines(dir);
    expect(lines.some((l) => (JSON.parse(l) as AuditRecord).seq === receipt.seq)).toBe(true);
  });
});
