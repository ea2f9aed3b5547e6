// Checked against the published RFC 6962 vectors used by transparency-dev/merkle
// (proof/verify_test.go) and certificate-transparency: the 8 leaves below, the
// roots of every prefix, and the inclusion and consistency proofs listed there.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CompactRange,
  MerkleFrontier,
  MerkleTree,
  compactRangeShape,
  consistencyProof,
  inclusionProof,
  rfc6962Hasher,
  rootFromInclusionProof,
  rootFromRange,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
  type Hash,
} from '../../src/common/merkle.ts';

const sha256 = (d: Uint8Array) => new Uint8Array(createHash('sha256').update(d).digest());
const hasher = rfc6962Hasher(sha256);
const hex = (h: Uint8Array) => Buffer.from(h).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(unhex);
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const EMPTY_ROOT = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// [leaf index (0-based), tree size, proof]
const INCLUSION: Array<[number, number, string[]]> = [
  [0, 1, []],
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];
// [old size, new size, proof]
const CONSISTENCY: Array<[number, number, string[]]> = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];

/** Straight from the RFC's recursive definition, for cross-checking. */
function naiveRoot(leaves: readonly Uint8Array[]): Hash {
  if (leaves.length === 0) return sha256(new Uint8Array());
  if (leaves.length === 1) return hasher.leaf(leaves[0]!);
  const k = splitPoint(leaves.length);
  return hasher.node(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

function treeOf(leaves: readonly Uint8Array[]): MerkleTree {
  const t = new MerkleTree(hasher);
  for (const l of leaves) t.append(hasher.leaf(l));
  return t;
}

const flip = (h: Hash, byte = 0, bit = 3) => {
  const c = h.slice();
  c[byte]! ^= 1 << bit;
  return c;
};

describe('RFC 6962 Merkle tree', () => {
  it('computes the published empty-tree root and the root of every prefix of the 8 reference leaves', () => {
    expect(hex(hasher.emptyRoot())).toBe(EMPTY_ROOT);
    const tree = new MerkleTree(hasher);
    const frontier = new MerkleFrontier(hasher);
    LEAVES.forEach((leaf, i) => {
      tree.append(hasher.leaf(leaf));
      frontier.append(hasher.leaf(leaf));
      expect(hex(tree.root())).toBe(ROOTS[i]);
      expect(hex(frontier.root())).toBe(ROOTS[i]);
    });
    ROOTS.forEach((r, i) => expect(hex(tree.root(i + 1))).toBe(r));
  });

  it.each(INCLUSION)('generates and verifies the published inclusion proof for leaf %i of %i', (index, size, want) => {
    const tree = treeOf(LEAVES.slice(0, size));
    const proof = tree.inclusionProof(index, size);
    expect(proof.map(hex)).toEqual(want);
    const root = unhex(ROOTS[size - 1]!);
    const leaf = hasher.leaf(LEAVES[index]!);
    expect(verifyInclusion(hasher, index, size, leaf, proof, root)).toBe(true);
  });

  it.each(INCLUSION.filter(([, , p]) => p.length > 0))('rejects every corruption of the inclusion proof for leaf %i of %i', (index, size, want) => {
    const proof = want.map(unhex);
    const root = unhex(ROOTS[size - 1]!);
    const leaf = hasher.leaf(LEAVES[index]!);
    const bad: Array<[string, number, number, Hash, Hash[], Hash]> = [
      ['index - 1', index - 1, size, leaf, proof, root],
      ['index + 1', index + 1, size, leaf, proof, root],
      ['index ^ 2', index ^ 2, size, leaf, proof, root],
      ['size * 2', index, size * 2, leaf, proof, root],
      ['size / 2', index, Math.floor(size / 2), leaf, proof, root],
      ['wrong leaf', index, size, hasher.leaf(new TextEncoder().encode('WrongLeaf')), proof, root],
      ['empty root', index, size, leaf, proof, unhex(EMPTY_ROOT)],
      ['trailing garbage', index, size, leaf, [...proof, new Uint8Array()], root],
      ['trailing root', index, size, leaf, [...proof, root], root],
      ['preceding root', index, size, leaf, [root, ...proof], root],
      ['removed component', index, size, leaf, proof.slice(0, -1), root],
      ...proof.map((_, i): [string, number, number, Hash, Hash[], Hash] => [`flipped bit in proof[${i}]`, index, size, leaf, proof.map((p, j) => (i === j ? flip(p) : p)), root]),
    ];
    for (const [desc, i, n, l, p, r] of bad) expect(verifyInclusion(hasher, i, n, l, p, r), desc).toBe(false);
  });

  it.each(CONSISTENCY)('generates and verifies the published consistency proof from %i to %i', (m, n, want) => {
    const tree = treeOf(LEAVES.slice(0, n));
    const proof = tree.consistencyProof(m, n);
    expect(proof.map(hex)).toEqual(want);
    expect(verifyConsistency(hasher, m, n, unhex(ROOTS[m - 1]!), unhex(ROOTS[n - 1]!), proof)).toBe(true);
  });

  it.each(CONSISTENCY.filter(([, , p]) => p.length > 0))('rejects every corruption of the consistency proof from %i to %i', (m, n, want) => {
    const proof = want.map(unhex);
    const r1 = unhex(ROOTS[m - 1]!);
    const r2 = unhex(ROOTS[n - 1]!);
    const bad: Array<[string, number, number, Hash, Hash, Hash[]]> = [
      ['m - 1', m - 1, n, r1, r2, proof],
      ['m + 1', m + 1, n, r1, r2, proof],
      ['m ^ 2', m ^ 2, n, r1, r2, proof],
      ['n * 2', m, n * 2, r1, r2, proof],
      ['n / 2', m, Math.floor(n / 2), r1, r2, proof],
      ['wrong old root', m, n, new TextEncoder().encode('WrongRoot'), r2, proof],
      ['wrong new root', m, n, r1, flip(r2), proof],
      ['swapped roots', m, n, r2, r1, proof],
      ['empty proof', m, n, r1, r2, []],
      ['trailing garbage', m, n, r1, r2, [...proof, new Uint8Array()]],
      ['trailing root', m, n, r1, r2, [...proof, r1]],
      ['preceding root', m, n, r1, r2, [r2, ...proof]],
      ['preceding proof[0]', m, n, r1, r2, [proof[0]!, ...proof]],
      ['truncated proof', m, n, r1, r2, proof.slice(0, -1)],
      ...proof.map((_, i): [string, number, number, Hash, Hash, Hash[]] => [`flipped bit in proof[${i}]`, m, n, r1, r2, proof.map((p, j) => (i === j ? flip(p, 0, 4) : p))]),
    ];
    for (const [desc, a, b, x, y, p] of bad) expect(verifyConsistency(hasher, a, b, x, y, p), desc).toBe(false);
  });

  it('treats sizes 0 and equal sizes as the RFC says', () => {
    const r = unhex(ROOTS[0]!);
    const e = unhex(EMPTY_ROOT);
    expect(verifyConsistency(hasher, 0, 0, e, e, [])).toBe(true);
    expect(verifyConsistency(hasher, 0, 1, e, r, [])).toBe(true);
    expect(verifyConsistency(hasher, 1, 1, r, r, [])).toBe(true);
    expect(verifyConsistency(hasher, 1, 1, r, e, [])).toBe(false);
    expect(verifyConsistency(hasher, 1, 1, r, r, [e])).toBe(false);
    expect(verifyConsistency(hasher, 2, 1, r, r, [])).toBe(false);
    expect(verifyInclusion(hasher, 0, 0, r, [], r)).toBe(false);
    expect(verifyInclusion(hasher, 0, 1, r, [], r)).toBe(true);
    expect(verifyInclusion(hasher, 0, 1, r, [], e)).toBe(false);
  });

  it('agrees with the recursive definition, and every proof verifies, for all sizes up to 70', () => {
    const leaves = Array.from({ length: 70 }, (_, i) => new TextEncoder().encode(`leaf ${i}`));
    const tree = new MerkleTree(hasher);
    const frontier = new MerkleFrontier(hasher);
    const roots: Hash[] = [];
    for (const l of leaves) {
      tree.append(hasher.leaf(l));
      frontier.append(hasher.leaf(l));
      roots.push(frontier.root());
      expect(hex(tree.root())).toBe(hex(naiveRoot(leaves.slice(0, tree.size))));
    }
    for (let n = 1; n <= 70; n++) {
      const root = tree.root(n);
      expect(hex(root)).toBe(hex(roots[n - 1]!));
      for (let i = 0; i < n; i++) {
        const proof = tree.inclusionProof(i, n);
        expect(hex(rootFromInclusionProof(hasher, i, n, tree.leafHash(i), proof)!)).toBe(hex(root));
      }
      for (let m = 1; m <= n; m++) {
        expect(verifyConsistency(hasher, m, n, tree.root(m), root, tree.consistencyProof(m, n))).toBe(true);
        if (m < n) expect(verifyConsistency(hasher, m, n, tree.root(m), flip(root, 31), tree.consistencyProof(m, n))).toBe(false);
      }
    }
  });

  it('rebuilds a frontier from its stored subtree roots and keeps appending to the same roots', () => {
    const tree = treeOf(Array.from({ length: 45 }, (_, i) => new TextEncoder().encode(`x${i}`)));
    const f = tree.frontier(29);
    expect(f.hashes).toHaveLength(compactRangeShape(0, 29).length);
    const restored = new MerkleFrontier(hasher, 29, f.hashes);
    for (let i = 29; i < 45; i++) restored.append(tree.leafHash(i));
    expect(hex(restored.root())).toBe(hex(tree.root()));
    expect(() => new MerkleFrontier(hasher, 29, f.hashes.slice(1))).toThrow(/frontier for 29 leaves/);
  });

  it('builds consistency proofs from the old frontier and the new leaves alone', () => {
    const tree = treeOf(Array.from({ length: 100 }, (_, i) => new TextEncoder().encode(`y${i}`)));
    for (const [m, n] of [[37, 100], [64, 65], [1, 2], [50, 99]] as const) {
      const old = new Map(compactRangeShape(0, m).map(([s, k], i) => [`${s}/${k}`, tree.frontier(m).hashes[i]!]));
      const mth = (start: number, end: number): Hash => {
        const k = end - start;
        const hit = old.get(`${start}/${k}`);
        if (hit) return hit;
        if (start >= m) return tree.subtreeHash(start, end);
        throw new Error(`needs old node [${start}, ${end})`);
      };
      expect(consistencyProof(m, n, mth).map(hex)).toEqual(tree.consistencyProof(m, n).map(hex));
    }
  });

  it('proves a contiguous run of leaves belongs to a root, and catches a changed, missing or moved leaf', () => {
    const tree = treeOf(Array.from({ length: 77 }, (_, i) => new TextEncoder().encode(`z${i}`)));
    const root = hex(tree.root());
    const run = (b: number, e: number) => Array.from({ length: e - b }, (_, i) => tree.leafHash(b + i));
    for (const [b, e] of [[0, 77], [10, 20], [64, 77], [0, 1], [76, 77], [31, 33]] as const) {
      expect(hex(rootFromRange(hasher, 77, b, run(b, e), tree.compactRange(0, b), tree.compactRange(e, 77)))).toBe(root);
    }
    const leaves = run(10, 20);
    leaves[3] = flip(leaves[3]!);
    expect(hex(rootFromRange(hasher, 77, 10, leaves, tree.compactRange(0, 10), tree.compactRange(20, 77)))).not.toBe(root);
    expect(hex(rootFromRange(hasher, 77, 11, run(10, 20), tree.compactRange(0, 11), tree.compactRange(21, 77)))).not.toBe(root);
    expect(() => rootFromRange(hasher, 77, 10, run(10, 19), tree.compactRange(0, 10), tree.compactRange(20, 77))).toThrow(/needs/);
  });

  it('generates proofs from any subtree-hash source, the same as the in-memory tree', () => {
    const tree = treeOf(LEAVES);
    expect(inclusionProof(5, 8, tree.subtreeHash).map(hex)).toEqual(INCLUSION[2]![2]);
  });
});

describe('CompactRange', () => {
  it('builds compactRangeShape(begin, end) leaf by leaf: the same hashes as the whole tree gives', () => {
    const tree = new MerkleTree(hasher);
    const leaves = Array.from({ length: 70 }, (_, i) => sha256(new Uint8Array([i])));
    for (const l of leaves) tree.append(l);
    for (let begin = 0; begin <= 33; begin++) {
      const range = new CompactRange(hasher, begin);
      for (let end = begin; end <= 70; end++) {
        expect(range.end).toBe(end);
        expect(range.hashes.map(hex)).toEqual(tree.compactRange(begin, end).map(hex));
        if (end < 70) range.append(leaves[end]!);
      }
    }
  });

  it('refuses a start that is not a whole number', () => {
    expect(() => new CompactRange(hasher, -1)).toThrow(RangeError);
    expect(() => new CompactRange(hasher, 1.5)).toThrow(RangeError);
  });
});
