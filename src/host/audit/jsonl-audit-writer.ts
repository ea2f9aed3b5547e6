// First audit log: canonical JSON lines, each naming the SHA-256 of the line
// before it, appended with group commit (one write + one fsync for all records
// waiting). An append is acknowledged only after its fsync. A deferred append
// (an outcome nobody waits on) starts no commit itself: it joins the next one,
// at the latest MAX_DEFER_MS later, so a stream of requests pays one fsync per
// request, not two. On open, the chain continues from the last complete line;
// a torn last line (crash mid-write) is cut off and the cut is itself recorded.
//
// Not here (the signed audit issue): Merkle tree, signed checkpoints, segment
// rotation, verification.

import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../../common/canonical-json.ts';
import { AUDIT_RECORD_VERSION, type AuditEntry, type AuditRecord } from '../../common/audit-record.ts';
import { AuditUnavailableError, MAX_DEFER_MS, type AppendOptions, type AuditReceipt, type AuditWriter } from './audit-writer.ts';

export const AUDIT_FILE = 'audit.jsonl';
export { MAX_DEFER_MS };

interface Pending {
  entry: AuditEntry;
  resolve: (r: AuditReceipt) => void;
  reject: (e: unknown) => void;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export class JsonlAuditWriter implements AuditWriter {
  private queue: Pending[] = [];
  /** The queue holds a record someone is waiting on (or a deferred one is due). */
  private due = false;
  private deferTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private failed: Error | undefined;
  private readonly listeners = new Set<(record: AuditRecord, receipt: AuditReceipt) => void>();

  private readonly file: FileHandle;
  readonly path: string;
  private seq: number;
  private prev: string;

  private constructor(file: FileHandle, path: string, seq: number, prev: string) {
    this.file = file;
    this.path = path;
    this.seq = seq;
    this.prev = prev;
  }

  static async open(dir: string): Promise<JsonlAuditWriter> {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const path = join(dir, AUDIT_FILE);
      let text = '';
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      const complete = text.endsWith('\n') || text === '' ? text : text.slice(0, text.lastIndexOf('\n') + 1);
      const torn = text.length - complete.length;
      const lines = complete.split('\n').filter((l) => l !== '');
      const last = lines.at(-1);
      const seq = last === undefined ? 0 : (JSON.parse(last) as AuditRecord).seq + 1;
      const prev = last === undefined ? '' : sha256Hex(last);
      const file = await open(path, 'a+', 0o600);
      if (torn > 0) await file.truncate(Buffer.byteLength(complete));
      const writer = new JsonlAuditWriter(file, path, seq, prev);
      if (torn > 0) {
        await writer.append({ type: 'log.sealed-tail', session: '', detail: { droppedBytes: torn, reason: 'torn last line after a crash (never acknowledged)' } });
      }
      return writer;
    } catch (e) {
      throw new AuditUnavailableError(`cannot open the audit log in ${dir}: ${(e as Error).message}. Check that the directory is writable and the disk is not full.`);
    }
  }

  onDidAppend(listener: (record: AuditRecord, receipt: AuditReceipt) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  append(entry: AuditEntry, opts: AppendOptions = {}): Promise<AuditReceipt> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('the audit log is closed'));
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      if (opts.deferred) this.deferTimer ??= setTimeout(() => this.commitSoon(), MAX_DEFER_MS);
      else this.commitSoon();
    });
  }

  private commitSoon(): void {
    this.due = true;
    this.flushing ??= this.flushLoop();
  }

  private async flushLoop(): Promise<void> {
    while (this.due && this.queue.length > 0) {
      this.due = false;
      clearTimeout(this.deferTimer);
      this.deferTimer = undefined;
      const batch = this.queue;
      this.queue = [];
      const records: AuditRecord[] = [];
      const receipts: AuditReceipt[] = [];
      let text = '';
      let { seq, prev } = this;
      const time = new Date().toISOString();
      for (const { entry } of batch) {
        const record: AuditRecord = { ...entry, v: AUDIT_RECORD_VERSION, seq, time, prev };
        const line = canonicalJson(record);
        prev = sha256Hex(line);
        records.push(record);
        receipts.push({ seq, hash: prev });
        text += line + '\n';
        seq++;
      }
      try {
        // The write only reaches the page cache (microseconds for one batch), so
        // it is done in place; the fsync waits for the disk off the event loop.
        const bytes = Buffer.from(text, 'utf8');
        for (let off = 0; off < bytes.length; ) off += writeSync(this.file.fd, bytes, off);
        await this.file.datasync();
      } catch (e) {
        this.failed = new AuditUnavailableError(`the audit log could not be written (${(e as Error).message}); every further request is denied until Tether restarts with a writable audit directory`);
        for (const p of [...batch, ...this.queue]) p.reject(this.failed);
        this.queue = [];
        break;
      }
      this.seq = seq;
      this.prev = prev;
      batch.forEach((p, i) => {
        p.resolve(receipts[i]!);
        for (const l of this.listeners) l(records[i]!, receipts[i]!);
      });
    }
    this.flushing = undefined;
    // Deferred records left behind (they came in during the last commit) still go out in time.
    if (this.queue.length > 0) this.deferTimer ??= setTimeout(() => this.commitSoon(), MAX_DEFER_MS);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.queue.length > 0) this.commitSoon();
    await this.flushing;
    clearTimeout(this.deferTimer);
    await this.file.close();
  }
}
