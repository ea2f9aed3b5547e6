// Keyed-HMAC paths for exports: the SIEM can still group and join events on a
// path without learning it. The key comes from the keychain (readKeychainSecret);
// the same key gives the same token on every machine that shares it.
import { createHmac } from 'node:crypto';

export function hmacPathTransform(key: string | Uint8Array): (path: string) => string {
  if (key.length < 16) throw new Error('the path HMAC key must be at least 16 bytes');
  return (path) => `hmac-sha256:${createHmac('sha256', key).update(path).digest('hex')}`;
}
