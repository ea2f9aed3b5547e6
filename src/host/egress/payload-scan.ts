// Applies the secret scanner (src/common/redaction.ts) to a JSON request body:
// every string value is scanned on its own, so JSON escaping cannot split or
// hide a match, and findings carry the JSON path where they were found.

import { findSecrets, redactSecrets, type SecretFinding } from '../../common/redaction.ts';

export interface PayloadFinding extends SecretFinding {
  /** e.g. messages[2].content[0].content */
  readonly where: string;
}

function pathOf(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (parent ? `${parent}.${key}` : key) : `${parent}[${JSON.stringify(key)}]`;
}

export function scanPayload(value: unknown): PayloadFinding[] {
  const out: PayloadFinding[] = [];
  walk(value, '', (s, where) => {
    for (const f of findSecrets(s)) out.push({ ...f, where });
    return s;
  });
  return out;
}

/** Returns a copy with every finding replaced by `[REDACTED:rule]`. */
export function redactPayload(value: unknown): { value: unknown; findings: PayloadFinding[] } {
  const findings: PayloadFinding[] = [];
  const redacted = walk(value, '', (s, where) => {
    const r = redactSecrets(s);
    for (const f of r.findings) findings.push({ ...f, where });
    return r.text;
  });
  return { value: redacted, findings };
}

function walk(value: unknown, where: string, visit: (s: string, where: string) => string): unknown {
  if (typeof value === 'string') return visit(value, where);
  if (Array.isArray(value)) return value.map((v, i) => walk(v, pathOf(where, i), visit));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    // defineProperty: a JSON key named __proto__ must stay a key, not become a prototype.
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: walk(v, pathOf(where, k), visit), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
