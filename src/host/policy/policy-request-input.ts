// Builds a CapabilityRequest from the short form that `tether policy test`
// files and `tether policy explain` flags use ({action, path, command, url}).
//
// When the workspace exists, paths are resolved by the real WorkspaceJail,
// exactly as the broker would present them to policy (a path the jail refuses
// is an error here too). When it does not — test files often describe an
// imaginary /home/dev/project — resolution is lexical: relative to the
// workspace, `..` removed, nothing on disk consulted. `exists`, `type` and
// `hardLinked` in the input override what either found.

import { stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { ACTION_KIND, type CapabilityAction, type CapabilityRequest, type ResolvedPath } from '../../common/capability.ts';
import { WorkspaceJail, type ResolveIntent } from '../workspace-jail.ts';

export interface PolicyRequestInput {
  readonly action: CapabilityAction;
  /** Target path, relative to the workspace or absolute. */
  readonly path?: string;
  /** Move destination. */
  readonly destination?: string;
  readonly workspace?: string;
  /** Command line (exec). */
  readonly command?: string;
  /** Working directory for exec, relative to the workspace; default the workspace. */
  readonly cwd?: string;
  /** Destination URL (net, model). */
  readonly url?: string;
  /** Override what the file system says about the target (and destination). */
  readonly exists?: boolean;
  readonly type?: ResolvedPath['type'];
  readonly hardLinked?: boolean;
  readonly session?: string;
  readonly method?: string;
}

const METHODS: Readonly<Record<CapabilityAction, string>> = {
  read: 'fs/read_text_file', write: 'fs/write_text_file', exec: 'terminal/create',
  list: '_tether/list', search: '_tether/search', stat: '_tether/stat', delete: '_tether/delete', move: '_tether/move',
  net: '_tether/net', model: '_tether/model',
};

export const ACTIONS = Object.keys(ACTION_KIND) as CapabilityAction[];

const INTENT: Partial<Record<CapabilityAction, ResolveIntent>> = { write: 'write', delete: 'entry', move: 'entry' };

/** Throws an Error whose message says which field is wrong, or why the jail refused a path. */
export async function requestFromInput(input: PolicyRequestInput, baseDir: string, id = 'policy-dry-run'): Promise<CapabilityRequest> {
  if (!ACTIONS.includes(input.action)) throw new Error(`unknown action "${String(input.action)}" (one of ${ACTIONS.join(', ')})`);
  const given = resolve(baseDir, input.workspace ?? '.');
  const jail = (await isDirectory(given)) ? await WorkspaceJail.open(given) : undefined;
  try {
    return await build(input, jail?.root ?? given, id, jail);
  } finally {
    await jail?.close();
  }
}

async function build(input: PolicyRequestInput, workspace: string, id: string, jail: WorkspaceJail | undefined): Promise<CapabilityRequest> {
  const kind = ACTION_KIND[input.action];
  const common = {
    id,
    sessionId: input.session ?? 'policy-dry-run',
    action: input.action,
    kind,
    method: input.method ?? METHODS[input.action],
    workspace,
    trace: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', flags: '01' },
  };
  if (kind === 'exec') {
    if (!input.command) throw new Error(`action ${input.action} needs a command`);
    const cwd = jail ? (await jail.resolve(input.cwd ?? '.')).path : resolve(workspace, input.cwd ?? '.');
    return { ...common, command: { line: input.command, cwd } };
  }
  if (kind === 'net' || kind === 'model') {
    if (!input.url) throw new Error(`action ${input.action} needs a url`);
    return { ...common, url: input.url };
  }
  if (input.path === undefined) throw new Error(`action ${input.action} needs a path`);
  const intent = INTENT[input.action] ?? 'read';
  const resolvePath = async (p: string) => withOverrides(jail ? await jail.resolve(p, { intent }) : lexical(workspace, p), input);
  const target = await resolvePath(input.path);
  if (input.action !== 'move') return { ...common, target };
  if (input.destination === undefined) throw new Error('action move needs a destination');
  return { ...common, target, destination: await resolvePath(input.destination) };
}

function lexical(workspace: string, p: string): ResolvedPath {
  if (p.includes('\0')) throw new Error('a path may not contain NUL');
  const path = resolve(workspace, p);
  const rel = relative(workspace, path);
  const inWorkspace = rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
  return { path, ...(inWorkspace ? { relPath: rel.split(sep).join('/') } : {}), inWorkspace, exists: false };
}

function withOverrides(r: ResolvedPath, o: PolicyRequestInput): ResolvedPath {
  const type = o.type ?? r.type;
  const hardLinked = o.hardLinked ?? r.hardLinked;
  return {
    ...r,
    exists: o.exists ?? (o.type !== undefined ? true : r.exists),
    ...(type !== undefined ? { type } : {}),
    ...(hardLinked !== undefined ? { hardLinked } : {}),
  };
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
