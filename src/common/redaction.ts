// Outbound secret scanner: finds credentials in text that is about to leave the
// machine (model requests through the egress gateway) so the host can block or
// redact them.
//
// What this is: a set of patterns for well-known credential formats plus
// env-style assignments. What it is not: a guarantee. It misses secrets with no
// recognisable shape (a bare random password, a key split across strings,
// base64- or otherwise encoded secrets), and a generic assignment rule can
// flag test fixtures. Policy decides what may be read in the first place; this
// is the second line.

export interface SecretRule {
  /** Stable id, used in redaction markers and audit. */
  readonly id: string;
  /** Human-readable, with an article: "an AWS access key id". */
  readonly label: string;
  readonly pattern: RegExp;
  /** Index of the capture group that holds the secret; 0 (whole match) when absent. */
  readonly group?: number;
  /** Extra check on the captured value (placeholders, too little variety). */
  readonly accept?: (value: string) => boolean;
}

export interface SecretFinding {
  readonly ruleId: string;
  readonly label: string;
  /** Offset and length of the secret itself in the scanned text. */
  readonly index: number;
  readonly length: number;
}

const PLACEHOLDER = /^(?:\[REDACTED:[\w-]+\]|x+|\*+|\.+|-+|_+|<[^>]*>|\{[^}]*\}|\$\{?[\w.:-]+\}?|%[\w]+%?|changeme|change_me|your[\w-]*|example[\w-]*|placeholder|redacted|dummy|none|null|undefined|true|false|todo|secret|password|token|xxx.*)$/i;

/** A plausible secret value: not a placeholder or variable reference, with some variety. */
function plausibleValue(value: string): boolean {
  const v = value.replace(/^["']|["']$/g, '');
  if (v.length < 8 || PLACEHOLDER.test(v)) return false;
  if (/^(?:process\.env|os\.environ|getenv|env\.|\$\(|`)/i.test(v)) return false;
  // Code, not a value: a call, or a bare identifier without digits (another variable's name).
  if (/[()]/.test(v) || /^[A-Za-z_][A-Za-z_.]*$/.test(v)) return false;
  return new Set(v).size >= 6;
}

function mixed(value: string): boolean {
  return plausibleValue(value) && /[A-Za-z]/.test(value) && /\d/.test(value);
}

export const SECRET_RULES: readonly SecretRule[] = [
  {
    id: 'private-key',
    label: 'a private key block',
    // The END line is optional so a truncated block is still caught.
    pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:-]*)/g,
  },
  { id: 'aws-access-key-id', label: 'an AWS access key id', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b/g },
  {
    id: 'aws-secret-access-key',
    label: 'an AWS secret access key',
    pattern: /\baws_?secret_?access_?key\b["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/gi,
    group: 1,
  },
  { id: 'github-token', label: 'a GitHub token', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{50,255})\b/g },
  { id: 'gitlab-token', label: 'a GitLab token', pattern: /\bgl(?:pat|dt|rt|ptt|soat|ft|imt|oas|cbt|agent)-[A-Za-z0-9_-]{20,}/g },
  { id: 'slack-token', label: 'a Slack token', pattern: /\bxox[abposre]-[A-Za-z0-9-]{10,}/g },
  { id: 'slack-webhook', label: 'a Slack webhook URL', pattern: /https:\/\/hooks\.slack\.com\/(?:services|workflows)\/[A-Za-z0-9/_-]{20,}/g },
  { id: 'anthropic-api-key', label: 'an Anthropic API key', pattern: /\bsk-ant-[A-Za-z0-9_-]{20,}/g },
  { id: 'openai-api-key', label: 'an OpenAI API key', pattern: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/g, accept: (v) => !v.startsWith('sk-ant-') && /\d/.test(v) },
  { id: 'google-api-key', label: 'a Google API key', pattern: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g },
  { id: 'stripe-key', label: 'a Stripe secret key', pattern: /\b(?:sk|rk)_live_[0-9A-Za-z]{20,}/g },
  { id: 'npm-token', label: 'an npm token', pattern: /\bnpm_[A-Za-z0-9]{36}\b/g },
  { id: 'jwt', label: 'a JSON Web Token', pattern: /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g },
  {
    id: 'credential-url',
    label: 'a URL with an embedded password',
    // Anchored on "://" (no scheme prefix to backtrack over).
    pattern: /:\/\/[^\s/:@"']{1,100}:([^\s/@"']{6,200})@[^\s"']+/g,
    group: 1,
    accept: plausibleValue,
  },
  {
    // SOME_API_KEY=value, export DB_PASSWORD="value", FOO_TOKEN: value (dotenv, shell, YAML).
    id: 'secret-assignment',
    label: 'a secret assignment (*_API_KEY, *_SECRET, *_TOKEN, *_PASSWORD)',
    pattern: /\b[A-Z][A-Z0-9_]*(?:API_?KEY|SECRET(?:_KEY)?|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|PRIVATE_KEY|CLIENT_SECRET|AUTH)\b["']?[ \t]*[:=][ \t]*["']?([^\s"'`#,;\\]{8,})/g,
    group: 1,
    accept: plausibleValue,
  },
  {
    // "api_key": "value", password = 'value' in code and config: quoted, with letters and digits.
    id: 'secret-literal',
    label: 'a quoted secret literal (api_key / secret / token / password)',
    pattern: /(?:api[_-]?key|secret|token|passw(?:or)?d)["']?\s*[:=]\s*["']([^"'\s]{16,})["']/gi,
    group: 1,
    accept: mixed,
  },
];

/** All findings in `text`, in order, overlapping findings merged into the first. */
export function findSecrets(text: string, rules: readonly SecretRule[] = SECRET_RULES): SecretFinding[] {
  const found: SecretFinding[] = [];
  for (const rule of rules) {
    rule.pattern.lastIndex = 0;
    for (const m of text.matchAll(rule.pattern)) {
      const group = rule.group ?? 0;
      const value = m[group];
      if (value === undefined || value.length === 0) continue;
      if (rule.accept && !rule.accept(value)) continue;
      const index = m.index + (group === 0 ? 0 : m[0].indexOf(value));
      found.push({ ruleId: rule.id, label: rule.label, index, length: value.length });
    }
  }
  found.sort((a, b) => a.index - b.index || b.length - a.length);
  const merged: SecretFinding[] = [];
  for (const f of found) {
    const last = merged.at(-1);
    if (last && f.index < last.index + last.length) continue;
    merged.push(f);
  }
  return merged;
}

export function redactionMarker(ruleId: string): string {
  return `[REDACTED:${ruleId}]`;
}

/** Replaces every finding with `[REDACTED:rule-id]`. */
export function redactSecrets(text: string, rules: readonly SecretRule[] = SECRET_RULES): { text: string; findings: SecretFinding[] } {
  const findings = findSecrets(text, rules);
  if (findings.length === 0) return { text, findings };
  let out = '';
  let at = 0;
  for (const f of findings) {
    out += text.slice(at, f.index) + redactionMarker(f.ruleId);
    at = f.index + f.length;
  }
  return { text: out + text.slice(at), findings };
}

/** "an AWS access key id and a GitHub token" — names what was found, never the value. */
export function describeFindings(findings: readonly Pick<SecretFinding, 'label'>[]): string {
  const labels = [...new Set(findings.map((f) => f.label))];
  if (labels.length <= 1) return labels[0] ?? 'nothing';
  return `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)}`;
}
