// Verifies a signed audit log directory (layout in log-layout.ts): recomputes
// the hash chain and the Merkle tree of every chain, checks every checkpoint's
// signature against the trusted keys and its root against the records, and
// reports the first bad record with the reason.
//
// What it proves: every record up to the newest signed checkpoint (or a later
// trusted checkpoint) is exactly what was signed, in order, with nothing
// removed, added, duplicated or moved. What it cannot prove on its own: that
// records after the newest checkpoint were not cut off — for that, pass a
// checkpoint obtained elsewhere (the SIEM, an earlier export) as trustedCheckpoint.
//
// AuditVerifier is incremental (checkpoints first, then segments in order) and
// can be cloned between segments, so a collector can verify as data arrives.

import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../../common/canonical-json.ts';
import { AUDIT_RECORD_VERSION, type AuditChainStart, type AuditKeyRotation, type AuditRecord, type AuditSealedTail } from '../../common/audit-record.ts';
import { MerkleFrontier } from '../../common/merkle.ts';
import { encodeBase64, keyIdHex, openNote, parseCheckpoint, parseNote, type Checkpoint, type NoteSignature } from '../../common/signed-note.ts';
import { noteVerifier, type ParsedNoteVerifier } from '../keychain/note-key.ts';
import { hexNodeHasher, leafHexOfBytes, sha256Hex, toHex } from './hashing.ts';
import { headOf, scanRecordHead, type RecordHead } from './record-head.ts';
import { CHECKPOINTS_FILE, KEYS_DIR, LOCK_FILE, OUTBOX_DIR, SEALED_DIR, parseCheckpointLine, parseSegmentFileName, segmentRecordBytes, sortSegments, type CheckpointLine, type SegmentName } from './log-layout.ts';

export interface AuditVerifyOptions {
  /** Verifier keys ("name+id+base64") trusted to sign checkpoints. */
  readonly trustedKeys?: readonly string[];
  /** The same, under the name the CLI and the issue use; both lists are trusted. */
  readonly pubkeys?: readonly string[];
  /** A signed checkpoint obtained out of band: the log must contain the tree it signs. */
  readonly trustedCheckpoint?: string;
  /** Accept chains that managed policy allowed to run unsigned (integrity only, no authenticity). */
  readonly allowUnsigned?: boolean;
  /** Also require every line to be in RFC 8785 canonical form. */
  readonly strict?: boolean;
  /**
   * JSON.parse every record whole instead of scanning most of them for the
   * members checked (record-head.ts). Same verdicts and messages, slower: the
   * reference the fast path is tested against.
   */
  readonly parseWholeRecords?: boolean;
}

export interface AuditProblem {
  readonly file: string;
  /** 1-based line in `file`. */
  readonly line?: number;
  readonly seq?: number;
  readonly reason: string;
}

export interface AuditChainSummary {
  readonly chain: number;
  readonly origin: string;
  readonly firstSeq: number;
  readonly records: number;
  readonly key: string | null;
  /** Size of the largest signed checkpoint matched against the records. */
  readonly signedSize: number;
}

export interface AuditVerifyReport {
  readonly ok: boolean;
  readonly records: number;
  readonly checkpoints: number;
  readonly chains: readonly AuditChainSummary[];
  readonly problem?: AuditProblem;
  readonly warnings: readonly string[];
  /** Keys whose signatures were relied on (trusted, or learned through a rotation). */
  readonly keysUsed: readonly string[];
}

export interface AuditFile {
  /** Path relative to the log directory, '/'-separated. */
  readonly name: string;
  readonly bytes: Buffer;
}

/** Thrown internally at the first problem (not an Error: no stack to capture, it never escapes). */
class VerifyFailure {
  readonly problem: AuditProblem;
  constructor(problem: AuditProblem) {
    this.problem = problem;
  }
}

interface StoredCheckpoint {
  readonly index: number; // line index in checkpoints.jsonl
  readonly line: CheckpointLine;
  readonly body: Checkpoint;
  readonly rootHex: string;
  readonly text: string; // the signed text
  readonly signatures: readonly NoteSignature[];
  /** Indices of signatures already verified with an initially trusted key. */
  readonly verified: ReadonlySet<number>;
  readonly trustedInput?: boolean; // the out-of-band trusted checkpoint
}

interface ChainState {
  chain: number;
  origin: string;
  firstSeq: number;
  key: string | null;
  frontier: MerkleFrontier<string>;
  signedSize: number;
  /** Keys announced by rotation records and not yet endorsed: keyRef → [verifier, previous keyRef]. */
  announced: Map<string, { verifier: ParsedNoteVerifier; previous: string }>;
}

/** Records whose `detail` the verifier reads: always parsed whole. */
const DETAILED_TYPES: ReadonlySet<string> = new Set(['log.start', 'log.key-rotation', 'log.sealed-tail']);

const keyRef = (name: string, keyId: number) => `${name}+${keyIdHex(keyId)}`;

export class AuditVerifier {
  private readonly opts: AuditVerifyOptions;
  private trusted = new Map<string, ParsedNoteVerifier>();
  private retired = new Set<string>();
  private used = new Set<string>();
  private byOrigin = new Map<string, Map<number, StoredCheckpoint[]>>();
  /** The largest checkpoint size read so far per origin (checkpoints.jsonl only). */
  private largestCheckpoint = new Map<string, number>();
  private checkpointCount = 0;
  private matched = new Set<StoredCheckpoint>();
  private chains: ChainState[] = [];
  private nextSeq = 0;
  private prev = '';
  private records = 0;
  private seals: Array<{ detail: AuditSealedTail; seq: number }> = [];
  private warnings: string[] = [];
  private lastSegment: SegmentName | undefined;
  /** Keys that rotation records in the segments could make trusted; undefined = not known up front. */
  private candidates: Set<string> | undefined;

  constructor(opts: AuditVerifyOptions) {
    this.opts = opts;
    for (const k of [...(opts.trustedKeys ?? []), ...(opts.pubkeys ?? [])]) {
      let v: ParsedNoteVerifier;
      try {
        v = noteVerifier(k);
      } catch (e) {
        throw new Error(`trusted key ${JSON.stringify(k.slice(0, 40))} is not a valid verifier key: ${(e as Error).message}`, { cause: e });
      }
      this.trusted.set(keyRef(v.name, v.keyId), v);
    }
  }

  /** A copy that can go on verifying independently (resume after a verified prefix). */
  clone(): AuditVerifier {
    const c = Object.create(AuditVerifier.prototype) as AuditVerifier;
    Object.assign(c, this);
    c.trusted = new Map(this.trusted);
    c.retired = new Set(this.retired);
    c.used = new Set(this.used);
    c.matched = new Set(this.matched);
    c.byOrigin = new Map([...this.byOrigin].map(([origin, sizes]) => [origin, new Map([...sizes].map(([n, cps]) => [n, [...cps]]))]));
    c.largestCheckpoint = new Map(this.largestCheckpoint);
    c.chains = this.chains.map((ch) => ({ ...ch, frontier: ch.frontier.clone(), announced: new Map(ch.announced) }));
    c.seals = [...this.seals];
    c.warnings = [...this.warnings];
    return c;
  }

  /**
   * Phase 1: checkpoints.jsonl (undefined if there is none). `firstLine` lets a
   * clone continue after lines it has already taken (bytes then start at that line).
   */
  loadCheckpoints(bytes: Buffer | undefined, firstLine = 0): void {
    if (!bytes || bytes.length === 0) return;
    if (bytes[bytes.length - 1] !== 10) {
      throw new VerifyFailure({ file: CHECKPOINTS_FILE, line: firstLine + countLines(bytes), reason: 'the last checkpoint line is incomplete (a crash the writer has not yet sealed, or truncation)' });
    }
    let start = 0;
    for (let index = firstLine; start < bytes.length; index++) {
      const nl = bytes.indexOf(10, start);
      this.addCheckpointLine(index, bytes.toString('utf8', start, nl));
      start = nl + 1;
    }
  }

  /** One line of checkpoints.jsonl (index is 0-based). */
  addCheckpointLine(index: number, text: string): void {
    const fail = (reason: string): never => {
      throw new VerifyFailure({ file: CHECKPOINTS_FILE, line: index + 1, reason });
    };
    let line: CheckpointLine;
    let parsedText: string;
    let signatures: readonly NoteSignature[];
    let body: Checkpoint;
    try {
      line = parseCheckpointLine(text);
      const note = line.unsigned ? { text: line.note, signatures: [] } : parseNote(line.note);
      parsedText = note.text;
      signatures = note.signatures;
      body = parseCheckpoint(note.text);
    } catch (e) {
      return fail(`not a valid checkpoint: ${(e as Error).message}`);
    }
    let frontier: MerkleFrontier<string>;
    try {
      frontier = new MerkleFrontier(hexNodeHasher, body.size, line.frontier);
    } catch (e) {
      return fail(`checkpoint frontier: ${(e as Error).message}`);
    }
    const rootHex = toHex(body.root);
    if (frontier.root() !== rootHex) fail('the stored frontier does not hash to the signed root');
    // Signatures by keys trusted from the start are checked now; rotated-in keys when the walk reaches them.
    const enc = new TextEncoder().encode(parsedText);
    const verified = new Set<number>();
    signatures.forEach((s, i) => {
      const v = this.trusted.get(keyRef(s.name, s.keyId));
      if (!v) return;
      if (!v.verify(enc, s.signature)) fail(`the signature by ${keyRef(s.name, s.keyId)} does not verify: the checkpoint was altered or forged`);
      verified.add(i);
    });
    if (!line.unsigned && this.candidates && verified.size === 0 && !signatures.some((s) => this.candidates!.has(keyRef(s.name, s.keyId)))) {
      fail(notTrustedReason(`checkpoint ${index + 1} in ${CHECKPOINTS_FILE}`, body.size, signatures, false));
    }
    const cp: StoredCheckpoint = { index, line, body, rootHex, text: parsedText, signatures, verified };
    // A log keeps a line for every checkpoint of its life (one per 5 idle minutes): constant work per line.
    const largest = this.largestCheckpoint.get(body.origin) ?? -1;
    if (body.size < largest) fail(`checkpoint for ${body.origin} at size ${body.size} comes after one at size ${largest}: checkpoints were reordered`);
    this.largestCheckpoint.set(body.origin, body.size);
    this.storeCheckpoint(cp);
    this.checkpointCount++;
  }

  /**
   * Optional, before loadCheckpoints: scans the segments for key rotation
   * records, so a checkpoint that no trusted or rotated-in key signed can be
   * refused before the walk. (A streaming caller that cannot see the segments
   * yet skips this; such checkpoints are then refused when the walk reaches them.)
   */
  scanForRotations(segments: readonly Buffer[]): void {
    this.candidates = new Set<string>();
    for (const bytes of segments) this.scanSegmentForRotations(bytes);
  }

  /** scanForRotations one segment at a time (a caller that holds one in memory at a time): every segment, in any order, before loadCheckpoints. */
  scanSegmentForRotations(bytes: Buffer): void {
    const candidates = (this.candidates ??= new Set<string>());
    const marker = Buffer.from('"type":"log.key-rotation"');
    for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1)) {
      const start = bytes.lastIndexOf(10, at) + 1;
      const end = bytes.indexOf(10, at);
      try {
        const next = (JSON.parse(bytes.toString('utf8', start, end < 0 ? bytes.length : end)) as AuditRecord).detail?.next;
        if (typeof next === 'string') {
          const v = noteVerifier(next);
          candidates.add(keyRef(v.name, v.keyId));
        }
      } catch {
        // a damaged record: the walk reports it
      }
    }
  }

  /** The out-of-band checkpoint from the options, if any (before or after loadCheckpoints). */
  loadTrustedCheckpoint(): void {
    if (this.opts.trustedCheckpoint !== undefined) this.addTrustedCheckpoint(this.opts.trustedCheckpoint);
  }

  private addTrustedCheckpoint(note: string): void {
    const fail = (reason: string): never => {
      throw new VerifyFailure({ file: '--trusted-checkpoint', reason });
    };
    let opened;
    let body: Checkpoint;
    try {
      opened = openNote(note, [...this.trusted.values()]);
      body = parseCheckpoint(opened.text);
    } catch (e) {
      return fail(`the trusted checkpoint does not verify with the trusted keys: ${(e as Error).message}`);
    }
    const cp: StoredCheckpoint = { index: -1, line: { frontier: [], note }, body, rootHex: toHex(body.root), text: opened.text, signatures: parseNote(note).signatures, verified: new Set(), trustedInput: true };
    this.storeCheckpoint(cp);
  }

  private storeCheckpoint(cp: StoredCheckpoint): void {
    let sizes = this.byOrigin.get(cp.body.origin);
    if (!sizes) this.byOrigin.set(cp.body.origin, (sizes = new Map()));
    const same = sizes.get(cp.body.size);
    if (same) same.push(cp);
    else sizes.set(cp.body.size, [cp]);
  }

  /** Phase 2: one segment file, in (chain, first seq) order. */
  addSegment(seg: SegmentName, bytes: Buffer): void {
    const fail = (reason: string, line?: number, seq?: number): never => {
      throw new VerifyFailure({ file: seg.file, ...(line !== undefined ? { line } : {}), ...(seq !== undefined ? { seq } : {}), reason });
    };
    const current = this.chains.at(-1);
    if (this.lastSegment && (seg.chain < this.lastSegment.chain || (seg.chain === this.lastSegment.chain && seg.firstSeq <= this.lastSegment.firstSeq))) {
      fail(`segment out of order after ${this.lastSegment.file}`);
    }
    this.lastSegment = seg;
    if (seg.firstSeq !== this.nextSeq) {
      fail(seg.firstSeq > this.nextSeq ? `records ${this.nextSeq}..${seg.firstSeq - 1} are missing (a segment was deleted)` : `segment starts at seq ${seg.firstSeq}, which was already seen (duplicated or swapped segment)`);
    }
    const newChain = current === undefined || seg.chain !== current.chain;
    if (newChain && seg.chain !== (current?.chain ?? 0) + 1) fail(`chain ${seg.chain} follows chain ${current?.chain ?? 'none'}: a chain is missing`);
    if (bytes.length === 0) fail('empty segment');
    if (bytes[bytes.length - 1] !== 10) fail('the last line is incomplete (a crash the writer has not yet sealed, or truncation)', countLines(bytes));

    const strict = this.opts.strict === true;
    const whole = strict || this.opts.parseWholeRecords === true;
    // Checkpoints by size for the chain being read (byOrigin does not change while a segment is read).
    let sizesOf: ChainState | undefined;
    let sizes: Map<number, StoredCheckpoint[]> | undefined;
    let start = 0;
    let lineNo = 0;
    while (start < bytes.length) {
      const nl = bytes.indexOf(10, start);
      const lineStart = start;
      start = nl + 1;
      lineNo++;
      const seq = this.nextSeq;
      const first = lineNo === 1 && newChain;
      // Most records: only the members checked here are read (record-head.ts),
      // exactly as JSON.parse would give them; the rest of the line is covered
      // by its hash. The whole record is parsed when its detail matters, in
      // strict mode, and whenever the scan cannot vouch for the line.
      let h: RecordHead | undefined = whole || first ? undefined : scanRecordHead(bytes, lineStart, nl, this.prev);
      let r: AuditRecord | undefined;
      let text = '';
      if (h === undefined || DETAILED_TYPES.has(h.type as string)) {
        text = bytes.toString('utf8', lineStart, nl);
        let parsed: AuditRecord;
        try {
          parsed = JSON.parse(text) as AuditRecord;
        } catch {
          return fail('not valid JSON (the record was altered)', lineNo, seq);
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail('not a JSON object', lineNo, seq);
        r = parsed;
        h = headOf(r as unknown as Record<string, unknown>);
      }
      if (h.v !== AUDIT_RECORD_VERSION || typeof h.type !== 'string' || !h.timeIsString || !h.sessionIsString) fail('not an audit record (v, type, time or session missing or wrong)', lineNo, seq);
      if (h.seq !== seq) {
        fail(typeof h.seq !== 'number' ? 'seq is missing' : h.seq < seq ? `seq ${h.seq} where ${seq} was expected: a record was duplicated or moved` : `seq ${h.seq} where ${seq} was expected: records were deleted`, lineNo, seq);
      }
      if (h.prev !== this.prev) fail(`prev does not match the hash of record ${seq - 1}: record ${seq - 1} was altered, or records were inserted, deleted or moved here`, lineNo, seq);
      if (strict && canonicalJson(r) !== text) fail('not in RFC 8785 canonical form', lineNo, seq);

      let chain = this.chains.at(-1);
      if (first) chain = this.beginChain(seg, r!, (reason) => fail(reason, lineNo, seq));
      else if (h.type === 'log.start') fail('a log.start record in the middle of a chain', lineNo, seq);
      if ((h.unsigned === true) !== (chain!.key === null)) fail(chain!.key === null ? 'a record without unsigned: true in an unsigned chain' : 'a record marked unsigned in a signed chain', lineNo, seq);

      const leaf = leafHexOfBytes(bytes.subarray(lineStart, nl));
      chain!.frontier.append(leaf);
      this.prev = leaf;
      this.nextSeq++;
      this.records++;

      // Both are DETAILED_TYPES: r is the whole record.
      if (h.type === 'log.key-rotation') this.announceKey(chain!, r!, (reason) => fail(reason, lineNo, seq));
      else if (h.type === 'log.sealed-tail') this.seals.push({ detail: r!.detail as unknown as AuditSealedTail, seq });

      if (sizesOf !== chain) {
        sizesOf = chain;
        sizes = this.byOrigin.get(chain!.origin);
      }
      const cps = sizes?.get(chain!.frontier.size);
      if (cps) for (const cp of cps) this.matchCheckpoint(chain!, cp, (reason) => fail(reason, lineNo, seq));
    }
  }

  private beginChain(seg: SegmentName, r: AuditRecord, fail: (reason: string) => never): ChainState {
    if (r.type !== 'log.start') fail(`chain ${seg.chain} does not begin with a log.start record`);
    const d = (r.detail ?? {}) as Partial<AuditChainStart>;
    if (typeof d.origin !== 'string' || d.chain !== seg.chain || !(typeof d.key === 'string' || d.key === null)) fail('malformed log.start record');
    if (this.chains.some((c) => c.origin === d.origin)) fail(`origin ${d.origin} is used by an earlier chain`);
    if (d.key === null && !this.opts.allowUnsigned) {
      fail(`chain ${seg.chain} is UNSIGNED (managed policy allowed the log to run without a key): its integrity can be checked but not its authenticity; pass --allow-unsigned to accept that`);
    }
    if (d.key !== null) {
      try {
        noteVerifier(d.key!);
      } catch (e) {
        fail(`log.start names an invalid key: ${(e as Error).message}`);
      }
    }
    const before = this.chains.at(-1);
    if (before) {
      const p = d.previous;
      if (!p) fail(`chain ${seg.chain} does not name the chain before it`);
      if (p!.origin !== before.origin || p!.size !== before.frontier.size || p!.root !== encodeBase64(Buffer.from(before.frontier.root(), 'hex'))) {
        fail(`chain ${seg.chain} names the previous chain as ${p!.origin} with ${p!.size} records, but the log holds ${before.origin} with ${before.frontier.size} records and a different root`);
      }
      const last = this.lastCheckpointOf(before.origin);
      if (last && (!p!.checkpoint || p!.checkpoint.size !== last.body.size || p!.checkpoint.root !== encodeBase64(last.body.root) || p!.checkpoint.noteSha256 !== sha256Hex(last.line.note))) {
        fail(`chain ${seg.chain} does not name the last checkpoint of chain ${before.chain}`);
      }
      // Its records after its last checkpoint are vouched for by this start record, which this chain's checkpoints sign.
      before.signedSize = before.frontier.size;
    } else if (d.previous) {
      this.warnings.push(`chain ${seg.chain} follows a chain that is not in this directory (${d.previous.origin}, ${d.previous.size} records)`);
    }
    const chain: ChainState = { chain: seg.chain, origin: d.origin!, firstSeq: r.seq, key: d.key!, frontier: new MerkleFrontier(hexNodeHasher), signedSize: 0, announced: new Map() };
    this.chains.push(chain);
    return chain;
  }

  private lastCheckpointOf(origin: string): StoredCheckpoint | undefined {
    const sizes = this.byOrigin.get(origin);
    if (!sizes) return undefined;
    const all = [...sizes.values()].flat().filter((c) => !c.trustedInput);
    return all.sort((a, b) => a.index - b.index).at(-1);
  }

  private announceKey(chain: ChainState, r: AuditRecord, fail: (reason: string) => never): void {
    const d = (r.detail ?? {}) as Partial<AuditKeyRotation>;
    if (typeof d.previous !== 'string' || typeof d.next !== 'string') fail('malformed log.key-rotation record');
    let next: ParsedNoteVerifier;
    let prev: ParsedNoteVerifier;
    try {
      next = noteVerifier(d.next!);
      prev = noteVerifier(d.previous!);
    } catch (e) {
      return fail(`log.key-rotation names an invalid key: ${(e as Error).message}`);
    }
    chain.announced.set(keyRef(next.name, next.keyId), { verifier: next, previous: keyRef(prev.name, prev.keyId) });
  }

  private matchCheckpoint(chain: ChainState, cp: StoredCheckpoint, fail: (reason: string) => never): void {
    const where = cp.trustedInput ? 'the trusted checkpoint' : `checkpoint ${cp.index + 1} in ${CHECKPOINTS_FILE}`;
    if (chain.frontier.root() !== cp.rootHex) {
      fail(`the records up to here do not hash to the root signed by ${where} (size ${cp.body.size}): a record in this chain was altered, added or removed`);
    }
    if (!cp.trustedInput && cp.line.frontier.some((h, i) => h !== chain.frontier.hashes[i])) fail(`${where} stores a frontier that does not match the records`);
    this.matched.add(cp);
    if (cp.line.unsigned) {
      if (chain.key !== null) fail(`${where} is unsigned but chain ${chain.chain} is signed`);
      chain.signedSize = Math.max(chain.signedSize, cp.body.size);
      return;
    }
    const enc = new TextEncoder().encode(cp.text);
    let trustedOk = false;
    const endorsed: string[] = [];
    for (const [i, s] of cp.signatures.entries()) {
      const ref = keyRef(s.name, s.keyId);
      const t = this.trusted.get(ref);
      if (t) {
        if (!cp.verified.has(i) && !t.verify(enc, s.signature)) fail(`${where}: the signature by ${ref} does not verify`);
        if (this.retired.has(ref)) continue;
        trustedOk = true;
        this.used.add(t.verifierKey);
        continue;
      }
      const a = chain.announced.get(ref);
      if (a) {
        if (!a.verifier.verify(enc, s.signature)) fail(`${where}: the signature by the rotated-in key ${ref} does not verify`);
        endorsed.push(ref);
      }
    }
    if (!trustedOk) fail(notTrustedReason(where, cp.body.size, cp.signatures, cp.signatures.some((s) => this.retired.has(keyRef(s.name, s.keyId)))));
    for (const ref of endorsed) {
      const a = chain.announced.get(ref)!;
      if (!this.trusted.has(a.previous)) continue; // rotation must be endorsed by the key it replaces
      this.trusted.set(ref, a.verifier);
      this.used.add(a.verifier.verifierKey);
      this.retired.add(a.previous);
      chain.announced.delete(ref);
    }
    chain.signedSize = Math.max(chain.signedSize, cp.body.size);
  }

  /** Phase 3: cross-file checks; `others` are the files that are neither segments nor checkpoints.jsonl. */
  finish(others: readonly AuditFile[] = []): AuditVerifyReport {
    const fail = (file: string, reason: string): never => {
      throw new VerifyFailure({ file, reason });
    };
    if (this.chains.length === 0) fail('(directory)', 'no audit records (no seg-*.jsonl files)');
    for (const [origin, sizes] of this.byOrigin) {
      const chain = this.chains.find((c) => c.origin === origin);
      for (const [size, cps] of sizes) {
        for (const cp of cps) {
          if (this.matched.has(cp)) continue;
          const where = cp.trustedInput ? '--trusted-checkpoint' : CHECKPOINTS_FILE;
          const line = cp.trustedInput ? undefined : cp.index + 1;
          if (!chain) throw new VerifyFailure({ file: where, ...(line ? { line } : {}), reason: `a checkpoint for ${origin}, which no chain in this log has (a chain was removed, or the checkpoint belongs to another log)` });
          throw new VerifyFailure({
            file: where,
            ...(line ? { line } : {}),
            reason: `truncated: a signed checkpoint covers ${size} records of chain ${chain.chain} but the log holds only ${chain.frontier.size}; records were removed from the end`,
          });
        }
      }
    }
    const last = this.chains.at(-1)!;
    if (last.signedSize < last.frontier.size) {
      const from = last.firstSeq + last.signedSize;
      const to = last.firstSeq + last.frontier.size - 1;
      throw new VerifyFailure({
        file: this.lastSegment!.file,
        seq: from,
        reason: `records ${from}..${to} come after the last signed checkpoint, so nothing vouches for them (the log is still being written, or was cut off after a crash); verify again after Tether writes its next checkpoint`,
      });
    }
    const byName = new Map(others.map((f) => [f.name, f]));
    for (const { detail, seq } of this.seals) {
      const copy = typeof detail?.copy === 'string' ? byName.get(detail.copy) : undefined;
      if (!copy) this.warnings.push(`the bytes sealed by record ${seq} (${detail?.copy}) are not in the directory`);
      else if (sha256Hex(copy.bytes) !== detail.sha256) fail(detail.copy, `does not hold the bytes record ${seq} says were sealed`);
      if (copy) byName.delete(detail.copy);
    }
    const knownKeys = new Set([...this.trusted.values()].map((v) => v.verifierKey));
    for (const [name, f] of byName) {
      if (name.startsWith(`${OUTBOX_DIR}/`)) continue; // shipping state, not part of the log
      if (name.startsWith(`${KEYS_DIR}/`) && name.endsWith('.pub')) {
        const text = f.bytes.toString('utf8').slice(0, -1);
        try {
          if (noteVerifier(text).verifierKey + '\n' !== f.bytes.toString('utf8')) throw new Error('not exactly one key line');
        } catch (e) {
          fail(name, `not a valid verifier key file: ${(e as Error).message}`);
        }
        if (!knownKeys.has(text)) this.warnings.push(`${name} holds a key that is not trusted here (${text}); it was not relied on`);
      } else if (name === LOCK_FILE) {
        this.warnings.push('the log is open for writing (LOCK present): records may be appended while verifying');
      } else if (!name.startsWith(`${SEALED_DIR}/`)) {
        this.warnings.push(`unexpected file ${name}`);
      } else {
        this.warnings.push(`${name} is not referenced by any sealed-tail record`);
      }
    }
    return this.report(undefined);
  }

  report(problem: AuditProblem | undefined): AuditVerifyReport {
    return {
      ok: problem === undefined,
      records: this.records,
      checkpoints: this.checkpointCount,
      chains: this.chains.map((c) => ({ chain: c.chain, origin: c.origin, firstSeq: c.firstSeq, records: c.frontier.size, key: c.key, signedSize: c.signedSize })),
      ...(problem ? { problem } : {}),
      warnings: [...this.warnings],
      keysUsed: [...this.used],
    };
  }
}

/**
 * Verifies a log given as files (names relative to the log directory).
 * Never throws for a bad log: the report says what is wrong.
 */
export function verifyAuditFiles(files: readonly AuditFile[], opts: AuditVerifyOptions): AuditVerifyReport {
  const v = new AuditVerifier(opts);
  try {
    return runVerifier(v, files);
  } catch (e) {
    if (e instanceof VerifyFailure) return v.report(e.problem);
    throw e;
  }
}

/** Runs all three phases; throws VerifyFailure at the first problem. */
function runVerifier(v: AuditVerifier, files: readonly AuditFile[]): AuditVerifyReport {
  const { checkpoints, segments, others } = classify(files);
  v.loadTrustedCheckpoint();
  v.scanForRotations(segments.map((s) => s.bytes));
  v.loadCheckpoints(checkpoints?.bytes);
  for (const s of segments) v.addSegment(s.name, s.bytes);
  return v.finish(others);
}

export function classify(files: readonly AuditFile[]): { checkpoints: AuditFile | undefined; segments: Array<{ name: SegmentName; bytes: Buffer }>; others: AuditFile[] } {
  const byName = new Map(files.map((f) => [f.name, f]));
  const names = classifyNames(files.map((f) => f.name));
  const segments = names.segments.map((name, i) => ({ name, bytes: segmentRecordBytes(byName.get(name.file)!.bytes, i === names.segments.length - 1) }));
  return { checkpoints: names.checkpoints !== undefined ? byName.get(names.checkpoints) : undefined, segments, others: names.others.map((n) => byName.get(n)!) };
}

/** Which of a log's files (names relative to its directory) are segments, in order, which is checkpoints.jsonl, and the rest. */
export function classifyNames(names: readonly string[]): { checkpoints: string | undefined; segments: SegmentName[]; others: string[] } {
  let checkpoints: string | undefined;
  const segments: SegmentName[] = [];
  const others: string[] = [];
  for (const name of names) {
    const seg = parseSegmentFileName(name);
    if (seg) segments.push(seg);
    else if (name === CHECKPOINTS_FILE) checkpoints = name;
    else others.push(name);
  }
  return { checkpoints, segments: sortSegments(segments), others };
}

/**
 * Runs `steps` on a verifier and turns the first problem into a report: for
 * callers that feed an AuditVerifier themselves (streaming collectors, and
 * tests that resume a cloned verifier after a prefix they already verified).
 */
export function runVerifierSteps(v: AuditVerifier, steps: (v: AuditVerifier) => AuditVerifyReport): AuditVerifyReport {
  try {
    return steps(v);
  } catch (e) {
    if (e instanceof VerifyFailure) return v.report(e.problem);
    throw e;
  }
}

/** The names of a log directory's files, relative to it, with '/' between folders. */
export async function auditDirNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    out.push(full.slice(dir.length).replace(/^[/\\]+/, '').split(/[/\\]/).join('/'));
  }
  return out;
}

export async function readAuditDir(dir: string): Promise<AuditFile[]> {
  return Promise.all((await auditDirNames(dir)).map(async (name) => ({ name, bytes: await readFile(join(dir, name)) })));
}

/**
 * Verifies a log directory holding one segment in memory at a time (a log
 * grows for years; the segments are read twice: first for key rotations,
 * then for the walk). Same phases and verdicts as verifyAuditFiles.
 */
export async function verifyAuditDir(dir: string, opts: AuditVerifyOptions): Promise<AuditVerifyReport> {
  const unreadable = (e: unknown): AuditVerifyReport => ({ ok: false, records: 0, checkpoints: 0, chains: [], problem: { file: dir, reason: `cannot read the log directory: ${(e as Error).message}` }, warnings: [], keysUsed: [] });
  let names: ReturnType<typeof classifyNames>;
  try {
    names = classifyNames(await auditDirNames(dir));
  } catch (e) {
    return unreadable(e);
  }
  const read = (name: string) => readFile(join(dir, name));
  const segment = async (i: number) => segmentRecordBytes(await read(names.segments[i]!.file), i === names.segments.length - 1);
  const v = new AuditVerifier(opts);
  try {
    v.loadTrustedCheckpoint();
    v.scanForRotations([]);
    for (let i = 0; i < names.segments.length; i++) v.scanSegmentForRotations(await segment(i));
    v.loadCheckpoints(names.checkpoints !== undefined ? await read(names.checkpoints) : undefined);
    for (let i = 0; i < names.segments.length; i++) v.addSegment(names.segments[i]!, await segment(i));
    return v.finish(await Promise.all(names.others.map(async (name) => ({ name, bytes: await read(name) }))));
  } catch (e) {
    if (e instanceof VerifyFailure) return v.report(e.problem);
    if (typeof (e as NodeJS.ErrnoException).code === 'string') return unreadable(e);
    throw e;
  }
}

function notTrustedReason(where: string, size: number, signatures: readonly NoteSignature[], retired: boolean): string {
  const by = signatures.map((s) => keyRef(s.name, s.keyId)).join(', ');
  return `${where} (size ${size}) is not signed by a trusted key (signed by ${by}${retired ? '; a key that was rotated out no longer counts' : ''}); if you trust that key, pass its public key with --pubkey`;
}

function countLines(bytes: Buffer): number {
  let n = 1;
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) n++;
  return n;
}
