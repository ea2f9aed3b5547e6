// Lines prepared elsewhere (a worker) must give the verifier exactly what it
// would compute itself: line ends, leaf hashes and heads, across chunk edges.
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/common/canonical-json.ts';
import { leafHexOfBytes } from '../../../src/host/audit/hashing.ts';
import { HEAD_COMPACT, HEAD_REFUSED, HEAD_RESCAN, PreparedSegment, prepareLines } from '../../../src/host/audit/prepared-lines.ts';
import { scanRecordHead } from '../../../src/host/audit/record-head.ts';

function segment(): Buffer {
  const lines: string[] = [];
  let prev = '';
  const add = (line: string) => {
    lines.push(line);
    prev = leafHexOfBytes(Buffer.from(line));
  };
  for (let i = 0; i < 60; i++) {
    const base = { v: 1, seq: i, time: 't', session: 's', type: i % 2 ? 'decision' : 'outcome', prev };
    switch (i % 10) {
      case 3: add(canonicalJson({ ...base, unsigned: true })); break;
      case 4: add(canonicalJson({ ...base, unsigned: false })); break; // rescan: unsigned not true/absent
      case 5: add(canonicalJson({ ...base, prev: prev.toUpperCase() })); break; // rescan: not lowercase hex
      case 6: add(canonicalJson({ ...base, type: 'custom.kind' })); break; // rescan: unknown type
      case 7: add('{"v":1,"seq":' + i + ',not json'); break; // refused
      case 8: add(canonicalJson({ ...base, prev: 'f'.repeat(64), seq: 1.5, v: 1 })); break; // prev not the previous leaf
      case 9: add(canonicalJson({ ...base, time: 5, session: null, seq: 'x' })); break; // rescan: seq not a number
      default: add(canonicalJson(base));
    }
  }
  return Buffer.from(lines.map((l) => l + '\n').join(''));
}

/** What the verifier computes on its own thread, line by line. */
function direct(bytes: Buffer) {
  const out = [];
  let prev = '';
  for (let start = 0; start < bytes.length; ) {
    const nl = bytes.indexOf(10, start);
    out.push({ nl, leaf: leafHexOfBytes(bytes.subarray(start, nl)), head: scanRecordHead(bytes, start, nl, prev), start });
    prev = out.at(-1)!.leaf;
    start = nl + 1;
  }
  return out;
}

function chunked(bytes: Buffer, cuts: number[]) {
  const edges = [0, ...cuts.map((c) => bytes.indexOf(10, c) + 1), bytes.length].filter((e, i, a) => i === 0 || e > a[i - 1]!);
  return edges.slice(1).map((end, i) => prepareLines(bytes, edges[i]!, end));
}

describe('prepared lines', () => {
  it('give every line the end, leaf hash and head the verifier computes itself, whatever the chunking', () => {
    const bytes = segment();
    const want = direct(bytes);
    for (const cuts of [[], [0], [500, 1500, 1501, 4000], Array.from({ length: 40 }, (_, i) => i * 97)]) {
      const p = new PreparedSegment(bytes, chunked(bytes, cuts));
      let prev = '';
      for (const w of want) {
        expect(p.nextLine()).toBe(w.nl);
        expect(p.leaf()).toBe(w.leaf);
        expect(p.head(w.start, w.nl, prev)).toEqual(w.head);
        prev = w.leaf;
      }
      expect(p.nextLine()).toBe(-1);
    }
  });

  it('carry usual heads compactly and hand unusual ones back (scanned again or parsed whole)', () => {
    const c = prepareLines(segment(), 0, segment().length);
    const kinds = Array.from(c.status.subarray(0, 10));
    expect(kinds).toEqual([HEAD_COMPACT, HEAD_COMPACT, HEAD_COMPACT, HEAD_COMPACT, HEAD_RESCAN, HEAD_RESCAN, HEAD_RESCAN, HEAD_REFUSED, HEAD_COMPACT, HEAD_RESCAN]);
  });

  it('refuse chunks that do not cover the segment', () => {
    const bytes = segment();
    const [a, b] = chunked(bytes, [1000]);
    expect(() => new PreparedSegment(bytes, [b!])).toThrow(/in order/);
    expect(() => new PreparedSegment(bytes, [a!])).toThrow(/end at/);
  });
});
