// The Cedar engine over the built-in default policy, with requests resolved
// by the real WorkspaceJail in a real temporary workspace (real files, a real
// hard link, a real symlink out). Every case runs on the fast engine and on
// the reference engine (whole policy set, full entities, schema): both must
// agree.

import { link, mkdir, mkdtemp, realpath, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CapabilityRequest } from '../../../src/common/capability.ts';
import type { PolicyEffect } from '../../../src/common/decision.ts';
import { CedarPolicyEngine, type CedarPolicyEngineOptions } from '../../../src/host/policy/cedar-policy-engine.ts';
import { requestFromInput, type PolicyRequestInput } from '../../../src/host/policy/policy-request-input.ts';

const PROVIDER = 'https://api.anthropic.com/v1';
let root: string;
let ws: string;
let outside: string;
let tetherData: string;

async function put(path: string, content = 'x\n'): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'tether-policy-')));
  ws = join(root, 'project');
  outside = join(root, 'elsewhere');
  tetherData = join(ws, '.tether-data');
  for (const f of ['src/index.ts', 'README.md', '.env', '.env.example', '.ENV.LOCAL', 'certs/server.pem', 'deploy/id_ed25519', '.npmrc',
    '.git/config', '.git/hooks/pre-commit.sample', '.git/modules/lib/hooks/post-checkout', 'home/.ssh/config', 'home/.aws/credentials',
    '.tether-data/audit/audit.jsonl']) {
    await put(join(ws, f));
  }
  await put(join(outside, 'secret.txt'));
  await link(join(outside, 'secret.txt'), join(ws, 'notes.txt'));
  await symlink(outside, join(ws, 'link-out'));
});

const engines = new Map<string, CedarPolicyEngine>();
async function engine(options: CedarPolicyEngineOptions = {}): Promise<[CedarPolicyEngine, CedarPolicyEngine]> {
  const key = JSON.stringify(options);
  if (!engines.has(key)) {
    const base = { modelProviders: [PROVIDER], protectedPaths: [tetherData], ...options };
    engines.set(key, await CedarPolicyEngine.load(base));
    engines.set(`${key}#ref`, await CedarPolicyEngine.load({ ...base, reference: true }));
  }
  return [engines.get(key)!, engines.get(`${key}#ref`)!];
}

function req(input: PolicyRequestInput): Promise<CapabilityRequest> {
  return requestFromInput({ workspace: ws, ...input }, root);
}

type Row = [name: string, input: PolicyRequestInput, effect: PolicyEffect, policyIds: string[]];

const DEFAULT_CASES: Row[] = [
  ['allows reading a source file', { action: 'read', path: 'src/index.ts' }, 'allow', ['workspace-read']],
  ['allows listing the workspace root', { action: 'list', path: '.' }, 'allow', ['workspace-read']],
  ['allows searching a directory', { action: 'search', path: 'src' }, 'allow', ['workspace-read']],
  ['allows stat of a file that does not exist yet', { action: 'stat', path: 'src/new.ts' }, 'allow', ['workspace-read']],
  ['allows reading the .env.example template', { action: 'read', path: '.env.example' }, 'allow', ['workspace-read']],
  ['allows reading .git/config', { action: 'read', path: '.git/config' }, 'allow', ['workspace-read']],
  ['asks before reading a file hard-linked to one outside the workspace', { action: 'read', path: 'notes.txt' }, 'ask', ['workspace-read-hard-link']],
  ['allows stat of a hard-linked file (metadata only)', { action: 'stat', path: 'notes.txt' }, 'allow', ['workspace-read']],
  ['asks before reading a registry config that may hold tokens', { action: 'read', path: '.npmrc' }, 'ask', ['workspace-read-registry-config']],
  ['asks before writing an existing file', { action: 'write', path: 'src/index.ts' }, 'ask', ['workspace-write']],
  ['asks before creating a file', { action: 'write', path: 'src/new/deep.ts' }, 'ask', ['workspace-write']],
  ['asks before deleting a file', { action: 'delete', path: 'README.md' }, 'ask', ['workspace-delete']],
  ['asks before a move inside the workspace', { action: 'move', path: 'README.md', destination: 'docs/README.md' }, 'ask', ['workspace-move']],
  ['denies reading outside the workspace by absolute path', { action: 'read', path: '/etc/passwd' }, 'deny', ['outside-workspace']],
  ['denies reading outside the workspace through ..', { action: 'read', path: '../elsewhere/secret.txt' }, 'deny', ['outside-workspace']],
  ['denies reading through a symlinked directory that points outside', { action: 'read', path: 'link-out/secret.txt' }, 'deny', ['outside-workspace']],
  ['denies writing outside the workspace', { action: 'write', path: '/tmp/x' }, 'deny', ['outside-workspace']],
  ['denies moving a file out of the workspace (destination checked)', { action: 'move', path: 'README.md', destination: '../elsewhere/r.md' }, 'deny', ['outside-workspace']],
  ['denies reading .env', { action: 'read', path: '.env' }, 'deny', ['secret-env-files']],
  ['denies listing .env', { action: 'list', path: '.env' }, 'deny', ['secret-env-files']],
  ['denies .env in any case (case-insensitive file systems)', { action: 'read', path: '.ENV.LOCAL' }, 'deny', ['secret-env-files']],
  ['denies writing a new .env.production', { action: 'write', path: 'config/.env.production' }, 'deny', ['secret-env-files']],
  ['denies moving a file onto .env', { action: 'move', path: 'README.md', destination: '.env' }, 'deny', ['secret-env-files']],
  ['denies reading a PEM key', { action: 'read', path: 'certs/server.pem' }, 'deny', ['secret-private-keys']],
  ['denies reading an ed25519 private key', { action: 'read', path: 'deploy/id_ed25519' }, 'deny', ['secret-private-keys']],
  ['denies reading an ssh config', { action: 'read', path: 'home/.ssh/config' }, 'deny', ['secret-credential-stores']],
  ['denies listing a .ssh directory', { action: 'list', path: 'home/.ssh' }, 'deny', ['secret-credential-stores']],
  ['denies reading AWS credentials', { action: 'read', path: 'home/.aws/credentials' }, 'deny', ['secret-credential-stores']],
  ['denies reading Tether\'s audit log inside the workspace', { action: 'read', path: '.tether-data/audit/audit.jsonl' }, 'deny', ['tether-protected']],
  ['denies deleting Tether\'s data directory', { action: 'delete', path: '.tether-data' }, 'deny', ['tether-protected']],
  ['denies writing a git hook', { action: 'write', path: '.git/hooks/pre-commit' }, 'deny', ['git-hooks-and-config']],
  ['denies writing .git/config', { action: 'write', path: '.git/config' }, 'deny', ['git-hooks-and-config']],
  ['denies deleting the hooks directory', { action: 'delete', path: '.git/hooks' }, 'deny', ['git-hooks-and-config']],
  ['denies writing a submodule hook', { action: 'write', path: '.git/modules/lib/hooks/post-checkout' }, 'deny', ['git-hooks-and-config']],
  ['denies moving a script into .git/hooks', { action: 'move', path: 'README.md', destination: '.git/hooks/pre-push' }, 'deny', ['git-hooks-and-config']],
  ['asks before running a command in the workspace', { action: 'exec', command: 'npm test' }, 'ask', ['command']],
  ['asks before running a command in a subdirectory', { action: 'exec', command: 'ls -la', cwd: 'src' }, 'ask', ['command']],
  ['denies a command whose working directory is outside', { action: 'exec', command: 'ls', cwd: '/' }, 'deny', ['command-outside-workspace']],
  ['allows a model call to the configured provider', { action: 'model', url: 'https://api.anthropic.com/v1/messages' }, 'allow', ['model-provider']],
  ['denies a model call beside the provider base path', { action: 'model', url: 'https://api.anthropic.com/v1beta/messages' }, 'deny', ['model-other-endpoint']],
  ['denies a model call to another host', { action: 'model', url: 'https://api.example.com/v1/messages' }, 'deny', ['model-other-endpoint']],
  ['denies a model call to another port of the provider host', { action: 'model', url: 'https://api.anthropic.com:8443/v1/messages' }, 'deny', ['model-other-endpoint']],
  ['asks before other network access', { action: 'net', url: 'https://registry.npmjs.org/zod' }, 'ask', ['network']],
  ['denies the cloud metadata endpoint', { action: 'net', url: 'http://169.254.169.254/latest/meta-data/' }, 'deny', ['network-cloud-metadata']],
  ['denies the IPv6 cloud metadata endpoint', { action: 'net', url: 'http://[fd00:ec2::254]/latest' }, 'deny', ['network-cloud-metadata']],
];

describe('CedarPolicyEngine with the default policy', () => {
  it.each(DEFAULT_CASES)('%s', async (_name, input, effect, policyIds) => {
    const [fast, ref] = await engine();
    const request = await req(input);
    const d = fast.decide(request);
    expect({ effect: d.effect, policyIds: d.policyIds, errors: d.errors }).toEqual({ effect, policyIds, errors: undefined });
    expect(d.reason).toBe(policyIds.map((id) => fast.rule(id)!.description).join(' '));
    expect(ref.decide(request)).toEqual(d);
  });

  it('gives the same decision from the memo as from Cedar, and keeps paths apart', async () => {
    const [cached] = await engine();
    const [uncached] = await engine({ cacheSize: 0 });
    for (let round = 0; round < 2; round++) {
      for (const [, input] of DEFAULT_CASES) {
        const r = await req(input);
        expect(cached.decide(r)).toEqual(uncached.decide(r));
      }
    }
  });

  it('names every rule with a description written for the dialog', async () => {
    const [fast] = await engine();
    const rules = fast.rules().filter((r) => r.source === 'default');
    expect(rules.length).toBeGreaterThanOrEqual(15);
    for (const r of rules) {
      expect(r.description, r.id).not.toBe(r.id);
      expect(r.description.length, r.id).toBeGreaterThan(30);
      expect(r.file).toMatch(/resources\/policy\/default(-commands)?\.cedar$/);
    }
  });

  it('protects the policy files it loaded, even inside the workspace', async () => {
    const userFile = join(ws, 'team.cedar');
    await writeFile(userFile, '@id("team-note")\n@description("Nothing.")\nforbid (principal, action, resource is Tether::File) when { resource.relPath == "never" };\n');
    const e = await CedarPolicyEngine.load({ userFiles: [userFile] });
    expect(e.decide(await req({ action: 'read', path: 'team.cedar' }))).toMatchObject({ effect: 'deny', policyIds: ['tether-protected'] });
    expect(e.decide(await req({ action: 'write', path: 'team.cedar' }))).toMatchObject({ effect: 'deny', policyIds: ['tether-protected'] });
  });
});

describe('CedarPolicyEngine fails closed on requests it cannot decide', () => {
  const base = { id: 'r1', sessionId: 's1', method: 'x', workspace: '/w', trace: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), flags: '01' } };
  it.each([
    ['a read without a target', { ...base, action: 'read', kind: 'read' }, /has no target path/],
    ['a move without a destination', { ...base, action: 'move', kind: 'write', target: { path: '/w/a', relPath: 'a', inWorkspace: true, exists: true } }, /no destination/],
    ['an exec without a command', { ...base, action: 'exec', kind: 'exec' }, /no command/],
    ['a net request with a URL that does not parse', { ...base, action: 'net', kind: 'net', url: 'not a url' }, /does not parse/],
    ['an unknown action', { ...base, action: 'format-disk', kind: 'write', target: { path: '/w/a', relPath: 'a', inWorkspace: true, exists: true } }, /unknown action/],
    ['a request that is not an object', null, /could not decide/],
  ])('denies %s with an error instead of throwing', async (_name, request, message) => {
    const [fast, ref] = await engine();
    for (const e of [fast, ref]) {
      const d = e.decide(request as unknown as CapabilityRequest);
      expect(d.effect).toBe('deny');
      expect(d.errors?.length).toBeGreaterThan(0);
      expect(d.reason).toMatch(message);
    }
  });
});

describe('protected paths', () => {
  it('match the canonical path of a protected directory given through a symlink', async () => {
    const viaLink = join(ws, 'data-link');
    await symlink(tetherData, viaLink);
    const e = await CedarPolicyEngine.load({ protectedPaths: [join(viaLink, 'audit')] });
    expect(e.decide(await req({ action: 'read', path: '.tether-data/audit/audit.jsonl' }))).toMatchObject({ effect: 'deny', policyIds: ['tether-protected'] });
    expect(e.decide(await req({ action: 'read', path: 'src/index.ts' }))).toMatchObject({ effect: 'allow' });
  });
});
