// The `tether` CLI as a user runs it: a real process, real exit codes.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readAuditRecords } from '../../src/host/audit/read-records.ts';

const cli = join(import.meta.dirname, '../../src/cli/tether.ts');

async function tether(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('tether CLI', () => {
  it('documents every run flag in --help', async () => {
    const { code, stdout } = await tether(['--help']);
    expect(code).toBe(0);
    for (const flag of ['--workspace', '--provider', '--model', '--base-url', '--policy', '--on-ask', '--audit-dir', '--ship']) expect(stdout).toContain(flag);
  });

  it('exits 2 with a clear message on bad usage', async () => {
    const r = await tether(['run', 'do it']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workspace DIR is required/);
    expect((await tether(['frobnicate'])).code).toBe(2);
    expect((await tether(['run', '--workspace', '.', '--on-ask', 'maybe', 'x'])).stderr).toMatch(/--on-ask must be deny or allow/);
    const ship = await tether(['run', '--workspace', '.', '--ship', 'relp://siem.example.com:2514', 'x']);
    expect(ship.code).toBe(2);
    expect(ship.stderr).toMatch(/--ship relp:\/\/siem\.example\.com:2514: records would leave this machine unencrypted; use relp\+tls:\/\//);
  });

  it('refuses to run with a policy that does not parse, naming file, line and column', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-cli-'));
    const bad = join(dir, 'bad.cedar');
    await writeFile(bad, '@id("x")\npermit(principal, action, resource) when { resource.nope ==  };\n');
    const r = await tether(['run', '--workspace', dir, '--policy', bad, '--audit-dir', join(dir, 'audit'), 'task']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}:2:`);
  });

  it('runs the demo end to end: a read, a write answered by --on-ask, a denied secret, all audited', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-cli-'));
    const audit = join(dir, 'audit');
    const r = await tether(['demo', '--on-ask', 'allow', '--provider', 'openai', '--audit-dir', audit]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('scripted demo model');
    expect(r.stdout).toMatch(/allowed \(policy\) read .*README\.md \[workspace-read\]/);
    expect(r.stdout).toMatch(/allowed \(preset\) write .*NOTES\.md \[workspace-write\]/);
    expect(r.stdout).toMatch(/denied \(policy\) read .*\.env \[secret-env-files\]/);
    const records = await readAuditRecords(audit);
    const verify = await tether(['audit', 'verify', audit, '--pubkey', `${audit}.pub`]);
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
    expect(records.filter((x) => x.type === 'decision').map((x) => x.decision!.decidedBy)).toEqual(expect.arrayContaining(['policy', 'preset']));
  });
});
