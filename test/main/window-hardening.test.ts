// Window and session hardening over fakes of Electron's WebContents and
// Session (the Electron binary cannot run here); main.ts hands in the real ones
// and the type checker holds them to the same slices.
import { describe, expect, it, vi } from 'vitest';
import { hardenContents, hardenSession, mainWindowOptions, type ContentsLike, type SessionLike } from '../../src/main/window-hardening.ts';

function fakeContents() {
  const listeners = new Map<string, (...a: unknown[]) => void>();
  let openHandler: ((d: { url: string }) => { action: 'deny' }) | undefined;
  const contents = {
    on: (event: string, l: (...a: unknown[]) => void) => void listeners.set(event, l),
    setWindowOpenHandler: (h: (d: { url: string }) => { action: 'deny' }) => void (openHandler = h),
  } as unknown as ContentsLike;
  const fire = (event: string, ...args: unknown[]) => {
    const e = { preventDefault: vi.fn() };
    listeners.get(event)!(e, ...args);
    return e;
  };
  return { contents, fire, open: (url: string) => openHandler!({ url }) };
}

describe('main window options', () => {
  it('sandboxes and isolates the renderer with no Node access', () => {
    const o = mainWindowOptions('/app/preload.cjs', false);
    expect(o.webPreferences).toMatchObject({
      preload: '/app/preload.cjs', sandbox: true, contextIsolation: true, nodeIntegration: false, nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false, webSecurity: true, allowRunningInsecureContent: false, webviewTag: false, devTools: false,
    });
    expect(o.width).toBe(1280);
    expect(o.height).toBe(800);
  });
});

describe('web contents hardening', () => {
  it('prevents every navigation and sends http(s) links to the system browser only', async () => {
    const { contents, fire } = fakeContents();
    const openExternal = vi.fn(async () => true);
    hardenContents(contents, openExternal);
    expect(fire('will-navigate', 'https://example.com/docs').preventDefault).toHaveBeenCalled();
    expect(fire('will-navigate', 'tether://app/index.html').preventDefault).toHaveBeenCalled();
    expect(openExternal).toHaveBeenCalledTimes(1);
    expect(openExternal).toHaveBeenCalledWith('https://example.com/docs');
    expect(fire('will-redirect', 'https://evil.example/').preventDefault).toHaveBeenCalled();
    expect(fire('will-attach-webview').preventDefault).toHaveBeenCalled();
  });

  it('denies window.open and hands the URL to the checked opener', () => {
    const { contents, open } = fakeContents();
    const openExternal = vi.fn(async () => true);
    hardenContents(contents, openExternal);
    expect(open('https://example.com/')).toEqual({ action: 'deny' });
    expect(open('javascript:alert(1)')).toEqual({ action: 'deny' });
    expect(openExternal).toHaveBeenCalledWith('javascript:alert(1)'); // the opener refuses it: see external-links.test.ts
  });
});

describe('session hardening', () => {
  function fakeSession() {
    const s = {
      request: undefined as undefined | ((c: unknown, p: string, cb: (g: boolean) => void) => void),
      check: undefined as undefined | ((c: unknown, p: string) => boolean),
      device: undefined as undefined | ((d: unknown) => boolean),
      before: undefined as undefined | ((d: { url: string }, cb: (r: { cancel?: boolean }) => void) => void),
    };
    const session: SessionLike = {
      setPermissionRequestHandler: (h) => void (s.request = h),
      setPermissionCheckHandler: (h) => void (s.check = h),
      setDevicePermissionHandler: (h) => void (s.device = h),
      webRequest: { onBeforeRequest: (l) => void (s.before = l) },
    };
    return { s, session };
  }

  it.each(['media', 'notifications', 'clipboard-read', 'geolocation', 'openExternal', 'fileSystem'])('denies the %s permission', (permission) => {
    const { s, session } = fakeSession();
    hardenSession(session);
    const cb = vi.fn();
    s.request!({}, permission, cb);
    expect(cb).toHaveBeenCalledWith(false);
    expect(s.check!({}, permission)).toBe(false);
    expect(s.device!({})).toBe(false);
  });

  it.each([
    ['tether://app/assets/x.js', false],
    ['devtools://devtools/bundled/x.js', false],
    ['data:image/png;base64,AA', false],
    ['https://example.com/x.js', true],
    ['http://127.0.0.1:8080/', true],
    ['file:///etc/passwd', true],
    ['data:text/html,<script>', true],
    ['ws://127.0.0.1:1/', true],
  ])('request to %s is cancelled: %s', (url, cancel) => {
    const { s, session } = fakeSession();
    hardenSession(session);
    const cb = vi.fn();
    s.before!({ url }, cb);
    expect(cb).toHaveBeenCalledWith({ cancel });
  });
});
