// Ships audit events as RFC 5424 syslog messages over TCP (RFC 6587 octet
// counting), or TLS (RFC 5425) when `tls` is set. One message per record:
//   <PRI>1 TIME HOST tether PID MSGID [tether@32473 seq=".." origin=".." leaf=".."] <OCSF JSON>
// and one per checkpoint (MSGID "checkpoint", the note and consistency proof as JSON).
//
// With `relp: true` the same messages go as RELP commands (relp-session.ts)
// to rsyslog's imrelp or another RELP listener, and a batch counts as
// delivered only once the collector acknowledged every message in it.
// Without it (plain syslog) there is no application-level acknowledgement: a
// batch counts as delivered once the kernel took it, and a collector that
// dies with data in its socket buffer can lose it.
import { connect as netConnect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { toOcsf } from '../../common/ocsf.ts';
import { SinkError, type AuditSink, type CheckpointShipment, type RecordBatch } from './audit-sink.ts';
import { RelpSession } from './relp-session.ts';

export interface SyslogSinkOptions {
  readonly host: string;
  readonly port: number;
  /** TLS options (ca, servername, cert/key for mutual TLS); absent = plain TCP. */
  readonly tls?: ConnectionOptions;
  /** Speak RELP (acknowledged delivery) instead of plain syslog framing. */
  readonly relp?: boolean;
  readonly appName?: string;
  readonly hostname?: string;
  /** RFC 5424 facility; default 13 (log audit). */
  readonly facility?: number;
  readonly timeoutMs?: number;
  readonly transformPath?: (path: string) => string;
  readonly name?: string;
}

/** 32473 is the private enterprise number RFC 5612 reserves for examples; the SD-ID is ours. */
const SD_ID = 'tether@32473';

function sdValue(v: string): string {
  return v.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

function header(token: string, max: number): string {
  const clean = token.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

export class SyslogSink implements AuditSink {
  readonly name: string;
  private readonly opts: SyslogSinkOptions;
  private readonly host: string;
  private socket: Socket | undefined;
  private relp: RelpSession | undefined;

  constructor(opts: SyslogSinkOptions) {
    this.opts = opts;
    this.name = opts.name ?? `syslog-${opts.host}-${opts.port}`;
    this.host = header(opts.hostname ?? hostname(), 255);
  }

  /** One RFC 5424 message. */
  private message(severity: number, time: string, msgid: string, sd: Record<string, string>, msg: string): Buffer {
    const pri = (this.opts.facility ?? 13) * 8 + severity;
    const params = Object.entries(sd).map(([k, v]) => `${k}="${sdValue(v)}"`).join(' ');
    return Buffer.from(`<${pri}>1 ${time} ${this.host} ${header(this.opts.appName ?? 'tether', 48)} ${process.pid} ${header(msgid, 32)} [${SD_ID} ${params}] ${msg}`);
  }

  async sendRecords(batch: RecordBatch, signal: AbortSignal): Promise<void> {
    const messages = batch.records.map((r) => {
      const event = toOcsf(r.record, { origin: batch.origin, leafHash: r.leafHash, line: r.line, hostname: this.host, ...(this.opts.transformPath ? { transformPath: this.opts.transformPath } : {}) });
      const severity = r.record.decision && !r.record.decision.allowed ? 4 : 6;
      return this.message(severity, r.record.time, r.record.type, { seq: String(r.seq), origin: batch.origin, leaf: r.leafHash }, JSON.stringify(event));
    });
    await this.deliver(messages, signal);
  }

  async sendCheckpoint(cp: CheckpointShipment, signal: AbortSignal): Promise<void> {
    const msg = JSON.stringify({ type: 'tether.audit.checkpoint', origin: cp.origin, size: cp.size, checkpoint: cp.note, consistency: cp.consistency ? { from_size: cp.consistency.fromSize, proof: cp.consistency.proof } : null, idempotency_key: cp.idempotencyKey });
    await this.deliver([this.message(5, new Date().toISOString(), 'checkpoint', { origin: cp.origin, size: String(cp.size) }, msg)], signal);
  }

  private async deliver(messages: readonly Buffer[], signal: AbortSignal): Promise<void> {
    if (!this.opts.relp) {
      // RFC 6587 octet counting.
      await this.write(Buffer.concat(messages.flatMap((m) => [Buffer.from(`${m.length} `), m])), signal);
      return;
    }
    const timeoutMs = this.opts.timeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = () => {
      this.relp?.destroy();
      this.socket?.destroy();
    };
    signal.addEventListener('abort', giveUp, { once: true });
    const work = this.relpSession(signal).then((relp) => relp.sendAll(messages));
    work.catch(() => undefined);
    try {
      await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not every message was acknowledged within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (e) {
      giveUp();
      if (e instanceof SinkError) throw e;
      throw new SinkError(`RELP delivery to ${this.opts.host}:${this.opts.port} failed: ${(e as Error).message}`, true, { cause: e });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', giveUp);
    }
  }

  private async relpSession(signal: AbortSignal): Promise<RelpSession> {
    if (this.relp?.alive) return this.relp;
    this.relp = undefined;
    const socket = await this.connection(signal);
    try {
      this.relp = await RelpSession.open(socket, header(this.opts.appName ?? 'tether', 48));
    } catch (e) {
      socket.destroy();
      throw new SinkError(`RELP session with ${this.opts.host}:${this.opts.port} could not be opened: ${(e as Error).message}`, true, { cause: e });
    }
    return this.relp;
  }

  private async connection(signal: AbortSignal): Promise<Socket> {
    if (this.socket && !this.socket.destroyed && this.socket.writable) return this.socket;
    const { host, port, tls } = this.opts;
    const socket = tls ? tlsConnect({ host, port, servername: host, ...tls }) : netConnect({ host, port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no connection within ${this.opts.timeoutMs ?? 15_000} ms`)), this.opts.timeoutMs ?? 15_000);
      const onAbort = () => fail(new Error('aborted'));
      const settle = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.off('error', fail);
      };
      const fail = (e: Error) => {
        settle();
        socket.destroy();
        reject(new SinkError(`syslog collector ${host}:${port} unreachable: ${e.message}`, true, { cause: e }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', fail);
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        settle();
        resolve();
      });
    });
    socket.on('error', () => socket.destroy());
    if (!this.opts.relp) socket.on('data', () => undefined); // syslog collectors do not talk back; drain anything they send
    this.socket = socket;
    return socket;
  }

  private async write(bytes: Buffer, signal: AbortSignal): Promise<void> {
    const socket = await this.connection(signal);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`write not taken within ${this.opts.timeoutMs ?? 15_000} ms`)), this.opts.timeoutMs ?? 15_000);
      const done = (e?: Error | null) => {
        clearTimeout(timer);
        socket.off('close', onClose);
        if (!e) return resolve();
        socket.destroy();
        reject(new SinkError(`syslog write to ${this.opts.host}:${this.opts.port} failed: ${e.message}`, true, { cause: e }));
      };
      const onClose = () => done(new Error('connection closed'));
      socket.once('close', onClose);
      socket.write(bytes, (e) => done(e));
    });
  }

  async close(): Promise<void> {
    const relp = this.relp;
    this.relp = undefined;
    if (relp?.alive) {
      this.socket = undefined;
      await relp.close();
      return;
    }
    const s = this.socket;
    this.socket = undefined;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => s.end(resolve));
  }
}
