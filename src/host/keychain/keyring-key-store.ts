// The audit signing key in the OS keychain, through @napi-rs/keyring (the
// maintained keytar-compatible binding): Secret Service on Linux (pinned: the
// kernel keyring it would otherwise fall back to does not survive a reboot),
// the login Keychain on macOS, Credential Manager on Windows.
//
// The key is generated once per install and stored as Go-note signer text
// ("PRIVATE+KEY+name+id+base64"). It is read into the host process only.
import { AsyncEntry, type EntryOptions } from '@napi-rs/keyring';
import { KeyStoreUnavailableError, newAuditKeyName, type KeyStore } from './key-store.ts';
import { NoteSigningKey } from './note-key.ts';

export const KEYCHAIN_SERVICE = 'dev.tether.audit';
export const AUDIT_KEY_ACCOUNT = 'audit-signing-key';

export interface KeyringKeyStoreOptions {
  readonly service?: string;
  readonly account?: string;
  /** How long to wait for the keychain (a desktop unlock prompt waits for the user). Default 2 minutes. */
  readonly timeoutMs?: number;
}

function entryOptions(): EntryOptions | undefined {
  return process.platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined;
}

function keychainName(): string {
  if (process.platform === 'darwin') return 'the macOS login keychain';
  if (process.platform === 'win32') return 'the Windows Credential Manager';
  return 'the OS keychain (Secret Service, e.g. gnome-keyring)';
}

function unavailable(what: string, e: unknown): KeyStoreUnavailableError {
  const msg = e instanceof Error ? e.message : String(e);
  return new KeyStoreUnavailableError(`${what}: ${msg.replace(/\s+/g, ' ').trim()}`, { cause: e });
}

async function withEntry<T>(service: string, account: string, timeoutMs: number, what: string, fn: (entry: AsyncEntry, signal: AbortSignal) => Promise<T>): Promise<T> {
  let entry: AsyncEntry;
  try {
    entry = new AsyncEntry(service, account, entryOptions());
  } catch (e) {
    throw unavailable(`${keychainName()} cannot be reached (${what})`, e);
  }
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return await fn(entry, signal);
  } catch (e) {
    if (e instanceof KeyStoreUnavailableError) throw e;
    if (signal.aborted) throw new KeyStoreUnavailableError(`${keychainName()} did not answer within ${Math.round(timeoutMs / 1000)} s (${what}); is it locked and waiting for a password?`);
    throw unavailable(`${keychainName()} refused ${what}`, e);
  }
}

export class KeyringKeyStore implements KeyStore {
  readonly description = keychainName();
  private readonly service: string;
  private readonly account: string;
  private readonly timeoutMs: number;

  constructor(opts: KeyringKeyStoreOptions = {}) {
    this.service = opts.service ?? KEYCHAIN_SERVICE;
    this.account = opts.account ?? AUDIT_KEY_ACCOUNT;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async loadSigningKey(): Promise<NoteSigningKey> {
    return withEntry(this.service, this.account, this.timeoutMs, 'reading the audit signing key', async (entry, signal) => {
      const text = await entry.getPassword(signal);
      if (text !== null && text !== undefined) {
        try {
          return NoteSigningKey.fromSignerKeyText(text);
        } catch (e) {
          throw new KeyStoreUnavailableError(
            `the audit signing key stored in ${this.description} (service ${this.service}, account ${this.account}) is malformed (${(e as Error).message}); ` +
              'remove that entry to let Tether generate a new key (the audit log then starts a new chain)',
            { cause: e },
          );
        }
      }
      const key = NoteSigningKey.generate(newAuditKeyName());
      await entry.setPassword(key.signerKeyText(), signal);
      // Read back: a store that silently drops writes must not leave us signing with a key nobody kept.
      if ((await entry.getPassword(signal)) !== key.signerKeyText()) throw new KeyStoreUnavailableError(`${this.description} did not keep the new audit signing key`);
      return key;
    });
  }

  async existingVerifierKey(): Promise<string | undefined> {
    const text = await withEntry(this.service, this.account, this.timeoutMs, 'reading the audit signing key', (entry, signal) => entry.getPassword(signal));
    return text ? NoteSigningKey.fromSignerKeyText(text).verifierKey : undefined;
  }

  async replaceSigningKey(next: NoteSigningKey): Promise<void> {
    await withEntry(this.service, this.account, this.timeoutMs, 'storing the new audit signing key', async (entry, signal) => {
      await entry.setPassword(next.signerKeyText(), signal);
      if ((await entry.getPassword(signal)) !== next.signerKeyText()) throw new KeyStoreUnavailableError(`${this.description} did not keep the new audit signing key`);
    });
  }
}

/**
 * A secret (e.g. the SIEM collector token) from the OS keychain. Rejects with
 * KeyStoreUnavailableError when the keychain is unavailable or has no such entry.
 */
export async function readKeychainSecret(service: string, account: string, timeoutMs = 120_000): Promise<string> {
  const secret = await withEntry(service, account, timeoutMs, `reading ${service}/${account}`, (entry, signal) => entry.getPassword(signal));
  if (secret === null || secret === undefined || secret === '') {
    throw new KeyStoreUnavailableError(`no secret for service ${service}, account ${account} in ${keychainName()}; store it there first`);
  }
  return secret;
}
