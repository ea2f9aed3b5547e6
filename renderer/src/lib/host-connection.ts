// Picks how the renderer reaches the host. Inside the desktop app the preload
// has exposed `window.tether`. In a browser, only a page served by the dev
// server over http on loopback with the bridge's address and token in its
// <meta> tags may use the dev bridge; anything else gets no host at all.

import { z } from 'zod';
import { BRIDGE_META_TOKEN, BRIDGE_META_URL, createApi, type TetherApi } from '../../../src/common/ipc-contract.ts';
import { bridgeTransport } from './bridge-transport.ts';

export type HostConnection =
  | { readonly ok: true; readonly api: TetherApi; readonly via: 'electron' | 'bridge'; onLost(listener: (reason: string) => void): void }
  | { readonly ok: false; readonly error: string };

function meta(name: string): string | undefined {
  return document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content || undefined;
}

export function connectHost(): HostConnection {
  // The page's CSP forbids eval; zod must not probe for it.
  z.config({ jitless: true });
  if (window.tether) return { ok: true, api: window.tether, via: 'electron', onLost: () => undefined };
  const url = meta(BRIDGE_META_URL);
  const token = meta(BRIDGE_META_TOKEN);
  const loopback = location.hostname === '127.0.0.1' || location.hostname === 'localhost';
  if (url && token && location.protocol === 'http:' && loopback) {
    let wsUrl: URL;
    try {
      wsUrl = new URL(url);
    } catch {
      return { ok: false, error: 'the dev server wrote an invalid bridge address' };
    }
    if (wsUrl.protocol !== 'ws:' || (wsUrl.hostname !== '127.0.0.1' && wsUrl.hostname !== 'localhost')) {
      return { ok: false, error: 'the dev bridge must be on loopback' };
    }
    const transport = bridgeTransport(wsUrl.href, token);
    return {
      ok: true,
      api: createApi(transport, { onInvalidEvent: (name, problem) => console.error(`tether: dropped a malformed ${name} event: ${problem}`) }),
      via: 'bridge',
      onLost: (l) => transport.onClose(l),
    };
  }
  return { ok: false, error: 'This page must run inside the Tether app, or be opened from the URL that `npm run dev:web` prints.' };
}
