// The signed, tamper-evident audit log (DESIGN.md "Audit log"; layout in
// log-layout.ts). Each record is one canonical JSON line in a segment file,
// names its predecessor's leaf hash, and is a leaf of an RFC 6962 tree whose
// root is signed as a C2SP checkpoint every N records, every T seconds while
// idle, when a segment closes and at shutdown.
//
// Durability: appends waiting together are written with one write and one
// fdatasync (group commit); a record is acknowledged only after that fsync.
// On Linux the segment is opened O_DSYNC instead, so the write is the sync:
// one system call and one thread-pool round trip per commit, not two (the
// same guarantee as write + fdatasync: data and size on disk before it returns).
//
// Runway (Linux): a write that grows a file also changes its size, and on
// ext4 or XFS syncing a size change means waiting for a journal commit, which
// is shared with every other metadata change on that file system. A burst of
// file creations in the workspace on the same disk then held audit commits
// for several milliseconds (p99 3.3-3.9 ms against 0.3-0.9 ms, measured with
// a file created and fsync'd every 5 ms beside the log). So the segment being
// written keeps a runway of NUL bytes (1 MiB; less for small segments)
// already on disk after its records, and a commit overwrites part of them in
// place: a data write and a device flush, no journal. When less than a
// quarter is left, another runway's worth is written in turn with the
// commits (about every 1,500 records; ~2 ms on this project's CI disk),
// unless the last commit was big: then the load is throughput-bound, the
// journal commit is shared by many records, and commits grow the file. A
// segment is cut back to its records when it is closed or rotated; readers
// take the records to end where the trailing NULs begin (log-layout.ts).
// On open, anything after the last complete, correctly chained record of the
// newest segment (a crash mid-write: never acknowledged) is copied to sealed/,
// cut off, and recorded in a log.sealed-tail record. Damage it sees inside
// what a checkpoint already covers is not a crash: the log refuses to open.
// (It re-reads only from the latest checkpoint on; finding tampering in older
// records is the verifier's job.)
//
// Keys: the signing key comes from a KeyStore. If it cannot be loaded the log
// refuses to open, unless `allowUnsigned` (managed policy) is set; then every
// record carries `unsigned: true` and checkpoints carry no signature.
// A key the last checkpoint was not signed by (reinstall, lost keychain) starts
// a new chain whose first record names the previous chain's checkpoint.
//
// Not here: reading/verifying (audit-verifier.ts), shipping (audit-outbox.ts).

import { randomBytes } from 'node:crypto';
import { constants as FS, fdatasyncSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CanonicalJsonWriter } from '../../common/canonical-json.ts';
import { AUDIT_RECORD_VERSION, type AuditChainStart, type AuditEntry, type AuditKeyRotation, type AuditRecord, type AuditSealedTail } from '../../common/audit-record.ts';
import { Emitter } from '../../common/emitter.ts';
import { MerkleFrontier } from '../../common/merkle.ts';
import { encodeBase64, formatCheckpoint, parseCheckpoint, parseNote, signNote, type Checkpoint, type NoteSignature } from '../../common/signed-note.ts';
import { KeyStoreUnavailableError, newAuditKeyName, type KeyStore } from '../keychain/key-store.ts';
import { NoteSigningKey } from '../keychain/note-key.ts';
import { AuditUnavailableError, MAX_DEFER_MS, type AppendOptions, type AuditReceipt, type AuditWriter } from './audit-writer.ts';
import { acquirePidLock } from './pid-lock.ts';
import { fromHex, hexNodeHasher, leafHexOfBytes, leafHexOfLine, sha256Hex, toHex } from './hashing.ts';
import {
  CHECKPOINTS_FILE,
  KEYS_DIR,
  LOCK_FILE,
  SEALED_DIR,
  formatCheckpointLine,
  keyFileName,
  parseCheckpointLine,
  parseSegmentFileName,
  sealedFileName,
  segmentFileName,
  sortSegments,
  withoutRunway,
  type CheckpointLine,
  type SegmentName,
} from './log-layout.ts';

export interface SignedAuditLogOptions {
  readonly dir: string;
  readonly keyStore: KeyStore;
  /** Managed policy explicitly allows an unsigned log when no key is available. Default false: refuse. */
  readonly allowUnsigned?: boolean;
  /**
   * Write (and sync) each commit on the calling thread instead of libuv's
   * thread pool: no thread hand-off on the way to the disk, which is most of
   * a commit's tail latency on a busy machine, but the event loop waits for
   * the disk meanwhile (typically 0.1–0.5 ms; a stalled disk stalls the
   * host). For hosts with no UI on their event loop: the headless CLI, not
   * Electron's main process. Default false.
   */
  readonly commitInPlace?: boolean;
  /** A checkpoint after this many records. Default 1000. */
  readonly checkpointEvery?: number;
  /** A checkpoint after this long without one, even with no new records (proof of life). Default 5 min. */
  readonly checkpointIdleMs?: number;
  /** Start a new segment once the current one is this big. Default 32 MiB. */
  readonly segmentMaxBytes?: number;
  /** Start a new segment once the current one's first record is this old. Default 24 h. */
  readonly segmentMaxAgeMs?: number;
  /** Larger records are refused: records hold hashes and sizes, never contents. Default 1 MiB. */
  readonly maxRecordBytes?: number;
  /** How much of the end of checkpoints.jsonl recovery reads (the latest checkpoint is at the end). Default 4 MiB. */
  readonly checkpointTailBytes?: number;
  readonly now?: () => Date;
  /** Non-fatal trouble worth telling someone about (sealed tails, new chains, unsigned mode). */
  readonly onWarning?: (message: string) => void;
}

export interface CheckpointWritten {
  readonly origin: string;
  readonly size: number;
  /** The note exactly as stored (a signed note, or the bare checkpoint text when unsigned). */
  readonly note: string;
  /** Global seq of the last record the checkpoint covers. */
  readonly lastSeq: number;
  readonly unsigned: boolean;
}

export interface SignedAuditLogStatus {
  readonly dir: string;
  readonly origin: string;
  readonly chain: number;
  readonly treeSize: number;
  /** Seq the next record will get. */
  readonly nextSeq: number;
  readonly unsigned: boolean;
  readonly verifierKey?: string;
  readonly keyId?: string;
  readonly segment: string;
}

interface Pending {
  readonly entry: AuditEntry;
  readonly overlap: boolean;
  readonly resolve: (r: AuditReceipt) => void;
  readonly reject: (e: unknown) => void;
}

interface Segment {
  readonly name: SegmentName;
  readonly handle: FileHandle;
  /** Where the records end (the next one is written here). */
  bytes: number;
  /** The file's size: `bytes` plus the runway. */
  size: number;
  records: number;
  firstRecordAt: number | undefined;
}

interface Seal {
  readonly file: string;
  readonly offset: number;
  readonly bytes: Buffer;
  readonly reason: string;
}

interface StoredCheckpoint {
  readonly line: CheckpointLine;
  readonly body: Checkpoint;
  readonly signatures: readonly NoteSignature[];
}

const BATCH_BUFFER_START = 256 * 1024;
/** A batch buffer grown beyond this is dropped after use rather than kept. */
const BATCH_BUFFER_KEEP = 8 * 1024 * 1024;

/**
 * Linux: O_DSYNC makes each write durable before it returns. Elsewhere an
 * explicit fdatasync follows the write (on macOS libuv's is F_FULLFSYNC,
 * which O_DSYNC is not).
 */
const SEGMENT_DSYNC = process.env['NODSYNC'] === undefined && process.platform === 'linux' && typeof FS.O_DSYNC === 'number';
/** Writes are positional, at the records' end (over the runway, or over NULs a crash left), so no O_APPEND. */
const SEGMENT_FLAGS = FS.O_WRONLY | FS.O_CREAT | (SEGMENT_DSYNC ? FS.O_DSYNC : 0);
/** Pre-written NULs kept after the records where commits are O_DSYNC writes (see "Runway" above); less for small segments. */
const MAX_RUNWAY_BYTES = 1024 * 1024;
const RUNWAY_BYTES = SEGMENT_DSYNC ? MAX_RUNWAY_BYTES : 0;
/** The runway is refilled only after a commit smaller than this (a latency-bound load). */
const RUNWAY_SMALL_BATCH = 64 * 1024;

const DEFAULTS = {
  commitInPlace: false,
  checkpointEvery: 1000,
  checkpointIdleMs: 300_000,
  segmentMaxBytes: 32 * 1024 * 1024,
  segmentMaxAgeMs: 24 * 3600_000,
  maxRecordBytes: 1024 * 1024,
  checkpointTailBytes: 4 * 1024 * 1024,
};

export class SignedAuditLog implements AuditWriter {
  private readonly opts: Required<Omit<SignedAuditLogOptions, 'onWarning'>> & Pick<SignedAuditLogOptions, 'onWarning'>;
  private readonly dir: string;
  private key: NoteSigningKey | undefined;
  /** How many NULs a runway extension writes, and the least left before the next. */
  private readonly runway: number;
  private readonly runwayLow: number;

  private queue: Pending[] = [];
  /** Reused for each batch's bytes (writes are serialised by `exclusive`). */
  private batch = new CanonicalJsonWriter(BATCH_BUFFER_START);
  private flushScheduled = false;
  /** Bytes of the last commit. */
  private lastBatchBytes = 0;
  private deferTimer: NodeJS.Timeout | undefined;
  private serial: Promise<unknown> = Promise.resolve();
  /** Operations started through exclusive() and not yet settled. */
  private running = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private failed: Error | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  private chain = 0;
  private origin = '';
  private chainFirstSeq = 0;
  private frontier = new MerkleFrontier(hexNodeHasher);
  private seq = 0;
  private prev = '';
  private segment: Segment | undefined;
  private checkpoints: FileHandle | undefined;
  private sinceCheckpoint = 0;
  private lastCheckpointAt = 0;

  private readonly didAppend = new Emitter<{ record: AuditRecord; receipt: AuditReceipt }>();
  private readonly didCheckpoint = new Emitter<CheckpointWritten>();
  readonly onDidCheckpoint = this.didCheckpoint.event;

  private constructor(opts: SignedAuditLogOptions, key: NoteSigningKey | undefined) {
    this.opts = { ...DEFAULTS, allowUnsigned: false, now: () => new Date(), ...opts };
    this.dir = opts.dir;
    this.key = key;
    this.runway = Math.min(RUNWAY_BYTES, Math.ceil(this.opts.segmentMaxBytes / 4096) * 4096);
    this.runwayLow = this.runway / 4;
  }

  /**
   * Opens (creating, recovering or starting a new chain as needed) the log in `dir`.
   * Rejects with AuditUnavailableError saying what is wrong and how to fix it.
   */
  static async open(options: SignedAuditLogOptions): Promise<SignedAuditLog> {
    const { dir } = options;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new AuditUnavailableError(`cannot create the audit log directory ${dir}: ${(e as Error).message}. Check that the path is writable.`);
    }
    await acquireLock(dir);
    let log: SignedAuditLog | undefined;
    try {
      const key = await loadKey(options);
      log = new SignedAuditLog(options, key);
      await log.recover();
      log.startIdleTimer();
      return log;
    } catch (e) {
      await log?.releaseHandles();
      await rm(join(dir, LOCK_FILE), { force: true });
      if (e instanceof AuditUnavailableError) throw e;
      throw new AuditUnavailableError(`cannot open the audit log in ${dir}: ${(e as Error).message}. Check that the directory is writable and the disk is not full.`);
    }
  }

  get status(): SignedAuditLogStatus {
    return {
      dir: this.dir,
      origin: this.origin,
      chain: this.chain,
      treeSize: this.frontier.size,
      nextSeq: this.seq,
      unsigned: this.key === undefined,
      segment: this.segment?.name.file ?? '',
      ...(this.key ? { verifierKey: this.key.verifierKey, keyId: this.key.keyIdHex } : {}),
    };
  }

  /** Seq of the last durable record (-1 when none). */
  get durableSeq(): number {
    return this.seq - 1;
  }

  onDidAppend(listener: (record: AuditRecord, receipt: AuditReceipt) => void): () => void {
    return this.didAppend.event(({ record, receipt }) => listener(record, receipt));
  }

  /**
   * A deferred append (an outcome nobody waits on) starts no commit itself: it
   * rides the next one, or goes out on its own within MAX_DEFER_MS, so a stream
   * of requests pays one fsync per request, not two.
   */
  append(entry: AuditEntry, opts: AppendOptions = {}): Promise<AuditReceipt> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('the audit log is closed'));
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject, overlap: opts.overlap === true });
      if (opts.deferred) this.deferTimer ??= setTimeout(() => this.scheduleFlush(), MAX_DEFER_MS);
      else this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    clearTimeout(this.deferTimer);
    this.deferTimer = undefined;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      void this.exclusive(() => this.flush());
    }
  }

  /** Writes a checkpoint now (also what the idle timer does). */
  checkpoint(): Promise<CheckpointWritten> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('the audit log is closed'));
    if (this.failed) return Promise.reject(this.failed);
    return this.exclusive(() => this.writeCheckpoint());
  }

  /**
   * Replaces the signing key: stores a new key, records the rotation, and signs
   * the next checkpoint with both keys, so a verifier that trusts the old key
   * learns the new one. Returns the new verifier key.
   */
  rotateKey(): Promise<string> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('the audit log is closed'));
    return this.exclusive(async () => {
      if (this.failed) throw this.failed;
      const old = this.key;
      if (!old) throw new AuditUnavailableError('this audit log is unsigned: there is no key to rotate. Make the OS keychain available and restart Tether to start a signed chain.');
      const next = NoteSigningKey.generate(newAuditKeyName());
      await this.opts.keyStore.replaceSigningKey(next);
      const detail: AuditKeyRotation = { previous: old.verifierKey, next: next.verifierKey };
      await this.writeKeyFile(next);
      await this.writeRecords([{ type: 'log.key-rotation', session: '', detail: { ...detail } }]);
      this.key = next;
      await this.writeCheckpoint([old, next]);
      return next.verifierKey;
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (this.idleTimer) clearInterval(this.idleTimer);
      clearTimeout(this.deferTimer);
      await this.exclusive(async () => {
        await this.flush();
        if (!this.failed) await this.writeCheckpoint();
      }).catch(() => undefined);
      await this.releaseHandles();
      await rm(join(this.dir, LOCK_FILE), { force: true });
      if (this.failed) throw this.failed;
    })();
    return this.closing;
  }

  // --- writing ---

  /**
   * Runs `fn` after everything started before it. When nothing is running it
   * starts at once, so an append's write is already on its way to the disk
   * when append() returns (the broker prepares the effect meanwhile).
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.running === 0 ? fn() : this.serial.then(fn, fn);
    this.running++;
    const settled = run.then(
      () => void this.running--,
      () => void this.running--,
    );
    this.serial = settled;
    return run;
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.failed) {
      for (const p of batch) p.reject(this.failed);
      return;
    }
    let written: Array<{ index: number; record: AuditRecord; receipt: AuditReceipt }>;
    try {
      written = await this.writeRecords(
        batch.map((p) => p.entry),
        (i, e) => batch[i]!.reject(e),
        { offThread: batch.some((p) => p.overlap) },
      );
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
    for (const w of written) batch[w.index]!.resolve(w.receipt);
    for (const w of written) this.didAppend.fire(w);
    if (this.sinceCheckpoint >= this.opts.checkpointEvery) await this.writeCheckpoint().catch(() => undefined);
    // Under a heavy load (big batches) the journal's cost is shared by many records, and
    // refilling the runway would write every byte twice: commits then grow the file.
    const seg = this.segment;
    if (seg && seg.size - seg.bytes < this.runwayLow && this.lastBatchBytes < RUNWAY_SMALL_BATCH) await this.extendRunway(seg);
  }

  /**
   * Writes more NULs after the end of the segment (durable when it returns:
   * the file is O_DSYNC). Failing costs speed, not records: commits then grow
   * the file, as they do without a runway.
   */
  private async extendRunway(seg: Segment): Promise<void> {
    if (this.runway === 0) return;
    const zeros = Buffer.alloc(this.runway);
    try {
      for (let at = 0; at < zeros.length; ) at += (await seg.handle.write(zeros, at, zeros.length - at, seg.size + at)).bytesWritten;
      seg.size += zeros.length;
    } catch (e) {
      seg.size = (await seg.handle.stat().catch(() => undefined))?.size ?? seg.size;
      this.opts.onWarning?.(`audit log ${this.dir}: could not extend the runway of ${seg.name.file} (${(e as Error).message}); commits will be slower until it can`);
    }
  }

  /** Cuts the segment back to its records (closing or rotating it), durably. Asks the file its size: a failed extension may have left more. */
  private async cutRunway(seg: Segment): Promise<void> {
    if ((await seg.handle.stat()).size === seg.bytes) return;
    await seg.handle.truncate(seg.bytes);
    await seg.handle.datasync();
    seg.size = seg.bytes;
  }

  /**
   * Appends records durably (one write, one fdatasync). An entry that cannot
   * be a record (not serialisable, too large) goes to `refuse` and takes no
   * seq; without `refuse` it throws. Fails the log on any I/O error.
   */
  private async writeRecords(
    entries: readonly AuditEntry[],
    refuse?: (index: number, e: Error) => void,
    opts: { readonly offThread?: boolean } = {},
  ): Promise<Array<{ index: number; record: AuditRecord; receipt: AuditReceipt }>> {
    if (this.failed) throw this.failed;
    const now = this.opts.now();
    const time = now.toISOString();
    const out: Array<{ index: number; record: AuditRecord; receipt: AuditReceipt }> = [];
    const leaves: string[] = [];
    // Lines are written once, as UTF-8, into one buffer: its bytes are hashed and written to disk.
    const w = this.batch;
    w.truncate(0);
    let { seq, prev } = this;
    for (let index = 0; index < entries.length; index++) {
      const record = { ...entries[index], v: AUDIT_RECORD_VERSION, seq, time, prev } as AuditRecord & { unsigned?: true };
      if (!this.key) record.unsigned = true;
      else if ('unsigned' in record) delete record.unsigned;
      const start = w.length;
      try {
        w.write(record);
      } catch (e) {
        const err = new Error(`audit record refused: ${(e as Error).message}`);
        if (!refuse) throw err;
        refuse(index, err);
        continue;
      }
      const size = w.length - start;
      if (size > this.opts.maxRecordBytes) {
        w.truncate(start);
        const err = new Error(`audit record of ${size} bytes refused (limit ${this.opts.maxRecordBytes}): records carry hashes and sizes, never file contents`);
        if (!refuse) throw err;
        refuse(index, err);
        continue;
      }
      prev = leafHexOfBytes(w.bytes.subarray(start));
      w.byte(10);
      leaves.push(prev);
      out.push({ index, record, receipt: { seq, hash: prev } });
      seq++;
    }
    if (w.length > BATCH_BUFFER_KEEP) this.batch = new CanonicalJsonWriter(BATCH_BUFFER_START); // w lives until this write is done
    if (out.length === 0) return out;
    try {
      if (this.segmentDue()) await this.rotateSegment();
      const seg = this.segment!;
      const bytes = w.bytes;
      // At the records' end, wherever the file ends (a runway, or NULs a crash left, follow the records).
      const pos = seg.bytes;
      if (this.opts.commitInPlace && !opts.offThread) {
        for (let at = 0; at < bytes.length; ) at += writeSync(seg.handle.fd, bytes, at, bytes.length - at, pos + at);
        if (!SEGMENT_DSYNC) fdatasyncSync(seg.handle.fd);
      } else {
        for (let at = 0; at < bytes.length; ) at += (await seg.handle.write(bytes, at, bytes.length - at, pos + at)).bytesWritten;
        if (!SEGMENT_DSYNC) await seg.handle.datasync();
      }
      for (const leaf of leaves) this.frontier.append(leaf);
      seg.bytes += bytes.length;
      seg.size = Math.max(seg.size, seg.bytes);
      this.lastBatchBytes = bytes.length;
      seg.records += out.length;
      seg.firstRecordAt ??= now.getTime();
      this.seq = seq;
      this.prev = prev;
      this.sinceCheckpoint += out.length;
      return out;
    } catch (e) {
      throw this.fail(`the audit log could not be written (${(e as Error).message})`);
    }
  }

  private fail(what: string): Error {
    this.failed ??= new AuditUnavailableError(`${what}; every further request is denied until Tether restarts with a writable audit directory (${this.dir})`);
    for (const p of this.queue) p.reject(this.failed);
    this.queue = [];
    return this.failed;
  }

  private segmentDue(): boolean {
    const seg = this.segment!;
    if (seg.records === 0) return false;
    const age = seg.firstRecordAt === undefined ? 0 : this.opts.now().getTime() - seg.firstRecordAt;
    return seg.bytes >= this.opts.segmentMaxBytes || age >= this.opts.segmentMaxAgeMs;
  }

  private async rotateSegment(): Promise<void> {
    await this.writeCheckpoint();
    // Cut before the next segment exists: only the newest segment ever has a runway.
    await this.cutRunway(this.segment!);
    await this.segment!.handle.close();
    this.segment = await this.createSegment(this.chain, this.seq);
  }

  /** A new segment with its runway on disk (a crash before its first record leaves one holding no records; recovery removes it). */
  private async createSegment(chain: number, firstSeq: number): Promise<Segment> {
    const file = segmentFileName(chain, firstSeq);
    const handle = await open(join(this.dir, file), SEGMENT_FLAGS, 0o600);
    const seg: Segment = { name: { file, chain, firstSeq }, handle, bytes: 0, size: 0, records: 0, firstRecordAt: undefined };
    await this.extendRunway(seg);
    await syncDir(this.dir);
    return seg;
  }

  private async writeCheckpoint(signers?: readonly NoteSigningKey[]): Promise<CheckpointWritten> {
    if (this.failed) throw this.failed;
    try {
      const now = this.opts.now();
      const body = formatCheckpoint({ origin: this.origin, size: this.frontier.size, root: fromHex(this.frontier.root()), extensions: [`time ${now.toISOString()}`] });
      const keys = signers ?? (this.key ? [this.key] : []);
      const note = keys.length > 0 ? signNote(body, keys) : body;
      const line = formatCheckpointLine({ frontier: [...this.frontier.hashes], note, ...(keys.length === 0 ? { unsigned: true as const } : {}) });
      this.checkpoints ??= await open(join(this.dir, CHECKPOINTS_FILE), 'a', 0o600);
      await this.checkpoints.write(line + '\n');
      await this.checkpoints.datasync();
      this.sinceCheckpoint = 0;
      this.lastCheckpointAt = now.getTime();
      const written: CheckpointWritten = { origin: this.origin, size: this.frontier.size, note, lastSeq: this.seq - 1, unsigned: keys.length === 0 };
      this.didCheckpoint.fire(written);
      return written;
    } catch (e) {
      throw this.fail(`the audit checkpoint could not be written (${(e as Error).message})`);
    }
  }

  private startIdleTimer(): void {
    const every = Math.min(Math.max(Math.floor(this.opts.checkpointIdleMs / 4), 20), 10_000);
    this.idleTimer = setInterval(() => {
      if (this.closed || this.failed || this.queue.length > 0) return;
      if (this.opts.now().getTime() - this.lastCheckpointAt < this.opts.checkpointIdleMs) return;
      this.lastCheckpointAt = this.opts.now().getTime(); // one attempt per period even if it is slow
      void this.exclusive(() => this.writeCheckpoint()).catch((e: Error) => this.opts.onWarning?.(`idle audit checkpoint failed: ${e.message}`));
    }, every);
    this.idleTimer.unref();
  }

  private async writeKeyFile(key: NoteSigningKey): Promise<void> {
    const dir = join(this.dir, KEYS_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, keyFileName(key.verifierKey));
    await writeFile(`${path}.tmp`, key.verifierKey + '\n', { mode: 0o644 });
    await rename(`${path}.tmp`, path);
    await syncDir(dir);
  }

  private async releaseHandles(): Promise<void> {
    if (this.segment) await this.cutRunway(this.segment).catch(() => undefined);
    await this.segment?.handle.close().catch(() => undefined);
    await this.checkpoints?.close().catch(() => undefined);
    this.segment = undefined;
    this.checkpoints = undefined;
  }

  // --- opening and recovery ---

  private async recover(): Promise<void> {
    const seals: Seal[] = [];
    const read = await this.readCheckpoints(seals);
    let stored = read.stored;
    let segments = await this.listSegments();

    // A crash between creating a segment and writing to it leaves a file with
    // no records: empty, or (part of) its runway. It is removed once the rest
    // of the log is found consistent without it (records that a checkpoint
    // covers zeroed out are damage: then nothing is changed).
    const last = segments.at(-1);
    let unused: string | undefined;
    if (last && (await holdsNoRecords(join(this.dir, last.file)))) {
      unused = last.file;
      segments = segments.slice(0, -1);
    }
    const removeUnused = async () => {
      if (unused === undefined) return;
      await rm(join(this.dir, unused));
      await syncDir(this.dir);
    };

    if (segments.length === 0) {
      if (stored.length > 0) throw this.damaged('checkpoints.jsonl holds checkpoints but there are no record segments (were they deleted?)');
      await removeUnused();
      await this.startChain(1, 0, '', undefined, 'new audit log');
      await this.writeSealRecords(seals);
      return;
    }

    const chain = segments.at(-1)!.chain;
    const chainSegments = segments.filter((s) => s.chain === chain);
    const start = await this.readChainStart(chainSegments[0]!);
    let ofChain = stored.filter((c) => c.body.origin === start.origin);
    if (ofChain.length === 0 && read.partial) {
      stored = (await this.readCheckpoints(undefined, true)).stored;
      ofChain = stored.filter((c) => c.body.origin === start.origin);
    }
    const latest = ofChain.at(-1);
    const replay = await this.replayChain(chainSegments, latest, seals);
    // A newer chain's checkpoint means the all-NUL segment was that chain's, with records it covered.
    if (unused !== undefined && stored.length > 0 && stored.at(-1)!.body.origin !== start.origin) {
      throw this.damaged(`${unused} holds nothing but NUL bytes, yet the latest checkpoint is of a chain (${stored.at(-1)!.body.origin}) whose records are not on disk`);
    }
    await removeUnused();

    const signers = latest ? latest.signatures : [];
    const currentKeys = new Set([...(latest ? signers.map((s) => `${s.name}+${s.keyId}`) : start.key ? [keyRef(start.key)] : []), ...replay.rotatedTo.map(keyRef)]);
    const ours = this.key ? `${this.key.name}+${this.key.keyId}` : undefined;
    const ourSignatureGood = !latest || !this.key || latest.line.unsigned || verifyOwnSignature(this.key, latest);
    const continues = this.key ? start.key !== null && currentKeys.has(ours!) && ourSignatureGood : start.key === null && (!latest || latest.line.unsigned === true);

    this.origin = start.origin;
    this.chain = chain;
    this.chainFirstSeq = chainSegments[0]!.firstSeq;
    this.frontier = replay.frontier;
    this.seq = replay.nextSeq;
    this.prev = replay.prev;
    this.lastCheckpointAt = this.opts.now().getTime();

    const lastSeg = chainSegments.at(-1)!;
    const handle = await open(join(this.dir, lastSeg.file), SEGMENT_FLAGS, 0o600);
    const seg: Segment = { name: lastSeg, handle, bytes: replay.lastSegmentEnd, size: replay.lastSegmentSize, records: replay.lastSegmentRecords, firstRecordAt: replay.lastSegmentFirstTime };
    if (continues) {
      this.segment = seg;
      if (seg.size - seg.bytes < this.runwayLow) await this.extendRunway(seg);
      await this.writeSealRecords(seals);
      if (this.frontier.size > (latest?.body.size ?? -1) || seals.length > 0) await this.writeCheckpoint();
      return;
    }

    // The chain ends here: its last segment keeps only its records.
    try {
      await this.cutRunway(seg);
    } finally {
      await seg.handle.close();
    }
    const why = this.key
      ? `the signing key ${this.key.keyIdHex} did not sign the previous chain (a reinstall or a lost keychain); starting a new chain`
      : 'no signing key is available and managed policy allows an unsigned log; starting an unsigned chain';
    this.opts.onWarning?.(`audit log ${this.dir}: ${why}`);
    const previous: AuditChainStart['previous'] = {
      origin: start.origin,
      size: this.frontier.size,
      root: encodeBase64(fromHex(this.frontier.root())),
      ...(latest ? { checkpoint: { size: latest.body.size, root: encodeBase64(latest.body.root), noteSha256: sha256Hex(latest.line.note) } } : {}),
    };
    await this.startChain(chain + 1, replay.nextSeq, replay.prev, previous, why);
    await this.writeSealRecords(seals);
  }

  private async startChain(chain: number, firstSeq: number, prev: string, previous: AuditChainStart['previous'], reason: string): Promise<void> {
    this.chain = chain;
    this.origin = `tether.audit/${randomBytes(8).toString('hex')}`;
    this.chainFirstSeq = firstSeq;
    this.frontier = new MerkleFrontier(hexNodeHasher);
    this.seq = firstSeq;
    this.prev = prev;
    this.segment = await this.createSegment(chain, firstSeq);
    if (this.key) await this.writeKeyFile(this.key);
    else this.opts.onWarning?.(`audit log ${this.dir} is UNSIGNED: managed policy allows it, and every record says so`);
    const detail: AuditChainStart = { origin: this.origin, chain, key: this.key?.verifierKey ?? null, reason, ...(previous ? { previous } : {}) };
    await this.writeRecords([{ type: 'log.start', session: '', detail: { ...detail } }]);
    await this.writeCheckpoint();
  }

  private async writeSealRecords(seals: readonly Seal[]): Promise<void> {
    for (const s of seals) {
      const detail: AuditSealedTail = { file: s.file, offset: s.offset, bytes: s.bytes.length, sha256: sha256Hex(s.bytes), copy: `${SEALED_DIR}/${sealedFileName(s.file, s.offset)}`, reason: s.reason };
      this.opts.onWarning?.(`audit log ${this.dir}: sealed ${s.bytes.length} bytes at the end of ${s.file} (${s.reason})`);
      await this.writeRecords([{ type: 'log.sealed-tail', session: '', detail: { ...detail } }]);
    }
  }

  /** Keeps a copy of a torn tail (without the runway after it), then cuts it off the file. */
  private async seal(file: string, offset: number, reason: string, seals: Seal[]): Promise<void> {
    const path = join(this.dir, file);
    const all = (await readFile(path)).subarray(offset);
    const bytes = file === CHECKPOINTS_FILE ? all : withoutRunway(all);
    const dir = join(this.dir, SEALED_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const copy = join(dir, sealedFileName(file, offset));
    await writeFile(copy, bytes, { mode: 0o600 });
    const c = await open(copy, 'r');
    await c.sync();
    await c.close();
    await syncDir(dir);
    const h = await open(path, 'r+');
    await h.truncate(offset);
    await h.sync();
    await h.close();
    seals.push({ file, offset, bytes: Buffer.from(bytes), reason });
  }

  /**
   * The checkpoints, sealing a torn last line. Reads only the last few MB
   * (the file grows for the log's whole life) unless `whole` is set.
   */
  private async readCheckpoints(seals: Seal[] | undefined, whole = false): Promise<{ stored: StoredCheckpoint[]; partial: boolean }> {
    const path = join(this.dir, CHECKPOINTS_FILE);
    let h: FileHandle;
    try {
      h = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { stored: [], partial: false };
      throw e;
    }
    let bytes: Buffer;
    let base: number;
    try {
      const size = (await h.stat()).size;
      base = whole ? 0 : Math.max(0, size - this.opts.checkpointTailBytes);
      bytes = Buffer.alloc(size - base);
      await h.read(bytes, 0, bytes.length, base);
    } finally {
      await h.close();
    }
    // In a tail window the first line is cut: start after the first newline.
    const skip = base > 0 ? bytes.indexOf(10) + 1 : 0;
    const out: StoredCheckpoint[] = [];
    let goodEnd = skip;
    for (const { text, end } of splitLines(bytes.subarray(skip)).lines) {
      const cp = parseStoredCheckpoint(text);
      if (cp) {
        out.push(cp);
        goodEnd = skip + end;
      }
    }
    if (base > 0 && out.length === 0) return this.readCheckpoints(seals, true);
    if (seals && goodEnd < bytes.length) await this.seal(CHECKPOINTS_FILE, base + goodEnd, 'an incomplete or unreadable checkpoint after the last good one (a crash while writing it)', seals);
    return { stored: out, partial: base > 0 };
  }


  private async listSegments(): Promise<SegmentName[]> {
    const names = (await readdir(this.dir)).map(parseSegmentFileName).filter((s): s is SegmentName => s !== undefined);
    return sortSegments(names);
  }

  private async readChainStart(first: SegmentName): Promise<AuditChainStart> {
    const bytes = await readFile(join(this.dir, first.file));
    const line = splitLines(bytes).lines[0];
    const record = line ? parseRecord(line.text) : undefined;
    const d = record?.detail as Partial<AuditChainStart> | undefined;
    if (!record || record.type !== 'log.start' || record.seq !== first.firstSeq || !d || typeof d.origin !== 'string' || d.chain !== first.chain || !(typeof d.key === 'string' || d.key === null)) {
      throw this.damaged(`${first.file} does not begin with the log.start record of chain ${first.chain}`);
    }
    return d as AuditChainStart;
  }

  /** Re-reads a chain from its latest checkpoint (or its start), sealing a torn tail of the newest segment. */
  private async replayChain(segments: readonly SegmentName[], latest: StoredCheckpoint | undefined, seals: Seal[]) {
    const firstSeq = segments[0]!.firstSeq;
    const covered = latest?.body.size ?? 0;
    const frontier = new MerkleFrontier(hexNodeHasher, latest?.body.size ?? 0, latest?.line.frontier ?? []);
    const coveredEnd = firstSeq + covered; // first seq not covered by the checkpoint
    let startAt = 0;
    for (let i = 0; i < segments.length; i++) if (segments[i]!.firstSeq <= Math.max(coveredEnd - 1, firstSeq)) startAt = i;

    let nextSeq = segments[startAt]!.firstSeq;
    let prev: string | undefined;
    const rotatedTo: string[] = [];
    let lastSegmentRecords = 0;
    let lastSegmentFirstTime: number | undefined;
    let lastSegmentEnd = 0;
    let lastSegmentSize = 0;
    for (let i = startAt; i < segments.length; i++) {
      const seg = segments[i]!;
      const isLast = i === segments.length - 1;
      if (seg.firstSeq !== nextSeq) throw this.damaged(`${seg.file} should start at seq ${nextSeq}`);
      const file = await readFile(join(this.dir, seg.file));
      // Only the newest segment has a runway; elsewhere a NUL is damage.
      const bytes = isLast ? withoutRunway(file) : file;
      const { lines, tailStart } = splitLines(bytes);
      let badAt: { offset: number; reason: string } | undefined;
      let count = 0;
      let firstTime: number | undefined;
      for (const { text, start } of lines) {
        const r = parseRecord(text);
        const reason = !r ? 'not a valid record' : r.seq !== nextSeq ? `seq ${r.seq} where ${nextSeq} was expected` : prev !== undefined && r.prev !== prev ? 'prev does not name the record before' : undefined;
        if (reason) {
          badAt = { offset: start, reason };
          break;
        }
        const leaf = leafHexOfLine(text);
        if (nextSeq >= coveredEnd) {
          frontier.append(leaf);
          if (r!.type === 'log.key-rotation') {
            const next = (r!.detail as Partial<AuditKeyRotation> | undefined)?.next;
            if (typeof next === 'string') rotatedTo.push(next);
          }
        }
        firstTime ??= Date.parse(r!.time);
        prev = leaf;
        nextSeq++;
        count++;
      }
      const tornAt = badAt?.offset ?? (tailStart < bytes.length ? tailStart : undefined);
      if (tornAt !== undefined) {
        if (!isLast || nextSeq < coveredEnd) {
          throw this.damaged(`${seg.file} is damaged at byte ${tornAt} (${badAt?.reason ?? 'an incomplete line'}) inside what a signed checkpoint covers`);
        }
        await this.seal(seg.file, tornAt, badAt ? `${badAt.reason} after the last good record (a crash while writing)` : 'an incomplete last line (a crash while writing; never acknowledged)', seals);
      }
      if (isLast) {
        lastSegmentRecords = count;
        lastSegmentFirstTime = firstTime;
        lastSegmentEnd = tornAt ?? bytes.length;
        lastSegmentSize = tornAt ?? file.length;
      }
    }
    if (nextSeq < coveredEnd) throw this.damaged(`the latest checkpoint covers ${covered} records of chain ${segments[0]!.chain} but only ${nextSeq - firstSeq} are on disk (records were deleted)`);
    return { frontier, nextSeq, prev: prev ?? '', rotatedTo, lastSegmentRecords, lastSegmentFirstTime, lastSegmentEnd, lastSegmentSize };
  }

  private damaged(what: string): AuditUnavailableError {
    return new AuditUnavailableError(
      `the audit log in ${this.dir} is damaged: ${what}. Nothing was changed. Run \`tether audit verify ${this.dir}\` for the details; ` +
        'to keep working, move the directory aside (keep it as evidence) and start Tether again to begin a new log.',
    );
  }
}

// --- helpers ---

async function loadKey(options: SignedAuditLogOptions): Promise<NoteSigningKey | undefined> {
  try {
    return await options.keyStore.loadSigningKey();
  } catch (e) {
    const reason = e instanceof KeyStoreUnavailableError ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
    if (options.allowUnsigned) {
      options.onWarning?.(`audit signing key unavailable (${reason}); managed policy allows an unsigned log, so every record will say it is unsigned`);
      return undefined;
    }
    throw new AuditUnavailableError(
      `the audit log cannot be signed because ${options.keyStore.description} is not available: ${reason}. ` +
        'Tether will not start a session without a signed audit log. To fix it, unlock your login keychain ' +
        '(Linux: make sure a Secret Service such as gnome-keyring is running and unlocked, e.g. `gnome-keyring-daemon --unlock --components=secrets`; ' +
        'macOS: unlock the login keychain; Windows: sign in to your account) and start Tether again. ' +
        'If your organisation accepts an unsigned log, IT can allow it in managed policy.',
    );
  }
}

function acquireLock(dir: string): Promise<void> {
  return acquirePidLock(join(dir, LOCK_FILE), `the audit log ${dir}`, (m) => new AuditUnavailableError(m));
}

async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Empty, or nothing but NULs and no bigger than the largest runway any writer (of any platform or settings) makes. */
async function holdsNoRecords(path: string): Promise<boolean> {
  const h = await open(path, 'r');
  try {
    const size = (await h.stat()).size;
    if (size > MAX_RUNWAY_BYTES) return false;
    const bytes = Buffer.alloc(size);
    await h.read(bytes, 0, size, 0);
    return withoutRunway(bytes).length === 0;
  } finally {
    await h.close();
  }
}

export interface SplitLine {
  readonly text: string;
  readonly start: number;
  readonly end: number; // just after the newline
}

/** Complete lines (without their newline) and where the incomplete tail, if any, starts. */
export function splitLines(bytes: Buffer): { lines: SplitLine[]; tailStart: number } {
  const lines: SplitLine[] = [];
  let start = 0;
  for (;;) {
    const nl = bytes.indexOf(10, start);
    if (nl < 0) break;
    lines.push({ text: bytes.toString('utf8', start, nl), start, end: nl + 1 });
    start = nl + 1;
  }
  return { lines, tailStart: start };
}

function parseRecord(line: string): AuditRecord | undefined {
  try {
    const r = JSON.parse(line) as AuditRecord;
    if (typeof r !== 'object' || r === null || r.v !== AUDIT_RECORD_VERSION || !Number.isSafeInteger(r.seq) || typeof r.prev !== 'string' || typeof r.time !== 'string' || typeof r.type !== 'string') return undefined;
    return r;
  } catch {
    return undefined;
  }
}

function parseStoredCheckpoint(text: string): StoredCheckpoint | undefined {
  try {
    const line = parseCheckpointLine(text);
    const note = line.unsigned ? { text: line.note, signatures: [] } : parseNote(line.note);
    const body = parseCheckpoint(note.text);
    const frontier = new MerkleFrontier(hexNodeHasher, body.size, line.frontier);
    if (frontier.root() !== toHex(body.root)) return undefined;
    return { line, body, signatures: note.signatures };
  } catch {
    return undefined;
  }
}

function keyRef(verifierKey: string): string {
  const [name, id] = verifierKey.split('+');
  return `${name}+${parseInt(id ?? '', 16)}`;
}

function verifyOwnSignature(key: NoteSigningKey, cp: StoredCheckpoint): boolean {
  const sig = cp.signatures.find((s) => s.name === key.name && s.keyId === key.keyId);
  if (!sig) return true; // signed by another key we rotated to; checked through currentKeys
  return key.verifier().verify(new TextEncoder().encode(parseNote(cp.line.note).text), sig.signature);
}
