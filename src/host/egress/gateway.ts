// The egress gateway: the agent's only way to a model. A loopback HTTP server
// that, per request:
//
//   token (per session, constant-time) → endpoint allowlist (the session's
//   dialect only) → body cap → JSON → secret scan (block | redact) →
//   authorize hook (broker 'model' request) → API key injected → upstream
//   (the session's configured base URL only) → response streamed back
//   unbuffered while tokens, bytes and latency are metered.
//
// Invariants:
//  1. Nothing is forwarded without a valid session token, and only to that
//     session's upstream base URL, only to its dialect's endpoint.
//  2. The agent's credentials never leave: request headers are an allowlist,
//     the provider key is added here.
//  3. Any failure (scan, hook, missing key, upstream) answers with an error
//     body that says what happened; nothing falls back to forwarding.
//
// Not done here: provider-side retries, response scanning (only requests are
// scanned), per-session rate limits or budgets (the metrics are there for them).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describeFindings } from '../../common/redaction.ts';
import { Emitter } from '../../common/emitter.ts';
import { type PayloadFinding, redactPayload, scanPayload } from './payload-scan.ts';
import { UsageMeter } from './usage-meter.ts';
import { isLoopbackHost } from '../../common/loopback.ts';

export type ModelProvider = 'anthropic' | 'openai';
export type SecretMode = 'block' | 'redact';

/** What the authorize hook sees before a request leaves the machine. */
export interface EgressRequestInfo {
  readonly sessionId: string;
  readonly provider: ModelProvider;
  /** The upstream URL the request will go to. */
  readonly url: string;
  readonly method: string;
  /** Body bytes that will be sent upstream (after redaction). */
  readonly bytes: number;
  /** One line for a consent dialog or audit: provider, model, message count, size. */
  readonly summary: string;
  readonly model: string | undefined;
  /** W3C traceparent the agent sent, if any (never forwarded upstream). */
  readonly traceparent: string | undefined;
  /** Secrets replaced in redact mode. */
  readonly redactions: number;
  /** Aborts when the agent hangs up (cancel): pass it on to a pending consent question. */
  readonly signal: AbortSignal;
}

export type ApiKeySource = (provider: ModelProvider) => string | undefined | Promise<string | undefined>;
export type AuthorizeHook = (info: EgressRequestInfo) => Promise<void>;

export interface EgressGatewayOptions {
  /** Default: ANTHROPIC_API_KEY / OPENAI_API_KEY from the environment. */
  readonly getApiKey?: ApiKeySource;
  /** Throw to refuse (→ 403 with the error's message). Required here or per session: without one every request is refused. */
  readonly authorize?: AuthorizeHook;
  /** Default 'block'. */
  readonly secrets?: SecretMode;
  /** Request body cap. Default 16 MiB. */
  readonly maxRequestBytes?: number;
  /** Upstream response headers must arrive within this. Default 60 s. */
  readonly upstreamTimeoutMs?: number;
  /** Gap allowed between upstream response chunks. Default 120 s. */
  readonly idleTimeoutMs?: number;
}

export interface GatewaySessionOptions {
  readonly sessionId: string;
  readonly provider: ModelProvider;
  /**
   * Where requests go: https://api.anthropic.com, https://api.openai.com/v1,
   * http://127.0.0.1:11434/v1 … https, or http on loopback only.
   */
  readonly upstreamBaseUrl: string;
  /** Default true. False for local servers (Ollama, vLLM) that need no key. */
  readonly requireApiKey?: boolean;
  readonly getApiKey?: ApiKeySource;
  readonly authorize?: AuthorizeHook;
  readonly secrets?: SecretMode;
}

/** What the agent gets: pass as `_meta.tether.baseUrl` / `.token`. */
export interface GatewaySession {
  readonly sessionId: string;
  readonly provider: ModelProvider;
  readonly baseUrl: string;
  readonly token: string;
}

export interface SessionMetrics {
  /** Requests that passed the token check. */
  requests: number;
  /** Requests sent upstream. */
  forwarded: number;
  /** Refused by the gateway (path, size, secrets, hook, key). */
  rejected: number;
  /** Upstream HTTP errors, timeouts and broken connections. */
  upstreamErrors: number;
  inputTokens: number;
  outputTokens: number;
  /** Body bytes sent upstream / received from upstream. */
  bytesSent: number;
  bytesReceived: number;
  /** Wall time from request to last response byte, forwarded requests only. */
  latencyMsTotal: number;
  latencyMsMax: number;
  lastLatencyMs: number;
  /** Time to upstream response headers, last forwarded request. */
  lastTimeToHeadersMs: number;
}

export interface EgressEvent {
  readonly sessionId: string;
  /** cancelled: the agent hung up before the response ended. */
  readonly outcome: 'forwarded' | 'rejected' | 'upstream_error' | 'cancelled';
  readonly status: number;
  readonly url: string | undefined;
  readonly model: string | undefined;
  readonly reason?: string;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly latencyMs: number;
  readonly traceparent: string | undefined;
}

interface SessionState {
  readonly opts: GatewaySessionOptions;
  readonly tokenDigest: Buffer;
  readonly upstreamUrl: string;
  readonly path: string;
  readonly metrics: SessionMetrics;
}

/** Paths the agent may call, per dialect, and the path appended to the upstream base. */
const DIALECT_PATH: Record<ModelProvider, { gateway: string; upstream: string }> = {
  anthropic: { gateway: '/v1/messages', upstream: 'messages' },
  openai: { gateway: '/v1/chat/completions', upstream: 'chat/completions' },
};

const FORWARDED_REQUEST_HEADERS = ['anthropic-version', 'anthropic-beta'];
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'retry-after', 'request-id', 'x-request-id', 'cache-control'];

export function envApiKey(provider: ModelProvider): string | undefined {
  const v = provider === 'anthropic' ? process.env['ANTHROPIC_API_KEY'] : process.env['OPENAI_API_KEY'];
  return v && v.trim() ? v.trim() : undefined;
}


/** The upstream endpoint for a base URL that may or may not end in /v1. */
export function upstreamEndpoint(baseUrl: string, provider: ModelProvider): string {
  let u: URL;
  try {
    u = new URL(baseUrl);
  } catch {
    throw new Error(`the model base URL ${JSON.stringify(baseUrl)} is not a URL`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname))) {
    throw new Error(`the model base URL must use https (http only on loopback): ${u.origin}`);
  }
  if (u.username || u.password) throw new Error('the model base URL must not carry credentials; the key comes from the keychain or environment');
  if (u.search || u.hash) throw new Error('the model base URL must not have a query or fragment');
  const base = u.href.replace(/\/+$/, '');
  const rest = DIALECT_PATH[provider].upstream;
  return base.endsWith('/v1') ? `${base}/${rest}` : `${base}/v1/${rest}`;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function newMetrics(): SessionMetrics {
  return {
    requests: 0, forwarded: 0, rejected: 0, upstreamErrors: 0, inputTokens: 0, outputTokens: 0,
    bytesSent: 0, bytesReceived: 0, latencyMsTotal: 0, latencyMsMax: 0, lastLatencyMs: 0, lastTimeToHeadersMs: 0,
  };
}

class GatewayError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(status: number, type: string, message: string) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export class EgressGateway {
  private readonly didForward = new Emitter<EgressEvent>();
  /** Fires once per request that passed the token check, after it finished (or failed). */
  readonly onDidForward = this.didForward.event;

  private readonly server: Server;
  private readonly options: EgressGatewayOptions;
  private readonly sessions = new Map<string, SessionState>();
  private readonly byDigest = new Map<string, SessionState>();
  private readonly sockets = new Set<Socket>();
  private readonly inflight = new Set<AbortController>();
  private origin = '';

  private constructor(options: EgressGatewayOptions) {
    this.options = options;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) sendError(res, 500, 'tether_gateway_error', `the egress gateway failed: ${(e as Error).message}`);
        else res.destroy();
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(options: EgressGatewayOptions = {}): Promise<EgressGateway> {
    const gw = new EgressGateway(options);
    await new Promise<void>((resolve, reject) => {
      gw.server.once('error', reject);
      gw.server.listen(0, '127.0.0.1', () => resolve());
    });
    gw.origin = `http://127.0.0.1:${(gw.server.address() as AddressInfo).port}`;
    return gw;
  }

  /** http://127.0.0.1:PORT */
  get url(): string {
    return this.origin;
  }

  /** Registers a session and mints its token. Throws on a base URL that is not allowed. */
  openSession(opts: GatewaySessionOptions): GatewaySession {
    if (this.sessions.has(opts.sessionId)) throw new Error(`egress session ${opts.sessionId} is already open`);
    const upstreamUrl = upstreamEndpoint(opts.upstreamBaseUrl, opts.provider);
    const token = `tether-gw-${randomBytes(32).toString('base64url')}`;
    const state: SessionState = { opts, tokenDigest: digest(token), upstreamUrl, path: DIALECT_PATH[opts.provider].gateway, metrics: newMetrics() };
    this.sessions.set(opts.sessionId, state);
    this.byDigest.set(state.tokenDigest.toString('hex'), state);
    return { sessionId: opts.sessionId, provider: opts.provider, baseUrl: this.origin, token };
  }

  /** Revokes the session's token; its metrics stay readable until the gateway closes. */
  closeSession(sessionId: string): void {
    const s = this.sessions.get(sessionId);
    if (s) this.byDigest.delete(s.tokenDigest.toString('hex'));
  }

  metrics(sessionId: string): SessionMetrics | undefined {
    const s = this.sessions.get(sessionId);
    return s ? { ...s.metrics } : undefined;
  }

  allMetrics(): Record<string, SessionMetrics> {
    return Object.fromEntries([...this.sessions].map(([id, s]) => [id, { ...s.metrics }]));
  }

  async close(): Promise<void> {
    for (const c of this.inflight) c.abort(new Error('the egress gateway is closing'));
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private authenticate(req: IncomingMessage): SessionState {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    const apiKey = typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'].trim() : undefined;
    if (bearer && apiKey && bearer !== apiKey) throw new GatewayError(401, 'authentication_error', 'two different gateway tokens were sent');
    const presented = bearer ?? apiKey;
    if (!presented) throw new GatewayError(401, 'authentication_error', 'missing gateway token: send the session token as "Authorization: Bearer <token>"');
    const d = digest(presented);
    const state = this.byDigest.get(d.toString('hex'));
    // The map lookup keys on a digest; the comparison itself is constant-time.
    if (!state || !timingSafeEqual(d, state.tokenDigest)) throw new GatewayError(401, 'authentication_error', 'invalid or revoked gateway token');
    return state;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let state: SessionState;
    try {
      state = this.authenticate(req);
    } catch (e) {
      const g = e as GatewayError;
      req.resume();
      return sendError(res, g.status, g.type, g.message);
    }
    const m = state.metrics;
    m.requests++;
    const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    const seen: { model?: string } = {};
    const reject = (status: number, type: string, message: string) => {
      m.rejected++;
      req.resume();
      sendError(res, status, type, message);
      this.didForward.fire({
        sessionId: state.opts.sessionId, outcome: 'rejected', status, url: state.upstreamUrl, model: seen.model, reason: message,
        bytesSent: 0, bytesReceived: 0, inputTokens: 0, outputTokens: 0, latencyMs: round(performance.now() - started), traceparent,
      });
    };

    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || path !== state.path) {
      return reject(403, 'tether_egress_denied', `the egress gateway forwards only POST ${state.path} for this ${state.opts.provider} session, not ${req.method} ${path}`);
    }
    const max = this.options.maxRequestBytes ?? 16 * 1024 * 1024;
    let raw: Buffer;
    try {
      raw = await readCapped(req, max);
    } catch (e) {
      return reject(413, 'request_too_large', (e as Error).message);
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return reject(400, 'invalid_request_error', 'the request body is not JSON');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return reject(400, 'invalid_request_error', 'the request body must be a JSON object');
    const model = typeof (body as { model?: unknown }).model === 'string' ? (body as { model: string }).model : undefined;
    seen.model = model;

    const mode = state.opts.secrets ?? this.options.secrets ?? 'block';
    let redactions = 0;
    if (mode === 'block') {
      const findings = scanPayload(body);
      if (findings.length > 0) return reject(403, 'tether_egress_blocked', blockedMessage(findings));
    } else {
      const r = redactPayload(body);
      body = r.value;
      redactions = r.findings.length;
    }
    const outgoing = Buffer.from(JSON.stringify(body), 'utf8');

    // Nobody to ask is a refusal: a gateway without an authorize hook sends nothing anywhere.
    const authorize = state.opts.authorize ?? this.options.authorize;
    if (!authorize) return reject(403, 'tether_egress_denied', 'the model request was refused: no authorization hook is configured for this gateway session (Tether brokers every model call; configure `authorize`)');
    {
      const hangup = new AbortController();
      const onClose = () => {
        if (!res.writableFinished) hangup.abort(new Error('the agent disconnected'));
      };
      res.on('close', onClose);
      const info: EgressRequestInfo = {
        sessionId: state.opts.sessionId, provider: state.opts.provider, url: state.upstreamUrl, method: 'POST',
        bytes: outgoing.byteLength, summary: summarise(state.opts.provider, body, outgoing.byteLength, redactions), model, traceparent, redactions,
        signal: hangup.signal,
      };
      try {
        await authorize(info);
      } catch (e) {
        return reject(403, 'tether_egress_denied', `the model request was refused: ${(e as Error).message}`);
      } finally {
        res.off('close', onClose);
      }
      if (hangup.signal.aborted) return reject(499, 'tether_egress_cancelled', 'the agent disconnected while the request was being authorized');
    }

    const getKey = state.opts.getApiKey ?? this.options.getApiKey ?? envApiKey;
    let key: string | undefined;
    try {
      key = await getKey(state.opts.provider);
    } catch (e) {
      return reject(503, 'tether_gateway_error', `could not read the ${state.opts.provider} API key: ${(e as Error).message}`);
    }
    if (!key && state.opts.requireApiKey !== false) {
      const env = state.opts.provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY';
      return reject(503, 'tether_gateway_error', `no ${state.opts.provider} API key is configured: set ${env} for the Tether host (the agent never holds keys)`);
    }

    await this.forward(req, res, state, outgoing, key, { started, model, traceparent });
  }

  private async forward(
    req: IncomingMessage, res: ServerResponse, state: SessionState, outgoing: Buffer, key: string | undefined,
    ctx: { started: number; model: string | undefined; traceparent: string | undefined },
  ): Promise<void> {
    const m = state.metrics;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: req.headers.accept ?? 'application/json', 'accept-encoding': 'identity', 'user-agent': 'tether-egress/0.1' };
    for (const h of FORWARDED_REQUEST_HEADERS) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    if (state.opts.provider === 'anthropic') {
      headers['anthropic-version'] ??= '2023-06-01';
      if (key) headers['x-api-key'] = key;
    } else if (key) headers['authorization'] = `Bearer ${key}`;

    const controller = new AbortController();
    this.inflight.add(controller);
    let timedOut = false;
    let timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('timeout'));
    }, this.options.upstreamTimeoutMs ?? 60_000);
    const idleMs = this.options.idleTimeoutMs ?? 120_000;
    let clientGone = false;
    const onClientGone = () => {
      if (res.writableFinished) return;
      clientGone = true;
      controller.abort(new Error('the agent disconnected'));
    };
    res.on('close', onClientGone);

    let status = 0;
    let responded = false;
    let bytesReceived = 0;
    let usage = { inputTokens: 0, outputTokens: 0 };
    let outcome: EgressEvent['outcome'] = 'forwarded';
    let reason: string | undefined;
    const headersAt = performance.now();
    try {
      let upstream: Response;
      try {
        upstream = await fetch(state.upstreamUrl, { method: 'POST', headers, body: outgoing.toString('utf8'), signal: controller.signal, redirect: 'error' });
      } catch (e) {
        outcome = clientGone ? 'cancelled' : 'upstream_error';
        status = timedOut ? 504 : 502;
        reason = clientGone ? 'the agent disconnected before the provider answered (cancelled)' : timedOut
          ? `the ${state.opts.provider} API did not answer within ${Math.round((this.options.upstreamTimeoutMs ?? 60_000) / 1000)} s`
          : `could not reach the ${state.opts.provider} API at ${new URL(state.upstreamUrl).origin}: ${causeOf(e)}`;
        if (!res.destroyed) sendError(res, status, 'tether_upstream_error', reason);
        return;
      }
      responded = true;
      m.bytesSent += outgoing.byteLength;
      m.lastTimeToHeadersMs = round(performance.now() - headersAt);
      status = upstream.status;
      const out: Record<string, string> = {};
      for (const h of FORWARDED_RESPONSE_HEADERS) {
        const v = upstream.headers.get(h);
        if (v !== null) out[h] = v;
      }
      if (!upstream.ok) {
        outcome = 'upstream_error';
        // Error bodies are small: buffered so the key can be scrubbed if a provider echoes it.
        const text = await upstream.text().catch(() => '');
        bytesReceived = Buffer.byteLength(text);
        reason = `upstream HTTP ${status}`;
        const scrubbed = key ? text.split(key).join('[REDACTED:api-key]') : text;
        res.writeHead(status, { ...out, 'content-length': Buffer.byteLength(scrubbed) });
        res.end(scrubbed);
        return;
      }
      res.writeHead(status, out);
      res.flushHeaders();
      const meter = new UsageMeter(upstream.headers.get('content-type'));
      if (upstream.body) {
        for await (const chunk of upstream.body) {
          clearTimeout(timer);
          timer = setTimeout(() => {
            timedOut = true;
            controller.abort(new Error('idle timeout'));
          }, idleMs);
          bytesReceived += chunk.byteLength;
          meter.feed(chunk);
          if (!res.write(chunk)) await new Promise<void>((r) => { res.once('drain', r); res.once('close', r); });
          if (res.destroyed) break;
        }
      }
      usage = meter.end();
      res.end();
    } catch (e) {
      // An agent that hangs up (cancel) is not an upstream failure.
      outcome = clientGone ? 'cancelled' : 'upstream_error';
      reason = clientGone
        ? 'the agent disconnected before the response ended (cancelled)'
        : timedOut ? `the ${state.opts.provider} API stream stalled for ${Math.round(idleMs / 1000)} s` : `the upstream stream broke: ${causeOf(e)}`;
      // Headers are already out: the agent sees a cut connection, which it reports.
      res.destroy();
    } finally {
      clearTimeout(timer);
      res.off('close', onClientGone);
      this.inflight.delete(controller);
      const latency = round(performance.now() - ctx.started);
      m.bytesReceived += bytesReceived;
      m.inputTokens += usage.inputTokens;
      m.outputTokens += usage.outputTokens;
      if (outcome === 'upstream_error') m.upstreamErrors++;
      if (responded) {
        m.forwarded++;
        m.latencyMsTotal = round(m.latencyMsTotal + latency);
        m.latencyMsMax = Math.max(m.latencyMsMax, latency);
        m.lastLatencyMs = latency;
      }
      this.didForward.fire({
        sessionId: state.opts.sessionId, outcome, status, url: state.upstreamUrl, model: ctx.model, ...(reason ? { reason } : {}),
        bytesSent: responded ? outgoing.byteLength : 0, bytesReceived, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens,
        latencyMs: latency, traceparent: ctx.traceparent,
      });
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function causeOf(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
}

function blockedMessage(findings: readonly PayloadFinding[]): string {
  const where = [...new Set(findings.map((f) => f.where))].slice(0, 5).join(', ');
  return `blocked: the request to the model contains ${describeFindings(findings)} (at ${where}). `
    + 'Tether does not send secrets to model providers; remove the secret from the conversation, or set the egress secret mode to "redact".';
}

function summarise(provider: ModelProvider, body: unknown, bytes: number, redactions: number): string {
  const b = body as { model?: unknown; messages?: unknown; tools?: unknown; stream?: unknown };
  const n = Array.isArray(b.messages) ? b.messages.length : 0;
  const tools = Array.isArray(b.tools) ? b.tools.length : 0;
  const size = bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${bytes} B`;
  return `${provider} ${typeof b.model === 'string' ? b.model : '(no model)'}: ${n} message${n === 1 ? '' : 's'}, ${tools} tool${tools === 1 ? '' : 's'}, ${size}${b.stream === true ? ', streaming' : ''}${redactions ? `, ${redactions} secret${redactions === 1 ? '' : 's'} redacted` : ''}`;
}

function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  // Readable by both dialects' clients: Anthropic reads error.type/message, OpenAI error.message.
  const text = JSON.stringify({ type: 'error', error: { type, message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readCapped(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    return Promise.reject(new Error(`the request body is ${declared} bytes, over the gateway limit of ${max}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.byteLength;
      if (size > max) {
        done = true;
        reject(new Error(`the request body is over the gateway limit of ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!done) reject(e);
    });
  });
}
