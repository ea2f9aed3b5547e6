// What the agent loop needs from a model, independent of the wire format.
// Each dialect (anthropic.ts, openai.ts) maps this onto one provider API and
// talks only to the host's egress gateway: it holds a per-session gateway
// token, never a provider key.

export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments object. */
  readonly parameters: Record<string, unknown>;
}

export interface ToolCallRecord {
  readonly id: string;
  readonly name: string;
  /** Arguments as the model sent them (JSON text). */
  readonly argumentsJson: string;
}

export interface ToolResultRecord {
  readonly id: string;
  readonly name: string;
  /** Text shown to the model. Errors start with "Error: " (the OpenAI dialect has no error flag). */
  readonly content: string;
  readonly isError: boolean;
}

export type ChatMessage =
  | { readonly role: 'user'; readonly text: string }
  | { readonly role: 'assistant'; readonly text: string; readonly toolCalls: readonly ToolCallRecord[] }
  | { readonly role: 'tool'; readonly results: readonly ToolResultRecord[] };

export interface ModelRequest {
  readonly system: string;
  readonly messages: readonly ChatMessage[];
  readonly tools: readonly ToolSpec[];
  readonly maxTokens: number;
  readonly signal: AbortSignal;
  /** W3C traceparent sent as a header to the gateway (which does not forward it). */
  readonly traceparent?: string;
}

export type ModelStopReason = 'end_turn' | 'tool_use' | 'max_tokens' | 'refusal' | 'other';

export interface ModelUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export interface ModelResponse {
  readonly text: string;
  readonly toolCalls: readonly ToolCallRecord[];
  readonly stopReason: ModelStopReason;
  readonly usage: ModelUsage;
}

export interface ModelClient {
  /** Calls `onText` for each streamed text delta; resolves with the whole reply. Throws ModelError. */
  complete(request: ModelRequest, onText: (delta: string) => void): Promise<ModelResponse>;
}

export type ModelErrorKind = 'http' | 'malformed' | 'connection' | 'timeout' | 'cancelled';

/** A provider or gateway failure, with a message a user can act on. */
export class ModelError extends Error {
  override readonly name = 'ModelError';
  readonly kind: ModelErrorKind;
  readonly status: number | undefined;
  constructor(kind: ModelErrorKind, message: string, status?: number) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export interface DialectOptions {
  /** The egress gateway, e.g. http://127.0.0.1:PORT (no trailing path needed). */
  readonly baseUrl: string;
  /** Per-session gateway token, sent as `Authorization: Bearer`. */
  readonly token: string;
  readonly model: string;
  readonly stream: boolean;
  /** No bytes from the gateway for this long (waiting for headers or between chunks) → timeout error. */
  readonly timeoutMs: number;
}

/** `base` + `/v1/<path>`, accepting a base that already ends in /v1. */
export function endpointUrl(base: string, path: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith('/v1') ? `${trimmed}/${path}` : `${trimmed}/v1/${path}`;
}

/**
 * POSTs JSON and returns the response once headers arrive. Non-2xx becomes a
 * ModelError carrying the provider's (or gateway's) error message. The returned
 * `idle` guard must be `touch()`ed as bytes arrive and `done()` at the end.
 */
export async function postJson(
  url: string,
  body: unknown,
  opts: DialectOptions,
  request: ModelRequest,
  provider: string,
): Promise<{ response: Response; idle: IdleGuard }> {
  const idle = new IdleGuard(opts.timeoutMs, request.signal);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    authorization: `Bearer ${opts.token}`,
    accept: opts.stream ? 'text/event-stream' : 'application/json',
  };
  if (request.traceparent) headers['traceparent'] = request.traceparent;
  if (provider === 'anthropic') headers['anthropic-version'] = '2023-06-01';
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: idle.signal, redirect: 'error' });
  } catch (e) {
    idle.done();
    throw idle.translate(e, `could not reach the model gateway at ${new URL(url).origin}`);
  }
  if (!response.ok) {
    let text = '';
    try {
      text = await readAllText(response, idle);
    } catch {
      // The status alone still says what happened.
    }
    idle.done();
    throw new ModelError('http', httpErrorMessage(provider, response.status, text), response.status);
  }
  idle.touch();
  return { response, idle };
}

function httpErrorMessage(provider: string, status: number, body: string): string {
  let detail = '';
  try {
    const parsed = JSON.parse(body) as { error?: { type?: unknown; message?: unknown; code?: unknown } | string; message?: unknown };
    const err = parsed.error;
    if (typeof err === 'string') detail = err;
    else if (err && typeof err === 'object') {
      const type = typeof err.type === 'string' ? err.type : typeof err.code === 'string' ? err.code : undefined;
      const message = typeof err.message === 'string' ? err.message : '';
      detail = type ? `${type}: ${message}` : message;
    } else if (typeof parsed.message === 'string') detail = parsed.message;
  } catch {
    detail = body.trim().slice(0, 300);
  }
  return `the ${provider} model request failed with HTTP ${status}${detail ? ` (${detail})` : ''}`;
}

export async function readAllText(response: Response, idle: IdleGuard): Promise<string> {
  if (!response.body) return '';
  const decoder = new TextDecoder();
  let out = '';
  const reader = response.body.getReader();
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw idle.translate(e, 'the connection to the model gateway broke while reading the response');
    }
    if (chunk.done) break;
    idle.touch();
    out += decoder.decode(chunk.value, { stream: true });
  }
  return out + decoder.decode();
}

/**
 * Aborts the fetch when nothing arrives for `timeoutMs`, and follows the
 * caller's cancel signal. `translate` turns the resulting exception into a
 * ModelError that says which of the two (or a broken connection) happened.
 */
export class IdleGuard {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timedOut = false;
  private readonly timeoutMs: number;
  private readonly outer: AbortSignal;
  private readonly onOuterAbort = () => this.controller.abort(this.outer.reason);
  readonly signal: AbortSignal;

  constructor(timeoutMs: number, outer: AbortSignal) {
    this.timeoutMs = timeoutMs;
    this.outer = outer;
    this.signal = this.controller.signal;
    if (outer.aborted) this.controller.abort(outer.reason);
    else outer.addEventListener('abort', this.onOuterAbort, { once: true });
    this.touch();
  }

  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new Error('timeout'));
    }, this.timeoutMs);
  }

  done(): void {
    clearTimeout(this.timer);
    this.outer.removeEventListener('abort', this.onOuterAbort);
  }

  translate(e: unknown, what: string): ModelError {
    this.done();
    if (e instanceof ModelError) return e;
    if (this.outer.aborted) return new ModelError('cancelled', 'the model request was cancelled');
    if (this.timedOut) return new ModelError('timeout', `the model gateway sent nothing for ${Math.round(this.timeoutMs / 100) / 10} s; gave up (timeout)`);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (e as Error).message;
    return new ModelError('connection', `${what}: ${detail}`);
  }
}

// Accessors for untyped provider JSON: a wrong shape reads as empty, and the
// caller decides whether that is malformed.
export function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
