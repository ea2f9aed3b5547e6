// `npm run dev:web [-- --workspace DIR] [--data-dir DIR]`: the renderer in
// your browser with hot reload (vite), talking to a real headless host through
// the dev bridge. Both listen on 127.0.0.1 only; open the printed URL (it
// carries the token). Without --workspace, a demo workspace is created.

import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createServer, type Plugin } from 'vite';
import { tokenMatches, injectBridgeMeta } from './bridge-server.ts';
import { NoteSigningKey } from '../keychain/note-key.ts';
import { StaticKeyStore } from '../keychain/static-key-store.ts';
import { startDevHost } from './dev-host.ts';

const root = join(import.meta.dirname, '..', '..', '..');

async function demoWorkspace(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-dev-workspace-'));
  await writeFile(join(dir, 'README.md'), '# Demo project\n\nA workspace for trying Tether.\n');
  await writeFile(join(dir, '.env'), 'API_TOKEN=not-a-real-secret\n');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'index.ts'), 'export const answer = 42;\n');
  return dir;
}

const { values } = parseArgs({ options: { workspace: { type: 'string' }, 'data-dir': { type: 'string' }, port: { type: 'string', default: '5173' } } });
const workspace = values.workspace ? resolve(values.workspace) : await demoWorkspace();
const dataDir = values['data-dir'] ? resolve(values['data-dir']) : await mkdtemp(join(tmpdir(), 'tether-dev-data-'));
const vitePort = Number(values.port);
const viteOrigin = `http://127.0.0.1:${vitePort}`;

// A throwaway signing key for this dev run, kept in memory: dev:web never touches your keychain.
const keyStore = new StaticKeyStore(NoteSigningKey.generate('tether-dev-web'), 'a key made for this dev:web run (not the OS keychain)');
const dev = await startDevHost({ workspace, dataDir, keyStore, allowedOrigins: [viteOrigin, `http://localhost:${vitePort}`] });
const { token, wsUrl } = dev.bridge;

/** Serves index.html only with the token, and writes the bridge address into it. */
function bridgePlugin(): Plugin {
  return {
    name: 'tether-dev-bridge',
    apply: 'serve',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = new URL(req.url ?? '/', viteOrigin);
        if ((url.pathname === '/' || url.pathname === '/index.html') && !tokenMatches(token, url.searchParams.get('token'))) {
          res.statusCode = 401;
          res.end('Open the URL printed by `npm run dev:web` (it carries the token).\n');
          return;
        }
        next();
      });
    },
    transformIndexHtml: (html) => injectBridgeMeta(html, wsUrl, token),
  };
}

const vite = await createServer({
  configFile: join(root, 'renderer', 'vite.config.ts'),
  plugins: [bridgePlugin()],
  server: { host: '127.0.0.1', port: vitePort, strictPort: true },
});
await vite.listen();

console.log(`tether dev:web — workspace ${workspace}, data ${dataDir}`);
console.log(`open ${viteOrigin}/?token=${token}`);

const stop = async () => {
  await vite.close();
  await dev.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
