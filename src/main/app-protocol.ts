// The app's own origin: `tether://app/…` serves the built renderer from one
// folder, with the page's CSP on every response. Replaces file://, which
// would give the page the whole disk as its origin.
//
// Not here: registering the scheme (Electron's protocol module, in main.ts);
// this is the handler, on web-standard Request/Response so it runs in Node.

import { readFile, realpath } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { rendererCsp } from '../common/ipc-contract.ts';

export const APP_SCHEME = 'tether';
export const APP_HOST = 'app';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_ENTRY = `${APP_ORIGIN}/index.html`;

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2', '.json': 'application/json',
};

export const RESPONSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': rendererCsp(),
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** True for a URL on the app's own origin (scheme and host; Node reports custom-scheme origins as "null"). */
export function isAppUrl(raw: string): boolean {
  try {
    const u = new URL(raw);
    return u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST && u.username === '' && u.password === '' && u.port === '';
  } catch {
    return false;
  }
}

export function createAppProtocolHandler(rootDir: string): (request: Request) => Promise<Response> {
  const rootReady = realpath(rootDir);
  return async (request) => {
    const notFound = () => new Response('not found', { status: 404, headers: RESPONSE_HEADERS });
    if (request.method !== 'GET') return new Response('method not allowed', { status: 405, headers: RESPONSE_HEADERS });
    if (!isAppUrl(request.url)) return notFound();
    const root = await rootReady;
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(request.url).pathname);
    } catch {
      return notFound();
    }
    const rel = normalize(pathname === '/' ? 'index.html' : pathname).replace(/^[/\\]+/, '');
    const file = join(root, rel);
    if (rel.includes('\0') || !file.startsWith(root + sep)) return notFound();
    try {
      const real = await realpath(file);
      if (!real.startsWith(root + sep)) return notFound();
      const body = await readFile(real);
      return new Response(body, { status: 200, headers: { ...RESPONSE_HEADERS, 'Content-Type': TYPES[extname(real)] ?? 'application/octet-stream' } });
    } catch {
      return notFound();
    }
  };
}
