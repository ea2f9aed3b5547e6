// ACP `terminal/*` client handlers backed by a TerminalService, for
// createAcpHost's `extend` hook:
//
//   createAcpHost({ ..., extend: terminalHandlers(service) })
//
// Params are validated twice on purpose: `helpers.parse` checks the session is
// one this host serves; the service checks the shape again (it is also used
// without the ACP host). Errors become the JSON-RPC errors the agent sees
// (denials: -32001 with the deciding policies).

import type { ClientApp } from '@agentclientprotocol/sdk';
import { METHODS, TerminalCreateParams, TerminalIdParams } from '../../common/protocol.ts';
import type { AcpHostHelpers } from '../acp-host.ts';
import type { TerminalService } from './terminal-service.ts';

export function terminalHandlers(service: TerminalService): (app: ClientApp, helpers: AcpHostHelpers) => void {
  return (app, helpers) => {
    const handle = <R>(fn: (params: unknown, signal: AbortSignal) => R | Promise<R>) =>
      async ({ params, signal }: { params: unknown; signal: AbortSignal }): Promise<R> => {
        try {
          return await fn(params, signal);
        } catch (e) {
          throw helpers.toRequestError(e);
        }
      };
    app.onRequest(METHODS.terminalCreate, handle((raw, signal) => {
      helpers.parse(TerminalCreateParams, raw);
      return service.create(raw, { signal });
    }));
    app.onRequest(METHODS.terminalOutput, handle((raw) => {
      helpers.parse(TerminalIdParams, raw);
      return service.output(raw);
    }));
    app.onRequest(METHODS.terminalWaitForExit, handle((raw) => {
      helpers.parse(TerminalIdParams, raw);
      return service.waitForExit(raw);
    }));
    app.onRequest(METHODS.terminalKill, handle((raw) => {
      helpers.parse(TerminalIdParams, raw);
      return service.kill(raw);
    }));
    app.onRequest(METHODS.terminalRelease, handle((raw) => {
      helpers.parse(TerminalIdParams, raw);
      return service.release(raw);
    }));
  };
}
