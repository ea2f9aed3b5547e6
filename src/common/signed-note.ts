// C2SP signed-note (https://c2sp.org/signed-note) and tlog-checkpoint
// (https://c2sp.org/tlog-checkpoint): text ending in a newline, a blank line,
// then one or more lines "— <key name> <base64(key ID ‖ signature)>".
// The key ID is SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]; the only key type
// here is Ed25519 (0x01).
//
// Pure: the caller supplies SHA-256 and the Ed25519 sign/verify (the host's
// keychain module does, with node:crypto). What this does not do: witness
// cosignatures (type 0x04), timestamped signatures, or any other key type —
// signatures by such keys are simply "unknown" and ignored, as the spec says.

import type { Sha256 } from './merkle.ts';

export const ED25519_KEY_TYPE = 0x01;
const SIG_PREFIX = '\u2014 ';
const MAX_SIGNATURES = 100;

export class NoteError extends Error {
  override readonly name = 'NoteError';
}

export interface NoteSignature {
  readonly name: string;
  /** Big-endian uint32 from the first four bytes of the signature blob. */
  readonly keyId: number;
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, ending in a newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(message: Uint8Array): Uint8Array;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

// --- encoding helpers (pure, no Buffer) ---

const utf8 = new TextEncoder();

export function encodeBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Standard base64 with padding; refuses anything that would not re-encode to the same text. */
export function decodeBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new NoteError(`not canonical base64: ${JSON.stringify(text.slice(0, 60))}`);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (encodeBase64(out) !== text) throw new NoteError(`not canonical base64: ${JSON.stringify(text.slice(0, 60))}`);
  return out;
}

export function encodeHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function decodeHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) throw new NoteError(`not lowercase hex: ${JSON.stringify(text.slice(0, 70))}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function keyIdHex(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/** A key name: non-empty, no whitespace, no '+'. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !hasControl(name, false);
}

/** True if `s` holds a character below U+0020 (other than newline when `newlineOk`). */
function hasControl(s: string, newlineOk: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && !(newlineOk && c === 0x0a)) return true;
  }
  return false;
}

// --- keys ---

export function computeKeyId(sha256: Sha256, name: string, type: number, publicKey: Uint8Array): number {
  const n = utf8.encode(name);
  const buf = new Uint8Array(n.length + 2 + publicKey.length);
  buf.set(n);
  buf[n.length] = 0x0a;
  buf[n.length + 1] = type;
  buf.set(publicKey, n.length + 2);
  const h = sha256(buf);
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

export interface Ed25519PublicKey {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}

/** "<name>+<hex key ID>+<base64(0x01 ‖ public key)>": how a verifier key is written down and shared. */
export function formatVerifierKey(key: Ed25519PublicKey): string {
  return `${key.name}+${keyIdHex(key.keyId)}+${encodeBase64(concat([ED25519_KEY_TYPE], key.publicKey))}`;
}

function splitKey(text: string, parts: number): string[] {
  // The base64 part may itself contain '+', so split only at the first parts-1 pluses.
  const out: string[] = [];
  let rest = text;
  for (let i = 0; i < parts - 1; i++) {
    const at = rest.indexOf('+');
    if (at < 0) throw new NoteError('malformed key: expected name+id+key');
    out.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  out.push(rest);
  return out;
}

function parseKeyParts(name: string, idHex: string, b64: string, what: string): { name: string; keyId: number; key: Uint8Array } {
  if (!isValidKeyName(name)) throw new NoteError(`malformed ${what}: invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw new NoteError(`malformed ${what}: the key ID must be 8 lowercase hex digits`);
  const raw = decodeBase64(b64);
  if (raw.length !== 33 || raw[0] !== ED25519_KEY_TYPE) throw new NoteError(`unsupported ${what}: only Ed25519 (type 0x01, 32 bytes) keys are accepted`);
  return { name, keyId: parseInt(idHex, 16) >>> 0, key: raw.subarray(1) };
}

export function parseVerifierKey(sha256: Sha256, vkey: string): Ed25519PublicKey {
  const [name, idHex, b64] = splitKey(vkey.trim(), 3) as [string, string, string];
  const { keyId, key } = parseKeyParts(name, idHex, b64, 'verifier key');
  if (computeKeyId(sha256, name, ED25519_KEY_TYPE, key) !== keyId) throw new NoteError(`verifier key ${name}: the key ID ${idHex} does not match the key`);
  return { name, keyId, publicKey: key };
}

export interface Ed25519SecretKey {
  readonly name: string;
  readonly keyId: number;
  /** The 32-byte Ed25519 seed. */
  readonly seed: Uint8Array;
}

/** "PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>" (the Go note package's signer key text). */
export function formatSignerKey(key: Ed25519SecretKey): string {
  return `PRIVATE+KEY+${key.name}+${keyIdHex(key.keyId)}+${encodeBase64(concat([ED25519_KEY_TYPE], key.seed))}`;
}

/** Parses a signer key; the key ID is checked by the caller once the public key is derived. */
export function parseSignerKey(skey: string): Ed25519SecretKey {
  const [p, k, name, idHex, b64] = splitKey(skey.trim(), 5) as [string, string, string, string, string];
  if (p !== 'PRIVATE' || k !== 'KEY') throw new NoteError('malformed signer key: expected PRIVATE+KEY+name+id+key');
  const { keyId, key } = parseKeyParts(name, idHex, b64, 'signer key');
  return { name, keyId, seed: key };
}

// --- notes ---

function checkText(text: string): void {
  if (text === '' || text === '\n' || !text.endsWith('\n')) throw new NoteError('note text must be non-empty and end with a newline');
  if (hasControl(text, true)) throw new NoteError('note text must not contain control characters other than newline');
  if (text.includes('\n\n')) throw new NoteError('note text must not contain a blank line');
}

export function parseNote(message: string): Note {
  if (hasControl(message, true)) throw new NoteError('signed note contains a control character other than newline');
  const split = message.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('signed note has no blank line before its signatures');
  const text = message.slice(0, split + 1);
  const sigText = message.slice(split + 2);
  if (!sigText.endsWith('\n') || sigText === '\n') throw new NoteError('signed note must end with signature lines, each ending in a newline');
  checkText(text);
  const lines = sigText.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteError(`signed note has more than ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line): NoteSignature => {
    if (!line.startsWith(SIG_PREFIX)) throw new NoteError(`malformed signature line: ${JSON.stringify(line.slice(0, 60))}`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) throw new NoteError(`malformed signature line: ${JSON.stringify(line.slice(0, 60))}`);
    const name = rest.slice(0, space);
    if (!isValidKeyName(name)) throw new NoteError(`malformed signature line: invalid key name ${JSON.stringify(name)}`);
    const blob = decodeBase64(rest.slice(space + 1));
    if (blob.length < 5) throw new NoteError(`malformed signature line for ${name}: too short`);
    const keyId = ((blob[0]! << 24) | (blob[1]! << 16) | (blob[2]! << 8) | blob[3]!) >>> 0;
    return { name, keyId, signature: blob.slice(4) };
  });
  return { text, signatures };
}

export function formatNote(note: Note): string {
  checkText(note.text);
  if (note.signatures.length === 0) throw new NoteError('a signed note needs at least one signature');
  const lines = note.signatures.map((s) => {
    const id = new Uint8Array([(s.keyId >>> 24) & 0xff, (s.keyId >>> 16) & 0xff, (s.keyId >>> 8) & 0xff, s.keyId & 0xff]);
    return `${SIG_PREFIX}${s.name} ${encodeBase64(concat(id, s.signature))}\n`;
  });
  return `${note.text}\n${lines.join('')}`;
}

/** Signs `text` with every signer, after any signatures it already carries. */
export function signNote(text: string, signers: readonly NoteSigner[], existing: readonly NoteSignature[] = []): string {
  checkText(text);
  const msg = utf8.encode(text);
  const signatures = [...existing];
  for (const s of signers) {
    if (!isValidKeyName(s.name)) throw new NoteError(`invalid key name ${JSON.stringify(s.name)}`);
    signatures.push({ name: s.name, keyId: s.keyId, signature: s.sign(msg) });
  }
  return formatNote({ text, signatures });
}

export interface OpenedNote {
  readonly text: string;
  /** Signatures that verified, in note order, with the verifier that checked each. */
  readonly verified: ReadonlyArray<NoteSignature & { readonly verifier: NoteVerifier }>;
  /** Signatures by keys the caller did not supply: ignored, as the spec requires. */
  readonly unknown: readonly NoteSignature[];
}

/**
 * Parses and verifies a note. Throws if a signature by a known key fails, or
 * if no known key signed it.
 */
export function openNote(message: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  const note = parseNote(message);
  const msg = utf8.encode(note.text);
  const verified: Array<NoteSignature & { verifier: NoteVerifier }> = [];
  const unknown: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const sig of note.signatures) {
    const v = verifiers.find((k) => k.name === sig.name && k.keyId === sig.keyId);
    if (!v) {
      unknown.push(sig);
      continue;
    }
    const id = `${sig.name}+${keyIdHex(sig.keyId)}`;
    if (seen.has(id)) throw new NoteError(`signed note carries two signatures by ${id}`);
    seen.add(id);
    if (!v.verify(msg, sig.signature)) throw new NoteError(`the signature by ${id} does not verify: the note was altered or forged`);
    verified.push({ ...sig, verifier: v });
  }
  if (verified.length === 0) {
    const names = note.signatures.map((s) => `${s.name}+${keyIdHex(s.keyId)}`).join(', ');
    throw new NoteError(`the note is not signed by any trusted key (signed by: ${names})`);
  }
  return { text: note.text, verified, unknown };
}

// --- checkpoints ---

export interface Checkpoint {
  /** Identifies the log; unique per log (here: per audit chain). */
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
  /** Extension lines after the root (opaque to the format). */
  readonly extensions: readonly string[];
}

export function formatCheckpoint(cp: Checkpoint): string {
  if (cp.origin === '' || hasControl(cp.origin, false)) throw new NoteError('checkpoint origin must be a non-empty single line');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new NoteError('checkpoint size must be a non-negative integer');
  if (cp.root.length !== 32) throw new NoteError('checkpoint root must be 32 bytes');
  for (const e of cp.extensions) if (e === '' || hasControl(e, false)) throw new NoteError('checkpoint extension lines must be non-empty single lines');
  return [cp.origin, String(cp.size), encodeBase64(cp.root), ...cp.extensions].join('\n') + '\n';
}

export function parseCheckpoint(text: string): Checkpoint {
  checkText(text);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new NoteError('a checkpoint needs an origin, a size and a root hash line');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin === '') throw new NoteError('checkpoint origin is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new NoteError(`checkpoint size ${JSON.stringify(sizeText)} is not a decimal number without leading zeros`);
  const root = decodeBase64(rootText);
  if (root.length !== 32) throw new NoteError('checkpoint root hash is not 32 bytes');
  return { origin, size: Number(sizeText), root, extensions };
}

function concat(a: ArrayLike<number>, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
