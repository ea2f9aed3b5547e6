// Reads the records of a signed audit log directory in order, for views (the
// desktop audit view, tests). It does not verify anything: use
// verifyAuditDir for that.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord } from '../../common/audit-record.ts';
import { parseSegmentFileName, segmentRecordBytes, sortSegments, type SegmentName } from './log-layout.ts';

async function segmentsOf(dir: string): Promise<SegmentName[]> {
  return sortSegments((await readdir(dir)).map(parseSegmentFileName).filter((s): s is SegmentName => s !== undefined));
}

/** One segment's records that parse and pass `filter`, in order (a torn tail is skipped: the writer seals it on its next open). */
async function recordsOf(dir: string, s: SegmentName, newest: boolean, filter?: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (const line of segmentRecordBytes(await readFile(join(dir, s.file)), newest).toString('utf8').split('\n')) {
    if (line === '') continue;
    let rec: AuditRecord;
    try {
      rec = JSON.parse(line) as AuditRecord;
    } catch {
      continue;
    }
    if (!filter || filter(rec)) out.push(rec);
  }
  return out;
}

export async function readAuditRecords(dir: string, filter?: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  const segments = await segmentsOf(dir);
  for (const s of segments) for (const r of await recordsOf(dir, s, s === segments.at(-1), filter)) out.push(r); // a segment can hold more records than a call takes arguments
  return out;
}

/** The last `limit` records, reading segments from the newest back only as far as it takes (a log grows for years). */
export async function readLastAuditRecords(dir: string, limit: number): Promise<AuditRecord[]> {
  const parts: AuditRecord[][] = [];
  let count = 0;
  const segments = await segmentsOf(dir);
  for (let i = segments.length - 1; i >= 0 && count < limit; i--) {
    const records = await recordsOf(dir, segments[i]!, i === segments.length - 1);
    parts.unshift(records);
    count += records.length;
  }
  return parts.flat().slice(-limit);
}
