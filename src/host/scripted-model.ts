// A scripted model server on loopback that speaks both dialects Tether
// supports: Anthropic Messages (POST /v1/messages) and OpenAI Chat
// Completions (POST /v1/chat/completions), streaming (SSE) and not, with tool
// calls. A script — a function of the conversation so far — picks each reply
// or a fault. Used by `tether demo` (clearly labelled: no AI involved) and by
// tests. It records every request, headers included.
//
// It is not a model and not a conformance suite: it emits the subset of each
// wire format the built-in agent and common SDKs read, and it accepts any key.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type ModelDialect = 'anthropic' | 'openai';

export interface ScriptedToolCall { readonly id: string; readonly name: string; readonly input: unknown }
export interface ScriptedToolResult { readonly id: string; readonly content: string; readonly isError: boolean }

/** One turn, normalised across dialects. Tool results are their own 'tool' message. */
export interface ScriptedMessage {
  readonly role: 'user' | 'assistant' | 'tool';
  readonly text: string;
  readonly toolCalls: readonly ScriptedToolCall[];
  readonly toolResults: readonly ScriptedToolResult[];
}

export interface ScriptedConversation {
  readonly dialect: ModelDialect;
  readonly model: string;
  readonly stream: boolean;
  readonly system: string;
  readonly messages: readonly ScriptedMessage[];
  /** Names of the tools offered. */
  readonly tools: readonly string[];
  readonly maxTokens: number | undefined;
}

export interface ScriptedTextReply {
  readonly text?: string;
  readonly toolCalls?: readonly { readonly name: string; readonly input: unknown; readonly id?: string }[];
  /** Default: tool_use when there are tool calls, else end_turn. */
  readonly stopReason?: 'end_turn' | 'tool_use' | 'max_tokens';
  /** Default: about a token per 4 characters of request body and reply. */
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number };
  /** Pause between streamed chunks. */
  readonly chunkDelayMs?: number;
}

export type ScriptedFault =
  /** An HTTP error with a provider-style error body. */
  | { readonly fault: 'http'; readonly status: number; readonly message: string; readonly errorType?: string }
  /** 200, then a body that is not valid JSON / SSE JSON. */
  | { readonly fault: 'malformed' }
  /** Streaming: headers and `afterText` are sent, then nothing, forever. Non-streaming: no answer at all. */
  | { readonly fault: 'stall'; readonly afterText?: string }
  /** The socket is destroyed: before any answer, or (streaming) after `afterText`. */
  | { readonly fault: 'drop'; readonly afterText?: string };

export type ScriptedReply = ScriptedTextReply | ScriptedFault;

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly rawBody: string;
  readonly body: unknown;
  readonly dialect: ModelDialect | undefined;
  readonly conversation: ScriptedConversation | undefined;
  reply?: ScriptedReply;
  /** Usage the server reported for this reply. */
  usage?: { inputTokens: number; outputTokens: number };
}

export type ModelScript = (conversation: ScriptedConversation, request: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;

export interface ScriptedModelServer {
  /** Base URL, e.g. http://127.0.0.1:PORT (serves /v1/messages and /v1/chat/completions). */
  readonly url: string;
  readonly requests: readonly RecordedRequest[];
  close(): Promise<void>;
}

export interface ScriptedModelOptions {
  readonly script: ModelScript;
  readonly port?: number;
}

const ROUTES: Record<string, ModelDialect> = { '/v1/messages': 'anthropic', '/v1/chat/completions': 'openai' };

export async function startScriptedModel(options: ScriptedModelOptions): Promise<ScriptedModelServer> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    handle(req, res, options.script, requests).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 'anthropic', 500, `scripted model failed: ${(e as Error).message}`);
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function handle(req: IncomingMessage, res: ServerResponse, script: ModelScript, requests: RecordedRequest[]): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  const dialect = ROUTES[path];
  const rawBody = await readBody(req);
  let body: unknown;
  try {
    body = rawBody ? JSON.parse(rawBody) : undefined;
  } catch {
    body = undefined;
  }
  let conversation: ScriptedConversation | undefined;
  let problem: string | undefined;
  if (dialect && req.method === 'POST') {
    try {
      conversation = dialect === 'anthropic' ? normaliseAnthropic(body) : normaliseOpenAi(body);
    } catch (e) {
      problem = (e as Error).message;
    }
  }
  const record: RecordedRequest = { method: req.method ?? '', path, headers: { ...req.headers }, rawBody, body, dialect, conversation };
  requests.push(record);
  if (!dialect) return sendError(res, 'openai', 404, `scripted model: no route for ${req.method} ${path}`);
  if (req.method !== 'POST') return sendError(res, dialect, 405, `scripted model: ${path} takes POST`);
  if (!conversation) return sendError(res, dialect, 400, `scripted model: invalid request body: ${problem}`);

  const reply = await script(conversation, record);
  record.reply = reply;
  if ('fault' in reply) return sendFault(req, res, dialect, conversation, reply);
  const usage = reply.usage ?? {
    inputTokens: Math.max(1, Math.ceil(rawBody.length / 4)),
    outputTokens: Math.max(1, Math.ceil(((reply.text ?? '') + JSON.stringify(reply.toolCalls ?? [])).length / 4)),
  };
  record.usage = { ...usage };
  const calls = (reply.toolCalls ?? []).map((c, i) => ({ id: c.id ?? toolId(dialect, requests.length, i), name: c.name, input: c.input }));
  const stop = reply.stopReason ?? (calls.length > 0 ? 'tool_use' : 'end_turn');
  const full = { text: reply.text ?? '', calls, stop, usage, delay: reply.chunkDelayMs ?? 0 };
  if (!conversation.stream) return sendJson(res, 200, dialect === 'anthropic' ? anthropicMessage(conversation.model, full) : openAiCompletion(conversation.model, full));
  startSse(res);
  const events = dialect === 'anthropic' ? anthropicEvents(conversation.model, full) : openAiEvents(conversation.model, full, wantsUsage(body));
  for (const ev of events) {
    if (res.destroyed) return;
    res.write(ev);
    if (full.delay > 0) await sleep(full.delay);
  }
  res.end();
}

function toolId(dialect: ModelDialect, request: number, index: number): string {
  return dialect === 'anthropic' ? `toolu_scripted_${request}_${index}` : `call_scripted_${request}_${index}`;
}

function wantsUsage(body: unknown): boolean {
  const so = (body as { stream_options?: { include_usage?: unknown } }).stream_options;
  return so?.include_usage === true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'request-id': `req_scripted_${Date.now()}` });
  res.end(text);
}

function sendError(res: ServerResponse, dialect: ModelDialect, status: number, message: string, errorType?: string): void {
  const type = errorType ?? defaultErrorType(status);
  sendJson(res, status, dialect === 'anthropic' ? { type: 'error', error: { type, message } } : { error: { message, type, code: null } });
}

function defaultErrorType(status: number): string {
  if (status === 400) return 'invalid_request_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 529) return 'overloaded_error';
  return 'api_error';
}

function startSse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
}

async function sendFault(req: IncomingMessage, res: ServerResponse, dialect: ModelDialect, conv: ScriptedConversation, fault: ScriptedFault): Promise<void> {
  switch (fault.fault) {
    case 'http':
      return sendError(res, dialect, fault.status, fault.message, fault.errorType);
    case 'malformed':
      if (!conv.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"id": "msg_scripted", "content": [');
        return;
      }
      startSse(res);
      res.write(dialect === 'anthropic' ? sse('message_start', { type: 'message_start', message: { id: 'msg_scripted', usage: { input_tokens: 1, output_tokens: 0 } } }) : '');
      res.write(dialect === 'anthropic' ? 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_del\n\n' : 'data: {"choices":[{"delta":{"content":"hel\n\n');
      res.end();
      return;
    case 'stall':
    case 'drop': {
      if (!conv.stream || fault.afterText === undefined) {
        if (fault.fault === 'drop') req.socket.destroy();
        // stall: never answer; close() destroys the socket.
        return;
      }
      startSse(res);
      const partial = { text: fault.afterText, calls: [], stop: 'end_turn' as const, usage: { inputTokens: 1, outputTokens: 1 }, delay: 0 };
      const events = dialect === 'anthropic' ? anthropicEvents(conv.model, partial) : openAiEvents(conv.model, partial, false);
      // Everything up to and including the text, none of the closing events.
      for (const ev of events.slice(0, dialect === 'anthropic' ? -3 : -2)) res.write(ev);
      if (fault.fault === 'drop') setTimeout(() => req.socket.destroy(), 20);
      return;
    }
  }
}

// ---- wire formats out ----

interface FullReply {
  text: string;
  calls: { id: string; name: string; input: unknown }[];
  stop: 'end_turn' | 'tool_use' | 'max_tokens';
  usage: { inputTokens: number; outputTokens: number };
  delay: number;
}

function sse(event: string | undefined, data: unknown): string {
  return `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

/** Splits into up to `n` non-empty pieces, so deltas are really incremental. */
function pieces(text: string, n = 3): string[] {
  if (text.length <= 1) return text ? [text] : [];
  const size = Math.ceil(text.length / Math.min(n, text.length));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function anthropicMessage(model: string, r: FullReply): unknown {
  return {
    id: `msg_scripted_${Date.now()}`,
    type: 'message',
    role: 'assistant',
    model,
    content: [...(r.text ? [{ type: 'text', text: r.text }] : []), ...r.calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: c.input }))],
    stop_reason: r.stop,
    stop_sequence: null,
    usage: { input_tokens: r.usage.inputTokens, output_tokens: r.usage.outputTokens },
  };
}

function anthropicEvents(model: string, r: FullReply): string[] {
  const out: string[] = [];
  out.push(sse('message_start', {
    type: 'message_start',
    message: { id: `msg_scripted_${Date.now()}`, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: r.usage.inputTokens, output_tokens: 1 } },
  }));
  let index = 0;
  if (r.text) {
    out.push(sse('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }));
    out.push(sse('ping', { type: 'ping' }));
    const parts = pieces(r.text);
    out.push(sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: parts[0] } }));
    for (const p of parts.slice(1)) out.push(sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: p } }));
    out.push(sse('content_block_stop', { type: 'content_block_stop', index }));
    index++;
  }
  for (const c of r.calls) {
    out.push(sse('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} } }));
    for (const p of pieces(JSON.stringify(c.input ?? {}), 4)) {
      out.push(sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: p } }));
    }
    out.push(sse('content_block_stop', { type: 'content_block_stop', index }));
    index++;
  }
  out.push(sse('message_delta', { type: 'message_delta', delta: { stop_reason: r.stop, stop_sequence: null }, usage: { output_tokens: r.usage.outputTokens } }));
  out.push(sse('message_stop', { type: 'message_stop' }));
  return out;
}

const FINISH = { end_turn: 'stop', tool_use: 'tool_calls', max_tokens: 'length' } as const;

function openAiCompletion(model: string, r: FullReply): unknown {
  return {
    id: `chatcmpl-scripted-${Date.now()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{
      index: 0,
      message: {
        role: 'assistant',
        content: r.text || null,
        ...(r.calls.length ? { tool_calls: r.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.input ?? {}) } })) } : {}),
      },
      finish_reason: FINISH[r.stop],
    }],
    usage: { prompt_tokens: r.usage.inputTokens, completion_tokens: r.usage.outputTokens, total_tokens: r.usage.inputTokens + r.usage.outputTokens },
  };
}

function openAiEvents(model: string, r: FullReply, includeUsage: boolean): string[] {
  const id = `chatcmpl-scripted-${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: unknown, finish: string | null = null) => sse(undefined, { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] });
  const out: string[] = [chunk({ role: 'assistant', content: '' })];
  for (const p of pieces(r.text)) out.push(chunk({ content: p }));
  r.calls.forEach((c, i) => {
    out.push(chunk({ tool_calls: [{ index: i, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }));
    for (const p of pieces(JSON.stringify(c.input ?? {}), 4)) out.push(chunk({ tool_calls: [{ index: i, function: { arguments: p } }] }));
  });
  out.push(chunk({}, FINISH[r.stop]));
  if (includeUsage) {
    out.push(sse(undefined, { id, object: 'chat.completion.chunk', created, model, choices: [], usage: { prompt_tokens: r.usage.inputTokens, completion_tokens: r.usage.outputTokens, total_tokens: r.usage.inputTokens + r.usage.outputTokens } }));
  }
  out.push('data: [DONE]\n\n');
  return out;
}

// ---- wire formats in ----

type Json = Record<string, unknown>;
const asObj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((b) => (asObj(b)['type'] === 'text' ? String(asObj(b)['text'] ?? '') : '')).join('');
}

function commonFields(body: unknown, dialect: ModelDialect): { b: Json; model: string; stream: boolean; maxTokens: number | undefined; tools: string[] } {
  const b = asObj(body);
  if (typeof b['model'] !== 'string') throw new Error('model is missing');
  if (!Array.isArray(b['messages'])) throw new Error('messages is missing');
  const tools = Array.isArray(b['tools'])
    ? b['tools'].map((t) => String(dialect === 'anthropic' ? asObj(t)['name'] : asObj(asObj(t)['function'])['name']))
    : [];
  const mt = b['max_tokens'] ?? b['max_completion_tokens'];
  return { b, model: b['model'], stream: b['stream'] === true, maxTokens: typeof mt === 'number' ? mt : undefined, tools };
}

export function normaliseAnthropic(body: unknown): ScriptedConversation {
  const { b, model, stream, maxTokens, tools } = commonFields(body, 'anthropic');
  if (typeof b['max_tokens'] !== 'number') throw new Error('max_tokens is required');
  const messages: ScriptedMessage[] = [];
  for (const raw of b['messages'] as unknown[]) {
    const m = asObj(raw);
    const role = m['role'];
    if (role !== 'user' && role !== 'assistant') throw new Error(`unknown role ${JSON.stringify(role)}`);
    const blocks = typeof m['content'] === 'string' ? [{ type: 'text', text: m['content'] }] : Array.isArray(m['content']) ? m['content'].map(asObj) : [];
    const text = blocks.filter((x) => x['type'] === 'text').map((x) => String(x['text'] ?? '')).join('');
    if (role === 'assistant') {
      const toolCalls = blocks.filter((x) => x['type'] === 'tool_use').map((x) => ({ id: String(x['id']), name: String(x['name']), input: x['input'] }));
      messages.push({ role, text, toolCalls, toolResults: [] });
      continue;
    }
    const toolResults = blocks.filter((x) => x['type'] === 'tool_result').map((x) => ({ id: String(x['tool_use_id']), content: textOf(x['content']), isError: x['is_error'] === true }));
    if (toolResults.length) messages.push({ role: 'tool', text: '', toolCalls: [], toolResults });
    if (text || !toolResults.length) messages.push({ role: 'user', text, toolCalls: [], toolResults: [] });
  }
  return { dialect: 'anthropic', model, stream, system: textOf(b['system']), messages, tools, maxTokens };
}

/** OpenAI has no error flag on tool results; content starting with "Error:" counts as one (the built-in agent's convention). */
export function normaliseOpenAi(body: unknown): ScriptedConversation {
  const { b, model, stream, maxTokens, tools } = commonFields(body, 'openai');
  const messages: ScriptedMessage[] = [];
  let system = '';
  for (const raw of b['messages'] as unknown[]) {
    const m = asObj(raw);
    const role = m['role'];
    if (role === 'system' || role === 'developer') system += (system ? '\n' : '') + textOf(m['content']);
    else if (role === 'user') messages.push({ role: 'user', text: textOf(m['content']), toolCalls: [], toolResults: [] });
    else if (role === 'assistant') {
      const toolCalls = (Array.isArray(m['tool_calls']) ? m['tool_calls'] : []).map((t) => {
        const fn = asObj(asObj(t)['function']);
        let input: unknown = fn['arguments'];
        try {
          input = JSON.parse(String(fn['arguments'] ?? '{}'));
        } catch {
          // Kept as the raw string.
        }
        return { id: String(asObj(t)['id']), name: String(fn['name']), input };
      });
      messages.push({ role: 'assistant', text: textOf(m['content']), toolCalls, toolResults: [] });
    } else if (role === 'tool') {
      const content = textOf(m['content']);
      const result = { id: String(m['tool_call_id']), content, isError: /^Error:/.test(content) };
      const last = messages.at(-1);
      if (last?.role === 'tool') messages[messages.length - 1] = { ...last, toolResults: [...last.toolResults, result] };
      else messages.push({ role: 'tool', text: '', toolCalls: [], toolResults: [result] });
    } else throw new Error(`unknown role ${JSON.stringify(role)}`);
  }
  return { dialect: 'openai', model, stream, system, messages, tools, maxTokens };
}

// ---- scripts ----

/** Replies in order, one per assistant turn already in the conversation; past the end, the last reply repeats. */
export function sequenceScript(...replies: ScriptedReply[]): ModelScript {
  if (replies.length === 0) throw new Error('sequenceScript needs at least one reply');
  return (conv) => {
    const turn = conv.messages.filter((m) => m.role === 'assistant').length;
    return replies[Math.min(turn, replies.length - 1)]!;
  };
}

/** Every tool call in the conversation with its result (if any). */
export function toolHistory(conv: ScriptedConversation): { call: ScriptedToolCall; result: ScriptedToolResult | undefined }[] {
  const results = new Map<string, ScriptedToolResult>();
  for (const m of conv.messages) for (const r of m.toolResults) results.set(r.id, r);
  return conv.messages.flatMap((m) => m.toolCalls.map((call) => ({ call, result: results.get(call.id) })));
}

export const DEMO_MODEL = 'tether-scripted-demo';
export const DEMO_LABEL = '[scripted demo model: canned replies, no AI]';

export interface DemoScriptOptions {
  /** A file to read (default README.md). */
  readonly readPath?: string;
  /** A file to write; default policy asks first (default NOTES.md). */
  readonly writePath?: string;
  /** A secret the default policy forbids (default .env). */
  readonly secretPath?: string;
}

/**
 * The `tether demo` walk-through: read a file, write a file (policy asks),
 * try to read a secret (policy denies), then summarise. Each step adapts to
 * the previous result, so a denied write or a missing file is reported, not
 * ignored.
 */
export function createDemoScript(options: DemoScriptOptions = {}): ModelScript {
  const readPath = options.readPath ?? 'README.md';
  const writePath = options.writePath ?? 'NOTES.md';
  const secretPath = options.secretPath ?? '.env';
  return (conv) => {
    const history = toolHistory(conv);
    const find = (name: string, path: string) => history.find((h) => h.call.name === name && asObj(h.call.input)['path'] === path);
    const read = find('read_file', readPath);
    const write = find('write_file', writePath);
    const secret = find('read_file', secretPath);
    const outcome = (h: { result: ScriptedToolResult | undefined } | undefined) =>
      !h?.result ? 'no answer' : h.result.isError ? h.result.content.replace(/^Error:\s*/, '') : 'ok';

    if (!read) {
      return { text: `${DEMO_LABEL} I'll start by reading ${readPath}.`, toolCalls: [{ name: 'read_file', input: { path: readPath } }] };
    }
    if (!write) {
      let notes: string;
      let text: string;
      if (read.result && !read.result.isError) {
        const lines = read.result.content.split('\n');
        const first = lines.find((l) => l.trim())?.trim().slice(0, 120) ?? '';
        notes = `# Notes\n\n${readPath} has ${lines.length} lines. Its first line is:\n\n> ${first}\n\n(written by the Tether scripted demo model)\n`;
        text = `${readPath} has ${lines.length} lines. I'll write a short summary to ${writePath}; Tether should ask you first.`;
      } else {
        notes = `# Notes\n\nI could not read ${readPath}: ${outcome(read)}\n\n(written by the Tether scripted demo model)\n`;
        text = `I could not read ${readPath} (${outcome(read)}). I'll note that in ${writePath}; Tether should ask you first.`;
      }
      return { text, toolCalls: [{ name: 'write_file', input: { path: writePath, content: notes } }] };
    }
    if (!secret) {
      const before = outcome(write) === 'ok' ? `${writePath} is written.` : `Writing ${writePath} did not happen: ${outcome(write)}.`;
      return { text: `${before} Next I'll look at ${secretPath} for configuration; policy should stop me.`, toolCalls: [{ name: 'read_file', input: { path: secretPath } }] };
    }
    const lines = [
      'Summary of this demo run:',
      `- read ${readPath}: ${outcome(read)}`,
      `- write ${writePath}: ${outcome(write)}`,
      `- read ${secretPath}: ${outcome(secret) === 'ok' ? 'it was allowed (I did not repeat its content); the policy in use does not protect it' : outcome(secret)}`,
      outcome(secret) === 'ok' ? '' : `I will not try to reach ${secretPath} another way. Every decision above is in the audit log.`,
    ].filter(Boolean);
    return { text: lines.join('\n') };
  };
}
