// The app lifecycle over fakes of Electron's app, BrowserWindow, ipcMain,
// protocol, session and shell: the Electron binary cannot run on our build
// machines. main.ts passes the real modules; the type checker holds them to the
// same slices (ElectronModules).
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/common/emitter.ts';
import { INVOKE, type ApiHandlers } from '../../src/common/ipc-contract.ts';
import { APP_ENTRY } from '../../src/main/app-protocol.ts';
import { runDesktopApp, type ElectronModules, type MainWindowLike } from '../../src/main/desktop-app.ts';

type BrowserWindowConstructorOptions = Parameters<ElectronModules['createWindow']>[0];

let rendererDir: string;
beforeAll(async () => {
  rendererDir = await mkdtemp(join(tmpdir(), 'tether-app-'));
  await writeFile(join(rendererDir, 'index.html'), '<!doctype html>');
});
afterAll(() => rm(rendererDir, { recursive: true, force: true }));

function fakeElectron(opts: { lock?: boolean } = {}) {
  const calls: string[] = [];
  const app = Object.assign(new EventEmitter(), {
    isPackaged: true,
    enableSandbox: vi.fn(() => void calls.push('enableSandbox')),
    requestSingleInstanceLock: vi.fn(() => (calls.push('lock'), opts.lock ?? true)),
    quit: vi.fn(() => void calls.push('quit')),
    exit: vi.fn(() => void calls.push('exit')),
    whenReady: vi.fn(async () => void calls.push('ready')),
  });
  const windows: (MainWindowLike & EventEmitter & { options: BrowserWindowConstructorOptions; loaded?: string })[] = [];
  const createWindow = (options: BrowserWindowConstructorOptions) => {
    calls.push('window');
    const w = Object.assign(new EventEmitter(), {
      options,
      destroyed: false,
      isDestroyed() { return this.destroyed; },
      webContents: { id: 1, send: vi.fn() },
      loadURL: vi.fn(async function (this: { loaded?: string }, url: string) { w.loaded = url; }),
      show: vi.fn(), focus: vi.fn(), restore: vi.fn(), isMinimized: () => false,
    }) as unknown as MainWindowLike & EventEmitter & { options: BrowserWindowConstructorOptions; loaded?: string };
    windows.push(w);
    return w;
  };
  const ipcHandlers = new Map<string, unknown>();
  const session = {
    setPermissionRequestHandler: vi.fn(), setPermissionCheckHandler: vi.fn(), setDevicePermissionHandler: vi.fn(),
    webRequest: { onBeforeRequest: vi.fn() },
  };
  const protocol = {
    registerSchemesAsPrivileged: vi.fn(() => void calls.push('schemes')),
    handle: vi.fn(() => void calls.push('protocol')),
  };
  const modules: ElectronModules = {
    app: app as unknown as ElectronModules['app'],
    createWindow,
    ipcMain: { handle: (c, l) => void ipcHandlers.set(c, l), removeHandler: (c) => void ipcHandlers.delete(c) },
    protocol,
    defaultSession: () => session,
    shell: { openExternal: vi.fn(async () => {}) },
  };
  return { modules, app, calls, windows, ipcHandlers, session, protocol };
}

function host() {
  const emitter = new Emitter<{ name: string; payload: unknown }>();
  const handlers = Object.fromEntries(Object.keys(INVOKE).map((k) => [k, async () => ({})])) as unknown as ApiHandlers;
  return { handlers, onDidEmit: emitter.event, emitter, dispose: vi.fn(async () => {}) };
}

describe('desktop app lifecycle', () => {
  it('enables the sandbox and takes the single-instance lock before anything else, then serves tether://app', async () => {
    const f = fakeElectron();
    const h = host();
    await runDesktopApp(f.modules, { rendererDir, preloadPath: '/p.cjs', createHost: async () => h });
    expect(f.calls.slice(0, 4)).toEqual(['enableSandbox', 'lock', 'schemes', 'ready']);
    expect(f.protocol.registerSchemesAsPrivileged).toHaveBeenCalledWith([expect.objectContaining({ scheme: 'tether', privileges: expect.objectContaining({ standard: true, secure: true }) })]);
    expect(f.protocol.handle).toHaveBeenCalledWith('tether', expect.any(Function));
    expect(f.session.setPermissionRequestHandler).toHaveBeenCalled();
    expect(f.windows).toHaveLength(1);
    expect(f.windows[0]!.loaded).toBe(APP_ENTRY);
    expect(f.windows[0]!.options.webPreferences).toMatchObject({ sandbox: true, contextIsolation: true, nodeIntegration: false, devTools: false });
    expect(f.ipcHandlers.size).toBe(Object.keys(INVOKE).length);
  });

  it('a second instance quits at once and focuses nothing of its own', async () => {
    const f = fakeElectron({ lock: false });
    const createHost = vi.fn();
    const r = await runDesktopApp(f.modules, { rendererDir, preloadPath: '/p.cjs', createHost });
    expect(r.quitting).toBe(true);
    expect(f.calls).toEqual(['enableSandbox', 'lock', 'quit']);
    expect(createHost).not.toHaveBeenCalled();
  });

  it('focuses the existing window when a second instance starts', async () => {
    const f = fakeElectron();
    await runDesktopApp(f.modules, { rendererDir, preloadPath: '/p.cjs', createHost: async () => host() });
    f.app.emit('second-instance');
    expect(f.windows[0]!.focus).toHaveBeenCalled();
    expect(f.windows).toHaveLength(1);
  });

  it('hardens every web contents the app creates', async () => {
    const f = fakeElectron();
    await runDesktopApp(f.modules, { rendererDir, preloadPath: '/p.cjs', createHost: async () => host() });
    const contents = Object.assign(new EventEmitter(), { setWindowOpenHandler: vi.fn() });
    f.app.emit('web-contents-created', {}, contents);
    expect(contents.setWindowOpenHandler).toHaveBeenCalled();
    const e = { preventDefault: vi.fn() };
    contents.emit('will-navigate', e, 'https://evil.example/');
    expect(e.preventDefault).toHaveBeenCalled();
  });

  it('forwards host events to the window', async () => {
    const f = fakeElectron();
    const h = host();
    await runDesktopApp(f.modules, { rendererDir, preloadPath: '/p.cjs', createHost: async () => h });
    h.emitter.fire({ name: 'sessionStatus', payload: { state: 'idle' } });
    expect(f.windows[0]!.webContents.send).toHaveBeenCalledWith('tether:event', { name: 'sessionStatus', payload: { state: 'idle' } });
  });

  it('disposes the host (denying what is pending) before quitting', async () => {
    const f = fakeElectron();
    const h = host();
    await runDesktopApp(f.modules, { rendererDir, preloadPath: '/p.cjs', createHost: async () => h });
    const e = { preventDefault: vi.fn() };
    f.app.emit('before-quit', e);
    expect(e.preventDefault).toHaveBeenCalled();
    await vi.waitFor(() => expect(f.app.quit).toHaveBeenCalled());
    expect(h.dispose).toHaveBeenCalledTimes(1);
    const again = { preventDefault: vi.fn() };
    f.app.emit('before-quit', again);
    expect(again.preventDefault).not.toHaveBeenCalled();
  });

  it('exits with an error when the host cannot start, without opening a window', async () => {
    const f = fakeElectron();
    const log = vi.fn();
    await runDesktopApp(f.modules, { rendererDir, preloadPath: '/p.cjs', log, createHost: async () => Promise.reject(new Error('policy does not parse')) });
    expect(f.app.exit).toHaveBeenCalledWith(1);
    expect(f.windows).toHaveLength(0);
    expect(log).toHaveBeenCalledWith(expect.stringContaining('policy does not parse'));
  });

  it('quits when the window is closed', async () => {
    const f = fakeElectron();
    await runDesktopApp(f.modules, { rendererDir, preloadPath: '/p.cjs', createHost: async () => host() });
    f.app.emit('window-all-closed');
    expect(f.app.quit).toHaveBeenCalled();
  });
});
