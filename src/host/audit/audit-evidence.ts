// Proofs about a signed audit log that travel without the log itself:
//
// - an inclusion proof for one record (RFC 6962 audit path to a signed checkpoint);
// - an evidence bundle for a time range: the records, a compact range proof
//   tying them to a signed checkpoint of their chain, the public keys, the
//   policies in force with their SHA-256, and a manifest — one JSON file that
//   `tether audit verify` checks on another machine.
//
// What a bundle proves: each record in it is exactly the record at that
// position of a tree signed by a trusted key, with nothing left out in
// between. What it does not prove: the policy texts are authentic only as far
// as records in the bundle name their hashes (reported per policy).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { canonicalJson } from '../../common/canonical-json.ts';
import type { AuditChainStart, AuditRecord } from '../../common/audit-record.ts';
import { CompactRange, MerkleFrontier, equalHashes, inclusionProof, rootFromRange, subtreeHashFromRange, verifyInclusion } from '../../common/merkle.ts';
import { decodeBase64, encodeBase64, openNote, parseCheckpoint, parseNote, type Checkpoint } from '../../common/signed-note.ts';
import { noteVerifier } from '../keychain/note-key.ts';
import { auditDirNames, classifyNames } from './audit-verifier.ts';
import { fromHex, leafHashOfBytes, merkleHasher, sha256Hex, toHex } from './hashing.ts';
import { KEYS_DIR, parseCheckpointLine, segmentRecordBytes, type CheckpointLine, type SegmentName } from './log-layout.ts';

export const INCLUSION_PROOF_FORMAT = 'tether-audit-inclusion/1';
export const EVIDENCE_FORMAT = 'tether-audit-evidence/1';

/** A chain as its first record names it. */
interface ChainStartInfo {
  readonly chain: number;
  readonly origin: string;
  readonly firstSeq: number;
}

interface CheckpointEntry {
  readonly line: CheckpointLine;
  readonly body: Checkpoint;
}

interface LogNames {
  readonly segments: readonly SegmentName[];
  readonly checkpoints: string | undefined;
  readonly others: readonly string[];
}

async function logNames(dir: string): Promise<LogNames> {
  return classifyNames(await auditDirNames(dir));
}

/**
 * The newest signed checkpoint of each chain (by origin), reading the file a
 * line at a time: it gains a line at every checkpoint for as long as the log
 * lives. A chain's checkpoints only grow, so the newest one covers every
 * record any of them does.
 */
async function newestCheckpoints(dir: string, names: LogNames): Promise<Map<string, CheckpointEntry>> {
  const out = new Map<string, CheckpointEntry>();
  if (!names.checkpoints) return out;
  const lines = createInterface({ input: createReadStream(join(dir, names.checkpoints)), crlfDelay: Infinity });
  for await (const text of lines) {
    if (!text) continue;
    const line = parseCheckpointLine(text);
    if (line.unsigned) continue;
    const body = parseCheckpoint(parseNote(line.note).text);
    out.set(body.origin, { line, body });
  }
  return out;
}

/**
 * Every complete record of the log, in order, with one segment in memory at a
 * time (a log grows for years): `chain` at the first record of each chain,
 * then `record` with the record's bytes and its index in the chain. Not a
 * verifier: what it reads is checked against a signed root by the caller.
 */
async function walkRecords(dir: string, names: LogNames, visit: { chain(c: ChainStartInfo): void; record(bytes: Buffer, index: number): void }): Promise<void> {
  let current: number | undefined;
  let index = 0;
  for (let i = 0; i < names.segments.length; i++) {
    const seg = names.segments[i]!;
    const bytes = segmentRecordBytes(await readFile(join(dir, seg.file)), i === names.segments.length - 1);
    for (let at = 0, nl = bytes.indexOf(10); nl >= 0; at = nl + 1, nl = bytes.indexOf(10, at)) {
      const line = bytes.subarray(at, nl);
      if (current !== seg.chain) {
        const first = JSON.parse(line.toString('utf8')) as AuditRecord;
        const d = first.detail as unknown as AuditChainStart;
        visit.chain({ chain: seg.chain, origin: d.origin, firstSeq: first.seq });
        current = seg.chain;
        index = 0;
      }
      visit.record(line, index++);
    }
  }
}

/** The root the log's leaves [0, size) of one chain hash to, taken as they stream past. */
class RootAt {
  private readonly frontier = new MerkleFrontier(merkleHasher);
  root: Uint8Array | undefined;
  readonly size: number;
  constructor(size: number) {
    this.size = size;
  }
  append(leaf: Uint8Array): void {
    if (this.frontier.size >= this.size) return;
    this.frontier.append(leaf);
    if (this.frontier.size === this.size) this.root = this.frontier.root();
  }
  /** The compact range [0, n) so far. */
  get left(): Uint8Array[] {
    return [...this.frontier.hashes];
  }
}

/** Math.min/max without spreading (a bundle can hold more records than a call has room for arguments). */
const least = (xs: readonly number[]) => xs.reduce((a, b) => (b < a ? b : a));
const greatest = (xs: readonly number[]) => xs.reduce((a, b) => (b > a ? b : a));

function mismatch(dir: string, size: number): Error {
  return new Error(`the log does not match its checkpoint at size ${size}; run \`tether audit verify ${dir}\``);
}

// --- inclusion proofs ---

export interface InclusionProof {
  readonly format: typeof INCLUSION_PROOF_FORMAT;
  readonly origin: string;
  readonly seq: number;
  readonly leafIndex: number;
  readonly treeSize: number;
  /** The record's canonical line, exactly as logged. */
  readonly record: string;
  /** Base64 audit path, leaf to root. */
  readonly proof: readonly string[];
  /** The signed checkpoint (C2SP note) of size treeSize that the proof leads to. */
  readonly checkpoint: string;
}

/** An inclusion proof for record `seq` against the newest checkpoint that covers it (reads the log one segment at a time). */
export async function proveRecord(dir: string, seq: number): Promise<InclusionProof> {
  const names = await logNames(dir);
  const checkpoints = await newestCheckpoints(dir, names);
  let target: { origin: string; leafIndex: number; cp: CheckpointEntry | undefined } | undefined;
  let record: string | undefined;
  let leaf: Uint8Array | undefined;
  let tree: RootAt | undefined;
  let left: Uint8Array[] = [];
  let right: CompactRange | undefined;
  let inChain = false;
  await walkRecords(dir, names, {
    chain(c) {
      inChain = false;
      if (record !== undefined || seq < c.firstSeq) return; // found already, or in an earlier chain: not in this log
      const leafIndex = seq - c.firstSeq;
      const newest = checkpoints.get(c.origin);
      const cp = newest && newest.body.size > leafIndex ? newest : undefined;
      target = { origin: c.origin, leafIndex, cp };
      tree = cp ? new RootAt(cp.body.size) : undefined;
      right = new CompactRange(merkleHasher, leafIndex + 1);
      inChain = true;
    },
    record(bytes, index) {
      if (!inChain || !target) return;
      if (index === target.leafIndex) {
        record = bytes.toString('utf8');
        leaf = leafHashOfBytes(bytes);
        left = tree?.left ?? [];
      } else if (index > target.leafIndex && target.cp && index < target.cp.body.size) {
        right!.append(leafHashOfBytes(bytes));
      }
      if (tree) tree.append(index === target.leafIndex ? leaf! : leafHashOfBytes(bytes));
    },
  });
  if (!target || record === undefined) throw new Error(`no record with seq ${seq} in ${dir}`);
  const { cp, leafIndex, origin } = target;
  if (!cp) throw new Error(`record ${seq} is not yet covered by a signed checkpoint; try again after Tether writes its next one`);
  const size = cp.body.size;
  if (!tree?.root || !equalHashes(tree.root, cp.body.root)) throw mismatch(dir, size);
  // Every node of the audit path is made of the compact ranges either side of the leaf.
  const proof = inclusionProof(leafIndex, size, subtreeHashFromRange(merkleHasher, size, leafIndex, [leaf!], left, right!.hashes));
  return { format: INCLUSION_PROOF_FORMAT, origin, seq, leafIndex, treeSize: size, record, proof: proof.map(encodeBase64), checkpoint: cp.line.note };
}

export interface ProofCheck {
  readonly ok: boolean;
  readonly reason: string;
}

export function verifyInclusionProof(p: InclusionProof, trustedKeys: readonly string[]): ProofCheck {
  try {
    if (p.format !== INCLUSION_PROOF_FORMAT) return { ok: false, reason: `not an inclusion proof (format ${String(p.format)})` };
    const opened = openNote(p.checkpoint, trustedKeys.map((k) => noteVerifier(k)));
    const cp = parseCheckpoint(opened.text);
    if (cp.origin !== p.origin || cp.size !== p.treeSize) return { ok: false, reason: 'the proof names a different log or tree size than its checkpoint' };
    const record = JSON.parse(p.record) as AuditRecord;
    if (record.seq !== p.seq) return { ok: false, reason: `the record has seq ${record.seq}, not ${p.seq}` };
    const leaf = leafHashOfBytes(Buffer.from(p.record));
    if (!verifyInclusion(merkleHasher, p.leafIndex, p.treeSize, leaf, p.proof.map(decodeBase64), cp.root)) {
      return { ok: false, reason: 'the audit path does not lead from the record to the signed root: the record or the proof was altered' };
    }
    return { ok: true, reason: `record ${p.seq} is leaf ${p.leafIndex} of ${p.origin} at size ${p.treeSize}, signed by ${opened.verified.map((s) => s.name).join(', ')}` };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

// --- evidence bundles ---

export interface PolicyText {
  readonly name: string;
  readonly text: string;
}

export interface EvidenceChain {
  readonly origin: string;
  readonly chain: number;
  /** Leaf index of the first record in the bundle. */
  readonly begin: number;
  readonly records: readonly string[];
  /** Hex compact ranges of [0, begin) and [begin + records.length, checkpoint size). */
  readonly left: readonly string[];
  readonly right: readonly string[];
  /** Signed checkpoint the records are proven against. */
  readonly checkpoint: string;
}

export interface EvidenceManifest {
  readonly created: string;
  readonly from: string;
  readonly to: string;
  readonly records: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly chains: ReadonlyArray<{ origin: string; chain: number; begin: number; count: number; checkpointSize: number }>;
  readonly keys: readonly string[];
  readonly policies: ReadonlyArray<{ name: string; sha256: string }>;
  /** SHA-256 of the canonical JSON of {chains, keys, policies}. */
  readonly contentSha256: string;
}

export interface EvidenceBundle {
  readonly format: typeof EVIDENCE_FORMAT;
  readonly manifest: EvidenceManifest;
  readonly keys: readonly string[];
  readonly policies: ReadonlyArray<PolicyText & { sha256: string }>;
  readonly chains: readonly EvidenceChain[];
}

export interface ExportOptions {
  readonly from: Date;
  readonly to: Date;
  readonly policies?: readonly PolicyText[];
  readonly now?: () => Date;
}

/**
 * The records of a time range with their proof, reading the log twice, one
 * segment in memory at a time: first each record's time (which records are
 * in the range), then the range itself and the compact ranges either side.
 */
export async function exportEvidence(dir: string, opts: ExportOptions): Promise<{ bundle: EvidenceBundle; warnings: string[] }> {
  if (!(opts.from.getTime() <= opts.to.getTime())) throw new Error('--from must not be after --to');
  const from = opts.from.getTime();
  const to = opts.to.getTime();
  const names = await logNames(dir);
  const checkpoints = await newestCheckpoints(dir, names);

  // Pass 1: per chain, the first record at or after `from` and the last at or before `to`.
  const spans: Array<ChainStartInfo & { first: number; last: number }> = [];
  await walkRecords(dir, names, {
    chain: (c) => spans.push({ ...c, first: -1, last: -1 }),
    record(bytes, index) {
      const span = spans.at(-1)!;
      const t = Date.parse((JSON.parse(bytes.toString('utf8')) as AuditRecord).time);
      if (span.first < 0 && t >= from) span.first = index;
      if (t <= to) span.last = index;
    },
  });

  // Which part of each chain goes out, against which checkpoint.
  const warnings: string[] = [];
  const plans = new Map<number, { span: (typeof spans)[number]; cp: CheckpointEntry; end: number; tree: RootAt; right: CompactRange; left: Uint8Array[]; records: string[] }>();
  for (const span of spans) {
    if (span.first < 0 || span.last < span.first) continue;
    const cp = checkpoints.get(span.origin);
    if (!cp || cp.body.size <= span.first) {
      warnings.push(`chain ${span.chain}: records from seq ${span.firstSeq + span.first} on are not yet covered by a signed checkpoint and were left out`);
      continue;
    }
    const end = Math.min(span.last + 1, cp.body.size);
    if (end < span.last + 1) warnings.push(`chain ${span.chain}: ${span.last + 1 - end} records at the end of the range are not yet covered by a signed checkpoint and were left out`);
    plans.set(span.chain, { span, cp, end, tree: new RootAt(cp.body.size), right: new CompactRange(merkleHasher, end), left: [], records: [] });
  }

  // Pass 2: the records of the range, the compact ranges either side, the root at the checkpoint.
  let plan: ReturnType<typeof plans.get>;
  await walkRecords(dir, names, {
    chain: (c) => (plan = plans.get(c.chain)),
    record(bytes, index) {
      if (!plan || index >= plan.cp.body.size) return;
      if (index === plan.span.first) plan.left = plan.tree.left;
      const leaf = leafHashOfBytes(bytes);
      if (index >= plan.span.first && index < plan.end) plan.records.push(bytes.toString('utf8'));
      else if (index >= plan.end) plan.right.append(leaf);
      plan.tree.append(leaf);
    },
  });
  const out: EvidenceChain[] = [];
  for (const p of plans.values()) {
    if (!p.tree.root || !equalHashes(p.tree.root, p.cp.body.root)) throw mismatch(dir, p.cp.body.size);
    out.push({ origin: p.span.origin, chain: p.span.chain, begin: p.span.first, records: p.records, left: p.left.map(toHex), right: p.right.hashes.map(toHex), checkpoint: p.cp.line.note });
  }

  const keyFiles = names.others.filter((n) => n.startsWith(`${KEYS_DIR}/`));
  const keys = [...new Set(await Promise.all(keyFiles.map(async (n) => (await readFile(join(dir, n), 'utf8')).trim())))].sort();
  const policies = (opts.policies ?? []).map((p) => ({ name: p.name, text: p.text, sha256: sha256Hex(p.text) }));
  const seqs = out.flatMap((c) => c.records.map((l) => (JSON.parse(l) as AuditRecord).seq));
  const manifest: EvidenceManifest = {
    created: (opts.now?.() ?? new Date()).toISOString(),
    from: opts.from.toISOString(),
    to: opts.to.toISOString(),
    records: seqs.length,
    firstSeq: seqs.length > 0 ? least(seqs) : null,
    lastSeq: seqs.length > 0 ? greatest(seqs) : null,
    chains: out.map((c) => ({ origin: c.origin, chain: c.chain, begin: c.begin, count: c.records.length, checkpointSize: parseCheckpoint(parseNote(c.checkpoint).text).size })),
    keys,
    policies: policies.map(({ name, sha256 }) => ({ name, sha256 })),
    contentSha256: contentHash(out, keys, policies),
  };
  if (seqs.length === 0) warnings.push('no records in that time range');
  return { bundle: { format: EVIDENCE_FORMAT, manifest, keys, policies, chains: out }, warnings };
}

function contentHash(chains: readonly EvidenceChain[], keys: readonly string[], policies: ReadonlyArray<PolicyText & { sha256: string }>): string {
  return createHash('sha256').update(canonicalJson({ chains, keys, policies })).digest('hex');
}

export interface EvidenceCheck {
  readonly ok: boolean;
  readonly problem?: string;
  readonly records: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly keysUsed: readonly string[];
  /** Per policy: whether a record in the bundle names its hash. */
  readonly policies: ReadonlyArray<{ name: string; sha256: string; namedByRecords: boolean }>;
  readonly warnings: readonly string[];
}

/** Verifies a parsed evidence bundle against trusted keys. Never throws for a bad bundle. */
export function verifyEvidenceBundle(input: unknown, trustedKeys: readonly string[]): EvidenceCheck {
  const empty = { records: 0, firstSeq: null, lastSeq: null, keysUsed: [], policies: [], warnings: [] };
  const fail = (problem: string): EvidenceCheck => ({ ...empty, ok: false, problem });
  const b = input as EvidenceBundle;
  if (typeof b !== 'object' || b === null || b.format !== EVIDENCE_FORMAT || !Array.isArray(b.chains) || !Array.isArray(b.keys) || !Array.isArray(b.policies) || typeof b.manifest !== 'object') {
    return fail(`not an evidence bundle (expected format ${EVIDENCE_FORMAT})`);
  }
  try {
    if (contentHash(b.chains, b.keys, b.policies) !== b.manifest.contentSha256) return fail('the bundle content does not match the hash in its manifest: it was altered');
    const verifiers = trustedKeys.map((k) => noteVerifier(k));
    const used = new Set<string>();
    const seqs: number[] = [];
    const named = new Set<string>();
    for (const [i, c] of b.chains.entries()) {
      const where = `chain ${c.chain ?? i} (${c.origin})`;
      let opened;
      try {
        opened = openNote(c.checkpoint, verifiers);
      } catch (e) {
        return fail(`${where}: the checkpoint does not verify with the trusted keys: ${(e as Error).message}`);
      }
      for (const s of opened.verified) used.add(s.verifier.name);
      const cp = parseCheckpoint(opened.text);
      if (cp.origin !== c.origin) return fail(`${where}: the checkpoint is for ${cp.origin}`);
      if (c.records.length === 0) return fail(`${where}: no records`);
      let prevSeq: number | undefined;
      let prevHash: string | undefined;
      const leaves = c.records.map((line: string, j: number) => {
        const r = JSON.parse(line) as AuditRecord;
        if (prevSeq !== undefined && r.seq !== prevSeq + 1) throw new Error(`${where}: record ${j} has seq ${r.seq} after ${prevSeq}`);
        if (prevHash !== undefined && r.prev !== prevHash) throw new Error(`${where}: record seq ${r.seq} does not name the record before it`);
        const leaf = leafHashOfBytes(Buffer.from(line));
        prevSeq = r.seq;
        prevHash = toHex(leaf);
        seqs.push(r.seq);
        collectPolicyHashes(r.detail, named);
        return leaf;
      });
      const root = rootFromRange(merkleHasher, cp.size, c.begin, leaves, c.left.map(fromHex), c.right.map(fromHex));
      if (!equalHashes(root, cp.root)) return fail(`${where}: the records do not hash to the signed root (a record was altered, added, removed or moved)`);
    }
    const warnings: string[] = [];
    const policies = b.policies.map((p) => {
      if (sha256Hex(p.text) !== p.sha256) throw new Error(`policy ${p.name}: its text does not match its SHA-256`);
      const namedByRecords = named.has(p.sha256);
      if (!namedByRecords) warnings.push(`policy ${p.name} (${p.sha256.slice(0, 12)}…) is not named by any record in the bundle: its authenticity rests on whoever made the bundle`);
      return { name: p.name, sha256: p.sha256, namedByRecords };
    });
    for (const h of named) if (!b.policies.some((p) => p.sha256 === h)) warnings.push(`records name policy hash ${h.slice(0, 12)}… but the bundle does not include that policy`);
    if (seqs.length !== b.manifest.records) return fail(`the manifest says ${b.manifest.records} records, the bundle holds ${seqs.length}`);
    return { ok: true, records: seqs.length, firstSeq: seqs.length ? least(seqs) : null, lastSeq: seqs.length ? greatest(seqs) : null, keysUsed: [...used], policies, warnings };
  } catch (e) {
    return fail((e as Error).message);
  }
}

/** Policy hashes named in record details: `policySha256` (string) or `policyHashes` (list or name→hash map). */
function collectPolicyHashes(detail: unknown, into: Set<string>): void {
  if (typeof detail !== 'object' || detail === null) return;
  const d = detail as Record<string, unknown>;
  const add = (v: unknown) => {
    if (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)) into.add(v);
  };
  add(d.policySha256);
  const list = d.policyHashes;
  if (Array.isArray(list)) list.forEach(add);
  else if (typeof list === 'object' && list !== null) Object.values(list).forEach(add);
}

export async function readBundleFile(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8')) as unknown;
}

/** True when `path` holds an evidence bundle rather than being a log directory. */
export async function isBundleFile(path: string): Promise<boolean> {
  try {
    const head = (await readFile(path)).subarray(0, 200).toString('utf8');
    return head.includes(EVIDENCE_FORMAT);
  } catch {
    return false;
  }
}
