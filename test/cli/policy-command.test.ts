// `tether policy validate | test | explain`, called as the CLI calls it.

import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runPolicyCommand } from '../../src/cli/policy-command.ts';
import { DEFAULT_POLICY_DIR } from '../../src/host/policy/cedar-policy-engine.ts';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runPolicyCommand(args, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-policy-cli-'));
  await mkdir(join(dir, 'ws', 'src'), { recursive: true });
  await writeFile(join(dir, 'ws', 'src', 'a.ts'), 'export {};\n');
  await writeFile(join(dir, 'team.cedar'), '// team\n@id("team-write-src")\n@description("Writes under src/ are fine here.")\npermit (principal, action == Tether::Action::"write", resource is Tether::File)\nwhen { resource.inWorkspace && resource.relPath like "src/*" };\n');
});

describe('tether policy test', () => {
  it('passes the example test file shipped with the default policy', async () => {
    const r = await run('test', join(DEFAULT_POLICY_DIR, 'tests', 'default.test.json'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/PASS {2}denies reading \.env/);
    expect(r.out).not.toMatch(/FAIL/);
    expect(r.out).toMatch(/PASS: (\d+)\/\1 cases passed/);
  });

  it('fails with exit 1 and says what it got when a case does not hold', async () => {
    const file = join(dir, 'failing.test.json');
    await writeFile(file, JSON.stringify({
      workspace: '/home/dev/p',
      cases: [
        { name: 'reads are allowed', request: { action: 'read', path: 'a.ts' }, expect: 'allow' },
        { name: 'writes are allowed (wrong)', request: { action: 'write', path: 'a.ts' }, expect: 'allow' },
        { name: 'names the wrong rule', request: { action: 'read', path: '.env' }, expect: 'deny', policyIds: ['outside-workspace'] },
      ],
    }));
    const r = await run('test', file);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/PASS {2}reads are allowed/);
    expect(r.out).toMatch(/FAIL {2}writes are allowed \(wrong\)\n\s+expected allow, got ask \(workspace-write\)/);
    expect(r.out).toMatch(/FAIL {2}names the wrong rule\n\s+expected policies \[outside-workspace\], got deny \(secret-env-files\)/);
    expect(r.out).toMatch(/FAIL: 1\/3 cases passed/);
  });

  it('applies --policy and the test file\'s own policies', async () => {
    const file = join(dir, 'team.test.json');
    await writeFile(file, JSON.stringify({
      workspace: '/home/dev/p',
      policies: ['team.cedar'],
      cases: [{ name: 'team permit allows src writes', request: { action: 'write', path: 'src/x.ts' }, expect: 'allow', policyIds: ['team-write-src'] }],
    }));
    expect((await run('test', file)).code).toBe(0);
    const bare = join(dir, 'bare.test.json');
    await writeFile(bare, JSON.stringify([{ name: 'with --policy', request: { action: 'write', path: 'src/x.ts', workspace: '/w' }, expect: 'allow' }]));
    expect((await run('test', bare)).code).toBe(1);
    expect((await run('test', bare, '--policy', join(dir, 'team.cedar'))).code).toBe(0);
  });

  it('rejects a malformed test file with the case it is about', async () => {
    const file = join(dir, 'bad.test.json');
    await writeFile(file, JSON.stringify({ cases: [{ name: 'x', request: { action: 'read', path: 'a', colour: 'red' }, expect: 'allow' }] }));
    const r = await run('test', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/case 1 \("x"\): unknown request field\(s\): colour/);
  });
});

describe('tether policy explain', () => {
  it('shows the decision, the deciding rule with its source file, and the precedence that applied', async () => {
    const ws = join(dir, 'ws');
    const r = await run('explain', '--action', 'write', '--path', 'src/a.ts', '--workspace', ws, '--policy', join(dir, 'team.cedar'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^decision: ALLOW/);
    expect(r.out).toMatch(/team-write-src {2}\[permit, user, .*team\.cedar:2\]\n\s+Writes under src\/ are fine here\./);
    expect(r.out).toMatch(/workspace-write {2}\[permit @ask, default, .*default\.cedar:\d+\]/);
    expect(r.out).toMatch(/highest-precedence source with a matching permit is "user"/);
    expect(r.out).toMatch(/\.relPath = "src\/a\.ts"/);
    expect(r.out).toMatch(/\.exists = true/);
  });

  it('explains a denied move by the half that was denied', async () => {
    const r = await run('explain', '--action', 'move', '--path', 'src/a.ts', '--destination', '.git/hooks/pre-commit', '--workspace', join(dir, 'ws'));
    expect(r.out).toMatch(/^decision: DENY/);
    expect(r.out).toMatch(/determined by:\n\s+git-hooks-and-config {2}\[forbid, default/);
    expect(r.out).toMatch(/destination .*\.git\/hooks\/pre-commit → deny\n\s+a forbid matched/);
  });

  it('explains a default deny when nothing permits', async () => {
    const r = await run('explain', '--action', 'model', '--url', 'https://api.example.com/v1/messages', '--json');
    const x = JSON.parse(r.out) as { decision: { effect: string; policyIds: string[] }; rules: { file: string }[] };
    expect(x.decision).toMatchObject({ effect: 'deny', policyIds: ['model-other-endpoint'] });
    expect(x.rules[0]!.file).toMatch(/default\.cedar$/);
  });

  it('is a usage error without exactly one target', async () => {
    expect((await run('explain', '--action', 'read')).code).toBe(2);
    expect((await run('explain', '--action', 'read', '--path', 'a', '--url', 'https://x')).code).toBe(2);
    expect((await run('explain', '--action', 'chmod', '--path', 'a')).code).toBe(2);
  });
});

describe('tether policy validate', () => {
  it('accepts a valid file and refuses a broken one with file:line:column', async () => {
    const ok = await run('validate', join(dir, 'team.cedar'));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/ok {2}.*team\.cedar {2}\(user, 1 policy\)/);
    const bad = join(dir, 'bad.cedar');
    await writeFile(bad, '@id("b")\npermit (principal, action, resource)\nwhen { resource.nope };\n');
    const r = await run('validate', bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`invalid policy: ${bad}:3:8: `);
  });

  it('prints help and rejects unknown commands and flags', async () => {
    expect((await run('--help')).out).toMatch(/Usage: tether policy/);
    expect((await run('frobnicate')).code).toBe(2);
    expect((await run('test', '--no-such-flag')).code).toBe(2);
  });
});
