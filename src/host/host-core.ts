// What every Tether host is made of, assembled in one place: one Cedar policy
// engine, one signed audit log, one egress gateway and one command sandbox for
// the host's lifetime, and sessions started on them — each with its own
// gateway route (model calls brokered by the session, nothing allowed before
// it exists) and its own checkpoint store. The desktop app (app-host.ts: many
// sessions, one after another) and the CLI (headless-host.ts: one session)
// differ only in what they put around this.
//
// Not here: providers shown to the user, the scripted demo model, settings,
// the UI's consent port. Those belong to the host that needs them.

import { randomUUID } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isLoopbackUrl } from '../common/loopback.ts';
import type { AgentStarter } from './agent-starter.ts';
import { AuditOutbox, type OutboxMetrics } from './audit/audit-outbox.ts';
import { sinkFor } from './audit/ship-target.ts';
import { SignedAuditLog } from './audit/signed-audit-log.ts';
import { CheckpointStore } from './checkpoints/checkpoint-store.ts';
import type { ConsentPort } from './consent.ts';
import { EgressGateway, type ApiKeySource, type ModelProvider } from './egress/gateway.ts';
import type { KeyStore } from './keychain/key-store.ts';
import { KeyringKeyStore } from './keychain/keyring-key-store.ts';
import { CedarPolicyEngine } from './policy/cedar-policy-engine.ts';
import { ForbiddenFiles } from './policy/forbidden-files.ts';
import { BubblewrapSandbox } from './sandbox/bubblewrap-sandbox.ts';
import { TetherSession } from './session.ts';

export const DEFAULT_BASE_URLS: Readonly<Record<ModelProvider, string>> = {
  anthropic: 'https://api.anthropic.com',
  openai: 'https://api.openai.com/v1',
};
export const DEFAULT_MODELS: Readonly<Record<ModelProvider, string>> = {
  anthropic: 'claude-sonnet-4-5',
  openai: 'gpt-5',
};

export interface HostCoreOptions {
  /** Tether's data directory: checkpoints, and the audit log unless `auditDir` says otherwise. */
  readonly dataDir: string;
  /** Default: `<dataDir>/audit`. */
  readonly auditDir?: string;
  readonly policyFiles?: readonly string[];
  readonly managedPolicyFiles?: readonly string[];
  /** Upstream model endpoints policy lets model calls reach (base URLs). */
  readonly modelProviders: readonly string[];
  /** Where the audit signing key lives. Default: the OS keychain. */
  readonly keyStore?: KeyStore;
  /** Managed setting: run with an unsigned audit log when no key is available (every record says so). */
  readonly allowUnsignedAudit?: boolean;
  /** Audit commits on the event loop's thread (SignedAuditLogOptions.commitInPlace): for a host with no UI on it. */
  readonly auditCommitInPlace?: boolean;
  /**
   * Collectors the audit log is shipped to as it is written (ship-target.ts:
   * https://, splunk+https://, relp+tls://, syslog+tls://). A target that does
   * not parse stops the host from starting. Each has a durable cursor in the
   * audit directory, so what a run could not ship goes out with the next.
   */
  readonly ship?: readonly string[];
  /** How long closing waits for the collectors to take what is left. Default 5 s. */
  readonly shipDrainMs?: number;
  /** The model API keys, read by the host only. Default: ANTHROPIC_API_KEY / OPENAI_API_KEY. */
  readonly getApiKey?: ApiKeySource;
  /** Default true: shell commands run in the OS sandbox (denied with a reason where it is unavailable). */
  readonly commands?: boolean;
  /** Default true: every change is checkpointed so it can be undone. */
  readonly checkpoints?: boolean;
  /** Domains commands may reach through the sandbox's proxy when policy allows them. */
  readonly networkDomains?: readonly string[];
}

export interface CoreSessionOptions {
  readonly workspace: string;
  /** The wire dialect the agent speaks to the gateway. */
  readonly provider: ModelProvider;
  readonly model: string;
  /** Where the gateway forwards model calls (https, or http on loopback). */
  readonly upstreamBaseUrl: string;
  readonly consent: ConsentPort;
  readonly consentTimeoutMs?: number;
  readonly maxTurns?: number;
  readonly starter?: AgentStarter;
}

/** A running session and what was opened for it; `close` ends all of it. */
export interface CoreSession {
  readonly session: TetherSession;
  close(): Promise<void>;
}

export class HostCore {
  readonly dataDir: string;
  readonly auditDir: string;
  readonly policy: CedarPolicyEngine;
  readonly audit: SignedAuditLog;
  readonly gateway: EgressGateway;
  readonly sandbox: BubblewrapSandbox | undefined;
  private readonly opts: HostCoreOptions;
  private readonly open = new Set<CoreSession>();

  private readonly outboxes: readonly AuditOutbox[];
  private readonly forbiddenFiles: ForbiddenFiles;

  private constructor(parts: { opts: HostCoreOptions; dataDir: string; auditDir: string; policy: CedarPolicyEngine; audit: SignedAuditLog; gateway: EgressGateway; sandbox: BubblewrapSandbox | undefined; outboxes: readonly AuditOutbox[] }) {
    this.outboxes = parts.outboxes;
    this.forbiddenFiles = new ForbiddenFiles(parts.policy);
    this.opts = parts.opts;
    this.dataDir = parts.dataDir;
    this.auditDir = parts.auditDir;
    this.policy = parts.policy;
    this.audit = parts.audit;
    this.gateway = parts.gateway;
    this.sandbox = parts.sandbox;
  }

  /** Loads policy, opens the audit log, starts the gateway and the sandbox. Closes what it opened if a step fails. */
  static async start(opts: HostCoreOptions): Promise<HostCore> {
    const sinks = (opts.ship ?? []).map((target) => sinkFor(target));
    const dataDir = resolve(opts.dataDir);
    const auditDir = resolve(opts.auditDir ?? join(dataDir, 'audit'));
    const policy = await CedarPolicyEngine.load({
      userFiles: [...(opts.policyFiles ?? [])],
      managedFiles: [...(opts.managedPolicyFiles ?? [])],
      protectedPaths: [auditDir, dataDir],
      modelProviders: [...opts.modelProviders],
    });
    const audit = await SignedAuditLog.open({
      dir: auditDir,
      keyStore: opts.keyStore ?? new KeyringKeyStore(),
      ...(opts.allowUnsignedAudit ? { allowUnsigned: true } : {}),
      ...(opts.auditCommitInPlace ? { commitInPlace: true } : {}),
      onWarning: (m) => console.error(`tether: audit: ${m}`),
    });
    let sandbox: BubblewrapSandbox | undefined;
    const outboxes: AuditOutbox[] = [];
    try {
      for (const sink of sinks) {
        outboxes.push(await AuditOutbox.start({ dir: auditDir, sink, log: audit, onWarning: (m) => console.error(`tether: audit shipping to ${sink.name}: ${m}`) }));
      }
      sandbox = opts.commands === false ? undefined : await BubblewrapSandbox.create({ protectedPaths: [auditDir, dataDir, ...policy.files.map((f) => f.file)] });
      const gateway = await EgressGateway.start(opts.getApiKey ? { getApiKey: opts.getApiKey } : {});
      return new HostCore({ opts, dataDir, auditDir, policy, audit, gateway, sandbox, outboxes });
    } catch (e) {
      await sandbox?.dispose();
      await Promise.all(outboxes.map((o) => o.stop()));
      await audit.close();
      throw e;
    }
  }

  /** Sessions open now. */
  sessions(): readonly CoreSession[] {
    return [...this.open];
  }

  async startSession(opts: CoreSessionOptions): Promise<CoreSession> {
    const routeId = randomUUID();
    // Model calls are brokered like any other request: the gateway asks the
    // session before anything leaves the machine; until it exists, nothing does.
    let session: TetherSession | undefined;
    const route = this.gateway.openSession({
      sessionId: routeId,
      provider: opts.provider,
      upstreamBaseUrl: opts.upstreamBaseUrl,
      requireApiKey: !isLoopbackUrl(opts.upstreamBaseUrl),
      authorize: async (info) => {
        if (!session) throw new Error('no session is running');
        await session.authorizeModelCall(info);
      },
    });
    let checkpoints: CheckpointStore | undefined;
    try {
      if (this.opts.checkpoints !== false) {
        // Files policy keeps from the agent are never copied into checkpoints.
        const root = await realpath(opts.workspace).catch(() => resolve(opts.workspace));
        checkpoints = await CheckpointStore.open({
          workspace: opts.workspace,
          dataDir: this.dataDir,
          neverCapture: (rel, isDir) => this.forbiddenFiles.isForbidden(root, rel, isDir ? 'directory' : 'file'),
        });
      }
      session = await TetherSession.start({
        workspace: opts.workspace,
        policy: this.policy,
        audit: this.audit,
        consent: opts.consent,
        model: { provider: opts.provider, model: opts.model, baseUrl: route.baseUrl, token: route.token },
        ...(opts.starter ? { starter: opts.starter } : {}),
        ...(opts.consentTimeoutMs !== undefined ? { consentTimeoutMs: opts.consentTimeoutMs } : {}),
        ...(opts.maxTurns ? { maxTurns: opts.maxTurns } : {}),
        ...(checkpoints ? { checkpoints } : {}),
        ...(this.sandbox ? { sandbox: this.sandbox } : {}),
        ...(this.opts.networkDomains ? { networkDomains: this.opts.networkDomains } : {}),
      });
    } catch (e) {
      this.gateway.closeSession(routeId);
      await checkpoints?.close();
      throw e;
    }
    const started = session;
    const store = checkpoints;
    let closing: Promise<void> | undefined;
    const core: CoreSession = {
      session: started,
      close: () => (closing ??= (async () => {
        this.open.delete(core);
        this.gateway.closeSession(routeId);
        await started.close();
        await store?.close();
      })()),
    };
    this.open.add(core);
    return core;
  }

  /** Where shipping to each collector stands (backlog, last error). */
  shipping(): OutboxMetrics[] {
    return this.outboxes.map((o) => o.metrics());
  }

  /**
   * Closes every open session, then the gateway, the sandbox and the audit log
   * (sealed with a checkpoint); then gives the collectors up to `shipDrainMs`
   * to take the rest (what they do not goes out with the next run).
   */
  async close(): Promise<void> {
    for (const s of [...this.open]) await s.close().catch((e: unknown) => console.error('tether: closing a session failed:', e));
    await this.gateway.close();
    await this.sandbox?.dispose();
    let logClosed = false;
    try {
      await this.audit.close();
      logClosed = true;
    } finally {
      // Stopped whatever happened to the log (a failed log still has shippers to release).
      await Promise.all(this.outboxes.map(async (o) => {
        if (logClosed) {
          try {
            await o.drain(this.opts.shipDrainMs ?? 5000);
          } catch (e) {
            console.error(`tether: audit shipping to ${o.metrics().sink} is behind; the rest goes out with the next run (${(e as Error).message})`);
          }
        }
        await o.stop();
      }));
    }
  }
}
