import { describe, expect, it } from 'vitest';
import { CanonicalJsonWriter, canonicalJson } from '../../src/common/canonical-json.ts';

describe('canonicalJson (RFC 8785)', () => {
  it('sorts members by UTF-16 code units, recursively, with no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
    // RFC 8785 §3.2.3 example ordering: code units, not code points or locale.
    expect(canonicalJson({ '\u20ac': 1, '\r': 2, '\ufb33': 3, '1': 4, '\u{1F600}': 5, '\u0080': 6, '\u00f6': 7 })).toBe(
      '{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\u{1F600}":5,"\ufb33":3}',
    );
  });

  it('serialises numbers as ECMAScript does (RFC 8785 §3.2.2.3 samples)', () => {
    expect(canonicalJson([1e21, 1e-7, 0.000001, -0, 333333333.3333333, 1e23, 9007199254740992])).toBe(
      '[1e+21,1e-7,0.000001,0,333333333.3333333,1e+23,9007199254740992]',
    );
  });

  it('escapes strings minimally', () => {
    expect(canonicalJson('\u0000\b\t\n\f\r"\\/\u001f\u007f')).toBe('"\\u0000\\b\\t\\n\\f\\r\\"\\\\/\\u001f\u007f"');
  });

  it.each([[NaN], [Infinity], ['\ud800'], [10n], [() => 1]])('refuses %s', (v) => {
    expect(() => canonicalJson(v)).toThrow(/canonical JSON/);
  });

  it('omits undefined members as JSON does', () => {
    expect(canonicalJson({ a: undefined, b: 2 })).toBe('{"b":2}');
  });

  it('sorts long member lists and keys outside the BMP, and quotes keys needing escapes, as JCS requires', () => {
    const keys = Array.from({ length: 40 }, (_, i) => String.fromCharCode(0x7a - (i % 26)) + String(i));
    const obj = Object.fromEntries(keys.map((k) => [k, k]));
    expect(canonicalJson(obj)).toBe(`{${[...keys].sort().map((k) => `"${k}":"${k}"`).join(',')}}`);
    expect(canonicalJson({ '\u{1F600}': 1, '\uffff': 2, 'a"b': 3, 'a\\b': 4, '\n': 5 })).toBe('{"\\n":5,"a\\"b":3,"a\\\\b":4,"\u{1F600}":1,"\uffff":2}');
  });

  it('matches a plain JCS reference (sort, then JSON.stringify each scalar) on 2,000 random values', () => {
    const reference = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map((x) => reference(x === undefined ? null : x)).join(',')}]`;
      if (v !== null && typeof v === 'object') {
        const o = v as Record<string, unknown>;
        return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${reference(o[k])}`).join(',')}}`;
      }
      return JSON.stringify(v);
    };
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const chars = ['a', 'Z', '0', ' ', '"', '\\', '\n', '\u0001', '\u007f', '\u00e9', '\u20ac', '\u{1F600}', '/', '\u2028'];
    const text = () => Array.from({ length: rnd(8) }, () => chars[rnd(chars.length)]).join('');
    const value = (depth: number): unknown => {
      switch (depth > 3 ? rnd(4) : rnd(7)) {
        case 0: return text();
        case 1: return [0, -0, 1.5, -1e-7, 1e21, 123456789012, 0.1 + 0.2][rnd(7)];
        case 2: return rnd(2) === 0;
        case 3: return null;
        case 4: return Array.from({ length: rnd(4) }, () => (rnd(5) === 0 ? undefined : value(depth + 1)));
        default: return Object.fromEntries(Array.from({ length: rnd(25) }, () => [text(), rnd(6) === 0 ? undefined : value(depth + 1)]));
      }
    };
    const w = new CanonicalJsonWriter(16);
    for (let i = 0; i < 2000; i++) {
      const v = value(0);
      const want = reference(v);
      expect(canonicalJson(v)).toBe(want);
      const before = w.length;
      w.write(v);
      w.byte(10);
      expect(Buffer.from(w.bytes.subarray(before)).toString('utf8')).toBe(want + '\n');
    }
  });

  it('writes the same bytes with CanonicalJsonWriter, refusing what canonicalJson refuses and writing nothing then', () => {
    const w = new CanonicalJsonWriter(4);
    w.write({ b: [1, 'é', '\u0000'], a: 'x"y' });
    expect(Buffer.from(w.bytes).toString('utf8')).toBe(canonicalJson({ b: [1, 'é', '\u0000'], a: 'x"y' }));
    const length = w.length;
    for (const bad of [{ a: 1, b: NaN }, { a: ['ok', '\ud800'] }, { a: 10n }, { a: () => 1 }]) {
      expect(() => w.write(bad)).toThrow(/canonical JSON/);
      expect(w.length).toBe(length);
    }
    w.truncate(3);
    expect(Buffer.from(w.bytes).toString('utf8')).toBe('{"a');
  });
});
