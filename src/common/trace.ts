// W3C Trace Context (traceparent) carried in ACP `_meta` on every request.
// Only version 00 is produced; unknown versions are accepted if the first
// four fields parse, as the spec asks.

export interface TraceContext {
  readonly traceId: string; // 32 lowercase hex, not all zero
  readonly spanId: string; // 16 lowercase hex, not all zero
  readonly flags: string; // 2 hex
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export function parseTraceparent(value: unknown): TraceContext | undefined {
  if (typeof value !== 'string') return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, flags };
}

export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}

// Ids are cut from a pool refilled 4 KiB at a time from the CSPRNG: one
// getRandomValues call per ~170 requests instead of two per request.
const pool = new Uint8Array(4096);
let poolUsed = pool.length;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function randomHex(bytes: number): string {
  if (poolUsed + bytes > pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolUsed = 0;
  }
  let s = '';
  let any = 0;
  for (let i = poolUsed; i < poolUsed + bytes; i++) {
    s += HEX[pool[i]!];
    any |= pool[i]!;
  }
  poolUsed += bytes;
  return any === 0 ? randomHex(bytes) : s;
}

export function newTrace(): TraceContext {
  return { traceId: randomHex(16), spanId: randomHex(8), flags: '01' };
}

/** A child span in the same trace. */
export function childSpan(parent: TraceContext): TraceContext {
  return { traceId: parent.traceId, spanId: randomHex(8), flags: parent.flags };
}

/** Reads `_meta.traceparent` from request params, or starts a new trace. */
export function traceFromMeta(meta: unknown): TraceContext {
  const tp = meta && typeof meta === 'object' ? (meta as Record<string, unknown>)['traceparent'] : undefined;
  const parent = parseTraceparent(tp);
  return parent ? childSpan(parent) : newTrace();
}
