// The per-record work of verification that does not depend on earlier
// records — finding line ends, hashing each line, scanning its head — done
// for a run of whole lines, possibly in a worker thread
// (audit-verify-worker.ts), and handed to AuditVerifier.addSegment as
// compact arrays. What is left for the verifier is the sequential part:
// linkage, the Merkle frontier, checkpoints.
//
// Exactness: PreparedSegment gives for every line exactly what the verifier
// would compute itself (the same functions run here). Heads are carried in a
// compact form only for the usual shape (v 1, a number seq, a '' or hex prev,
// a known type, unsigned true or absent); any other head is scanned again on
// the verifier's thread.

import { leafHexOfBytes } from './hashing.ts';
import { KNOWN_TYPES, scanRecordHead, type RecordHead } from './record-head.ts';

/** The results for lines [first line at `start`, last ending at `end` - 1] of a segment. */
export interface PreparedChunk {
  /** Where the lines are in the segment: [start, end), end just after a newline. */
  readonly start: number;
  readonly end: number;
  /** Offset of each line's newline, relative to `start`. */
  readonly ends: Int32Array;
  /** Each line's leaf hash, lowercase hex, concatenated (64 characters a line). */
  readonly leaves: string;
  /** Per line: HEAD_* */
  readonly status: Uint8Array;
  /** Per line with HEAD_COMPACT: FLAG_* bits. */
  readonly flags: Uint8Array;
  /** Per line with HEAD_COMPACT: index in KNOWN_TYPES. */
  readonly types: Uint8Array;
  readonly seqs: Float64Array;
  /** 32 bytes a line: prev when flags say PREV_BYTES. */
  readonly prevs: Uint8Array;
}

/** Who started preparing a chunk (line-preparer.ts; a shared Int32Array, changed with Atomics). */
export const CLAIM_NONE = 0;
export const CLAIM_WORKER = 1;
export const CLAIM_HERE = 2;

/** The scan refused the line: the verifier parses it whole. */
export const HEAD_REFUSED = 0;
export const HEAD_COMPACT = 1;
/** A head the compact form cannot carry: the verifier scans the line again. */
export const HEAD_RESCAN = 2;

const FLAG_TIME_STRING = 1;
const FLAG_SESSION_STRING = 2;
const FLAG_UNSIGNED = 4;
const PREV_EMPTY = 8;
const PREV_PREVIOUS_LEAF = 16;
const PREV_BYTES = 32;

const TYPE_INDEX = new Map(KNOWN_TYPES.map((t, i) => [t, i]));
const LOWER_HEX_64 = /^[0-9a-f]{64}$/;

/** Prepares the whole lines in bytes[start, end) (end just after a newline, or bytes.length). */
export function prepareLines(bytes: Uint8Array, start: number, end: number): PreparedChunk {
  let count = 0;
  for (let i = bytes.indexOf(10, start); i >= 0 && i < end; i = bytes.indexOf(10, i + 1)) count++;
  const ends = new Int32Array(count);
  const status = new Uint8Array(count);
  const flags = new Uint8Array(count);
  const types = new Uint8Array(count);
  const seqs = new Float64Array(count);
  const prevs = new Uint8Array(32 * count);
  const leaves: string[] = [];
  let previousLeaf: string | undefined;
  let at = start;
  for (let k = 0; k < count; k++) {
    const nl = bytes.indexOf(10, at);
    ends[k] = nl - start;
    const leaf = leafHexOfBytes(bytes.subarray(at, nl));
    leaves.push(leaf);
    const h = scanRecordHead(bytes, at, nl, previousLeaf ?? '');
    if (h === undefined) status[k] = HEAD_REFUSED;
    else {
      const f = compactFlags(h, previousLeaf, prevs, 32 * k);
      const type = typeof h.type === 'string' ? TYPE_INDEX.get(h.type) : undefined;
      if (f < 0 || type === undefined || h.v !== 1 || typeof h.seq !== 'number') status[k] = HEAD_RESCAN;
      else {
        status[k] = HEAD_COMPACT;
        flags[k] = f;
        types[k] = type;
        seqs[k] = h.seq;
      }
    }
    previousLeaf = leaf;
    at = nl + 1;
  }
  return { start, end, ends, leaves: leaves.join(''), status, flags, types, seqs, prevs };
}

/** FLAG_* and PREV_* bits for a head, writing prev's bytes when needed; -1 if the compact form cannot carry it. */
function compactFlags(h: RecordHead, previousLeaf: string | undefined, prevs: Uint8Array, at: number): number {
  let f = (h.timeIsString ? FLAG_TIME_STRING : 0) | (h.sessionIsString ? FLAG_SESSION_STRING : 0);
  if (h.unsigned === true) f |= FLAG_UNSIGNED;
  else if (h.unsigned !== undefined) return -1;
  if (h.prev === '') return f | PREV_EMPTY;
  if (previousLeaf !== undefined && h.prev === previousLeaf) return f | PREV_PREVIOUS_LEAF;
  if (typeof h.prev !== 'string' || !LOWER_HEX_64.test(h.prev)) return -1;
  for (let i = 0; i < 32; i++) prevs[at + i] = parseInt(h.prev.slice(2 * i, 2 * i + 2), 16);
  return f | PREV_BYTES;
}

/** The prepared lines of one segment, read in order by AuditVerifier.addSegment. */
export class PreparedSegment {
  private readonly bytes: Uint8Array;
  private readonly chunks: readonly PreparedChunk[];
  private chunk = 0;
  private k = -1; // current line within the current chunk

  /** `chunks` cover the segment's bytes in order, without gaps. */
  constructor(bytes: Uint8Array, chunks: readonly PreparedChunk[]) {
    let at = 0;
    for (const c of chunks) {
      if (c.start !== at) throw new RangeError(`prepared chunks must cover the segment in order: one starts at ${c.start}, expected ${at}`);
      at = c.end;
    }
    if (at !== bytes.length) throw new RangeError(`prepared chunks end at ${at}, the segment at ${bytes.length}`);
    this.bytes = bytes;
    this.chunks = chunks;
  }

  /** Moves to the next line and returns its end (the newline's offset in the segment), or -1 after the last. */
  nextLine(): number {
    let c = this.chunks[this.chunk];
    this.k++;
    while (c && this.k >= c.ends.length) {
      c = this.chunks[++this.chunk];
      this.k = 0;
    }
    return c ? c.start + c.ends[this.k]! : -1;
  }

  /** The current line's leaf hash (hex), as leafHexOfBytes gives it. */
  leaf(): string {
    return this.chunks[this.chunk]!.leaves.slice(64 * this.k, 64 * this.k + 64);
  }

  /** The current line's head, as scanRecordHead gives it. */
  head(start: number, end: number, expectedPrev: string): RecordHead | undefined {
    const c = this.chunks[this.chunk]!;
    const k = this.k;
    const s = c.status[k];
    if (s === HEAD_REFUSED) return undefined;
    if (s !== HEAD_COMPACT) return scanRecordHead(this.bytes, start, end, expectedPrev);
    const f = c.flags[k]!;
    let prev: string;
    if (f & PREV_EMPTY) prev = '';
    else if (f & PREV_PREVIOUS_LEAF) prev = c.leaves.slice(64 * (k - 1), 64 * k);
    else prev = Buffer.from(c.prevs.buffer, c.prevs.byteOffset + 32 * k, 32).toString('hex');
    return {
      v: 1,
      seq: c.seqs[k],
      prev,
      type: KNOWN_TYPES[c.types[k]!],
      unsigned: f & FLAG_UNSIGNED ? true : undefined,
      timeIsString: (f & FLAG_TIME_STRING) !== 0,
      sessionIsString: (f & FLAG_SESSION_STRING) !== 0,
    };
  }
}
