// The packaged-app checks that need a real Electron: the renderer is
// sandboxed and isolated, cannot navigate or open windows, runs under the CSP,
// and reaches the host only through window.tether. Runs wherever an Electron
// binary is installed (`npm i electron` without ELECTRON_SKIP_BINARY_DOWNLOAD);
// elsewhere every test is skipped with the reason printed.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { _electron, type ElectronApplication, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreloadApi } from '../../src/preload/preload-api.ts';

const root = join(import.meta.dirname, '..', '..');
type W = { tether: PreloadApi };

// Looks for the binary the way electron/index.js does, without running it:
// requiring 'electron' from Node would try to download a missing binary.
function electronBinary(): string | undefined {
  const override = process.env['TETHER_ELECTRON_BINARY'];
  if (override) return existsSync(override) ? override : undefined;
  const pkg = dirname(createRequire(join(root, 'package.json')).resolve('electron/package.json'));
  const pathFile = join(pkg, 'path.txt');
  if (!existsSync(pathFile)) return undefined;
  const binary = join(pkg, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(binary) ? binary : undefined;
}

const binary = electronBinary();
if (!binary) {
  console.warn('test:electron SKIPPED — no Electron binary is installed here (ELECTRON_SKIP_BINARY_DOWNLOAD=1 or no network). ' +
    'Install one with `npm install electron` on a machine that can download it (or point TETHER_ELECTRON_BINARY at one), then run `npm run test:electron`.');
}

describe.skipIf(!binary)('desktop app in Electron', () => {
  let app: ElectronApplication;
  let page: Page;
  let data: string;

  beforeAll(async () => {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
    execFileSync('npm', ['run', 'build:renderer'], { cwd: root, stdio: 'inherit' });
    data = await mkdtemp(join(tmpdir(), 'tether-e2e-'));
    app = await _electron.launch({ executablePath: binary!, args: [root], cwd: root, env: { ...process.env, TETHER_DATA_DIR: data } as Record<string, string> });
    page = await app.firstWindow();
    await page.waitForLoadState('domcontentloaded');
  });
  afterAll(async () => {
    await app?.close();
    if (data) await rm(data, { recursive: true, force: true });
  });

  it('loads the renderer from tether://app, not file://', async () => {
    expect(page.url()).toBe('tether://app/index.html');
  });

  it('gives the page no Node, no require, no ipcRenderer — only window.tether', async () => {
    const globals = await page.evaluate(() => ({
      require: typeof (window as unknown as { require?: unknown }).require,
      process: typeof (window as unknown as { process?: unknown }).process,
      ipc: typeof (window as unknown as { ipcRenderer?: unknown }).ipcRenderer,
      tether: Object.keys((window as unknown as Partial<W>).tether ?? {}).sort(),
    }));
    expect(globals.require).toBe('undefined');
    expect(globals.process).toBe('undefined');
    expect(globals.ipc).toBe('undefined');
    expect(globals.tether).toContain('getSnapshot');
    expect(globals.tether).toContain('on');
  });

  it('runs the renderer sandboxed with context isolation', async () => {
    const prefs = await app.evaluate(({ BrowserWindow }) => {
      const w = BrowserWindow.getAllWindows()[0]!;
      return (w.webContents as unknown as { getLastWebPreferences(): Record<string, unknown> }).getLastWebPreferences();
    });
    expect(prefs).toMatchObject({ sandbox: true, contextIsolation: true, nodeIntegration: false, webviewTag: false });
  });

  it('answers a contract call through the preload and refuses malformed arguments', async () => {
    const snap = await page.evaluate(() => (window as unknown as W).tether.getSnapshot());
    expect(snap.session.state).toBeDefined();
    const err = await page.evaluate(() => (window as unknown as W).tether.answerConsent({ id: 'x', answer: 'always' as never }).then(() => 'resolved', (e: Error) => e.message));
    expect(err).toMatch(/invalid arguments/);
  });

  it('stays on the app when the page tries to navigate or open a window', async () => {
    await page.evaluate(() => {
      location.href = 'https://example.com/';
    }).catch(() => undefined);
    await page.waitForTimeout(500);
    expect(page.url()).toBe('tether://app/index.html');
    expect(await page.evaluate(() => window.open('https://example.com/') === null)).toBe(true);
    expect(app.windows()).toHaveLength(1);
  });

  it('blocks inline script and eval under the CSP', async () => {
    const result = await page.evaluate(() => {
      let evalOk = true;
      try {
        new Function('return 1')();
      } catch {
        evalOk = false;
      }
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.body.append(s);
      return { evalOk, inline: (window as unknown as { __inline?: number }).__inline };
    });
    expect(result).toEqual({ evalOk: false, inline: undefined });
  });

  it('denies permission requests', async () => {
    const state = await page.evaluate(() => navigator.permissions.query({ name: 'notifications' as PermissionName }).then((p) => p.state));
    expect(state).not.toBe('granted');
  });
});
