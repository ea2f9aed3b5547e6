// Assembles a complete host for one session without Electron: policy, audit,
// egress gateway, agent process, broker. Used by the CLI (`tether run`,
// `tether demo`), the dev bridge and the integration tests, so all of them
// exercise the same wiring the desktop app uses.

import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { AgentStarter } from './agent-starter.ts';
import type { AuditWriter } from './audit/audit-writer.ts';
import { SignedAuditLog } from './audit/signed-audit-log.ts';
import type { KeyStore } from './keychain/key-store.ts';
import { KeyringKeyStore } from './keychain/keyring-key-store.ts';
import type { ConsentPort } from './consent.ts';
import { defaultDataDir } from './data-dir.ts';
import { EgressGateway } from './egress/gateway.ts';
import { CheckpointStore } from './checkpoints/checkpoint-store.ts';
import { BubblewrapSandbox } from './sandbox/bubblewrap-sandbox.ts';
import { CedarPolicyEngine } from './policy/cedar-policy-engine.ts';
import { TetherSession, type Provider } from './session.ts';

export const DEFAULT_BASE_URLS: Readonly<Record<Provider, string>> = {
  anthropic: 'https://api.anthropic.com',
  openai: 'https://api.openai.com/v1',
};
export const DEFAULT_MODELS: Readonly<Record<Provider, string>> = {
  anthropic: 'claude-sonnet-4-5',
  openai: 'gpt-5',
};

export interface HeadlessOptions {
  readonly workspace: string;
  readonly provider: Provider;
  readonly model?: string;
  readonly baseUrl?: string;
  readonly policyFiles?: readonly string[];
  readonly managedPolicyFiles?: readonly string[];
  readonly auditDir?: string;
  /** Tether's data directory (checkpoints); default $TETHER_DATA_DIR or the platform's. */
  readonly dataDir?: string;
  /** Default true. */
  readonly checkpoints?: boolean;
  /** Default true: shell commands run in the OS sandbox (denied with a reason where it is unavailable). */
  readonly commands?: boolean;
  readonly networkDomains?: readonly string[];
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
  const auditDir = resolve(opts.auditDir ?? join(defaultDataDir(), 'audit'));
  const provider = opts.provider;
  const model = opts.model ?? DEFAULT_MODELS[provider];
  const upstreamBaseUrl = opts.baseUrl ?? DEFAULT_BASE_URLS[provider];
  const policy = await CedarPolicyEngine.load({
    userFiles: [...(opts.policyFiles ?? [])],
    managedFiles: [...(opts.managedPolicyFiles ?? [])],
    protectedPaths: [auditDir, resolve(opts.dataDir ?? defaultDataDir())],
    modelProviders: [upstreamBaseUrl],
  });
  const dataDir = resolve(opts.dataDir ?? defaultDataDir());
  const audit = await SignedAuditLog.open({
    dir: auditDir,
    keyStore: opts.keyStore ?? new KeyringKeyStore(),
    ...(opts.allowUnsignedAudit ? { allowUnsigned: true } : {}),
    onWarning: (m) => console.error(`tether: audit: ${m}`),
  });
  const checkpoints = opts.checkpoints === false ? undefined : await CheckpointStore.open({ workspace: opts.workspace, dataDir });
  const sandbox = opts.commands === false ? undefined : await BubblewrapSandbox.create({ protectedPaths: [auditDir, dataDir, ...policy.files.map((f) => f.file)] });
  const gateway = await EgressGateway.start(opts.apiKey ? { getApiKey: opts.apiKey } : {});
  // Model calls are brokered like any other request: the gateway asks before
  // anything leaves the machine. Until the session exists, nothing is allowed.
  let session: TetherSession | undefined;
  const route = gateway.openSession({
    sessionId: randomUUID(),
    provider,
    upstreamBaseUrl,
    requireApiKey: !isLoopback(upstreamBaseUrl),
    authorize: async (info) => {
      if (!session) throw new Error('no session is running');
      await session.authorizeModelCall(info);
    },
  });
  try {
    session = await TetherSession.start({
      workspace: opts.workspace,
      policy,
      audit,
      consent: opts.consent,
      model: { provider, model, baseUrl: route.baseUrl, token: route.token },
      ...(opts.starter ? { starter: opts.starter } : {}),
      ...(opts.consentTimeoutMs ? { consentTimeoutMs: opts.consentTimeoutMs } : {}),
      ...(opts.maxTurns ? { maxTurns: opts.maxTurns } : {}),
      ...(checkpoints ? { checkpoints } : {}),
      ...(sandbox ? { sandbox } : {}),
      ...(opts.networkDomains ? { networkDomains: opts.networkDomains } : {}),
    });
  } catch (e) {
    await sandbox?.dispose();
    await gateway.close();
    await checkpoints?.close();
    await audit.close();
    throw e;
  }
  const s = session;
  return {
    session: s,
    audit,
    auditDir,
    gateway,
    async close() {
      await s.close();
      await sandbox?.dispose();
      await gateway.close();
      await checkpoints?.close();
      await audit.close();
    },
  };
}

function isLoopback(url: string): boolean {
  try {
    const h = new URL(url).hostname;
    return h === '127.0.0.1' || h === 'localhost' || h === '[::1]' || h.startsWith('127.');
  } catch {
    return false;
  }
}
