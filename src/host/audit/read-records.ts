// Reads the records of a signed audit log directory in order, for views (the
// desktop audit view, tests). It does not verify anything: use
// verifyAuditDir for that.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord } from '../../common/audit-record.ts';
import { parseSegmentFileName, sortSegments, withoutRunway, type SegmentName } from './log-layout.ts';

export async function readAuditRecords(dir: string, filter?: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
  const segments = sortSegments((await readdir(dir)).map(parseSegmentFileName).filter((s): s is SegmentName => s !== undefined));
  const out: AuditRecord[] = [];
  for (const s of segments) {
    const text = withoutRunway(await readFile(join(dir, s.file))).toString('utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let rec: AuditRecord;
      try {
        rec = JSON.parse(line) as AuditRecord;
      } catch {
        continue; // a torn tail; the writer seals it on its next open
      }
      if (!filter || filter(rec)) out.push(rec);
    }
  }
  return out;
}
