// Assembles the desktop app's host: one policy engine, one audit log and one
// egress gateway for the app's lifetime, and an AppService that starts real
// TetherSessions on them. The Electron main process (utilityProcess agent,
// native folder picker) and the dev bridge (forked agent, fixed workspace)
// differ only in what they pass in here.

import { randomUUID } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ProviderOption } from '../common/ipc-contract.ts';
import type { AgentStarter } from './agent-starter.ts';
import { AppService, JsonFileSettings, type HostSession, type RestartPolicy, type SessionRequest } from './app-service.ts';
import { SignedAuditView } from './audit-view.ts';
import { SignedAuditLog } from './audit/signed-audit-log.ts';
import type { KeyStore } from './keychain/key-store.ts';
import { KeyringKeyStore } from './keychain/keyring-key-store.ts';
import { EgressGateway, envApiKey, type ApiKeySource, type ModelProvider } from './egress/gateway.ts';
import { CheckpointStore } from './checkpoints/checkpoint-store.ts';
import { CedarPolicyEngine } from './policy/cedar-policy-engine.ts';
import { BubblewrapSandbox } from './sandbox/bubblewrap-sandbox.ts';
import { createDemoScript, DEMO_MODEL, startScriptedModel, type ModelScript, type ScriptedModelServer } from './scripted-model.ts';
import { TetherSession } from './session.ts';

export const DEFAULT_BASE_URLS: Readonly<Record<ModelProvider, string>> = {
  anthropic: 'https://api.anthropic.com',
  openai: 'https://api.openai.com/v1',
};
export const DEFAULT_MODELS: Readonly<Record<ModelProvider, string>> = {
  anthropic: 'claude-sonnet-4-5',
  openai: 'gpt-5',
};

export interface AppHostOptions {
  /** Settings and the audit log live here (the app's userData folder). */
  readonly dataDir: string;
  /** A new agent starter per session: utilityProcess in Electron, a forked Node in the dev bridge. */
  readonly starter: () => AgentStarter;
  readonly chooseFolder: () => Promise<string | undefined>;
  readonly openExternal?: (url: string) => Promise<boolean>;
  readonly policyFiles?: readonly string[];
  readonly managedPolicyFiles?: readonly string[];
  /** The 'scripted' provider's model: a script run by a loopback server (the demo script by default). */
  readonly demoScript?: ModelScript;
  readonly getApiKey?: ApiKeySource;
  readonly baseUrls?: Partial<Record<ModelProvider, string>>;
  readonly consentTimeoutMs?: number;
  readonly restart?: Partial<RestartPolicy>;
  readonly maxTurns?: number;
  /** Default true: shell commands run in the OS sandbox (denied with a reason where it is unavailable). */
  readonly commands?: boolean;
  /** Default true: every change is checkpointed so it can be undone. */
  readonly checkpoints?: boolean;
  /** Domains commands may reach through the sandbox's proxy when policy allows them. */
  readonly networkDomains?: readonly string[];
  /** Where the audit signing key lives. Default: the OS keychain. */
  readonly keyStore?: KeyStore;
  /** Managed setting: run with an unsigned audit log when no key is available (every record says so). */
  readonly allowUnsignedAudit?: boolean;
}

export interface AppHost {
  readonly service: AppService;
  readonly auditDir: string;
  /** The scripted model server behind the 'scripted' (demo) provider. */
  scriptedModel(): ScriptedModelServer;
  /** Sessions open now (tests reach the broker through this). */
  sessions(): readonly HostSession[];
  close(): Promise<void>;
}

export async function startAppHost(opts: AppHostOptions): Promise<AppHost> {
  const auditDir = join(opts.dataDir, 'audit');
  // The demo provider's model: a loopback server, started now so policy knows its address.
  const scripted = await startScriptedModel({ script: opts.demoScript ?? createDemoScript() });
  const upstream: Readonly<Record<ModelProvider | 'scripted', string>> = {
    anthropic: opts.baseUrls?.anthropic ?? DEFAULT_BASE_URLS.anthropic,
    openai: opts.baseUrls?.openai ?? DEFAULT_BASE_URLS.openai,
    scripted: scripted.url,
  };
  let policy: CedarPolicyEngine;
  try {
    policy = await CedarPolicyEngine.load({
      userFiles: [...(opts.policyFiles ?? [])],
      managedFiles: [...(opts.managedPolicyFiles ?? [])],
      protectedPaths: [auditDir, opts.dataDir],
      modelProviders: Object.values(upstream),
    });
  } catch (e) {
    await scripted.close();
    throw e;
  }
  let audit: SignedAuditLog;
  try {
    audit = await SignedAuditLog.open({
      dir: auditDir,
      keyStore: opts.keyStore ?? new KeyringKeyStore(),
      ...(opts.allowUnsignedAudit ? { allowUnsigned: true } : {}),
      onWarning: (m) => console.error(`tether: audit: ${m}`),
    });
  } catch (e) {
    await scripted.close();
    throw e;
  }
  const sandbox = opts.commands === false ? undefined : await BubblewrapSandbox.create({ protectedPaths: [auditDir, opts.dataDir, ...policy.files.map((f) => f.file)] });
  const getApiKey = opts.getApiKey ?? envApiKey;
  const gateway = await EgressGateway.start({ getApiKey });
  const sessions = new Set<HostSession>();

  const providers = (): ProviderOption[] => [
    { provider: 'scripted', label: 'Demo — scripted model, no AI', defaultModel: DEMO_MODEL, ready: true, note: 'Canned replies that walk through a read, an asked write and a denied secret. No API key needed.' },
    keyed('anthropic', 'Anthropic', 'ANTHROPIC_API_KEY'),
    keyed('openai', 'OpenAI (or compatible)', 'OPENAI_API_KEY'),
  ];
  const keyed = (provider: ModelProvider, label: string, env: string): ProviderOption => {
    const ready = opts.getApiKey !== undefined || envApiKey(provider) !== undefined;
    return { provider, label, defaultModel: DEFAULT_MODELS[provider], ready, ...(ready ? {} : { note: `Set ${env} in Tether's environment (the agent never sees it).` }) };
  };

  const startSession = async (req: SessionRequest): Promise<HostSession> => {
    const gwId = randomUUID();
    const route = req.provider === 'scripted'
      ? { provider: 'anthropic' as const, model: req.model ?? DEMO_MODEL, upstream: upstream.scripted }
      : { provider: req.provider, model: req.model ?? DEFAULT_MODELS[req.provider], upstream: upstream[req.provider] };
    // Model calls are brokered like any other request; until the session exists, nothing is allowed.
    let session: TetherSession | undefined;
    const gw = gateway.openSession({
      sessionId: gwId,
      provider: route.provider,
      upstreamBaseUrl: route.upstream,
      requireApiKey: !isLoopback(route.upstream),
      authorize: async (info) => {
        if (!session) throw new Error('no session is running');
        await session.authorizeModelCall(info);
      },
    });
    const checkpoints = opts.checkpoints === false ? undefined : await CheckpointStore.open({ workspace: req.workspace, dataDir: opts.dataDir });
    try {
      session = await TetherSession.start({
        workspace: req.workspace,
        policy,
        audit,
        consent: req.consent,
        model: { provider: route.provider, model: route.model, baseUrl: gw.baseUrl, token: gw.token },
        starter: opts.starter(),
        consentTimeoutMs: req.consentTimeoutMs,
        ...(opts.maxTurns ? { maxTurns: opts.maxTurns } : {}),
        ...(checkpoints ? { checkpoints } : {}),
        ...(sandbox ? { sandbox } : {}),
        ...(opts.networkDomains ? { networkDomains: opts.networkDomains } : {}),
      });
    } catch (e) {
      gateway.closeSession(gwId);
      await checkpoints?.close();
      throw e;
    }
    const started = session;
    const host: HostSession = {
      id: started.id,
      broker: started.broker,
      grants: started.grants,
      onDidUpdate: started.onDidUpdate,
      onDidAgentExit: started.onDidAgentExit,
      prompt: (task) => started.prompt(task),
      stop: (reason) => started.stop(reason),
      close: async () => {
        sessions.delete(host);
        gateway.closeSession(gwId);
        await started.close();
        await checkpoints?.close();
      },
      describeRule: (id) => policy.rule(id)?.description,
      checkpointsEnabled: started.checkpointsEnabled,
      listCheckpoints: () => started.listCheckpoints(),
      restoreCheckpoint: (id, o) => started.restoreCheckpoint(id, o),
      onDidCheckpoint: started.onDidCheckpoint,
      onDidTerminalOutput: (listener) => started.onDidTerminalOutput((o) => listener({
        terminalId: o.terminalId,
        ...(o.command !== undefined ? { command: o.command } : {}),
        data: o.data,
        ...(o.exit ? { exit: o.exit } : {}),
      })),
    };
    sessions.add(host);
    return host;
  };

  const service = new AppService({
    startSession,
    chooseFolder: opts.chooseFolder,
    providers,
    policy: async () => policy,
    audit,
    auditView: new SignedAuditView(auditDir, { verifierKey: () => audit.status.verifierKey, log: audit, allowUnsigned: opts.allowUnsignedAudit ?? false }),
    settings: new JsonFileSettings(join(opts.dataDir, 'settings.json')),
    ...(opts.openExternal ? { openExternal: opts.openExternal } : {}),
    ...(opts.consentTimeoutMs !== undefined ? { consentTimeoutMs: opts.consentTimeoutMs } : {}),
    ...(opts.restart ? { restart: opts.restart } : {}),
    home: homedir(),
  });

  return {
    service,
    auditDir,
    scriptedModel: () => scripted,
    sessions: () => [...sessions],
    async close() {
      await service.dispose();
      for (const s of [...sessions]) await s.close().catch(() => undefined);
      await gateway.close();
      await sandbox?.dispose();
      await scripted.close();
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
