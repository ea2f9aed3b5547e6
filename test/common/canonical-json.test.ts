import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/common/canonical-json.ts';

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
});
