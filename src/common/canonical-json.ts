// RFC 8785 JSON Canonicalization Scheme (JCS). Numbers and strings are
// serialised as ECMAScript's JSON.stringify does (which JCS adopts); object
// members are sorted by UTF-16 code units. Refuses what JCS cannot represent:
// non-finite numbers, lone surrogates, undefined, functions, bigints.

function str(s: string): string {
  if (!s.isWellFormed()) throw new TypeError('canonical JSON: string contains a lone surrogate');
  return JSON.stringify(s);
}

// Loops and string appends rather than map/join: this runs for every audit record.
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
      let out = '{';
      for (const k of Object.keys(obj).sort()) {
        const v = obj[k];
        if (v === undefined) continue;
        out += (out.length === 1 ? '' : ',') + str(k) + ':' + canonicalJson(v);
      }
      return out + '}';
    }
    default:
      throw new TypeError(`canonical JSON: cannot serialise a ${typeof value}`);
  }
}
