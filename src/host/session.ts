// One agent session: an agent process, its ACP connection, and the host
// pieces it is brokered by (jail, policy, consent, grants, audit, egress).
// The CLI, the desktop app and the dev bridge all drive sessions through this
// class; none of them talks to the agent directly.

import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { PROTOCOL_VERSION, type ClientConnection, type NewSessionResponse, type SessionNotification } from '@agentclientprotocol/sdk';
import type { AuditActor } from '../common/audit-record.ts';
import { Emitter } from '../common/emitter.ts';
import { formatTraceparent, newTrace, traceFromMeta, type TraceContext } from '../common/trace.ts';
import type { CapabilityRequest } from '../common/capability.ts';
import type { EgressRequestInfo } from './egress/gateway.ts';
import { createAcpHost } from './acp-host.ts';
import type { AgentExit, AgentProcess, AgentStarter } from './agent-starter.ts';
import { describeAgentExit, ForkAgentStarter } from './agent-starter.ts';
import type { AuditWriter } from './audit/audit-writer.ts';
import { Broker } from './broker.ts';
import { GrantStore, type ConsentPort } from './consent.ts';
import { FsEffects } from './fs-effects.ts';
import { ForbiddenFiles } from './policy/forbidden-files.ts';
import type { PolicyEngine } from './policy/policy-engine.ts';
import { restoreThroughBroker } from './checkpoints/brokered-restore.ts';
import type { CheckpointStore } from './checkpoints/checkpoint-store.ts';
import type { CheckpointInfo, RestoreResult } from './checkpoints/checkpoint-types.ts';
import { SessionCheckpoints } from './checkpoints/session-checkpoints.ts';
import type { Sandbox } from './sandbox/sandbox.ts';
import { terminalHandlers } from './terminal/terminal-handlers.ts';
import { TerminalService, type TerminalOutputEvent } from './terminal/terminal-service.ts';
import { WorkspaceJail } from './workspace-jail.ts';

export type Provider = 'anthropic' | 'openai';

/** How the agent reaches its model: the host's egress gateway for this session. */
export interface ModelRoute {
  readonly provider: Provider;
  readonly model: string;
  /** The gateway URL the agent calls (loopback). */
  readonly baseUrl: string;
  /** Per-session gateway token (not an API key). */
  readonly token: string;
}

export interface SessionOptions {
  readonly workspace: string;
  readonly policy: PolicyEngine;
  readonly audit: AuditWriter;
  readonly consent: ConsentPort;
  readonly model: ModelRoute;
  readonly starter?: AgentStarter;
  readonly grants?: GrantStore;
  readonly consentTimeoutMs?: number;
  readonly maxTurns?: number;
  readonly actor?: Partial<AuditActor>;
  /** Checkpoints every change so it can be undone (shadow repository). */
  readonly checkpoints?: CheckpointStore;
  /** Runs the agent's shell commands (ACP terminal/*). Without it the agent has no commands. */
  readonly sandbox?: Sandbox;
  /** Domains commands may reach through the sandbox's proxy when policy allows them. */
  readonly networkDomains?: readonly string[];
}

export interface PromptResult {
  readonly stopReason: string;
  readonly traceId: string;
}

export class SessionError extends Error {
  override readonly name = 'SessionError';
}

export class TetherSession {
  readonly id: string;
  readonly broker: Broker;
  readonly grants: GrantStore;
  readonly jail: WorkspaceJail;
  private readonly audit: AuditWriter;
  private readonly agent: AgentProcess;
  private readonly connection: ClientConnection;
  private readonly acpSessionId: string;
  private readonly checkpoints: { store: CheckpointStore; hooks: SessionCheckpoints } | undefined;
  /** The agent's shell commands; their output feeds the terminal view. */
  readonly terminals: TerminalService | undefined;
  private readonly didUpdate = new Emitter<SessionNotification>();
  private readonly didExit = new Emitter<AgentExit>();
  /** ACP `session/update` notifications from the agent (text, tool calls). */
  readonly onDidUpdate = this.didUpdate.event;
  /** The agent process ended (crash, kill, or close). */
  readonly onDidAgentExit = this.didExit.event;
  private readonly didCheckpoint = new Emitter<CheckpointInfo>();
  /** A checkpoint of the workspace was taken (a change, a turn start, a restore). */
  readonly onDidCheckpoint = this.didCheckpoint.event;
  private readonly didTerminalOutput = new Emitter<TerminalOutputEvent>();
  /** What the agent's commands print, while they run (batched and bounded by the TerminalService). */
  readonly onDidTerminalOutput = this.didTerminalOutput.event;
  private closed = false;
  /** Set once the agent process has exited: the session can do nothing more. */
  private agentExit: AgentExit | undefined;
  private readonly disposers: (() => void)[] = [];

  private constructor(parts: {
    id: string; broker: Broker; grants: GrantStore; jail: WorkspaceJail; audit: AuditWriter; agent: AgentProcess;
    connection: ClientConnection; acpSessionId: string;
    checkpoints: { store: CheckpointStore; hooks: SessionCheckpoints } | undefined;
    terminals: TerminalService | undefined;
  }) {
    this.checkpoints = parts.checkpoints;
    this.terminals = parts.terminals;
    this.id = parts.id;
    this.broker = parts.broker;
    this.grants = parts.grants;
    this.jail = parts.jail;
    this.audit = parts.audit;
    this.agent = parts.agent;
    this.connection = parts.connection;
    this.acpSessionId = parts.acpSessionId;
  }

  static async start(opts: SessionOptions): Promise<TetherSession> {
    const jail = await WorkspaceJail.open(opts.workspace);
    const grants = opts.grants ?? new GrantStore();
    const actor: AuditActor = {
      user: opts.actor?.user ?? safeUser(),
      device: opts.actor?.device ?? hostname(),
      agent: opts.actor?.agent ?? 'tether-builtin',
      model: opts.actor?.model ?? `${opts.model.provider}/${opts.model.model}`,
    };
    let sessionId = 'starting';
    const checkpoints = opts.checkpoints ? new SessionCheckpoints(opts.checkpoints, () => sessionId) : undefined;
    const broker = new Broker({
      policy: opts.policy,
      consent: opts.consent,
      grants,
      audit: opts.audit,
      actor,
      consentTimeoutMs: opts.consentTimeoutMs ?? 5 * 60_000,
      ...(checkpoints ? { hooks: checkpoints } : {}),
    });
    const fs = new FsEffects(jail);
    const sessions = new Set<string>();
    const updates = new Emitter<SessionNotification>();
    // One set of answers on which workspace entries policy keeps from the agent, for the sandbox and the broker.
    const forbiddenFiles = new ForbiddenFiles(opts.policy);
    const terminals = opts.sandbox
      ? new TerminalService({
          broker,
          sandbox: opts.sandbox,
          workspace: jail.root,
          policy: opts.policy,
          forbiddenFiles,
          resolvePath: () => (p, intent) => jail.resolve(p, { intent }),
          ...(opts.networkDomains ? { networkDomains: opts.networkDomains } : {}),
        })
      : undefined;
    const app = createAcpHost({
      broker, policy: opts.policy, forbiddenFiles, jail, fs, sessions,
      onSessionUpdate: (p) => updates.fire(p as SessionNotification),
      ...(terminals ? { extend: terminalHandlers(terminals) } : {}),
    });

    const starter = opts.starter ?? new ForkAgentStarter();
    const agent = await starter.start({
      onFramingIssue: (issue) => void opts.audit.append({ type: 'protocol.violation', session: '', detail: { problem: issue.kind, bytes: issue.bytes } }).catch(() => {}),
    });
    const connection = app.connect(agent.stream);
    const fail = async (e: unknown): Promise<never> => {
      agent.kill();
      connection.close();
      await jail.close();
      throw new SessionError(`the agent process did not start a session: ${(e as Error).message}`);
    };

    const init = await withTimeout(connection.agent.request('initialize', {
      protocolVersion: PROTOCOL_VERSION,
      clientCapabilities: { fs: { readTextFile: true, writeTextFile: true }, terminal: terminals !== undefined },
      clientInfo: { name: 'tether', version: '0.1.0' },
    }), 15_000, 'initialize').catch(fail);
    if (init.protocolVersion !== PROTOCOL_VERSION) await fail(new Error(`it speaks ACP version ${init.protocolVersion}, Tether speaks ${PROTOCOL_VERSION}`));

    const tetherConfig = {
      provider: opts.model.provider,
      model: opts.model.model,
      baseUrl: opts.model.baseUrl,
      token: opts.model.token,
      ...(opts.maxTurns ? { maxTurns: opts.maxTurns } : {}),
    };
    const newSession = connection.agent.request('session/new', { cwd: jail.root, mcpServers: [], _meta: { tether: tetherConfig } });
    let created: NewSessionResponse;
    try {
      created = await withTimeout(newSession, 15_000, 'session/new');
    } catch (e) {
      return fail(e);
    }
    sessions.add(created.sessionId);
    sessionId = created.sessionId;
    checkpoints?.start();
    // The first command would otherwise wait for policy on every workspace file.
    terminals?.prepareSession(created.sessionId);

    const session = new TetherSession({
      id: created.sessionId, broker, grants, jail, audit: opts.audit, agent, connection, acpSessionId: created.sessionId,
      checkpoints: checkpoints && opts.checkpoints ? { store: opts.checkpoints, hooks: checkpoints } : undefined,
      terminals,
    });
    updates.event((n) => session.didUpdate.fire(n));
    const stopCheckpointEvents = opts.checkpoints?.onDidCheckpoint((c) => session.didCheckpoint.fire(c));
    const stopOutputEvents = terminals?.onDidOutput((o) => {
      if (o.sessionId === session.id) session.didTerminalOutput.fire(o);
    });
    session.disposers.push(() => stopCheckpointEvents?.(), () => stopOutputEvents?.());
    await opts.audit.append({ type: 'session.start', session: session.id, actor, detail: { workspace: jail.root, provider: opts.model.provider, model: opts.model.model } });
    void agent.exited.then(async (exit) => {
      session.agentExit = exit;
      session.broker.halt('the agent process exited');
      await terminals?.releaseAll(session.id).catch(() => {});
      if (!session.closed) {
        await opts.audit.append({ type: 'agent.exit', session: session.id, detail: { code: exit.code, signal: exit.signal } }).catch(() => {});
      }
      session.didExit.fire(exit);
    });
    return session;
  }

  /**
   * Runs one task (an ACP prompt turn). A stop() earlier is lifted first; the
   * halt that follows the agent process's exit is not: nothing would answer.
   */
  async prompt(task: string, trace: TraceContext = newTrace()): Promise<PromptResult> {
    if (this.closed) throw new SessionError('the session is closed');
    if (this.agentExit) {
      throw new SessionError(`the agent process ${describeAgentExit(this.agentExit)}; start a new session`);
    }
    this.broker.resume();
    this.checkpoints?.hooks.beginTurn();
    const res = await this.connection.agent.request('session/prompt', {
      sessionId: this.acpSessionId,
      prompt: [{ type: 'text', text: task }],
      _meta: { traceparent: formatTraceparent(trace) },
    });
    await this.broker.settled();
    return { stopReason: res.stopReason, traceId: trace.traceId };
  }

  /** Brokers one model call from the egress gateway (policy `model` action; audited like any request). */
  async authorizeModelCall(info: EgressRequestInfo): Promise<void> {
    const request: CapabilityRequest = {
      id: randomUUID(),
      sessionId: this.id,
      action: 'model',
      kind: 'model',
      method: 'model',
      workspace: this.jail.root,
      url: info.url,
      trace: traceFromMeta({ traceparent: info.traceparent }),
    };
    await this.broker.execute(request, {
      preview: async () => ({ type: 'net', destination: info.url, method: info.method, bytes: info.bytes, summary: info.summary }),
      effect: async () => ({ result: undefined, outcome: { bytes: info.bytes } }),
      signal: info.signal,
    });
  }

  /** Whether changes are checkpointed (and can be undone). */
  get checkpointsEnabled(): boolean {
    return this.checkpoints !== undefined;
  }

  /** The session's checkpoints, newest first (empty when checkpoints are off). */
  listCheckpoints(): Promise<CheckpointInfo[]> {
    return this.checkpoints ? this.checkpoints.store.list() : Promise.resolve([]);
  }

  /**
   * "Undo to here": a brokered, consented, audited restore (itself undoable).
   * Works after stop() without lifting it: the agent stays halted. Throws
   * RestoreConflictError, before asking, when it would overwrite files changed
   * outside Tether and `overwriteConflicts` (the user's explicit yes) is not set.
   */
  async restoreCheckpoint(checkpoint: string, opts: { paths?: readonly string[]; overwriteConflicts?: boolean } = {}): Promise<RestoreResult> {
    if (this.closed) throw new SessionError('the session is closed');
    if (!this.checkpoints) throw new SessionError('checkpoints are off for this session');
    return restoreThroughBroker({ broker: this.broker, store: this.checkpoints.store, sessionId: this.id, checkpoint, ...opts });
  }

  /** The stop button: denies pending and new requests at once, kills running commands, and cancels the turn. */
  async stop(reason = 'stopped by the user'): Promise<void> {
    this.broker.halt(reason);
    await Promise.all([
      this.connection.agent.notify('session/cancel', { sessionId: this.acpSessionId }).catch(() => {}),
      this.terminals?.killAll(this.id).catch((e: unknown) => console.error(`tether: stopping the session's commands failed: ${(e as Error).message}`)),
    ]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.broker.halt('the session is closed');
    this.grants.revokeSession(this.id);
    await this.broker.settled();
    await this.audit.append({ type: 'session.end', session: this.id }).catch(() => {});
    this.connection.close();
    this.agent.kill();
    await this.agent.exited;
    await this.terminals?.dispose();
    await this.jail.close();
    for (const d of this.disposers.splice(0)) d();
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} got no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
