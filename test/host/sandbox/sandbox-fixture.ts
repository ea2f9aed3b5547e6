// Shared set-up for tests that run real commands in the real sandbox: a
// scratch tree under the repository's .cache/ (not under /tmp, which the
// sandbox replaces with a private one, so "outside" and the fake home are
// really visible read-only inside it), with a workspace, a directory outside
// it, and a fake home holding canary credentials.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BubblewrapSandbox, type BubblewrapSandboxOptions } from '../../../src/host/sandbox/bubblewrap-sandbox.ts';
import type { TappedConnection } from '../../../src/host/sandbox/network-tap.ts';
import type { RunOptions, SandboxExit, SandboxProfile } from '../../../src/host/sandbox/sandbox.ts';
import { buildCommandEnv } from '../../../src/host/sandbox/sandbox-env.ts';
import { afterAll, beforeAll } from 'vitest';

export const REPO = join(import.meta.dirname, '..', '..', '..');

export interface Scratch {
  readonly base: string;
  readonly workspace: string;
  readonly outside: string;
  readonly home: string;
  /** Stands in for Tether's own audit/policy/key directory. */
  readonly state: string;
  readonly canary: string;
  cleanup(): void;
}

/** Where scratch trees go: never under /tmp or /var/tmp (private inside the sandbox), even when the checkout is. */
function scratchRoot(): string {
  if (process.env['TETHER_TEST_SCRATCH']) return process.env['TETHER_TEST_SCRATCH'];
  const underPrivateTmp = (p: string) => /^\/(var\/)?tmp(\/|$)/.test(p);
  return underPrivateTmp(REPO) ? join(homedir(), '.cache', 'tether-sandbox-tests') : join(REPO, '.cache');
}

export function makeScratch(): Scratch {
  const cache = scratchRoot();
  mkdirSync(cache, { recursive: true });
  const base = mkdtempSync(join(cache, 'sandbox-test-'));
  const workspace = join(base, 'workspace');
  const outside = join(base, 'outside');
  const home = join(base, 'home');
  const state = join(base, 'tether-state');
  const canary = `canary-${Math.random().toString(36).slice(2)}`;
  for (const d of [workspace, outside, join(home, '.ssh'), join(home, '.aws'), join(home, '.config', 'gcloud'), state]) mkdirSync(d, { recursive: true });
  writeFileSync(join(home, '.ssh', 'id_rsa'), `-----BEGIN OPENSSH PRIVATE KEY----- ${canary}\n`);
  writeFileSync(join(home, '.aws', 'credentials'), `[default]\naws_secret_access_key = ${canary}\n`);
  writeFileSync(join(home, '.config', 'gcloud', 'credentials.db'), canary);
  writeFileSync(join(home, '.netrc'), `machine example.com password ${canary}\n`);
  writeFileSync(join(home, 'notes.txt'), 'ordinary file in home\n');
  writeFileSync(join(state, 'audit.jsonl'), `${canary}\n`);
  writeFileSync(join(outside, 'keep.txt'), 'outside\n');
  return { base, workspace, outside, home, state, canary, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

export async function makeSandbox(s: Scratch, extra: BubblewrapSandboxOptions = {}): Promise<BubblewrapSandbox> {
  return BubblewrapSandbox.create({ home: s.home, protectedPaths: [s.state], ...extra });
}

/** One scratch tree and one sandbox for a test file (made before its tests, removed after). */
export function useScratchSandbox(): { readonly scratch: Scratch; readonly sandbox: BubblewrapSandbox } {
  let scratch: Scratch | undefined;
  let sandbox: BubblewrapSandbox | undefined;
  beforeAll(async () => {
    scratch = makeScratch();
    sandbox = await makeSandbox(scratch);
  });
  afterAll(async () => {
    await sandbox?.dispose();
    scratch?.cleanup();
  });
  return {
    get scratch() {
      return scratch!;
    },
    get sandbox() {
      return sandbox!;
    },
  };
}

export function envFor(s: Scratch, hostExtra: Record<string, string> = {}): Record<string, string> {
  return buildCommandEnv({ host: { ...process.env, HOME: s.home, ...hostExtra }, tmpDir: '/tmp' }).env;
}

export interface Ran {
  readonly exit: SandboxExit;
  readonly output: string;
  /** The network connections the command made, as its tap reported them. */
  readonly connections: readonly TappedConnection[];
}

export async function runIn(sb: BubblewrapSandbox, s: Scratch, line: string, opts: { profile?: SandboxProfile; cwd?: string; env?: Record<string, string>; readOnly?: string[] } = {}): Promise<Ran> {
  const connections: TappedConnection[] = [];
  const run: RunOptions = {
    line,
    cwd: opts.cwd ?? s.workspace,
    env: opts.env ?? envFor(s),
    profile: opts.profile ?? sb.profile(s.workspace),
    ...(opts.readOnly ? { readOnly: opts.readOnly } : {}),
    onConnection: (c) => connections.push(c),
    onTunnelOpened: async () => {}, // these tests keep no audit log: the terminal service's tests check the records
  };
  const p = await sb.run(run);
  let output = '';
  p.onData((t) => (output += t));
  const exit = await p.exited;
  return { exit, output, connections };
}
