// Reads the audit log for the UI's audit view and checks its hash chain.
//
// This checks what the first log format offers: every line parses, sequence
// numbers run without gaps, and each record names the SHA-256 of the line
// before it. It does not check signatures or Merkle checkpoints, and it cannot
// detect a truncated tail without a trusted checkpoint — that is the signed
// audit log's verifier, which replaces this behind the same interface.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord } from '../common/audit-record.ts';
import type { AuditVerification } from '../common/ipc-contract.ts';

export interface AuditView {
  /** The newest records (up to `limit`), oldest first. */
  read(limit: number): Promise<AuditRecord[]>;
  verify(): Promise<AuditVerification>;
}

const AUDIT_FILE = 'audit.jsonl';

export class JsonlAuditView implements AuditView {
  private readonly file: string;
  constructor(dir: string) {
    this.file = join(dir, AUDIT_FILE);
  }

  private async lines(): Promise<string[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return text.split('\n').filter((l) => l !== '');
  }

  async read(limit: number): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    for (const line of (await this.lines()).slice(-limit)) {
      try {
        out.push(JSON.parse(line) as AuditRecord);
      } catch {
        // verify() reports it; the view shows what parses
      }
    }
    return out;
  }

  async verify(): Promise<AuditVerification> {
    let lines: string[];
    try {
      lines = await this.lines();
    } catch (e) {
      return { ok: false, records: 0, message: `the audit log cannot be read: ${(e as Error).message}` };
    }
    let prev = '';
    let expected: number | undefined;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      let rec: AuditRecord;
      try {
        rec = JSON.parse(line) as AuditRecord;
      } catch {
        return { ok: false, records: i, message: `line ${i + 1} is not valid JSON: the log was modified or damaged`, ...(expected !== undefined ? { badSeq: expected } : {}) };
      }
      if (expected !== undefined && rec.seq !== expected) {
        return { ok: false, records: i, badSeq: Math.max(0, rec.seq), message: `record ${rec.seq} follows ${expected - 1}: records were deleted, inserted or reordered` };
      }
      if (rec.prev !== prev) {
        return { ok: false, records: i, badSeq: Math.max(0, rec.seq), message: `record ${rec.seq} does not name the hash of the record before it: the log was modified` };
      }
      prev = createHash('sha256').update(line).digest('hex');
      expected = rec.seq + 1;
    }
    return { ok: true, records: lines.length, message: lines.length === 0 ? 'the log is empty' : `hash chain intact over ${lines.length} records (signatures are not checked by this view)` };
  }
}
