// The IPC router with a fake ipcMain (Electron's cannot run here): what it
// refuses and what it passes to the host.
import { describe, expect, it, vi } from 'vitest';
import { EVENT_CHANNEL, INVOKE, invokeChannel, type ApiHandlers, type Envelope } from '../../src/common/ipc-contract.ts';
import { checkSender, forwardEvents, registerIpc, type FrameLike, type InvokeEventLike, type WindowLike } from '../../src/main/ipc-router.ts';

function fakeIpc() {
  const handlers = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => Promise<unknown>>();
  return {
    handlers,
    handle: (c: string, l: (event: InvokeEventLike, ...args: unknown[]) => Promise<unknown>) => void handlers.set(c, l),
    removeHandler: (c: string) => void handlers.delete(c),
  };
}
const sent: unknown[][] = [];
const window: WindowLike = { isDestroyed: () => false, webContents: { id: 7, send: (...a: unknown[]) => void sent.push(a) } };
const top: FrameLike = { url: 'tether://app/index.html', parent: null };
const good: InvokeEventLike = { sender: { id: 7 }, senderFrame: top };

function handlers(overrides: Partial<ApiHandlers> = {}): ApiHandlers {
  const fail = async () => {
    throw new Error('not in this test');
  };
  const base = Object.fromEntries(Object.keys(INVOKE).map((k) => [k, fail])) as unknown as ApiHandlers;
  return { ...base, ...overrides };
}

describe('ipc router', () => {
  it('registers exactly one handler per contract channel and removes them all', () => {
    const ipc = fakeIpc();
    const off = registerIpc(ipc, handlers(), () => window, () => {});
    expect([...ipc.handlers.keys()].sort()).toEqual(Object.keys(INVOKE).map((k) => invokeChannel(k as keyof typeof INVOKE)).sort());
    off();
    expect(ipc.handlers.size).toBe(0);
  });

  it('passes a valid call from the main frame to the host and returns its checked result', async () => {
    const ipc = fakeIpc();
    const revokeGrant = vi.fn(async ({ id }: { id: string }) => ({ revoked: id === 'g1' }));
    registerIpc(ipc, handlers({ revokeGrant }), () => window, () => {});
    const env = (await ipc.handlers.get('tether:revokeGrant')!(good, { id: 'g1' })) as Envelope;
    expect(env).toEqual({ ok: true, value: { revoked: true } });
    expect(revokeGrant).toHaveBeenCalledWith({ id: 'g1' });
  });

  it.each<[string, InvokeEventLike, RegExp]>([
    ['another web contents', { sender: { id: 8 }, senderFrame: top }, /not the main window/],
    ['a subframe', { sender: { id: 7 }, senderFrame: { url: 'tether://app/index.html', parent: top } }, /subframe/],
    ['a foreign origin', { sender: { id: 7 }, senderFrame: { url: 'https://evil.example/', parent: null } }, /not on the app origin/],
    ['a file:// page', { sender: { id: 7 }, senderFrame: { url: 'file:///etc/passwd', parent: null } }, /not on the app origin/],
    ['a destroyed frame', { sender: { id: 7 }, senderFrame: null }, /frame is gone/],
  ])('refuses a call from %s without reaching the host', async (_what, event, why) => {
    const ipc = fakeIpc();
    const revokeGrant = vi.fn(async () => ({ revoked: true }));
    const log = vi.fn();
    registerIpc(ipc, handlers({ revokeGrant }), () => window, log);
    const env = (await ipc.handlers.get('tether:revokeGrant')!(event, { id: 'g1' })) as Envelope;
    expect(env.ok).toBe(false);
    expect(!env.ok && env.error.code).toBe('refused');
    expect(!env.ok && env.error.message).toMatch(why);
    expect(revokeGrant).not.toHaveBeenCalled();
    expect(log).toHaveBeenCalled();
  });

  it('refuses malformed arguments and extra arguments', async () => {
    const ipc = fakeIpc();
    const answerConsent = vi.fn(async () => ({ accepted: true }));
    registerIpc(ipc, handlers({ answerConsent }), () => window, () => {});
    const h = ipc.handlers.get('tether:answerConsent')!;
    const bad = (await h(good, { id: 'q', answer: 'always' })) as Envelope;
    expect(!bad.ok && bad.error.code).toBe('invalid-args');
    const extra = (await h(good, { id: 'q', answer: 'once' }, 'more')) as Envelope;
    expect(!extra.ok && extra.error.code).toBe('invalid-args');
    const unknownKey = (await h(good, { id: 'q', answer: 'once', grantEverything: true })) as Envelope;
    expect(!unknownKey.ok && unknownKey.error.code).toBe('invalid-args');
    expect(answerConsent).not.toHaveBeenCalled();
  });

  it('refuses a host result that does not match the contract', async () => {
    const ipc = fakeIpc();
    registerIpc(ipc, handlers({ revokeGrant: async () => ({ revoked: 'yes' }) as unknown as { revoked: boolean } }), () => window, () => {});
    const env = (await ipc.handlers.get('tether:revokeGrant')!(good, { id: 'g1' })) as Envelope;
    expect(!env.ok && env.error.code).toBe('invalid-result');
  });

  it('refuses everything when there is no window', () => {
    expect(checkSender(good, undefined)).toMatch(/no main window/);
    expect(checkSender(good, { ...window, isDestroyed: () => true })).toMatch(/no main window/);
  });

  it('forwards host events to the main window only while it exists', () => {
    let listener: ((e: { name: string; payload: unknown }) => void) | undefined;
    let current: WindowLike | undefined = window;
    sent.length = 0;
    forwardEvents((l) => ((listener = l), () => {}), () => current);
    listener!({ name: 'sessionStatus', payload: { state: 'idle' } });
    current = undefined;
    listener!({ name: 'sessionStatus', payload: { state: 'none' } });
    expect(sent).toEqual([[EVENT_CHANNEL, { name: 'sessionStatus', payload: { state: 'idle' } }]]);
  });
});
