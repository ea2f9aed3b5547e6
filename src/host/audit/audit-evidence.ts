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
import { readFile } from 'node:fs/promises';
import { canonicalJson } from '../../common/canonical-json.ts';
import type { AuditChainStart, AuditRecord } from '../../common/audit-record.ts';
import { MerkleTree, equalHashes, rootFromRange, verifyInclusion } from '../../common/merkle.ts';
import { decodeBase64, encodeBase64, openNote, parseCheckpoint, parseNote, type Checkpoint } from '../../common/signed-note.ts';
import { noteVerifier } from '../keychain/note-key.ts';
import { classify, readAuditDir, type AuditFile } from './audit-verifier.ts';
import { fromHex, leafHashOfBytes, merkleHasher, sha256Hex, toHex } from './hashing.ts';
import { KEYS_DIR, parseCheckpointLine, type CheckpointLine } from './log-layout.ts';

export const INCLUSION_PROOF_FORMAT = 'tether-audit-inclusion/1';
export const EVIDENCE_FORMAT = 'tether-audit-evidence/1';

interface ChainData {
  chain: number;
  origin: string;
  firstSeq: number;
  key: string | null;
  lines: string[];
  tree: MerkleTree;
  checkpoints: Array<{ line: CheckpointLine; body: Checkpoint }>;
}

/** Reads every chain of a log directory into memory (records, tree, checkpoints). Not a verifier. */
async function readChains(files: readonly AuditFile[]): Promise<ChainData[]> {
  const { checkpoints, segments } = classify(files);
  const chains: ChainData[] = [];
  for (const seg of segments) {
    let chain = chains.at(-1);
    const text = seg.bytes.toString('utf8');
    const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n').slice(0, -1);
    for (const line of lines) {
      const r = JSON.parse(line) as AuditRecord;
      if (!chain || chain.chain !== seg.name.chain) {
        const d = r.detail as unknown as AuditChainStart;
        chain = { chain: seg.name.chain, origin: d.origin, firstSeq: r.seq, key: d.key, lines: [], tree: new MerkleTree(merkleHasher), checkpoints: [] };
        chains.push(chain);
      }
      chain.lines.push(line);
      chain.tree.append(leafHashOfBytes(Buffer.from(line)));
    }
  }
  if (checkpoints) {
    for (const text of checkpoints.bytes.toString('utf8').split('\n').filter(Boolean)) {
      const line = parseCheckpointLine(text);
      const body = parseCheckpoint(line.unsigned ? line.note : parseNote(line.note).text);
      chains.find((c) => c.origin === body.origin)?.checkpoints.push({ line, body });
    }
  }
  return chains;
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

/** An inclusion proof for record `seq` against the newest checkpoint that covers it. */
export async function proveRecord(dir: string, seq: number): Promise<InclusionProof> {
  const chains = await readChains(await readAuditDir(dir));
  const chain = chains.find((c) => seq >= c.firstSeq && seq < c.firstSeq + c.lines.length);
  if (!chain) throw new Error(`no record with seq ${seq} in ${dir}`);
  const leafIndex = seq - chain.firstSeq;
  const cp = chain.checkpoints.filter((c) => c.body.size > leafIndex && !c.line.unsigned).at(-1);
  if (!cp) throw new Error(`record ${seq} is not yet covered by a signed checkpoint; try again after Tether writes its next one`);
  const size = cp.body.size;
  if (!equalHashes(chain.tree.root(size), cp.body.root)) throw new Error(`the log does not match its checkpoint at size ${size}; run \`tether audit verify ${dir}\``);
  return {
    format: INCLUSION_PROOF_FORMAT,
    origin: chain.origin,
    seq,
    leafIndex,
    treeSize: size,
    record: chain.lines[leafIndex]!,
    proof: chain.tree.inclusionProof(leafIndex, size).map(encodeBase64),
    checkpoint: cp.line.note,
  };
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

export async function exportEvidence(dir: string, opts: ExportOptions): Promise<{ bundle: EvidenceBundle; warnings: string[] }> {
  if (!(opts.from.getTime() <= opts.to.getTime())) throw new Error('--from must not be after --to');
  const files = await readAuditDir(dir);
  const chains = await readChains(files);
  const warnings: string[] = [];
  const out: EvidenceChain[] = [];
  for (const c of chains) {
    const times = c.lines.map((l) => Date.parse((JSON.parse(l) as AuditRecord).time));
    const first = times.findIndex((t) => t >= opts.from.getTime());
    let last = -1;
    for (let i = times.length - 1; i >= 0; i--) {
      if (times[i]! <= opts.to.getTime()) {
        last = i;
        break;
      }
    }
    if (first < 0 || last < first) continue;
    const cp = c.checkpoints.filter((x) => !x.line.unsigned).at(-1);
    if (!cp || cp.body.size <= first) {
      warnings.push(`chain ${c.chain}: records from seq ${c.firstSeq + first} on are not yet covered by a signed checkpoint and were left out`);
      continue;
    }
    const end = Math.min(last + 1, cp.body.size);
    if (end < last + 1) warnings.push(`chain ${c.chain}: ${last + 1 - end} records at the end of the range are not yet covered by a signed checkpoint and were left out`);
    if (!equalHashes(c.tree.root(cp.body.size), cp.body.root)) throw new Error(`the log does not match its checkpoint at size ${cp.body.size}; run \`tether audit verify ${dir}\``);
    out.push({
      origin: c.origin,
      chain: c.chain,
      begin: first,
      records: c.lines.slice(first, end),
      left: c.tree.compactRange(0, first).map(toHex),
      right: c.tree.compactRange(end, cp.body.size).map(toHex),
      checkpoint: cp.line.note,
    });
  }
  const keys = [...new Set(files.filter((f) => f.name.startsWith(`${KEYS_DIR}/`)).map((f) => f.bytes.toString('utf8').trim()))].sort();
  const policies = (opts.policies ?? []).map((p) => ({ name: p.name, text: p.text, sha256: sha256Hex(p.text) }));
  const seqs = out.flatMap((c) => c.records.map((l) => (JSON.parse(l) as AuditRecord).seq));
  const manifest: EvidenceManifest = {
    created: (opts.now?.() ?? new Date()).toISOString(),
    from: opts.from.toISOString(),
    to: opts.to.toISOString(),
    records: seqs.length,
    firstSeq: seqs.length > 0 ? Math.min(...seqs) : null,
    lastSeq: seqs.length > 0 ? Math.max(...seqs) : null,
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
    return { ok: true, records: seqs.length, firstSeq: seqs.length ? Math.min(...seqs) : null, lastSeq: seqs.length ? Math.max(...seqs) : null, keysUsed: [...used], policies, warnings };
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
