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
import { JsonlAuditView } from './audit-view.ts';
import { JsonlAuditWriter } from './audit/jsonl-audit-writer.ts';
import { EgressGateway, envApiKey, type ApiKeySource, type ModelProvider } from './egress/gateway.ts';
import { CedarPolicyEngine } from './policy/cedar-policy-engine.ts';
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
}

export interface AppHost {
  readonly service: AppService;
  readonly auditDir: string;
  /** The scripted model server, once the 'scripted' provider was used. */
  scriptedModel(): ScriptedModelServer | undefined;
  /** Sessions open now (tests reach the broker through this). */
  sessions(): readonly HostSession[];
  close(): Promise<void>;
}

export async function startAppHost(opts: AppHostOptions): Promise<AppHost> {
  const auditDir = join(opts.dataDir, 'audit');
  const policy = await CedarPolicyEngine.load({
    userFiles: [...(opts.policyFiles ?? [])],
    managedFiles: [...(opts.managedPolicyFiles ?? [])],
    protectedPaths: [auditDir, opts.dataDir],
  });
  const audit = await JsonlAuditWriter.open(auditDir);
  const getApiKey = opts.getApiKey ?? envApiKey;
  const gateway = await EgressGateway.start({ getApiKey });
  let scripted: Promise<ScriptedModelServer> | undefined;
  let scriptedServer: ScriptedModelServer | undefined;
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
    let route: { provider: ModelProvider; model: string; upstream: string; requireApiKey: boolean };
    if (req.provider === 'scripted') {
      scripted ??= startScriptedModel({ script: opts.demoScript ?? createDemoScript() }).then((s) => (scriptedServer = s));
      route = { provider: 'anthropic', model: req.model ?? DEMO_MODEL, upstream: (await scripted).url, requireApiKey: false };
    } else {
      route = { provider: req.provider, model: req.model ?? DEFAULT_MODELS[req.provider], upstream: opts.baseUrls?.[req.provider] ?? DEFAULT_BASE_URLS[req.provider], requireApiKey: true };
    }
    const gw = gateway.openSession({ sessionId: gwId, provider: route.provider, upstreamBaseUrl: route.upstream, requireApiKey: route.requireApiKey });
    let session: TetherSession;
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
      });
    } catch (e) {
      gateway.closeSession(gwId);
      throw e;
    }
    const host: HostSession = {
      id: session.id,
      broker: session.broker,
      grants: session.grants,
      onDidUpdate: session.onDidUpdate,
      onDidAgentExit: session.onDidAgentExit,
      prompt: (task) => session.prompt(task),
      stop: (reason) => session.stop(reason),
      close: async () => {
        sessions.delete(host);
        gateway.closeSession(gwId);
        await session.close();
      },
      describeRule: (id) => policy.rule(id)?.description,
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
    auditView: new JsonlAuditView(auditDir),
    settings: new JsonFileSettings(join(opts.dataDir, 'settings.json')),
    ...(opts.openExternal ? { openExternal: opts.openExternal } : {}),
    ...(opts.consentTimeoutMs !== undefined ? { consentTimeoutMs: opts.consentTimeoutMs } : {}),
    ...(opts.restart ? { restart: opts.restart } : {}),
    home: homedir(),
  });

  return {
    service,
    auditDir,
    scriptedModel: () => scriptedServer,
    sessions: () => [...sessions],
    async close() {
      await service.dispose();
      for (const s of [...sessions]) await s.close().catch(() => undefined);
      await gateway.close();
      if (scripted) await (await scripted).close();
      await audit.close();
    },
  };
}
