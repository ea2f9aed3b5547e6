// Managed → user → default: forbids from any source win; among permits, the
// highest-precedence source with a match decides between ask and allow.
// Also: action groups, `action`/`context` in conditions, and evaluation
// errors (which deny), on the fast and the reference engine alike.

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CapabilityRequest } from '../../../src/common/capability.ts';
import type { PolicyEffect } from '../../../src/common/decision.ts';
import { CedarPolicyEngine } from '../../../src/host/policy/cedar-policy-engine.ts';
import { requestFromInput, type PolicyRequestInput } from '../../../src/host/policy/policy-request-input.ts';

let dir: string;
const WS = '/home/dev/project';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-precedence-'));
});

async function policyFile(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

async function both(opts: { user?: string; managed?: string; providers?: string[] }): Promise<CedarPolicyEngine[]> {
  const userFiles = opts.user ? [await policyFile(`user-${Math.random().toString(36).slice(2)}.cedar`, opts.user)] : [];
  const managedFiles = opts.managed ? [await policyFile(`managed-${Math.random().toString(36).slice(2)}.cedar`, opts.managed)] : [];
  const base = { userFiles, managedFiles, modelProviders: opts.providers ?? [] };
  return [await CedarPolicyEngine.load(base), await CedarPolicyEngine.load({ ...base, reference: true })];
}

function req(input: PolicyRequestInput): Promise<CapabilityRequest> {
  return requestFromInput({ workspace: WS, ...input }, '/');
}

async function expectDecision(engines: CedarPolicyEngine[], input: PolicyRequestInput, effect: PolicyEffect, policyIds: string[]): Promise<void> {
  const request = await req(input);
  for (const e of engines) {
    const d = e.decide(request);
    expect({ effect: d.effect, policyIds: d.policyIds }).toEqual({ effect, policyIds });
  }
}

const USER_WRITE_SRC = `
@id("user-write-src")
@description("Writes under src/ are fine in this project.")
permit (principal, action == Tether::Action::"write", resource is Tether::File)
when { resource.inWorkspace && resource.relPath like "src/*" };
`;

describe('policy precedence', () => {
  it('lets a user permit without @ask turn the default "ask" into allow, only where it matches', async () => {
    const engines = await both({ user: USER_WRITE_SRC });
    await expectDecision(engines, { action: 'write', path: 'src/a.ts' }, 'allow', ['user-write-src']);
    await expectDecision(engines, { action: 'write', path: 'docs/a.md' }, 'ask', ['workspace-write']);
  });

  it('never lets a user permit undo a default forbid', async () => {
    const engines = await both({
      user: `@id("user-read-env") @description("Let the agent read .env.")
permit (principal, action == Tether::Action::"read", resource is Tether::File) when { resource.name == ".env" };`,
    });
    await expectDecision(engines, { action: 'read', path: '.env' }, 'deny', ['secret-env-files']);
  });

  it('never lets a user permit undo a managed forbid', async () => {
    const engines = await both({
      managed: `@id("it-no-deletes") @description("IT: the agent may not delete files.")
forbid (principal, action == Tether::Action::"delete", resource);`,
      user: `@id("user-delete-build") @description("Deleting build output is fine.")
permit (principal, action == Tether::Action::"delete", resource is Tether::File) when { resource.relPath like "build/*" };`,
    });
    await expectDecision(engines, { action: 'delete', path: 'build/out.js' }, 'deny', ['it-no-deletes']);
  });

  it('keeps a managed "ask" an ask even when a user permit would allow', async () => {
    const engines = await both({
      managed: `@id("it-ask-network") @ask @description("IT: network calls need consent.")
permit (principal, action == Tether::Action::"net", resource is Tether::Host);`,
      user: `@id("user-allow-npm") @description("npm registry is fine.")
permit (principal, action == Tether::Action::"net", resource is Tether::Host) when { resource.host == "registry.npmjs.org" };`,
    });
    await expectDecision(engines, { action: 'net', url: 'https://registry.npmjs.org/zod' }, 'ask', ['it-ask-network']);
  });

  it('lets a managed "ask" make an allowed default ask', async () => {
    const engines = await both({
      managed: `@id("it-ask-reads-docs") @ask @description("IT: reading docs/ needs consent.")
permit (principal, action == Tether::Action::"read", resource is Tether::File) when { resource.relPath like "docs/*" };`,
    });
    await expectDecision(engines, { action: 'read', path: 'docs/x.md' }, 'ask', ['it-ask-reads-docs']);
    await expectDecision(engines, { action: 'read', path: 'src/x.ts' }, 'allow', ['workspace-read']);
  });

  it('lets a user @ask make an allowed default ask', async () => {
    const engines = await both({
      user: `@id("user-ask-lockfile") @ask @description("Ask before reading the lockfile.")
permit (principal, action in Tether::Action::"fs-read", resource is Tether::File) when { resource.name == "package-lock.json" };`,
    });
    await expectDecision(engines, { action: 'read', path: 'package-lock.json' }, 'ask', ['user-ask-lockfile']);
  });

  it('reports every matching forbid across sources', async () => {
    const engines = await both({
      managed: `@id("it-no-env") @description("IT: never .env.") forbid (principal, action, resource is Tether::File) when { resource.name like ".env*" };`,
    });
    await expectDecision(engines, { action: 'read', path: '.env' }, 'deny', ['it-no-env', 'secret-env-files']);
  });

  it('matches action groups in a user forbid', async () => {
    const engines = await both({
      user: `@id("user-docs-read-only") @description("docs/ is read-only.")
forbid (principal, action in Tether::Action::"fs-write", resource is Tether::File) when { resource.relPath like "docs/*" };`,
    });
    await expectDecision(engines, { action: 'write', path: 'docs/a.md' }, 'deny', ['user-docs-read-only']);
    await expectDecision(engines, { action: 'move', path: 'src/a.ts', destination: 'docs/a.ts' }, 'deny', ['user-docs-read-only']);
    await expectDecision(engines, { action: 'read', path: 'docs/a.md' }, 'allow', ['workspace-read']);
  });

  it('evaluates `action` and `context` inside conditions', async () => {
    const engines = await both({
      user: `@id("user-no-delete-by-condition") @description("No deletes under keep/.")
forbid (principal, action, resource is Tether::File)
when { action in Tether::Action::"fs-write" && action != Tether::Action::"write" && resource.relPath like "keep/*" };

@id("user-no-move-into-vendor") @description("Nothing is moved into vendor/.")
forbid (principal, action == Tether::Action::"move", resource is Tether::File)
when { context.role == "destination" && resource.relPath like "vendor/*" };

@id("user-allow-readme-writes") @description("README writes are fine.")
permit (principal, action == Tether::Action::"write", resource is Tether::File)
when { context has method && context.method == "fs/write_text_file" && resource.name == "README.md" };`,
    });
    await expectDecision(engines, { action: 'delete', path: 'keep/a' }, 'deny', ['user-no-delete-by-condition']);
    await expectDecision(engines, { action: 'write', path: 'keep/a' }, 'ask', ['workspace-write']);
    await expectDecision(engines, { action: 'move', path: 'vendor/a', destination: 'src/a' }, 'ask', ['workspace-move']);
    await expectDecision(engines, { action: 'move', path: 'src/a', destination: 'vendor/a' }, 'deny', ['user-no-move-into-vendor']);
    await expectDecision(engines, { action: 'write', path: 'README.md' }, 'allow', ['user-allow-readme-writes']);
  });

  it('decides on command words and hosts', async () => {
    const engines = await both({
      providers: ['http://127.0.0.1:11434/v1'],
      user: `@id("user-git-status") @description("git status is harmless.")
permit (principal, action == Tether::Action::"exec", resource is Tether::Command)
when { resource.program == "git" && resource.args == ["status"] && resource.cwdInWorkspace };

@id("user-no-plain-http") @description("No plain HTTP.")
forbid (principal, action == Tether::Action::"net", resource is Tether::Host) when { resource.scheme == "http" && !resource.loopback };`,
    });
    await expectDecision(engines, { action: 'exec', command: 'git status' }, 'allow', ['user-git-status']);
    await expectDecision(engines, { action: 'exec', command: 'git push' }, 'ask', ['command']);
    await expectDecision(engines, { action: 'net', url: 'http://example.com/' }, 'deny', ['user-no-plain-http']);
    await expectDecision(engines, { action: 'net', url: 'http://localhost:3000/' }, 'ask', ['network']);
    await expectDecision(engines, { action: 'model', url: 'http://127.0.0.1:11434/v1/chat/completions' }, 'allow', ['model-provider']);
  });
});

describe('evaluation errors', () => {
  it('deny with the error, even when another permit matches', async () => {
    const engines = await both({
      user: `@id("user-overflow") @description("Overflows at run time.")
permit (principal, action == Tether::Action::"net", resource is Tether::Host)
when { resource.port * 9223372036854775807 > 0 };`,
    });
    const request = await req({ action: 'net', url: 'https://example.com/' });
    for (const e of engines) {
      const d = e.decide(request);
      expect(d.effect).toBe('deny');
      expect(d.policyIds).toEqual(['user-overflow']);
      expect(d.errors?.[0]).toMatch(/user-overflow.*overflow/i);
      expect(d.reason).toMatch(/could not be evaluated/);
    }
    // Requests the broken policy does not reach are unaffected.
    const read = await req({ action: 'read', path: 'src/a.ts' });
    for (const e of engines) expect(e.decide(read)).toMatchObject({ effect: 'allow', policyIds: ['workspace-read'] });
  });
});
