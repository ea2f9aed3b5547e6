// The bundled preload (dist/preload/preload.cjs as shipped) run in a fresh V8
// context with fakes of contextBridge and ipcRenderer (the Electron binary
// cannot run here): what it exposes, what it sends, what it refuses.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext, runInContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPreload } from '../../build/build-preload.ts';
import { EVENT_CHANNEL, INVOKE } from '../../src/common/ipc-contract.ts';
import type { PreloadApi } from '../../src/preload/preload-api.ts';

let dir: string;
let code: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-preload-'));
  code = await readFile(await buildPreload(dir), 'utf8');
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

function load(reply: (channel: string, args: unknown) => unknown) {
  const exposed: Record<string, unknown> = {};
  const sent: [string, unknown][] = [];
  const listeners = new Map<string, ((e: unknown, m: unknown) => void)[]>();
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => void (exposed[key] = api) },
    ipcRenderer: {
      invoke: async (channel: string, args: unknown) => (sent.push([channel, args]), reply(channel, args)),
      on: (c: string, l: (e: unknown, m: unknown) => void) => void listeners.set(c, [...(listeners.get(c) ?? []), l]),
      removeListener: (c: string, l: (e: unknown, m: unknown) => void) => void listeners.set(c, (listeners.get(c) ?? []).filter((x) => x !== l)),
    },
  };
  const required: string[] = [];
  const sandbox = {
    require: (m: string) => {
      required.push(m);
      if (m !== 'electron') throw new Error(`a sandboxed preload cannot require ${m}`);
      return electron;
    },
    module: { exports: {} }, exports: {}, console,
  };
  runInContext(code, createContext(sandbox));
  const fire = (msg: unknown) => (listeners.get(EVENT_CHANNEL) ?? []).forEach((l) => l({}, msg));
  return { api: exposed['tether'] as PreloadApi, exposedKeys: Object.keys(exposed), sent, required, fire };
}

describe('preload bundle', () => {
  it('requires only electron and exposes one API object with every contract channel and on()', () => {
    const { api, exposedKeys, required } = load(() => ({ ok: true, value: {} }));
    expect(required).toEqual(['electron']);
    expect(exposedKeys).toEqual(['tether']);
    expect(Object.keys(api).sort()).toEqual([...Object.keys(INVOKE), 'on'].sort());
    expect(Object.isFrozen(api)).toBe(true);
    expect(code).not.toMatch(/ipcRenderer\.send\(|sendSync/);
  });

  it('sends a checked call on its channel and returns the checked result', async () => {
    const { api, sent } = load(() => ({ ok: true, value: { revoked: true } }));
    expect(await api.revokeGrant({ id: 'g1' })).toEqual({ revoked: true });
    expect(sent).toEqual([['tether:revokeGrant', { id: 'g1' }]]);
  });

  it('refuses bad arguments before anything is sent', async () => {
    const { api, sent } = load(() => ({ ok: true, value: {} }));
    await expect(api.answerConsent({ id: 'q', answer: 'always' as never })).rejects.toThrow(/invalid arguments/);
    await expect(api.answerConsent({ id: 'q', answer: 'once', extra: 1 } as never)).rejects.toThrow(/invalid arguments/);
    expect(sent).toEqual([]);
  });

  it('rejects a reply that does not match the contract, and passes host errors on', async () => {
    expect(await load(() => ({ ok: true, value: { revoked: 'yes' } })).api.revokeGrant({ id: 'g' }).catch((e: Error) => e.message)).toMatch(/does not match the contract/);
    expect(await load(() => ({ ok: false, error: { code: 'refused', message: 'refused: not the main frame' } })).api.revokeGrant({ id: 'g' }).catch((e: Error) => e.message)).toBe('refused: not the main frame');
    expect(await load(() => 'garbage').api.revokeGrant({ id: 'g' }).catch((e: Error) => e.message)).toMatch(/malformed reply/);
  });

  it('delivers valid events and drops malformed ones', () => {
    const { api, fire } = load(() => ({ ok: true, value: {} }));
    const got: unknown[] = [];
    const off = api.on('sessionStatus', (s) => got.push(s));
    fire({ name: 'sessionStatus', payload: { state: 'idle' } });
    fire({ name: 'sessionStatus', payload: { state: 'pwned' } });
    fire({ name: 'consentAsked', payload: {} });
    fire('not even an object');
    off();
    fire({ name: 'sessionStatus', payload: { state: 'running' } });
    expect(got).toEqual([{ state: 'idle' }]);
  });
});
