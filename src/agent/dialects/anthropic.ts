// Anthropic Messages API (POST /v1/messages), streaming or not, with tools.
// Not supported: images, thinking blocks, prompt caching controls.

import {
  type ChatMessage, type DialectOptions, type ModelClient, type ModelRequest, type ModelResponse, type ModelStopReason,
  type ToolCallRecord, endpointUrl, ModelError, num, obj, postJson, readAllText, str,
} from './dialect.ts';
import { parseEventJson, readSse } from './sse.ts';

type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: string; is_error?: boolean };

interface WireMessage { role: 'user' | 'assistant'; content: string | Block[] }

export function toAnthropicMessages(messages: readonly ChatMessage[]): WireMessage[] {
  const out: WireMessage[] = [];
  for (const m of messages) {
    if (m.role === 'user') out.push({ role: 'user', content: [{ type: 'text', text: m.text }] });
    else if (m.role === 'assistant') {
      const content: Block[] = [];
      if (m.text) content.push({ type: 'text', text: m.text });
      for (const c of m.toolCalls) content.push({ type: 'tool_use', id: c.id, name: c.name, input: argumentsObject(c.argumentsJson) });
      // The API refuses an empty assistant turn.
      if (content.length === 0) content.push({ type: 'text', text: '(no reply)' });
      out.push({ role: 'assistant', content });
    } else {
      out.push({
        role: 'user',
        content: m.results.map((r) => ({ type: 'tool_result', tool_use_id: r.id, content: r.content, ...(r.isError ? { is_error: true } : {}) })),
      });
    }
  }
  // Consecutive user turns (a prompt after tool results) are merged, as the API expects alternation.
  const merged: WireMessage[] = [];
  for (const m of out) {
    const last = merged.at(-1);
    if (last && last.role === m.role && Array.isArray(last.content) && Array.isArray(m.content)) last.content.push(...m.content);
    else merged.push(m);
  }
  return merged;
}

/** Anthropic wants an object; unparsable arguments are sent as {} (the tool already answered with an error). */
function argumentsObject(json: string): unknown {
  try {
    const v: unknown = JSON.parse(json || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

function stopReason(value: unknown): ModelStopReason {
  switch (value) {
    case 'end_turn': case 'stop_sequence': return 'end_turn';
    case 'tool_use': return 'tool_use';
    case 'max_tokens': return 'max_tokens';
    case 'refusal': return 'refusal';
    default: return 'other';
  }
}

export class AnthropicDialect implements ModelClient {
  private readonly opts: DialectOptions;
  constructor(opts: DialectOptions) {
    this.opts = opts;
  }

  async complete(request: ModelRequest, onText: (delta: string) => void): Promise<ModelResponse> {
    const body = {
      model: this.opts.model,
      max_tokens: request.maxTokens,
      system: request.system,
      messages: toAnthropicMessages(request.messages),
      tools: request.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters })),
      stream: this.opts.stream,
    };
    const { response, idle } = await postJson(endpointUrl(this.opts.baseUrl, 'messages'), body, this.opts, request, 'anthropic');
    if (!this.opts.stream) {
      const text = await readAllText(response, idle);
      idle.done();
      const reply = parseMessage(text);
      if (reply.text) onText(reply.text);
      return reply;
    }
    return this.readStream(response, idle, onText);
  }

  private async readStream(response: Response, idle: Parameters<typeof readSse>[1], onText: (delta: string) => void): Promise<ModelResponse> {
    let text = '';
    const blocks = new Map<number, { kind: 'text' } | { kind: 'tool'; id: string; name: string; json: string }>();
    const calls: ToolCallRecord[] = [];
    let stop: ModelStopReason | undefined;
    let inputTokens = 0;
    let outputTokens = 0;
    let finished = false;
    for await (const ev of readSse(response, idle)) {
      const data = obj(parseEventJson(ev.data, 'anthropic'));
      const type = str(data['type']) ?? ev.event;
      switch (type) {
        case 'message_start': {
          const u = obj(obj(data['message'])['usage']);
          inputTokens = inputOf(u);
          outputTokens = num(u['output_tokens']);
          break;
        }
        case 'content_block_start': {
          const b = obj(data['content_block']);
          const index = num(data['index']);
          if (b['type'] === 'tool_use') {
            const id = str(b['id']);
            const name = str(b['name']);
            if (!id || !name) throw new ModelError('malformed', 'the anthropic stream started a tool call without an id or name');
            blocks.set(index, { kind: 'tool', id, name, json: '' });
          } else {
            blocks.set(index, { kind: 'text' });
            const t = str(b['text']);
            if (t) {
              text += t;
              onText(t);
            }
          }
          break;
        }
        case 'content_block_delta': {
          const d = obj(data['delta']);
          const block = blocks.get(num(data['index']));
          const t = str(d['text']);
          const partial = str(d['partial_json']);
          if (d['type'] === 'text_delta' && t !== undefined) {
            text += t;
            onText(t);
          } else if (d['type'] === 'input_json_delta' && partial !== undefined) {
            if (!block || block.kind !== 'tool') throw new ModelError('malformed', 'the anthropic stream sent tool arguments for a block that is not a tool call');
            block.json += partial;
          }
          break;
        }
        case 'content_block_stop': {
          const index = num(data['index']);
          const block = blocks.get(index);
          if (block?.kind === 'tool') calls.push({ id: block.id, name: block.name, argumentsJson: block.json || '{}' });
          blocks.delete(index);
          break;
        }
        case 'message_delta': {
          const reason = obj(data['delta'])['stop_reason'];
          if (reason) stop = stopReason(reason);
          const u = obj(data['usage']);
          if (u['output_tokens'] !== undefined) outputTokens = num(u['output_tokens']);
          if (inputTokens === 0) inputTokens = inputOf(u);
          break;
        }
        case 'message_stop':
          finished = true;
          break;
        case 'error': {
          const err = obj(data['error']);
          const kind = str(err['type']);
          throw new ModelError('http', `the anthropic stream reported an error${kind ? ` (${kind}: ${str(err['message']) ?? ''})` : ''}`);
        }
        default:
          // ping and future event types
          break;
      }
    }
    if (!finished) throw new ModelError('malformed', 'the anthropic stream ended before message_stop (connection cut or malformed stream)');
    // Tool blocks that never saw content_block_stop are incomplete and are dropped.
    return { text, toolCalls: calls, stopReason: stop ?? (calls.length > 0 ? 'tool_use' : 'end_turn'), usage: { inputTokens, outputTokens } };
  }
}

function parseMessage(body: string): ModelResponse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ModelError('malformed', `the anthropic response is not JSON: ${JSON.stringify(body.slice(0, 120))}`);
  }
  const data = obj(parsed);
  const content = data['content'];
  if (!Array.isArray(content)) throw new ModelError('malformed', 'the anthropic response has no content array');
  let text = '';
  const calls: ToolCallRecord[] = [];
  for (const item of content) {
    const b = obj(item);
    if (b['type'] === 'text') text += str(b['text']) ?? '';
    else if (b['type'] === 'tool_use') {
      const id = str(b['id']);
      const name = str(b['name']);
      if (!id || !name) throw new ModelError('malformed', 'the anthropic response has a tool call without an id or name');
      calls.push({ id, name, argumentsJson: JSON.stringify(b['input'] ?? {}) });
    }
  }
  const u = obj(data['usage']);
  return { text, toolCalls: calls, stopReason: stopReason(data['stop_reason']), usage: { inputTokens: inputOf(u), outputTokens: num(u['output_tokens']) } };
}

function inputOf(u: Record<string, unknown>): number {
  return num(u['input_tokens']) + num(u['cache_creation_input_tokens']) + num(u['cache_read_input_tokens']);
}
