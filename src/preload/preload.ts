// The preload: exposes one API object, derived from the contract, as
// `window.tether`. The renderer never sees ipcRenderer, channel names or
// Electron objects; arguments are checked here before they leave and replies
// and events are checked when they arrive. Bundled into one CommonJS file
// (build/build-preload.ts), since a sandboxed preload cannot load modules.

import { contextBridge, ipcRenderer } from 'electron';
import { z } from 'zod';
import { EVENT_CHANNEL, EventMessageSchema, invokeChannel, type ApiTransport } from '../common/ipc-contract.ts';
import { buildPreloadApi } from './preload-api.ts';

// No eval here either: zod must not compile validators with new Function.
z.config({ jitless: true });

const transport: ApiTransport = {
  invoke: (name, args) => ipcRenderer.invoke(invokeChannel(name), args),
  subscribe(listener) {
    const onEvent = (_event: unknown, message: unknown) => {
      const m = EventMessageSchema.safeParse(message);
      if (m.success) listener(m.data.name, m.data.payload);
    };
    ipcRenderer.on(EVENT_CHANNEL, onEvent);
    return () => void ipcRenderer.removeListener(EVENT_CHANNEL, onEvent);
  },
};

contextBridge.exposeInMainWorld(
  'tether',
  buildPreloadApi(transport, (name, problem) => console.error(`tether: dropped a malformed ${name} event: ${problem}`)),
);
