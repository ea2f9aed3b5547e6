// A real, private Secret Service for tests: its own dbus-daemon (session bus on
// a socket in a temp dir) and gnome-keyring-daemon with a fresh login keyring,
// unlocked with a test password. Nothing touches the developer's own keyring.
//
// libdbus reads DBUS_SESSION_BUS_ADDRESS once per process, at the first
// keychain call: set `process.env.DBUS_SESSION_BUS_ADDRESS = svc.address`
// before any keychain use in the test file (vitest runs each file in its own
// process), or pass `svc.env` to a child process.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SecretService {
  readonly address: string;
  /** Environment for child processes that should use this keyring. */
  readonly env: NodeJS.ProcessEnv;
  /** Locks the login collection (as a screen lock would); nothing can unlock it without a prompt. */
  lock(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSecretService(password = 'test-password'): Promise<SecretService> {
  const root = await mkdtemp(join(tmpdir(), 'tether-secret-service-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: join(root, 'home'), XDG_DATA_HOME: join(root, 'data'), XDG_RUNTIME_DIR: join(root, 'run'), XDG_CONFIG_HOME: join(root, 'config') };
  for (const d of ['home', 'data', 'run', 'config']) await mkdir(join(root, d), { mode: 0o700 });
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const c of children.reverse()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await rm(root, { recursive: true, force: true });
  };
  try {
    const bus = spawn('dbus-daemon', ['--session', '--nofork', '--print-address=1', `--address=unix:path=${join(root, 'bus')}`], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(bus);
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('dbus-daemon did not print its address')), 10_000);
      bus.once('error', reject);
      createInterface({ input: bus.stdout! }).once('line', (line) => {
        clearTimeout(timer);
        resolve(line.trim());
      });
    });
    env.DBUS_SESSION_BUS_ADDRESS = address;
    const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], { env, stdio: ['pipe', 'ignore', 'ignore'] });
    children.push(keyring);
    keyring.stdin!.end(password);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { stdout } = await run('dbus-send', ['--session', '--dest=org.freedesktop.DBus', '--print-reply', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.secrets'], { env }).catch(() => ({ stdout: '' }));
      if (stdout.includes('boolean true')) break;
      if (Date.now() > deadline) throw new Error('gnome-keyring-daemon did not take org.freedesktop.secrets on the private bus');
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      address,
      env,
      lock: async () => {
        await run('dbus-send', ['--session', '--dest=org.freedesktop.secrets', '--print-reply', '/org/freedesktop/secrets', 'org.freedesktop.Secret.Service.Lock', 'array:objpath:/org/freedesktop/secrets/collection/login'], { env });
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
