// The one contract between the renderer and the host: every invoke channel's
// arguments and result, and every event the host pushes, as zod schemas.
// Everything else is derived from it: the preload's API object (`createApi`),
// the host-side dispatcher (`handleInvoke`), the dev bridge, and the renderer's
// `window.tether` type. Both sides validate at run time: the host never trusts
// what the renderer sends, and the renderer never trusts a malformed event.
//
// What crosses here is what a screen shows: request targets, diffs, commands,
// rule descriptions. Never file contents beyond a diff, keys, tokens or env.

import { z } from 'zod';

// ---------------------------------------------------------------- shapes ----

const id = z.string().min(1).max(200);
const text = (max = 4096) => z.string().max(max);
const pathText = z.string().max(4096);

export const CapabilityActionSchema = z.enum(['read', 'list', 'search', 'stat', 'write', 'delete', 'move', 'exec', 'net', 'model']);
export const CapabilityKindSchema = z.enum(['read', 'write', 'exec', 'net', 'model']);
export const PolicyEffectSchema = z.enum(['allow', 'ask', 'deny']);
export const DecidedBySchema = z.enum(['policy', 'user', 'preset', 'grant', 'timeout', 'kill-switch', 'host', 'error']);
export const ConsentAnswerSchema = z.enum(['once', 'session', 'deny']);
export const ProviderSchema = z.enum(['anthropic', 'openai', 'scripted']);

/** A request as the renderer sees it: its targets, no contents. */
export const RequestViewSchema = z.object({
  id,
  action: CapabilityActionSchema,
  kind: CapabilityKindSchema,
  method: text(200),
  path: pathText.optional(),
  relPath: pathText.optional(),
  inWorkspace: z.boolean().optional(),
  destination: pathText.optional(),
  command: text(64 * 1024).optional(),
  cwd: pathText.optional(),
  url: text(8192).optional(),
  traceId: text(64),
});
export type RequestView = z.infer<typeof RequestViewSchema>;

export const RuleInfoSchema = z.object({ id: text(500), description: text() });
export type RuleInfo = z.infer<typeof RuleInfoSchema>;

export const SandboxProfileSchema = z.object({
  writable: z.array(pathText).max(1000),
  hidden: z.array(pathText).max(1000),
  network: z.union([z.literal('none'), z.object({ allowedDomains: z.array(text(500)).max(1000) })]),
});

const DIFF_MAX = 4 * 1024 * 1024;
export const ConsentPreviewSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('write'), path: pathText, created: z.boolean(), bytes: z.number().int().min(0), diff: text(DIFF_MAX) }),
  z.object({ type: z.literal('delete'), path: pathText, recursive: z.boolean(), diff: text(DIFF_MAX).optional() }),
  z.object({ type: z.literal('move'), from: pathText, to: pathText, overwrite: z.boolean() }),
  z.object({ type: z.literal('read'), path: pathText, note: text().optional() }),
  z.object({ type: z.literal('exec'), command: text(64 * 1024), cwd: pathText, sandbox: z.union([SandboxProfileSchema, z.literal('unsandboxed')]), notes: z.array(text()).max(100) }),
  z.object({ type: z.literal('net'), destination: text(8192), method: text(20), bytes: z.number().int().min(0), summary: text() }),
  z.object({
    type: z.literal('restore'),
    checkpoint: z.number().int().min(0),
    summary: text(),
    files: z.array(z.object({ path: pathText, action: z.enum(['create', 'overwrite', 'delete']), conflict: text().optional() })).max(100_000),
    diff: text(DIFF_MAX),
  }),
]);
export type ConsentPreviewView = z.infer<typeof ConsentPreviewSchema>;

export const GrantScopeSchema = z.object({
  actions: z.array(CapabilityActionSchema).min(1).max(10),
  pathPattern: pathText.optional(),
  command: z.object({ program: text(4096), args: z.array(text(64 * 1024)).max(1000) }).optional(),
  host: text(500).optional(),
});
export type GrantScopeView = z.infer<typeof GrantScopeSchema>;

export const GrantViewSchema = z.object({
  id,
  sessionId: id,
  scope: GrantScopeSchema,
  createdAt: text(40),
  fromRequest: id,
  description: text(),
});
export type GrantView = z.infer<typeof GrantViewSchema>;

export const ConsentQuestionViewSchema = z.object({
  id,
  sessionId: id,
  request: RequestViewSchema,
  policy: z.object({ effect: PolicyEffectSchema, policyIds: z.array(text(500)).max(100), reason: text() }),
  /** Why policy asked: the determining rules and their descriptions. */
  rules: z.array(RuleInfoSchema).max(100),
  preview: ConsentPreviewSchema,
  /** What "allow for this session" grants; absent when it is not offered. */
  proposedGrant: z.object({ scope: GrantScopeSchema, description: text() }).optional(),
  timeoutMs: z.number().int().min(0),
  /** Epoch ms at which the host denies the question (same machine clock). */
  deadline: z.number(),
});
export type ConsentQuestionView = z.infer<typeof ConsentQuestionViewSchema>;

export const ConsentSettledSchema = z.object({
  id,
  answer: ConsentAnswerSchema,
  /** Who settled it: the user here, a timeout, the stop button, the agent withdrawing it. */
  by: z.enum(['user', 'timeout', 'stopped', 'cancelled']),
  reason: text(),
});
export type ConsentSettled = z.infer<typeof ConsentSettledSchema>;

export const DecisionViewSchema = z.object({
  allowed: z.boolean(),
  effect: PolicyEffectSchema,
  policyIds: z.array(text(500)).max(100),
  rules: z.array(RuleInfoSchema).max(100),
  decidedBy: DecidedBySchema,
  answer: ConsentAnswerSchema.optional(),
  grantId: id.optional(),
  reason: text(),
});
export type DecisionView = z.infer<typeof DecisionViewSchema>;

export const OutcomeViewSchema = z.object({
  ok: z.boolean(),
  error: text().optional(),
  bytes: z.number().optional(),
  exitCode: z.number().nullable().optional(),
  signal: text(40).nullable().optional(),
  durationMs: z.number().optional(),
  changedFiles: z.array(z.object({ path: pathText, change: z.enum(['created', 'modified', 'deleted']) })).max(10_000).optional(),
});
export type OutcomeView = z.infer<typeof OutcomeViewSchema>;

/** One line of the activity timeline: a request, its decision, later its outcome. */
export const ActivityEntrySchema = z.object({
  seq: z.number().int().min(0),
  time: text(40),
  sessionId: id,
  request: RequestViewSchema,
  decision: DecisionViewSchema,
  outcome: OutcomeViewSchema.optional(),
});
export type ActivityEntry = z.infer<typeof ActivityEntrySchema>;

export const ActivityOutcomeSchema = z.object({ requestId: id, seq: z.number().int().min(0), outcome: OutcomeViewSchema });
export type ActivityOutcome = z.infer<typeof ActivityOutcomeSchema>;

export const SessionStateSchema = z.enum(['none', 'starting', 'running', 'idle', 'stopping', 'stopped', 'restarting', 'crashed', 'failed']);
export const SessionStatusSchema = z.object({
  state: SessionStateSchema,
  sessionId: id.optional(),
  workspace: pathText.optional(),
  provider: ProviderSchema.optional(),
  model: text(200).optional(),
  /** Last prompt's stop reason (end_turn, cancelled, max_turns, …). */
  stopReason: text(100).optional(),
  /** What went wrong, in words the user can act on. */
  detail: text().optional(),
});
export type SessionStatus = z.infer<typeof SessionStatusSchema>;

export const AgentUpdateSchema = z.object({
  sessionId: id,
  kind: z.enum(['message', 'thought', 'tool', 'plan', 'user']),
  text: text(256 * 1024),
  toolCallId: text(200).optional(),
  status: text(40).optional(),
});
export type AgentUpdate = z.infer<typeof AgentUpdateSchema>;

export const TerminalOutputSchema = z.object({
  terminalId: text(200),
  /** The command, sent with the first chunk of a terminal. */
  command: text(64 * 1024).optional(),
  data: text(1024 * 1024),
  exit: z.object({ exitCode: z.number().nullable(), signal: text(40).nullable() }).optional(),
});
export type TerminalOutput = z.infer<typeof TerminalOutputSchema>;

const checkpointId = z.string().regex(/^[0-9a-f]{40}$/, 'a checkpoint id is 40 hex digits');
export const CheckpointKindSchema = z.enum(['turn-start', 'change', 'before-restore', 'restore', 'manual']);

/** A checkpoint of the workspace: what changed since the one before it, and what caused it. */
export const CheckpointViewSchema = z.object({
  id: checkpointId,
  seq: z.number().int().min(1),
  time: text(40),
  kind: CheckpointKindSchema,
  sessionId: text(200),
  turn: z.number().int().min(0),
  /** The requests that caused it (timeline entries carry the same ids). */
  requestIds: z.array(text(200)).max(1000),
  /** The first changed paths (see changedCount for all). */
  changed: z.array(z.object({ path: pathText, status: z.enum(['added', 'modified', 'deleted']) })).max(200),
  changedCount: z.number().int().min(0),
  restoredFrom: checkpointId.optional(),
});
export type CheckpointView = z.infer<typeof CheckpointViewSchema>;

export const RestoreResultSchema = z.object({
  restored: z.boolean(),
  /** What happened, in words: restored N files, denied, refused. */
  message: text(),
  files: z.number().int().min(0).optional(),
  /** Restore this one to undo the restore. */
  undoCheckpoint: checkpointId.optional(),
  /**
   * Files changed outside Tether since the latest checkpoint. The restore was
   * not asked for: ask the user, and call again with overwriteConflicts if they agree.
   */
  conflicts: z.array(z.object({ path: pathText, conflict: text() })).max(10_000).optional(),
});
export type RestoreResultView = z.infer<typeof RestoreResultSchema>;

export const AgentCrashSchema = z.object({
  message: text(),
  exitCode: z.number().nullable(),
  signal: text(40).nullable(),
  attempt: z.number().int().min(1),
  /** Milliseconds until the next start; null when Tether gave up restarting. */
  restartInMs: z.number().int().min(0).nullable(),
});
export type AgentCrash = z.infer<typeof AgentCrashSchema>;

export const ProviderOptionSchema = z.object({
  provider: ProviderSchema,
  label: text(200),
  defaultModel: text(200),
  /** Whether a key is configured for it (never the key itself). */
  ready: z.boolean(),
  note: text().optional(),
});
export type ProviderOption = z.infer<typeof ProviderOptionSchema>;

export const DisclosureItemSchema = z.object({
  capability: text(200),
  example: text(),
  effect: PolicyEffectSchema,
  rules: z.array(RuleInfoSchema).max(100),
  reason: text(),
});
export const DisclosureSchema = z.object({
  /** Hash of the policy in force; a new policy asks for a new acknowledgement. */
  fingerprint: text(200),
  acknowledged: z.boolean(),
  workspace: pathText.optional(),
  items: z.array(DisclosureItemSchema).max(100),
  notes: z.array(text()).max(50),
});
export type Disclosure = z.infer<typeof DisclosureSchema>;

export const AuditRecordViewSchema = z.object({
  seq: z.number().int().min(0),
  time: text(40),
  type: text(60),
  session: text(200),
  traceId: text(64).optional(),
  request: z.object({
    id, method: text(200), action: CapabilityActionSchema, kind: CapabilityKindSchema,
    path: pathText.optional(), destination: pathText.optional(), command: text(64 * 1024).optional(), cwd: pathText.optional(), url: text(8192).optional(),
  }).optional(),
  decision: z.object({
    effect: PolicyEffectSchema, allowed: z.boolean(), policyIds: z.array(text(500)).max(100), decidedBy: DecidedBySchema,
    answer: ConsentAnswerSchema.optional(), grantId: id.optional(), reason: text(),
  }).optional(),
  outcome: OutcomeViewSchema.optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
});
export type AuditRecordView = z.infer<typeof AuditRecordViewSchema>;

export const AuditVerificationSchema = z.object({
  ok: z.boolean(),
  records: z.number().int().min(0),
  message: text(),
  /** The first bad record, when verification failed. */
  badSeq: z.number().int().min(0).optional(),
  /** Records were written since this answer was computed: ask again after this many ms to have them verified. */
  recheckMs: z.number().int().min(0).max(600_000).optional(),
});
export type AuditVerification = z.infer<typeof AuditVerificationSchema>;

/** How shipping the audit log to one collector stands. */
export const ShippingStatusSchema = z.object({
  collector: text(300),
  /** Records written but not yet taken by the collector. */
  behind: z.number().int().min(0),
  state: z.enum(['ok', 'near-full', 'full']),
  lastError: text().optional(),
});
export type ShippingStatus = z.infer<typeof ShippingStatusSchema>;

export const SnapshotSchema = z.object({
  session: SessionStatusSchema,
  providers: z.array(ProviderOptionSchema).max(20),
  pending: z.array(ConsentQuestionViewSchema).max(1000),
  activity: z.array(ActivityEntrySchema).max(10_000),
  grants: z.array(GrantViewSchema).max(10_000),
  /** Whether the first-run disclosure still needs an acknowledgement. */
  disclosureRequired: z.boolean(),
  /** The workspace chosen last (shown in the start form). */
  workspace: pathText.optional(),
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

// -------------------------------------------------------------- channels ----

const none = z.object({}).strict();

/** Invoke channels: renderer → host, one request, one result. */
export const INVOKE = {
  getSnapshot: { args: none, result: SnapshotSchema },
  /** Opens the host's folder picker; only a folder chosen there can become a workspace. */
  chooseWorkspace: { args: none, result: z.object({ workspace: pathText.nullable() }) },
  startSession: {
    args: z.object({ workspace: pathText.min(1), task: text(100_000).min(1), provider: ProviderSchema, model: text(200).optional() }).strict(),
    result: SessionStatusSchema,
  },
  sendPrompt: { args: z.object({ task: text(100_000).min(1) }).strict(), result: z.object({ accepted: z.boolean(), reason: text().optional() }) },
  /** The stop button: halts the broker (pending questions are denied at once) and cancels the agent's turn. */
  stopSession: { args: none, result: z.object({ stopped: z.boolean(), deniedQuestions: z.number().int().min(0) }) },
  /** Closes the session (the agent process ends; its grants go with it). */
  endSession: { args: none, result: SessionStatusSchema },
  answerConsent: {
    args: z.object({ id, answer: ConsentAnswerSchema }).strict(),
    result: z.object({ accepted: z.boolean(), reason: text().optional() }),
  },
  listGrants: { args: none, result: z.object({ grants: z.array(GrantViewSchema).max(10_000) }) },
  revokeGrant: { args: z.object({ id }).strict(), result: z.object({ revoked: z.boolean() }) },
  readAudit: {
    args: z.object({ limit: z.number().int().min(1).max(5000).optional() }).strict(),
    result: z.object({ records: z.array(AuditRecordViewSchema).max(5000), verification: AuditVerificationSchema, shipping: z.array(ShippingStatusSchema).max(20) }),
  },
  getDisclosure: { args: z.object({ workspace: pathText.optional() }).strict(), result: DisclosureSchema },
  acknowledgeDisclosure: { args: z.object({ fingerprint: text(200) }).strict(), result: z.object({ recorded: z.boolean(), seq: z.number().int().min(0).optional() }) },
  /** The workspace's checkpoints, newest first (at most 200); `available` is false when there is no session or checkpoints are off. */
  listCheckpoints: { args: none, result: z.object({ available: z.boolean(), checkpoints: z.array(CheckpointViewSchema).max(200) }) },
  /**
   * "Undo to here": puts the workspace back as it was at a checkpoint. Asks
   * the user through the consent dialog (with the diff); refused without
   * asking when it would overwrite files changed outside Tether, unless
   * `overwriteConflicts` carries the user's explicit yes to that.
   */
  restoreCheckpoint: {
    args: z.object({ checkpoint: checkpointId, overwriteConflicts: z.boolean().optional(), paths: z.array(pathText.min(1)).min(1).max(1000).optional() }).strict(),
    result: RestoreResultSchema,
  },
  /** Opens an http(s) link in the system browser after the host checks it. */
  openExternal: { args: z.object({ url: text(2048) }).strict(), result: z.object({ opened: z.boolean() }) },
} as const satisfies Record<string, { args: z.ZodType; result: z.ZodType }>;

/** Events: host → renderer. */
export const EVENTS = {
  sessionStatus: SessionStatusSchema,
  consentAsked: ConsentQuestionViewSchema,
  consentSettled: ConsentSettledSchema,
  activity: ActivityEntrySchema,
  activityOutcome: ActivityOutcomeSchema,
  grantsChanged: z.object({ grants: z.array(GrantViewSchema).max(10_000) }),
  agentUpdate: AgentUpdateSchema,
  terminalOutput: TerminalOutputSchema,
  agentCrashed: AgentCrashSchema,
  auditAppended: z.object({ seq: z.number().int().min(0) }),
  /** A checkpoint was taken; the renderer reloads the list (listCheckpoints). */
  checkpointsChanged: z.object({ latestSeq: z.number().int().min(1) }),
} as const satisfies Record<string, z.ZodType>;

export type InvokeName = keyof typeof INVOKE;
export type EventName = keyof typeof EVENTS;
export type ArgsOf<K extends InvokeName> = z.input<(typeof INVOKE)[K]['args']>;
export type ResultOf<K extends InvokeName> = z.output<(typeof INVOKE)[K]['result']>;
export type PayloadOf<E extends EventName> = z.output<(typeof EVENTS)[E]>;

/** Electron IPC channel names. */
export const invokeChannel = (name: InvokeName): string => `tether:${name}`;
export const EVENT_CHANNEL = 'tether:event';

export function isInvokeName(name: unknown): name is InvokeName {
  return typeof name === 'string' && Object.hasOwn(INVOKE, name);
}
export function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && Object.hasOwn(EVENTS, name);
}

// ------------------------------------------------------------- envelopes ----

/** What an invoke returns over any transport: a value, or an error that says what happened. */
export const EnvelopeSchema = z.union([
  z.object({ ok: z.literal(true), value: z.unknown() }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.enum(['invalid-args', 'unknown-channel', 'refused', 'failed', 'invalid-result']), message: text() }) }),
]);
export type Envelope = z.infer<typeof EnvelopeSchema>;
export type ErrorCode = Extract<Envelope, { ok: false }>['error']['code'];

export const EventMessageSchema = z.object({ name: z.string().max(100), payload: z.unknown() });

/** An error the host raises on purpose (refused: not allowed now, with a reason). */
export class ContractError extends Error {
  override readonly name = 'ContractError';
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues.slice(0, 4).map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ');
}

// ------------------------------------------------------------ host side ----

/** What the host implements: one function per invoke channel. */
export type ApiHandlers = { readonly [K in InvokeName]: (args: z.output<(typeof INVOKE)[K]['args']>) => Promise<z.input<(typeof INVOKE)[K]['result']>> };

/**
 * Validates a renderer's call, runs the handler and validates its result.
 * Never throws: every failure becomes an error envelope naming the check.
 */
export async function handleInvoke(handlers: ApiHandlers, name: unknown, rawArgs: unknown): Promise<Envelope> {
  if (!isInvokeName(name)) return { ok: false, error: { code: 'unknown-channel', message: `unknown channel ${JSON.stringify(String(name)).slice(0, 120)}` } };
  const spec = INVOKE[name];
  const args = spec.args.safeParse(rawArgs ?? {});
  if (!args.success) return { ok: false, error: { code: 'invalid-args', message: `${name}: invalid arguments: ${describeIssues(args.error)}` } };
  let value: unknown;
  try {
    value = await (handlers[name] as (a: unknown) => Promise<unknown>)(args.data);
  } catch (e) {
    if (e instanceof ContractError) return { ok: false, error: { code: e.code, message: e.message } };
    return { ok: false, error: { code: 'failed', message: `${name} failed: ${(e as Error)?.message ?? String(e)}` } };
  }
  const result = spec.result.safeParse(value);
  if (!result.success) return { ok: false, error: { code: 'invalid-result', message: `${name}: the host produced an invalid result: ${describeIssues(result.error)}` } };
  return { ok: true, value: result.data };
}

/** Validates an event before it leaves the host; returns undefined (and drops it) when malformed. */
export function checkEvent<E extends EventName>(name: E, payload: unknown): PayloadOf<E> | undefined {
  const r = EVENTS[name].safeParse(payload);
  return r.success ? (r.data as PayloadOf<E>) : undefined;
}

// -------------------------------------------------------- renderer side ----

/** How an API object reaches the host: Electron IPC in the preload, a WebSocket in the dev bridge. */
export interface ApiTransport {
  invoke(name: InvokeName, args: unknown): Promise<unknown>;
  /** Delivers every event; returns an unsubscribe. */
  subscribe(listener: (name: string, payload: unknown) => void): () => void;
}

type InvokeFn<K extends InvokeName> = Record<never, never> extends ArgsOf<K>
  ? (args?: ArgsOf<K>) => Promise<ResultOf<K>>
  : (args: ArgsOf<K>) => Promise<ResultOf<K>>;

export type TetherApi = { readonly [K in InvokeName]: InvokeFn<K> } & {
  /** Subscribes to one event; returns an unsubscribe. Malformed events are dropped and reported. */
  readonly on: <E extends EventName>(name: E, listener: (payload: PayloadOf<E>) => void) => () => void;
};

export interface CreateApiOptions {
  /** Told about every event dropped because it did not match the contract. */
  readonly onInvalidEvent?: (name: string, problem: string) => void;
}

/**
 * Builds the API object from the contract over a transport. Arguments are
 * checked before they leave, results and events when they arrive.
 */
export function createApi(transport: ApiTransport, options: CreateApiOptions = {}): TetherApi {
  const api: Record<string, unknown> = {};
  for (const name of Object.keys(INVOKE) as InvokeName[]) {
    const spec = INVOKE[name];
    api[name] = async (rawArgs?: unknown) => {
      const args = spec.args.safeParse(rawArgs ?? {});
      if (!args.success) throw new Error(`${name}: invalid arguments: ${describeIssues(args.error)}`);
      const envelope = EnvelopeSchema.safeParse(await transport.invoke(name, args.data));
      if (!envelope.success) throw new Error(`${name}: malformed reply from the host`);
      if (!envelope.data.ok) throw new Error(envelope.data.error.message);
      const result = spec.result.safeParse(envelope.data.value);
      if (!result.success) throw new Error(`${name}: the host's reply does not match the contract: ${describeIssues(result.error)}`);
      return result.data;
    };
  }
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  let unsubscribe: (() => void) | undefined;
  const dispatch = (name: string, payload: unknown) => {
    const set = listeners.get(name);
    if (!set || set.size === 0) return;
    if (!isEventName(name)) {
      options.onInvalidEvent?.(name, 'unknown event');
      return;
    }
    const parsed = EVENTS[name].safeParse(payload);
    if (!parsed.success) {
      options.onInvalidEvent?.(name, describeIssues(parsed.error));
      return;
    }
    for (const l of [...set]) l(parsed.data);
  };
  api['on'] = (name: EventName, listener: (payload: unknown) => void) => {
    if (!isEventName(name)) throw new Error(`unknown event ${String(name)}`);
    if (typeof listener !== 'function') throw new Error('listener must be a function');
    let set = listeners.get(name);
    if (!set) listeners.set(name, (set = new Set()));
    set.add(listener);
    unsubscribe ??= transport.subscribe(dispatch);
    return () => {
      set.delete(listener);
    };
  };
  return Object.freeze(api) as unknown as TetherApi;
}

// ------------------------------------------------------------ the page ----

/**
 * The renderer page's Content-Security-Policy. Scripts only from the app's own
 * origin, no eval, nothing framed, no forms, every fetch directive locked to
 * 'self'. Inline styles are allowed because xterm.js writes <style> elements
 * and style attributes at run time; with no network reachable from CSS
 * (img/font/connect locked down) injected CSS cannot send anything out.
 */
export function rendererCsp(connectSrc: readonly string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connectSrc.length > 0 ? connectSrc.join(' ') : "'none'"}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
    "worker-src 'none'",
    "manifest-src 'none'",
    "media-src 'none'",
  ].join('; ');
}

// -------------------------------------------------------- the dev bridge ----

/**
 * The dev bridge carries the same API over a WebSocket on loopback (tests and
 * `npm run dev:web` only). The browser sends the token as a second
 * subprotocol, since it cannot set headers on a WebSocket.
 */
export const BRIDGE_SUBPROTOCOL = 'tether-bridge.v1';
export const BRIDGE_TOKEN_PREFIX = 'tether-token.';
/** <meta> names the dev server writes into index.html. */
export const BRIDGE_META_URL = 'tether-bridge';
export const BRIDGE_META_TOKEN = 'tether-bridge-token';

export const BridgeClientMessageSchema = z.object({ t: z.literal('invoke'), id: z.number().int().min(0), name: z.string().max(100), args: z.unknown() });
export type BridgeClientMessage = z.infer<typeof BridgeClientMessageSchema>;
export const BridgeServerMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('result'), id: z.number().int().min(0), envelope: z.unknown() }),
  z.object({ t: z.literal('event'), name: z.string().max(100), payload: z.unknown() }),
]);
export type BridgeServerMessage = z.infer<typeof BridgeServerMessageSchema>;
