// SyslogSink against a REAL rsyslogd started here (`rsyslogd -n -f conf -i pidfile`)
// with a private config: imtcp on a free loopback port (plain, or TLS through
// rsyslog's OpenSSL driver with a certificate made here) or imrelp (RELP,
// acknowledged), writing what it receives to a file we read back.
import { existsSync } from 'node:fs';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../src/common/audit-record.ts';
import { AuditOutbox } from '../../../src/host/audit/audit-outbox.ts';
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { SyslogSink } from '../../../src/host/audit/syslog-sink.ts';
import { NoteSigningKey } from '../../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';

// Debian installs it in /usr/sbin, which a non-login PATH may not include.
const RSYSLOGD = ['/usr/sbin/rsyslogd', '/sbin/rsyslogd'].find((p) => existsSync(p)) ?? 'rsyslogd';

const run = promisify(execFile);
const key = NoteSigningKey.generate('tether-audit-syslog');
const started: ChildProcess[] = [];

afterAll(() => {
  for (const c of started) if (c.exitCode === null) c.kill('SIGTERM');
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Rsyslog {
  port: number;
  out: string;
  cert?: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function rsyslog(opts: { tls?: boolean; relp?: boolean } = {}): Promise<Rsyslog> {
  const root = await mkdtemp(join(tmpdir(), 'tether-rsyslog-'));
  await mkdir(join(root, 'work'));
  const port = await freePort();
  const out = join(root, 'received.log');
  let tlsGlobal = '';
  let cert: string | undefined;
  if (opts.tls) {
    cert = join(root, 'cert.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(root, 'key.pem'), '-out', cert]);
    tlsGlobal = `global(DefaultNetstreamDriverCAFile="${cert}" DefaultNetstreamDriverCertFile="${cert}" DefaultNetstreamDriverKeyFile="${join(root, 'key.pem')}")`;
  }
  const conf = join(root, 'rsyslog.conf');
  await writeFile(
    conf,
    [
      `global(workDirectory="${join(root, 'work')}" maxMessageSize="256k")`,
      tlsGlobal,
      ...(opts.relp
        ? ['module(load="imrelp")', `input(type="imrelp" port="${port}" address="127.0.0.1" maxDataSize="256k")`]
        : [
            opts.tls ? 'module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")' : 'module(load="imtcp")',
            `input(type="imtcp" port="${port}" address="127.0.0.1")`,
          ]),
      'template(name="tether" type="string" string="%msgid%|%structured-data%|%msg%\\n")',
      `action(type="omfile" file="${out}" template="tether")`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const self: Rsyslog = {
    port,
    out,
    ...(cert ? { cert } : {}),
    async start() {
      child = spawn(RSYSLOGD, ['-n', '-f', conf, '-i', join(root, 'rsyslogd.pid')], { stdio: 'ignore' });
      started.push(child);
      const deadline = Date.now() + 10_000;
      for (;;) {
        const ok = await new Promise<boolean>((resolve) => {
          const s = connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        });
        if (ok) return;
        if (child.exitCode !== null) throw new Error(`rsyslogd exited with ${child.exitCode}`);
        if (Date.now() > deadline) throw new Error('rsyslogd did not listen');
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    },
  };
  return self;
}

async function received(path: string, lines: number, timeoutMs = 15_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => '');
    const got = text.split('\n').filter(Boolean);
    if (got.length >= lines || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function entry(i: number): AuditEntry {
  return { type: 'decision', session: 's', traceId: i.toString(16).padStart(32, '0'), request: { id: `r${i}`, method: 'terminal/create', action: 'exec', kind: 'exec', command: `echo "${i}" ]`, cwd: '/w' }, decision: { effect: 'ask', allowed: i % 5 !== 0, policyIds: ['ask-exec'], decidedBy: 'user', reason: 'asked' } };
}

async function logWith(n: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-syslog-log-'));
  const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(key), checkpointEvery: 100 });
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => log.append(entry(i + j))));
  await log.close();
  return dir;
}

describe('SyslogSink with a real rsyslogd', () => {
  it('delivers every record as an RFC 5424 message with structured data, plus the checkpoints, over TCP', async () => {
    const server = await rsyslog();
    await server.start();
    const dir = await logWith(300);
    const outbox = await AuditOutbox.start({ dir, sink: new SyslogSink({ host: '127.0.0.1', port: server.port, hostname: 'dev-box' }), batchSize: 64, pollMs: 50 });
    await outbox.drain(20_000);
    await outbox.stop();
    const lines = await received(server.out, 301 + 4);
    await server.stop();
    const records = lines.filter((l) => !l.startsWith('checkpoint|'));
    expect(records).toHaveLength(301);
    const seqs = records.map((l) => Number(/seq="(\d+)"/.exec(l)![1]));
    expect(seqs).toEqual(Array.from({ length: 301 }, (_, i) => i));
    const sample = records[7]!.split('|');
    expect(sample[0]).toBe('decision');
    expect(sample[1]).toMatch(/^\[tether@32473 seq="7" origin="tether\.audit\/[0-9a-f]+" leaf="[0-9a-f]{64}"\]$/);
    const event = JSON.parse(sample.slice(2).join('|')) as { class_uid: number; action_id: number; process: { cmd_line: string } };
    expect(event).toMatchObject({ class_uid: 1007, action_id: 1, process: { cmd_line: 'echo "6" ]' } });
    expect(lines.filter((l) => l.startsWith('checkpoint|')).length).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it('waits for a syslog collector that is down and delivers everything once it is up', async () => {
    const server = await rsyslog();
    const dir = await logWith(120);
    const outbox = await AuditOutbox.start({ dir, sink: new SyslogSink({ host: '127.0.0.1', port: server.port, timeoutMs: 500 }), batchSize: 50, pollMs: 50, retryInitialMs: 20, retryMaxMs: 100 });
    await new Promise((r) => setTimeout(r, 400));
    expect(outbox.metrics().lastError).toMatch(/unreachable/);
    expect(outbox.metrics().nextSeq).toBe(0);
    await server.start();
    await outbox.drain(20_000);
    await outbox.stop();
    const lines = (await received(server.out, 121)).filter((l) => !l.startsWith('checkpoint|'));
    await server.stop();
    expect(lines.map((l) => Number(/seq="(\d+)"/.exec(l)![1]))).toEqual(Array.from({ length: 121 }, (_, i) => i));
  }, 60_000);

  it('delivers over RELP to rsyslog\'s imrelp, every message acknowledged, records in order and the checkpoints', async () => {
    const server = await rsyslog({ relp: true });
    await server.start();
    const dir = await logWith(300);
    const sink = new SyslogSink({ host: '127.0.0.1', port: server.port, hostname: 'dev-box', relp: true });
    const outbox = await AuditOutbox.start({ dir, sink, batchSize: 64, pollMs: 50 });
    await outbox.drain(20_000);
    await outbox.stop();
    await sink.close();
    const lines = await received(server.out, 301 + 4);
    await server.stop();
    const records = lines.filter((l) => !l.startsWith('checkpoint|'));
    expect(records.map((l) => Number(/seq="(\d+)"/.exec(l)![1]))).toEqual(Array.from({ length: 301 }, (_, i) => i));
    expect(JSON.parse(records[7]!.split('|').slice(2).join('|'))).toMatchObject({ class_uid: 1007, process: { cmd_line: 'echo "6" ]' } });
    expect(lines.filter((l) => l.startsWith('checkpoint|')).length).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it('counts nothing delivered that a collector took but never acknowledged (RELP), where plain syslog cannot tell', async () => {
    // A collector that accepts connections and reads everything but never answers: a hung or broken one.
    const sockets = new Set<Socket>();
    const blackHole = createServer((c) => {
      sockets.add(c);
      c.on('data', () => undefined);
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    const port = (blackHole.address() as { port: number }).port;
    const dir = await logWith(20);

    const relp = await AuditOutbox.start({ dir, sink: new SyslogSink({ host: '127.0.0.1', port, relp: true, timeoutMs: 300 }), pollMs: 50, retryInitialMs: 50, retryMaxMs: 100 });
    await new Promise((r) => setTimeout(r, 800));
    expect(relp.metrics().nextSeq).toBe(0);
    expect(relp.metrics().lastError).toMatch(/RELP/);
    await relp.stop();

    const plain = await AuditOutbox.start({ dir, sink: new SyslogSink({ host: '127.0.0.1', port, timeoutMs: 300 }), pollMs: 50 });
    await plain.drain(10_000);
    expect(plain.metrics().nextSeq).toBe(21); // "delivered": the kernel took it
    await plain.stop();
    for (const c of sockets) c.destroy();
    await new Promise<void>((r) => blackHole.close(() => r()));
  }, 60_000);

  it('delivers over TLS (RFC 5425) to rsyslog with its OpenSSL driver, and refuses an untrusted certificate', async () => {
    const server = await rsyslog({ tls: true });
    await server.start();
    const dir = await logWith(40);
    const ca = await readFile(server.cert!);
    const outbox = await AuditOutbox.start({ dir, sink: new SyslogSink({ host: '127.0.0.1', port: server.port, tls: { ca, servername: 'localhost' } }), pollMs: 50 });
    await outbox.drain(20_000);
    await outbox.stop();
    const lines = (await received(server.out, 41)).filter((l) => !l.startsWith('checkpoint|'));
    expect(lines).toHaveLength(41);

    const untrusted = await AuditOutbox.start({ dir: await logWith(3), sink: new SyslogSink({ host: '127.0.0.1', port: server.port, tls: { servername: 'localhost' }, timeoutMs: 2000 }), pollMs: 50, retryInitialMs: 50 });
    await new Promise((r) => setTimeout(r, 500));
    expect(untrusted.metrics().lastError).toMatch(/self-signed certificate|unable to verify|certificate/i);
    expect(untrusted.metrics().nextSeq).toBe(0);
    await untrusted.stop();
    await server.stop();
  }, 60_000);
});
