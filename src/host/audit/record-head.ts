// The verifier's fast path: checks that one audit line is valid JSON holding
// an object and reads the few top-level members the verifier checks on every
// record, without building the whole record (JSON.parse was most of the
// verifier's time). Modified bytes anywhere else are caught by the hashes.
//
// Exactness: when this returns a head, JSON.parse of the same line (decoded
// as UTF-8) succeeds, yields an object, and yields exactly these values for
// these members (the last one wins, as in JSON.parse). Whenever that cannot be
// guaranteed cheaply — a top-level key with an escape, one of these members
// holding an object or array, malformed UTF-8, nesting deeper than 64 — it
// returns undefined and the caller parses the line in full. So a line is
// accepted or refused, with the same reason, as with JSON.parse alone.

/** What the verifier checks on every record; `v`, `seq`, `prev`, `type`, `unsigned` are undefined when absent. */
export interface RecordHead {
  readonly v: unknown;
  readonly seq: unknown;
  readonly prev: unknown;
  readonly type: unknown;
  readonly unsigned: unknown;
  readonly timeIsString: boolean;
  readonly sessionIsString: boolean;
}

/** The head of a record already parsed whole. */
export function headOf(r: Readonly<Record<string, unknown>>): RecordHead {
  return { v: r.v, seq: r.seq, prev: r.prev, type: r.type, unsigned: r.unsigned, timeIsString: typeof r.time === 'string', sessionIsString: typeof r.session === 'string' };
}

const MAX_DEPTH = 64;

const KIND_STRING = 1;
const KIND_NUMBER = 2;
const KIND_TRUE = 3;
const KIND_FALSE = 4;
const KIND_NULL = 5;
const KIND_CONTAINER = 6;

const F_V = 0;
const F_SEQ = 1;
const F_PREV = 2;
const F_TYPE = 3;
const F_TIME = 4;
const F_SESSION = 5;
const F_UNSIGNED = 6;
const FIELDS = 7;

// Per line (single-threaded): where each wanted member's value is.
const fStart = new Int32Array(FIELDS);
const fEnd = new Int32Array(FIELDS);
const fKind = new Uint8Array(FIELDS);
const fEscaped = new Uint8Array(FIELDS);
/** Set by scanString/scanValue: the kind of the value just scanned and whether a string held an escape. */
let lastKind = 0;
let lastEscaped = false;

/** Record types recognised without decoding (others are decoded). */
const KNOWN_TYPES = ['decision', 'outcome', 'session.start', 'session.end', 'agent.exit', 'protocol.violation', 'consent.disclosure', 'network.connection', 'log.start', 'log.sealed-tail', 'log.key-rotation'];

// Input already checked to be well-formed UTF-8; a leading U+FEFF is content, as for JSON.parse.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes that stand for themselves inside a string: printable ASCII but '"' and '\\'. */
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x80; c++) PLAIN[c] = c === 0x22 || c === 0x5c ? 0 : 1;

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
const isCont = (c: number) => c >= 0x80 && c <= 0xbf;

function skipSpace(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    i++;
  }
  return i;
}

/** Length of the well-formed UTF-8 sequence at i (non-ASCII lead byte), or 0. */
function utf8Sequence(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  const c1 = i + 1 < end ? b[i + 1]! : 0;
  if (c >= 0xc2 && c <= 0xdf) return isCont(c1) ? 2 : 0;
  const c2 = i + 2 < end ? b[i + 2]! : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf; // no UTF-16 surrogates
    return c1 >= lo && c1 <= hi && isCont(c2) ? 3 : 0;
  }
  const c3 = i + 3 < end ? b[i + 3]! : 0;
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return c1 >= lo && c1 <= hi && isCont(c2) && isCont(c3) ? 4 : 0;
  }
  return 0;
}

/** The string whose opening quote is at i: the index after its closing quote, or -1. */
function scanString(b: Uint8Array, i: number, end: number): number {
  i++;
  let esc = false;
  for (;;) {
    while (i < end && PLAIN[b[i]!] === 1) i++;
    if (i >= end) return -1;
    const c = b[i]!;
    if (c === 0x22) {
      lastEscaped = esc;
      return i + 1;
    } else if (c === 0x5c) {
      esc = true;
      const e = i + 1 < end ? b[i + 1]! : 0;
      if (e === 0x75) {
        if (i + 5 >= end || !isHex(b[i + 2]!) || !isHex(b[i + 3]!) || !isHex(b[i + 4]!) || !isHex(b[i + 5]!)) return -1;
        i += 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else {
        return -1;
      }
    } else if (c < 0x20) {
      return -1;
    } else {
      const n = utf8Sequence(b, i, end);
      if (n === 0) return -1;
      i += n;
    }
  }
}

function scanDigits(b: Uint8Array, i: number, end: number): number {
  while (i < end && isDigit(b[i]!)) i++;
  return i;
}

function scanNumber(b: Uint8Array, i: number, end: number): number {
  if (b[i] === 0x2d) i++;
  if (i >= end) return -1;
  if (b[i] === 0x30) i++;
  else if (b[i]! >= 0x31 && b[i]! <= 0x39) i = scanDigits(b, i + 1, end);
  else return -1;
  if (i < end && b[i] === 0x2e) {
    if (!(i + 1 < end && isDigit(b[i + 1]!))) return -1;
    i = scanDigits(b, i + 1, end);
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (!(i < end && isDigit(b[i]!))) return -1;
    i = scanDigits(b, i, end);
  }
  return i;
}

function scanWord(b: Uint8Array, i: number, end: number, word: string): number {
  if (i + word.length > end) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}

/** The value at i: the index after it, or -1; its kind in lastKind. */
function scanValue(b: Uint8Array, i: number, end: number, depth: number): number {
  if (i >= end) return -1;
  const c = b[i]!;
  if (c === 0x22) {
    lastKind = KIND_STRING;
    return scanString(b, i, end);
  }
  if (c === 0x7b || c === 0x5b) {
    const after = scanContainer(b, i, end, depth + 1);
    lastKind = KIND_CONTAINER;
    return after;
  }
  if (c === 0x2d || isDigit(c)) {
    lastKind = KIND_NUMBER;
    return scanNumber(b, i, end);
  }
  lastKind = c === 0x74 ? KIND_TRUE : c === 0x66 ? KIND_FALSE : KIND_NULL;
  return scanWord(b, i, end, c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null');
}

/** The object or array whose opening bracket is at i: the index after it, or -1. */
function scanContainer(b: Uint8Array, i: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  const object = b[i] === 0x7b;
  const close = object ? 0x7d : 0x5d;
  i = skipSpace(b, i + 1, end);
  if (i < end && b[i] === close) return i + 1;
  for (;;) {
    if (object) {
      if (i >= end || b[i] !== 0x22) return -1;
      i = scanString(b, i, end);
      if (i < 0) return -1;
      i = skipSpace(b, i, end);
      if (i >= end || b[i] !== 0x3a) return -1;
      i = skipSpace(b, i + 1, end);
    }
    i = scanValue(b, i, end, depth);
    if (i < 0) return -1;
    i = skipSpace(b, i, end);
    if (i >= end) return -1;
    const c = b[i++];
    if (c === close) return i;
    if (c !== 0x2c) return -1;
    i = skipSpace(b, i, end);
  }
}

/** Which wanted member the key bytes [s, e) name, or -1. */
function fieldOf(b: Uint8Array, s: number, e: number): number {
  switch (e - s) {
    case 1:
      return b[s] === 0x76 ? F_V : -1;
    case 3:
      return b[s] === 0x73 && b[s + 1] === 0x65 && b[s + 2] === 0x71 ? F_SEQ : -1;
    case 4:
      if (b[s] === 0x70) return b[s + 1] === 0x72 && b[s + 2] === 0x65 && b[s + 3] === 0x76 ? F_PREV : -1;
      if (b[s] !== 0x74) return -1;
      if (b[s + 1] === 0x79 && b[s + 2] === 0x70 && b[s + 3] === 0x65) return F_TYPE;
      return b[s + 1] === 0x69 && b[s + 2] === 0x6d && b[s + 3] === 0x65 ? F_TIME : -1;
    case 7:
      return sameBytes(b, s, e, 'session') ? F_SESSION : -1;
    case 8:
      return sameBytes(b, s, e, 'unsigned') ? F_UNSIGNED : -1;
    default:
      return -1;
  }
}

/** Bytes [s, e) are exactly the ASCII string `text`. */
function sameBytes(b: Uint8Array, s: number, e: number, text: string): boolean {
  if (e - s !== text.length) return false;
  for (let k = 0; k < text.length; k++) if (b[s + k] !== text.charCodeAt(k)) return false;
  return true;
}

/** The top-level object at i, noting where each wanted member's last value is: the index after it, or -1. */
function scanTop(b: Uint8Array, i: number, end: number): number {
  i = skipSpace(b, i + 1, end);
  if (i < end && b[i] === 0x7d) return i + 1;
  for (;;) {
    if (i >= end || b[i] !== 0x22) return -1;
    const keyStart = i + 1;
    i = scanString(b, i, end);
    if (i < 0 || lastEscaped) return -1; // an escaped key could spell a wanted name
    const field = fieldOf(b, keyStart, i - 1);
    i = skipSpace(b, i, end);
    if (i >= end || b[i] !== 0x3a) return -1;
    i = skipSpace(b, i + 1, end);
    const valueStart = i;
    i = scanValue(b, i, end, 1);
    if (i < 0) return -1;
    if (field >= 0) {
      fStart[field] = valueStart;
      fEnd[field] = i;
      fKind[field] = lastKind;
      fEscaped[field] = lastKind === KIND_STRING && lastEscaped ? 1 : 0;
    }
    i = skipSpace(b, i, end);
    if (i >= end) return -1;
    const c = b[i++];
    if (c === 0x7d) return i;
    if (c !== 0x2c) return -1;
    i = skipSpace(b, i, end);
  }
}

function stringValue(b: Uint8Array, field: number): string {
  const s = fStart[field]!;
  const e = fEnd[field]!;
  return fEscaped[field] ? (JSON.parse(decoder.decode(b.subarray(s, e))) as string) : decoder.decode(b.subarray(s + 1, e - 1));
}

function fieldValue(b: Uint8Array, field: number): unknown {
  switch (fKind[field]) {
    case 0:
      return undefined;
    case KIND_STRING:
      return stringValue(b, field);
    case KIND_NUMBER: {
      const s = fStart[field]!;
      const e = fEnd[field]!;
      // Plain integers up to 15 digits are exact doubles; anything else as JSON.parse reads it.
      if (e - s > 15 || (b[s] === 0x30 && e - s > 1)) return Number(decoder.decode(b.subarray(s, e)));
      let n = 0;
      for (let k = s; k < e; k++) {
        const c = b[k]!;
        if (!isDigit(c)) return Number(decoder.decode(b.subarray(s, e)));
        n = n * 10 + (c - 0x30);
      }
      return n;
    }
    case KIND_TRUE:
      return true;
    case KIND_FALSE:
      return false;
    default:
      return null;
  }
}

/** The value of string member `field` if its bytes (unescaped) are exactly `text`: then `text` itself, no decoding. */
function knownString(b: Uint8Array, field: number, text: string): boolean {
  return fKind[field] === KIND_STRING && !fEscaped[field] && sameBytes(b, fStart[field]! + 1, fEnd[field]! - 1, text);
}

/**
 * The head of the line bytes[start, end) (without its newline), or undefined
 * when the caller must JSON.parse the line itself (see the top of the file).
 * `expectedPrev` only saves decoding `prev` when it matches.
 */
export function scanRecordHead(b: Uint8Array, start: number, end: number, expectedPrev: string): RecordHead | undefined {
  fKind.fill(0);
  let i = skipSpace(b, start, end);
  if (i >= end || b[i] !== 0x7b) return undefined;
  i = scanTop(b, i, end);
  if (i < 0 || skipSpace(b, i, end) !== end) return undefined;
  for (let f = 0; f < FIELDS; f++) if (fKind[f] === KIND_CONTAINER) return undefined;
  let type: unknown;
  if (fKind[F_TYPE] === KIND_STRING && !fEscaped[F_TYPE]) {
    const s = fStart[F_TYPE]! + 1;
    const e = fEnd[F_TYPE]! - 1;
    for (const t of KNOWN_TYPES) if (sameBytes(b, s, e, t)) type = t;
  }
  return {
    v: fieldValue(b, F_V),
    seq: fieldValue(b, F_SEQ),
    prev: knownString(b, F_PREV, expectedPrev) ? expectedPrev : fieldValue(b, F_PREV),
    type: type ?? fieldValue(b, F_TYPE),
    unsigned: fieldValue(b, F_UNSIGNED),
    timeIsString: fKind[F_TIME] === KIND_STRING,
    sessionIsString: fKind[F_SESSION] === KIND_STRING,
  };
}
