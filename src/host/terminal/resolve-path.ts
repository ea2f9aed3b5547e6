// How the terminal service turns a path a command line writes (a redirection
// target, tee's file, rm's operand) into the ResolvedPath policy decides on:
// through the workspace jail, exactly as the agent's own fs requests are
// resolved (`..` removed, parent realpath'd, a final symlink followed for a
// write, kept for a delete; devices and kernel file systems refused).

import { realpath, stat } from 'node:fs/promises';
import type { ResolvedPath } from '../../common/capability.ts';
import { WorkspaceJail } from '../workspace-jail.ts';

export type PathIntent = 'read' | 'write' | 'entry';
export type PathResolver = (absolutePath: string, intent: PathIntent) => Promise<ResolvedPath>;

/** A resolver backed by a jail opened on first use; `close` releases it. */
export function jailResolver(workspaceRoot: string): PathResolver & { close(): Promise<void> } {
  let jail: Promise<WorkspaceJail> | undefined;
  const resolve = async (p: string, intent: PathIntent) => {
    jail ??= WorkspaceJail.open(workspaceRoot);
    return (await jail).resolve(p, { intent });
  };
  return Object.assign(resolve, {
    close: async () => {
      const j = jail;
      jail = undefined;
      if (j) await (await j.catch(() => undefined))?.close();
    },
  });
}

/** Canonical directory, or undefined when it does not exist or is not a directory. */
export async function canonicalDir(p: string): Promise<string | undefined> {
  try {
    const real = await realpath(p);
    return (await stat(real)).isDirectory() ? real : undefined;
  } catch {
    return undefined;
  }
}
