// The agent's per-session configuration, sent by the host in `session/new`
// `_meta.tether`. It names the host's egress gateway and a per-session gateway
// token; the agent never receives a provider API key.

import { z } from 'zod';
import { isLoopbackHost } from '../common/loopback.ts';


export const AgentConfig = z.strictObject({
  provider: z.enum(['anthropic', 'openai']),
  model: z.string().min(1).max(200),
  /** The host's egress gateway, on loopback. */
  baseUrl: z.string().max(2000).refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'http:' && isLoopbackHost(u.hostname) && !u.username && !u.password;
    } catch {
      return false;
    }
  }, 'baseUrl must be the host egress gateway: an http:// URL on 127.0.0.1, localhost or [::1]'),
  /** Per-session gateway token (not a provider API key). */
  token: z.string().min(16).max(512).regex(/^[\x21-\x7e]+$/, 'token must be printable ASCII without spaces'),
  /** Model requests per prompt before the turn stops with `max_turn_requests`. */
  maxTurns: z.number().int().min(1).max(1000).default(50),
  /** Output tokens per model reply (`max_tokens`); a reply cut there stops the turn with `max_tokens`. */
  maxTokens: z.number().int().min(1).max(1_000_000).default(8192),
  /** Input + output tokens per prompt across all model requests; over it the turn stops with `max_tokens`. */
  maxTotalTokens: z.number().int().min(1).optional(),
  systemPrompt: z.string().max(200_000).optional(),
  stream: z.boolean().default(true),
  /** Nothing from the gateway for this long (headers or next chunk) → the turn ends with a timeout error. */
  timeoutMs: z.number().int().min(100).max(3_600_000).default(120_000),
});
export type AgentConfig = z.infer<typeof AgentConfig>;
export type AgentConfigInput = z.input<typeof AgentConfig>;

/** Parses `_meta.tether`; throws an Error whose message lists every problem. */
export function parseAgentConfig(meta: unknown): AgentConfig {
  const raw = meta && typeof meta === 'object' ? (meta as Record<string, unknown>)['tether'] : undefined;
  if (raw === undefined) throw new Error('session/new needs _meta.tether with the model configuration ({ provider, model, baseUrl, token, ... })');
  const parsed = AgentConfig.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new Error(`invalid _meta.tether: ${problems.join('; ')}`);
  }
  return parsed.data;
}
