// `tether audit …`: verify a log directory or an evidence bundle, prove one
// record, export an evidence bundle for a time range, print the public key,
// ship what a collector has not yet taken.
// Exit codes: 0 intact / done, 1 verification failed or the operation failed,
// 2 usage error.
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  exportEvidence,
  isBundleFile,
  proveRecord,
  readBundleFile,
  verifyEvidenceBundle,
  verifyInclusionProof,
  type InclusionProof,
  type PolicyText,
} from '../host/audit/audit-evidence.ts';
import { AuditOutbox } from '../host/audit/audit-outbox.ts';
import type { AuditSink } from '../host/audit/audit-sink.ts';
import { verifyAuditDir, type AuditVerifyReport } from '../host/audit/audit-verifier.ts';
import { sinkFor } from '../host/audit/ship-target.ts';
import type { KeyStore } from '../host/keychain/key-store.ts';
import { KeyringKeyStore } from '../host/keychain/keyring-key-store.ts';
import { noteVerifier } from '../host/keychain/note-key.ts';

export interface AuditCommandIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** The app's audit log directory, used when a command is given no directory (--dir overrides). */
  readonly auditDir?: string;
  /** For `audit pubkey`, and for `audit verify` without --pubkey. Default: the OS keychain. */
  readonly keyStore?: KeyStore;
  /** Policies in force, for `audit export` without --policy. */
  readonly policiesInForce?: () => Promise<PolicyText[]>;
  readonly now?: () => Date;
}

const USAGE = `usage:
  tether audit verify DIR|BUNDLE [--pubkey FILE]... [--trusted-checkpoint FILE] [--allow-unsigned] [--strict] [--json]
  tether audit prove [DIR] SEQ [--out FILE]
  tether audit verify-proof FILE [--pubkey FILE]...
  tether audit export --from TIME --to TIME --out FILE [--dir DIR] [--policy FILE]...
  tether audit pubkey [--out FILE] [--json]
  tether audit ship [DIR] --to URL [--timeout SECONDS]
TIME is an ISO 8601 time, "now", or relative like -24h, -7d, -30m.
Without --pubkey, the key in this machine's keychain is trusted.
`;

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string[]>;
  switches: Set<string>;
}

const VALUE_FLAGS = new Set(['--pubkey', '--trusted-checkpoint', '--out', '--from', '--to', '--dir', '--policy', '--timeout']);
const SWITCHES = new Set(['--allow-unsigned', '--strict', '--json']);

function parse(args: readonly string[]): Parsed {
  const out: Parsed = { positional: [], flags: new Map(), switches: new Set() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUE_FLAGS.has(a)) {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      out.flags.set(a, [...(out.flags.get(a) ?? []), v]);
    } else if (SWITCHES.has(a)) out.switches.add(a);
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else out.positional.push(a);
  }
  return out;
}

function one(p: Parsed, flag: string): string | undefined {
  const v = p.flags.get(flag);
  if (v && v.length > 1) throw new UsageError(`${flag} given more than once`);
  return v?.[0];
}

export function parseTime(text: string, now: Date): Date {
  if (text === 'now') return now;
  const rel = /^-(\d+)([smhd])$/.exec(text);
  if (rel) return new Date(now.getTime() - Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd']);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`not a time: ${text} (use ISO 8601, "now", or -24h / -7d)`);
  return new Date(t);
}

async function trustedKeys(p: Parsed, io: AuditCommandIo): Promise<{ keys: string[]; source: string }> {
  const files = p.flags.get('--pubkey') ?? [];
  if (files.length > 0) {
    const keys: string[] = [];
    for (const f of files) {
      const lines = (await readFile(f, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
      if (lines.length === 0) throw new UsageError(`${f} holds no public key`);
      for (const l of lines) {
        try {
          keys.push(noteVerifier(l).verifierKey);
        } catch (e) {
          throw new UsageError(`${f}: not a public key (${(e as Error).message})`);
        }
      }
    }
    return { keys, source: files.map((f) => basename(f)).join(', ') };
  }
  const store = io.keyStore ?? new KeyringKeyStore();
  const local = await store.existingVerifierKey().catch((e: Error) => {
    throw new UsageError(`no --pubkey given and ${store.description} cannot be read (${e.message}); pass --pubkey FILE (from \`tether audit pubkey\` on the machine that wrote the log)`);
  });
  if (!local) throw new UsageError(`no --pubkey given and ${store.description} holds no audit key; pass --pubkey FILE (from \`tether audit pubkey\` on the machine that wrote the log)`);
  return { keys: [local], source: store.description };
}

function dirArg(p: Parsed, io: AuditCommandIo, positional: string | undefined): string {
  const dir = one(p, '--dir') ?? positional ?? io.auditDir;
  if (!dir) throw new UsageError('no audit log directory given');
  return dir;
}

function describeReport(r: AuditVerifyReport, source: string): string {
  if (r.ok) {
    const chains = r.chains.map((c) => `chain ${c.chain} (${c.origin}): seq ${c.firstSeq}..${c.firstSeq + c.records - 1}, key ${c.key ? c.key.split('+').slice(0, 2).join('+') : 'UNSIGNED'}`);
    return `OK: ${r.records} records and ${r.checkpoints} checkpoints verified against ${source}; every record is covered by a signed checkpoint\n${chains.map((c) => `  ${c}\n`).join('')}`;
  }
  const p = r.problem!;
  const where = [p.file, p.line !== undefined ? `line ${p.line}` : '', p.seq !== undefined ? `(seq ${p.seq})` : ''].filter(Boolean).join(' ');
  return `FAIL: ${where}: ${p.reason}\n  (${r.records} records verified before this point)\n`;
}

async function verify(p: Parsed, io: AuditCommandIo): Promise<number> {
  const target = p.positional[0] ?? io.auditDir;
  if (!target || p.positional.length > 1) throw new UsageError('verify takes one directory or bundle');
  const { keys, source } = await trustedKeys(p, io);
  const json = p.switches.has('--json');
  if (await isBundleFile(target)) {
    const check = verifyEvidenceBundle(await readBundleFile(target), keys);
    if (json) io.stdout.write(JSON.stringify(check, null, 2) + '\n');
    else if (check.ok) {
      io.stdout.write(`OK: evidence bundle with ${check.records} records (seq ${check.firstSeq}..${check.lastSeq}) proven against checkpoints signed by ${check.keysUsed.join(', ')} (trusted: ${source})\n`);
      for (const pol of check.policies) io.stdout.write(`  policy ${pol.name} sha256 ${pol.sha256}${pol.namedByRecords ? ' (named by the records)' : ''}\n`);
    } else io.stdout.write(`FAIL: ${check.problem}\n`);
    for (const w of check.warnings) io.stderr.write(`warning: ${w}\n`);
    return check.ok ? 0 : 1;
  }
  const cpFile = one(p, '--trusted-checkpoint');
  const report = await verifyAuditDir(target, {
    trustedKeys: keys,
    ...(cpFile ? { trustedCheckpoint: await readFile(cpFile, 'utf8') } : {}),
    allowUnsigned: p.switches.has('--allow-unsigned'),
    strict: p.switches.has('--strict'),
  });
  io.stdout.write(json ? JSON.stringify(report, null, 2) + '\n' : describeReport(report, source));
  for (const w of report.warnings) io.stderr.write(`warning: ${w}\n`);
  return report.ok ? 0 : 1;
}

async function prove(p: Parsed, io: AuditCommandIo): Promise<number> {
  const [a, b] = p.positional;
  const seqText = b ?? a;
  const dir = dirArg(p, io, b === undefined ? undefined : a);
  if (seqText === undefined || !/^\d+$/.test(seqText) || p.positional.length > 2) throw new UsageError('prove takes [DIR] SEQ');
  const proof = await proveRecord(dir, Number(seqText));
  const text = JSON.stringify(proof, null, 2) + '\n';
  const out = one(p, '--out');
  if (out) await writeFile(out, text);
  else io.stdout.write(text);
  return 0;
}

async function verifyProof(p: Parsed, io: AuditCommandIo): Promise<number> {
  const file = p.positional[0];
  if (!file || p.positional.length > 1) throw new UsageError('verify-proof takes one FILE');
  const { keys } = await trustedKeys(p, io);
  const check = verifyInclusionProof(JSON.parse(await readFile(file, 'utf8')) as InclusionProof, keys);
  io.stdout.write(`${check.ok ? 'OK' : 'FAIL'}: ${check.reason}\n`);
  return check.ok ? 0 : 1;
}

async function exportBundle(p: Parsed, io: AuditCommandIo): Promise<number> {
  const now = io.now?.() ?? new Date();
  const fromText = one(p, '--from');
  const toText = one(p, '--to');
  const out = one(p, '--out');
  if (!fromText || !toText || !out) throw new UsageError('export needs --from, --to and --out');
  const dir = dirArg(p, io, p.positional[0]);
  const policyFiles = p.flags.get('--policy') ?? [];
  const policies = policyFiles.length > 0 ? await Promise.all(policyFiles.map(async (f) => ({ name: basename(f), text: await readFile(f, 'utf8') }))) : ((await io.policiesInForce?.()) ?? []);
  const { bundle, warnings } = await exportEvidence(dir, { from: parseTime(fromText, now), to: parseTime(toText, now), policies, now: () => now });
  await writeFile(out, JSON.stringify(bundle) + '\n', { mode: 0o600 });
  for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
  io.stdout.write(`wrote ${out}: ${bundle.manifest.records} records (seq ${bundle.manifest.firstSeq}..${bundle.manifest.lastSeq}), ${bundle.policies.length} policies, ${bundle.keys.length} public keys\n`);
  if (policies.length === 0) io.stderr.write('warning: no policies were included (pass --policy FILE for each policy in force)\n');
  return 0;
}

async function pubkey(p: Parsed, io: AuditCommandIo): Promise<number> {
  const store = io.keyStore ?? new KeyringKeyStore();
  const key = await store.loadSigningKey();
  const out = one(p, '--out');
  if (out) await writeFile(out, key.verifierKey + '\n');
  io.stdout.write(p.switches.has('--json') ? JSON.stringify(key.toJSON()) + '\n' : `${key.verifierKey}\n`);
  if (!p.switches.has('--json')) io.stderr.write(`key id ${key.keyIdHex} (${key.name}) from ${store.description}\n`);
  return 0;
}

/**
 * Ships everything the collector has not yet taken (its cursor lives in the
 * audit directory, shared with the host's own shipping), then says where it
 * stands. Exit 1 when it could not finish within --timeout (default 60 s).
 */
async function ship(p: Parsed, io: AuditCommandIo): Promise<number> {
  const to = one(p, '--to');
  if (!to) throw new UsageError('ship needs --to URL');
  let sink: AuditSink;
  try {
    sink = sinkFor(to);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const timeoutText = one(p, '--timeout') ?? '60';
  const timeoutS = Number(timeoutText);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not "${timeoutText}"`);
  const dir = dirArg(p, io, p.positional[0]);
  const outbox = await AuditOutbox.start({ dir, sink, onWarning: (m) => io.stderr.write(`warning: ${m}\n`) });
  let failure: Error | undefined;
  try {
    await outbox.drain(timeoutS * 1000);
  } catch (e) {
    failure = e as Error;
  } finally {
    await outbox.stop();
  }
  const m = outbox.metrics();
  io.stdout.write(`${m.sink}: ${m.shippedRecords} records and ${m.shippedCheckpoints} checkpoints shipped now; next seq ${m.nextSeq}, ${m.backlogRecords} behind\n`);
  if (failure) {
    io.stderr.write(`tether audit ship: ${failure.message}\n`);
    return 1;
  }
  return 0;
}

export async function runAuditCommand(args: string[], io: AuditCommandIo): Promise<number> {
  const rest = args[0] === 'audit' ? args.slice(1) : args;
  const [cmd, ...tail] = rest;
  try {
    const p = parse(tail);
    switch (cmd) {
      case 'verify':
        return await verify(p, io);
      case 'prove':
        return await prove(p, io);
      case 'verify-proof':
        return await verifyProof(p, io);
      case 'export':
        return await exportBundle(p, io);
      case 'pubkey':
        return await pubkey(p, io);
      case 'ship':
        return await ship(p, io);
      case undefined:
      case 'help':
      case '--help':
        io.stderr.write(USAGE);
        return 2;
      default:
        throw new UsageError(`unknown audit command ${cmd}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`tether audit: ${e.message}\n${USAGE}`);
      return 2;
    }
    io.stderr.write(`tether audit ${cmd}: ${(e as Error).message}\n`);
    return 1;
  }
}
