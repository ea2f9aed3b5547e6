// Where audit records are shipped, written as one URL each (the CLI's --ship,
// the host's `ship` setting):
//
//   https://collector.example/tether          OCSF JSON over HTTPS (Authorization: Bearer $TETHER_SHIP_TOKEN)
//   splunk+https://splunk.example:8088/services/collector/event
//                                             Splunk HEC (Authorization: Splunk $TETHER_SHIP_TOKEN)
//   relp://siem.example:2514                  RFC 5424 syslog over RELP: every message acknowledged
//   relp+tls://siem.example:6514              the same over TLS
//   syslog+tls://siem.example:6514            RFC 5425 syslog over TLS (no acknowledgement)
//   syslog://siem.example:514                 RFC 5424 over plain TCP (no acknowledgement; loopback only)
//
// Records leave the machine only encrypted or acknowledged-and-encrypted:
// plain http:// and syslog:// are accepted for a collector on loopback (a
// local forwarder) and refused elsewhere. The token is read from the
// environment variable on every request, so a rotated token is picked up.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isLoopbackHost } from '../../common/loopback.ts';
import type { AuditSink } from './audit-sink.ts';
import { HttpCollectorSink } from './http-collector-sink.ts';
import { SyslogSink } from './syslog-sink.ts';

export const SHIP_TOKEN_ENV = 'TETHER_SHIP_TOKEN';

export class ShipTargetError extends Error {
  override readonly name = 'ShipTargetError';
}

export interface ShipTargetOptions {
  /** Where the collector token comes from. Default: process.env[SHIP_TOKEN_ENV]. */
  readonly token?: () => Promise<string>;
  readonly hostname?: string;
}

/** A sink for `target`; throws ShipTargetError saying what is wrong with it and what is accepted. */
export function sinkFor(target: string, opts: ShipTargetOptions = {}): AuditSink {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new ShipTargetError(`"${target}" is not a URL. ${ACCEPTED}`);
  }
  const scheme = url.protocol.slice(0, -1);
  // Parsers disagree about backslashes and user info: refuse both, so the host
  // checked here is the host connected to.
  if (target.includes('\\') || url.username !== '' || url.password !== '') {
    throw new ShipTargetError(`${target}: a collector URL may not contain a backslash or user:password@; give the token in ${SHIP_TOKEN_ENV}`);
  }
  const token = opts.token ?? (async () => process.env[SHIP_TOKEN_ENV] ?? '');
  const common = opts.hostname ? { hostname: opts.hostname } : {};
  switch (scheme) {
    case 'https':
    case 'http':
    case 'splunk+https':
    case 'splunk+http': {
      const plain = scheme.endsWith('http');
      // The URL the sink will fetch, parsed as such: its host is the one checked.
      const http = new URL(scheme.startsWith('splunk+') ? target.slice('splunk+'.length) : target);
      if (plain && !isLoopbackHost(bare(http.hostname))) throw new ShipTargetError(`${target}: records would leave this machine unencrypted; use https (plain http is for a collector on loopback only)`);
      // Named for people (the UI, warnings) and for its cursor file: kind, host, port, then a digest of the whole URL.
      const name = `${scheme.replace('+', '-')}-${bare(http.hostname)}-${http.port || (plain ? '80' : '443')}-${createHash('sha256').update(http.href).digest('hex').slice(0, 8)}`;
      return new HttpCollectorSink({ url: http.href, format: scheme.startsWith('splunk+') ? 'splunk-hec' : 'generic', token, name, ...common });
    }
    case 'relp':
    case 'relp+tls':
    case 'syslog':
    case 'syslog+tls': {
      const tls = scheme.endsWith('+tls');
      const relp = scheme.startsWith('relp');
      const host = bare(url.hostname);
      if (!tls && !isLoopbackHost(host)) throw new ShipTargetError(`${target}: records would leave this machine unencrypted; use ${relp ? 'relp+tls' : 'syslog+tls'}:// (plain ${scheme}:// is for a collector on loopback only)`);
      if (url.port === '') throw new ShipTargetError(`${target}: give the collector's port (${relp ? 'RELP is often 2514' : 'syslog over TLS is often 6514'})`);
      if (url.pathname !== '' && url.pathname !== '/') throw new ShipTargetError(`${target}: a ${scheme} target is host:port only`);
      return new SyslogSink({
        host,
        port: Number(url.port),
        relp,
        ...(tls ? { tls: { servername: host } } : {}),
        name: `${scheme.replace('+', '-')}-${host}-${url.port}`,
        ...common,
      });
    }
    default:
      throw new ShipTargetError(`${target}: unknown kind of collector "${scheme}". ${ACCEPTED}`);
  }
}

/** An IPv6 literal without its brackets. */
function bare(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '');
}

const ACCEPTED = 'Accepted: https://…, splunk+https://…, relp+tls://host:port, syslog+tls://host:port, and on loopback also http://…, relp://…, syslog://….';

/**
 * Targets from a managed settings file: one URL per line, `#` starts a
 * comment. A missing file means none; an unreadable one is an error.
 */
export async function readShipTargets(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ShipTargetError(`cannot read the audit shipping settings ${file}: ${(e as Error).message}`);
  }
  return text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
}
