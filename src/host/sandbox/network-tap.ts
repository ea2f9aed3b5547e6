// The network tap of one sandboxed command: every connection the command
// makes passes through it, so each can be audited on its own and attributed to
// the command by the socket it arrived on, not by anything the command says.
//
// The command's sandbox gets the tap's two Unix sockets in place of the
// filtering proxy's (sandbox-network.ts). The tap hands every connection on to
// that proxy unchanged, and the proxy still decides (the command's domain
// list, the resolved-address check). The tap sees, per connection: what the
// command asked for (host and port; the method and URL of a plain HTTP
// request), what the proxy answered (the CONNECT status, the SOCKS5 reply, or
// the HTTP status and the proxy's refusal mark), the bytes each way (heads
// included) and how long it lasted. Each is reported once it has ended.
//
// Like the proxy, both sockets serve every protocol, told apart by the first
// byte. HTTP: node's HTTP server parses what the command sends, and the
// requests of one connection go to the proxy one at a time, each reported on
// its own (an Upgrade is not passed on: the request is answered as a plain
// one and the connection closed after it, so nothing unparsed follows). A
// CONNECT becomes a byte tunnel to the proxy once its head has been passed
// on. SOCKS (4, 4a, 5) is relayed as a small parser follows the handshake
// (for SOCKS5: greeting, the username/password step that carries the
// command's proxy id, the request, the reply); a stream that breaks the
// protocol is cut.
//
// A tunnel (CONNECT or SOCKS) can carry anything for as long as it stays
// open, so it is also reported when it opens: once the proxy has granted it,
// the tap holds the grant and whatever either side sent after the request
// until the `opened` hook has returned (the broker makes the record durable),
// and cuts the tunnel if the hook fails. Nothing of the command's passes
// through a tunnel, and nothing of the destination's reaches the command,
// before its opening is on record; a tunnel still open when Tether dies is in
// the log. A plain request is one exchange, reported when it ends.
//
// Allowed means the proxy let it through to a destination on the command's
// own list: its 200 to a CONNECT, its SOCKS success reply (for SOCKS5 only
// after it accepted the login that carries the command's proxy id: it
// answers a client without one with a success it does not mean), and for a
// plain request an answer the proxy did not mark as its refusal (the answer
// may be the destination's), so a command cannot have a destination it was
// never given recorded as allowed.
//
// Limits (TAP_LIMITS): connections open at once per command (more are
// refused and reported), requests waiting on one connection (more cut it),
// and a connection must start within a time and finish its first HTTP head
// within another.
//
// Not here: what the bytes mean (TLS is not opened). A refusal of a plain HTTP
// request is told by the proxy's X-Proxy-Error mark, which a destination
// server could imitate, so the bytes sent are recorded either way.

import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A tunnel the proxy granted, before anything has passed through it. */
export interface OpenedTunnel {
  /** Names the connection: its TappedConnection, once it ends, has the same id. */
  readonly id: string;
  readonly via: 'connect' | 'socks4' | 'socks5';
  readonly host: string;
  readonly port: number;
  /** Epoch ms when the command's connection arrived. */
  readonly startedAt: number;
}

/** What a tap tells of the connections it passes. */
export interface TapReporter {
  /** Each connection (or plain request) once it has ended, exactly once. */
  readonly ended: (c: TappedConnection) => void;
  /** A granted tunnel, before anything passes through it: the tunnel waits for it and is cut if it rejects. */
  readonly opened: (t: OpenedTunnel) => Promise<void>;
}

/** One connection (or one plain HTTP request) a sandboxed command made. */
export interface TappedConnection {
  /** Unique per connection (an OpenedTunnel told before has the same). */
  readonly id: string;
  /** How it asked: a plain HTTP proxy request, an HTTP CONNECT tunnel, or SOCKS. */
  readonly via: 'http' | 'connect' | 'socks4' | 'socks5';
  /** Where it asked to go: the host in lower case, IPv6 without brackets ('' when the request could not be read). */
  readonly host: string;
  readonly port: number;
  /** Plain HTTP: the method, and the URL without its query or credentials. */
  readonly method?: string;
  readonly url?: string;
  /** Whether the proxy let it through. */
  readonly allowed: boolean;
  /** HTTP status the command got (for CONNECT, the proxy's), or the SOCKS reply code. */
  readonly status?: number;
  /** Why it was refused or failed, as the proxy or the tap says it. */
  readonly reason?: string;
  /** Bytes the command sent and received on it, heads included. */
  readonly bytesOut: number;
  readonly bytesIn: number;
  /** Epoch ms when it arrived, and how long until it ended. */
  readonly startedAt: number;
  readonly durationMs: number;
}

export interface TapUpstream {
  /** The filtering proxy's HTTP socket and SOCKS5 socket. */
  readonly http: string;
  readonly socks: string;
}

/** Why an answer that looks like a grant is not recorded as one. */
const NOT_LISTED = 'not a destination of this command, so not one the proxy passes';
/** The proxy marks its own refusals with this header. */
const REFUSAL_MARK = 'x-proxy-error';
/** Hop-by-hop headers of one leg; never passed to the other. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);
/** How much of an answer's head the tap reads to find its status (and of a refusal's body, its reason). */
const MAX_HEAD_BYTES = 16 * 1024;
const MAX_REASON_BYTES = 512;
/** Limits per command (see above). */
export interface TapLimits {
  readonly maxConnections: number;
  readonly maxQueued: number;
  readonly firstByteMs: number;
  readonly headMs: number;
}
export const TAP_LIMITS: TapLimits = { maxConnections: 128, maxQueued: 32, firstByteMs: 10_000, headMs: 60_000 };
/** The longest SOCKS5 handshake step: a request naming a 255-byte host, or a 255+255-byte login. */
const MAX_SOCKS_STEP = 600;
/** What an optimistic SOCKS5 client may send (login, request, first data) before the proxy has chosen a method. */
const MAX_EARLY_BYTES = 64 * 1024;

const SOCKS4_GRANTED = 90;
const SOCKS4_REPLIES: Record<number, string> = {
  91: 'request rejected or failed',
  92: 'the proxy could not reach identd',
  93: 'identd did not confirm the user',
};
const SOCKS5_REPLIES: Record<number, string> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

/** A connection being followed; reported exactly once. */
class Flow {
  readonly id = randomUUID();
  host = '';
  port = 0;
  method: string | undefined;
  url: string | undefined;
  status: number | undefined;
  allowed = false;
  reason: string | undefined;
  bytesOut = 0;
  bytesIn = 0;
  readonly startedAt = Date.now();
  private readonly t0 = performance.now();
  private reported = false;
  /** Why Tether cut it: reported as not allowed, whatever the proxy said. */
  private cutBy: string | undefined;
  via: TappedConnection['via'];
  private readonly report: (c: TappedConnection) => void;
  constructor(via: TappedConnection['via'], report: (c: TappedConnection) => void) {
    this.via = via;
    this.report = report;
  }

  cut(why: string): void {
    this.cutBy ??= why;
  }

  end(reason?: string): void {
    if (this.reported) return;
    this.reported = true;
    if (this.cutBy !== undefined) this.reason = this.cutBy;
    else if (reason !== undefined && this.reason === undefined) this.reason = reason;
    this.report({
      id: this.id, via: this.via, host: this.host, port: this.port,
      ...(this.method !== undefined ? { method: this.method } : {}),
      ...(this.url !== undefined ? { url: this.url } : {}),
      allowed: this.allowed && this.cutBy === undefined,
      ...(this.status !== undefined ? { status: this.status } : {}),
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
      bytesOut: this.bytesOut, bytesIn: this.bytesIn,
      startedAt: this.startedAt, durationMs: Math.round((performance.now() - this.t0) * 1000) / 1000,
    });
  }
}

export class NetworkTap {
  readonly httpPath: string;
  readonly socksPath: string;
  private readonly dir: string;
  private readonly upstream: TapUpstream;
  private readonly report: (c: TappedConnection) => void;
  private readonly opened: TapReporter['opened'];
  private readonly domains: readonly Domain[];
  private readonly limits: TapLimits;
  private readonly sockets = new Set<net.Socket>();
  private readonly flows = new Set<Promise<void>>();
  /** Connections the command opened that are still open. */
  private clients = 0;
  /** Per connection: the request being passed on and those waiting behind it. */
  private readonly queues = new WeakMap<net.Socket, { tail: Promise<void>; length: number }>();
  private readonly headTimers = new WeakMap<net.Socket, NodeJS.Timeout>();
  /** Parses the HTTP connections the fronts hand it; listens on nothing itself. */
  private readonly httpServer: http.Server;
  private readonly fronts: net.Server[];
  private closing: Promise<void> | undefined;

  /**
   * Listens on two new sockets in a private directory. `domains` are the
   * command's (exact names, optional :port, as the proxy has them);
   * `reporter` is told of each tunnel as it opens and of each connection
   * once it ends.
   */
  static async open(upstream: TapUpstream, domains: readonly string[], reporter: TapReporter, limits: Partial<TapLimits> = {}): Promise<NetworkTap> {
    const dir = await mkdtemp(join(tmpdir(), 'tether-net-'));
    const tap = new NetworkTap(dir, upstream, domains, reporter, { ...TAP_LIMITS, ...limits });
    try {
      await Promise.all([listen(tap.fronts[0]!, tap.httpPath), listen(tap.fronts[1]!, tap.socksPath)]);
      return tap;
    } catch (e) {
      await tap.close();
      throw new Error(`the network tap for a sandboxed command could not listen in ${dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  private constructor(dir: string, upstream: TapUpstream, domains: readonly string[], reporter: TapReporter, limits: TapLimits) {
    this.dir = dir;
    this.limits = limits;
    this.domains = domains.map(parseDomain);
    this.httpPath = join(dir, 'http.sock');
    this.socksPath = join(dir, 'socks.sock');
    this.upstream = upstream;
    this.opened = reporter.opened;
    this.report = (c) => {
      try {
        reporter.ended(c);
      } catch (e) {
        console.error('tether: a network connection could not be reported:', (e as Error).message);
      }
    };
    // Never listens, so its own timeouts never run: accept() times the start and the first head.
    this.httpServer = http.createServer({ requestTimeout: 0 });
    this.httpServer.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.queue(req, res));
    this.httpServer.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      clearTimeout(this.headTimers.get(socket));
      this.follow((done) => this.tunnel(req, socket, head, done));
    });
    this.httpServer.on('clientError', (_e: Error, socket: net.Socket) => socket.destroy());
    this.fronts = [net.createServer((s) => this.accept(s)), net.createServer((s) => this.accept(s))];
  }

  /** Tells the protocol by the first byte (SOCKS 4 and 5 begin with their version; HTTP with a letter). */
  private accept(s: net.Socket): void {
    this.track(s);
    if (this.clients >= this.limits.maxConnections) {
      s.destroy();
      new Flow('http', this.report).end(`refused by Tether: over the limit of ${this.limits.maxConnections} connections open at once for one command`);
      return;
    }
    this.clients++;
    const silent = setTimeout(() => s.destroy(), this.limits.firstByteMs);
    s.once('close', () => {
      this.clients--;
      clearTimeout(silent);
      clearTimeout(this.headTimers.get(s));
    });
    const onReadable = () => {
      const first = s.read(1) as Buffer | null;
      if (!first) return;
      clearTimeout(silent);
      s.off('readable', onReadable);
      s.unshift(first);
      if (first[0] === 4 || first[0] === 5) return this.follow((done) => this.socks(s, done));
      this.headTimers.set(s, setTimeout(() => s.destroy(), this.limits.headMs));
      this.httpServer.emit('connection', s);
    };
    s.on('readable', onReadable);
  }

  /** The requests of one connection go to the proxy one at a time, in order (so one connection is one upstream at most). */
  private queue(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    clearTimeout(this.headTimers.get(socket));
    const q = this.queues.get(socket) ?? { tail: Promise.resolve(), length: 0 };
    this.queues.set(socket, q);
    if (q.length >= this.limits.maxQueued) {
      socket.destroy();
      return;
    }
    q.length++;
    this.follow((done) => {
      q.tail = q.tail.then(() => new Promise<void>((next) => {
        let settled = false;
        const finished = () => {
          if (settled) return;
          settled = true;
          q.length--;
          next();
          done();
        };
        try {
          this.plainRequest(req, res, finished);
        } catch (e) {
          // Nothing here should throw (node's parser has checked what reaches it); if it does, the connection ends, reported.
          res.destroy();
          new Flow('http', this.report).end(`Tether could not pass the request on: ${(e as Error).message}`);
          finished();
        }
      }));
    });
  }

  /** Stops listening, cuts what is still open, and returns once every connection has been reported. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.fronts.map(closeServer), (async () => {
        for (const s of this.sockets) s.destroy();
        await Promise.allSettled([...this.flows]);
      })()]);
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.closing;
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('error', () => {}); // a reset by either side ends the flow through 'close'
    s.once('close', () => this.sockets.delete(s));
  }

  private follow(run: (done: () => void) => void): void {
    let done!: () => void;
    const p = new Promise<void>((resolve) => (done = resolve));
    this.flows.add(p);
    void p.finally(() => this.flows.delete(p));
    run(done);
  }

  /** Whether host:port is on the command's list (so the proxy may pass it). */
  private listed(host: string, port: number): boolean {
    const h = host.replace(/\.$/, '');
    return this.domains.some((d) => d.host === h && (d.port === undefined || d.port === port));
  }

  /** A plain HTTP proxy request: passed to the proxy as a request of its own. */
  private plainRequest(req: http.IncomingMessage, res: http.ServerResponse, done: () => void): void {
    const flow = new Flow('http', this.report);
    const finish = (reason?: string) => {
      flow.end(reason);
      done();
    };
    flow.method = req.method;
    flow.bytesOut = headBytes(`${req.method} ${req.url} HTTP/${req.httpVersion}`, req.rawHeaders);
    let target: URL | undefined;
    try {
      target = new URL(req.url ?? '');
    } catch {
      // not absolute: answered below
    }
    if (!target || (target.protocol !== 'http:' && target.protocol !== 'https:')) {
      flow.status = 400;
      if (!res.headersSent && !res.destroyed) res.writeHead(400, { 'Content-Type': 'text/plain', Connection: 'close' }).end('tether: a proxy request needs an absolute http:// or https:// URL\n');
      finish(`not an absolute http(s) URL: ${String(req.url).slice(0, 200)}`);
      return;
    }
    flow.host = bareHost(target.hostname);
    flow.port = target.port ? Number(target.port) : target.protocol === 'https:' ? 443 : 80;
    flow.url = `${target.protocol}//${target.host}${target.pathname}`;
    if (res.destroyed || req.socket.destroyed) return finish('the connection ended before the request was passed on');
    // An Upgrade is answered as a plain request, and the connection closed after it: what would follow it is not parsed.
    if (req.headers.upgrade !== undefined) res.once('finish', () => req.socket.end());

    const headers = withoutHopByHop(req.rawHeaders);
    if (req.headers.host === undefined) headers.push('Host', target.host); // HTTP/1.0 may leave it out; the proxy speaks 1.1
    const up = http.request({ socketPath: this.upstream.http, method: req.method, path: req.url, headers, agent: false });
    let refusal: { mark: string; body: Buffer[]; kept: number } | undefined;
    up.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain', Connection: 'close' }).end('tether: the sandbox network proxy did not answer\n');
      else res.destroy();
      finish(`the sandbox network proxy did not answer: ${e.message}`);
    });
    up.on('response', (answer) => {
      flow.status = answer.statusCode;
      // The answer may be the destination's, so only a destination the proxy may pass counts as allowed.
      const mark = answer.headers[REFUSAL_MARK] ?? (answer.statusCode === 407 ? 'proxy authentication required (the command did not present its proxy id)' : undefined);
      const listed = this.listed(flow.host, flow.port);
      flow.allowed = mark === undefined && listed;
      if (mark !== undefined) refusal = { mark: String(mark), body: [], kept: 0 };
      else if (!listed) refusal = { mark: 'not a destination of this command, so not one the proxy passes', body: [], kept: MAX_REASON_BYTES };
      flow.bytesIn = headBytes(`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}`, answer.rawHeaders);
      try {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, withoutHopByHop(answer.rawHeaders));
      } catch (e) {
        answer.destroy();
        res.destroy();
        refusal ??= { mark: `Tether could not pass the answer on (${(e as Error).message})`, body: [], kept: MAX_REASON_BYTES };
        return;
      }
      answer.on('data', (chunk: Buffer) => {
        flow.bytesIn += chunk.length;
        if (refusal && refusal.kept < MAX_REASON_BYTES) {
          refusal.body.push(chunk.subarray(0, MAX_REASON_BYTES - refusal.kept));
          refusal.kept += chunk.length;
        }
      });
      answer.on('error', () => res.destroy());
      answer.pipe(res);
    });
    req.on('data', (chunk: Buffer) => (flow.bytesOut += chunk.length));
    req.pipe(up);
    res.once('close', () => {
      if (!res.writableFinished) {
        up.destroy();
        return finish('the connection ended before the answer did');
      }
      finish(refusal ? refusalReason(refusal.mark, Buffer.concat(refusal.body)) : undefined);
    });
  }

  /**
   * CONNECT: the head is passed on; what the command sends after it waits
   * for the proxy's answer. A grant (200) is passed on once the opening is
   * recorded, then bytes go both ways until either side ends.
   */
  private tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer, done: () => void): void {
    const flow = new Flow('connect', this.report);
    const target = hostPort(req.url ?? '');
    flow.host = target?.host ?? '';
    flow.port = target?.port ?? 0;
    const first = Buffer.from(headText(`${req.method} ${req.url} HTTP/${req.httpVersion}`, req.rawHeaders), 'latin1');
    flow.bytesOut = first.length + head.length;
    client.pause(); // explicitly: the byte counter below must not start it
    const up = net.connect(this.upstream.http);
    this.track(up);
    const held: Held = { fromClient: head.length > 0 ? [head] : [], fromUp: [], relaying: false };
    let answered = false;
    let seen = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => (flow.bytesOut += chunk.length));
    up.on('data', (chunk: Buffer) => {
      flow.bytesIn += chunk.length;
      if (!held.relaying) held.fromUp.push(chunk);
      // Read the answer's head, and a refusal's body (its reason), then only count.
      if ((answered && flow.allowed) || seen.length >= MAX_HEAD_BYTES + MAX_REASON_BYTES) return;
      seen = Buffer.concat([seen, chunk]).subarray(0, MAX_HEAD_BYTES + MAX_REASON_BYTES);
      const h = parseHead(seen);
      if (!h) return;
      flow.status = h.status;
      // Only the proxy's own answer to a destination on the command's list counts as a grant.
      flow.allowed = h.status === 200 && this.listed(flow.host, flow.port);
      if (h.status !== 200) flow.reason = refusalReason(h.refusal ?? `status ${h.status}`, seen.subarray(h.bodyAt, h.bodyAt + MAX_REASON_BYTES));
      else if (!flow.allowed) flow.reason = NOT_LISTED;
      if (!answered) {
        answered = true;
        this.openTunnel(flow, client, up, held, h.status === 200 && !flow.allowed ? NOT_LISTED : undefined);
      }
    });
    whenBothClosed(client, up, () => {
      flow.end(answered ? undefined : 'the sandbox network proxy did not answer');
      done();
    });
    up.write(first);
  }

  /**
   * SOCKS 4, 4a or 5: the handshake is passed on as far as the parser has
   * followed it; what the command sends after its request, and the proxy's
   * reply, wait until the tunnel is granted and its opening recorded.
   */
  private socks(client: net.Socket, done: () => void): void {
    const watch = new SocksWatch();
    const flow = new Flow('socks5', this.report);
    const up = net.connect(this.upstream.socks);
    this.track(up);
    const held: Held = { fromClient: [], fromUp: [], relaying: false };
    let unsent = Buffer.alloc(0); // the command's bytes not passed on yet
    let requested = false;
    let opening = false;
    const learn = () => {
      if (watch.version === 4) flow.via = 'socks4';
      if (watch.target) {
        flow.host = watch.target.host;
        flow.port = watch.target.port;
      }
      flow.status = watch.reply;
      flow.allowed = watch.granted && this.listed(flow.host, flow.port);
    };
    const cut = () => {
      client.destroy();
      up.destroy();
    };
    /** Passes on the handshake bytes the parser has read; from the request on, holds the rest. */
    const pass = () => {
      if (requested) return;
      const n = unsent.length - watch.unreadFromClient;
      if (n > 0) up.write(unsent.subarray(0, n));
      unsent = unsent.subarray(Math.max(n, 0));
      if (watch.target) {
        requested = true;
        if (unsent.length > 0) held.fromClient.push(unsent);
        client.pause(); // what follows the request waits for the reply: no more than the socket's buffers
      }
    };
    client.on('data', (chunk: Buffer) => {
      flow.bytesOut += chunk.length;
      if (held.relaying) return;
      if (requested) {
        held.fromClient.push(chunk);
        return;
      }
      unsent = Buffer.concat([unsent, chunk]);
      if (!watch.fromClient(chunk)) return cut();
      pass();
    });
    up.on('data', (chunk: Buffer) => {
      flow.bytesIn += chunk.length;
      if (held.relaying) return;
      // Sent after the request reached the proxy: the login's answer or the reply, held with what follows.
      const afterRequest = requested || watch.reply !== undefined;
      if (watch.reply === undefined && !watch.fromServer(chunk)) return cut();
      pass(); // the proxy's method choice may let the parser read a login or request sent with the greeting
      if (!afterRequest && watch.reply === undefined) {
        client.write(chunk);
        return;
      }
      held.fromUp.push(chunk);
      if (watch.reply === undefined || opening) return;
      opening = true;
      learn();
      const looksGranted = watch.reply === (watch.version === 4 ? SOCKS4_GRANTED : 0);
      const notGranted = !looksGranted || flow.allowed ? undefined : watch.granted ? NOT_LISTED : 'the proxy had not accepted a login (the command\'s proxy id)';
      this.openTunnel(flow, client, up, held, notGranted);
    });
    whenBothClosed(client, up, () => {
      learn();
      const refused = watch.reply === undefined ? 'the handshake did not finish' : !watch.granted ? `the proxy answered: ${watch.replyText()}` : flow.allowed ? undefined : NOT_LISTED;
      flow.end(watch.error ?? refused);
      done();
    });
  }

  /**
   * Once the proxy has answered: a grant is recorded (the `opened` hook)
   * before what was held goes through; a refusal goes back to the command at
   * once, and what the command sent after its request is dropped. Then bytes
   * go both ways until either side ends. An answer that looks like a grant
   * but is not one Tether counts (see "Allowed" above) is cut: `notGranted` says why.
   */
  private openTunnel(flow: Flow, client: net.Socket, up: net.Socket, held: Held, notGranted?: string): void {
    up.pause();
    client.pause();
    if (notGranted !== undefined) {
      flow.cut(`cut by Tether: the proxy's answer looked like a grant, but ${notGranted}`);
      client.destroy();
      up.destroy();
      return;
    }
    const recorded = flow.allowed
      ? this.opened({ id: flow.id, via: flow.via as OpenedTunnel['via'], host: flow.host, port: flow.port, startedAt: flow.startedAt })
      : Promise.resolve();
    recorded.then(() => {
      if (client.destroyed || up.destroyed) {
        flow.cut('cut by Tether: the connection closed before the tunnel opened, so nothing passed through it');
        return;
      }
      held.relaying = true;
      for (const b of held.fromUp.splice(0)) client.write(b);
      up.pipe(client);
      if (flow.allowed) {
        for (const b of held.fromClient.splice(0)) up.write(b);
        client.pipe(up);
      } else {
        held.fromClient.length = 0;
        client.resume(); // read (and counted), never passed on: the proxy has refused
      }
    }, (e: unknown) => {
      flow.cut(`cut by Tether before anything passed through it: ${(e as Error).message}`);
      client.destroy();
      up.destroy();
    });
  }
}

/** What a tunnel holds back until it is open: the command's bytes after its request, and the proxy's answer onwards. */
interface Held {
  readonly fromClient: Buffer[];
  readonly fromUp: Buffer[];
  /** Set once the tunnel relays: nothing more is held. */
  relaying: boolean;
}

/** When either socket closes the other is destroyed; `ended` once both have closed. */
function whenBothClosed(a: net.Socket, b: net.Socket, ended: () => void): void {
  let closed = 0;
  const onClose = (other: net.Socket) => () => {
    other.destroy();
    if (++closed === 2) ended();
  };
  a.once('close', onClose(b));
  b.once('close', onClose(a));
}

/**
 * Follows both sides of a SOCKS handshake as bytes pass, without changing
 * them: SOCKS4 and 4a (a request, a reply), or SOCKS5 (RFC 1928, with RFC
 * 1929's username/password step). A false return means the stream breaks the
 * protocol: the caller cuts it.
 */
export class SocksWatch {
  /** 4 or 5, from the first byte. */
  version: number | undefined;
  target: { host: string; port: number; command: number } | undefined;
  /** The proxy's reply code to the request (SOCKS5 0, SOCKS4 90: granted). */
  reply: number | undefined;
  error: string | undefined;
  private client: Buffer = Buffer.alloc(0);
  private server: Buffer = Buffer.alloc(0);
  private clientStep: 'greeting' | 'login' | 'request' | 'done' = 'greeting';
  private serverStep: 'method' | 'login' | 'reply' | 'done' = 'method';
  /** The SOCKS5 method the proxy chose (2: username/password). */
  private method: number | undefined;
  private loginAccepted = false;

  /** Bytes the command sent that the parser has not read as handshake (after the request: what followed it). */
  get unreadFromClient(): number {
    return this.client.length;
  }

  /**
   * The proxy granted the request. For SOCKS5 only after it accepted the
   * login (the command's proxy id): the proxy answers a client without one
   * with a success reply it does not mean (then closes).
   */
  get granted(): boolean {
    if (this.error !== undefined) return false;
    return this.version === 4 ? this.reply === SOCKS4_GRANTED : this.reply === 0 && this.loginAccepted;
  }

  replyText(): string {
    if (this.reply === undefined) return 'no reply';
    const known = this.version === 4 ? SOCKS4_REPLIES[this.reply] : SOCKS5_REPLIES[this.reply];
    return known ?? `reply ${this.reply}`;
  }

  fromClient(chunk: Buffer): boolean {
    if (this.clientStep === 'done') return true;
    this.client = Buffer.concat([this.client, chunk]);
    return this.advance();
  }

  fromServer(chunk: Buffer): boolean {
    if (this.serverStep === 'done') return true;
    this.server = Buffer.concat([this.server, chunk]);
    return this.advance();
  }

  private fail(why: string): boolean {
    this.error = why;
    this.clientStep = 'done';
    this.serverStep = 'done';
    return false;
  }

  private advance(): boolean {
    for (;;) {
      const before = this.clientStep + this.serverStep;
      if (!this.clientStepOnce() || !this.serverStepOnce()) return false;
      if (this.clientStep + this.serverStep === before) break;
    }
    // What is left is one unfinished step, except: what follows the request is data, and an
    // optimistic client's bytes wait for the proxy's method choice before they can be read.
    const waitingForMethod = this.clientStep === 'login' && this.method === undefined;
    const clientLimit = this.clientStep === 'done' ? Infinity : waitingForMethod ? MAX_EARLY_BYTES : MAX_SOCKS_STEP;
    if (this.client.length > clientLimit || this.server.length > MAX_SOCKS_STEP) return this.fail('a SOCKS handshake step is too long');
    return true;
  }

  private clientStepOnce(): boolean {
    const b = this.client;
    if (this.version === undefined && b.length > 0) {
      this.version = b[0];
      if (this.version !== 4 && this.version !== 5) return this.fail('not a SOCKS handshake');
      if (this.version === 4) {
        this.clientStep = 'request';
        this.serverStep = 'reply';
      }
    }
    switch (this.clientStep) {
      case 'greeting': {
        if (b.length < 2) return true;
        const n = 2 + b[1]!;
        if (b.length < n) return true;
        this.client = b.subarray(n);
        this.clientStep = 'login';
        return true;
      }
      case 'login': {
        if (this.method === undefined) return true; // the proxy has not chosen yet
        if (this.method !== 2) {
          this.clientStep = 'request';
          return true;
        }
        if (b.length < 2) return true;
        const plenAt = 2 + b[1]!;
        if (b.length < plenAt + 1) return true;
        const n = plenAt + 1 + b[plenAt]!;
        if (b.length < n) return true;
        this.client = b.subarray(n);
        this.clientStep = 'request';
        return true;
      }
      case 'request':
        return this.version === 4 ? this.request4(b) : this.request5(b);
      default:
        return true;
    }
  }

  /** VER=4 CMD PORT(2) IP(4) USERID NUL, then for 4a (IP 0.0.0.x, x ≠ 0) HOST NUL. */
  private request4(b: Buffer): boolean {
    if (b.length < 9) return true;
    const userEnd = b.indexOf(0, 8);
    if (userEnd < 0) return true;
    let host = [...b.subarray(4, 8)].join('.');
    let end = userEnd;
    if (b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] !== 0) {
      end = b.indexOf(0, userEnd + 1);
      if (end < 0) return true;
      host = b.subarray(userEnd + 1, end).toString('latin1');
    }
    this.target = { host: bareHost(host), port: b.readUInt16BE(2), command: b[1]! };
    this.client = b.subarray(end + 1);
    this.clientStep = 'done';
    return true;
  }

  /** VER=5 CMD RSV ATYP ADDR PORT(2). */
  private request5(b: Buffer): boolean {
    if (b.length < 5) return true;
    if (b[0] !== 5) return this.fail('not a SOCKS5 request');
    const atyp = b[3]!;
    const addrLen = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + b[4]! : -1;
    if (addrLen < 0) return this.fail(`unknown SOCKS5 address type ${atyp}`);
    const n = 4 + addrLen + 2;
    if (b.length < n) return true;
    const addr = b.subarray(4, 4 + addrLen);
    const host = atyp === 1 ? [...addr].join('.') : atyp === 4 ? bareHost(ipv6(addr)) : bareHost(addr.subarray(1).toString('latin1'));
    this.target = { host, port: b.readUInt16BE(4 + addrLen), command: b[1]! };
    this.client = b.subarray(n);
    this.clientStep = 'done';
    return true;
  }

  private serverStepOnce(): boolean {
    const b = this.server;
    switch (this.serverStep) {
      case 'method':
        if (b.length < 2) return true;
        this.method = b[1]!;
        this.server = b.subarray(2);
        if (this.method === 0xff) return this.fail('the proxy accepted none of the offered SOCKS5 methods');
        this.serverStep = this.method === 2 ? 'login' : 'reply';
        return true;
      case 'login':
        if (b.length < 2) return true;
        this.server = b.subarray(2);
        if (b[1] !== 0) return this.fail('the proxy refused the SOCKS5 login (the command\'s proxy id)');
        this.loginAccepted = true;
        this.serverStep = 'reply';
        return true;
      case 'reply':
        if (b.length < 2) return true;
        this.reply = b[1]!;
        this.server = Buffer.alloc(0);
        this.serverStep = 'done';
        return true;
      default:
        return true;
    }
  }
}

function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/** "host:port" or "[v6]:port", as a CONNECT names its target. */
function hostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  return port > 0 && port < 65536 ? { host: bareHost(m[1] ?? m[2]!), port } : undefined;
}

/** A host as the audit log spells it: lower case, IPv6 without brackets and compressed. */
function bareHost(h: string): string {
  const inner = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (!inner.includes(':')) return inner.toLowerCase();
  try {
    return new URL(`http://[${inner}]/`).hostname.slice(1, -1);
  } catch {
    return inner.toLowerCase();
  }
}

interface Domain {
  readonly host: string;
  readonly port: number | undefined;
}

/** "name" or "name:port", as the command's list has them. */
function parseDomain(d: string): Domain {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(d)!;
  return { host: bareHost(m[1]!.replace(/\.$/, '')), port: m[2] !== undefined ? Number(m[2]) : undefined };
}

function headText(first: string, raw: readonly string[]): string {
  let s = `${first}\r\n`;
  for (let i = 0; i + 1 < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${s}\r\n`;
}

function headBytes(first: string, raw: readonly string[]): number {
  return Buffer.byteLength(headText(first, raw), 'latin1');
}

function withoutHopByHop(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** The status, refusal mark and body offset of an HTTP answer's head, once it is all there. */
function parseHead(b: Buffer): { status: number; refusal: string | undefined; bodyAt: number } | undefined {
  const end = b.indexOf('\r\n\r\n');
  if (end < 0) return b.length >= MAX_HEAD_BYTES ? { status: 0, refusal: 'an answer head over 16 KB', bodyAt: b.length } : undefined;
  const lines = b.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  let refusal: string | undefined;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === REFUSAL_MARK) refusal = line.slice(colon + 1).trim();
  }
  return { status: m ? Number(m[1]) : 0, refusal, bodyAt: end + 4 };
}

function refusalReason(mark: string, body: Buffer): string {
  const text = body.toString('utf8').replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 300);
  return text ? `${mark}: ${text}` : mark;
}

function listen(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
