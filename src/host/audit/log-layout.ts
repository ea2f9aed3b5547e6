// The on-disk layout of the signed audit log, shared by the writer, the
// verifier, the prover, the exporter and the outbox:
//
//   <dir>/seg-CCCC-SSSSSSSSSSSS.jsonl   records of chain C, first seq S, one canonical JSON line each;
//                                       the segment being written ends in its runway (NUL bytes)
//   <dir>/checkpoints.jsonl             {"frontier":[hex…],"note":"<signed checkpoint>"} per line
//   <dir>/keys/<name>+<id>.pub           verifier keys that signed this log (informative, not trusted)
//   <dir>/sealed/<segment>@<offset>.bin  bytes a crash left after the last complete record
//   <dir>/LOCK                           pid of the writing process
//   <dir>/outbox/<sink>.json             the outbox's shipping cursor (not part of the log)
//
// A chain is one Merkle tree with one origin; a new chain starts when the key
// changes without a rotation (reinstall, lost keychain) or the log becomes unsigned.
import { canonicalJson } from '../../common/canonical-json.ts';

export const CHECKPOINTS_FILE = 'checkpoints.jsonl';
export const LOCK_FILE = 'LOCK';
export const KEYS_DIR = 'keys';
export const SEALED_DIR = 'sealed';
/** Shipping state of the outbox (audit-outbox.ts): not part of the log, ignored by the verifier. */
export const OUTBOX_DIR = 'outbox';

export interface SegmentName {
  readonly file: string;
  readonly chain: number;
  readonly firstSeq: number;
}

export function segmentFileName(chain: number, firstSeq: number): string {
  return `seg-${String(chain).padStart(4, '0')}-${String(firstSeq).padStart(12, '0')}.jsonl`;
}

/** Undefined unless `file` is exactly what segmentFileName would write. */
export function parseSegmentFileName(file: string): SegmentName | undefined {
  const m = /^seg-(\d{4,})-(\d{12,})\.jsonl$/.exec(file);
  if (!m) return undefined;
  const chain = Number(m[1]);
  const firstSeq = Number(m[2]);
  if (!Number.isSafeInteger(chain) || chain < 1 || !Number.isSafeInteger(firstSeq) || segmentFileName(chain, firstSeq) !== file) return undefined;
  return { file, chain, firstSeq };
}

/**
 * The segment being written keeps pre-written NUL bytes after its records
 * (its runway, signed-audit-log.ts: a commit then overwrites them instead of
 * growing the file), and so may a log whose writer crashed. A record is one
 * line of canonical JSON, which never holds a NUL byte, so the records end
 * where the trailing NULs begin. Only the newest segment of a log may have
 * them; anywhere else a NUL is damage.
 */
export function withoutRunway(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end === bytes.length ? bytes : bytes.subarray(0, end);
}

/**
 * A segment's bytes as readers take them. The newest up to its first NUL: a
 * commit being written can read as data, NULs, more data, and what lies past
 * the first NUL is not yet written, a torn write recovery will seal, or
 * damage, which a checkpoint covering records past it shows (the reader then
 * finds them missing). Any other segment whole: a NUL in it is damage.
 */
export function segmentRecordBytes(bytes: Buffer, newest: boolean): Buffer {
  const nul = newest ? bytes.indexOf(0) : -1;
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

export function sortSegments<T extends SegmentName>(segments: readonly T[]): T[] {
  return [...segments].sort((a, b) => a.chain - b.chain || a.firstSeq - b.firstSeq);
}

export interface CheckpointLine {
  /** The compact range [0, size) of the tree, hex, largest subtree first. */
  readonly frontier: readonly string[];
  /** A C2SP signed note (or, for an unsigned log, only its text). */
  readonly note: string;
  readonly unsigned?: true;
}

export function formatCheckpointLine(cp: CheckpointLine): string {
  return canonicalJson(cp.unsigned ? { frontier: cp.frontier, note: cp.note, unsigned: true } : { frontier: cp.frontier, note: cp.note });
}

/** Parses one line of checkpoints.jsonl; throws unless it is exactly what formatCheckpointLine writes. */
export function parseCheckpointLine(line: string): CheckpointLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error('not valid JSON');
  }
  const o = v as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('not a JSON object');
  const keys = Object.keys(o).sort().join(',');
  if (keys !== 'frontier,note' && keys !== 'frontier,note,unsigned') throw new Error(`unexpected fields: ${keys}`);
  if (!Array.isArray(o.frontier) || !o.frontier.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))) throw new Error('frontier must be a list of hex SHA-256 hashes');
  if (typeof o.note !== 'string') throw new Error('note must be a string');
  if ('unsigned' in o && o.unsigned !== true) throw new Error('unsigned must be true when present');
  const cp: CheckpointLine = o.unsigned === true ? { frontier: o.frontier as string[], note: o.note, unsigned: true } : { frontier: o.frontier as string[], note: o.note };
  if (formatCheckpointLine(cp) !== line) throw new Error('not in canonical form');
  return cp;
}

export function keyFileName(verifierKey: string): string {
  const [name = '', id = ''] = verifierKey.split('+');
  return `${name.replace(/[^A-Za-z0-9._-]/g, '_')}+${id}.pub`;
}

export function sealedFileName(segment: string, offset: number): string {
  return `${segment}@${offset}.bin`;
}
