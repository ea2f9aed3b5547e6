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
// Dependency folders (node_modules) and git's object store hold too many
// files to ask policy about each on every command. There, what the session's
// first look found in directories unchanged since the session started is
// taken as the packages'; later only directories whose listing changed
// (inode, mtime, ctime) are listed again, their new entries asked about. A
// secret the agent moves into one (renaming its parent directory there, which
// a move request or a command can do) is still hidden. A forbidden file a
// package already shipped before the session started is not.

import { lstatSync, readdirSync, type Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CapabilityRequest } from '../../common/capability.ts';
import { isLocalFileSystem } from '../fs-io.ts';
import { ForbiddenFiles } from '../policy/forbidden-files.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';

export interface WorkspaceSecretsOptions {
  readonly policy: PolicyEngine;
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
  /** Why the scan may have missed some (the command then needs consent). */
  readonly incomplete?: string;
}

/** How many entries are handled between yields to the event loop. */
const SLICE = 256;
/** A directory changed this close to when it was listed may have changed again unseen (coarse timestamps). */
const RACY_MS = 2000;

/** A directory in a dependency tree as last listed: what was in it, and which of that is hidden. */
interface Listing {
  readonly stamp: string;
  readonly listedAt: number;
  readonly names: ReadonlySet<string>;
  readonly subdirs: readonly string[];
  readonly hidden: readonly string[];
}

interface Pending {
  readonly rel: string;
  /** Set inside a dependency tree (node_modules, git's objects): its top, workspace-relative. */
  readonly tree?: string;
}

export class WorkspaceSecrets {
  private readonly files: ForbiddenFiles;
  private readonly maxEntries: number;
  private readonly maxHidden: number;
  private readonly skipDirs: ReadonlySet<string>;
  /** Dependency-tree directories as last listed, per session and path. */
  private readonly listings = new Map<string, Listing>();
  /** Dependency trees (per session) whose first listing is complete: what appears in them later is new. */
  private readonly baselined = new Set<string>();
  private readonly local = new Map<string, boolean>();
  /** When each session's first scan began (prepareSession: when the session started). */
  private readonly started = new Map<string, number>();

  constructor(opts: WorkspaceSecretsOptions) {
    this.files = new ForbiddenFiles(opts.policy);
    this.maxEntries = opts.maxEntries ?? 50_000;
    this.maxHidden = opts.maxHidden ?? 500;
    this.skipDirs = new Set(opts.skipDirs ?? ['node_modules']);
  }

  /**
   * The entries of `root` (the workspace) policy forbids `request`'s agent to
   * read. Dependency trees are not checked entry by entry: what they held when
   * the session first looked is taken as the packages', and only what appears
   * in them afterwards (a directory whose listing changed, or a new one) is
   * asked about, so a secret the agent moves there is still hidden.
   */
  async scan(root: string, request: CapabilityRequest): Promise<SecretScan> {
    // On a local file system the calls are made in place (µs each, not a
    // thread-pool round trip); a network one could hang, so not there (fs-io.ts).
    let startedAt = this.started.get(request.sessionId);
    if (startedAt === undefined) this.started.set(request.sessionId, (startedAt = Date.now()));
    let local = this.local.get(root);
    if (local === undefined) this.local.set(root, (local = await isLocalFileSystem(root)));
    const hidden: string[] = [];
    const stack: Pending[] = [{ rel: '' }];
    const trees = new Set<string>();
    let walked = 0;
    let handled = 0;
    const hide = (rel: string): SecretScan | undefined => {
      if (hidden.length >= this.maxHidden) {
        return { hidden, incomplete: `the workspace has more than ${this.maxHidden} files policy keeps from the agent or that cannot be checked, more than can be hidden from a command; this command might read some` };
      }
      hidden.push(join(root, rel));
      return undefined;
    };
    while (stack.length > 0) {
      const { rel, tree } = stack.pop()!;
      const abs = rel === '' ? root : join(root, rel);
      const key = `${request.sessionId}\0${abs}`;
      let listing: Listing | undefined;
      let stamp = '';
      let changedSinceStart = false;
      if (tree !== undefined) {
        trees.add(tree);
        try {
          const st = local ? lstatSync(abs) : await lstat(abs);
          stamp = `${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
          changedSinceStart = Math.max(st.mtimeMs, st.ctimeMs) >= startedAt - RACY_MS;
          listing = this.listings.get(key);
          if (listing && listing.stamp === stamp && listing.listedAt - st.mtimeMs > RACY_MS) {
            // Unchanged since last listed: what was hidden stays hidden; look below.
            for (const h of listing.hidden) {
              const full = hide(rel === '' ? h : `${rel}/${h}`);
              if (full) return full;
            }
            for (const sub of listing.subdirs) stack.push({ rel: `${rel}/${sub}`, tree });
            if (++handled % SLICE === 0) await new Promise((r) => setImmediate(r));
            continue;
          }
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        }
      }
      let entries: Dirent[];
      try {
        entries = local ? readdirSync(abs, { withFileTypes: true }) : await readdir(abs, { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue; // gone since it was listed
        // Unlistable (chmod 311 keeps files readable by name, and the command
        // can chmod): what is in it is unknown, so the whole of it is hidden.
        if (rel === '') return { hidden, incomplete: `the workspace could not be listed (${code ?? (e as Error).message}), so Tether could not check it for files policy keeps from the agent` };
        const full = hide(rel);
        if (full) return full;
        continue;
      }
      // In a dependency tree, entries listed before are not asked about again,
      // nor is anything in the tree's first listing (the session's baseline).
      // A directory changed since the session started (a package installed, a
      // folder moved in) is no part of the baseline, even before it completes.
      const trusted = tree === undefined ? undefined : listing?.names ?? (this.baselined.has(`${request.sessionId}\0${tree}`) || changedSinceStart ? new Set<string>() : undefined);
      const baseline = tree !== undefined && trusted === undefined;
      const subdirs: string[] = [];
      const hiddenHere: string[] = [];
      for (const d of entries) {
        if (tree === undefined && ++walked > this.maxEntries) {
          return { hidden, incomplete: `the workspace has more than ${this.maxEntries} entries, so Tether could not check all of them for files policy keeps from the agent (such as .env); this command might read some` };
        }
        const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
        const ask = !baseline && !trusted?.has(d.name);
        if (listing?.hidden.includes(d.name) || (ask && this.isForbidden(root, childRel, d, request))) {
          const full = hide(childRel);
          if (full) return full;
          hiddenHere.push(d.name);
          continue; // a hidden directory hides everything in it
        }
        if (d.isDirectory()) {
          subdirs.push(d.name);
          const startsTree = tree === undefined && (this.skipDirs.has(d.name) || childRel === '.git/objects' || childRel.endsWith('/.git/objects'));
          stack.push({ rel: childRel, ...(tree !== undefined ? { tree } : startsTree ? { tree: childRel } : {}) });
        }
        if (++handled % SLICE === 0) await new Promise((r) => setImmediate(r));
      }
      if (tree !== undefined && stamp !== '') {
        this.listings.set(key, { stamp, listedAt: Date.now(), names: new Set(entries.map((d) => d.name)), subdirs, hidden: hiddenHere });
      }
    }
    for (const tree of trees) this.baselined.add(`${request.sessionId}\0${tree}`);
    return { hidden };
  }

  private isForbidden(root: string, rel: string, d: Dirent, request: CapabilityRequest): boolean {
    const type = d.isDirectory() ? 'directory' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'symlink' : 'other';
    return this.files.isForbidden(root, rel, type, request);
  }
}
