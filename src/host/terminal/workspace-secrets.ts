// Files a sandboxed command must not see although they are in its workspace:
// the ones policy forbids the agent to read (a project's .env, its private
// keys). Without this, `cat .env` or `grep -r KEY .` in a command would read
// what `fs/read_text_file` is denied. The sandbox mounts /dev/null over each
// such file (an empty read-only directory over a directory).
//
// Found by walking the workspace and asking policy, for every entry, what a
// read by the agent would get. Only a deny hides: an "ask" (.npmrc, a
// hard-linked file) stays visible, since the command itself was decided and
// hiding those would break ordinary builds. Answers are remembered for the
// session, so a command pays only for entries it has not seen before.
//
// A directory that cannot be listed is hidden whole. A walk that reaches the
// entry limit, or finds more forbidden entries than can be hidden, says so:
// the command then needs the user's consent (fail closed, not silently
// exposed).
//
// Not walked, for time: dependency folders (node_modules) and git's object
// store. A hidden file cannot be carried there: the folders holding it are
// made mount points in the sandbox (`pinned`), which a command can neither
// rename nor remove, and the broker refuses to move or delete a folder with
// such files in it (fs-effects' callers, acp-host.ts). A forbidden file a
// package itself put in node_modules is not hidden.

import { readdirSync, type Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CapabilityRequest } from '../../common/capability.ts';
import { isLocalFileSystem } from '../fs-io.ts';
import { ForbiddenFiles } from '../policy/forbidden-files.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';

export interface WorkspaceSecretsOptions {
  readonly policy: PolicyEngine;
  /** Answers shared with the rest of the session (the broker's move check); default: its own. */
  readonly files?: ForbiddenFiles;
  /** Entries walked per scan before it gives up (default 50,000). */
  readonly maxEntries?: number;
  /** Forbidden entries one command can have hidden (default 500; bubblewrap takes one mount each). */
  readonly maxHidden?: number;
  /** Directory names not descended into (default: node_modules). Git's object store is never walked. */
  readonly skipDirs?: readonly string[];
}

export interface SecretScan {
  /** Absolute paths to hide from the command. */
  readonly hidden: readonly string[];
  /**
   * The folders holding them, below the workspace root, shallowest first: the
   * sandbox makes each a mount point of its own, so a command can neither
   * rename nor remove them (and carry a hidden file somewhere unchecked).
   */
  readonly pinned: readonly string[];
  /** Why the scan may have missed some (the command then needs consent). */
  readonly incomplete?: string;
}

/** How many decisions are made between yields to the event loop. */
const SLICE = 256;

export class WorkspaceSecrets {
  private readonly files: ForbiddenFiles;
  private readonly maxEntries: number;
  private readonly maxHidden: number;
  private readonly skipDirs: ReadonlySet<string>;
  private readonly local = new Map<string, boolean>();

  constructor(opts: WorkspaceSecretsOptions) {
    this.files = opts.files ?? new ForbiddenFiles(opts.policy);
    this.maxEntries = opts.maxEntries ?? 50_000;
    this.maxHidden = opts.maxHidden ?? 500;
    this.skipDirs = new Set(opts.skipDirs ?? ['node_modules']);
  }

  /** The entries of `root` (the workspace) policy forbids `request`'s agent to read, and the folders holding them. */
  async scan(root: string, request: CapabilityRequest): Promise<SecretScan> {
    // On a local file system the calls are made in place (µs each, not a
    // thread-pool round trip); a network one could hang, so not there (fs-io.ts).
    let local = this.local.get(root);
    if (local === undefined) this.local.set(root, (local = await isLocalFileSystem(root)));
    const hidden: string[] = [];
    const done = (incomplete?: string): SecretScan => ({ hidden, pinned: foldersOf(root, hidden), ...(incomplete ? { incomplete } : {}) });
    const stack: string[] = [''];
    let walked = 0;
    let decided = 0;
    while (stack.length > 0) {
      const rel = stack.pop()!;
      let entries: Dirent[];
      try {
        const dir = rel === '' ? root : join(root, rel);
        entries = local ? readdirSync(dir, { withFileTypes: true }) : await readdir(dir, { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue; // gone since it was listed
        // Unlistable (chmod 311 keeps files readable by name, and the command
        // can chmod): what is in it is unknown, so the whole of it is hidden.
        if (rel === '') return done(`the workspace could not be listed (${code ?? (e as Error).message}), so Tether could not check it for files policy keeps from the agent`);
        if (hidden.length >= this.maxHidden) return done(`the workspace has more than ${this.maxHidden} files policy keeps from the agent or that cannot be checked`);
        hidden.push(join(root, rel));
        continue;
      }
      for (const d of entries) {
        if (++walked > this.maxEntries) {
          return done(`the workspace has more than ${this.maxEntries} entries, so Tether could not check all of them for files policy keeps from the agent (such as .env); this command might read some`);
        }
        const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
        const dir = d.isDirectory();
        if (this.isForbidden(root, childRel, d, request)) {
          if (hidden.length >= this.maxHidden) {
            return done(`the workspace has more than ${this.maxHidden} files policy keeps from the agent, more than can be hidden from a command; this command might read some`);
          }
          hidden.push(join(root, childRel));
          continue; // a hidden directory hides everything in it
        }
        if (dir && !this.skipDirs.has(d.name) && childRel !== '.git/objects' && !childRel.endsWith('/.git/objects')) stack.push(childRel);
        if (++decided % SLICE === 0) await new Promise((r) => setImmediate(r));
      }
    }
    return done();
  }

  private isForbidden(root: string, rel: string, d: Dirent, request: CapabilityRequest): boolean {
    const type = d.isDirectory() ? 'directory' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'symlink' : 'other';
    return this.files.isForbidden(root, rel, type, request);
  }
}

/** Every folder between `root` and each of `paths`, shallowest first. */
export function foldersOf(root: string, paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    for (let d = dirname(p); d.length > root.length && d.startsWith(`${root}/`); d = dirname(d)) out.add(d);
  }
  return [...out].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
}
