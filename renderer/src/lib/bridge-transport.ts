// The dev bridge transport: the same API as the preload's, over a WebSocket
// to a headless host on loopback. Only used when the page was served by the
// dev server with its token (see host-connection.ts).

import {
  BRIDGE_SUBPROTOCOL, BRIDGE_TOKEN_PREFIX, BridgeServerMessageSchema, type ApiTransport, type InvokeName,
} from '../../../src/common/ipc-contract.ts';

export interface BridgeTransport extends ApiTransport {
  /** Called once when the connection is lost (host stopped, token refused). */
  onClose(listener: (reason: string) => void): void;
}

export function bridgeTransport(url: string, token: string): BridgeTransport {
  const ws = new WebSocket(url, [BRIDGE_SUBPROTOCOL, `${BRIDGE_TOKEN_PREFIX}${token}`]);
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('close', () => reject(new Error('the dev bridge refused the connection')), { once: true });
  });
  opened.catch(() => undefined);
  let nextId = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Set<(name: string, payload: unknown) => void>();
  const closeListeners = new Set<(reason: string) => void>();

  ws.addEventListener('message', (e) => {
    let msg;
    try {
      msg = BridgeServerMessageSchema.safeParse(JSON.parse(String(e.data)));
    } catch {
      return;
    }
    if (!msg.success) return;
    if (msg.data.t === 'result') {
      const p = pending.get(msg.data.id);
      pending.delete(msg.data.id);
      p?.resolve(msg.data.envelope);
    } else {
      for (const l of [...listeners]) l(msg.data.name, msg.data.payload);
    }
  });
  ws.addEventListener('close', (e) => {
    const reason = e.reason || `the connection to the host closed (code ${e.code})`;
    for (const p of pending.values()) p.reject(new Error(reason));
    pending.clear();
    for (const l of closeListeners) l(reason);
  });

  return {
    async invoke(name: InvokeName, args: unknown) {
      await opened;
      if (ws.readyState !== WebSocket.OPEN) throw new Error('not connected to the host');
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ t: 'invoke', id, name, args }));
      });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onClose(listener) {
      closeListeners.add(listener);
    },
  };
}
