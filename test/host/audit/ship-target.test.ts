// Collector URLs: what each kind becomes, and what is refused with a reason.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HttpCollectorSink } from '../../../src/host/audit/http-collector-sink.ts';
import { readShipTargets, ShipTargetError, sinkFor } from '../../../src/host/audit/ship-target.ts';
import { SyslogSink } from '../../../src/host/audit/syslog-sink.ts';

describe('sinkFor', () => {
  it.each<[string, unknown, string]>([
    ['https://siem.example/tether', HttpCollectorSink, 'http-'],
    ['splunk+https://splunk.example:8088/services/collector/event', HttpCollectorSink, 'http-'],
    ['http://127.0.0.1:9000/ingest', HttpCollectorSink, 'http-'],
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
  ])('refuses %s', (target, why) => {
    expect(() => sinkFor(target)).toThrow(ShipTargetError);
    expect(() => sinkFor(target)).toThrow(why);
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
