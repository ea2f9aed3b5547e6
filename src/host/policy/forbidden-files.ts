// Which workspace entries policy forbids the agent to read (a project's .env,
// its private keys), asked once per entry and remembered. The sandbox hides
// them from commands (terminal/workspace-secrets.ts) and checkpoints never
// copy them (checkpoints/checkpoint-store.ts `neverCapture`). Only a deny
// counts: an "ask" (.npmrc, a hard-linked file) is not forbidden. A policy
// engine that fails on an entry denies it, so it counts as forbidden.

import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { CapabilityRequest, ResolvedPath } from '../../common/capability.ts';
import { METHODS } from '../../common/protocol.ts';
import { newTrace } from '../../common/trace.ts';
import type { PolicyEngine } from './policy-engine.ts';

export type EntryType = NonNullable<ResolvedPath['type']>;

/** Remembered answers before they are forgotten and asked again. */
const MAX_REMEMBERED = 200_000;

export class ForbiddenFiles {
  private readonly policy: PolicyEngine;
  private readonly answers = new Map<string, boolean>();

  constructor(policy: PolicyEngine) {
    this.policy = policy;
  }

  /**
   * Whether the agent of `on` (its session, workspace, trace) may not read
   * `rel` in `root`. Without `on`, asked as an agent of no particular session.
   */
  isForbidden(root: string, rel: string, type: EntryType, on?: CapabilityRequest): boolean {
    const sessionId = on?.sessionId ?? '';
    const path = join(root, rel);
    const key = `${sessionId}\0${type}\0${path}`;
    let forbidden = this.answers.get(key);
    if (forbidden === undefined) {
      const read: CapabilityRequest = {
        ...(on ?? { sessionId, workspace: root, trace: newTrace() }),
        id: `${on?.id ?? 'forbidden-files'}/read:${rel}`,
        action: 'read',
        kind: 'read',
        method: METHODS.readTextFile,
        target: { path, relPath: rel, inWorkspace: true, exists: true, type, hardLinked: false },
        command: undefined,
      };
      forbidden = this.policy.decide(read).effect === 'deny';
      if (this.answers.size >= MAX_REMEMBERED) this.answers.clear();
      this.answers.set(key, forbidden);
    }
    return forbidden;
  }
}

/**
 * The entries inside directory `dir` (absolute, in workspace `root`) policy
 * forbids `on`'s agent to read, walking at most `limit` entries
 * (`incomplete` when it stopped there, or could not list a folder).
 */
export async function forbiddenInside(files: ForbiddenFiles, root: string, dir: string, on: CapabilityRequest, limit = 20_000): Promise<{ found: string[]; incomplete: boolean }> {
  const found: string[] = [];
  const stack = [dir];
  let walked = 0;
  while (stack.length > 0) {
    const d = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return { found, incomplete: true };
    }
    for (const e of entries) {
      if (++walked > limit) return { found, incomplete: true };
      const path = join(d, e.name);
      const type: EntryType = e.isDirectory() ? 'directory' : e.isFile() ? 'file' : e.isSymbolicLink() ? 'symlink' : 'other';
      if (files.isForbidden(root, relative(root, path), type, on)) found.push(path);
      // Dependency trees and git's objects are not checked for commands either, and a move keeps them one.
      else if (type === 'directory' && e.name !== 'node_modules' && !path.endsWith('/.git/objects')) stack.push(path);
    }
  }
  return { found, incomplete: false };
}
