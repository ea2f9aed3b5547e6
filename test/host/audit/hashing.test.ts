import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MerkleFrontier, MerkleTree } from '../../../src/common/merkle.ts';
import { hexNodeHasher, leafHashOfBytes, leafHashOfLine, leafHexOfBytes, leafHexOfLine, merkleHasher } from '../../../src/host/audit/hashing.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('audit hashing', () => {
  it('hashes leaves as SHA-256(0x00 ‖ line), the same from a string or its UTF-8 bytes, as hex or bytes', () => {
    for (const line of ['', '{"a":1}', 'é€😀', 'x'.repeat(10_000)]) {
      const want = createHash('sha256').update(Buffer.concat([Buffer.of(0), Buffer.from(line)])).digest('hex');
      expect(leafHexOfLine(line)).toBe(want);
      expect(leafHexOfBytes(Buffer.from(line))).toBe(want);
      expect(hex(leafHashOfLine(line))).toBe(want);
      expect(hex(leafHashOfBytes(Buffer.from(line)))).toBe(want);
    }
  });

  it('gives a hex frontier the same roots and subtree hashes as the byte tree, for every size up to 70', () => {
    const tree = new MerkleTree(merkleHasher);
    const frontier = new MerkleFrontier(hexNodeHasher);
    expect(frontier.root()).toBe(hex(tree.root()));
    for (let i = 0; i < 70; i++) {
      const leaf = leafHexOfLine(`record ${i}`);
      tree.append(Buffer.from(leaf, 'hex'));
      frontier.append(leaf);
      expect(frontier.root()).toBe(hex(tree.root()));
      expect(frontier.hashes).toEqual(tree.frontier().hashes.map(hex));
    }
  });

  it('refuses a child that is not a hex SHA-256 hash', () => {
    const good = leafHexOfLine('a');
    expect(() => hexNodeHasher.node(good, 'zz'.repeat(32))).toThrow(/not a hex SHA-256/);
    expect(() => hexNodeHasher.node(good.slice(0, 62), good)).toThrow(/not a hex SHA-256/);
  });
});
