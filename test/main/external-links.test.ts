import { describe, expect, it, vi } from 'vitest';
import { openExternalSafely } from '../../src/main/external-links.ts';

describe('openExternalSafely', () => {
  it.each([
    ['https://example.com/a?b=c', true],
    ['http://example.com/', true],
    ['javascript:alert(1)', false],
    ['file:///etc/passwd', false],
    ['smb://server/share', false],
    ['tether://app/index.html', false],
    ['https://user:pw@example.com/', false],
    ['vscode://open?x', false],
    ['not a url', false],
  ])('%s opens: %s', async (url, opens) => {
    const shell = { openExternal: vi.fn(async () => {}) };
    expect(await openExternalSafely(shell, url)).toBe(opens);
    expect(shell.openExternal).toHaveBeenCalledTimes(opens ? 1 : 0);
  });

  it('reports false when the system cannot open the link', async () => {
    expect(await openExternalSafely({ openExternal: async () => Promise.reject(new Error('no browser')) }, 'https://x.example/')).toBe(false);
  });
});
