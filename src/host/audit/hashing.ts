// node:crypto behind the pure Merkle and signed-note code in src/common.
import { hash } from 'node:crypto';
import type { Hash, MerkleHasher, Sha256 } from '../../common/merkle.ts';

export const sha256: Sha256 = (data) => hash('sha256', data, 'buffer');

export function sha256Hex(data: string | Uint8Array): string {
  return hash('sha256', data, 'hex');
}

// Scratch space reused by every hash call (single-threaded): no allocation on the hot path.
const nodeScratch = Buffer.alloc(65, 1);
let leafScratch = Buffer.alloc(4096);

/** RFC 6962 hashing with one-shot native SHA-256 (the hot path of writer and verifier). */
export const merkleHasher: MerkleHasher = {
  emptyRoot: () => hash('sha256', '', 'buffer'),
  leaf: (data) => leafHashOfBytes(data),
  node: (left, right) => {
    nodeScratch.set(left, 1);
    nodeScratch.set(right, 33);
    return hash('sha256', nodeScratch, 'buffer');
  },
};

/** The Merkle leaf hash of one audit line's bytes (without its newline): SHA-256(0x00 ‖ bytes). */
export function leafHashOfBytes(line: Uint8Array): Hash {
  if (line.length + 1 > leafScratch.length) leafScratch = Buffer.alloc(Math.max(line.length + 1, leafScratch.length * 2));
  leafScratch[0] = 0;
  leafScratch.set(line, 1);
  return hash('sha256', leafScratch.subarray(0, line.length + 1), 'buffer');
}

/** The same for a line held as a string (UTF-8 encoded). */
export function leafHashOfLine(line: string): Hash {
  return hash('sha256', '\0' + line, 'buffer');
}

/** Lowercase hex (native; the pure encodeHex in signed-note.ts is for src/common). */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

/** Decodes hex already validated as lowercase hex of even length. */
export function fromHex(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}
