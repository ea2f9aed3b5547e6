// Reads Cedar policy files and the schema, and turns every problem into a
// PolicyLoadError that names file:line:column. Nothing here decides requests;
// cedar-policy-engine.ts does that with what this returns.
//
// Per file: parse → split into policies (each keeps its offset in the file) →
// annotations (@id required and unique across all sources, @description,
// @ask only on permits) → strict validation against the schema.

import { readFile } from 'node:fs/promises';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { DetailedError, PolicyJson, SchemaJson } from '@cedar-policy/cedar-wasm/nodejs';
import { PolicyLoadError, type PolicySourceKind } from './policy-engine.ts';

export interface LoadedPolicy {
  readonly id: string;
  readonly description: string | undefined;
  readonly effect: 'permit' | 'forbid';
  /** Annotated `@ask`: a matching permit asks the user instead of allowing. */
  readonly ask: boolean;
  readonly source: PolicySourceKind;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The policy's own source text. */
  readonly text: string;
  readonly json: PolicyJson;
}

export interface LoadedSchema {
  readonly file: string;
  readonly text: string;
  readonly json: SchemaJson<string>;
}

export interface PolicyFileSpec {
  readonly file: string;
  readonly source: PolicySourceKind;
  /** Use this text instead of reading `file` (tests, stdin). */
  readonly text?: string;
}

/** Non-fatal findings (Cedar validation warnings), with their location. */
export interface PolicyWarning {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export async function readSource(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'the file does not exist' : (e as Error).message;
    throw new PolicyLoadError(`${file}: cannot read ${what}: ${why}`, file);
  }
}

export function loadSchema(file: string, text: string): LoadedSchema {
  const parsed = cedar.checkParseSchema(text);
  if (parsed.type === 'failure') throw errorAt(file, text, 0, parsed.errors, 'the schema does not parse');
  const json = cedar.schemaToJson(text);
  if (json.type === 'failure') throw errorAt(file, text, 0, json.errors, 'the schema does not parse');
  return { file, text, json: json.json };
}

/**
 * Parses and validates one policy file. `seen` carries ids already taken by
 * earlier files so a duplicate names both places.
 */
export function loadPolicyFile(
  spec: PolicyFileSpec & { readonly text: string },
  schema: LoadedSchema,
  seen: Map<string, LoadedPolicy>,
  warnings: PolicyWarning[],
): LoadedPolicy[] {
  const { file, text, source } = spec;
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') {
    const parsed = cedar.checkParsePolicySet({ staticPolicies: text });
    throw errorAt(file, text, 0, parsed.type === 'failure' ? parsed.errors : parts.errors, 'the policy does not parse');
  }
  if (parts.policy_templates.length > 0) {
    const at = text.indexOf(parts.policy_templates[0]!);
    throw errorAt(file, text, Math.max(at, 0), [], 'policy templates (`?principal`, `?resource`) are not supported; write a static policy');
  }

  const located = locateParts(text, parts.policies);
  const loaded: LoadedPolicy[] = [];
  for (const { text: policyText, offset } of located) {
    const { line, column } = lineColumn(text, offset);
    const where = `${file}:${line}:${column}`;
    const json = cedar.policyToJson(policyText);
    if (json.type === 'failure') throw errorAt(file, text, offset, json.errors, 'the policy does not parse');
    const annotations = json.json.annotations ?? {};
    const id = annotations.id;
    if (id === undefined || id === null || id.trim() === '') {
      throw new PolicyLoadError(`${where}: this policy has no @id("...") annotation; every policy needs a unique id so decisions can name it`, file, line, column);
    }
    const earlier = seen.get(id) ?? loaded.find((p) => p.id === id);
    if (earlier) {
      const rule = 'policy ids must be unique across managed, user and default policy; rename one';
      // Blame the policy someone wrote for this machine, not the built-in default.
      if (source === 'default' && earlier.source !== 'default') {
        throw new PolicyLoadError(`${earlier.file}:${earlier.line}:${earlier.column}: policy id "${id}" is already used by the default policy at ${where}; ${rule}`, earlier.file, earlier.line, earlier.column);
      }
      throw new PolicyLoadError(`${where}: duplicate policy id "${id}", already used at ${earlier.file}:${earlier.line}:${earlier.column}; ${rule}`, file, line, column);
    }
    const ask = 'ask' in annotations;
    if (ask && json.json.effect === 'forbid') {
      throw new PolicyLoadError(`${where}: policy "${id}" is a forbid annotated @ask; @ask only applies to permit (a forbid always denies)`, file, line, column);
    }
    const description = annotations.description ?? undefined;
    loaded.push({ id, description: description === null ? undefined : description, effect: json.json.effect, ask, source, file, line, column, text: policyText, json: json.json });
  }

  if (loaded.length > 0) validateStrict(file, text, loaded, located, schema, warnings);
  for (const p of loaded) seen.set(p.id, p);
  return loaded;
}

function validateStrict(
  file: string,
  text: string,
  loaded: readonly LoadedPolicy[],
  located: readonly { offset: number }[],
  schema: LoadedSchema,
  warnings: PolicyWarning[],
): void {
  const byId = new Map(loaded.map((p, i) => [p.id, { policy: p, offset: located[i]!.offset }]));
  const answer = cedar.validate({
    schema: schema.text,
    policies: { staticPolicies: Object.fromEntries(loaded.map((p) => [p.id, p.text])) },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure') throw errorAt(file, text, 0, answer.errors, 'the policy could not be validated');
  const first = answer.validationErrors[0];
  if (first) {
    const at = byId.get(first.policyId);
    const more = answer.validationErrors.length > 1 ? ` (and ${answer.validationErrors.length - 1} more validation error(s))` : '';
    throw errorAt(file, text, at?.offset ?? 0, [first.error], 'the policy does not match the schema', at?.policy.text, more);
  }
  for (const w of answer.validationWarnings) {
    const at = byId.get(w.policyId);
    if (!at) continue;
    const pos = lineColumn(text, at.offset + charOffset(at.policy.text, w.error.sourceLocations?.[0]?.start ?? 0));
    warnings.push({ file, ...pos, message: w.error.message });
  }
}

/** Finds each policy's source slice in the file, in file order. */
function locateParts(text: string, parts: readonly string[]): { text: string; offset: number }[] {
  const used = new Set<number>();
  const out: { text: string; offset: number }[] = [];
  for (const part of parts) {
    let at = text.indexOf(part);
    while (at >= 0 && used.has(at)) at = text.indexOf(part, at + 1);
    if (at < 0) at = 0; // Cedar re-printed the policy: locations fall back to the file start.
    used.add(at);
    out.push({ text: part, offset: at });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/**
 * An error at the first reported source location. Cedar reports byte offsets
 * into the text it parsed (`base` text at char offset `baseOffset` in the file).
 */
function errorAt(
  file: string,
  fileText: string,
  baseOffset: number,
  errors: readonly DetailedError[],
  fallback: string,
  baseText?: string,
  suffix = '',
): PolicyLoadError {
  const e = errors[0];
  const start = e?.sourceLocations?.[0]?.start;
  const offset = start === undefined ? baseOffset : baseOffset + charOffset(baseText ?? fileText.slice(baseOffset), start);
  const { line, column } = lineColumn(fileText, offset);
  const message = e ? cleanMessage(e) : fallback;
  return new PolicyLoadError(`${file}:${line}:${column}: ${message}${suffix}`, file, line, column);
}

function cleanMessage(e: DetailedError): string {
  const msg = e.message.replace(/^failed to parse (policies|schema) from string: /, '').replace(/^error parsing schema: /, '');
  const label = e.sourceLocations?.[0]?.label;
  const hints = [label, e.help].filter((s): s is string => typeof s === 'string' && s.length > 0);
  return hints.length > 0 ? `${msg} (${hints.join('; ')})` : msg;
}

function charOffset(text: string, byteOffset: number): number {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.subarray(0, Math.min(byteOffset, bytes.length)).toString('utf8').length;
}

export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
