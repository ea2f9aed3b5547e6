// Ed25519 keys for C2SP signed notes, with node:crypto. The private half lives
// in a KeyObject held in a private field of the host process; it is written
// out only by `signerKeyText()`, for the key store to put in the OS keychain.
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import {
  ED25519_KEY_TYPE,
  computeKeyId,
  formatSignerKey,
  formatVerifierKey,
  isValidKeyName,
  keyIdHex,
  parseSignerKey,
  parseVerifierKey,
  type Ed25519PublicKey,
  type NoteSigner,
  type NoteVerifier,
} from '../../common/signed-note.ts';
import { sha256 } from '../audit/hashing.ts';

// DER prefixes that turn a raw 32-byte Ed25519 seed / public key into PKCS#8 / SPKI.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export class NoteSigningKey implements NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  readonly #privateKey: KeyObject;
  readonly #seed: Buffer;

  private constructor(name: string, seed: Buffer) {
    if (!isValidKeyName(name)) throw new Error(`invalid key name ${JSON.stringify(name)}: no spaces or '+'`);
    this.name = name;
    this.#seed = seed;
    this.#privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    this.publicKey = new Uint8Array(createPublicKey(this.#privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));
    this.keyId = computeKeyId(sha256, name, ED25519_KEY_TYPE, this.publicKey);
  }

  static generate(name: string): NoteSigningKey {
    return new NoteSigningKey(name, randomBytes(32));
  }

  /** From "PRIVATE+KEY+name+id+base64" text; refuses a key whose ID does not match. */
  static fromSignerKeyText(text: string): NoteSigningKey {
    const parsed = parseSignerKey(text);
    const key = new NoteSigningKey(parsed.name, Buffer.from(parsed.seed));
    if (key.keyId !== parsed.keyId) throw new Error(`signer key ${parsed.name}: the key ID ${keyIdHex(parsed.keyId)} does not match the key`);
    return key;
  }

  /** "name+id+base64": what verifiers and the SIEM are given. */
  get verifierKey(): string {
    return formatVerifierKey(this);
  }

  get keyIdHex(): string {
    return keyIdHex(this.keyId);
  }

  /** The secret, as text for the key store. Never log or send it. */
  signerKeyText(): string {
    return formatSignerKey({ name: this.name, keyId: this.keyId, seed: this.#seed });
  }

  sign(message: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, message, this.#privateKey));
  }

  verifier(): NoteVerifier {
    return noteVerifier(this.verifierKey);
  }

  toJSON(): { name: string; keyId: string; verifierKey: string } {
    return { name: this.name, keyId: this.keyIdHex, verifierKey: this.verifierKey };
  }
}

export interface ParsedNoteVerifier extends NoteVerifier, Ed25519PublicKey {
  readonly verifierKey: string;
}

/** A verifier for a "name+id+base64" Ed25519 key (the key ID is checked). */
export function noteVerifier(vkey: string): ParsedNoteVerifier {
  const key = parseVerifierKey(sha256, vkey);
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, key.publicKey]), format: 'der', type: 'spki' });
  return {
    ...key,
    verifierKey: formatVerifierKey(key),
    verify: (message, signature) => signature.length === 64 && verify(null, message, publicKey, signature),
  };
}
