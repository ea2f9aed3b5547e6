// A complete host for one session without Electron: HostCore (policy, signed
// audit, egress gateway, sandbox, checkpoints) and one TetherSession on it.
// Used by the CLI (`tether run`, `tether demo`) and the integration tests, so
// they exercise the same wiring the desktop app uses (app-host.ts).

import type { AgentStarter } from './agent-starter.ts';
import type { AuditWriter } from './audit/audit-writer.ts';
import type { KeyStore } from './keychain/key-store.ts';
import type { ConsentPort } from './consent.ts';
import { defaultDataDir } from './data-dir.ts';
import type { EgressGateway } from './egress/gateway.ts';
import { DEFAULT_BASE_URLS, DEFAULT_MODELS, HostCore, type CoreSession } from './host-core.ts';
import type { Provider, TetherSession } from './session.ts';

export { DEFAULT_BASE_URLS, DEFAULT_MODELS };

export interface HeadlessOptions {
  readonly workspace: string;
  readonly provider: Provider;
  readonly model?: string;
  readonly baseUrl?: string;
  readonly policyFiles?: readonly string[];
  readonly managedPolicyFiles?: readonly string[];
  /** Default: `<dataDir>/audit`. */
  readonly auditDir?: string;
  /** Tether's data directory (checkpoints, audit); default $TETHER_DATA_DIR or the platform's. */
  readonly dataDir?: string;
  /** Default true. */
  readonly checkpoints?: boolean;
  /** Default true: shell commands run in the OS sandbox (denied with a reason where it is unavailable). */
  readonly commands?: boolean;
  readonly networkDomains?: readonly string[];
  /** Collectors the audit log is shipped to (HostCoreOptions.ship). */
  readonly ship?: readonly string[];
  readonly consent: ConsentPort;
  readonly consentTimeoutMs?: number;
  readonly maxTurns?: number;
  readonly starter?: AgentStarter;
  /** Where the audit signing key lives. Default: the OS keychain. */
  readonly keyStore?: KeyStore;
  /** Managed setting: run with an unsigned audit log when no key is available (every record says so). */
  readonly allowUnsignedAudit?: boolean;
  /** The model API key, read by the host only; the agent never sees it. */
  readonly apiKey?: () => string | undefined;
}

export interface HeadlessHost {
  readonly session: TetherSession;
  readonly audit: AuditWriter;
  readonly auditDir: string;
  readonly gateway: EgressGateway;
  close(): Promise<void>;
}

export async function startHeadlessHost(opts: HeadlessOptions): Promise<HeadlessHost> {
  const upstreamBaseUrl = opts.baseUrl ?? DEFAULT_BASE_URLS[opts.provider];
  const core = await HostCore.start({
    dataDir: opts.dataDir ?? defaultDataDir(),
    ...(opts.auditDir ? { auditDir: opts.auditDir } : {}),
    ...(opts.policyFiles ? { policyFiles: opts.policyFiles } : {}),
    ...(opts.managedPolicyFiles ? { managedPolicyFiles: opts.managedPolicyFiles } : {}),
    modelProviders: [upstreamBaseUrl],
    ...(opts.keyStore ? { keyStore: opts.keyStore } : {}),
    ...(opts.allowUnsignedAudit ? { allowUnsignedAudit: true } : {}),
    // No UI shares this event loop: audit commits skip the thread pool's hand-off.
    auditCommitInPlace: true,
    ...(opts.apiKey ? { getApiKey: opts.apiKey } : {}),
    ...(opts.commands !== undefined ? { commands: opts.commands } : {}),
    ...(opts.checkpoints !== undefined ? { checkpoints: opts.checkpoints } : {}),
    ...(opts.networkDomains ? { networkDomains: opts.networkDomains } : {}),
    ...(opts.ship ? { ship: opts.ship } : {}),
  });
  let started: CoreSession;
  try {
    started = await core.startSession({
      workspace: opts.workspace,
      provider: opts.provider,
      model: opts.model ?? DEFAULT_MODELS[opts.provider],
      upstreamBaseUrl,
      consent: opts.consent,
      ...(opts.consentTimeoutMs ? { consentTimeoutMs: opts.consentTimeoutMs } : {}),
      ...(opts.maxTurns ? { maxTurns: opts.maxTurns } : {}),
      ...(opts.starter ? { starter: opts.starter } : {}),
    });
  } catch (e) {
    await core.close();
    throw e;
  }
  return {
    session: started.session,
    audit: core.audit,
    auditDir: core.auditDir,
    gateway: core.gateway,
    close: () => core.close(),
  };
}
