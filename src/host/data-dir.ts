// Where Tether keeps its own state (audit log, checkpoints, keys' metadata):
// $TETHER_DATA_DIR, else the platform's usual place for application data.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env['TETHER_DATA_DIR']) return env['TETHER_DATA_DIR'];
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'Tether');
  if (platform === 'win32') return join(env['APPDATA'] ?? join(homedir(), 'AppData', 'Roaming'), 'Tether');
  return join(env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'tether');
}
