// Builds a CapabilityRequest from the short form that `tether policy test`
// files and `tether policy explain` flags use ({action, path, command, url}).
//
// Paths are resolved the way the workspace jail would present them, as far as
// a dry run can: relative to the workspace, `..` removed, the parent's
// symlinks followed when it exists, and type/hard links read from the file if
// it exists. It is for trying policy out; it does not guard anything (the
// broker uses the workspace jail, which also refuses symlink escapes).

import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ACTION_KIND, type CapabilityAction, type CapabilityRequest, type ResolvedPath } from '../../common/capability.ts';

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

/** Throws an Error whose message says which field is wrong. */
export async function requestFromInput(input: PolicyRequestInput, baseDir: string, id = 'policy-dry-run'): Promise<CapabilityRequest> {
  if (!ACTIONS.includes(input.action)) throw new Error(`unknown action "${String(input.action)}" (one of ${ACTIONS.join(', ')})`);
  const workspace = await canonical(resolve(baseDir, input.workspace ?? '.'));
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
    return { ...common, command: { line: input.command, cwd: await canonical(resolve(workspace, input.cwd ?? '.')) } };
  }
  if (kind === 'net' || kind === 'model') {
    if (!input.url) throw new Error(`action ${input.action} needs a url`);
    return { ...common, url: input.url };
  }
  if (input.path === undefined) throw new Error(`action ${input.action} needs a path`);
  const target = await resolvePath(workspace, input.path, input);
  if (input.action !== 'move') return { ...common, target };
  if (input.destination === undefined) throw new Error('action move needs a destination');
  return { ...common, target, destination: await resolvePath(workspace, input.destination, input) };
}

async function resolvePath(workspace: string, p: string, overrides: PolicyRequestInput): Promise<ResolvedPath> {
  if (p.includes('\0')) throw new Error('a path may not contain NUL');
  const lexical = resolve(workspace, p);
  const path = lexical === workspace ? workspace : join(await canonical(dirname(lexical)), basename(lexical));
  const rel = relative(workspace, path);
  const inWorkspace = rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
  let exists = false;
  let type: ResolvedPath['type'];
  let hardLinked = false;
  try {
    const st = await lstat(path);
    exists = true;
    type = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
    hardLinked = st.isFile() && st.nlink > 1;
  } catch {
    // Does not exist (yet): a write would create it.
  }
  exists = overrides.exists ?? (overrides.type !== undefined ? true : exists);
  type = overrides.type ?? type;
  hardLinked = overrides.hardLinked ?? hardLinked;
  return {
    path,
    ...(inWorkspace ? { relPath: rel.split(sep).join('/') } : {}),
    inWorkspace,
    exists,
    ...(type !== undefined ? { type } : {}),
    hardLinked,
  };
}

/** realpath when the path exists, else the lexical path. */
async function canonical(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return p;
  }
}
