// RFC 8785 JSON Canonicalization Scheme (JCS). Numbers and strings are
// serialised as ECMAScript's JSON.stringify does (which JCS adopts); object
// members are sorted by UTF-16 code units. Refuses what JCS cannot represent:
// non-finite numbers, lone surrogates, undefined, functions, bigints.
//
// Hot path of the audit writer (every record): one pass, no intermediate
// arrays, strings with nothing to escape quoted without JSON.stringify, small
// key lists sorted in place, and quoted keys remembered (bounded).

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
  if (!s.isWellFormed()) throw new TypeError('canonical JSON: string contains a lone surrogate');
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

const utf8 = new TextEncoder();
const quotedKeyBytes = new Map<string, Uint8Array>();

/**
 * The same canonical form, written as UTF-8 straight into a growing byte
 * buffer: what the audit writer uses for every record (no intermediate
 * strings to build, flatten and encode). Output is byte-for-byte
 * `canonicalJson` encoded as UTF-8 (tested on random values).
 */
export class CanonicalJsonWriter {
  private buf: Uint8Array;
  private at = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = new Uint8Array(initialBytes);
  }

  /** Bytes written so far (a view: valid until the next write or reset). */
  get bytes(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }

  get length(): number {
    return this.at;
  }

  /** Forgets everything from `length` on. */
  truncate(length: number): void {
    this.at = Math.min(this.at, length);
  }

  /** Appends one raw byte (a separator such as a newline). */
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.at++] = b;
  }

  /** Appends the canonical JSON of `value`; on refusal writes nothing and throws as canonicalJson does. */
  write(value: unknown): void {
    const start = this.at;
    try {
      this.value(value);
    } catch (e) {
      this.at = start;
      throw e;
    }
  }

  private ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.at + n, this.buf.length * 2));
    bigger.set(this.buf.subarray(0, this.at));
    this.buf = bigger;
  }

  private value(value: unknown): void {
    if (value === null) return this.ascii('null');
    switch (typeof value) {
      case 'boolean':
        return this.ascii(value ? 'true' : 'false');
      case 'number':
        if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} is not representable`);
        return this.ascii(JSON.stringify(value));
      case 'string':
        return this.string(value);
      case 'object': {
        if (Array.isArray(value)) {
          this.byte(0x5b);
          for (let i = 0; i < value.length; i++) {
            if (i > 0) this.byte(0x2c);
            const v: unknown = value[i];
            this.value(v === undefined ? null : v);
          }
          return this.byte(0x5d);
        }
        const obj = value as Record<string, unknown>;
        const keys = sortKeys(Object.keys(obj));
        this.byte(0x7b);
        let first = true;
        for (const k of keys) {
          const v = obj[k];
          if (v === undefined) continue;
          if (!first) this.byte(0x2c);
          first = false;
          this.key(k);
          this.byte(0x3a);
          this.value(v);
        }
        return this.byte(0x7d);
      }
      default:
        throw new TypeError(`canonical JSON: cannot serialise a ${typeof value}`);
    }
  }

  /** Text known to be ASCII (literals, numbers). */
  private ascii(s: string): void {
    this.ensure(s.length);
    const buf = this.buf;
    let at = this.at;
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
    this.at = at;
  }

  private string(s: string): void {
    this.ensure(s.length + 2);
    const buf = this.buf;
    let at = this.at;
    buf[at++] = 0x22;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x80) return this.escapedString(s);
      buf[at++] = c;
    }
    buf[at++] = 0x22;
    this.at = at;
  }

  /** Strings with escapes or non-ASCII text: as canonicalJson quotes them, then UTF-8. */
  private escapedString(s: string): void {
    const quoted = str(s);
    this.ensure(quoted.length * 3);
    this.at += utf8.encodeInto(quoted, this.buf.subarray(this.at)).written;
  }

  private key(k: string): void {
    let q = quotedKeyBytes.get(k);
    if (q === undefined) {
      q = utf8.encode(str(k));
      if (quotedKeyBytes.size < QUOTED_KEYS_MAX) quotedKeyBytes.set(k, q);
    }
    this.ensure(q.length);
    const buf = this.buf;
    let at = this.at;
    for (let i = 0; i < q.length; i++) buf[at++] = q[i]!;
    this.at = at;
  }
}
