// A real headless host behind the dev bridge: the same AppService, policy,
// audit log, egress gateway and agent process as the desktop app, with the
// agent forked over stdio instead of a utilityProcess and the folder picker
// answering with a fixed workspace. For tests and `npm run dev:web` only.

import { ForkAgentStarter } from '../agent-starter.ts';
import { startAppHost, type AppHost, type AppHostOptions } from '../app-host.ts';
import { startBridgeServer, type BridgeServer } from './bridge-server.ts';

export interface DevHostOptions extends Partial<Omit<AppHostOptions, 'chooseFolder' | 'dataDir'>> {
  /** The folder "Choose…" picks. */
  readonly workspace: string;
  readonly dataDir: string;
  /** The built renderer to serve (omit when vite serves it). */
  readonly staticRoot?: string;
  readonly port?: number;
  readonly token?: string;
  readonly allowedOrigins?: readonly string[];
}

export interface DevHost {
  readonly bridge: BridgeServer;
  readonly host: AppHost;
  close(): Promise<void>;
}

export async function startDevHost(opts: DevHostOptions): Promise<DevHost> {
  const { workspace, staticRoot, port, token, allowedOrigins, ...rest } = opts;
  const host = await startAppHost({
    starter: () => new ForkAgentStarter(),
    ...rest,
    chooseFolder: async () => workspace,
  });
  let bridge: BridgeServer;
  try {
    bridge = await startBridgeServer({
      service: host.service,
      ...(staticRoot ? { staticRoot } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(token ? { token } : {}),
      ...(allowedOrigins ? { allowedOrigins } : {}),
    });
  } catch (e) {
    await host.close();
    throw e;
  }
  return {
    bridge,
    host,
    async close() {
      await bridge.close();
      await host.close();
    },
  };
}
