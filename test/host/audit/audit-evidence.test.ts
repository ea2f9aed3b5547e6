// Inclusion proofs and evidence bundles from a log of many segments and two
// chains, read one segment at a time, against the same proofs computed from
// the whole log held in memory (a MerkleTree of every chain).
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/common/audit-record.ts';
import { MerkleTree } from '../../../src/common/merkle.ts';
import { exportEvidence, proveRecord, verifyEvidenceBundle, verifyInclusionProof } from '../../../src/host/audit/audit-evidence.ts';
import { AuditVerifier } from '../../../src/host/audit/audit-verifier.ts';
import { leafHashOfBytes, merkleHasher, toHex } from '../../../src/host/audit/hashing.ts';
import { parseSegmentFileName, sortSegments } from '../../../src/host/audit/log-layout.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';

const keyA = NoteSigningKey.generate('install-a');
const keyB = NoteSigningKey.generate('install-b');
const trusted = [keyA.verifierKey, keyB.verifierKey];
let dir: string;
const start = Date.parse('2026-01-01T00:00:00.000Z');
const minute = 60_000;
/** Every chain as the whole log in memory sees it. */
let chains: Array<{ firstSeq: number; lines: string[]; tree: MerkleTree }>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-evidence-'));
  let t = start;
  let n = 0;
  for (const [key, records] of [[keyA, 61], [keyB, 45]] as const) {
    // Small segments (many files), a checkpoint every 7 records; a new key starts a new chain.
    const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key), segmentMaxBytes: 1024, checkpointEvery: 7, now: () => new Date(t) });
    for (let i = 0; i < records; i++, n++) {
      t += minute;
      await log.append({ type: 'session.start', session: `s${n}` });
    }
    await log.close();
  }
  const segments = sortSegments((await readdir(dir)).map(parseSegmentFileName).filter((s) => s !== undefined));
  expect(segments.length).toBeGreaterThan(10);
  chains = [];
  let chain = -1;
  for (const seg of segments) {
    const lines = (await readFile(join(dir, seg.file), 'utf8')).split('\n').filter(Boolean);
    if (seg.chain !== chain) {
      chains.push({ firstSeq: (JSON.parse(lines[0]!) as AuditRecord).seq, lines: [], tree: new MerkleTree(merkleHasher) });
      chain = seg.chain;
    }
    for (const l of lines) {
      chains.at(-1)!.lines.push(l);
      chains.at(-1)!.tree.append(leafHashOfBytes(Buffer.from(l)));
    }
  }
  expect(chains).toHaveLength(2);
});

describe('proveRecord, one segment at a time', () => {
  it('proves every record covered by a signed checkpoint, with the audit path the whole tree gives', async () => {
    for (const c of chains) {
      for (let i = 0; i < c.lines.length; i++) {
        const seq = c.firstSeq + i;
        const p = await proveRecord(dir, seq);
        expect(p.record).toBe(c.lines[i]);
        expect(p.leafIndex).toBe(i);
        expect(p.proof).toEqual(c.tree.inclusionProof(i, p.treeSize).map((h) => Buffer.from(h).toString('base64')));
        expect(verifyInclusionProof(p, trusted)).toMatchObject({ ok: true });
      }
    }
  });

  it('says which record does not exist', async () => {
    const last = chains.at(-1)!;
    await expect(proveRecord(dir, last.firstSeq + last.lines.length + 5)).rejects.toThrow(/no record with seq/);
  });
});

describe('exportEvidence, one segment at a time', () => {
  it.each([
    ['inside one chain', 3, 20],
    ['across the two chains', 50, 80],
    ['the whole log', -10, 500],
    ['one record', 64, 64],
  ])('exports %s with the compact ranges the whole tree gives, and the bundle verifies', async (_what, fromMin, toMin) => {
    const from = new Date(start + fromMin * minute);
    const to = new Date(start + toMin * minute);
    const { bundle } = await exportEvidence(dir, { from, to });
    expect(verifyEvidenceBundle(bundle, trusted)).toMatchObject({ ok: true });
    for (const out of bundle.chains) {
      const c = chains.find((x) => (JSON.parse(x.lines[0]!) as AuditRecord).detail?.['origin'] === out.origin)!;
      const size = Number(out.checkpoint.split('\n')[1]); // the signed checkpoint's tree size
      const end = out.begin + out.records.length;
      expect(out.records).toEqual(c.lines.slice(out.begin, end));
      expect(out.left).toEqual(c.tree.compactRange(0, out.begin).map(toHex));
      expect(out.right).toEqual(c.tree.compactRange(end, size).map(toHex));
      for (const r of out.records) {
        const time = Date.parse((JSON.parse(r) as AuditRecord).time);
        expect(time >= from.getTime() && time <= to.getTime()).toBe(true);
      }
    }
    const expected = chains.flatMap((c) => c.lines).filter((l) => {
      const time = Date.parse((JSON.parse(l) as AuditRecord).time);
      return time >= from.getTime() && time <= to.getTime();
    });
    const covered = bundle.chains.flatMap((c) => c.records);
    // What is left out is only the tail no signed checkpoint covers yet (each log was closed with a checkpoint: nothing).
    expect(covered).toEqual(expected);
  });
});

describe('exportEvidence of a large range', () => {
  it('exports and verifies more records than a function call has room for arguments', async () => {
    const big = await mkdtemp(join(tmpdir(), 'tether-evidence-big-'));
    const log = await SignedAuditLog.open({ dir: big, keyStore: new StaticKeyStore(keyA) });
    await Promise.all(Array.from({ length: 140_000 }, (_, i) => log.append({ type: 'session.start', session: `b${i}` })));
    await log.close();
    const { bundle } = await exportEvidence(big, { from: new Date(0), to: new Date(Date.now() + 60_000) });
    expect(bundle.manifest).toMatchObject({ records: 140_001, firstSeq: 0, lastSeq: 140_000 });
    expect(verifyEvidenceBundle(bundle, [keyA.verifierKey])).toMatchObject({ ok: true, records: 140_001, firstSeq: 0, lastSeq: 140_000 });
  }, 60_000);
});

describe('a checkpoints file of a long life', () => {
  it('is read in time proportional to its lines (150,000 here: about a year and a half of idle checkpoints)', async () => {
    const lines = (await readFile(join(dir, 'checkpoints.jsonl'), 'utf8')).split('\n').filter(Boolean);
    const many = Buffer.from(`${lines.join('\n')}\n${`${lines.at(-1)!}\n`.repeat(150_000)}`);
    // No trusted keys: only parsing and ordering are measured here (each signature check is the same work per line).
    const v = new AuditVerifier({});
    v.loadCheckpoints(many);
    expect(v.report(undefined).checkpoints).toBe(lines.length + 150_000);
  }, 60_000);
});
