// The Electron end of the renderer contract. Every invoke is checked before
// the host sees it: it must come from the main window's top frame on the
// app's own origin (not an iframe, not a page that navigated elsewhere), and
// its arguments must match the contract; then the result is checked on the
// way out (handleInvoke). Events go only to the main window.

import { EVENT_CHANNEL, INVOKE, handleInvoke, invokeChannel, type ApiHandlers, type Envelope, type InvokeName } from '../common/ipc-contract.ts';
import { isAppUrl } from './app-protocol.ts';

export interface FrameLike {
  readonly url: string;
  readonly parent: FrameLike | null;
}

export interface InvokeEventLike {
  readonly sender: { readonly id: number };
  readonly senderFrame: FrameLike | null;
}

export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => Promise<unknown>): void;
  removeHandler(channel: string): void;
}

export interface WindowLike {
  isDestroyed(): boolean;
  readonly webContents: { readonly id: number; send(channel: string, ...args: unknown[]): void };
}

/** Why an IPC message is refused, or undefined when it may proceed. */
export function checkSender(event: InvokeEventLike, window: WindowLike | undefined): string | undefined {
  if (!window || window.isDestroyed()) return 'no main window';
  if (event.sender.id !== window.webContents.id) return 'the sender is not the main window';
  const frame = event.senderFrame;
  if (!frame) return 'the sending frame is gone';
  if (frame.parent !== null) return 'the sender is a subframe, not the top frame';
  if (!isAppUrl(frame.url)) return `the sending frame is not on the app origin (${frame.url.slice(0, 100)})`;
  return undefined;
}

export function registerIpc(ipc: IpcMainLike, handlers: ApiHandlers, mainWindow: () => WindowLike | undefined, log: (msg: string) => void = console.error): () => void {
  const names = Object.keys(INVOKE) as InvokeName[];
  for (const name of names) {
    ipc.handle(invokeChannel(name), async (event, ...args): Promise<Envelope> => {
      const refused = checkSender(event, mainWindow());
      if (refused) {
        log(`tether: refused IPC ${name}: ${refused}`);
        return { ok: false, error: { code: 'refused', message: `refused: ${refused}` } };
      }
      if (args.length > 1) return { ok: false, error: { code: 'invalid-args', message: `${name}: expected one argument, got ${args.length}` } };
      return handleInvoke(handlers, name, args[0]);
    });
  }
  return () => {
    for (const name of names) ipc.removeHandler(invokeChannel(name));
  };
}

/** Sends host events to the main window's renderer. */
export function forwardEvents(subscribe: (l: (e: { name: string; payload: unknown }) => void) => () => void, mainWindow: () => WindowLike | undefined): () => void {
  return subscribe((e) => {
    const w = mainWindow();
    if (w && !w.isDestroyed()) w.webContents.send(EVENT_CHANNEL, e);
  });
}
