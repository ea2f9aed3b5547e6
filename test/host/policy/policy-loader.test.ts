// A policy that does not parse or validate stops Tether with file:line:column
// and the problem; so do missing or duplicate ids, @ask on a forbid, templates,
// a broken schema, and a schema that disagrees with the request mapping.

import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CedarPolicyEngine, DEFAULT_POLICY_DIR, SCHEMA_FILE } from '../../../src/host/policy/cedar-policy-engine.ts';
import { PolicyLoadError } from '../../../src/host/policy/policy-engine.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-loader-'));
});

let n = 0;
async function write(text: string, name = `p${++n}.cedar`): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

async function loadError(load: Promise<unknown>): Promise<PolicyLoadError> {
  const e = await load.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(PolicyLoadError);
  return e as PolicyLoadError;
}

describe('loading policy files', () => {
  it.each([
    [
      'a syntax error',
      '// team policy\n@id("a")\npermit (principal, action, resource)\nwhn { true };\n',
      4, 1, /invalid policy condition: whn/,
    ],
    [
      'an unknown attribute, after non-ASCII text (Cedar reports byte offsets)',
      '@id("a")\n@description("Écrire — autorisé")\npermit (principal, action == Tether::Action::"write", resource is Tether::File)\nwhen { resource.inWorkspac };\n',
      4, 8, /attribute `inWorkspac` on entity type `Tether::File` not found.*did you mean `inWorkspace`/,
    ],
    [
      'a type error in the second policy of a file',
      '@id("a") permit (principal, action == Tether::Action::"read", resource);\n\n@id("b")\nforbid (principal, action == Tether::Action::"exec", resource is Tether::Command)\nwhen { resource.line > 3 };\n',
      5, 8, /expected.*Long|type/i,
    ],
    [
      'an unknown action',
      '\n@id("a") permit (principal, action == Tether::Action::"format", resource);\n',
      2, 39, /unrecognized action|format/,
    ],
    [
      'a policy without @id',
      '@id("a") permit (principal, action == Tether::Action::"read", resource);\n  @description("no id")\n  permit (principal, action == Tether::Action::"list", resource);\n',
      2, 3, /no @id\("\.\.\."\) annotation/,
    ],
    [
      'an empty @id',
      '@id("  ") permit (principal, action == Tether::Action::"read", resource);\n',
      1, 1, /no @id/,
    ],
    [
      'a duplicate @id in one file',
      '@id("same") permit (principal, action == Tether::Action::"read", resource);\n@id("same") permit (principal, action == Tether::Action::"list", resource);\n',
      2, 1, /duplicate policy id "same", already used at .*:1:1/,
    ],
    [
      '@ask on a forbid',
      '@id("f") @ask forbid (principal, action == Tether::Action::"read", resource);\n',
      1, 1, /forbid annotated @ask/,
    ],
    [
      'a template',
      '@id("t") permit (principal == ?principal, action == Tether::Action::"read", resource);\n',
      1, 1, /templates .* are not supported/,
    ],
  ])('refuses %s, naming file:line:column', async (_name, text, line, column, message) => {
    const file = await write(text);
    const e = await loadError(CedarPolicyEngine.load({ userFiles: [file] }));
    expect(e.file).toBe(file);
    expect([e.line, e.column]).toEqual([line, column]);
    expect(e.message.startsWith(`${file}:${line}:${column}: `)).toBe(true);
    expect(e.message).toMatch(message);
  });

  it('refuses an id already used by the default policy, blaming the user file', async () => {
    const file = await write('\n@id("workspace-read")\npermit (principal, action == Tether::Action::"read", resource);\n');
    const e = await loadError(CedarPolicyEngine.load({ userFiles: [file] }));
    expect([e.file, e.line, e.column]).toEqual([file, 2, 1]);
    expect(e.message).toMatch(/"workspace-read" is already used by the default policy at .*default\.cedar:\d+:1/);
  });

  it('refuses the same id in a managed and a user file', async () => {
    const managed = await write('@id("x") forbid (principal, action == Tether::Action::"exec", resource);\n');
    const user = await write('@id("x") permit (principal, action == Tether::Action::"exec", resource);\n');
    const e = await loadError(CedarPolicyEngine.load({ managedFiles: [managed], userFiles: [user] }));
    expect(e.file).toBe(user);
    expect(e.message).toContain(`already used at ${managed}:1:1`);
  });

  it('refuses a policy file that does not exist', async () => {
    const e = await loadError(CedarPolicyEngine.load({ userFiles: [join(dir, 'missing.cedar')] }));
    expect(e.message).toMatch(/missing\.cedar: cannot read user policy: the file does not exist/);
  });

  it('loads a valid user file and reports its rules with file and line', async () => {
    const file = await write('// ok\n\n@id("u1")\n@description("User rule.")\npermit (principal, action == Tether::Action::"read", resource);\n');
    const e = await CedarPolicyEngine.load({ userFiles: [file] });
    expect(e.rule('u1')).toEqual({ id: 'u1', description: 'User rule.', source: 'user', file, line: 3, effect: 'permit', ask: false });
    expect(e.rule('workspace-write')).toMatchObject({ source: 'default', ask: true, effect: 'permit' });
    expect(e.files.map((f) => f.source)).toEqual(['user', 'default', 'default']);
  });

  it('reports validation warnings without refusing', async () => {
    const file = await write('@id("never") permit (principal, action == Tether::Action::"read", resource) when { false };\n');
    const e = await CedarPolicyEngine.load({ userFiles: [file] });
    expect(e.warnings).toEqual([expect.objectContaining({ file, line: 1, message: expect.stringMatching(/impossible/) })]);
  });
});

describe('loading the schema', () => {
  async function defaultDirWith(schema: string): Promise<string> {
    const d = join(dir, `default-${++n}`);
    await mkdir(d);
    await copyFile(join(DEFAULT_POLICY_DIR, 'default.cedar'), join(d, 'default.cedar'));
    await writeFile(join(d, SCHEMA_FILE), schema);
    return d;
  }

  it('refuses a schema that does not parse, naming file:line:column', async () => {
    const original = await readFile(join(DEFAULT_POLICY_DIR, SCHEMA_FILE), 'utf8');
    const broken = original.replace('inWorkspace: Bool,', 'inWorkspace: Bool');
    const d = await defaultDirWith(broken);
    const e = await loadError(CedarPolicyEngine.load({ defaultDir: d }));
    expect(e.file).toBe(join(d, SCHEMA_FILE));
    expect(e.line).toBe(original.split('\n').findIndex((l) => l.includes('inWorkspace: Bool,')) + 2);
    expect(e.message).toMatch(/tether\.cedarschema:\d+:\d+: .*unexpected token/);
  });

  it('refuses a schema whose attributes differ from what Tether fills in', async () => {
    const original = await readFile(join(DEFAULT_POLICY_DIR, SCHEMA_FILE), 'utf8');
    const d = await defaultDirWith(original.replace('hardLinked: Bool,', 'hardLinked: Bool,\n    owner: String,'));
    const e = await loadError(CedarPolicyEngine.load({ defaultDir: d }));
    expect(e.message).toMatch(/entity File attributes differ .*not filled in by Tether: owner/);
  });

  it('refuses a schema that lacks an action', async () => {
    const original = await readFile(join(DEFAULT_POLICY_DIR, SCHEMA_FILE), 'utf8');
    const d = await defaultDirWith(original.replace('action net, model', 'action net'));
    const e = await loadError(CedarPolicyEngine.load({ defaultDir: d }));
    expect(e.message).toMatch(/does not declare action "model"/);
  });

  it('refuses a missing default policy directory', async () => {
    const e = await loadError(CedarPolicyEngine.load({ defaultDir: join(dir, 'nope') }));
    expect(e.message).toMatch(/cannot read the policy schema: the file does not exist/);
  });
});
