// The parallel verifier (worker threads hashing and scanning) must report
// exactly what the single-threaded one does, on intact and damaged logs, and
// survive a worker that dies.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { classify, readAuditDir, verifyAuditFiles, verifyAuditFilesParallel, type AuditFile, type AuditVerifyOptions } from '../../../src/host/audit/audit-verifier.ts';
import { LinePreparer } from '../../../src/host/audit/line-preparer.ts';
import { CLAIM_HERE, CLAIM_WORKER, prepareLines, type PreparedChunk } from '../../../src/host/audit/prepared-lines.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';

const key = NoteSigningKey.generate('tether-audit-parallel');
const opts: AuditVerifyOptions = { trustedKeys: [key.verifierKey], workers: 1 };
const small = { chunkBytes: 4096 };

describe('parallel audit verification', () => {
  let files: AuditFile[];

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-parallel-'));
    const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key), checkpointEvery: 300, segmentMaxBytes: 40_000 });
    for (let i = 0; i < 1500; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => log.append({ type: j % 7 ? 'decision' : 'outcome', session: `s-${i + j}`, request: { id: `r${i + j}`, method: 'fs/read_text_file', action: 'read', kind: 'read', path: `/w/é/${i + j}` } })));
      if (i === 700) await log.rotateKey();
    }
    await log.close();
    files = await readAuditDir(dir);
    expect(classify(files).segments.length).toBeGreaterThan(5);
  }, 60_000);

  it('reports an intact log exactly as the single-threaded verifier does', async () => {
    const report = await verifyAuditFilesParallel(files, opts, small);
    expect(report.ok).toBe(true);
    expect(report.records).toBe(1502);
    expect(report).toEqual(verifyAuditFiles(files, opts));
  });

  it('reports the same first problem for byte flips, a deleted line and a cut-off segment', async () => {
    const { segments } = classify(files);
    let seed = 11;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const cases: Array<{ name: string; files: AuditFile[] }> = [];
    for (let i = 0; i < 24; i++) {
      const s = segments[rnd(segments.length)]!;
      const bytes = Buffer.from(s.bytes);
      const pos = rnd(bytes.length);
      bytes[pos]! ^= 1 << rnd(8);
      cases.push({ name: `${s.name.file}@${pos}`, files: files.map((f) => (f.bytes === s.bytes ? { name: f.name, bytes } : f)) });
    }
    const third = segments[3]!;
    const lines = third.bytes.toString('utf8').split('\n');
    const deleted = Buffer.from([...lines.slice(0, 10), ...lines.slice(11)].join('\n'));
    cases.push({ name: 'deleted line', files: files.map((f) => (f.bytes === third.bytes ? { name: f.name, bytes: deleted } : f)) });
    cases.push({ name: 'cut segment', files: files.map((f) => (f.bytes === third.bytes ? { name: f.name, bytes: third.bytes.subarray(0, third.bytes.length - 20) } : f)) });
    for (const c of cases) {
      const single = verifyAuditFiles(c.files, opts);
      expect(single.ok, c.name).toBe(false);
      expect((await verifyAuditFilesParallel(c.files, opts, small)).problem, c.name).toEqual(single.problem);
    }
  }, 60_000);

  it('has a worker thread prepare a chunk exactly as this thread does, and skip one this thread has claimed', async () => {
    const bytes = classify(files).segments[2]!.bytes;
    const claims = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(new URL('../../../src/host/audit/audit-verify-worker.ts', import.meta.url), { workerData: { claims } });
    try {
      const reply = (id: number) => {
        const got = new Promise<{ id: number; chunk?: PreparedChunk; skipped?: boolean }>((r) => worker.once('message', r));
        worker.postMessage({ id, bytes: new Uint8Array(bytes) });
        return got;
      };
      const done = await reply(0);
      expect(done.chunk).toEqual({ ...prepareLines(bytes, 0, bytes.length) });
      expect(claims[0]).toBe(CLAIM_WORKER);
      claims[1] = CLAIM_HERE;
      expect(await reply(1)).toEqual({ id: 1, skipped: true });
    } finally {
      await worker.terminate();
    }
  });

  it('prepares every chunk on its own thread when its worker dies', async () => {
    const segs = classify(files).segments.map((s) => s.bytes);
    const lp = new LinePreparer(segs, { workers: 1, chunkBytes: 4096, depth: 4 });
    // Kill the real worker thread (a private field: there is no public way to crash it).
    await (lp as unknown as { slots: Array<{ worker: Worker }> }).slots[0]!.worker.terminate();
    try {
      for (const [i, bytes] of segs.entries()) {
        const p = (await lp.segment(i))!;
        const want = prepareLines(bytes, 0, bytes.length);
        for (let k = 0; k < want.ends.length; k++) {
          expect(p.nextLine()).toBe(want.ends[k]);
          expect(p.leaf()).toBe(want.leaves.slice(64 * k, 64 * k + 64));
        }
      }
    } finally {
      await lp.close();
    }
  });
});
