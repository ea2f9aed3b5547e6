// KeyringKeyStore against a REAL Secret Service: gnome-keyring on a private
// D-Bus session bus (see secret-service.ts). The locked case locks the real
// collection; the unavailable case runs in a child process with no bus.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/common/audit-record.ts';
import { verifyAuditDir } from '../../../src/host/audit/audit-verifier.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { KeyStoreUnavailableError } from '../../../src/host/keychain/key-store.ts';
import { AUDIT_KEY_ACCOUNT, KEYCHAIN_SERVICE, KeyringKeyStore, readKeychainSecret } from '../../../src/host/keychain/keyring-key-store.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { startSecretService, type SecretService } from './secret-service.ts';

const run = promisify(execFile);
let svc: SecretService;

beforeAll(async () => {
  svc = await startSecretService();
  process.env.DBUS_SESSION_BUS_ADDRESS = svc.address;
}, 30_000);
afterAll(async () => {
  await svc?.stop();
});

async function secretTool(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('secret-tool', args, { env: svc.env }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    child.stdin!.end(input ?? '');
  });
}

describe('KeyringKeyStore (real gnome-keyring Secret Service)', () => {
  it('generates the audit key once per install and returns the same key on every load', async () => {
    const a = await new KeyringKeyStore({ service: 'dev.tether.test-once' }).loadSigningKey();
    const b = await new KeyringKeyStore({ service: 'dev.tether.test-once' }).loadSigningKey();
    expect(b.verifierKey).toBe(a.verifierKey);
    // An independent Secret Service client sees the stored signer key.
    const stored = await secretTool(['lookup', 'service', 'dev.tether.test-once', 'username', AUDIT_KEY_ACCOUNT]);
    expect(stored.trim()).toBe(a.signerKeyText());
  });

  it('replaces the key on rotation', async () => {
    const store = new KeyringKeyStore({ service: 'dev.tether.test-rotate' });
    const first = await store.loadSigningKey();
    const next = NoteSigningKey.generate('tether-audit-next');
    await store.replaceSigningKey(next);
    const loaded = await store.loadSigningKey();
    expect(loaded.verifierKey).toBe(next.verifierKey);
    expect(loaded.verifierKey).not.toBe(first.verifierKey);
  });

  it('signs the audit log with the keychain key; the exported public key verifies it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-keyring-log-'));
    const keyStore = new KeyringKeyStore();
    const log = await SignedAuditLog.open({ dir, keyStore });
    await log.append({ type: 'session.start', session: 's1' });
    const pub = log.status.verifierKey!;
    await log.close();
    expect(pub).toBe((await keyStore.loadSigningKey()).verifierKey);
    expect(await readFile(join(dir, 'keys', (await readdir(join(dir, 'keys')))[0]!), 'utf8')).toBe(pub + '\n');
    expect((await verifyAuditDir(dir, { trustedKeys: [pub] })).ok).toBe(true);
    expect(await secretTool(['lookup', 'service', KEYCHAIN_SERVICE, 'username', AUDIT_KEY_ACCOUNT])).toMatch(/^PRIVATE\+KEY\+/);
  });

  it('reads a collector token stored in the keychain, and says so when there is none', async () => {
    await secretTool(['store', '--label=Tether SIEM token', 'service', 'dev.tether.siem', 'username', 'collector-token'], 's3cr3t-token');
    expect(await readKeychainSecret('dev.tether.siem', 'collector-token')).toBe('s3cr3t-token');
    await expect(readKeychainSecret('dev.tether.siem', 'nobody')).rejects.toThrow(/no secret for service dev\.tether\.siem, account nobody/);
  });

  it('refuses to start the log when the keychain is locked, saying how to fix it; runs unsigned only if policy allows', async () => {
    await svc.lock();
    const keyStore = new KeyringKeyStore({ timeoutMs: 10_000 });
    const err = await keyStore.loadSigningKey().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyStoreUnavailableError);
    expect(String(err)).toMatch(/Secret Service.*(prompt|locked)/i);
    const dir = await mkdtemp(join(tmpdir(), 'tether-keyring-locked-'));
    await expect(SignedAuditLog.open({ dir, keyStore })).rejects.toThrow(/cannot be signed because the OS keychain.*not available.*unlock your login keychain.*gnome-keyring-daemon --unlock/s);
    const log = await SignedAuditLog.open({ dir, keyStore, allowUnsigned: true });
    await log.append({ type: 'session.start', session: 's' });
    await log.close();
    const seg = (await readdir(dir)).find((f) => f.startsWith('seg-'))!;
    const records = (await readFile(join(dir, seg), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord);
    expect(records.map((r) => r.unsigned)).toEqual([true, true]);
  }, 30_000);

  it('refuses with a clear error when there is no Secret Service at all', async () => {
    const module = join(import.meta.dirname, '../../../src/host/keychain/keyring-key-store.ts');
    const script = `import { KeyringKeyStore } from ${JSON.stringify(module)};
try { await new KeyringKeyStore({ timeoutMs: 5000 }).loadSigningKey(); console.log('LOADED'); } catch (e) { console.log(e.name + ': ' + e.message); }`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { ...svc.env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' }, timeout: 20_000 });
    expect(stdout).toMatch(/^KeyStoreUnavailableError: the OS keychain \(Secret Service, e\.g\. gnome-keyring\) cannot be reached.*nonexistent/);
  }, 30_000);
});
