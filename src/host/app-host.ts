// Assembles the desktop app's host: HostCore (policy, signed audit, egress
// gateway, sandbox, checkpoints; host-core.ts) for the app's lifetime, the
// scripted demo model, and an AppService that starts real TetherSessions on
// them, one after another. The Electron main process (utilityProcess agent,
// native folder picker) and the dev bridge (forked agent, fixed workspace)
// differ only in what they pass in here.

import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ProviderOption } from '../common/ipc-contract.ts';
import type { AgentStarter } from './agent-starter.ts';
import { AppService, JsonFileSettings, type HostSession, type RestartPolicy, type SessionRequest } from './app-service.ts';
import { SignedAuditView } from './audit-view.ts';
import type { KeyStore } from './keychain/key-store.ts';
import { envApiKey, type ApiKeySource, type ModelProvider } from './egress/gateway.ts';
import { DEFAULT_BASE_URLS, DEFAULT_MODELS, HostCore } from './host-core.ts';
import { createDemoScript, DEMO_MODEL, startScriptedModel, type ModelScript, type ScriptedModelServer } from './scripted-model.ts';

export { DEFAULT_BASE_URLS, DEFAULT_MODELS };

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
  /** Collectors the audit log is shipped to (HostCoreOptions.ship). */
  readonly ship?: readonly string[];
  /** Where the audit signing key lives. Default: the OS keychain. */
  readonly keyStore?: KeyStore;
  /** Managed setting: run with an unsigned audit log when no key is available (every record says so). */
  readonly allowUnsignedAudit?: boolean;
  /** How often the audit view verifies a live log again while records land (SignedAuditViewOptions.recheckMs; tests shorten it). */
  readonly auditRecheckMs?: number;
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
  // The demo provider's model: a loopback server, started now so policy knows its address.
  const scripted = await startScriptedModel({ script: opts.demoScript ?? createDemoScript() });
  const upstream: Readonly<Record<ModelProvider | 'scripted', string>> = {
    anthropic: opts.baseUrls?.anthropic ?? DEFAULT_BASE_URLS.anthropic,
    openai: opts.baseUrls?.openai ?? DEFAULT_BASE_URLS.openai,
    scripted: scripted.url,
  };
  let core: HostCore;
  try {
    core = await HostCore.start({
      dataDir: opts.dataDir,
      ...(opts.policyFiles ? { policyFiles: opts.policyFiles } : {}),
      ...(opts.managedPolicyFiles ? { managedPolicyFiles: opts.managedPolicyFiles } : {}),
      modelProviders: Object.values(upstream),
      ...(opts.keyStore ? { keyStore: opts.keyStore } : {}),
      ...(opts.allowUnsignedAudit ? { allowUnsignedAudit: true } : {}),
      getApiKey: opts.getApiKey ?? envApiKey,
      ...(opts.commands !== undefined ? { commands: opts.commands } : {}),
      ...(opts.checkpoints !== undefined ? { checkpoints: opts.checkpoints } : {}),
      ...(opts.networkDomains ? { networkDomains: opts.networkDomains } : {}),
    ...(opts.ship ? { ship: opts.ship } : {}),
    });
  } catch (e) {
    await scripted.close();
    throw e;
  }
  const { policy, audit, auditDir } = core;
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
    const route = req.provider === 'scripted'
      ? { provider: 'anthropic' as const, model: req.model ?? DEMO_MODEL, upstream: upstream.scripted }
      : { provider: req.provider, model: req.model ?? DEFAULT_MODELS[req.provider], upstream: upstream[req.provider] };
    const started = await core.startSession({
      workspace: req.workspace,
      provider: route.provider,
      model: route.model,
      upstreamBaseUrl: route.upstream,
      consent: req.consent,
      consentTimeoutMs: req.consentTimeoutMs,
      starter: opts.starter(),
      ...(opts.maxTurns ? { maxTurns: opts.maxTurns } : {}),
    });
    const s = started.session;
    const host: HostSession = {
      id: s.id,
      broker: s.broker,
      grants: s.grants,
      onDidUpdate: s.onDidUpdate,
      onDidAgentExit: s.onDidAgentExit,
      prompt: (task) => s.prompt(task),
      stop: (reason) => s.stop(reason),
      close: async () => {
        sessions.delete(host);
        await started.close();
      },
      describeRule: (id) => policy.rule(id)?.description,
      checkpointsEnabled: s.checkpointsEnabled,
      listCheckpoints: () => s.listCheckpoints(),
      restoreCheckpoint: (id, o) => s.restoreCheckpoint(id, o),
      onDidCheckpoint: s.onDidCheckpoint,
      onDidTerminalOutput: (listener) => s.onDidTerminalOutput((o) => listener({
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
    auditView: new SignedAuditView(auditDir, {
      verifierKey: () => audit.status.verifierKey,
      log: audit,
      allowUnsigned: opts.allowUnsignedAudit ?? false,
      ...(opts.auditRecheckMs !== undefined ? { recheckMs: opts.auditRecheckMs } : {}),
    }),
    shipping: () => core.shipping(),
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
      await core.close();
      await scripted.close();
    },
  };
}
