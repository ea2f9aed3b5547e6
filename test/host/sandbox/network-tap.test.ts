// The per-command network tap: the SOCKS handshake parser byte by byte, and
// the tap in front of the real filtering proxy of @anthropic-ai/sandbox-runtime
// (through SandboxNetwork, as commands get it; needs socat, which .ci/run
// installs) or in front of nothing at all.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkTap, SocksWatch, type OpenedTunnel, type TappedConnection } from '../../../src/host/sandbox/network-tap.ts';
import { SandboxManager } from '@anthropic-ai/sandbox-runtime';
import { SandboxNetwork } from '../../../src/host/sandbox/sandbox-network.ts';

const realProxySocket = () => SandboxManager.getLinuxHttpSocketPath()!;

/** Feeds `client` and `server` bytes to a watcher one byte at a time, interleaved as a real exchange would be. */
function feed(steps: readonly ['c' | 's', number[]][]): SocksWatch {
  const w = new SocksWatch();
  for (const [side, bytes] of steps) {
    for (const b of bytes) expect(side === 'c' ? w.fromClient(Buffer.from([b])) : w.fromServer(Buffer.from([b]))).toBe(true);
  }
  return w;
}
const ascii = (s: string) => [...Buffer.from(s, 'latin1')];

describe('SocksWatch', () => {
  it('follows SOCKS5 with a username/password login, one byte at a time', () => {
    const w = feed([
      ['c', [5, 2, 0, 2]],
      ['s', [5, 2]],
      ['c', [1, 3, ...ascii('cmd'), 5, ...ascii('token')]],
      ['s', [1, 0]],
      ['c', [5, 1, 0, 3, 11, ...ascii('example.com'), 1, 187]],
      ['s', [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]],
    ]);
    expect(w.target).toEqual({ host: 'example.com', port: 443, command: 1 });
    expect(w.reply).toBe(0);
    expect(w.granted).toBe(true);
  });

  it('follows a client that sends its greeting, login and request before any answer', () => {
    const w = new SocksWatch();
    expect(w.fromClient(Buffer.from([5, 1, 2, 1, 1, 0x61, 1, 0x62, 5, 1, 0, 1, 10, 0, 0, 7, 0, 80]))).toBe(true);
    expect(w.target).toBeUndefined(); // the login step is only known once the proxy has chosen it
    expect(w.unreadFromClient).toBe(15); // not read as handshake yet: the tap has passed on only the greeting
    expect(w.fromServer(Buffer.from([5, 2, 1, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0]))).toBe(true);
    expect(w.target).toEqual({ host: '10.0.0.7', port: 80, command: 1 });
    expect(w.unreadFromClient).toBe(0);
    expect(w.reply).toBe(2);
    expect(w.granted).toBe(false);
    expect(w.replyText()).toBe('connection not allowed by ruleset');
  });

  it('reads what follows a request as data, however long: a TLS ClientHello sent with it is not a handshake step', () => {
    const w = new SocksWatch();
    w.fromClient(Buffer.from([5, 1, 2]));
    w.fromServer(Buffer.from([5, 2]));
    w.fromClient(Buffer.from([1, 1, 0x61, 1, 0x62]));
    w.fromServer(Buffer.from([1, 0]));
    expect(w.fromClient(Buffer.concat([Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, 1, 187]), Buffer.alloc(1500, 0x16)]))).toBe(true);
    expect(w.unreadFromClient).toBe(1500);
    expect(w.fromServer(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]))).toBe(true);
    expect(w.granted).toBe(true);
  });

  it('counts a SOCKS5 success as a grant only after the proxy accepted the login (its answer to a client without one is not)', () => {
    const w = feed([['c', [5, 1, 0]], ['s', [5, 0]], ['c', [5, 1, 0, 3, 3, ...ascii('a.b'), 0, 22]], ['s', [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]]]);
    expect(w.reply).toBe(0);
    expect(w.granted).toBe(false);
  });

  it('waits for the proxy\'s method choice with up to 64 KiB of what an optimistic client sent, then reads it', () => {
    const w = new SocksWatch();
    const request = [5, 1, 0, 1, 127, 0, 0, 1, 1, 187];
    expect(w.fromClient(Buffer.concat([Buffer.from([5, 1, 2, 1, 1, 0x61, 1, 0x62, ...request]), Buffer.alloc(1500, 0x16)]))).toBe(true);
    expect(w.fromServer(Buffer.from([5, 2]))).toBe(true);
    expect(w.target).toEqual({ host: '127.0.0.1', port: 443, command: 1 });
    expect(w.unreadFromClient).toBe(1500);
    const flood = new SocksWatch();
    expect(flood.fromClient(Buffer.concat([Buffer.from([5, 1, 2]), Buffer.alloc(64 * 1024 + 1)]))).toBe(false);
    expect(flood.error).toMatch(/too long/);
    const garbage = new SocksWatch();
    garbage.fromClient(Buffer.from([5, 1, 0]));
    garbage.fromServer(Buffer.from([5, 0]));
    expect(garbage.fromClient(Buffer.from([5, 1, 0, 3, 255, ...Buffer.alloc(100, 0x61)]))).toBe(true); // a request still incomplete
    expect(garbage.target).toBeUndefined();
    expect(garbage.fromClient(Buffer.alloc(300, 0x61))).toBe(true); // now complete (262 bytes): the rest is data
    expect(garbage.target?.host).toHaveLength(255);
    expect(garbage.unreadFromClient).toBe(105 + 300 - 262);
    // A step that never ends is still cut at 600 bytes (SOCKS4: a user id without its NUL).
    expect(new SocksWatch().fromClient(Buffer.from([4, 1, 0, 80, 1, 2, 3, 4, ...Buffer.alloc(601, 0x61)]))).toBe(false);
  });

  it('reads IPv6 targets', () => {
    const w = new SocksWatch();
    w.fromClient(Buffer.from([5, 1, 0]));
    w.fromServer(Buffer.from([5, 0]));
    w.fromClient(Buffer.from([5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1, 0, 22]));
    expect(w.target).toEqual({ host: '2001:db8::1', port: 22, command: 1 });
  });

  it('follows SOCKS4 and SOCKS4a', () => {
    const v4 = feed([['c', [4, 1, 0, 80, 192, 0, 2, 1, ...ascii('id'), 0]], ['s', [0, 90, 0, 0, 0, 0, 0, 0]]]);
    expect(v4).toMatchObject({ version: 4, target: { host: '192.0.2.1', port: 80 }, reply: 90 });
    expect(v4.granted).toBe(true);
    const v4a = feed([['c', [4, 1, 1, 187, 0, 0, 0, 9, 0, ...ascii('example.org'), 0]], ['s', [0, 91, 0, 0, 0, 0, 0, 0]]]);
    expect(v4a).toMatchObject({ version: 4, target: { host: 'example.org', port: 443 }, reply: 91 });
    expect(v4a.granted).toBe(false);
    expect(v4a.replyText()).toBe('request rejected or failed');
  });

  it('says a stream is not the protocol, so the tap cuts it', () => {
    expect(new SocksWatch().fromClient(Buffer.from('GET / HTTP/1.1\r\n'))).toBe(false);
    const badType = new SocksWatch();
    badType.fromClient(Buffer.from([5, 1, 0]));
    badType.fromServer(Buffer.from([5, 0]));
    expect(badType.fromClient(Buffer.from([5, 1, 0, 9, 0, 0]))).toBe(false);
    expect(badType.error).toMatch(/address type 9/);
    const none = new SocksWatch();
    none.fromClient(Buffer.from([5, 1, 0]));
    expect(none.fromServer(Buffer.from([5, 0xff]))).toBe(false);
    expect(none.granted).toBe(false);
    const endless = new SocksWatch();
    endless.fromClient(Buffer.from([4, 1, 0, 80, 1, 2, 3, 4]));
    expect(endless.fromClient(Buffer.alloc(700, 0x61))).toBe(false); // a user id that never ends
  });
});

/** An HTTP exchange over a Unix socket: status, headers and body. */
function viaSocket(socketPath: string, opts: { path: string; method?: string; headers?: Record<string, string> }): Promise<{ status: number; body: string; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const r = request({ socketPath, path: opts.path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body, res }));
    });
    r.on('error', reject);
    r.end();
  });
}

describe('NetworkTap with nothing behind it', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tap-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('cuts a tunnel granted to a destination the command was not given (a stand-in proxy: the real one never grants one)', async () => {
    const fakeProxy = join(dir, 'grants-anything.sock');
    const upstream = await new Promise<Server>((resolve) => {
      const srv = createServer((s) => {
        s.once('data', () => s.write('HTTP/1.1 200 Connection established\r\n\r\nbanner from the destination'));
        s.on('error', () => {});
      });
      srv.listen(fakeProxy, () => resolve(srv));
    });
    const seen: TappedConnection[] = [];
    const opened: OpenedTunnel[] = [];
    const tap = await NetworkTap.open({ http: fakeProxy, socks: fakeProxy }, ['example.com'], { ended: (c) => seen.push(c), opened: async (t) => void opened.push(t) });
    const got = await new Promise<string>((resolve) => {
      let text = '';
      const s = connect(tap.httpPath, () => s.write('CONNECT not-given.example:443 HTTP/1.1\r\nHost: not-given.example:443\r\n\r\n'));
      s.on('data', (c: Buffer) => (text += c.toString()));
      s.on('close', () => resolve(text));
    });
    await tap.close();
    upstream.close();
    expect(got).toBe('');
    expect(opened).toEqual([]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ via: 'connect', host: 'not-given.example', allowed: false, status: 200 });
    expect(seen[0]!.reason).toMatch(/cut by Tether: the proxy's answer looked like a grant, but not a destination of this command/);
  });

  it('answers what it cannot pass on, and reports each attempt with what happened', async () => {
    const seen: TappedConnection[] = [];
    const tap = await NetworkTap.open({ http: join(dir, 'no-proxy.sock'), socks: join(dir, 'no-proxy.sock') }, ['example.com'], { ended: (c) => seen.push(c), opened: async () => {} }, { firstByteMs: 200 });
    const relative = await viaSocket(tap.httpPath, { path: '/not-absolute' });
    expect(relative.status).toBe(400);
    expect(relative.body).toMatch(/absolute http:\/\/ or https:\/\/ URL/);
    const noProxy = await viaSocket(tap.socksPath, { path: 'http://example.com/x?secret=1' });
    expect(noProxy.status).toBe(502);
    expect(noProxy.body).toMatch(/proxy did not answer/);
    // A CONNECT with nothing behind: the command's connection is closed.
    const closed = await new Promise<string>((resolve) => {
      const s = connect(tap.httpPath, () => s.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'));
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString()));
      s.on('close', () => resolve(got));
    });
    expect(closed).toBe('');
    // SOCKS on the HTTP socket (each socket serves every protocol, as the proxy's do).
    await new Promise<void>((resolve) => {
      const s = connect(tap.httpPath, () => s.write(Buffer.from([5, 1, 0])));
      s.on('close', () => resolve());
    });
    // A connection that never says anything is dropped after the first-byte limit (nothing to report: it went nowhere).
    const silent = await new Promise<number>((resolve) => {
      const t = performance.now();
      const q = connect(tap.httpPath);
      q.on('close', () => resolve(performance.now() - t));
    });
    expect(silent).toBeLessThan(5_000);
    await tap.close();
    expect(seen.map(({ via, host, port, allowed, status, url }) => ({ via, host, port, allowed, status, url }))).toEqual([
      { via: 'http', host: '', port: 0, allowed: false, status: 400, url: undefined },
      { via: 'http', host: 'example.com', port: 80, allowed: false, status: undefined, url: 'http://example.com/x' },
      { via: 'connect', host: 'example.com', port: 443, allowed: false, status: undefined, url: undefined },
      { via: 'socks5', host: '', port: 0, allowed: false, status: undefined, url: undefined },
    ]);
    expect(seen[0]!.reason).toMatch(/not an absolute http\(s\) URL/);
    expect(seen[1]!.reason).toMatch(/did not answer/);
    expect(seen[2]!.reason).toMatch(/did not answer/);
    expect(seen[3]!.reason).toMatch(/handshake did not finish/);
  });
});

describe('NetworkTap in front of the sandbox proxy', () => {
  let network: SandboxNetwork;
  /** As network.forCommand, with a tap of smaller limits in front of the same proxy. */
  async function tapWithLimits(domains: string[], seen: TappedConnection[], limits: Parameters<typeof NetworkTap.open>[3]) {
    const real = await network.forCommand(domains, { ended: () => {}, opened: async () => {} });
    const upstream = { http: realProxySocket(), socks: realProxySocket() };
    const tap = await NetworkTap.open(upstream, domains, { ended: (c) => seen.push(c), opened: async () => {} }, limits);
    return { ...real, relays: [{ path: tap.httpPath, port: 3128 }], release: async () => { await tap.close(); await real.release(); } };
  }
  let echo: Server;
  /** Every byte the echo server has received. */
  let echoSaw = '';
  beforeAll(async () => {
    network = new SandboxNetwork();
    echo = await new Promise<Server>((resolve) => {
      const srv = createServer((s) => {
        s.on('data', (c: Buffer) => (echoSaw += c.toString('latin1')));
        s.pipe(s);
      });
      srv.listen(0, '127.0.0.1', () => resolve(srv));
    });
  });
  afterAll(async () => {
    echo?.close();
    await network?.dispose();
  });

  /** A tap for one command that may reach `domains`, and the Proxy-Authorization its environment would present. */
  async function forCommand(domains: string[], limits?: Parameters<typeof NetworkTap.open>[3]) {
    const seen: TappedConnection[] = [];
    const net = limits ? await tapWithLimits(domains, seen, limits) : await network.forCommand(domains, { ended: (c) => seen.push(c), opened: async () => {} });
    const auth = new URL(net.env['HTTP_PROXY']!);
    const credentials = Buffer.from(`${decodeURIComponent(auth.username)}:${decodeURIComponent(auth.password)}`).toString('base64');
    return { seen, net, path: net.relays[0]!.path, proxyAuth: `Proxy-Authorization: Basic ${credentials}\r\n` };
  }
  /** Raw bytes to a socket, everything that comes back until it closes (or `ms`; then `timedOut`). */
  function exchangeFully(path: string, bytes: string, ms = 3000): Promise<{ got: string; timedOut: boolean }> {
    return new Promise((resolve) => {
      let got = '';
      let timedOut = false;
      const s = connect(path, () => s.write(bytes));
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      s.on('error', () => {});
      const timer = setTimeout(() => {
        timedOut = true;
        s.destroy();
      }, ms);
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ got, timedOut });
      });
    });
  }
  const exchange = async (path: string, bytes: string, ms?: number) => (await exchangeFully(path, bytes, ms)).got;
  let origin: HttpServer;
  const originSaw: string[] = [];
  let originOpen = 0;
  let originMostOpen = 0;
  beforeAll(async () => {
    origin = await new Promise((resolve) => {
      const srv = createHttpServer((req, res) => {
        originSaw.push(req.url!);
        setTimeout(() => res.end(`origin saw ${req.url}`), 5);
      });
      srv.on('connection', (c) => {
        originMostOpen = Math.max(originMostOpen, ++originOpen);
        c.on('close', () => originOpen--);
      });
      srv.listen(0, '127.0.0.1', () => resolve(srv));
    });
  });
  afterAll(() => origin?.close());
  const originAt = () => `127.0.0.1:${(origin.address() as AddressInfo).port}`;

  it('passes nothing after a request that asks for an Upgrade: the connection ends after its answer', async () => {
    const { seen, net, path, proxyAuth } = await forCommand([originAt()]);
    const { got, timedOut } = await exchangeFully(path, `GET http://${originAt()}/first HTTP/1.1\r\nHost: ${originAt()}\r\n${proxyAuth}Connection: Upgrade\r\nUpgrade: x\r\n\r\n`
      + `GET http://${originAt()}/smuggled HTTP/1.1\r\nHost: ${originAt()}\r\n${proxyAuth}\r\n`, 20_000);
    expect(timedOut).toBe(false);
    // Alone, too: the tap closes the connection after the answer, so a client opens a new one for more (not a kept-alive one nothing reads).
    const alone = await exchangeFully(path, `GET http://${originAt()}/alone HTTP/1.1\r\nHost: ${originAt()}\r\n${proxyAuth}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n`, 20_000);
    expect(alone.got).toContain('origin saw /alone');
    expect(alone.timedOut).toBe(false);
    await net.release();
    expect(got).toContain('origin saw /first');
    expect(got).not.toContain('smuggled');
    expect(originSaw).not.toContain('/smuggled');
    expect(seen.map((c) => [c.url, c.allowed])).toEqual([[`http://${originAt()}/first`, true], [`http://${originAt()}/alone`, true]]);
  });

  it('never records as allowed what the proxy did not let through, whatever the answer looks like', async () => {
    const { seen, net, path } = await forCommand([originAt()]);
    // No proxy id: the proxy answers 407 without its refusal mark.
    const got = await exchange(path, 'GET http://not-opened.example/ HTTP/1.1\r\nHost: not-opened.example\r\nConnection: close\r\n\r\n');
    await net.release();
    expect(got).toMatch(/^HTTP\/1\.1 407/);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ host: 'not-opened.example', allowed: false, status: 407 });
    expect(seen[0]!.reason).toMatch(/proxy authentication required/);
  });

  it('passes one request of a connection at a time, and reports each', async () => {
    const { seen, net, path, proxyAuth } = await forCommand([originAt()]);
    originMostOpen = 0;
    const n = 20;
    let pipelined = '';
    for (let i = 0; i < n; i++) pipelined += `GET http://${originAt()}/p${i} HTTP/1.1\r\nHost: ${originAt()}\r\n${proxyAuth}${i === n - 1 ? 'Connection: close\r\n' : ''}\r\n`;
    const got = await exchange(path, pipelined, 10_000);
    await net.release();
    expect(got.match(/origin saw \/p\d+/g)).toEqual(Array.from({ length: n }, (_, i) => `origin saw /p${i}`));
    expect(originMostOpen).toBe(1);
    expect(seen.map((c) => c.url)).toEqual(Array.from({ length: n }, (_, i) => `http://${originAt()}/p${i}`));
  });

  it('passes an HTTP/1.0 request without a Host header', async () => {
    const { seen, net, path, proxyAuth } = await forCommand([originAt()]);
    const got = await exchange(path, `GET http://${originAt()}/old HTTP/1.0\r\n${proxyAuth}\r\n`);
    await net.release();
    expect(got).toMatch(/^HTTP\/1\.[01] 200/);
    expect(got).toContain('origin saw /old');
    expect(seen[0]).toMatchObject({ allowed: true, status: 200 });
  });

  it('passes an absolute https:// request on to the proxy, and cuts a head that never ends', async () => {
    const { seen, net, path, proxyAuth } = await forCommand([originAt()], { headMs: 200 });
    // The origin speaks plain HTTP, so the proxy's TLS to it fails: what matters is that the tap passed it on.
    const got = await exchange(path, `GET https://${originAt()}/tls HTTP/1.1\r\nHost: ${originAt()}\r\n${proxyAuth}Connection: close\r\n\r\n`, 10_000);
    expect(got).toMatch(/^HTTP\/1\.1 \d{3}/);
    expect(got).not.toMatch(/absolute http/);
    const half = await exchangeFully(path, `GET http://${originAt()}/slow HTTP/1.1\r\nHost: ${originAt()}\r\n`, 10_000);
    expect(half.timedOut).toBe(false); // the tap closed it
    await net.release();
    expect(seen.map((c) => [c.url, c.port])).toEqual([[`https://${originAt()}/tls`, (origin.address() as AddressInfo).port]]);
    expect(originSaw).not.toContain('/slow');
  });

  it('cuts a connection that queues too many requests, and refuses connections over the limit, reported', async () => {
    const { seen, net, path, proxyAuth } = await forCommand([originAt()], { maxQueued: 4, maxConnections: 2 });
    let many = '';
    for (let i = 0; i < 40; i++) many += `GET http://${originAt()}/q${i} HTTP/1.1\r\nHost: ${originAt()}\r\n${proxyAuth}\r\n`;
    const got = await exchange(path, many, 10_000);
    expect((got.match(/origin saw/g) ?? []).length).toBeLessThan(40);
    const open = [connect(path), connect(path)];
    await new Promise((r) => setTimeout(r, 100));
    const third = await exchange(path, `GET http://${originAt()}/third HTTP/1.1\r\nHost: ${originAt()}\r\n${proxyAuth}\r\n`);
    expect(third).toBe('');
    for (const o of open) o.destroy();
    await net.release();
    expect(originSaw).not.toContain('/third');
    expect(seen.filter((c) => c.reason?.includes('over the limit of 2 connections'))).toHaveLength(1);
    expect(seen.filter((c) => c.url?.includes('/q')).length).toBeLessThanOrEqual(5);
  });

  it('reports a tunnel still open when the command ends, with the bytes that went through it', async () => {
    const target = `127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const seen: TappedConnection[] = [];
    const net = await network.forCommand([target], { ended: (c) => seen.push(c), opened: async () => {} });
    const auth = new URL(net.env['HTTP_PROXY']!);
    const credentials = Buffer.from(`${decodeURIComponent(auth.username)}:${decodeURIComponent(auth.password)}`).toString('base64');
    const socket: Socket = connect(net.relays[0]!.path);
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString()));
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Basic ${credentials}\r\n\r\n`);
    await expect.poll(() => got).toMatch(/^HTTP\/1\.1 200/);
    socket.write('ping through the tunnel');
    await expect.poll(() => got).toContain('ping through the tunnel');
    expect(seen).toEqual([]); // still open: reported once it ends
    await net.release();
    await new Promise((r) => (socket.destroyed ? r(undefined) : socket.once('close', r)));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ via: 'connect', host: '127.0.0.1', port: (echo.address() as AddressInfo).port, allowed: true, status: 200 });
    expect(seen[0]!.bytesOut).toBeGreaterThan('ping through the tunnel'.length);
    expect(seen[0]!.bytesIn).toBeGreaterThan('ping through the tunnel'.length);
  });

  /** A command that may reach the echo server, whose tunnels wait on `record` (the broker's durable record) before opening. */
  async function gatedCommand(record: () => Promise<void>) {
    const target = `127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const seen: TappedConnection[] = [];
    const opened: OpenedTunnel[] = [];
    const net = await network.forCommand([target], { ended: (c) => seen.push(c), opened: (t) => (opened.push(t), record()) });
    const auth = new URL(net.env['HTTP_PROXY']!);
    const [user, pass] = [decodeURIComponent(auth.username), decodeURIComponent(auth.password)];
    const socket = connect(net.relays[0]!.path);
    let got = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
    socket.on('error', () => {});
    const closed = new Promise((r) => socket.once('close', r));
    echoSaw = '';
    return { target, seen, opened, net, user, pass, socket, got: () => got, closed };
  }
  const settle = () => new Promise((r) => setTimeout(r, 300));

  it('holds a granted CONNECT tunnel, and what the command sent after its head, until its opening is recorded', async () => {
    let recorded!: () => void;
    const c = await gatedCommand(() => new Promise((r) => (recorded = r)));
    const credentials = Buffer.from(`${c.user}:${c.pass}`).toString('base64');
    c.socket.write(`CONNECT ${c.target} HTTP/1.1\r\nHost: ${c.target}\r\nProxy-Authorization: Basic ${credentials}\r\n\r\nsent before the grant`);
    await expect.poll(() => c.opened.length).toBe(1);
    await settle();
    expect(c.got().toString()).toBe(''); // not even the proxy's 200
    expect(echoSaw).toBe(''); // nor the bytes that followed the head
    recorded();
    await expect.poll(() => c.got().toString()).toMatch(/^HTTP\/1\.1 200[\s\S]*\r\n\r\nsent before the grant$/);
    expect(echoSaw).toBe('sent before the grant');
    c.socket.destroy();
    await c.net.release();
    expect(c.opened[0]).toMatchObject({ via: 'connect', host: '127.0.0.1', port: (echo.address() as AddressInfo).port });
    expect(c.seen).toHaveLength(1);
    expect(c.seen[0]).toMatchObject({ id: c.opened[0]!.id, via: 'connect', allowed: true, status: 200 });
  });

  it('holds a SOCKS5 reply, and what the command sent after its request, until the opening is recorded', async () => {
    let recorded!: () => void;
    const c = await gatedCommand(() => new Promise((r) => (recorded = r)));
    const port = (echo.address() as AddressInfo).port;
    // Greeting, login, request and data in one write, before any answer.
    c.socket.write(Buffer.concat([
      Buffer.from([5, 1, 2]),
      Buffer.from([1, c.user.length, ...Buffer.from(c.user), c.pass.length, ...Buffer.from(c.pass)]),
      Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255]),
      Buffer.from('sent before the reply'),
    ]));
    await expect.poll(() => c.opened.length).toBe(1);
    await settle();
    expect([...c.got()]).toEqual([5, 2]); // the method choice passed; what the proxy sent after the request waits
    expect(echoSaw).toBe('');
    recorded();
    await expect.poll(() => c.got().subarray(4).toString('latin1')).toMatch(/sent before the reply$/);
    expect([...c.got().subarray(4, 6)]).toEqual([5, 0]);
    expect(echoSaw).toBe('sent before the reply');
    c.socket.destroy();
    await c.net.release();
    expect(c.opened[0]).toMatchObject({ via: 'socks5', host: '127.0.0.1', port });
    expect(c.seen[0]).toMatchObject({ id: c.opened[0]!.id, via: 'socks5', allowed: true, status: 0 });
  });

  it('cuts a tunnel whose opening cannot be recorded, CONNECT or SOCKS5: nothing passes either way, and it is not recorded as allowed', async () => {
    for (const via of ['connect', 'socks5'] as const) {
      const c = await gatedCommand(() => Promise.reject(new Error('the audit log is closed')));
      const port = (echo.address() as AddressInfo).port;
      const credentials = Buffer.from(`${c.user}:${c.pass}`).toString('base64');
      c.socket.write(via === 'connect'
        ? `CONNECT ${c.target} HTTP/1.1\r\nHost: ${c.target}\r\nProxy-Authorization: Basic ${credentials}\r\n\r\nsent before the grant`
        : Buffer.concat([Buffer.from([5, 1, 2, 1, c.user.length, ...Buffer.from(c.user), c.pass.length, ...Buffer.from(c.pass)]), Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255]), Buffer.from('sent before the reply')]));
      await c.closed;
      await c.net.release();
      expect(c.got().length).toBeLessThanOrEqual(2); // at most the SOCKS5 method choice
      expect(echoSaw).toBe('');
      expect(c.seen).toHaveLength(1);
      expect(c.seen[0]).toMatchObject({ via, allowed: false, status: via === 'connect' ? 200 : 0 });
      expect(c.seen[0]!.reason).toBe('cut by Tether before anything passed through it: the audit log is closed');
    }
  });

  it('passes a SOCKS5 request sent with a long first flight of data once the tunnel is open', async () => {
    let recorded!: () => void;
    const c = await gatedCommand(() => new Promise((r) => (recorded = r)));
    const port = (echo.address() as AddressInfo).port;
    const hello = 'h'.repeat(1500);
    c.socket.write(Buffer.concat([Buffer.from([5, 1, 2, 1, c.user.length, ...Buffer.from(c.user), c.pass.length, ...Buffer.from(c.pass)]), Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255]), Buffer.from(hello)]));
    await expect.poll(() => c.opened.length).toBe(1);
    recorded();
    await expect.poll(() => echoSaw).toBe(hello);
    c.socket.destroy();
    await c.net.release();
    expect(c.seen[0]).toMatchObject({ via: 'socks5', allowed: true });
  });

  it('opens nothing for a SOCKS5 client without the proxy id, whatever the proxy answers it', async () => {
    const c = await gatedCommand(async () => {});
    const host = 'never-listed.example';
    c.socket.write(Buffer.from([5, 1, 0])); // offers no login
    await expect.poll(() => c.got().length).toBeGreaterThanOrEqual(2);
    c.socket.write(Buffer.from([5, 1, 0, 3, host.length, ...Buffer.from(host), 0, 22]));
    await c.closed;
    await c.net.release();
    expect(c.opened).toEqual([]);
    expect([...c.got()]).toEqual([5, 0]); // the method choice; the success that followed was not passed on
    expect(c.seen[0]).toMatchObject({ via: 'socks5', host, port: 22, allowed: false });
    expect(c.seen[0]!.reason).toMatch(/cut by Tether: the proxy's answer looked like a grant/);
  });

  it('records no opening for a tunnel the proxy refuses, and passes the refusal on at once', async () => {
    const c = await gatedCommand(() => new Promise(() => {})); // would hold forever
    const credentials = Buffer.from(`${c.user}:${c.pass}`).toString('base64');
    c.socket.write(`CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic ${credentials}\r\n\r\nnever passed`);
    await expect.poll(() => c.got().toString()).toMatch(/^HTTP\/1\.1 403/);
    c.socket.destroy();
    await c.net.release();
    expect(c.opened).toEqual([]);
    expect(c.seen[0]).toMatchObject({ host: 'example.com', allowed: false, status: 403 });
  });
});
