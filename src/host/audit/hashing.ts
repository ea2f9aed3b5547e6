// node:crypto behind the pure Merkle and signed-note code in src/common.
import { hash } from 'node:crypto';
import type { Hash, MerkleHasher, Sha256 } from '../../common/merkle.ts';

export const sha256: Sha256 = (data) => hash('sha256', data, 'buffer');

export function sha256Hex(data: string | Uint8Array): string {
  return hash('sha256', data, 'hex');
}

const NODE_PREFIX = Buffer.from([1]);

/** RFC 6962 hashing with one-shot native SHA-256 (the hot path of writer and verifier). */
export const merkleHasher: MerkleHasher = {
  emptyRoot: () => hash('sha256', '', 'buffer'),
  leaf: (data) => hash('sha256', Buffer.concat([Buffer.alloc(1), data]), 'buffer'),
  node: (left, right) => hash('sha256', Buffer.concat([NODE_PREFIX, left, right], 65), 'buffer'),
};

/** The Merkle leaf hash of one audit line (without its newline): SHA-256(0x00 ‖ UTF-8 line). */
export function leafHashOfLine(line: string): Hash {
  return hash('sha256', '\0' + line, 'buffer');
}
