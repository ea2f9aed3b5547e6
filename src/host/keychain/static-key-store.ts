// A KeyStore over a key the process was given (from a secret manager on a
// headless machine, or by a test). It keeps the key in memory only: it is not
// the OS keychain and says so in its description.
import { KeyStoreUnavailableError, type KeyStore } from './key-store.ts';
import { NoteSigningKey } from './note-key.ts';

export class StaticKeyStore implements KeyStore {
  readonly description: string;
  private key: NoteSigningKey | undefined;

  /** `key` may be a NoteSigningKey or its "PRIVATE+KEY+…" text; undefined = a store that is unavailable. */
  constructor(key: NoteSigningKey | string | undefined, description = 'a signing key given to the process (not the OS keychain)') {
    this.key = typeof key === 'string' ? NoteSigningKey.fromSignerKeyText(key) : key;
    this.description = description;
  }

  async loadSigningKey(): Promise<NoteSigningKey> {
    if (!this.key) throw new KeyStoreUnavailableError(`no audit signing key in ${this.description}`);
    return this.key;
  }

  async existingVerifierKey(): Promise<string | undefined> {
    return this.key?.verifierKey;
  }

  async replaceSigningKey(next: NoteSigningKey): Promise<void> {
    this.key = next;
  }
}
