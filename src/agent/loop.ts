// The agent loop for one session: prompt → model → tool calls → results →
// model … until the model ends its turn or a stop condition fires (max turn
// requests, max tokens, cancel). It knows the client only through ClientPort
// and the model only through ModelClient, so it runs without a process.

import { resolve } from 'node:path';
import { childSpan, formatTraceparent, newTrace, parseTraceparent, type TraceContext } from '../common/trace.ts';
import type { AgentConfig } from './config.ts';
import { type ChatMessage, type ModelClient, ModelError, type ToolCallRecord, type ToolResultRecord } from './dialects/dialect.ts';
import { type HostPort, runTool, TOOL_SPECS, ToolCancelled, toolKind, toolPath, toolTitle } from './tools.ts';

/** The ACP client as the loop sees it; the caller adds nothing, the loop adds `_meta.traceparent`. */
export interface ClientPort {
  request<T>(method: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<T>;
  notify(method: string, params: Record<string, unknown>): Promise<void>;
}

export type StopReason = 'end_turn' | 'max_tokens' | 'max_turn_requests' | 'refusal' | 'cancelled';

export interface PromptResult {
  readonly stopReason: StopReason;
  readonly modelRequests: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export interface SessionOptions {
  readonly sessionId: string;
  readonly cwd: string;
  readonly config: AgentConfig;
  readonly model: ModelClient;
  readonly client: ClientPort;
  readonly terminal: boolean;
}

export function defaultSystemPrompt(cwd: string, terminal: boolean): string {
  return [
    'You are a coding agent working in a workspace on the user\'s machine, inside Tether.',
    `The workspace root is ${cwd}; use paths relative to it.`,
    'You act only through your tools. Every tool call is a request to the Tether host, which checks it against the',
    'organisation\'s policy and may ask the user first. A request can be denied; the tool error then names the rule.',
    'When that happens, do not try to reach the same thing another way: adapt your plan or explain to the user what you could not do.',
    terminal ? 'run_command runs in a sandbox and may also need approval.' : 'run_command is not available in this version; do not rely on it.',
    'Prefer edit_file for small changes to existing files and write_file for new files. Read a file before you edit it.',
    'Be concise. When you are done, summarise what you changed.',
  ].join('\n');
}

export class AgentSession {
  readonly id: string;
  private readonly opts: SessionOptions;
  private readonly messages: ChatMessage[] = [];
  private running: AbortController | undefined;
  /** Updates in order; the prompt answers only after they are all sent. */
  private updates: Promise<void> = Promise.resolve();

  constructor(opts: SessionOptions) {
    this.id = opts.sessionId;
    this.opts = opts;
  }

  get history(): readonly ChatMessage[] {
    return this.messages;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Aborts the running prompt: the model fetch and any pending host request. */
  cancel(): void {
    this.running?.abort(new Error('cancelled by the user'));
  }

  /**
   * Runs one prompt to its stop reason. Throws ModelError when the provider or
   * gateway fails (the caller turns it into a JSON-RPC error with its message).
   */
  async prompt(text: string, options: { traceparent?: unknown; signal?: AbortSignal } = {}): Promise<PromptResult> {
    if (this.running) throw new Error('a prompt is already running in this session; cancel it or wait for it to finish');
    const controller = new AbortController();
    this.running = controller;
    const signal = options.signal ? AbortSignal.any([controller.signal, options.signal]) : controller.signal;
    const trace = parseTraceparent(options.traceparent) ?? newTrace();
    try {
      return await this.run(text, signal, trace);
    } finally {
      await this.updates;
      this.running = undefined;
    }
  }

  private async run(text: string, signal: AbortSignal, trace: TraceContext): Promise<PromptResult> {
    const { config, model } = this.opts;
    const system = config.systemPrompt ?? defaultSystemPrompt(this.opts.cwd, this.opts.terminal);
    this.messages.push({ role: 'user', text });
    let modelRequests = 0;
    let inputTokens = 0;
    let outputTokens = 0;
    const result = (stopReason: StopReason): PromptResult => ({ stopReason, modelRequests, inputTokens, outputTokens });

    for (;;) {
      if (signal.aborted) return result('cancelled');
      if (modelRequests >= config.maxTurns) return result('max_turn_requests');
      modelRequests++;
      let streamed = '';
      let reply;
      try {
        reply = await model.complete(
          { system, messages: this.messages, tools: TOOL_SPECS, maxTokens: config.maxTokens, signal, traceparent: this.span(trace) },
          (delta) => {
            streamed += delta;
            this.update(trace, { sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: delta } });
          },
        );
      } catch (e) {
        if (signal.aborted || (e instanceof ModelError && e.kind === 'cancelled')) {
          if (streamed) this.messages.push({ role: 'assistant', text: streamed, toolCalls: [] });
          return result('cancelled');
        }
        throw e;
      }
      inputTokens += reply.usage.inputTokens;
      outputTokens += reply.usage.outputTokens;
      this.messages.push({ role: 'assistant', text: reply.text, toolCalls: reply.toolCalls });
      for (const call of reply.toolCalls) this.announce(trace, call);

      if (reply.stopReason === 'max_tokens') {
        this.skip(trace, reply.toolCalls, 'the reply was cut off at max_tokens');
        return result('max_tokens');
      }
      if (config.maxTotalTokens !== undefined && inputTokens + outputTokens >= config.maxTotalTokens) {
        this.skip(trace, reply.toolCalls, `the token budget of ${config.maxTotalTokens} for this prompt is used up`);
        return result('max_tokens');
      }
      if (reply.toolCalls.length === 0) return result(reply.stopReason === 'refusal' ? 'refusal' : 'end_turn');

      const results: ToolResultRecord[] = [];
      for (const [i, call] of reply.toolCalls.entries()) {
        this.update(trace, { sessionUpdate: 'tool_call_update', toolCallId: call.id, status: 'in_progress' });
        let outcome;
        try {
          outcome = await runTool(call, this.host(trace), signal);
        } catch (e) {
          if (!(e instanceof ToolCancelled)) throw e;
          this.messages.push({ role: 'tool', results });
          this.skip(trace, reply.toolCalls.slice(i), 'the user cancelled the turn', false);
          return result('cancelled');
        }
        results.push({ id: call.id, name: call.name, content: outcome.content, isError: outcome.isError });
        const content: Record<string, unknown>[] = [{ type: 'content', content: { type: 'text', text: clip(outcome.content) } }];
        if (outcome.diff) content.unshift({ type: 'diff', path: this.abs(outcome.diff.path), oldText: outcome.diff.oldText, newText: outcome.diff.newText });
        this.update(trace, { sessionUpdate: 'tool_call_update', toolCallId: call.id, status: outcome.isError ? 'failed' : 'completed', content });
      }
      this.messages.push({ role: 'tool', results });
    }
  }

  /** Answers calls that will not run, so the conversation stays well-formed for the next prompt. */
  private skip(trace: TraceContext, calls: readonly ToolCallRecord[], why: string, push = true): void {
    if (calls.length === 0) return;
    const results = calls.map((c) => ({ id: c.id, name: c.name, content: `Error: not run: ${why}`, isError: true }));
    if (push) this.messages.push({ role: 'tool', results });
    else {
      const last = this.messages.at(-1);
      if (last?.role === 'tool') this.messages[this.messages.length - 1] = { role: 'tool', results: [...last.results, ...results] };
    }
    for (const c of calls) {
      this.update(trace, { sessionUpdate: 'tool_call_update', toolCallId: c.id, status: 'failed', content: [{ type: 'content', content: { type: 'text', text: `not run: ${why}` } }] });
    }
  }

  private announce(trace: TraceContext, call: ToolCallRecord): void {
    const path = toolPath(call.argumentsJson);
    let rawInput: unknown = call.argumentsJson;
    try {
      rawInput = JSON.parse(call.argumentsJson);
    } catch {
      // Shown raw; the tool answers with an error.
    }
    this.update(trace, {
      sessionUpdate: 'tool_call',
      toolCallId: call.id,
      title: toolTitle(call.name, call.argumentsJson),
      name: call.name,
      kind: toolKind(call.name),
      status: 'pending',
      rawInput,
      ...(path ? { locations: [{ path: this.abs(path) }] } : {}),
    });
  }

  private host(trace: TraceContext): HostPort {
    return {
      sessionId: this.id,
      terminal: this.opts.terminal,
      request: <T>(method: string, params: Record<string, unknown>, signal?: AbortSignal | null) =>
        this.opts.client.request<T>(method, { ...params, _meta: { traceparent: this.span(trace) } }, signal ?? undefined),
    };
  }

  private span(trace: TraceContext): string {
    return formatTraceparent(childSpan(trace));
  }

  private update(trace: TraceContext, update: Record<string, unknown>): void {
    const params = { sessionId: this.id, update, _meta: { traceparent: this.span(trace) } };
    this.updates = this.updates.then(() => this.opts.client.notify('session/update', params)).catch(() => {
      // A lost display update must not end the turn; the prompt result still reports the outcome.
    });
  }

  private abs(path: string): string {
    return resolve(this.opts.cwd, path);
  }
}

function clip(text: string): string {
  return text.length > 4000 ? `${text.slice(0, 4000)}\n…` : text;
}
