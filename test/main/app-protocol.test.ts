// The tether:// handler runs on web-standard Request/Response, so it is tested
// here in Node against real files; Electron only registers it.
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ENTRY, createAppProtocolHandler, isAppUrl } from '../../src/main/app-protocol.ts';

let dir: string;
let handler: (r: Request) => Promise<Response>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-proto-'));
  await mkdir(join(dir, 'dist', 'assets'), { recursive: true });
  await writeFile(join(dir, 'dist', 'index.html'), '<!doctype html><title>t</title>');
  await writeFile(join(dir, 'dist', 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(dir, 'secret.txt'), 'do not serve');
  await symlink(join(dir, 'secret.txt'), join(dir, 'dist', 'assets', 'link.txt'));
  handler = createAppProtocolHandler(join(dir, 'dist'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('app protocol', () => {
  it('serves the entry page with the strict CSP and nosniff', async () => {
    const res = await handler(new Request(APP_ENTRY));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(csp).toContain("connect-src 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('serves assets with their content type', async () => {
    const res = await handler(new Request('tether://app/assets/app.js'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/javascript/);
    expect(await res.text()).toBe('console.log(1)');
  });

  it.each([
    ['tether://app/../secret.txt'],
    ['tether://app/%2e%2e/secret.txt'],
    ['tether://app/assets/..%2f..%2fsecret.txt'],
    ['tether://app/assets/link.txt'],
    ['tether://app/nope.js'],
    ['tether://other/index.html'],
    ['tether://app/index.html%00.js'],
  ])('refuses %s', async (url) => {
    const res = await handler(new Request(url));
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('do not serve');
  });

  it('refuses methods other than GET', async () => {
    expect((await handler(new Request(APP_ENTRY, { method: 'POST', body: 'x' }))).status).toBe(405);
  });

  it.each([
    ['tether://app/index.html', true],
    ['tether://app/', true],
    ['tether://evil/index.html', false],
    ['tether://app:99/index.html', false],
    ['https://app/index.html', false],
    ['file:///index.html', false],
    ['not a url', false],
  ])('isAppUrl(%s) is %s', (url, ok) => {
    expect(isAppUrl(url)).toBe(ok);
  });
});
