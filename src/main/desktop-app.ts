// The desktop app's lifecycle: one instance, one window, the renderer served
// from tether://app, every IPC checked, the host disposed on quit. Electron's
// modules are passed in (main.ts hands over the real ones; unit tests hand in
// fakes, because the Electron binary cannot run on our build machines).

import type { BrowserWindowConstructorOptions, CustomScheme } from 'electron';
import type { ApiHandlers } from '../common/ipc-contract.ts';
import type { Event } from '../common/emitter.ts';
import { APP_ENTRY, APP_SCHEME, createAppProtocolHandler } from './app-protocol.ts';
import { openExternalSafely, type ShellLike } from './external-links.ts';
import { forwardEvents, registerIpc, type IpcMainLike, type WindowLike } from './ipc-router.ts';
import { hardenContents, hardenSession, mainWindowOptions, type ContentsLike, type SessionLike } from './window-hardening.ts';

export interface AppLike {
  enableSandbox(): void;
  requestSingleInstanceLock(): boolean;
  quit(): void;
  exit(code?: number): void;
  whenReady(): Promise<unknown>;
  on(event: 'second-instance', listener: () => void): unknown;
  on(event: 'window-all-closed', listener: () => void): unknown;
  on(event: 'web-contents-created', listener: (event: unknown, contents: ContentsLike) => void): unknown;
  on(event: 'before-quit', listener: (event: { preventDefault(): void }) => void): unknown;
  on(event: 'activate', listener: () => void): unknown;
  readonly isPackaged: boolean;
}

export interface MainWindowLike extends WindowLike {
  loadURL(url: string): Promise<void>;
  once(event: 'ready-to-show', listener: () => void): unknown;
  on(event: 'closed', listener: () => void): unknown;
  show(): void;
  focus(): void;
  restore(): void;
  isMinimized(): boolean;
}

export interface ProtocolLike {
  registerSchemesAsPrivileged(schemes: CustomScheme[]): void;
  handle(scheme: string, handler: (request: Request) => Promise<Response>): void;
}

export interface ElectronModules {
  readonly app: AppLike;
  readonly createWindow: (options: BrowserWindowConstructorOptions) => MainWindowLike;
  readonly ipcMain: IpcMainLike;
  readonly protocol: ProtocolLike;
  readonly defaultSession: () => SessionLike;
  readonly shell: ShellLike;
}

export interface DesktopHost {
  readonly handlers: ApiHandlers;
  readonly onDidEmit: Event<{ name: string; payload: unknown }>;
  dispose(): Promise<void>;
}

export interface DesktopAppOptions {
  readonly rendererDir: string;
  readonly preloadPath: string;
  /** Builds the host once Electron is ready (AppService over the real session). */
  readonly createHost: (ctx: { openExternal: (url: string) => Promise<boolean>; mainWindow: () => MainWindowLike | undefined }) => Promise<DesktopHost>;
  readonly log?: (msg: string) => void;
}

export const APP_SCHEMES: CustomScheme[] = [
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: false, stream: false } },
];

/** Starts the app. Resolves once the window is loading (or at once for a second instance, which quits). */
export async function runDesktopApp(e: ElectronModules, opts: DesktopAppOptions): Promise<{ quitting: boolean }> {
  const log = opts.log ?? ((m: string) => console.error(m));
  // Before anything else: every renderer sandboxed, even one created by mistake.
  e.app.enableSandbox();
  if (!e.app.requestSingleInstanceLock()) {
    e.app.quit();
    return { quitting: true };
  }
  e.protocol.registerSchemesAsPrivileged(APP_SCHEMES);

  let window: MainWindowLike | undefined;
  let host: DesktopHost | undefined;
  const openExternal = (url: string) => openExternalSafely(e.shell, url);

  e.app.on('web-contents-created', (_event, contents) => hardenContents(contents, openExternal));
  e.app.on('second-instance', () => {
    if (!window || window.isDestroyed()) return;
    if (window.isMinimized()) window.restore();
    window.focus();
  });
  e.app.on('window-all-closed', () => e.app.quit());

  let disposed = false;
  e.app.on('before-quit', (event) => {
    if (disposed || !host) return;
    // Deny what is pending and close the session before the process goes.
    event.preventDefault();
    disposed = true;
    host.dispose().catch((err: Error) => log(`tether: shutdown: ${err.message}`)).finally(() => e.app.quit());
  });

  await e.app.whenReady();
  hardenSession(e.defaultSession());
  e.protocol.handle(APP_SCHEME, createAppProtocolHandler(opts.rendererDir));

  const createMainWindow = () => {
    const w = e.createWindow(mainWindowOptions(opts.preloadPath, !e.app.isPackaged));
    w.once('ready-to-show', () => w.show());
    w.on('closed', () => {
      if (window === w) window = undefined;
    });
    window = w;
    void w.loadURL(APP_ENTRY).catch((err: Error) => log(`tether: the window could not load ${APP_ENTRY}: ${err.message}`));
    return w;
  };

  try {
    host = await opts.createHost({ openExternal, mainWindow: () => window });
  } catch (err) {
    log(`tether: the host could not start: ${(err as Error).message}`);
    e.app.exit(1);
    return { quitting: true };
  }
  registerIpc(e.ipcMain, host.handlers, () => window, log);
  forwardEvents(host.onDidEmit, () => window);
  createMainWindow();
  e.app.on('activate', () => {
    if (!window) createMainWindow();
  });
  return { quitting: false };
}
