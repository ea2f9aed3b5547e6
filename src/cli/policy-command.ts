// `tether policy …`: try policy without running an agent.
//
//   tether policy validate FILE...                      parse + strict schema check
//   tether policy test FILE.json... [--policy F]...     example requests vs expected decisions
//   tether policy explain --action A (--path P | --command C | --url U) ...
//
// Exit codes: 0 ok, 1 a test failed or a policy does not load, 2 usage error.

import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CapabilityAction } from '../common/capability.ts';
import type { PolicyEffect } from '../common/decision.ts';
import { CedarPolicyEngine, type CedarPolicyEngineOptions, type PartExplanation, type PolicyExplanation } from '../host/policy/cedar-policy-engine.ts';
import { PolicyLoadError } from '../host/policy/policy-engine.ts';
import { ACTIONS, requestFromInput, type PolicyRequestInput } from '../host/policy/policy-request-input.ts';

export interface CommandIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

export const POLICY_HELP = `Usage: tether policy <command> [options]

Commands:
  validate FILE...              Parse FILE(s) and check them against the schema (strict),
                                together with the default policy (ids must be unique).
  test FILE.json...             Run example requests and compare with the expected decisions
                                (like \`opa test\`). Exit 1 if any case fails.
  explain --action A TARGET     Show the decision for one request and why.

Options (test, explain, validate):
  --policy FILE                 Add user policy (repeatable).
  --managed FILE                Add managed policy (repeatable; highest precedence).
  --default-dir DIR             Use another default policy directory (default: resources/policy).
  --provider-url URL            Base URL of the configured model provider (repeatable).
  --protected PATH              A path no file action may touch (repeatable).

Options (explain):
  --action A                    ${ACTIONS.join(' | ')}
  --path P                      Target path, relative to the workspace or absolute.
  --destination P               Move destination.
  --command "LINE"              Command line (exec); --cwd DIR sets its working directory.
  --url URL                     Destination (net, model).
  --workspace DIR               Workspace root (default: current directory).
  --json                        Print the explanation as JSON.

Test file (JSON):
  { "workspace": "/home/dev/project", "policies": ["extra.cedar"], "modelProviders": ["https://api.anthropic.com"],
    "cases": [ { "name": "reads a source file", "request": { "action": "read", "path": "src/index.ts" },
                 "expect": "allow", "policyIds": ["workspace-read"] } ] }
  A case request may also set destination, command, cwd, url, workspace, exists, type, hardLinked.
  "workspace", "policies" and "managed" are relative to the test file; a bare array of cases is accepted too.
`;

const OPTIONS = {
  policy: { type: 'string', multiple: true },
  managed: { type: 'string', multiple: true },
  'default-dir': { type: 'string' },
  'provider-url': { type: 'string', multiple: true },
  protected: { type: 'string', multiple: true },
  action: { type: 'string' },
  path: { type: 'string' },
  destination: { type: 'string' },
  command: { type: 'string' },
  cwd: { type: 'string' },
  url: { type: 'string' },
  workspace: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(args: string[]) {
  return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
}

class UsageError extends Error {}

export async function runPolicyCommand(args: string[], io: CommandIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (e) {
    io.stderr(`tether policy: ${(e as Error).message}\n\n${POLICY_HELP}`);
    return 2;
  }
  const [command, ...files] = parsed.positionals;
  if (parsed.values.help || command === undefined || command === 'help') {
    io.stdout(POLICY_HELP);
    return command === undefined && !parsed.values.help ? 2 : 0;
  }
  try {
    switch (command) {
      case 'validate':
        return await validate(files, parsed.values, io);
      case 'test':
        return await test(files, parsed.values, io);
      case 'explain':
        if (files.length > 0) throw new UsageError(`explain takes no positional arguments (got ${files.join(' ')})`);
        return await explain(parsed.values, io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`tether policy: ${e.message}\n\n${POLICY_HELP}`);
      return 2;
    }
    if (e instanceof PolicyLoadError) {
      io.stderr(`tether policy: invalid policy: ${e.message}\n`);
      return 1;
    }
    io.stderr(`tether policy: ${(e as Error).message}\n`);
    return 1;
  }
}

function engineOptions(v: Values, extra: { userFiles?: string[]; managedFiles?: string[]; modelProviders?: string[]; protectedPaths?: string[] } = {}): CedarPolicyEngineOptions {
  return {
    ...(v['default-dir'] ? { defaultDir: v['default-dir'] } : {}),
    userFiles: [...(v.policy ?? []), ...(extra.userFiles ?? [])],
    managedFiles: [...(v.managed ?? []), ...(extra.managedFiles ?? [])],
    modelProviders: [...(v['provider-url'] ?? []), ...(extra.modelProviders ?? [])],
    protectedPaths: [...(v.protected ?? []), ...(extra.protectedPaths ?? [])],
  };
}

// ── validate ───────────────────────────────────────────────────────────────

async function validate(files: string[], v: Values, io: CommandIo): Promise<number> {
  if (files.length === 0 && !v.policy && !v.managed) throw new UsageError('validate needs at least one policy file');
  const engine = await CedarPolicyEngine.load(engineOptions(v, { userFiles: files }));
  for (const w of engine.warnings) io.stdout(`warning: ${w.file}:${w.line}:${w.column}: ${w.message}\n`);
  for (const { file, source } of engine.files) {
    if (source === 'default' && files.length > 0) continue;
    const count = engine.rules().filter((r) => r.file === file).length;
    io.stdout(`ok  ${display(file)}  (${source}, ${count} ${count === 1 ? 'policy' : 'policies'})\n`);
  }
  return 0;
}

// ── test ───────────────────────────────────────────────────────────────────

interface TestCase {
  readonly name: string;
  readonly request: PolicyRequestInput;
  readonly expect: PolicyEffect;
  readonly policyIds?: readonly string[];
}

interface TestFile {
  readonly workspace?: string;
  readonly policies?: readonly string[];
  readonly managed?: readonly string[];
  readonly modelProviders?: readonly string[];
  readonly protectedPaths?: readonly string[];
  readonly cases: readonly TestCase[];
}

async function test(files: string[], v: Values, io: CommandIo): Promise<number> {
  if (files.length === 0) throw new UsageError('test needs at least one test file (JSON)');
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    const path = resolve(file);
    const suite = parseTestFile(path, await readFile(path, 'utf8'));
    const dir = dirname(path);
    const engine = await CedarPolicyEngine.load(engineOptions(v, {
      userFiles: (suite.policies ?? []).map((p) => resolve(dir, p)),
      managedFiles: (suite.managed ?? []).map((p) => resolve(dir, p)),
      modelProviders: [...(suite.modelProviders ?? [])],
      protectedPaths: (suite.protectedPaths ?? []).map((p) => resolve(dir, p)),
    }));
    io.stdout(`${display(path)}\n`);
    for (const c of suite.cases) {
      const problem = await runCase(engine, c, suite, dir);
      if (problem === undefined) {
        passed++;
        io.stdout(`  PASS  ${c.name}\n`);
      } else {
        failed++;
        io.stdout(`  FAIL  ${c.name}\n        ${problem}\n`);
      }
    }
  }
  io.stdout(`\n${failed === 0 ? 'PASS' : 'FAIL'}: ${passed}/${passed + failed} cases passed\n`);
  return failed === 0 ? 0 : 1;
}

async function runCase(engine: CedarPolicyEngine, c: TestCase, suite: TestFile, dir: string): Promise<string | undefined> {
  let request;
  try {
    request = await requestFromInput({ ...c.request, workspace: c.request.workspace ?? suite.workspace ?? '.' }, dir);
  } catch (e) {
    return `bad request: ${(e as Error).message}`;
  }
  const d = engine.decide(request);
  const got = `got ${d.effect} (${d.policyIds.join(', ') || 'no policy'}): ${d.reason}`;
  if (d.effect !== c.expect) return `expected ${c.expect}, ${got}`;
  if (c.policyIds) {
    const want = [...c.policyIds].sort();
    const have = [...d.policyIds].sort();
    if (want.length !== have.length || want.some((id, i) => id !== have[i])) return `expected policies [${want.join(', ')}], ${got}`;
  }
  return undefined;
}

const EFFECTS: readonly string[] = ['allow', 'ask', 'deny'];
const TYPES: readonly string[] = ['file', 'directory', 'symlink', 'other'];

function parseTestFile(file: string, text: string): TestFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  const suite = (Array.isArray(json) ? { cases: json } : json) as Record<string, unknown>;
  const bad = (where: string, what: string) => new Error(`${file}: ${where}: ${what}`);
  if (typeof suite !== 'object' || suite === null || !Array.isArray(suite.cases)) throw bad('top level', 'expected an array of cases or an object with "cases"');
  for (const key of ['policies', 'managed', 'modelProviders', 'protectedPaths'] as const) {
    const list = suite[key];
    if (list !== undefined && !(Array.isArray(list) && list.every((x) => typeof x === 'string'))) throw bad(key, 'expected an array of strings');
  }
  if (suite.workspace !== undefined && typeof suite.workspace !== 'string') throw bad('workspace', 'expected a string');
  suite.cases.forEach((raw: unknown, i: number) => {
    const c = raw as Record<string, unknown>;
    const where = `case ${i + 1}${typeof c?.name === 'string' ? ` ("${c.name}")` : ''}`;
    if (typeof c !== 'object' || c === null) throw bad(where, 'expected an object');
    if (typeof c.name !== 'string' || c.name === '') throw bad(where, '"name" must be a non-empty string');
    if (typeof c.expect !== 'string' || !EFFECTS.includes(c.expect)) throw bad(where, '"expect" must be "allow", "ask" or "deny"');
    if (c.policyIds !== undefined && !(Array.isArray(c.policyIds) && c.policyIds.every((x) => typeof x === 'string'))) throw bad(where, '"policyIds" must be an array of strings');
    const r = c.request as Record<string, unknown> | undefined;
    if (typeof r !== 'object' || r === null) throw bad(where, '"request" must be an object');
    if (typeof r.action !== 'string' || !ACTIONS.includes(r.action as CapabilityAction)) throw bad(where, `"request.action" must be one of ${ACTIONS.join(', ')}`);
    for (const k of ['path', 'destination', 'workspace', 'command', 'cwd', 'url', 'session', 'method']) {
      if (r[k] !== undefined && typeof r[k] !== 'string') throw bad(where, `"request.${k}" must be a string`);
    }
    for (const k of ['exists', 'hardLinked']) {
      if (r[k] !== undefined && typeof r[k] !== 'boolean') throw bad(where, `"request.${k}" must be true or false`);
    }
    if (r.type !== undefined && !TYPES.includes(r.type as string)) throw bad(where, `"request.type" must be one of ${TYPES.join(', ')}`);
    const known = new Set(['action', 'path', 'destination', 'workspace', 'command', 'cwd', 'url', 'session', 'method', 'exists', 'type', 'hardLinked']);
    const unknown = Object.keys(r).filter((k) => !known.has(k));
    if (unknown.length > 0) throw bad(where, `unknown request field(s): ${unknown.join(', ')}`);
  });
  return suite as unknown as TestFile;
}

// ── explain ────────────────────────────────────────────────────────────────

async function explain(v: Values, io: CommandIo): Promise<number> {
  if (!v.action) throw new UsageError('explain needs --action');
  if (!ACTIONS.includes(v.action as CapabilityAction)) throw new UsageError(`--action must be one of ${ACTIONS.join(', ')}`);
  const targets = [v.path, v.command, v.url].filter((t) => t !== undefined).length;
  if (targets !== 1) throw new UsageError('explain needs exactly one of --path, --command, --url');
  const engine = await CedarPolicyEngine.load(engineOptions(v));
  let request;
  try {
    request = await requestFromInput({
      action: v.action as CapabilityAction,
      ...(v.path !== undefined ? { path: v.path } : {}),
      ...(v.destination !== undefined ? { destination: v.destination } : {}),
      ...(v.command !== undefined ? { command: v.command } : {}),
      ...(v.cwd !== undefined ? { cwd: v.cwd } : {}),
      ...(v.url !== undefined ? { url: v.url } : {}),
      ...(v.workspace !== undefined ? { workspace: v.workspace } : {}),
    }, process.cwd());
  } catch (e) {
    throw new UsageError((e as Error).message, { cause: e });
  }
  const x = engine.explain(request);
  if (v.json) {
    io.stdout(`${JSON.stringify({ request, ...x, rules: x.decision.policyIds.map((id) => engine.rule(id)) }, null, 2)}\n`);
    return 0;
  }
  io.stdout(formatExplanation(engine, x));
  return 0;
}

export function formatExplanation(engine: CedarPolicyEngine, x: PolicyExplanation): string {
  const out: string[] = [];
  const d = x.decision;
  out.push(`decision: ${d.effect.toUpperCase()}`);
  out.push(`reason:   ${d.reason}`);
  if (d.policyIds.length > 0) {
    out.push('determined by:');
    for (const id of d.policyIds) out.push(...ruleLines(engine, id, '  '));
  }
  for (const e of d.errors ?? []) out.push(`error:    ${e}`);
  for (const p of x.parts) {
    out.push('');
    out.push(`${x.parts.length > 1 && p.role === 'target' ? 'source ' : ''}${p.subject} → ${p.effect}`);
    out.push(...whyLines(engine, p).map((l) => `  ${l}`));
    out.push('  as Cedar sees it:');
    out.push(`    principal ${uid(p.cedar.principal)}`);
    out.push(`    action    ${uid(p.cedar.action)}`);
    out.push(`    resource  ${uid(p.cedar.resource)}`);
    for (const [k, val] of Object.entries(p.cedar.resourceAttrs)) out.push(`      .${k} = ${JSON.stringify(val)}`);
    out.push(`    context   ${JSON.stringify(p.cedar.context)}`);
  }
  return `${out.join('\n')}\n`;
}

function whyLines(engine: CedarPolicyEngine, p: PartExplanation): string[] {
  if (p.errors.length > 0) return ['a policy could not be evaluated, and Tether denies rather than guess:', ...p.errors.map((e) => `  ${e}`)];
  if (p.forbids.length > 0) {
    return ['a forbid matched; a forbid from any source overrides every permit:', ...p.forbids.flatMap((id) => ruleLines(engine, id, '  '))];
  }
  if (p.permits.length === 0) return ['no permit matched, and Tether denies whatever no policy permits.'];
  const lines = ['no forbid matched; matching permits:', ...p.permits.flatMap((id) => ruleLines(engine, id, '  '))];
  const asking = p.policyIds.filter((id) => engine.rule(id)?.ask);
  lines.push(`the highest-precedence source with a matching permit is "${p.decidingSource}" (managed → user → default); ` +
    (asking.length > 0 ? `its permit(s) ${asking.join(', ')} are @ask, so the user is asked.` : 'none of its matching permits is @ask, so it is allowed.'));
  return lines;
}

function ruleLines(engine: CedarPolicyEngine, id: string, indent: string): string[] {
  const r = engine.rule(id);
  if (!r) return [`${indent}${id}`];
  const kind = r.effect === 'forbid' ? 'forbid' : r.ask ? 'permit @ask' : 'permit';
  const where = r.file ? `${display(r.file)}${r.line ? `:${r.line}` : ''}` : '';
  return [`${indent}${id}  [${kind}, ${r.source}${where ? `, ${where}` : ''}]`, `${indent}  ${r.description}`];
}

function uid(u: unknown): string {
  const e = (u as { __entity?: { type: string; id: string } }).__entity ?? (u as { type: string; id: string });
  return `${e.type}::${JSON.stringify(e.id)}`;
}

function display(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

