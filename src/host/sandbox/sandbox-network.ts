// Network for sandboxed commands, through @anthropic-ai/sandbox-runtime's
// filtering proxy (HTTP CONNECT + SOCKS5 on one Unix socket, domain allow
// lists, a resolved-address check that keeps an allowed name from pointing at
// loopback, link-local or this host). A command's network namespace has no
// route out; the only way out is that socket, bound into the sandbox and
// relayed to localhost:3128/1080 by socat inside it.
//
// The proxy is started once per host on first use (~120 ms) and shared. Each
// command gets an unguessable id; its domains are registered under that id
// (`registerCommandNetworkLists`) for as long as it runs, and the proxy URL in
// its environment carries the id. Nothing is allowed at the config level, so
// a connection that presents no id, or an id that is not registered, is
// refused. An id is attribution, not a boundary between concurrent commands:
// a command that learned another live command's id could use its list.
//
// Each command's connections reach the proxy through a NetworkTap of its own
// (network-tap.ts): the sandbox gets the tap's sockets, not the proxy's, so
// every connection is reported with the command it came from, whatever id
// it presents.
//
// Uses the library's own generateProxyEnvVars (a module inside its dist, which
// the pinned version exports no other way) so the URL format always matches
// what its proxy expects.

import { randomBytes } from 'node:crypto';
import { SandboxManager } from '@anthropic-ai/sandbox-runtime';
import { encodeSandboxedCommand, generateProxyEnvVars } from '@anthropic-ai/sandbox-runtime/dist/sandbox/sandbox-utils.js';
import { NetworkTap, type TapReporter } from './network-tap.ts';

export const SANDBOX_HTTP_PORT = 3128;
export const SANDBOX_SOCKS_PORT = 1080;

export interface CommandNetwork {
  /** Ports to relay inside the sandbox to Unix sockets bound into it. */
  readonly relays: readonly { readonly path: string; readonly port: number }[];
  /** Proxy variables for the command's environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Unregisters the command's allow list and closes its tap, once every connection has been reported. */
  release(): Promise<void>;
}

export class SandboxNetwork {
  private started: Promise<void> | undefined;

  /** Starts the proxy if needed and registers `domains` for one command; `reporter` hears of each tunnel it opens and each connection once it ends. */
  async forCommand(domains: readonly string[], reporter: TapReporter): Promise<CommandNetwork> {
    this.started ??= SandboxManager.initialize({
      network: { allowedDomains: [], deniedDomains: [], strictAllowlist: false },
      filesystem: { denyRead: [], allowWrite: [], denyWrite: [] },
    }).catch((e: unknown) => {
      this.started = undefined;
      throw new Error(`the sandbox network proxy could not start: ${(e as Error).message}`);
    });
    await this.started;
    const http = SandboxManager.getLinuxHttpSocketPath();
    const socks = SandboxManager.getLinuxSocksSocketPath();
    if (!http || !socks) throw new Error('the sandbox network proxy is not running (no socket); restart Tether');
    const tap = await NetworkTap.open({ http, socks }, domains, reporter);
    const id = randomBytes(16).toString('base64url');
    const release = async () => {
      SandboxManager.unregisterCommandNetworkLists(id);
      await tap.close();
    };
    try {
      SandboxManager.registerCommandNetworkLists(id, { allowedDomains: [...domains] });
      const vars = generateProxyEnvVars(SANDBOX_HTTP_PORT, SANDBOX_SOCKS_PORT, undefined, SandboxManager.getProxyAuthToken(), true, encodeSandboxedCommand(id)) as string[];
      const env: Record<string, string> = {};
      for (const v of vars) {
        const eq = v.indexOf('=');
        const name = v.slice(0, eq);
        if (name === 'SANDBOX_RUNTIME') continue;
        env[name] = v.slice(eq + 1);
      }
      return { relays: [{ path: tap.httpPath, port: SANDBOX_HTTP_PORT }, { path: tap.socksPath, port: SANDBOX_SOCKS_PORT }], env, release };
    } catch (e) {
      await release();
      throw e;
    }
  }

  async dispose(): Promise<void> {
    if (!this.started) return;
    this.started = undefined;
    await SandboxManager.reset();
  }
}
