// Tamper suite: a real 1,000-record signed log, then every single-byte change
// of every file, and structural attacks (delete, insert, reorder, duplicate,
// truncate, swapped segments, forged checkpoints). All must be detected.
//
// Speed: the byte flips resume a cloned verifier after the untouched prefix
// (the files before the flipped one), which is exactly the state a full run
// reaches there; a sample of flips is re-run from scratch to check that.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry, AuditRecord } from '../../../src/common/audit-record.ts';
import { canonicalJson } from '../../../src/common/canonical-json.ts';
import { signNote } from '../../../src/common/signed-note.ts';
import {
  AuditVerifier,
  classify,
  readAuditDir,
  runVerifierSteps,
  verifyAuditDir,
  verifyAuditFiles,
  type AuditFile,
  type AuditVerifyOptions,
  type AuditVerifyReport,
} from '../../../src/host/audit/audit-verifier.ts';
import { leafHashOfLine } from '../../../src/host/audit/hashing.ts';
import { CHECKPOINTS_FILE, formatCheckpointLine, parseCheckpointLine } from '../../../src/host/audit/log-layout.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';

const key = NoteSigningKey.generate('tether-audit-tamper');
const opts: AuditVerifyOptions = { trustedKeys: [key.verifierKey] };

function entry(i: number): AuditEntry {
  const session = `sess-${Math.floor(i / 100)}`;
  if (i % 3 === 0) return { type: 'decision', session, request: { id: `r${i}`, method: 'fs/write_text_file', action: 'write', kind: 'write', path: `/w/f${i}` }, decision: { effect: 'ask', allowed: true, policyIds: ['ask-writes'], decidedBy: 'user', reason: 'ok' } };
  if (i % 3 === 1) return { type: 'outcome', session, request: { id: `r${i - 1}`, method: 'fs/write_text_file', action: 'write', kind: 'write' }, outcome: { ok: true, bytes: i } };
  return { type: 'session.start', session };
}

async function buildLog(records: number, k = key): Promise<{ dir: string; files: AuditFile[]; lastCheckpoint: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-tamper-'));
  const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(k), checkpointEvery: 250, segmentMaxBytes: 2500 });
  let lastCheckpoint = '';
  log.onDidCheckpoint((c) => (lastCheckpoint = c.note));
  for (let i = 1; i < records; i += 10) await Promise.all(Array.from({ length: Math.min(10, records - i) }, (_, j) => log.append(entry(i + j))));
  await log.close();
  return { dir, files: await readAuditDir(dir), lastCheckpoint };
}

const fileNamed = (files: AuditFile[], name: string) => files.find((f) => f.name === name)!;
const replace = (files: AuditFile[], name: string, bytes: Buffer): AuditFile[] => files.map((f) => (f.name === name ? { name, bytes } : f));
const linesOf = (f: AuditFile) => f.bytes.toString('utf8').split('\n').slice(0, -1);
const fromLines = (lines: string[]) => Buffer.from(lines.map((l) => l + '\n').join(''));
const segmentNames = (files: AuditFile[]) => classify(files).segments.map((s) => s.name.file);

describe('audit tamper suite (1,000 records)', () => {
  let files: AuditFile[];
  let lastCheckpoint: string;

  beforeAll(async () => {
    ({ files, lastCheckpoint } = await buildLog(1000));
  }, 60_000);

  it('verifies the untouched log: 1,000 records, several segments and checkpoints', () => {
    const report = verifyAuditFiles(files, opts);
    expect(report.problem).toBeUndefined();
    expect(report.records).toBe(1000);
    expect(segmentNames(files).length).toBeGreaterThan(20);
    expect(report.checkpoints).toBeGreaterThan(20);
  });

  it('detects every single-byte change in every file of the log', () => {
    const { checkpoints, segments, others } = classify(files);
    const cpBytes = checkpoints!.bytes;
    const cpLineStarts = [0];
    for (let i = cpBytes.indexOf(10); i >= 0 && i < cpBytes.length - 1; i = cpBytes.indexOf(10, i + 1)) cpLineStarts.push(i + 1);

    // Verifier states after each untouched prefix.
    const start = new AuditVerifier(opts);
    start.loadTrustedCheckpoint();
    start.scanForRotations(segments.map((s) => s.bytes));
    const afterCpLines: AuditVerifier[] = [];
    const v = start;
    cpLineStarts.forEach((s, k) => {
      afterCpLines.push(v.clone());
      v.loadCheckpoints(cpBytes.subarray(s, cpLineStarts[k + 1] ?? cpBytes.length), k);
    });
    const afterSegments: AuditVerifier[] = [];
    for (const seg of segments) {
      afterSegments.push(v.clone());
      v.addSegment(seg.name, seg.bytes);
    }
    afterSegments.push(v.clone());

    const lineOf = (pos: number) => {
      let k = 0;
      while (k + 1 < cpLineStarts.length && cpLineStarts[k + 1]! <= pos) k++;
      return k;
    };
    const verifyFlipped = (file: AuditFile, pos: number): AuditVerifyReport => {
      if (file === checkpoints) {
        const k = lineOf(pos);
        return runVerifierSteps(afterCpLines[k]!.clone(), (w) => {
          w.loadCheckpoints(file.bytes.subarray(cpLineStarts[k]!), k);
          for (const s of segments) w.addSegment(s.name, s.bytes);
          return w.finish(others);
        });
      }
      const j = segments.findIndex((s) => s.bytes === file.bytes);
      if (j >= 0) {
        return runVerifierSteps(afterSegments[j]!.clone(), (w) => {
          for (const s of segments.slice(j)) w.addSegment(s.name, s.bytes);
          return w.finish(others);
        });
      }
      return runVerifierSteps(afterSegments.at(-1)!.clone(), (w) => w.finish(others));
    };

    let flips = 0;
    const missed: string[] = [];
    const sample: Array<[string, number, AuditVerifyReport]> = [];
    const targets = [checkpoints!, ...segments.map((s) => files.find((f) => f.bytes === s.bytes)!), ...others];
    for (const file of targets) {
      for (let pos = 0; pos < file.bytes.length; pos++) {
        const original = file.bytes[pos]!;
        file.bytes[pos] = original ^ 0x01;
        const report = verifyFlipped(file, pos);
        if (report.ok) missed.push(`${file.name}@${pos}`);
        if (flips % 997 === 0) sample.push([file.name, pos, report]);
        file.bytes[pos] = original;
        flips++;
      }
    }
    expect(missed).toEqual([]);
    expect(flips).toBeGreaterThan(150_000);

    // The resumed runs must report exactly what a full run from scratch reports.
    for (const [name, pos, resumed] of sample) {
      const f = files.find((x) => x.name === name)!;
      f.bytes[pos]! ^= 0x01;
      const full = verifyAuditFiles(files, opts);
      f.bytes[pos]! ^= 0x01;
      expect(full.problem, `${name}@${pos}`).toEqual(resumed.problem);
    }
    expect(sample.length).toBeGreaterThan(100);
  }, 180_000);

  it('reports every single-byte change of two segments exactly as a verifier that parses every record whole does', () => {
    const { segments, others } = classify(files);
    const whole: AuditVerifyOptions = { ...opts, parseWholeRecords: true };
    const prefix = (o: AuditVerifyOptions, upTo: number) => {
      const v = new AuditVerifier(o);
      v.loadTrustedCheckpoint();
      v.scanForRotations(segments.map((s) => s.bytes));
      v.loadCheckpoints(fileNamed(files, CHECKPOINTS_FILE).bytes);
      for (const s of segments.slice(0, upTo)) v.addSegment(s.name, s.bytes);
      return v;
    };
    let compared = 0;
    for (const j of [0, 7]) {
      const fast = prefix(opts, j);
      const slow = prefix(whole, j);
      const bytes = segments[j]!.bytes;
      for (let pos = 0; pos < bytes.length; pos++) {
        const original = bytes[pos]!;
        for (const value of [original ^ 0x01, original ^ 0x80, 0x22, 0x0a, 0x1f]) {
          if (value === original) continue;
          bytes[pos] = value;
          const run = (v: AuditVerifier) =>
            runVerifierSteps(v.clone(), (w) => {
              for (const s of segments.slice(j)) w.addSegment(s.name, s.bytes);
              return w.finish(others);
            });
          const a = run(fast);
          expect(a.ok, `${segments[j]!.name.file}@${pos}`).toBe(false);
          expect(a.problem, `${segments[j]!.name.file}@${pos} -> ${value}`).toEqual(run(slow).problem);
          compared++;
        }
        bytes[pos] = original;
      }
    }
    expect(compared).toBeGreaterThan(10_000);
  }, 120_000);

  it('detects a deleted record at the start, middle and end of a segment', () => {
    const seg = fileNamed(files, segmentNames(files)[3]!);
    const lines = linesOf(seg);
    for (const at of [0, Math.floor(lines.length / 2), lines.length - 1]) {
      const report = verifyAuditFiles(replace(files, seg.name, fromLines(lines.filter((_, i) => i !== at))), opts);
      expect(report.ok, `deleted line ${at}`).toBe(false);
      expect(report.problem!.file).toBe(at === lines.length - 1 ? segmentNames(files)[4] : seg.name);
    }
  });

  it('detects a duplicated record, a swapped pair of records and an inserted record', () => {
    const seg = fileNamed(files, segmentNames(files)[5]!);
    const lines = linesOf(seg);
    const dup = [...lines.slice(0, 4), lines[3]!, ...lines.slice(4)];
    expect(verifyAuditFiles(replace(files, seg.name, fromLines(dup)), opts).problem?.reason).toMatch(/duplicated or moved/);
    const swapped = [...lines];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    expect(verifyAuditFiles(replace(files, seg.name, fromLines(swapped)), opts).ok).toBe(false);
    const inserted = [...lines.slice(0, 2), lines[1]!.replace('"seq":', '"seq":').replace(/"session":"[^"]*"/, '"session":"forged"'), ...lines.slice(2)];
    expect(verifyAuditFiles(replace(files, seg.name, fromLines(inserted)), opts).ok).toBe(false);
  });

  it('detects an inserted record even when the attacker renumbers and re-chains everything after it', () => {
    const names = segmentNames(files);
    const forgedFiles = files.map((f) => ({ name: f.name, bytes: Buffer.from(f.bytes) }));
    // Rewrite from segment 6 on: insert one forged record, renumber and recompute every prev.
    let prev = '';
    let seq = 0;
    let inserted = false;
    for (const name of names) {
      const f = forgedFiles.find((x) => x.name === name)!;
      const out: string[] = [];
      const idx = names.indexOf(name);
      for (const line of linesOf(f)) {
        const records: AuditRecord[] = [JSON.parse(line) as AuditRecord];
        if (idx === 6 && !inserted) {
          records.unshift({ ...records[0]!, session: 'forged' });
          inserted = true;
        }
        for (const r of records) {
          const next = idx >= 6 ? canonicalJson({ ...r, seq, prev }) : line;
          out.push(next);
          prev = Buffer.from(leafHashOfLine(next)).toString('hex');
          seq++;
        }
      }
      f.bytes = fromLines(out);
    }
    const report = verifyAuditFiles(forgedFiles, opts);
    expect(report.ok).toBe(false);
    expect(report.problem!.reason).toMatch(/do not hash to the root signed by|missing|already seen/);
  });

  it('detects a truncated tail given a later trusted checkpoint (and says plainly it cannot without one)', () => {
    const cps = linesOf(fileNamed(files, CHECKPOINTS_FILE)).map(parseCheckpointLine);
    const sizeOf = (note: string) => Number(note.split('\n')[1]);
    const cut = cps.find((c) => sizeOf(c.note) >= 500)!;
    const keep = sizeOf(cut.note);
    // Drop every record after `keep` and every checkpoint beyond it: a clean-looking shorter log.
    let seen = 0;
    const truncated: AuditFile[] = [];
    for (const f of files) {
      if (f.name === CHECKPOINTS_FILE) {
        truncated.push({ name: f.name, bytes: fromLines(linesOf(f).filter((l) => sizeOf(parseCheckpointLine(l).note) <= keep)) });
      } else if (segmentNames(files).includes(f.name)) {
        const lines = linesOf(f);
        const kept = lines.slice(0, Math.max(0, keep - seen));
        seen += lines.length;
        if (kept.length > 0) truncated.push({ name: f.name, bytes: fromLines(kept) });
      } else truncated.push(f);
    }
    expect(verifyAuditFiles(truncated, opts).ok).toBe(true);
    const withTrusted = verifyAuditFiles(truncated, { ...opts, trustedCheckpoint: lastCheckpoint });
    expect(withTrusted.ok).toBe(false);
    expect(withTrusted.problem!.reason).toMatch(/truncated: a signed checkpoint covers 1000 records of chain 1 but the log holds only/);
    // A cut inside a line is seen without any help.
    const lastSeg = segmentNames(files).at(-1)!;
    const f = fileNamed(files, lastSeg);
    expect(verifyAuditFiles(replace(files, lastSeg, f.bytes.subarray(0, f.bytes.length - 7)), opts).problem?.reason).toMatch(/incomplete/);
  });

  it('detects swapped segments, a deleted segment and a segment from another log', async () => {
    const names = segmentNames(files);
    const a = fileNamed(files, names[2]!);
    const b = fileNamed(files, names[3]!);
    const swapped = files.map((f) => (f.name === a.name ? { name: a.name, bytes: b.bytes } : f.name === b.name ? { name: b.name, bytes: a.bytes } : f));
    expect(verifyAuditFiles(swapped, opts).ok).toBe(false);
    expect(verifyAuditFiles(files.filter((f) => f.name !== names[4]), opts).problem?.reason).toMatch(/missing/);
    const other = await buildLog(200);
    const foreign = fileNamed(other.files, segmentNames(other.files)[1]!);
    const renamed = names.find((n) => n.endsWith(`${segmentNames(other.files)[1]!.slice(-17)}`));
    const target = renamed ?? names[1]!;
    expect(verifyAuditFiles(replace(files, target, foreign.bytes), opts).ok).toBe(false);
  }, 30_000);

  it('verifies a directory one segment at a time with the same verdicts as verifyAuditFiles over the same files', async () => {
    const segs = segmentNames(files);
    const bytesOf = (name: string) => fileNamed(files, name).bytes;
    const flipped = Buffer.from(bytesOf(segs[5]!));
    flipped[40] = flipped[40]! ^ 1;
    const cases: Array<[string, AuditFile[]]> = [
      ['untouched', files],
      ['a middle segment deleted', files.filter((f) => f.name !== segs[5])],
      ['a byte changed in a middle segment', replace(files, segs[5]!, flipped)],
      ['the last checkpoint cut short', replace(files, CHECKPOINTS_FILE, bytesOf(CHECKPOINTS_FILE).subarray(0, -10))],
      ['two segments swapped', replace(replace(files, segs[3]!, bytesOf(segs[4]!)), segs[4]!, bytesOf(segs[3]!))],
      ['NULs after an older segment', replace(files, segs[2]!, Buffer.concat([bytesOf(segs[2]!), Buffer.alloc(50)]))],
      ['the newest segment with its runway', replace(files, segs.at(-1)!, Buffer.concat([bytesOf(segs.at(-1)!), Buffer.alloc(4096)]))],
    ];
    const verdicts: boolean[] = [];
    for (const [what, variant] of cases) {
      const dir = await mkdtemp(join(tmpdir(), 'tether-tamper-dir-'));
      for (const f of variant) {
        await mkdir(dirname(join(dir, f.name)), { recursive: true });
        await writeFile(join(dir, f.name), f.bytes);
      }
      const report = await verifyAuditDir(dir, opts);
      expect(report, what).toEqual(verifyAuditFiles(variant, opts));
      verdicts.push(report.ok);
    }
    expect(verdicts).toEqual([true, false, false, false, false, false, true]);
  });

  it('detects forged checkpoints: re-signed by another key, altered root, added beyond the log, or a whole log forged', async () => {
    const cpFile = fileNamed(files, CHECKPOINTS_FILE);
    const cps = linesOf(cpFile);
    const mallory = NoteSigningKey.generate('tether-audit-tamper');
    const resign = (line: string, mutate: (text: string) => string) => {
      const cp = parseCheckpointLine(line);
      const text = mutate(cp.note.split('\n\n')[0]! + '\n');
      return formatCheckpointLine({ frontier: cp.frontier, note: signNote(text, [mallory]) });
    };
    const byMallory = [...cps];
    byMallory[3] = resign(cps[3]!, (t) => t);
    expect(verifyAuditFiles(replace(files, CHECKPOINTS_FILE, fromLines(byMallory)), opts).problem?.reason).toMatch(/not signed by a trusted key/);

    const altered = [...cps];
    const cp = parseCheckpointLine(cps[4]!);
    const [body, sigs] = cp.note.split('\n\n') as [string, string];
    const lines = body.split('\n');
    lines[2] = Buffer.alloc(32, 9).toString('base64');
    altered[4] = formatCheckpointLine({ frontier: cp.frontier, note: `${lines.join('\n')}\n\n${sigs}` });
    expect(verifyAuditFiles(replace(files, CHECKPOINTS_FILE, fromLines(altered)), opts).ok).toBe(false);

    const beyond = [...cps, resign(cps.at(-1)!, (t) => t.replace(/\n1000\n/, '\n1001\n'))];
    expect(verifyAuditFiles(replace(files, CHECKPOINTS_FILE, fromLines(beyond)), opts).ok).toBe(false);

    const forgedLog = await buildLog(100, mallory);
    const report = verifyAuditFiles(forgedLog.files, opts);
    expect(report.ok).toBe(false);
    expect(report.problem!.reason).toMatch(/not signed by a trusted key/);
    expect(verifyAuditFiles(files.filter((f) => f.name !== CHECKPOINTS_FILE), opts).problem?.reason).toMatch(/after the last signed checkpoint/);
  }, 30_000);
});
