// Where the audit signing key lives. One interface, several homes: the OS
// keychain (KeyringKeyStore), Electron safeStorage in the desktop app (wired by
// the main process), or a key handed to the process (StaticKeyStore: tests and
// headless machines whose key comes from a secret manager).
//
// The private key exists only in the host process; nothing here ever sends it
// to the agent or writes it anywhere but the store itself.
import type { NoteSigningKey } from './note-key.ts';

export class KeyStoreUnavailableError extends Error {
  override readonly name = 'KeyStoreUnavailableError';
}

export interface KeyStore {
  /** Where keys are kept, for messages ("the OS keychain (Secret Service)"). */
  readonly description: string;
  /**
   * The install's audit signing key, generated and stored on first use.
   * Rejects with KeyStoreUnavailableError when the store is missing, locked or refuses access.
   */
  loadSigningKey(): Promise<NoteSigningKey>;
  /** Stores `next` in place of the current key (key rotation). */
  replaceSigningKey(next: NoteSigningKey): Promise<void>;
  /** The stored key's public half, without generating one; undefined when none is stored. */
  existingVerifierKey(): Promise<string | undefined>;
}

/** A key name for a new install: unique, and says what it signs. */
export function newAuditKeyName(): string {
  const rand = crypto.getRandomValues(new Uint8Array(4));
  return `tether-audit-${Buffer.from(rand).toString('hex')}`;
}
