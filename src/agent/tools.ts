// The agent's tools. Names and argument shapes are a contract (outside tools
// and tests depend on them): read_file, write_file, edit_file, list_dir,
// search, run_command. Every effect is a request to the host, which decides;
// a denial comes back to the model as a tool error naming the rule.

import { z } from 'zod';
import { DENIED_ERROR_CODE } from '../common/decision.ts';
import { METHODS, type ListResult, type SearchResult } from '../common/protocol.ts';
import type { ToolCallRecord, ToolSpec } from './dialects/dialect.ts';

/** What a tool may do: ask the host. `signal` null = not cancellable (cleanup). */
export interface HostPort {
  readonly sessionId: string;
  /** The client advertised `terminal: true` in `initialize`. */
  readonly terminal: boolean;
  request<T>(method: string, params: Record<string, unknown>, signal?: AbortSignal | null): Promise<T>;
}

export type ToolKind = 'read' | 'edit' | 'search' | 'execute' | 'other';

export interface ToolOutcome {
  /** Text for the model; errors start with "Error: ". */
  readonly content: string;
  readonly isError: boolean;
  /** For the client's display. */
  readonly diff?: { readonly path: string; readonly oldText: string | null; readonly newText: string };
}

/** Thrown (not returned) when the turn was cancelled while a tool ran. */
export class ToolCancelled extends Error {
  override readonly name = 'ToolCancelled';
}

const MAX_RESULT_CHARS = 100_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;
const MAX_COMMAND_TIMEOUT_MS = 30 * 60_000;
const COMMAND_OUTPUT_BYTES = 64 * 1024;
export const COMMANDS_UNAVAILABLE = 'commands are unavailable in this version of Tether';

const pathArg = z.string().min(1).max(4096).describe('Path relative to the workspace root (or absolute inside it).');

const ARGS = {
  read_file: z.strictObject({ path: pathArg }),
  write_file: z.strictObject({ path: pathArg, content: z.string().describe('The complete new file content.') }),
  edit_file: z.strictObject({
    path: pathArg,
    old_string: z.string().min(1).describe('Exact text to replace; must occur exactly once in the file.'),
    new_string: z.string().describe('Replacement text.'),
  }),
  list_dir: z.strictObject({ path: pathArg }),
  search: z.strictObject({
    pattern: z.string().min(1).max(1000).describe('Regular expression matched against file contents, line by line.'),
    path: pathArg.optional().describe('Directory to search in (default: the workspace root).'),
  }),
  run_command: z.strictObject({
    command: z.string().min(1).max(64 * 1024).describe('Shell command line.'),
    cwd: pathArg.optional().describe('Working directory (default: the workspace root).'),
    timeout_ms: z.number().int().min(1).max(MAX_COMMAND_TIMEOUT_MS).optional().describe('Kill the command after this many milliseconds (default 120000).'),
  }),
} as const;

export type ToolName = keyof typeof ARGS;

const DESCRIPTIONS: Record<ToolName, string> = {
  read_file: 'Read a text file in the workspace.',
  write_file: 'Create or overwrite a text file with the given content.',
  edit_file: 'Replace one exact occurrence of old_string with new_string in a file. Fails if old_string is missing or occurs more than once; include surrounding lines to make it unique.',
  list_dir: 'List the entries of a directory.',
  search: 'Search file contents with a regular expression; returns path:line: text for each match.',
  run_command: 'Run a shell command in the workspace and return its exit code and output.',
};

const KINDS: Record<ToolName, ToolKind> = {
  read_file: 'read', write_file: 'edit', edit_file: 'edit', list_dir: 'read', search: 'search', run_command: 'execute',
};

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
  return rest;
}

export const TOOL_SPECS: readonly ToolSpec[] = (Object.keys(ARGS) as ToolName[]).map((name) => ({
  name,
  description: DESCRIPTIONS[name],
  parameters: jsonSchema(ARGS[name]),
}));

export function isToolName(name: string): name is ToolName {
  return Object.hasOwn(ARGS, name);
}

export function toolKind(name: string): ToolKind {
  return isToolName(name) ? KINDS[name] : 'other';
}

/** Short human title for the client's tool-call display. */
export function toolTitle(name: string, argumentsJson: string): string {
  let args: Record<string, unknown> = {};
  try {
    const v: unknown = JSON.parse(argumentsJson);
    if (v && typeof v === 'object') args = v as Record<string, unknown>;
  } catch {
    // Title falls back to the bare name.
  }
  const s = (k: string) => (typeof args[k] === 'string' ? (args[k] as string).slice(0, 200) : '');
  switch (name) {
    case 'read_file': return `Read ${s('path')}`;
    case 'write_file': return `Write ${s('path')}`;
    case 'edit_file': return `Edit ${s('path')}`;
    case 'list_dir': return `List ${s('path')}`;
    case 'search': return `Search ${JSON.stringify(s('pattern'))}${s('path') ? ` in ${s('path')}` : ''}`;
    case 'run_command': return `Run ${s('command')}`;
    default: return name;
  }
}

/** The path a call touches, for the client's follow-along display. */
export function toolPath(argumentsJson: string): string | undefined {
  try {
    const v = JSON.parse(argumentsJson) as Record<string, unknown>;
    return typeof v['path'] === 'string' ? v['path'] : undefined;
  } catch {
    return undefined;
  }
}

function fail(message: string): ToolOutcome {
  return { content: `Error: ${message}`, isError: true };
}

function ok(content: string, diff?: ToolOutcome['diff']): ToolOutcome {
  const text = content.length > MAX_RESULT_CHARS
    ? `${content.slice(0, MAX_RESULT_CHARS)}\n[truncated: ${content.length - MAX_RESULT_CHARS} more characters not shown]`
    : content;
  return { content: text, isError: false, ...(diff ? { diff } : {}) };
}

interface RpcLikeError { code?: unknown; message?: unknown; data?: unknown }

/** A host error as the model should see it: denials name the rule. */
export function describeHostError(method: string, e: unknown): string {
  const err = e as RpcLikeError;
  const message = typeof err?.message === 'string' ? err.message : String(e);
  if (err?.code === DENIED_ERROR_CODE) {
    const data = (err.data ?? {}) as { policyIds?: unknown };
    const ids = Array.isArray(data.policyIds) ? data.policyIds.filter((x): x is string => typeof x === 'string') : [];
    const missing = ids.filter((id) => !message.includes(id));
    return `denied (${method}): ${message.replace(/\.$/, '')}${missing.length ? ` [rule: ${missing.join(', ')}]` : ''}. Do not try to get around this; choose another approach or tell the user.`;
  }
  // The SDK turns a plain Error thrown by a handler into "Internal error" with the text in data.details.
  const data = (err?.data ?? {}) as { details?: unknown; reason?: unknown };
  const detail = typeof data.details === 'string' ? data.details : typeof data.reason === 'string' ? data.reason : undefined;
  return `${method} failed: ${message}${detail && !message.includes(detail) ? `: ${detail}` : ''}`;
}

/** Runs one tool call. Throws ToolCancelled if the signal fires; every other failure is a tool error. */
export async function runTool(call: ToolCallRecord, host: HostPort, signal: AbortSignal): Promise<ToolOutcome> {
  if (!isToolName(call.name)) return fail(`unknown tool "${call.name}"; the tools are ${Object.keys(ARGS).join(', ')}`);
  let raw: unknown;
  try {
    raw = JSON.parse(call.argumentsJson || '{}');
  } catch {
    return fail(`the arguments for ${call.name} are not valid JSON: ${call.argumentsJson.slice(0, 200)}`);
  }
  const parsed = ARGS[call.name].safeParse(raw);
  if (!parsed.success) {
    return fail(`invalid arguments for ${call.name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`).join('; ')}`);
  }
  // Cleanup requests (kill, release) pass signal null: they run even after a cancel.
  const ask = async <T>(method: string, params: Record<string, unknown>, s: AbortSignal | null = signal): Promise<T> => {
    if (s !== null && signal.aborted) throw new ToolCancelled('cancelled');
    try {
      return await host.request<T>(method, { sessionId: host.sessionId, ...params }, s);
    } catch (e) {
      if (s !== null && signal.aborted) throw new ToolCancelled('cancelled');
      throw new HostFailure(describeHostError(method, e));
    }
  };
  try {
    return await TOOL_IMPL[call.name](parsed.data as never, ask, host);
  } catch (e) {
    if (e instanceof ToolCancelled) throw e;
    if (e instanceof HostFailure) return fail(e.message);
    return fail(`${call.name} failed: ${(e as Error).message}`);
  }
}

class HostFailure extends Error {}

type Ask = <T>(method: string, params: Record<string, unknown>, signal?: AbortSignal | null) => Promise<T>;
type Impl<N extends ToolName> = (args: z.infer<(typeof ARGS)[N]>, ask: Ask, host: HostPort) => Promise<ToolOutcome>;

const TOOL_IMPL: { [N in ToolName]: Impl<N> } = {
  async read_file({ path }, ask) {
    const r = await ask<{ content: string }>(METHODS.readTextFile, { path });
    return ok(r.content);
  },

  async write_file({ path, content }, ask) {
    await ask(METHODS.writeTextFile, { path, content });
    return ok(`wrote ${path} (${content.length} characters)`, { path, oldText: null, newText: content });
  },

  // Read, replace, write. Not atomic: a change to the file between the read
  // and the write is overwritten (the host has no compare-and-swap yet).
  async edit_file({ path, old_string, new_string }, ask) {
    if (old_string === new_string) return fail('old_string and new_string are the same; nothing to change');
    const { content } = await ask<{ content: string }>(METHODS.readTextFile, { path });
    const first = content.indexOf(old_string);
    if (first < 0) return fail(`old_string was not found in ${path}; read the file and copy the exact text, including whitespace`);
    let count = 0;
    for (let at = first; at >= 0; at = content.indexOf(old_string, at + 1)) count++;
    if (count > 1) return fail(`old_string occurs ${count} times in ${path}; include more surrounding text so it matches exactly once`);
    const updated = content.slice(0, first) + new_string + content.slice(first + old_string.length);
    await ask(METHODS.writeTextFile, { path, content: updated });
    const line = content.slice(0, first).split('\n').length;
    return ok(`edited ${path} at line ${line}`, { path, oldText: content, newText: updated });
  },

  async list_dir({ path }, ask) {
    const r = await ask<ListResult>(METHODS.list, { path });
    const lines = r.entries.map((e) => (e.type === 'directory' ? `${e.name}/` : e.type === 'symlink' ? `${e.name} -> (symlink)` : e.size !== undefined ? `${e.name} (${e.size} bytes)` : e.name));
    if (r.truncated) lines.push('[truncated: more entries not shown]');
    return ok(lines.length ? lines.join('\n') : '(empty directory)');
  },

  async search({ pattern, path }, ask) {
    const r = await ask<SearchResult>(METHODS.search, { pattern, ...(path ? { path } : {}) });
    const lines = r.matches.map((m) => `${m.path}:${m.line}: ${m.text}`);
    if (r.truncated) lines.push('[truncated: more matches not shown; narrow the pattern or path]');
    if (r.note) lines.push(`[${r.note}]`);
    return ok(lines.length ? lines.join('\n') : `no matches (${r.filesScanned} files scanned)`);
  },

  async run_command({ command, cwd, timeout_ms }, ask, host) {
    if (!host.terminal) return fail(COMMANDS_UNAVAILABLE);
    const timeout = timeout_ms ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const { terminalId } = await ask<{ terminalId: string }>(METHODS.terminalCreate, { command, ...(cwd ? { cwd } : {}), outputByteLimit: COMMAND_OUTPUT_BYTES });
    try {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeout);
      });
      const exited = ask<{ exitCode?: number | null; signal?: string | null }>(METHODS.terminalWaitForExit, { terminalId });
      exited.catch(() => {});
      const first = await Promise.race([exited, timedOut]).finally(() => clearTimeout(timer));
      if (first === 'timeout') await ask(METHODS.terminalKill, { terminalId }, null).catch(() => {});
      const out = await ask<{ output: string; truncated: boolean; exitStatus?: { exitCode?: number | null; signal?: string | null } | null }>(
        METHODS.terminalOutput, { terminalId }, first === 'timeout' ? null : undefined);
      const status = first === 'timeout' ? undefined : first;
      const exitCode = status?.exitCode ?? out.exitStatus?.exitCode;
      const sig = status?.signal ?? out.exitStatus?.signal;
      const head = first === 'timeout'
        ? `killed after ${timeout} ms (timeout)`
        : sig ? `terminated by signal ${sig}` : `exit code ${exitCode ?? 'unknown'}`;
      const body = `${head}${out.truncated ? ' (output truncated to the last part)' : ''}\n${out.output}`;
      return first === 'timeout' ? fail(body) : ok(body);
    } finally {
      await ask(METHODS.terminalRelease, { terminalId }, null).catch(() => {});
    }
  },
};
