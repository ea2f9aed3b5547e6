// RelpSession against scripted RELP peers on loopback: each stands in for a
// collector misbehaving in one way rsyslog cannot be made to (the real
// imrelp is in syslog-sink.test.ts). Every failure must reject what is still
// unacknowledged, with a message that says what the collector did.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RelpSession } from '../../../src/host/audit/relp-session.ts';

type Script = (frame: { txnr: number; command: string; data: string }, reply: (bytes: string) => void, socket: Socket) => void;

let server: Server | undefined;
const peers = new Set<Socket>();
afterEach(async () => {
  for (const p of peers) p.destroy();
  peers.clear();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** A peer that parses the client's frames and answers as `script` says. */
async function peer(script: Script): Promise<Socket> {
  server = createServer((socket) => {
    peers.add(socket);
    let buf = '';
    socket.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      for (;;) {
        const m = /^(\d+) ([a-z]+) (\d+)[ \n]/.exec(buf);
        if (!m) return;
        const len = Number(m[3]);
        const start = m[0].length - (len === 0 ? 1 : 0);
        if (buf.length < start + len + 1) return;
        const data = buf.slice(start, start + len);
        buf = buf.slice(start + len + 1);
        script({ txnr: Number(m[1]), command: m[2]!, data }, (bytes) => socket.write(bytes), socket);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const socket = connect((server!.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  return socket;
}

const OPENED = 'relp_version=0\nrelp_software=test\ncommands=syslog';
const ok = (txnr: number, data = '200 OK') => `${txnr} rsp ${data.length} ${data}\n`;

describe('RelpSession', () => {
  it('sends every message and resolves once each is acknowledged, even when answers arrive a byte at a time', async () => {
    const got: string[] = [];
    const socket = await peer(({ txnr, command, data }, reply) => {
      if (command === 'syslog') got.push(data);
      const answer = command === 'open' ? ok(txnr, `200 OK\n${OPENED}`) : command === 'close' ? `${txnr} rsp 0\n` : ok(txnr);
      for (const ch of answer) reply(ch);
    });
    const session = await RelpSession.open(socket, 'tether');
    await session.sendAll(Array.from({ length: 300 }, (_, i) => Buffer.from(`message ${i} with spaces\nand a newline`)), 16);
    expect(got).toHaveLength(300);
    expect(got[299]).toBe('message 299 with spaces\nand a newline');
    await session.close();
    expect(session.alive).toBe(false);
  });

  it.each<[string, Script, RegExp]>([
    ['refuses a message', ({ txnr, command }, reply) => reply(command === 'open' ? ok(txnr, `200 OK\n${OPENED}`) : ok(txnr, '500 queue full')), /refused syslog #2: 500 queue full/],
    ['ends the session (serverclose)', ({ txnr, command }, reply) => reply(command === 'open' ? ok(txnr, `200 OK\n${OPENED}`) : '0 serverclose 0\n'), /serverclose/],
    ['sends a malformed frame', ({ txnr, command }, reply) => reply(command === 'open' ? ok(txnr, `200 OK\n${OPENED}`) : `${txnr} rsp x\n`), /malformed RELP frame/],
    ['answers a transaction it never got', ({ txnr, command }, reply) => reply(command === 'open' ? ok(txnr, `200 OK\n${OPENED}`) : ok(txnr + 100)), /unexpected frame/],
    ['hangs up', ({ txnr, command }, reply, socket) => (command === 'open' ? reply(ok(txnr, `200 OK\n${OPENED}`)) : socket.destroy()), /closed the connection/],
  ])('rejects everything unacknowledged when the collector %s', async (_name, script, message) => {
    const session = await RelpSession.open(await peer(script), 'tether');
    await expect(session.sendAll([Buffer.from('a'), Buffer.from('b')])).rejects.toThrow(message);
    session.destroy();
    expect(session.alive).toBe(false);
  });

  it('refuses a collector that does not take syslog commands', async () => {
    const socket = await peer(({ txnr }, reply) => reply(ok(txnr, '200 OK\nrelp_version=0\ncommands=other')));
    await expect(RelpSession.open(socket, 'tether')).rejects.toThrow(/does not accept syslog messages over RELP \(it offered: other\)/);
  });
});
