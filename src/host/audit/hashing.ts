// node:crypto behind the pure Merkle and signed-note code in src/common.
import { hash } from 'node:crypto';
import type { Hash, MerkleHasher, NodeHasher, Sha256 } from '../../common/merkle.ts';

export const sha256: Sha256 = (data) => hash('sha256', data, 'buffer');

export function sha256Hex(data: string | Uint8Array): string {
  return hash('sha256', data, 'hex');
}

// Scratch space reused by every hash call (single-threaded): no allocation on the hot path.
const nodeScratch = Buffer.alloc(65, 1);
const hexScratch = Buffer.alloc(65, 1);
let leafScratch = Buffer.alloc(4096);

/** RFC 6962 hashing with one-shot native SHA-256 (proofs, evidence, outbox). */
export const merkleHasher: MerkleHasher = {
  emptyRoot: () => hash('sha256', '', 'buffer'),
  leaf: (data) => leafHashOfBytes(data),
  node: (left, right) => {
    nodeScratch.set(left, 1);
    nodeScratch.set(right, 33);
    return hash('sha256', nodeScratch, 'buffer');
  },
};

const EMPTY_ROOT_HEX = hash('sha256', '', 'hex');

/**
 * The same RFC 6962 node hash over lowercase hex hashes: the writer's and the
 * verifier's frontiers. node:crypto returns a hex string several times faster
 * than a Buffer (no backing store per call), and `prev` and checkpoint
 * frontiers are hex anyway.
 */
export const hexNodeHasher: NodeHasher<string> = {
  emptyRoot: () => EMPTY_ROOT_HEX,
  node: (left, right) => {
    if (hexScratch.write(left, 1, 32, 'hex') !== 32 || hexScratch.write(right, 33, 32, 'hex') !== 32) {
      throw new TypeError('Merkle node: a child is not a hex SHA-256 hash');
    }
    return hash('sha256', hexScratch, 'hex');
  },
};

function withLeafPrefix(line: Uint8Array): Buffer {
  if (line.length + 1 > leafScratch.length) leafScratch = Buffer.alloc(Math.max(line.length + 1, leafScratch.length * 2));
  leafScratch[0] = 0;
  leafScratch.set(line, 1);
  return leafScratch.subarray(0, line.length + 1);
}

/** The Merkle leaf hash of one audit line's bytes (without its newline): SHA-256(0x00 ‖ bytes). */
export function leafHashOfBytes(line: Uint8Array): Hash {
  return hash('sha256', withLeafPrefix(line), 'buffer');
}

/** The same, as lowercase hex (what `prev` holds). */
export function leafHexOfBytes(line: Uint8Array): string {
  return hash('sha256', withLeafPrefix(line), 'hex');
}

/** The same for a line held as a string (UTF-8 encoded). */
export function leafHashOfLine(line: string): Hash {
  return hash('sha256', '\0' + line, 'buffer');
}

/** The same, as lowercase hex. */
export function leafHexOfLine(line: string): string {
  return hash('sha256', '\0' + line, 'hex');
}

/** Lowercase hex (native; the pure encodeHex in signed-note.ts is for src/common). */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

/** Decodes hex already validated as lowercase hex of even length. */
export function fromHex(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}
