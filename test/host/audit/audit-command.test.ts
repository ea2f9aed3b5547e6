// `tether audit …` (src/cli/audit-command.ts) on real log directories and files.
// Lives under test/host/audit with the rest of the audit tests.
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/common/canonical-json.ts';
import { runAuditCommand, type AuditCommandIo } from '../../../src/cli/audit-command.ts';
import { AuditOutbox } from '../../../src/host/audit/audit-outbox.ts';
import { SHIP_TOKEN_ENV, sinkFor } from '../../../src/host/audit/ship-target.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';
import { LoopbackCollector } from './loopback-collector.ts';

const key = NoteSigningKey.generate('tether-audit-cli');
let dir: string;
let pubFile: string;
let lastCheckpoint = '';
const times: string[] = [];

async function run(args: string[], extra: Partial<AuditCommandIo> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runAuditCommand(args, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, keyStore: new StaticKeyStore(key), ...extra });
  return { code, out, err };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-cli-'));
  let t = Date.parse('2025-03-01T10:00:00.000Z');
  const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key), checkpointEvery: 20, now: () => new Date(t) });
  log.onDidCheckpoint((c) => (lastCheckpoint = c.note));
  for (let i = 0; i < 100; i++) {
    t += 60_000; // one record a minute
    times.push(new Date(t).toISOString());
    await log.append({ type: 'session.start', session: `s${i}`, ...(i === 50 ? { detail: { policyHashes: { 'default.cedar': createPolicyHash('permit(principal, action, resource);') } } } : {}) });
  }
  await log.close();
  pubFile = join(dir, '..', `${key.keyIdHex}.pub`);
  await writeFile(pubFile, key.verifierKey + '\n');
});

function createPolicyHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('tether audit', () => {
  it('ship: sends what the collector has not taken, says where it stands, and sends no record twice', async () => {
    const collector = new LoopbackCollector('cli-token', [key.verifier()]);
    await collector.start();
    process.env[SHIP_TOKEN_ENV] = 'cli-token';
    try {
      const copy = await mkdtemp(join(tmpdir(), 'tether-ship-cli-'));
      await cp(dir, copy, { recursive: true });
      const first = await run(['ship', copy, '--to', collector.url, '--timeout', '20']);
      expect(first.code).toBe(0);
      expect(first.out).toMatch(/: 101 records and \d+ checkpoints shipped now; next seq 101, 0 behind/);
      expect([...collector.seqs.keys()]).toHaveLength(101);
      const again = await run(['ship', copy, '--to', collector.url]);
      expect(again.out).toMatch(/: 0 records and \d+ checkpoints shipped now; next seq 101, 0 behind/);
      expect(collector.duplicates).toBe(0);

      // One shipper per collector and log: a second is refused while the first runs.
      const running = await AuditOutbox.start({ dir: copy, sink: sinkFor(collector.url) });
      const refused = await run(['ship', copy, '--to', collector.url]);
      await running.stop();
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(new RegExp(`shipping of ${copy} to http-127\\.0\\.0\\.1-\\d+-[0-9a-f]+ is in use by another Tether process \\(pid ${process.pid}\\)|is already open in this process`));
    } finally {
      delete process.env[SHIP_TOKEN_ENV];
      await collector.stop();
    }
  });

  it('ship: a collector that cannot be reached is exit 1 with the reason; a bad target is a usage error', async () => {
    const down = await run(['ship', dir, '--to', 'http://127.0.0.1:9/in', '--timeout', '0.5']);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/did not drain within 500 ms .*unreachable/);
    const bad = await run(['ship', dir, '--to', 'relp://siem.example.com:2514']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unencrypted; use relp\+tls/);
  });

  it('verify: exit 0 and a summary for an intact log', async () => {
    const r = await run(['verify', dir, '--pubkey', pubFile]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^OK: 101 records and \d+ checkpoints verified/);
  });

  it('verify: exit 1 naming the file, line, seq and reason of the first bad record', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'tether-cli-bad-'));
    await cp(dir, copy, { recursive: true });
    const seg = (await readdir(copy)).find((f) => f.startsWith('seg-'))!;
    const text = await readFile(join(copy, seg), 'utf8');
    await writeFile(join(copy, seg), text.replace('"session":"s41"', '"session":"s99"'));
    const r = await run(['verify', copy, '--pubkey', pubFile]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^FAIL: ${seg} line 44 \\(seq 43\\): prev does not match the hash of record 42: record 42 was altered`));
  });

  it('verify: detects a cut-off tail only with a later trusted checkpoint', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'tether-cli-cut-'));
    await cp(dir, copy, { recursive: true });
    const seg = (await readdir(copy)).find((f) => f.startsWith('seg-'))!;
    const lines = (await readFile(join(copy, seg), 'utf8')).split('\n').filter(Boolean);
    await writeFile(join(copy, seg), lines.slice(0, 81).join('\n') + '\n');
    const cps = (await readFile(join(copy, 'checkpoints.jsonl'), 'utf8')).split('\n').filter(Boolean);
    await writeFile(join(copy, 'checkpoints.jsonl'), cps.filter((l) => Number(JSON.parse(l).note.split('\n')[1]) <= 81).join('\n') + '\n');
    expect((await run(['verify', copy, '--pubkey', pubFile])).code).toBe(0);
    const trusted = join(copy, '..', 'trusted-checkpoint.txt');
    await writeFile(trusted, lastCheckpoint);
    const r = await run(['verify', copy, '--pubkey', pubFile, '--trusted-checkpoint', trusted]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/truncated: a signed checkpoint covers 101 records of chain 1 but the log holds only 81/);
  });

  it('verify: trusts the local keychain key when no --pubkey is given, and refuses without any key', async () => {
    expect((await run(['verify', dir])).code).toBe(0);
    const r = await run(['verify', dir], { keyStore: new StaticKeyStore(undefined) });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no --pubkey given.*tether audit pubkey/);
  });

  it('prove: prints an inclusion proof that verify-proof accepts, and rejects once the record is changed', async () => {
    const r = await run(['prove', dir, '37']);
    expect(r.code).toBe(0);
    const proof = JSON.parse(r.out) as { record: string; seq: number; treeSize: number };
    expect(proof.seq).toBe(37);
    const file = join(dir, '..', 'proof-37.json');
    await writeFile(file, r.out);
    const ok = await run(['verify-proof', file, '--pubkey', pubFile]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^OK: record 37 is leaf 37 of tether\.audit\/[0-9a-f]+ at size 101/);
    await writeFile(file, JSON.stringify({ ...proof, record: proof.record.replace('"s36"', '"sX"') }));
    const bad = await run(['verify-proof', file, '--pubkey', pubFile]);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/does not lead from the record to the signed root/);
  });

  it('export: writes one bundle for a time range that verifies elsewhere; any change to it is caught', async () => {
    const policy = join(dir, '..', 'default.cedar');
    await writeFile(policy, 'permit(principal, action, resource);');
    const bundle = join(dir, '..', 'evidence.json');
    const r = await run(['export', '--dir', dir, '--from', times[30]!, '--to', times[59]!, '--out', bundle, '--policy', policy]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/30 records \(seq 31\.\.60\), 1 policies, 1 public keys/);

    // "Another machine": only the bundle and the public key, no log directory.
    const elsewhere = await mkdtemp(join(tmpdir(), 'tether-elsewhere-'));
    await cp(bundle, join(elsewhere, 'evidence.json'));
    await cp(pubFile, join(elsewhere, 'key.pub'));
    await rm(join(dir, '..', 'evidence.json'));
    const v = await run(['verify', join(elsewhere, 'evidence.json'), '--pubkey', join(elsewhere, 'key.pub')]);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^OK: evidence bundle with 30 records \(seq 31\.\.60\)/);
    expect(v.out).toMatch(/policy default\.cedar sha256 [0-9a-f]{64} \(named by the records\)/);

    // Change one record; even with the manifest hash recomputed, the signed root does not match.
    const b = JSON.parse(await readFile(join(elsewhere, 'evidence.json'), 'utf8'));
    b.chains[0].records[5] = b.chains[0].records[5].replace('"s35"', '"sX"');
    await writeFile(join(elsewhere, 'naive.json'), JSON.stringify(b));
    expect((await run(['verify', join(elsewhere, 'naive.json'), '--pubkey', join(elsewhere, 'key.pub')])).out).toMatch(/does not match the hash in its manifest/);
    b.manifest.contentSha256 = createHash('sha256').update(canonicalJson({ chains: b.chains, keys: b.keys, policies: b.policies })).digest('hex');
    await writeFile(join(elsewhere, 'forged.json'), JSON.stringify(b));
    const f = await run(['verify', join(elsewhere, 'forged.json'), '--pubkey', join(elsewhere, 'key.pub')]);
    expect(f.code).toBe(1);
    expect(f.out).toMatch(/record seq 37 does not name the record before it|do not hash to the signed root/);
    // A consistent rewrite of the chain inside the bundle still fails against the signed root.
    b.chains[0].records[5] = b.chains[0].records[5].replace('"session":"sX"', '"session":"s35"');
    b.chains[0].records.splice(10, 1);
    b.manifest.records = 29;
    b.manifest.contentSha256 = createHash('sha256').update(canonicalJson({ chains: b.chains, keys: b.keys, policies: b.policies })).digest('hex');
    await writeFile(join(elsewhere, 'cut.json'), JSON.stringify(b));
    expect((await run(['verify', join(elsewhere, 'cut.json'), '--pubkey', join(elsewhere, 'key.pub')])).out).toMatch(/FAIL/);
    // And with another key the bundle is not trusted at all.
    await writeFile(join(elsewhere, 'other.pub'), NoteSigningKey.generate('other').verifierKey + '\n');
    expect((await run(['verify', join(elsewhere, 'evidence.json'), '--pubkey', join(elsewhere, 'other.pub')])).out).toMatch(/does not verify with the trusted keys/);
  });

  it('pubkey: prints the verifier key and its id', async () => {
    const r = await run(['pubkey']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(key.verifierKey + '\n');
    expect(r.err).toMatch(new RegExp(`key id ${key.keyIdHex}`));
  });

  it('exits 2 with usage on a bad command line', async () => {
    expect((await run(['verify'])).code).toBe(2);
    expect((await run(['frobnicate'])).err).toMatch(/unknown audit command frobnicate/);
    expect((await run(['export', '--from', 'yesterday-ish', '--to', 'now', '--out', '/tmp/x', '--dir', dir])).err).toMatch(/not a time/);
  });
});
