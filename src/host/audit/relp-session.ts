// A RELP client session (the Reliable Event Logging Protocol rsyslog's imrelp
// serves): every syslog message is a command the collector answers with
// "200 OK" once it has taken it, so a batch is delivered only when every one
// of its messages was acknowledged. Plain syslog over TCP cannot tell.
//
// Frames, both ways:  TXNR SP COMMAND SP DATALEN [SP DATA] LF
// The session opens with "open" (offers: relp_version, relp_software,
// commands=syslog), sends "syslog" commands with up to `window` unanswered,
// and ends with "close". The collector may send "serverclose" (txnr 0) when it
// goes away: every unanswered message then counts as not delivered.

import type { Socket } from 'node:net';

/** Largest response frame accepted (responses are short: "200 OK" and offers). */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Transaction numbers run 1..999,999,999 and then wrap to 1. */
const MAX_TXNR = 999_999_999;

export class RelpError extends Error {
  override readonly name = 'RelpError';
}

interface Pending {
  readonly resolve: (data: string) => void;
  readonly reject: (e: Error) => void;
}

export class RelpSession {
  private readonly socket: Socket;
  private readonly pending = new Map<number, Pending>();
  private txnr = 0;
  private buffer: Buffer = Buffer.alloc(0);
  private failed: Error | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new RelpError('the collector closed the connection')));
    socket.on('error', (e) => this.fail(new RelpError(`connection error: ${e.message}`)));
  }

  /** Opens a session on a connected socket; rejects unless the collector accepts "syslog" commands. */
  static async open(socket: Socket, software: string): Promise<RelpSession> {
    const session = new RelpSession(socket);
    const offers = `relp_version=0\nrelp_software=${software}\ncommands=syslog`;
    const answer = await session.command('open', offers);
    const commands = /(?:^|\n)commands=([^\n]*)/.exec(answer)?.[1]?.split(',') ?? [];
    if (!commands.includes('syslog')) {
      session.destroy();
      throw new RelpError(`the collector does not accept syslog messages over RELP (it offered: ${commands.join(',') || 'nothing'})`);
    }
    return session;
  }

  get alive(): boolean {
    return this.failed === undefined && !this.socket.destroyed;
  }

  /**
   * Sends every message, at most `window` unanswered at a time, and resolves
   * when the collector has acknowledged all of them.
   */
  async sendAll(messages: readonly Buffer[], window = 128): Promise<void> {
    let next = 0;
    const inFlight = new Set<Promise<string>>();
    while (next < messages.length || inFlight.size > 0) {
      while (next < messages.length && inFlight.size < window) {
        const p = this.command('syslog', messages[next++]!);
        inFlight.add(p);
        void p.then(() => inFlight.delete(p), () => inFlight.delete(p));
      }
      await Promise.race(inFlight);
    }
  }

  /** Ends the session politely ("close", answered), then the connection (at most `waitMs` for both). */
  async close(waitMs = 2000): Promise<void> {
    const socket = this.socket;
    const closed = new Promise<void>((resolve) => {
      if (socket.destroyed) resolve();
      else socket.once('close', () => resolve());
    });
    const timer = setTimeout(() => this.destroy(), waitMs);
    if (this.alive) await this.command('close', '').catch(() => undefined);
    socket.end();
    await closed;
    clearTimeout(timer);
    this.destroy();
  }

  destroy(): void {
    this.fail(new RelpError('the session was closed'));
  }

  private command(name: string, data: string | Buffer): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    this.txnr = this.txnr >= MAX_TXNR ? 1 : this.txnr + 1;
    const txnr = this.txnr;
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    const head = Buffer.from(body.length > 0 ? `${txnr} ${name} ${body.length} ` : `${txnr} ${name} 0`);
    const answer = new Promise<string>((resolve, reject) => this.pending.set(txnr, { resolve, reject }));
    this.socket.write(Buffer.concat([head, body, Buffer.from('\n')]));
    return answer.then((reply) => {
      // "close" is answered with an empty response.
      if (!reply.startsWith('200') && !(name === 'close' && reply === '')) throw new RelpError(`the collector refused ${name} #${txnr}: ${reply.split('\n')[0]}`);
      return reply;
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const frame = this.nextFrame();
      if (frame === undefined) break;
      if (frame === null) return;
      const { txnr, command, data } = frame;
      if (command === 'serverclose') {
        this.fail(new RelpError('the collector ended the session (serverclose)'));
        return;
      }
      const p = this.pending.get(txnr);
      if (command !== 'rsp' || !p) {
        this.fail(new RelpError(`unexpected frame from the collector: ${txnr} ${command}`));
        return;
      }
      this.pending.delete(txnr);
      p.resolve(data);
    }
    if (this.buffer.length > MAX_RESPONSE_BYTES) this.fail(new RelpError(`a response frame from the collector is over ${MAX_RESPONSE_BYTES} bytes`));
  }

  /** The next complete frame; undefined when more bytes are needed; null after failing on a malformed one. */
  private nextFrame(): { txnr: number; command: string; data: string } | undefined | null {
    const b = this.buffer;
    const sp1 = b.indexOf(0x20);
    const sp2 = sp1 < 0 ? -1 : b.indexOf(0x20, sp1 + 1);
    if (sp2 < 0) return b.length > 64 ? this.malformed() : undefined;
    // DATALEN ends at a space (data follows) or at the trailer (no data).
    let end = sp2 + 1;
    while (end < b.length && b[end]! >= 0x30 && b[end]! <= 0x39) end++;
    if (end === b.length) return undefined;
    const txnr = Number(b.subarray(0, sp1).toString('latin1'));
    const command = b.subarray(sp1 + 1, sp2).toString('latin1');
    const lenText = b.subarray(sp2 + 1, end).toString('latin1');
    const len = Number(lenText);
    if (!Number.isInteger(txnr) || !/^[a-z]+$/.test(command) || lenText === '' || !Number.isInteger(len)) return this.malformed();
    const dataStart = len > 0 ? end + 1 : end;
    if (len > 0 && b[end] !== 0x20) return this.malformed();
    if (b.length < dataStart + len + 1) return undefined;
    if (b[dataStart + len] !== 0x0a) return this.malformed();
    const data = b.subarray(dataStart, dataStart + len).toString('utf8');
    this.buffer = b.subarray(dataStart + len + 1);
    return { txnr, command, data };
  }

  private malformed(): null {
    this.fail(new RelpError('the collector sent a malformed RELP frame'));
    return null;
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.socket.destroy();
  }
}
