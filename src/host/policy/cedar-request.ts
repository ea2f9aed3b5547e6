// Maps a resolved CapabilityRequest to what Cedar sees: the resource entity's
// attributes and the context, per tether.cedarschema. The attribute tables are
// the single place where a schema attribute gets its value; the engine checks
// at load time that they match the schema exactly, so the two cannot drift.
//
// This is on the hot path: a getter computes one attribute, and the engine
// calls only the getters whose attribute some policy reads.

import type { CedarValueJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { CapabilityAction, CapabilityRequest, ResolvedPath } from '../../common/capability.ts';
import { parseShell } from '../../common/shell-parse.ts';
import { isLoopbackHost } from '../../common/loopback.ts';

export const NAMESPACE = 'Tether';
export type ResourceType = 'File' | 'Command' | 'Host';
export type Role = 'target' | 'destination';

export const RESOURCE_TYPE: Readonly<Record<CapabilityAction, ResourceType>> = {
  read: 'File', list: 'File', search: 'File', stat: 'File',
  write: 'File', delete: 'File', move: 'File',
  exec: 'Command',
  net: 'Host', model: 'Host',
};

/** What the engine knows beyond the request: protected paths, model endpoints, case folding. */
export interface RequestEnvironment {
  isProtected(path: string): boolean;
  isModelProvider(url: URL): boolean;
  /** Compares paths the way the platform's file system does. */
  fold(path: string): string;
}

/** One half of a decision: the request seen through one resource. */
export interface Subject {
  readonly request: CapabilityRequest;
  readonly role: Role;
  readonly env: RequestEnvironment;
  readonly file?: ResolvedPath;
  readonly url?: URL;
}

export type AttrGetter = (s: Subject) => CedarValueJson;

const FILE_TYPES = new Set(['file', 'directory', 'symlink', 'other']);

export const FILE_ATTRS: Readonly<Record<string, AttrGetter>> = {
  path: (s) => s.file!.path,
  lowerPath: (s) => s.file!.path.toLowerCase(),
  relPath: (s) => (s.file!.inWorkspace ? s.file!.relPath ?? '' : ''),
  name: (s) => baseName(s.file!.path),
  inWorkspace: (s) => s.file!.inWorkspace === true,
  exists: (s) => s.file!.exists === true,
  type: (s) => {
    const f = s.file!;
    if (!f.exists) return 'none';
    return f.type !== undefined && FILE_TYPES.has(f.type) ? f.type : 'other';
  },
  hardLinked: (s) => s.file!.hardLinked === true,
  protected: (s) => s.env.isProtected(s.file!.path),
};

export const COMMAND_ATTRS: Readonly<Record<string, AttrGetter>> = {
  line: (s) => s.request.command!.line,
  program: (s) => commandWords(s)[0] ?? '',
  args: (s) => commandWords(s).slice(1),
  cwd: (s) => s.request.command!.cwd,
  cwdInWorkspace: (s) => isInside(s.env.fold(s.request.command!.cwd), s.env.fold(s.request.workspace)),
  sandboxed: (s) => s.request.command!.sandboxed !== false,
};

export const HOST_ATTRS: Readonly<Record<string, AttrGetter>> = {
  host: (s) => hostName(s.url!),
  port: (s) => portOf(s.url!),
  scheme: (s) => s.url!.protocol.slice(0, -1),
  url: (s) => s.request.url!,
  path: (s) => s.url!.pathname,
  loopback: (s) => isLoopbackHost(hostName(s.url!)),
  modelProvider: (s) => s.env.isModelProvider(s.url!),
};

export const RESOURCE_ATTRS: Readonly<Record<ResourceType, Readonly<Record<string, AttrGetter>>>> = {
  File: FILE_ATTRS,
  Command: COMMAND_ATTRS,
  Host: HOST_ATTRS,
};

export const CONTEXT_ATTRS: Readonly<Record<string, AttrGetter>> = {
  workspace: (s) => s.request.workspace,
  session: (s) => s.request.sessionId,
  method: (s) => s.request.method,
  role: (s) => s.role,
};

/** The resource entity's id: the path, the command line, or the URL. */
export function resourceId(s: Subject, type: ResourceType): string {
  if (type === 'File') return s.file!.path;
  if (type === 'Command') return s.request.command!.line;
  return s.request.url!;
}

/**
 * The subjects a request is decided on: one, or two for a move (source and
 * destination). Throws with a message for the decision when the request lacks
 * what its action needs; the engine turns that into a deny.
 */
export function subjectsOf(request: CapabilityRequest, env: RequestEnvironment): Subject[] {
  const type = RESOURCE_TYPE[request.action];
  if (type === undefined) throw new Error(`unknown action "${String(request.action)}"`);
  if (type === 'File') {
    if (!request.target) throw new Error(`a ${request.action} request has no target path`);
    const out: Subject[] = [{ request, role: 'target', env, file: request.target }];
    if (request.action === 'move') {
      if (!request.destination) throw new Error('a move request has no destination path');
      out.push({ request, role: 'destination', env, file: request.destination });
    }
    return out;
  }
  if (type === 'Command') {
    if (!request.command) throw new Error('an exec request has no command');
    return [{ request, role: 'target', env }];
  }
  if (!request.url) throw new Error(`a ${request.action} request has no URL`);
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new Error(`the URL "${request.url}" does not parse`);
  }
  return [{ request, role: 'target', env, url }];
}

/** Short human text for what a subject is, used in reasons. */
export function describeSubject(s: Subject): string {
  const type = RESOURCE_TYPE[s.request.action];
  if (type === 'File') return `${s.role === 'destination' ? 'destination ' : ''}${s.file!.path}`;
  if (type === 'Command') return `the command "${s.request.command!.line}"`;
  return s.request.url!;
}

// The terminal service decides each command of a line on its own, with
// `program` and `args` from the shell parser. A request without them (policy
// explain/test, other callers) is parsed here: a line that is one simple
// command gets its parsed words (quotes removed); anything else keeps a split
// on whitespace, so policy on `program` and `args` is only as good as that.
const wordsCache = new WeakMap<object, string[]>();
function commandWords(s: Subject): readonly string[] {
  const cmd = s.request.command!;
  if (cmd.program !== undefined) return [cmd.program, ...(cmd.args ?? [])];
  let words = wordsCache.get(cmd);
  if (!words) {
    const parsed = parseShell(cmd.line);
    const only = parsed.parts.length === 1 && parsed.uncertain.length === 0 ? parsed.parts[0]! : undefined;
    words = only && only.program !== '' ? [only.program, ...only.args] : cmd.line.trim().split(/\s+/).filter((w) => w.length > 0);
    wordsCache.set(cmd, words);
  }
  return words;
}

function baseName(path: string): string {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** `child` equals `parent` or lies under it. Both already canonical and folded. */
export function isInside(child: string, parent: string): boolean {
  const p = parent.length > 1 && parent.endsWith('/') ? parent.slice(0, -1) : parent;
  if (child === p) return true;
  return child.startsWith(p === '/' ? '/' : `${p}/`);
}

function hostName(url: URL): string {
  const h = url.hostname.toLowerCase();
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'https:': 443, 'http:': 80, 'wss:': 443, 'ws:': 80 };
function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return DEFAULT_PORTS[url.protocol] ?? 0;
}

