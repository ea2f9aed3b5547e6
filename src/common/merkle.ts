// RFC 6962 / RFC 9162 Merkle tree: leaf = H(0x00 ‖ data), node = H(0x01 ‖ left ‖ right),
// the tree over n leaves splits at the largest power of two below n.
//
// Pure: the caller passes SHA-256 in (the host uses node:crypto). Sizes and
// indices are plain numbers (exact up to 2^53); no bitwise operators on them.
//
// What is here: the incremental frontier a writer needs (O(log n) memory), a
// full tree for proofs, inclusion and consistency proofs with their RFC 9162
// verification, and root recomputation from a compact proof of a contiguous
// range (evidence bundles). Not here: storage, signatures (see signed-note.ts).

export type Hash = Uint8Array;
export type Sha256 = (data: Uint8Array) => Uint8Array;

/** What a frontier needs: H is how hashes are held (bytes here; the host also uses hex strings). */
export interface NodeHasher<H> {
  emptyRoot(): H;
  node(left: H, right: H): H;
}

export interface MerkleHasher extends NodeHasher<Hash> {
  leaf(data: Uint8Array): Hash;
}

export const HASH_SIZE = 32;

export function rfc6962Hasher(sha256: Sha256): MerkleHasher {
  return {
    emptyRoot: () => sha256(new Uint8Array(0)),
    leaf(data) {
      const buf = new Uint8Array(data.length + 1);
      buf.set(data, 1);
      return sha256(buf);
    },
    node(left, right) {
      const buf = new Uint8Array(1 + left.length + right.length);
      buf[0] = 1;
      buf.set(left, 1);
      buf.set(right, 1 + left.length);
      return sha256(buf);
    },
  };
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && 2 ** Math.round(Math.log2(n)) === n;
}

/** The largest power of two strictly below n (n ≥ 2): where RFC 6962 splits a tree. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const odd = (n: number) => n % 2 === 1;
const half = (n: number) => Math.floor(n / 2);

export function equalHashes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * The right edge of a tree being appended to: the roots of its complete
 * subtrees, largest first (a "compact range" [0, size)). Enough to keep
 * appending and to compute the root; not enough for proofs of old leaves.
 */
export class MerkleFrontier<H = Hash> {
  private readonly hasher: NodeHasher<H>;
  private nodes: H[];
  private count: number;

  constructor(hasher: NodeHasher<H>, size = 0, nodes: readonly H[] = []) {
    if (frontierShape(size).length !== nodes.length) {
      throw new RangeError(`a frontier for ${size} leaves has ${frontierShape(size).length} nodes, got ${nodes.length}`);
    }
    this.hasher = hasher;
    this.count = size;
    this.nodes = [...nodes];
  }

  get size(): number {
    return this.count;
  }

  /** The subtree roots, largest first. */
  get hashes(): readonly H[] {
    return this.nodes;
  }

  append(leafHash: H): void {
    let h = leafHash;
    // Every trailing 1 bit of the old size is a complete subtree of the new leaf's size to merge with.
    for (let s = this.count; odd(s); s = half(s)) h = this.hasher.node(this.nodes.pop()!, h);
    this.nodes.push(h);
    this.count++;
  }

  root(): H {
    if (this.nodes.length === 0) return this.hasher.emptyRoot();
    let h: H = this.nodes[this.nodes.length - 1]!;
    for (let i = this.nodes.length - 2; i >= 0; i--) h = this.hasher.node(this.nodes[i]!, h);
    return h;
  }

  clone(): MerkleFrontier<H> {
    return new MerkleFrontier<H>(this.hasher, this.count, this.nodes);
  }
}

/**
 * The compact range [begin, end) built leaf by leaf from `begin`: the hashes
 * of compactRangeShape(begin, end), left to right, in O(log n) memory. With a
 * MerkleFrontier (the range from 0) it is what a proof about a few leaves of
 * a long log needs, without holding the log's tree.
 */
export class CompactRange<H = Hash> {
  private readonly hasher: NodeHasher<H>;
  private readonly nodes: Array<{ start: number; size: number; hash: H }> = [];
  readonly begin: number;
  private next: number;

  constructor(hasher: NodeHasher<H>, begin: number) {
    if (!(Number.isSafeInteger(begin) && begin >= 0)) throw new RangeError(`bad range start ${begin}`);
    this.hasher = hasher;
    this.begin = begin;
    this.next = begin;
  }

  get end(): number {
    return this.next;
  }

  append(leafHash: H): void {
    let node = { start: this.next, size: 1, hash: leafHash };
    this.next++;
    // Merge with the node on the left while the two are siblings (equal size, the left one aligned to their parent).
    for (let left = this.nodes.at(-1); left && left.size === node.size && left.start % (2 * node.size) === 0; left = this.nodes.at(-1)) {
      this.nodes.pop();
      node = { start: left.start, size: left.size * 2, hash: this.hasher.node(left.hash, node.hash) };
    }
    this.nodes.push(node);
  }

  /** The subtree hashes, left to right (compactRangeShape(begin, end) order). */
  get hashes(): H[] {
    return this.nodes.map((n) => n.hash);
  }
}

/** [start, size] of each subtree in the frontier of a tree of `size` leaves, largest first. */
export function frontierShape(size: number): Array<[start: number, size: number]> {
  return compactRangeShape(0, size);
}

/**
 * The aligned complete subtrees that exactly cover [begin, end), left to right.
 * Each one is a node of every RFC 6962 tree of at least `end` leaves.
 */
export function compactRangeShape(begin: number, end: number): Array<[start: number, size: number]> {
  if (!(Number.isSafeInteger(begin) && Number.isSafeInteger(end) && begin >= 0 && begin <= end)) {
    throw new RangeError(`bad range [${begin}, ${end})`);
  }
  const out: Array<[number, number]> = [];
  let at = begin;
  while (at < end) {
    let size = 1;
    while (at % (size * 2) === 0 && at + size * 2 <= end) size *= 2;
    out.push([at, size]);
    at += size;
  }
  return out;
}

/** MTH(D[start:end]) of some tree: the one input every proof generator needs. */
export type SubtreeHash = (start: number, end: number) => Hash;

/** RFC 9162 §2.1.3.1 PATH(m, D[n]). */
export function inclusionProof(index: number, size: number, mth: SubtreeHash): Hash[] {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  const path = (m: number, start: number, end: number): Hash[] => {
    const n = end - start;
    if (n === 1) return [];
    const k = splitPoint(n);
    return m < k
      ? [...path(m, start, start + k), mth(start + k, end)]
      : [...path(m - k, start + k, end), mth(start, start + k)];
  };
  return path(index, 0, size);
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]). */
export function consistencyProof(oldSize: number, newSize: number, mth: SubtreeHash): Hash[] {
  if (!(oldSize >= 0 && oldSize <= newSize)) throw new RangeError(`no consistency proof from ${oldSize} to ${newSize}`);
  if (oldSize === 0 || oldSize === newSize) return [];
  const sub = (m: number, start: number, end: number, complete: boolean): Hash[] => {
    const n = end - start;
    if (m === n) return complete ? [] : [mth(start, end)];
    const k = splitPoint(n);
    return m <= k
      ? [...sub(m, start, start + k, complete), mth(start + k, end)]
      : [...sub(m - k, start + k, end, false), mth(start, start + k)];
  };
  return sub(oldSize, 0, newSize, true);
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof implies, or undefined if the proof has the wrong shape. */
export function rootFromInclusionProof(hasher: MerkleHasher, index: number, size: number, leafHash: Hash, proof: readonly Hash[]): Hash | undefined {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return undefined;
  if (leafHash.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (odd(fn) || fn === sn) {
      r = hasher.node(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = hasher.node(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : undefined;
}

export function verifyInclusion(hasher: MerkleHasher, index: number, size: number, leafHash: Hash, proof: readonly Hash[], root: Hash): boolean {
  const got = rootFromInclusionProof(hasher, index, size, leafHash, proof);
  return got !== undefined && root.length === HASH_SIZE && equalHashes(got, root);
}

/** RFC 9162 §2.1.4.2. */
export function verifyConsistency(hasher: MerkleHasher, oldSize: number, newSize: number, oldRoot: Hash, newRoot: Hash, proof: readonly Hash[]): boolean {
  if (!(Number.isSafeInteger(oldSize) && Number.isSafeInteger(newSize) && oldSize >= 0 && oldSize <= newSize)) return false;
  if (oldSize === newSize) return proof.length === 0 && equalHashes(oldRoot, newRoot);
  if (oldSize === 0) return proof.length === 0;
  if (proof.length === 0 || proof.some((p) => p.length !== HASH_SIZE) || oldRoot.length !== HASH_SIZE || newRoot.length !== HASH_SIZE) return false;
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = hasher.node(c, fr);
      sr = hasher.node(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = hasher.node(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalHashes(fr, oldRoot) && equalHashes(sr, newRoot);
}

/**
 * MTH(D[start:end]) from whatever subset of nodes is known: `known(start, size)`
 * answers for aligned subtrees (leaves are size 1). Throws if a needed node is missing.
 */
export function subtreeHashFrom(hasher: MerkleHasher, known: (start: number, size: number) => Hash | undefined): SubtreeHash {
  const mth = (start: number, end: number): Hash => {
    const n = end - start;
    if (n <= 0) throw new RangeError(`empty subtree [${start}, ${end})`);
    if (isPowerOfTwo(n) && start % n === 0) {
      const h = known(start, n);
      if (h !== undefined) return h;
      if (n === 1) throw new RangeError(`leaf ${start} is missing from the proof`);
    }
    const k = splitPoint(n);
    return hasher.node(mth(start, start + k), mth(start + k, end));
  };
  return mth;
}

/**
 * A whole tree kept in memory (every complete subtree, 2n hashes in flat
 * buffers): for generating proofs. The writer uses MerkleFrontier instead.
 */
export class MerkleTree {
  private readonly hasher: MerkleHasher;
  /** levels[h] holds the roots of the complete subtrees of 2^h leaves, in order. */
  private readonly levels: Array<{ buf: Uint8Array; count: number }> = [];
  private count = 0;

  constructor(hasher: MerkleHasher) {
    this.hasher = hasher;
  }

  get size(): number {
    return this.count;
  }

  append(leafHash: Hash): void {
    let h = leafHash;
    let level = 0;
    for (;;) {
      const lv = (this.levels[level] ??= { buf: new Uint8Array(HASH_SIZE * 16), count: 0 });
      if ((lv.count + 1) * HASH_SIZE > lv.buf.length) {
        const bigger = new Uint8Array(lv.buf.length * 2);
        bigger.set(lv.buf);
        lv.buf = bigger;
      }
      lv.buf.set(h, lv.count * HASH_SIZE);
      lv.count++;
      if (lv.count % 2 === 1) break;
      h = this.hasher.node(this.nodeAt(level, lv.count - 2), this.nodeAt(level, lv.count - 1));
      level++;
    }
    this.count++;
  }

  private nodeAt(level: number, index: number): Hash {
    return this.levels[level]!.buf.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  leafHash(index: number): Hash {
    if (!(index >= 0 && index < this.count)) throw new RangeError(`no leaf ${index} in a tree of ${this.count}`);
    return this.nodeAt(0, index).slice();
  }

  /** MTH(D[start:end]) over the leaves appended so far. */
  readonly subtreeHash: SubtreeHash = (start, end) => {
    if (!(start >= 0 && start < end && end <= this.count)) throw new RangeError(`no subtree [${start}, ${end}) in a tree of ${this.count}`);
    return subtreeHashFrom(this.hasher, (s, n) => {
      const level = Math.round(Math.log2(n));
      return this.nodeAt(level, s / n).slice();
    })(start, end);
  };

  /** The root of the first `size` leaves (default: all). */
  root(size = this.count): Hash {
    if (size === 0) return this.hasher.emptyRoot();
    return this.subtreeHash(0, size);
  }

  inclusionProof(index: number, size = this.count): Hash[] {
    if (size > this.count) throw new RangeError(`the tree has ${this.count} leaves, not ${size}`);
    return inclusionProof(index, size, this.subtreeHash);
  }

  consistencyProof(oldSize: number, newSize = this.count): Hash[] {
    if (newSize > this.count) throw new RangeError(`the tree has ${this.count} leaves, not ${newSize}`);
    return consistencyProof(oldSize, newSize, this.subtreeHash);
  }

  /** Hashes of the aligned subtrees covering [begin, end) (see compactRangeShape). */
  compactRange(begin: number, end: number): Hash[] {
    return compactRangeShape(begin, end).map(([s, n]) => this.subtreeHash(s, s + n));
  }

  frontier(size = this.count): MerkleFrontier {
    return new MerkleFrontier(this.hasher, size, this.compactRange(0, size));
  }
}

/**
 * The root of a tree of `size` leaves, given the leaves [begin, end) and the
 * compact ranges of [0, begin) and [end, size): proves a contiguous run of
 * records belongs to a signed tree without shipping the rest of the log.
 */
export function rootFromRange(hasher: MerkleHasher, size: number, begin: number, leaves: readonly Hash[], left: readonly Hash[], right: readonly Hash[]): Hash {
  return subtreeHashFromRange(hasher, size, begin, leaves, left, right)(0, size);
}

/**
 * MTH(D[start:end]) of a tree of `size` leaves for every subtree made of the
 * leaves [begin, end) and the compact ranges of [0, begin) and [end, size):
 * its root (rootFromRange), and the audit path of a leaf given with the
 * compact ranges either side of it (an inclusion proof without the tree).
 */
export function subtreeHashFromRange(hasher: MerkleHasher, size: number, begin: number, leaves: readonly Hash[], left: readonly Hash[], right: readonly Hash[]): SubtreeHash {
  const end = begin + leaves.length;
  if (!(begin >= 0 && end <= size && leaves.length > 0)) throw new RangeError(`bad range [${begin}, ${end}) of ${size}`);
  const leftShape = compactRangeShape(0, begin);
  const rightShape = compactRangeShape(end, size);
  if (left.length !== leftShape.length || right.length !== rightShape.length) {
    throw new RangeError(`a range proof for [${begin}, ${end}) of ${size} needs ${leftShape.length} + ${rightShape.length} nodes, got ${left.length} + ${right.length}`);
  }
  const known = new Map<string, Hash>();
  leftShape.forEach(([s, n], i) => known.set(`${s}/${n}`, left[i]!));
  rightShape.forEach(([s, n], i) => known.set(`${s}/${n}`, right[i]!));
  leaves.forEach((h, i) => known.set(`${begin + i}/1`, h));
  return subtreeHashFrom(hasher, (s, n) => known.get(`${s}/${n}`));
}
