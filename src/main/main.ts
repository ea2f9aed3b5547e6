// Electron entry point: hands Electron's modules to the lifecycle in
// desktop-app.ts and builds the host (src/host/app-host.ts) with the pieces
// only the desktop has: the agent in a utilityProcess and the native folder
// picker. Everything else is shared with the dev bridge and tested in Node.

import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { app, BrowserWindow, dialog, ipcMain, protocol, session, shell, utilityProcess, type IpcMainInvokeEvent, type WebFrameMain } from 'electron';
import { BUILTIN_AGENT_ENTRY } from '../host/agent-starter.ts';
import { startAppHost } from '../host/app-host.ts';
import { readShipTargets } from '../host/audit/ship-target.ts';
import { runDesktopApp, type ElectronModules } from './desktop-app.ts';
import type { FrameLike, InvokeEventLike } from './ipc-router.ts';
import { UtilityAgentStarter } from './utility-agent-starter.ts';

const here = import.meta.dirname; // dist/main, inside app.asar when packaged
const rendererDir = join(here, '..', '..', 'renderer', 'dist');
const preloadPath = join(here, '..', 'preload', 'preload.cjs');

/** Managed (MDM) policy: a folder only an administrator can write. */
function managedPolicyDir(): string {
  if (process.platform === 'darwin') return '/Library/Application Support/Tether/policy';
  if (process.platform === 'win32') return join(process.env['ProgramData'] ?? 'C:\\ProgramData', 'Tether', 'policy');
  return '/etc/tether/policy';
}

async function cedarFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.cedar')).sort().map((f) => join(dir, f));
  } catch {
    return [];
  }
}

// Method parameters are checked bivariantly, so hold the IPC event slices to Electron's types explicitly.
type Holds<T, U extends T> = U;
export type CheckedIpcTypes = [Holds<FrameLike, WebFrameMain>, Holds<InvokeEventLike, IpcMainInvokeEvent>];

const modules: ElectronModules = {
  app,
  createWindow: (options) => new BrowserWindow(options),
  ipcMain,
  protocol,
  defaultSession: () => session.defaultSession,
  shell,
};

await runDesktopApp(modules, {
  rendererDir,
  preloadPath,
  async createHost({ openExternal, mainWindow }) {
    const dataDir = process.env['TETHER_DATA_DIR'] ?? app.getPath('userData');
    const host = await startAppHost({
      dataDir,
      starter: () => new UtilityAgentStarter((path, args, options) => utilityProcess.fork(path, args, options), BUILTIN_AGENT_ENTRY),
      chooseFolder: async () => {
        const w = mainWindow();
        const options = { title: 'Choose the workspace folder', properties: ['openDirectory', 'createDirectory'] as ('openDirectory' | 'createDirectory')[] };
        const r = w ? await dialog.showOpenDialog(w as BrowserWindow, options) : await dialog.showOpenDialog(options);
        return r.canceled ? undefined : r.filePaths[0];
      },
      openExternal,
      policyFiles: await cedarFiles(join(dataDir, 'policy')),
      managedPolicyFiles: await cedarFiles(managedPolicyDir()),
      // Managed (MDM): where the audit log is shipped, one collector URL per line.
      ship: await readShipTargets(join(dirname(managedPolicyDir()), 'audit-ship')),
    });
    return { handlers: host.service, onDidEmit: host.service.onDidEmit, dispose: () => host.close() };
  },
});
