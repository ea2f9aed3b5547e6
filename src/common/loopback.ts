// Whether a URL hostname names this machine: `localhost`, `::1` (with or
// without URL brackets) or a dotted-quad 127.0.0.0/8 address. Deliberately
// strict: a DNS name that merely starts with "127." is not loopback.
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '::1' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function isLoopbackUrl(url: string): boolean {
  try {
    return isLoopbackHost(new URL(url).hostname);
  } catch {
    return false;
  }
}
