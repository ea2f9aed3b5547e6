// The preload's API object, built from the contract over a transport. Kept
// apart from preload.ts (which touches Electron) so the renderer can take its
// `window.tether` type from here: one definition, never written twice.

import { createApi, type ApiTransport } from '../common/ipc-contract.ts';

export function buildPreloadApi(transport: ApiTransport, onInvalidEvent?: (name: string, problem: string) => void) {
  return createApi(transport, onInvalidEvent ? { onInvalidEvent } : {});
}

/** What `window.tether` is in the renderer. */
export type PreloadApi = ReturnType<typeof buildPreloadApi>;
