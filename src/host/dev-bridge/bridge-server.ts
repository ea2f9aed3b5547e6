// The dev bridge: the renderer's API (src/common/ipc-contract.ts) over a
// WebSocket on loopback, so the real renderer can run in a plain browser
// against a real headless host. For tests and `npm run dev:web` only; the
// desktop app never starts it.
//
// Who may talk to it: a page that presents the per-run token. The token is
// written into index.html, which is served only to a request that already
// carries it (`/?token=…`), so other local pages cannot read it. The Host
// header must name the loopback address (no DNS rebinding), the Origin must be
// an allowed origin, and the socket binds 127.0.0.1 only.
//
// Not here: TLS (loopback only), several users (every connection sees every event).

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile, realpath } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { extname, join, normalize, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Event } from '../../common/emitter.ts';
import {
  BRIDGE_META_TOKEN, BRIDGE_META_URL, BRIDGE_SUBPROTOCOL, BRIDGE_TOKEN_PREFIX, BridgeClientMessageSchema, handleInvoke, rendererCsp,
  type ApiHandlers, type BridgeServerMessage,
} from '../../common/ipc-contract.ts';

export interface BridgeService extends ApiHandlers {
  readonly onDidEmit: Event<{ name: string; payload: unknown }>;
}

export interface BridgeServerOptions {
  readonly service: BridgeService;
  /** The built renderer (renderer/dist) to serve; omit to serve the socket only (vite serves the page). */
  readonly staticRoot?: string;
  /** 0 or absent: any free port. */
  readonly port?: number;
  /** Defaults to 32 random bytes. */
  readonly token?: string;
  /** Extra page origins allowed to connect (the vite dev server's). */
  readonly allowedOrigins?: readonly string[];
  /** Largest message accepted from a client. */
  readonly maxPayloadBytes?: number;
}

export interface BridgeServer {
  readonly port: number;
  readonly token: string;
  /** The page to open, token included. */
  readonly pageUrl: string;
  readonly wsUrl: string;
  readonly origin: string;
  /** Connections currently authenticated. */
  clients(): number;
  close(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
  '.woff2': 'font/woff2', '.json': 'application/json', '.map': 'application/json',
};

export function tokenMatches(expected: string, given: string | undefined | null): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Tokens from the Sec-WebSocket-Protocol header, as the browser sent them. */
function offeredProtocols(req: IncomingMessage): string[] {
  return (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
}

export async function startBridgeServer(opts: BridgeServerOptions): Promise<BridgeServer> {
  const token = opts.token ?? randomBytes(32).toString('hex');
  if (!/^[A-Za-z0-9_-]{32,256}$/.test(token)) throw new Error('the bridge token must be 32–256 characters of [A-Za-z0-9_-]');
  const root = opts.staticRoot ? await realpath(opts.staticRoot) : undefined;
  const sockets = new Set<WebSocket>();
  let port = 0;
  const hostOk = (req: IncomingMessage) => req.headers.host === `${LOOPBACK}:${port}` || req.headers.host === `localhost:${port}`;
  const origins = () => new Set([`http://${LOOPBACK}:${port}`, `http://localhost:${port}`, ...(opts.allowedOrigins ?? [])]);

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayloadBytes ?? 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has(BRIDGE_SUBPROTOCOL) ? BRIDGE_SUBPROTOCOL : false),
  });

  const server: Server = createServer((req, res) => {
    void serveHttp(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });

  async function serveHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const security = {
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    if (!hostOk(req)) return void res.writeHead(421, security).end('wrong Host header: use http://127.0.0.1\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, security).end();
    const url = new URL(req.url ?? '/', `http://${LOOPBACK}:${port}`);
    if (!root) return void res.writeHead(404, security).end();
    if (url.pathname === '/' || url.pathname === '/index.html') {
      if (!tokenMatches(token, url.searchParams.get('token'))) {
        return void res.writeHead(401, { ...security, 'Content-Type': 'text/plain; charset=utf-8' }).end('Open the URL printed by the dev server (it carries the token).\n');
      }
      const html = await readFile(join(root, 'index.html'), 'utf8');
      const body = injectBridgeMeta(html, `ws://${LOOPBACK}:${port}/bridge`, token);
      res.writeHead(200, { ...security, 'Content-Type': TYPES['.html']!, 'Content-Security-Policy': rendererCsp([`ws://${LOOPBACK}:${port}`]) });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^[/\\]+/, '');
    const file = join(root, rel);
    if (rel.includes('\0') || !file.startsWith(root + sep)) return void res.writeHead(404, security).end();
    let body: Buffer;
    try {
      const real = await realpath(file);
      if (!real.startsWith(root + sep)) return void res.writeHead(404, security).end();
      body = await readFile(real);
    } catch {
      return void res.writeHead(404, security).end();
    }
    res.writeHead(200, { ...security, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const url = new URL(req.url ?? '/', `http://${LOOPBACK}:${port}`);
    if (url.pathname !== '/bridge') return refuse('404 Not Found');
    if (!hostOk(req)) return refuse('421 Misdirected Request');
    if (!origins().has(req.headers.origin ?? '')) return refuse('403 Forbidden');
    const offered = offeredProtocols(req);
    const given = offered.find((p) => p.startsWith(BRIDGE_TOKEN_PREFIX))?.slice(BRIDGE_TOKEN_PREFIX.length);
    if (!offered.includes(BRIDGE_SUBPROTOCOL) || !tokenMatches(token, given)) return refuse('401 Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws));
  });

  function accept(ws: WebSocket): void {
    sockets.add(ws);
    const send = (msg: BridgeServerMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
    };
    const off = opts.service.onDidEmit(({ name, payload }) => send({ t: 'event', name, payload }));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.close(1003, 'text frames only');
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.toString());
      } catch {
        return ws.close(1007, 'not JSON');
      }
      const msg = BridgeClientMessageSchema.safeParse(parsed);
      if (!msg.success) return ws.close(1008, 'not a bridge message');
      void handleInvoke(opts.service, msg.data.name, msg.data.args).then((envelope) => send({ t: 'result', id: msg.data.id, envelope }));
    });
    ws.on('close', () => {
      off();
      sockets.delete(ws);
    });
    ws.on('error', () => ws.terminate());
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, LOOPBACK, () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string' || address.address !== LOOPBACK) {
    server.close();
    throw new Error('the dev bridge must bind 127.0.0.1 only');
  }
  port = address.port;

  return {
    port,
    token,
    origin: `http://${LOOPBACK}:${port}`,
    pageUrl: `http://${LOOPBACK}:${port}/?token=${token}`,
    wsUrl: `ws://${LOOPBACK}:${port}/bridge`,
    clients: () => sockets.size,
    close: async () => {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Writes the bridge's address and token into the page, so the renderer picks the bridge transport. */
export function injectBridgeMeta(html: string, wsUrl: string, token: string): string {
  const esc = (s: string) => s.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
  const meta = `<meta name="${BRIDGE_META_URL}" content="${esc(wsUrl)}">\n    <meta name="${BRIDGE_META_TOKEN}" content="${esc(token)}">`;
  if (!html.includes('</head>')) throw new Error('index.html has no </head>');
  return html.replace('</head>', `    ${meta}\n  </head>`);
}
