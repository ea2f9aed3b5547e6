import { describe, expect, it } from 'vitest';
import { isLoopbackHost, isLoopbackUrl } from '../../src/common/loopback.ts';

describe('isLoopbackHost', () => {
  it.each(['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '[::1]'])('%s is this machine', (h) => expect(isLoopbackHost(h)).toBe(true));
  it.each(['127.example.com', '127.0.0.1.nip.io', '128.0.0.1', '10.0.0.1', 'localhost.evil.com', '0.0.0.0', ''])('%s is not', (h) => expect(isLoopbackHost(h)).toBe(false));
  it('reads a URL, and a URL that does not parse is not loopback', () => {
    expect(isLoopbackUrl('http://127.0.0.1:11434/v1')).toBe(true);
    expect(isLoopbackUrl('http://127.evil.com/v1')).toBe(false);
    expect(isLoopbackUrl('not a url')).toBe(false);
  });
});
