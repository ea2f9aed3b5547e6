import { execFileSync } from 'node:child_process';
import { link, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedPath } from '../../src/common/capability.ts';
import { LIMITS } from '../../src/common/limits.ts';
import { PathRefused, type ResolveIntent, windowsNameProblem, WorkspaceJail } from '../../src/host/workspace-jail.ts';

// A real tree: <base>/ws is the workspace, <base>/outside holds what the agent must not reach.
let base: string;
let ws: string;
let outside: string;
let jail: WorkspaceJail;
let socketServer: Server;

beforeAll(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'tether-jail-')));
  ws = join(base, 'ws');
  outside = join(base, 'outside');
  await mkdir(join(ws, 'sub', 'deeper'), { recursive: true });
  await mkdir(join(ws, '.git', 'hooks'), { recursive: true });
  await mkdir(join(outside, 'dir'), { recursive: true });
  await writeFile(join(ws, 'a.txt'), 'inside\n');
  await writeFile(join(ws, 'sub', 'b.txt'), 'inside b\n');
  await writeFile(join(ws, '.git', 'hooks', 'pre-commit'), '#!/bin/sh\n');
  await writeFile(join(outside, 'secret'), 'TOP SECRET\n');
  await writeFile(join(outside, 'dir', 'secret'), 'TOP SECRET 2\n');
  await symlink(outside, join(ws, 'linkdir'));
  await symlink(join(outside, 'secret'), join(ws, 'leak'));
  await symlink('a.txt', join(ws, 'alias'));
  await symlink(join(outside, 'not-yet'), join(ws, 'dangling-out'));
  await symlink('sub/new-target.txt', join(ws, 'dangling-in'));
  await symlink(join(ws, 'loop2'), join(ws, 'loop1'));
  await symlink(join(ws, 'loop1'), join(ws, 'loop2'));
  await symlink(join(base, 'nowhere'), join(ws, 'deaddir'));
  await symlink(join(ws, 'missing-dir'), join(ws, 'deadin'));
  await symlink(join(ws, 'a.txt'), join(outside, 'back-in'));
  await symlink(join(outside, 'back-in'), join(ws, 'roundtrip'));
  execFileSync('mkfifo', [join(outside, 'fifo')]);
  await symlink('/dev/null', join(ws, 'devnull'));
  await symlink('sub/\x1b[2Jclear', join(ws, 'escape-link'));
  await writeFile(join(outside, 'linked-secret'), 'TOP SECRET 3\n');
  await link(join(outside, 'linked-secret'), join(ws, 'hardlink'));
  execFileSync('mkfifo', [join(ws, 'fifo')]);
  socketServer = createServer();
  await new Promise<void>((resolve) => socketServer.listen(join(ws, 'sock'), resolve));
  jail = await WorkspaceJail.open(ws);
});

afterAll(async () => {
  await jail?.close();
  await new Promise((resolve) => socketServer?.close(resolve));
  await rm(base, { recursive: true, force: true });
});

interface Expect {
  /** Expected canonical path, relative to <base>. */
  path?: string;
  inWorkspace?: boolean;
  relPath?: string;
  exists?: boolean;
  type?: ResolvedPath['type'];
  hardLinked?: boolean;
  requested?: string;
}

type Case = [name: string, input: () => string, intent: ResolveIntent, expected: Expect | RegExp];

// Each trick is its own case. A RegExp means PathRefused with that reason.
const cases: Case[] = [
  ['a relative file inside', () => 'a.txt', 'read', { path: 'ws/a.txt', inWorkspace: true, relPath: 'a.txt', exists: true, type: 'file' }],
  ['the root itself', () => '.', 'read', { path: 'ws', inWorkspace: true, relPath: '', type: 'directory' }],
  ['an absolute path inside', () => join(ws, 'sub', 'b.txt'), 'read', { path: 'ws/sub/b.txt', inWorkspace: true, relPath: 'sub/b.txt' }],
  ['`..` that stays inside', () => 'sub/deeper/../../a.txt', 'read', { path: 'ws/a.txt', inWorkspace: true }],
  ['`..` escaping the root (reported, never examined)', () => '../outside/secret', 'read', { path: 'outside/secret', inWorkspace: false, exists: false }],
  ['`..` escaping from a subdirectory', () => 'sub/../../outside/secret', 'write', { path: 'outside/secret', inWorkspace: false }],
  ['an absolute path outside', () => join(outside, 'secret'), 'read', { path: 'outside/secret', inWorkspace: false }],
  ['/etc/passwd', () => '/etc/passwd', 'read', { inWorkspace: false, exists: false }],
  ['a FIFO outside (not even looked at)', () => join(outside, 'fifo'), 'read', { path: 'outside/fifo', inWorkspace: false }],
  ['an automount-style path outside (not touched)', () => '/net/exfil.example.com/x', 'read', { inWorkspace: false, exists: false }],
  ['a symlink out of the workspace and another one back in', () => 'roundtrip', 'read', { path: 'outside/back-in', inWorkspace: false, requested: 'ws/roundtrip' }],
  ['a symlinked directory component pointing outside', () => 'linkdir/secret', 'read', { path: 'outside/secret', inWorkspace: false, requested: 'ws/linkdir/secret' }],
  ['a symlinked directory component, for a new file', () => 'linkdir/new.txt', 'write', { path: 'outside/new.txt', inWorkspace: false, exists: false }],
  ['a final symlink to a file outside (read)', () => 'leak', 'read', { path: 'outside/secret', inWorkspace: false, requested: 'ws/leak' }],
  ['a final symlink to a file outside (write)', () => 'leak', 'write', { path: 'outside/secret', inWorkspace: false }],
  ['a final symlink inside the workspace', () => 'alias', 'write', { path: 'ws/a.txt', inWorkspace: true, relPath: 'a.txt', type: 'file' }],
  ['a dangling symlink to outside (write lands on its target)', () => 'dangling-out', 'write', { path: 'outside/not-yet', inWorkspace: false, exists: false }],
  ['a dangling symlink inside (write lands on its target)', () => 'dangling-in', 'write', { path: 'ws/sub/new-target.txt', inWorkspace: true, exists: false }],
  ['a symlink as the entry itself (delete/move)', () => 'leak', 'entry', { path: 'ws/leak', inWorkspace: true, type: 'symlink' }],
  ['a hard link to a file outside', () => 'hardlink', 'read', { path: 'ws/hardlink', inWorkspace: true, type: 'file', hardLinked: true }],
  ['.git/hooks (resolved; policy forbids it)', () => '.git/hooks/pre-commit', 'write', { path: 'ws/.git/hooks/pre-commit', inWorkspace: true, relPath: '.git/hooks/pre-commit' }],
  ['a new file in new subdirectories', () => 'new/a/b/c.txt', 'write', { path: 'ws/new/a/b/c.txt', inWorkspace: true, relPath: 'new/a/b/c.txt', exists: false }],
  ['unicode and spaces in names', () => 'dir with space/ünïcødé 文件 😀.txt', 'write', { path: 'ws/dir with space/ünïcødé 文件 😀.txt', relPath: 'dir with space/ünïcødé 文件 😀.txt', inWorkspace: true }],
  ['a literal ~ (never expanded)', () => '~/.ssh/id_rsa', 'read', { path: 'ws/~/.ssh/id_rsa', inWorkspace: true, exists: false }],
  ['a NUL byte', () => 'a.txt\0.png', 'read', /NUL byte/],
  ['an empty path', () => '', 'read', /empty/],
  ['a newline (could forge consent lines)', () => 'a\nb.txt', 'write', /control character/],
  ['a right-to-left override', () => 'evil\u202Etxt.exe', 'write', /bidirectional/],
  ['a symlink whose target has an escape sequence', () => 'escape-link', 'write', /symbolic link to a name with control characters/],
  ['lone surrogates', () => 'bad\uD800.txt', 'write', /well-formed/],
  ['a path over the length limit', () => 'x/'.repeat(LIMITS.maxPathChars), 'read', /over 4096 characters/],
  ['a name over the file-system limit', () => `${'n'.repeat(300)}.txt`, 'write', /too long/],
  ['a FIFO (read)', () => 'fifo', 'read', /device, FIFO or socket/],
  ['a FIFO (write)', () => 'fifo', 'write', /device, FIFO or socket/],
  ['a socket', () => 'sock', 'read', /device, FIFO or socket/],
  ['/dev/null', () => '/dev/null', 'read', /device or kernel file system/],
  ['/dev/zero (write)', () => '/dev/zero', 'write', /device or kernel file system/],
  ['/proc/self/environ', () => '/proc/self/environ', 'read', /device or kernel file system/],
  ['a symlink inside pointing at /dev/null', () => 'devnull', 'read', /device or kernel file system/],
  ['a symlink loop', () => 'loop1', 'read', /levels of symbolic links/],
  ['a dangling directory symlink to outside', () => 'deaddir/x.txt', 'write', { path: 'nowhere/x.txt', inWorkspace: false }],
  ['a dangling directory symlink inside (a write creates its target)', () => 'deadin/x.txt', 'write', { path: 'ws/missing-dir/x.txt', inWorkspace: true, exists: false }],
  ['a file used as a directory', () => 'a.txt/x', 'read', /not a directory/],
];

// Both ways of making the calls: in place (a local volume) and on the thread pool (as on a network volume).
describe.each(['auto', 'thread-pool'] as const)('WorkspaceJail.resolve (io: %s)', (io) => {
  let jail: WorkspaceJail;
  beforeAll(async () => {
    jail = await WorkspaceJail.open(ws, { io });
  });
  afterAll(async () => {
    await jail?.close();
  });

  it.each(cases)('%s', async (_name, input, intent, expected) => {
    if (expected instanceof RegExp) {
      const err = await jail.resolve(input(), { intent }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(PathRefused);
      expect((err as Error).message).toMatch(expected);
      return;
    }
    const r = await jail.resolve(input(), { intent });
    if (expected.path !== undefined) expect(r.path).toBe(join(base, expected.path));
    if (expected.inWorkspace !== undefined) expect(r.inWorkspace).toBe(expected.inWorkspace);
    if (expected.relPath !== undefined) expect(r.relPath).toBe(expected.relPath);
    if (expected.exists !== undefined) expect(r.exists).toBe(expected.exists);
    if (expected.type !== undefined) expect(r.type).toBe(expected.type);
    expect(r.hardLinked ?? false).toBe(expected.hardLinked ?? false);
    if (expected.requested !== undefined) expect(r.requested).toBe(join(base, expected.requested));
    if (!r.inWorkspace) {
      expect(r.exists).toBe(false);
      expect([r.relPath, r.identity, r.type]).toEqual([undefined, undefined, undefined]);
      return;
    }
    expect(r.identity?.dirId).toMatch(/^\d+:\d+(:\d+)?$/);
    if (r.exists) expect(r.identity?.target).toMatch(/^\d+:\d+(:\d+)?$/);
  });

  it('records the nearest existing directory for a path whose parents are missing', async () => {
    const r = await jail.resolve('new/a/b/c.txt', { intent: 'write' });
    expect(r.identity?.dir).toBe(ws);
    const s = await jail.resolve('sub/x.txt', { intent: 'write' });
    expect(s.identity?.dir).toBe(join(ws, 'sub'));
  });

  it('gives a file reached through an inside symlink the identity of its target', async () => {
    const viaLink = await jail.resolve('alias');
    const direct = await jail.resolve('a.txt');
    expect(viaLink.identity?.target).toBe(direct.identity?.target);
    expect(viaLink.requested).toBe(join(ws, 'alias'));
  });
});

describe('WorkspaceJail.open', () => {
  it.each<[string, () => string, RegExp]>([
    ['the file-system root', () => '/', /file-system root/],
    ['the home directory', () => homedir(), /home directory/],
    ['a file', () => join(ws, 'a.txt'), /not a directory/],
    ['a missing directory', () => join(base, 'missing'), /cannot be opened \(ENOENT\)/],
  ])('refuses %s as a workspace', async (_name, root, reason) => {
    const err = await WorkspaceJail.open(root()).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PathRefused);
    expect((err as Error).message).toMatch(reason);
  });

  it('canonicalises a root given through a symlink', async () => {
    const viaLink = join(base, 'ws-link');
    await symlink(ws, viaLink);
    const j = await WorkspaceJail.open(viaLink);
    try {
      expect(j.root).toBe(ws);
      expect((await j.resolve(join(viaLink, 'a.txt'))).path).toBe(join(ws, 'a.txt'));
      expect((await j.resolve(join(viaLink, 'a.txt'))).inWorkspace).toBe(true);
    } finally {
      await j.close();
    }
  });

  it('anchors through /proc/self/fd on Linux and by path when asked to', async () => {
    expect(jail.anchoring).toBe(process.platform === 'linux' ? 'procfd' : 'path');
    const j = await WorkspaceJail.open(ws, { anchoring: 'path' });
    expect(j.anchoring).toBe('path');
    await j.close();
  });

  it('makes calls in place on this local volume on Linux, and on the thread pool when asked to', async () => {
    expect(jail.syncIo).toBe(process.platform === 'linux');
    const j = await WorkspaceJail.open(ws, { io: 'thread-pool' });
    expect(j.syncIo).toBe(false);
    expect(j.inPlace((await j.resolve('a.txt')).identity?.target)).toBe(false);
    await j.close();
    expect(jail.inPlace((await jail.resolve('a.txt')).identity?.target)).toBe(process.platform === 'linux');
    expect(jail.inPlace('1:2:3')).toBe(false); // another device
    expect(jail.inPlace(undefined)).toBe(false);
  });

  it('detects that this volume is case-sensitive', () => {
    expect(jail.caseInsensitive).toBe(false);
  });
});

describe('case-insensitive volumes (folding forced on, as on macOS and Windows)', () => {
  it('folds relPath so policy patterns match every spelling, and keeps the on-disk case in path', async () => {
    await mkdir(join(ws, 'Docs'), { recursive: true });
    await writeFile(join(ws, 'Docs', 'Secret.ENV'), 'x');
    const j = await WorkspaceJail.open(ws, { caseInsensitive: true });
    try {
      const r = await j.resolve('Docs/Secret.ENV');
      expect(r.relPath).toBe('docs/secret.env');
      expect(r.path).toBe(join(ws, 'Docs', 'Secret.ENV'));
      expect(j.contains(`${ws.toUpperCase()}/X`)).toBe(true);
      expect(j.contains(`${ws}X`.toUpperCase())).toBe(false);
      expect(j.relative(join(ws, 'Docs', 'Secret.ENV'))).toBe('Docs/Secret.ENV');
    } finally {
      await j.close();
    }
  });

  it('compares case-sensitively on a case-sensitive volume', () => {
    expect(jail.contains(`${ws.toUpperCase()}/X`)).toBe(false);
  });
});

describe('windowsNameProblem', () => {
  it.each<[string, RegExp | undefined]>([
    ['normal.txt', undefined],
    ['.env:secret', /reserved|data streams/],
    ['con', /reserved device/],
    ['NUL.txt', /reserved device/],
    ['com1.log', /reserved device/],
    ['trailing.', /dot or space/],
    ['trailing ', /dot or space/],
    ['what?.txt', /reserves/],
    ['console.txt', undefined],
  ])('%s', (name, problem) => {
    const got = windowsNameProblem(name);
    if (problem) expect(got).toMatch(problem);
    else expect(got).toBeUndefined();
  });
});
