// OpenAI Chat Completions (POST /v1/chat/completions), streaming or not, with
// function tools. Also the dialect of Ollama, vLLM and LM Studio. Not
// supported: the Responses API, images, `max_completion_tokens` (models that
// only accept it need a gateway-side rewrite).

import {
  type ChatMessage, type DialectOptions, type ModelClient, type ModelRequest, type ModelResponse, type ModelStopReason,
  type ToolCallRecord, endpointUrl, ModelError, num, obj, postJson, readAllText, str,
} from './dialect.ts';
import { parseEventJson, readSse } from './sse.ts';

type WireMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[] }
  | { role: 'tool'; tool_call_id: string; content: string };

export function toOpenAiMessages(system: string, messages: readonly ChatMessage[]): WireMessage[] {
  const out: WireMessage[] = [];
  if (system) out.push({ role: 'system', content: system });
  for (const m of messages) {
    if (m.role === 'user') out.push({ role: 'user', content: m.text });
    else if (m.role === 'assistant') {
      out.push({
        role: 'assistant',
        content: m.text || null,
        ...(m.toolCalls.length > 0
          ? { tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.argumentsJson } })) }
          : {}),
      });
    } else {
      for (const r of m.results) out.push({ role: 'tool', tool_call_id: r.id, content: r.content });
    }
  }
  return out;
}

function stopReason(value: unknown): ModelStopReason {
  switch (value) {
    case 'stop': return 'end_turn';
    case 'tool_calls': case 'function_call': return 'tool_use';
    case 'length': return 'max_tokens';
    case 'content_filter': return 'refusal';
    default: return 'other';
  }
}

export class OpenAiDialect implements ModelClient {
  private readonly opts: DialectOptions;
  constructor(opts: DialectOptions) {
    this.opts = opts;
  }

  async complete(request: ModelRequest, onText: (delta: string) => void): Promise<ModelResponse> {
    const body = {
      model: this.opts.model,
      max_tokens: request.maxTokens,
      messages: toOpenAiMessages(request.system, request.messages),
      tools: request.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } })),
      stream: this.opts.stream,
      ...(this.opts.stream ? { stream_options: { include_usage: true } } : {}),
    };
    const { response, idle } = await postJson(endpointUrl(this.opts.baseUrl, 'chat/completions'), body, this.opts, request, 'openai');
    if (!this.opts.stream) {
      const text = await readAllText(response, idle);
      idle.done();
      const reply = parseCompletion(text);
      if (reply.text) onText(reply.text);
      return reply;
    }
    let text = '';
    const pending = new Map<number, { id: string; name: string; args: string }>();
    let stop: ModelStopReason | undefined;
    let inputTokens = 0;
    let outputTokens = 0;
    let done = false;
    for await (const ev of readSse(response, idle)) {
      if (ev.data.trim() === '[DONE]') {
        done = true;
        break;
      }
      const data = obj(parseEventJson(ev.data, 'openai'));
      if (data['error'] !== undefined) {
        const err = obj(data['error']);
        throw new ModelError('http', `the openai stream reported an error (${str(err['message']) ?? JSON.stringify(data['error']).slice(0, 200)})`);
      }
      const usage = obj(data['usage']);
      if (data['usage']) {
        inputTokens = num(usage['prompt_tokens']);
        outputTokens = num(usage['completion_tokens']);
      }
      const choices = Array.isArray(data['choices']) ? data['choices'] : [];
      const choice = obj(choices[0]);
      const delta = obj(choice['delta']);
      const content = str(delta['content']);
      if (content) {
        text += content;
        onText(content);
      }
      const toolCalls = Array.isArray(delta['tool_calls']) ? delta['tool_calls'] : [];
      toolCalls.forEach((raw, position) => {
        const tc = obj(raw);
        const index = typeof tc['index'] === 'number' ? tc['index'] : position;
        const fn = obj(tc['function']);
        let slot = pending.get(index);
        if (!slot) {
          slot = { id: str(tc['id']) ?? '', name: '', args: '' };
          pending.set(index, slot);
        }
        if (!slot.id && str(tc['id'])) slot.id = str(tc['id'])!;
        const name = str(fn['name']);
        if (name) slot.name += slot.name === name ? '' : name;
        slot.args += str(fn['arguments']) ?? '';
      });
      if (choice['finish_reason']) stop = stopReason(choice['finish_reason']);
    }
    // Some OpenAI-compatible servers omit [DONE]; a finish_reason is enough to trust the reply.
    if (!done && stop === undefined) throw new ModelError('malformed', 'the openai stream ended before [DONE] (connection cut or malformed stream)');
    const calls = finishCalls([...pending.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c));
    return { text, toolCalls: calls, stopReason: stop ?? (calls.length > 0 ? 'tool_use' : 'end_turn'), usage: { inputTokens, outputTokens } };
  }
}

function finishCalls(raw: { id: string; name: string; args: string }[]): ToolCallRecord[] {
  return raw.map((c, i) => {
    if (!c.name) throw new ModelError('malformed', 'the openai reply has a tool call without a function name');
    return { id: c.id || `call_${i}_${Date.now().toString(36)}`, name: c.name, argumentsJson: c.args || '{}' };
  });
}

function parseCompletion(body: string): ModelResponse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ModelError('malformed', `the openai response is not JSON: ${JSON.stringify(body.slice(0, 120))}`);
  }
  const data = obj(parsed);
  const choices = data['choices'];
  if (!Array.isArray(choices) || choices.length === 0) throw new ModelError('malformed', 'the openai response has no choices');
  const choice = obj(choices[0]);
  const message = obj(choice['message']);
  const toolCalls = Array.isArray(message['tool_calls']) ? message['tool_calls'] : [];
  const calls = finishCalls(toolCalls.map((raw) => {
    const tc = obj(raw);
    const fn = obj(tc['function']);
    return { id: str(tc['id']) ?? '', name: str(fn['name']) ?? '', args: typeof fn['arguments'] === 'string' ? fn['arguments'] : JSON.stringify(fn['arguments'] ?? {}) };
  }));
  const usage = obj(data['usage']);
  return {
    text: str(message['content']) ?? '',
    toolCalls: calls,
    stopReason: stopReason(choice['finish_reason']),
    usage: { inputTokens: num(usage['prompt_tokens']), outputTokens: num(usage['completion_tokens']) },
  };
}
