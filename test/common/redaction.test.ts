import { describe, expect, it } from 'vitest';
import { describeFindings, findSecrets, redactSecrets } from '../../src/common/redaction.ts';

// Test values are assembled at run time so this file does not itself look like a leak to scanners.
const j = (...parts: string[]) => parts.join('');

const SECRETS: [string, string, string][] = [
  ['private-key', 'an RSA private key block', j('-----BEGIN RSA ', 'PRIVATE KEY-----\nMIIEowIBAAKCAQEAxyz\nabc+/=\n-----END RSA ', 'PRIVATE KEY-----')],
  ['private-key', 'a truncated OpenSSH private key', j('-----BEGIN OPENSSH ', 'PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU')],
  ['private-key', 'a PGP private key block', j('-----BEGIN PGP ', 'PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP ', 'PRIVATE KEY BLOCK-----')],
  ['aws-access-key-id', 'an AWS access key id', j('AKIA', 'IOSFODNN7EXAMPLE')],
  ['aws-access-key-id', 'an AWS temporary key id', j('ASIA', 'Y34FZKBOKMUTVV7A')],
  ['aws-secret-access-key', 'an AWS secret in a credentials file', j('aws_secret_access_key = ', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')],
  ['github-token', 'a GitHub personal token', j('ghp_', 'a'.repeat(18), '1234567890ABCDEFGH')],
  ['github-token', 'a fine-grained GitHub token', j('github_pat_', '11ABCDEFG0', 'x'.repeat(60))],
  ['gitlab-token', 'a GitLab token', j('glpat-', 'xYz123AbC456dEf789gH')],
  ['slack-token', 'a Slack bot token', j('xoxb-', '1234567890-0987654321-AbCdEfGhIjKl')],
  ['slack-webhook', 'a Slack webhook', j('https://hooks.slack.com/services/', 'T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX')],
  ['anthropic-api-key', 'an Anthropic key', j('sk-ant-', 'api03-AbCdEf0123456789xyzXYZ')],
  ['openai-api-key', 'an OpenAI project key', j('sk-', 'proj-Abc123Def456Ghi789Jkl012')],
  ['google-api-key', 'a Google API key', j('AIza', 'SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q')],
  ['stripe-key', 'a Stripe live key', j('sk_', 'live_', '4eC39HqLyjWDarjtT1zdp7dc')],
  ['npm-token', 'an npm token', j('npm_', 'A'.repeat(20), '1234567890123456')],
  ['jwt', 'a JWT', j('eyJ', 'hbGciOiJIUzI1NiJ9', '.eyJ', 'zdWIiOiIxMjM0NTY3ODkwIn0', '.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U')],
  ['credential-url', 'a database URL with a password', j('postgres://app:', 'S3cr3tPassw0rd', '@db.internal:5432/app')],
  ['secret-assignment', 'a dotenv API key', j('STRIPE_API_KEY', '=', 'live-abc123XYZ789')],
  ['secret-assignment', 'an exported password', j('export DB_PASSWORD', '="', 'correct-horse-battery-9', '"')],
  ['secret-assignment', 'a YAML token', j('SERVICE_TOKEN', ': ', 'q8w7e6r5t4y3u2i1')],
  ['secret-literal', 'a quoted api_key in JSON', j('{"api_key"', ': "', 'a1b2c3d4e5f6g7h8i9j0', '"}')],
];

describe('secret scanner', () => {
  it.each(SECRETS)('finds %s: %s', (ruleId, _label, text) => {
    const found = findSecrets(`some text before\n${text}\nand after`);
    expect(found.map((f) => f.ruleId)).toContain(ruleId);
  });

  it.each([
    ['ordinary code', 'const token = getToken(); if (password.length < 8) throw new Error("short");'],
    ['env references', 'OPENAI_API_KEY=${OPENAI_API_KEY}\nGITHUB_TOKEN=$GITHUB_TOKEN\nAPI_KEY=process.env.API_KEY'],
    ['placeholders', 'ANTHROPIC_API_KEY=your-api-key-here\nDB_PASSWORD=changeme\nSECRET_KEY=xxxxxxxxxxxx\nFOO_TOKEN=<token>'],
    ['a public key', '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----'],
    ['a git sha and a uuid', 'commit 9fceb02d0ae598e95dc970b74767f19372d61af8, id 123e4567-e89b-12d3-a456-426614174000'],
    ['prose about keys', 'Set the AWS access key in ~/.aws/credentials and never commit your API key.'],
    ['a short sk- word', 'the sk-learn library and task-force-x'],
    ['a ternary between variable names', "const env = provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY';"],
    ['an assignment from another variable', 'GITHUB_TOKEN=SOME_OTHER_VARIABLE\nAPI_KEY: config.secrets.apiKey'],
  ])('does not flag %s', (_name, text) => {
    expect(findSecrets(text)).toEqual([]);
  });

  it('redacts only the secret and keeps the text around it', () => {
    const key = j('AKIA', 'IOSFODNN7EXAMPLE');
    const pw = j('hunter2', 'Hunter2!');
    const r = redactSecrets(`id=${key} and DB_PASSWORD=${pw} end`);
    expect(r.text).toBe('id=[REDACTED:aws-access-key-id] and DB_PASSWORD=[REDACTED:secret-assignment] end');
    expect(r.findings).toHaveLength(2);
  });

  it('merges overlapping findings into one redaction', () => {
    const text = j('ANTHROPIC_API_KEY=', 'sk-ant-', 'api03-AbCdEf0123456789xyzXYZ');
    const r = redactSecrets(text);
    expect(r.findings).toHaveLength(1);
    expect(r.text).not.toContain('AbCdEf0123456789');
  });

  it('describes findings by label, never by value', () => {
    const key = j('AKIA', 'IOSFODNN7EXAMPLE');
    const gh = j('ghp_', 'a'.repeat(18), '1234567890ABCDEFGH');
    const text = describeFindings(findSecrets(`${key} ${gh} ${key}`));
    expect(text).toBe('an AWS access key id and a GitHub token');
    expect(text).not.toContain('AKIA');
  });
});
