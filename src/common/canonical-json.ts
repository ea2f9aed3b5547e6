// RFC 8785 JSON Canonicalization Scheme (JCS). Numbers and strings are
// serialised as ECMAScript's JSON.stringify does (which JCS adopts); object
// members are sorted by UTF-16 code units. Refuses what JCS cannot represent:
// non-finite numbers, lone surrogates, undefined, functions, bigints.
//
// Hot path of the audit writer (every record): one pass, no intermediate
// arrays, strings with nothing to escape quoted without JSON.stringify, small
// key lists sorted in place, and quoted keys remembered (bounded).

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when JSON.stringify would only add quotes: no control character, quote, backslash or surrogate. */
function plain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

function str(s: string): string {
  if (plain(s)) return '"' + s + '"';
  if (LONE_SURROGATE.test(s)) throw new TypeError('canonical JSON: string contains a lone surrogate');
  return JSON.stringify(s);
}

const quotedKeys = new Map<string, string>();
const QUOTED_KEYS_MAX = 4096;

function key(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = str(k);
    if (quotedKeys.size < QUOTED_KEYS_MAX) quotedKeys.set(k, q);
  }
  return q;
}

/** Sorts by UTF-16 code units (what `<` on strings compares), as JCS requires. */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > k; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = k;
  }
  return keys;
}

export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} is not representable`);
      return JSON.stringify(value);
    case 'string':
      return str(value);
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const v: unknown = value[i];
          out += (i === 0 ? '' : ',') + canonicalJson(v === undefined ? null : v);
        }
        return out + ']';
      }
      const obj = value as Record<string, unknown>;
      const keys = sortKeys(Object.keys(obj));
      let out = '{';
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        out += (out.length === 1 ? '' : ',') + key(k) + ':' + canonicalJson(v);
      }
      return out + '}';
    }
    default:
      throw new TypeError(`canonical JSON: cannot serialise a ${typeof value}`);
  }
}
