// The durable outbox that ships the signed audit log to a SIEM sink.
//
// The log itself is the queue: the outbox keeps only a cursor (next seq, last
// checkpoint handled, last checkpoint the collector accepted per origin) in
// <dir>/outbox/<sink>.json, written atomically after every accepted batch. It
// ships records in order in batches that never span a chain and stop at the
// next checkpoint, then that checkpoint with an RFC 6962 consistency proof from
// the last one the collector accepted. Failures (down, slow, 5xx, restarting)
// are retried with capped exponential backoff and jitter; nothing is skipped.
// After a crash the last batch may be sent again: idempotency keys and event
// uids let the collector drop the duplicates.
//
// The backlog (durable records not yet accepted) is bounded by configuration:
// past `nearFullFraction` of `maxBacklogRecords` it warns loudly and reports
// "near-full", past the maximum "full" — the host decides whether to stop the
// agent (fail closed). Records are never dropped to make room.

import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { AuditChainStart, AuditRecord } from '../../common/audit-record.ts';
import { Emitter } from '../../common/emitter.ts';
import { compactRangeShape, consistencyProof, subtreeHashFrom, type Hash } from '../../common/merkle.ts';
import { encodeBase64, parseCheckpoint, parseNote } from '../../common/signed-note.ts';
import { SinkError, type AuditSink, type ShippedRecord } from './audit-sink.ts';
import { fromHex, leafHashOfBytes, merkleHasher, toHex } from './hashing.ts';
import { acquirePidLock, releasePidLock } from './pid-lock.ts';
import { CHECKPOINTS_FILE, OUTBOX_DIR, parseCheckpointLine, parseSegmentFileName, sortSegments, type SegmentName } from './log-layout.ts';
import type { SignedAuditLog } from './signed-audit-log.ts';

export interface AuditOutboxOptions {
  /** The signed audit log directory to ship. */
  readonly dir: string;
  readonly sink: AuditSink;
  /** The live writer, if in this process: wakes the outbox and bounds reads at what is durable. */
  readonly log?: SignedAuditLog;
  /** Records per batch. Default 500. */
  readonly batchSize?: number;
  /** Backlog bound. Default 1,000,000 records. */
  readonly maxBacklogRecords?: number;
  /** Warn when the backlog passes this fraction of the bound. Default 0.8. */
  readonly nearFullFraction?: number;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  /** How often to look for new data without a live writer. Default 2 s. */
  readonly pollMs?: number;
  readonly onWarning?: (message: string) => void;
}

export type BacklogState = 'ok' | 'near-full' | 'full';

export interface OutboxMetrics {
  readonly sink: string;
  readonly backlogRecords: number;
  readonly maxBacklogRecords: number;
  readonly state: BacklogState;
  readonly shippedRecords: number;
  readonly shippedCheckpoints: number;
  readonly retries: number;
  readonly nextSeq: number;
  readonly lastError?: string;
}

interface Accepted {
  readonly size: number;
  readonly frontier: readonly string[];
}

interface OutboxState {
  v: 1;
  nextSeq: number;
  /** sha256 of the note of the last checkpoint line shipped (or skipped), '' for none. */
  lastCheckpointSha: string;
  accepted: Record<string, Accepted>;
}

interface PendingCheckpoint {
  readonly origin: string;
  readonly size: number;
  readonly note: string;
  readonly frontier: readonly string[];
  readonly sha: string;
}

interface ChainInfo {
  readonly origin: string;
  readonly chain: number;
  readonly firstSeq: number;
}

interface Cursor {
  seg: SegmentName;
  offset: number;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export class AuditOutbox {
  private readonly opts: Required<Omit<AuditOutboxOptions, 'log' | 'onWarning'>> & Pick<AuditOutboxOptions, 'log' | 'onWarning'>;
  private readonly statePath: string;
  private readonly lockPath: string;
  private state: OutboxState = { v: 1, nextSeq: 0, lastCheckpointSha: '', accepted: {} };
  private cursor: Cursor | undefined;
  private cpOffset = 0;
  private cpQueue: PendingCheckpoint[] = [];
  private current: ChainInfo | undefined;
  private known = new Map<string, ChainInfo>();
  /** Leaf hashes of the current chain from its last accepted checkpoint up to nextSeq. */
  private pendingLeaves: Hash[] = [];

  private stopped = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private stopWake: (() => void) | undefined;
  private unsubscribe: Array<() => void> = [];
  private idle = false;
  private retries = 0;
  private shippedRecords = 0;
  private shippedCheckpoints = 0;
  private lastError: string | undefined;
  private backlog = 0;
  private backlogState: BacklogState = 'ok';
  private fatal: Error | undefined;

  private readonly didChangeState = new Emitter<BacklogState>();
  readonly onDidChangeBacklogState = this.didChangeState.event;
  private readonly didProgress = new Emitter<void>();

  private constructor(opts: AuditOutboxOptions) {
    this.opts = { batchSize: 500, maxBacklogRecords: 1_000_000, nearFullFraction: 0.8, retryInitialMs: 250, retryMaxMs: 60_000, pollMs: 2000, ...opts };
    this.statePath = join(opts.dir, OUTBOX_DIR, `${opts.sink.name.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
    this.lockPath = `${this.statePath}.lock`;
  }

  /**
   * Starts shipping. One outbox per collector and log at a time: a second
   * (another Tether process, `tether audit ship`) is refused, naming the pid.
   */
  static async start(opts: AuditOutboxOptions): Promise<AuditOutbox> {
    const o = new AuditOutbox(opts);
    await mkdir(join(opts.dir, OUTBOX_DIR), { recursive: true, mode: 0o700 });
    await acquirePidLock(o.lockPath, `shipping of ${opts.dir} to ${opts.sink.name}`, (m) => new Error(m));
    try {
      await o.restore();
    } catch (e) {
      await releasePidLock(o.lockPath);
      throw e;
    }
    if (opts.log) {
      o.unsubscribe.push(opts.log.onDidAppend(() => o.poke()));
      o.unsubscribe.push(opts.log.onDidCheckpoint(() => o.poke()));
    }
    o.loop = o.run();
    return o;
  }

  metrics(): OutboxMetrics {
    return {
      sink: this.opts.sink.name,
      backlogRecords: this.backlog,
      maxBacklogRecords: this.opts.maxBacklogRecords,
      state: this.backlogState,
      shippedRecords: this.shippedRecords,
      shippedCheckpoints: this.shippedCheckpoints,
      retries: this.retries,
      nextSeq: this.state.nextSeq,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** The metrics in Prometheus text format (for the host's /metrics endpoint). */
  prometheusMetrics(): string {
    const m = this.metrics();
    const l = `{sink="${m.sink}"}`;
    return [
      `# HELP tether_audit_outbox_backlog_records Durable audit records the SIEM has not accepted yet.`,
      `# TYPE tether_audit_outbox_backlog_records gauge`,
      `tether_audit_outbox_backlog_records${l} ${m.backlogRecords}`,
      `tether_audit_outbox_backlog_limit_records${l} ${m.maxBacklogRecords}`,
      `# HELP tether_audit_outbox_backlog_near_full 1 when the backlog is past its warning level.`,
      `tether_audit_outbox_backlog_near_full${l} ${m.state === 'ok' ? 0 : 1}`,
      `tether_audit_outbox_shipped_records_total${l} ${m.shippedRecords}`,
      `tether_audit_outbox_shipped_checkpoints_total${l} ${m.shippedCheckpoints}`,
      `tether_audit_outbox_retries_total${l} ${m.retries}`,
      '',
    ].join('\n');
  }

  /** Resolves once everything durable now has been accepted (or rejects after timeoutMs). */
  async drain(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const target = this.opts.log ? this.opts.log.durableSeq + 1 : undefined;
    for (;;) {
      if (this.fatal) throw this.fatal;
      if (this.idle && (target === undefined || this.state.nextSeq >= target)) return;
      if (Date.now() > deadline) throw new Error(`the outbox did not drain within ${timeoutMs} ms (next seq ${this.state.nextSeq}, last error: ${this.lastError ?? 'none'})`);
      this.poke();
      await new Promise<void>((resolve) => {
        const off = this.didProgress.event(() => {
          off();
          resolve();
        });
        setTimeout(() => {
          off();
          resolve();
        }, 50).unref();
      });
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const u of this.unsubscribe) u();
    this.abort.abort(new Error('the outbox stopped'));
    this.stopWake?.();
    await this.loop?.catch(() => undefined);
    await this.opts.sink.close?.();
    await releasePidLock(this.lockPath);
  }

  private poke(): void {
    this.idle = false;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      let progressed: boolean;
      try {
        progressed = await this.step();
        if (progressed) {
          attempt = 0;
          this.lastError = undefined;
        }
      } catch (e) {
        if (this.stopped) break;
        if (!(e instanceof SinkError)) {
          // Not the collector: the log itself is unreadable or damaged. Keep trying, loudly.
          this.fatal = e as Error;
        }
        this.lastError = (e as Error).message;
        this.retries++;
        const delay = Math.min(this.opts.retryMaxMs, this.opts.retryInitialMs * 2 ** Math.min(attempt, 30)) * (0.5 + Math.random() * 0.5);
        attempt++;
        if (attempt === 5 || (e instanceof SinkError && !e.retryable && attempt === 1)) this.opts.onWarning?.(`audit shipping to ${this.opts.sink.name} keeps failing (${this.lastError}); retrying, nothing is dropped`);
        this.didProgress.fire();
        await this.sleep(delay, false);
        continue;
      }
      this.fatal = undefined;
      this.didProgress.fire();
      if (!progressed) {
        this.idle = true;
        this.didProgress.fire();
        await this.sleep(this.opts.log ? 60_000 : this.opts.pollMs, true);
      }
    }
  }

  /** Waits `ms`; new data cuts an idle wait short, but never a backoff (only stop() does). */
  private sleep(ms: number, wakeOnData: boolean): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.stopWake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopWake = done;
      if (wakeOnData) this.wake = done;
    });
  }

  // --- one unit of work ---

  /** Ships one batch or one checkpoint; false when there is nothing to ship. */
  private async step(): Promise<boolean> {
    await this.updateBacklog();
    await this.readNewCheckpoints();
    const head = this.cpQueue[0];
    if (head && this.canShipCheckpoint(head)) {
      await this.shipCheckpoint(head);
      return true;
    }
    const records = await this.readBatch(head);
    if (records.length === 0) {
      // A checkpoint for a chain we never saw the start of cannot be placed; skip it with a warning.
      if (head && !this.known.has(head.origin) && (await this.atEndOfLog())) {
        this.opts.onWarning?.(`audit outbox: checkpoint for ${head.origin} names no chain in ${this.opts.dir}; skipped`);
        this.cpQueue.shift();
        this.state.lastCheckpointSha = head.sha;
        return true;
      }
      return false;
    }
    const chain = this.current!;
    const first = records[0]!;
    const last = records.at(-1)!;
    await this.opts.sink.sendRecords({ origin: chain.origin, chain: chain.chain, records, idempotencyKey: `${chain.origin}:records:${first.leafIndex}-${last.leafIndex}` }, this.abort.signal);
    for (const r of records) this.pendingLeaves.push(fromHex(r.leafHash));
    this.state.nextSeq = last.seq + 1;
    this.cursorAdvanceCommit();
    this.shippedRecords += records.length;
    await this.saveState();
    await this.updateBacklog();
    return true;
  }

  private canShipCheckpoint(cp: PendingCheckpoint): boolean {
    const info = this.known.get(cp.origin);
    if (!info) return false;
    if (this.current?.origin !== cp.origin) return true; // a chain we have moved past: all its records are shipped
    return cp.size <= this.state.nextSeq - info.firstSeq;
  }

  private async shipCheckpoint(cp: PendingCheckpoint): Promise<void> {
    const info = this.known.get(cp.origin)!;
    const accepted = this.state.accepted[cp.origin];
    let consistency: { fromSize: number; proof: string[] } | null = null;
    if (accepted && accepted.size > 0 && cp.origin === this.current?.origin) {
      consistency = { fromSize: accepted.size, proof: this.proveFrom(accepted, cp.size).map(encodeBase64) };
    }
    await this.opts.sink.sendCheckpoint({ origin: cp.origin, chain: info.chain, size: cp.size, note: cp.note, consistency, idempotencyKey: `${cp.origin}:checkpoint:${cp.size}:${cp.sha.slice(0, 16)}` }, this.abort.signal);
    this.cpQueue.shift();
    this.state.lastCheckpointSha = cp.sha;
    if (cp.origin === this.current?.origin) {
      const from = accepted?.size ?? 0;
      this.pendingLeaves = this.pendingLeaves.slice(cp.size - from);
    }
    this.state.accepted[cp.origin] = { size: cp.size, frontier: cp.frontier };
    this.shippedCheckpoints++;
    await this.saveState();
  }

  /** Consistency proof from an accepted checkpoint to size n, from its frontier and the leaves shipped since. */
  private proveFrom(accepted: Accepted, n: number): Hash[] {
    const m = accepted.size;
    const old = new Map(compactRangeShape(0, m).map(([s, k], i) => [`${s}/${k}`, fromHex(accepted.frontier[i]!)]));
    const mth = subtreeHashFrom(merkleHasher, (start, size) => {
      if (start + size <= m) return old.get(`${start}/${size}`);
      if (start >= m && size === 1) return this.pendingLeaves[start - m];
      return undefined;
    });
    return consistencyProof(m, n, mth);
  }

  // --- reading the log ---

  private async readNewCheckpoints(): Promise<void> {
    let bytes: Buffer;
    try {
      const h = await open(join(this.opts.dir, CHECKPOINTS_FILE), 'r');
      try {
        const size = (await h.stat()).size;
        if (size <= this.cpOffset) return;
        bytes = Buffer.alloc(size - this.cpOffset);
        await h.read(bytes, 0, bytes.length, this.cpOffset);
      } finally {
        await h.close();
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    let start = 0;
    for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, start)) {
      const text = bytes.toString('utf8', start, nl);
      start = nl + 1;
      try {
        const line = parseCheckpointLine(text);
        const body = parseCheckpoint(line.unsigned ? line.note : parseNote(line.note).text);
        this.cpQueue.push({ origin: body.origin, size: body.size, note: line.note, frontier: line.frontier, sha: sha(line.note) });
      } catch {
        this.opts.onWarning?.('audit outbox: an unreadable line in checkpoints.jsonl was skipped (run `tether audit verify`)');
      }
    }
    this.cpOffset += start;
  }

  private async segments(): Promise<SegmentName[]> {
    return sortSegments((await readdir(this.opts.dir)).map(parseSegmentFileName).filter((s): s is SegmentName => s !== undefined));
  }

  private async atEndOfLog(): Promise<boolean> {
    const segs = await this.segments();
    const last = segs.at(-1);
    if (!last || !this.cursor) return true;
    if (this.cursor.seg.file !== last.file) return false;
    const h = await open(join(this.opts.dir, last.file), 'r');
    try {
      // Nothing after the cursor, or only the runway (NULs: log-layout.ts).
      const next = Buffer.alloc(1);
      const { bytesRead } = await h.read(next, 0, 1, this.cursor.offset);
      return bytesRead === 0 || next[0] === 0;
    } finally {
      await h.close();
    }
  }

  private pendingCursor: Cursor | undefined;

  private cursorAdvanceCommit(): void {
    if (this.pendingCursor) this.cursor = this.pendingCursor;
    this.pendingCursor = undefined;
  }

  /** Reads the next records to ship: one chain, up to the batch size, the next checkpoint and the durable end. */
  private async readBatch(head: PendingCheckpoint | undefined): Promise<ShippedRecord[]> {
    const durable = this.opts.log ? this.opts.log.durableSeq : Number.MAX_SAFE_INTEGER;
    let limit = Math.min(this.opts.batchSize, durable - this.state.nextSeq + 1);
    if (head && this.current && head.origin === this.current.origin) limit = Math.min(limit, this.current.firstSeq + head.size - this.state.nextSeq);
    if (limit <= 0) return [];
    const cursor = await this.locate(this.state.nextSeq);
    if (!cursor) return [];
    const out: ShippedRecord[] = [];
    let { seg, offset } = cursor;
    let seq = this.state.nextSeq;
    const segs = await this.segments();
    while (out.length < limit) {
      const { lines, end, atNul } = await readLines(join(this.opts.dir, seg.file), offset, limit - out.length, seg.file === segs.at(-1)?.file);
      for (const raw of lines) {
        const record = JSON.parse(raw.toString('utf8')) as AuditRecord;
        if (record.seq !== seq) throw new Error(`${seg.file}: found seq ${record.seq} where ${seq} was expected; the log is damaged (run \`tether audit verify ${this.opts.dir}\`)`);
        if (record.type === 'log.start') {
          const d = record.detail as unknown as AuditChainStart;
          if (out.length > 0) return this.finishBatch(out, { seg, offset });
          this.startChain({ origin: d.origin, chain: d.chain, firstSeq: seq });
          const cp = this.cpQueue.find((c) => c.origin === d.origin);
          if (cp) limit = Math.min(limit, cp.size);
        }
        const chain = this.current;
        if (!chain) throw new Error(`${seg.file}: records before any log.start record`);
        out.push({ seq, leafIndex: seq - chain.firstSeq, line: raw.toString('utf8'), leafHash: toHex(leafHashOfBytes(raw)), record });
        offset += raw.length + 1;
        seq++;
        if (out.length >= limit) break;
      }
      if (out.length >= limit) break;
      // Every record up to `limit` is durable when the log is ours to ask: a NUL before them is damage.
      if (atNul && this.opts.log) throw segmentDamage(seg.file, end);
      if (end > offset || atNul) break; // an incomplete line or a commit still being written: not durable yet
      const next = segs.find((s) => s.chain > seg.chain || (s.chain === seg.chain && s.firstSeq > seg.firstSeq));
      if (!next || next.firstSeq !== seq) break;
      seg = next;
      offset = 0;
    }
    return this.finishBatch(out, { seg, offset });
  }

  private finishBatch(out: ShippedRecord[], cursor: Cursor): ShippedRecord[] {
    this.pendingCursor = cursor;
    return out;
  }

  private startChain(info: ChainInfo): void {
    if (this.current && this.current.origin !== info.origin) this.pendingLeaves = [];
    this.current = info;
    this.known.set(info.origin, info);
  }

  /** The position of record `seq` (cached cursor, or found by scanning its segment). */
  private async locate(seq: number): Promise<Cursor | undefined> {
    if (this.cursor) return this.cursor;
    const segs = await this.segments();
    const seg = [...segs].reverse().find((s) => s.firstSeq <= seq);
    if (!seg) return undefined;
    let offset = 0;
    let at = seg.firstSeq;
    while (at < seq) {
      const { lines } = await readLines(join(this.opts.dir, seg.file), offset, Math.min(10_000, seq - at), seg === segs.at(-1));
      if (lines.length === 0) return undefined;
      for (const l of lines) offset += l.length + 1;
      at += lines.length;
    }
    this.cursor = { seg, offset };
    return this.cursor;
  }

  private async updateBacklog(): Promise<void> {
    const durable = this.opts.log ? this.opts.log.durableSeq + 1 : await this.estimateEnd();
    this.backlog = Math.max(0, durable - this.state.nextSeq);
    const max = this.opts.maxBacklogRecords;
    const state: BacklogState = this.backlog >= max ? 'full' : this.backlog >= max * this.opts.nearFullFraction ? 'near-full' : 'ok';
    if (state !== this.backlogState) {
      this.backlogState = state;
      if (state !== 'ok') {
        this.opts.onWarning?.(
          `AUDIT SHIPPING BACKLOG ${state.toUpperCase()}: ${this.backlog} of ${max} records not yet accepted by ${this.opts.sink.name}` +
            (this.lastError ? ` (last error: ${this.lastError})` : '') +
            '. Nothing is dropped; the records stay in the local log until the collector takes them.',
        );
      }
      this.didChangeState.fire(state);
    }
  }

  private estimatedEnd = 0;
  private estimatedAt = 0;

  private async estimateEnd(): Promise<number> {
    if (Date.now() - this.estimatedAt < this.opts.pollMs) return Math.max(this.estimatedEnd, this.state.nextSeq);
    const last = (await this.segments()).at(-1);
    if (last) {
      const text = await readFile(join(this.opts.dir, last.file));
      let n = 0;
      for (let i = text.indexOf(10); i >= 0; i = text.indexOf(10, i + 1)) n++;
      this.estimatedEnd = last.firstSeq + n;
    }
    this.estimatedAt = Date.now();
    return Math.max(this.estimatedEnd, this.state.nextSeq);
  }

  // --- state ---

  private async restore(): Promise<void> {
    try {
      const s = JSON.parse(await readFile(this.statePath, 'utf8')) as OutboxState;
      if (s.v !== 1 || !Number.isSafeInteger(s.nextSeq) || typeof s.lastCheckpointSha !== 'string' || typeof s.accepted !== 'object') throw new Error('unknown format');
      this.state = s;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`the audit outbox state ${this.statePath} is unreadable (${(e as Error).message}); move it aside to ship the whole log again (the collector drops duplicates)`, { cause: e });
      }
    }
    // Checkpoints already handled: skip up to the last one shipped.
    await this.readNewCheckpoints();
    if (this.state.lastCheckpointSha) {
      const at = this.cpQueue.findIndex((c) => c.sha === this.state.lastCheckpointSha);
      if (at >= 0) this.cpQueue = this.cpQueue.slice(at + 1);
      else this.cpQueue = this.cpQueue.filter((c) => c.size > (this.state.accepted[c.origin]?.size ?? -1));
    }
    if (this.state.nextSeq === 0) return;
    // Which chain were we in, and the leaves since its last accepted checkpoint.
    const segs = await this.segments();
    const inSeg = [...segs].reverse().find((s) => s.firstSeq <= this.state.nextSeq - 1);
    if (!inSeg) throw new Error(`the audit outbox state says seq ${this.state.nextSeq - 1} was shipped, but ${this.opts.dir} has no such record`);
    for (const s of segs.filter((x) => x.chain <= inSeg.chain)) {
      if (segs.find((x) => x.chain === s.chain) !== s) continue; // first segment of each chain
      const { lines } = await readLines(join(this.opts.dir, s.file), 0, 1, s === segs.at(-1));
      const r = JSON.parse(lines[0]!.toString('utf8')) as AuditRecord;
      const d = r.detail as unknown as AuditChainStart;
      this.startChain({ origin: d.origin, chain: d.chain, firstSeq: r.seq });
    }
    const chain = this.current!;
    const from = chain.firstSeq + (this.state.accepted[chain.origin]?.size ?? 0);
    const saved = this.state.nextSeq;
    this.pendingLeaves = [];
    if (from < saved) {
      const cursor = await this.locate(from);
      this.cursor = undefined;
      if (!cursor) throw new Error(`cannot find seq ${from} in ${this.opts.dir}`);
      let { seg, offset } = cursor;
      let seq = from;
      while (seq < saved) {
        const { lines } = await readLines(join(this.opts.dir, seg.file), offset, saved - seq, seg.file === segs.at(-1)?.file);
        for (const l of lines) {
          this.pendingLeaves.push(leafHashOfBytes(l));
          offset += l.length + 1;
          seq++;
        }
        if (seq < saved) {
          const next = segs.find((s) => s.chain === seg.chain && s.firstSeq === seq);
          if (!next) throw new Error(`cannot find seq ${seq} in ${this.opts.dir}`);
          seg = next;
          offset = 0;
        }
      }
    }
  }

  private async saveState(): Promise<void> {
    const dir = join(this.opts.dir, OUTBOX_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.statePath}.tmp`;
    await writeFile(tmp, JSON.stringify(this.state));
    const h = await open(tmp, 'r');
    await h.sync();
    await h.close();
    await rename(tmp, this.statePath);
  }
}

interface SegmentLines {
  readonly lines: Buffer[];
  /** How far the records go. */
  readonly end: number;
  /** They end at a NUL: the newest segment's runway, or where a commit being written has not landed yet. */
  readonly atNul: boolean;
}

/** Up to `max` complete lines of a segment from `offset` (readLinesFrom); [] when the file is gone. */
async function readLines(path: string, offset: number, max: number, newest: boolean): Promise<SegmentLines> {
  let h: FileHandle;
  try {
    h = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], end: offset, atNul: false };
    throw e;
  }
  try {
    return await readLinesFrom(h, basename(path), offset, (await h.stat()).size, max, newest);
  } finally {
    await h.close();
  }
}

/**
 * Up to `max` complete lines (without newlines) from `offset` of a segment
 * `size` bytes long when last seen. In the newest segment the records end at
 * the first NUL: its runway, or a commit being written (a read at the same
 * time as a write can see part of it, then NULs). In any other segment a NUL
 * is damage and throws. A file found shorter than `size` (a runway cut by
 * rotation or close meanwhile) ends there.
 */
export async function readLinesFrom(h: Pick<FileHandle, 'read'>, name: string, offset: number, size: number, max: number, newest: boolean): Promise<SegmentLines> {
  let end = size;
  let atNul = false;
  const lines: Buffer[] = [];
  let at = offset;
  let chunk = 64 * 1024;
  while (lines.length < max && at < end) {
    const buf = Buffer.alloc(Math.min(chunk, end - at));
    let { bytesRead } = await h.read(buf, 0, buf.length, at);
    if (bytesRead < buf.length) end = at + bytesRead;
    const nul = buf.subarray(0, bytesRead).indexOf(0);
    if (nul >= 0) {
      if (!newest) throw segmentDamage(name, at + nul);
      bytesRead = nul;
      end = at + nul;
      atNul = true;
    }
    let start = 0;
    for (let nl = buf.indexOf(10); nl >= 0 && nl < bytesRead && lines.length < max; nl = buf.indexOf(10, start)) {
      lines.push(buf.subarray(start, nl));
      start = nl + 1;
    }
    if (start === 0) {
      if (at + bytesRead >= end) break; // an incomplete last line
      chunk *= 2; // a line longer than the chunk
      continue;
    }
    at += start;
  }
  return { lines, end, atNul };
}

function segmentDamage(name: string, offset: number): Error {
  return new Error(`${name}: a NUL byte at offset ${offset} among records that are on disk: the log is damaged (run \`tether audit verify\`), or a crash left a torn write that Tether seals when it next opens the log`);
}
