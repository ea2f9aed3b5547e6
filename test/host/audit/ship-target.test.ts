// Collector URLs: what each kind becomes, and what is refused with a reason.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HttpCollectorSink } from '../../../src/host/audit/http-collector-sink.ts';
import { readShipTargets, ShipTargetError, sinkFor } from '../../../src/host/audit/ship-target.ts';
import { SyslogSink } from '../../../src/host/audit/syslog-sink.ts';

describe('sinkFor', () => {
  it.each<[string, unknown, string]>([
    ['https://siem.example/tether', HttpCollectorSink, 'https-siem.example-443-'],
    ['splunk+https://splunk.example:8088/services/collector/event', HttpCollectorSink, 'splunk-https-splunk.example-8088-'],
    ['http://127.0.0.1:9000/ingest', HttpCollectorSink, 'http-127.0.0.1-9000-'],
    ['relp+tls://siem.example:6514', SyslogSink, 'relp-tls-siem.example-6514'],
    ['relp://127.0.0.1:2514', SyslogSink, 'relp-127.0.0.1-2514'],
    ['syslog+tls://siem.example:6514', SyslogSink, 'syslog-tls-siem.example-6514'],
    ['syslog://[::1]:514', SyslogSink, 'syslog-::1-514'],
  ])('%s', (target, kind, name) => {
    const sink = sinkFor(target);
    expect(sink).toBeInstanceOf(kind);
    expect(sink.name.startsWith(name)).toBe(true);
  });

  it.each<[string, RegExp]>([
    ['http://siem.example/tether', /unencrypted; use https/],
    ['relp://siem.example:2514', /unencrypted; use relp\+tls/],
    ['syslog://10.0.0.5:514', /unencrypted; use syslog\+tls/],
    ['relp+tls://siem.example', /give the collector's port/],
    ['syslog+tls://siem.example:6514/path', /host:port only/],
    ['ftp://siem.example/', /unknown kind of collector "ftp"/],
    ['siem.example:514', /unknown kind of collector|is not a URL/],
    ['not a url', /is not a URL/],
    ['splunk+http://evil.example\\@127.0.0.1/services/collector/event', /may not contain a backslash or user:password@/],
    ['https://user:secret@siem.example/in', /may not contain a backslash or user:password@/],
    ['http://127.0.0.1.evil.example/in', /unencrypted; use https/],
  ])('refuses %s', (target, why) => {
    expect(() => sinkFor(target)).toThrow(ShipTargetError);
    expect(() => sinkFor(target)).toThrow(why);
  });
});

describe('HttpCollectorSink', () => {
  it('does not follow a redirect: the records would go somewhere else, maybe unencrypted', async () => {
    let elsewhere = 0;
    const other = createServer((_req, res) => {
      elsewhere++;
      res.end();
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const redirector = createServer((_req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${(other.address() as AddressInfo).port}/in` });
      res.end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    try {
      const sink = sinkFor(`http://127.0.0.1:${(redirector.address() as AddressInfo).port}/in`, { token: async () => 't' });
      await expect(sink.sendCheckpoint({ origin: 'o', chain: 0, size: 1, note: 'n', consistency: null, idempotencyKey: 'k' }, new AbortController().signal)).rejects.toThrow(/unreachable|redirect/);
      expect(elsewhere).toBe(0);
    } finally {
      await Promise.all([other, redirector].map((s) => new Promise<void>((r) => s.close(() => r()))));
    }
  });
});

describe('readShipTargets', () => {
  it('reads one URL per line, skipping comments and blank lines; a missing file is none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-ship-'));
    await writeFile(join(dir, 'audit-ship'), '# the SIEM\nrelp+tls://siem.example:6514\n\n  https://backup.example/in  # second copy\n');
    expect(await readShipTargets(join(dir, 'audit-ship'))).toEqual(['relp+tls://siem.example:6514', 'https://backup.example/in']);
    expect(await readShipTargets(join(dir, 'missing'))).toEqual([]);
    await expect(readShipTargets(dir)).rejects.toThrow(/cannot read the audit shipping settings/);
  });
});
