// The built-in agent as an ACP agent: initialize, session/new (model config
// from `_meta.tether`), session/prompt (runs the loop), session/cancel.
// Transport-independent: main.ts connects it to stdio or a MessagePort.

import { agent, type AgentApp, type ContentBlock, PROTOCOL_VERSION, RequestError } from '@agentclientprotocol/sdk';
import { parseAgentConfig, type AgentConfig } from './config.ts';
import { AnthropicDialect } from './dialects/anthropic.ts';
import type { DialectOptions, ModelClient } from './dialects/dialect.ts';
import { ModelError } from './dialects/dialect.ts';
import { OpenAiDialect } from './dialects/openai.ts';
import { AgentSession, type ClientPort } from './loop.ts';

export const AGENT_NAME = 'tether-agent';
export const AGENT_VERSION = '0.1.0';

/** JSON-RPC error code of a `session/prompt` that failed because the model provider or gateway failed. */
export const MODEL_ERROR_CODE = -32010;

export function createModelClient(config: AgentConfig): ModelClient {
  const opts: DialectOptions = { baseUrl: config.baseUrl, token: config.token, model: config.model, stream: config.stream, timeoutMs: config.timeoutMs };
  return config.provider === 'anthropic' ? new AnthropicDialect(opts) : new OpenAiDialect(opts);
}

export function promptText(blocks: readonly ContentBlock[]): string {
  const parts: string[] = [];
  for (const b of blocks) {
    if (b.type === 'text') parts.push(b.text);
    else if (b.type === 'resource_link') parts.push(`[resource: ${b.uri}]`);
    else if (b.type === 'resource') {
      const r = b.resource as { uri?: string; text?: string };
      parts.push(r.text !== undefined ? `[resource ${r.uri ?? ''}]\n${r.text}` : `[resource: ${r.uri ?? ''} (binary, not shown)]`);
    } else parts.push(`[${b.type} content omitted: this agent reads text only]`);
  }
  return parts.join('\n\n');
}

export function createAgentApp(): AgentApp {
  const sessions = new Map<string, AgentSession>();
  let terminal = false;
  let counter = 0;

  return agent({ name: AGENT_NAME })
    .onRequest('initialize', ({ params }) => {
      terminal = params.clientCapabilities?.terminal === true;
      return {
        protocolVersion: PROTOCOL_VERSION,
        agentCapabilities: { loadSession: false, promptCapabilities: { image: false, audio: false, embeddedContext: true } },
        agentInfo: { name: AGENT_NAME, version: AGENT_VERSION },
        authMethods: [],
      };
    })
    .onRequest('session/new', ({ params, client }) => {
      let config: AgentConfig;
      try {
        config = parseAgentConfig(params._meta);
      } catch (e) {
        throw RequestError.invalidParams({ reason: (e as Error).message }, (e as Error).message);
      }
      const sessionId = `tether-${Date.now().toString(36)}-${(++counter).toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
      const port: ClientPort = {
        request: <T>(method: string, p: Record<string, unknown>, signal?: AbortSignal) =>
          client.request<T>(method, p, signal ? { cancellationSignal: signal, stopWaitingOnCancel: true } : undefined),
        notify: (method, p) => client.notify(method, p),
      };
      sessions.set(sessionId, new AgentSession({ sessionId, cwd: params.cwd, config, model: createModelClient(config), client: port, terminal }));
      return { sessionId };
    })
    .onRequest('session/prompt', async ({ params, signal }) => {
      const session = sessions.get(params.sessionId);
      if (!session) throw RequestError.sessionNotFound(params.sessionId);
      if (session.busy) throw RequestError.invalidRequest(undefined, 'a prompt is already running in this session');
      try {
        const r = await session.prompt(promptText(params.prompt), { traceparent: params._meta?.['traceparent'], signal });
        return {
          stopReason: r.stopReason,
          _meta: { tether: { modelRequests: r.modelRequests, inputTokens: r.inputTokens, outputTokens: r.outputTokens } },
        };
      } catch (e) {
        if (e instanceof ModelError) {
          throw new RequestError(MODEL_ERROR_CODE, `the turn ended because the model failed: ${e.message}`, { kind: e.kind, ...(e.status ? { status: e.status } : {}) });
        }
        throw RequestError.internalError(undefined, `the agent failed: ${(e as Error).message}`);
      }
    })
    .onNotification('session/cancel', ({ params }) => {
      sessions.get(params.sessionId)?.cancel();
    });
}
