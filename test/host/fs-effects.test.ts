import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResolvedPath } from '../../src/common/capability.ts';
import { LIMITS } from '../../src/common/limits.ts';
import { compileSearchPattern, FsEffectError, FsEffects, sliceLines } from '../../src/host/fs-effects.ts';
import { runSearch, type SearchJob } from '../../src/host/fs-search-worker.ts';
import { PathChanged, WorkspaceJail } from '../../src/host/workspace-jail.ts';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

let base: string;
let ws: string;
let outside: string;

beforeEach(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'tether-fx-')));
  ws = join(base, 'ws');
  outside = join(base, 'outside');
  await mkdir(join(ws, 'sub'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(ws, 'f.txt'), 'original\n');
  await writeFile(join(ws, 'sub', 'g.txt'), 'in sub\n');
  await writeFile(join(outside, 'secret'), 'TOP SECRET\n');
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof Error)) throw new Error('expected the promise to reject');
  return e;
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

// Every check-then-use trick, in both anchoring modes (fds through /proc/self/fd
// on Linux, and the by-path fallback other platforms use) and both ways of making
// the calls (in place on a local volume, on the thread pool as on a network one).
describe.each([['auto', 'auto'], ['auto', 'thread-pool'], ['path', 'auto'], ['path', 'thread-pool']] as const)('effects refuse what changed after resolution (anchoring: %s, io: %s)', (anchoring, io) => {
  let jail: WorkspaceJail;
  let fx: FsEffects;
  beforeEach(async () => {
    jail = await WorkspaceJail.open(ws, { anchoring, io });
    fx = new FsEffects(jail);
  });
  afterEach(async () => {
    await jail.close();
  });

  type Swap = [name: string, input: string, intent: 'read' | 'write' | 'entry', swap: () => Promise<void>, act: (t: ResolvedPath) => Promise<unknown>, untouched: () => Promise<void>];
  const swaps: Swap[] = [
    [
      'write: final component swapped for a symlink to a file outside',
      'f.txt', 'write',
      async () => { await rm(join(ws, 'f.txt')); await symlink(join(outside, 'secret'), join(ws, 'f.txt')); },
      (t) => fx.writeText(t, 'PWNED'),
      async () => { expect(await readlink(join(ws, 'f.txt'))).toBe(join(outside, 'secret')); },
    ],
    [
      'write of a new file: a symlink to outside appears at its name',
      'new.txt', 'write',
      async () => { await symlink(join(outside, 'created-by-write'), join(ws, 'new.txt')); },
      (t) => fx.writeText(t, 'PWNED'),
      async () => { expect(await exists(join(outside, 'created-by-write'))).toBe(false); },
    ],
    [
      'write: parent directory swapped for a symlink to outside',
      'sub/g.txt', 'write',
      async () => { await rename(join(ws, 'sub'), join(base, 'sub-moved')); await mkdir(join(outside, 'sub')); await writeFile(join(outside, 'sub', 'g.txt'), 'outside g\n'); await symlink(join(outside, 'sub'), join(ws, 'sub')); },
      (t) => fx.writeText(t, 'PWNED'),
      async () => { expect(await readFile(join(outside, 'sub', 'g.txt'), 'utf8')).toBe('outside g\n'); },
    ],
    [
      'write: the real parent moved outside and a symlink left in its place (same directory identity)',
      'sub/g.txt', 'write',
      async () => { await rename(join(ws, 'sub'), join(outside, 'sub')); await symlink(join(outside, 'sub'), join(ws, 'sub')); },
      (t) => fx.writeText(t, 'PWNED'),
      async () => { expect(await readFile(join(outside, 'sub', 'g.txt'), 'utf8')).toBe('in sub\n'); },
    ],
    [
      'write: a directory above the parent moved outside and a symlink left in its place (same identities below it)',
      'nest/deep/h.txt', 'write',
      async () => { await rename(join(ws, 'nest'), join(outside, 'nest')); await symlink(join(outside, 'nest'), join(ws, 'nest')); },
      (t) => fx.writeText(t, 'PWNED'),
      async () => { expect(await readFile(join(outside, 'nest', 'deep', 'h.txt'), 'utf8')).toBe('deep h\n'); },
    ],
    [
      'read: a directory above the parent moved outside and a symlink left in its place',
      'nest/deep/h.txt', 'read',
      async () => { await rename(join(ws, 'nest'), join(outside, 'nest')); await symlink(join(outside, 'nest'), join(ws, 'nest')); },
      (t) => fx.readText(t),
      async () => undefined,
    ],
    [
      'write of a new file in new directories: a symlink to outside appears as the first new directory',
      'n1/n2/new.txt', 'write',
      async () => { await symlink(outside, join(ws, 'n1')); },
      (t) => fx.writeText(t, 'PWNED'),
      async () => { expect(await exists(join(outside, 'n2'))).toBe(false); },
    ],
    [
      'write: file replaced by another regular file',
      'f.txt', 'write',
      async () => { await rm(join(ws, 'f.txt')); await writeFile(join(ws, 'f.txt'), 'someone else\n'); },
      (t) => fx.writeText(t, 'PWNED'),
      async () => { expect(await readFile(join(ws, 'f.txt'), 'utf8')).toBe('someone else\n'); },
    ],
    [
      'read: final component swapped for a symlink to a file outside',
      'f.txt', 'read',
      async () => { await rm(join(ws, 'f.txt')); await symlink(join(outside, 'secret'), join(ws, 'f.txt')); },
      (t) => fx.readText(t),
      async () => undefined,
    ],
    [
      'read: parent directory swapped for a symlink to outside',
      'sub/g.txt', 'read',
      async () => { await rename(join(ws, 'sub'), join(base, 'sub-moved')); await mkdir(join(outside, 'sub')); await writeFile(join(outside, 'sub', 'g.txt'), 'TOP SECRET G\n'); await symlink(join(outside, 'sub'), join(ws, 'sub')); },
      (t) => fx.readText(t),
      async () => undefined,
    ],
    [
      'list: directory swapped for a symlink to outside',
      'sub', 'read',
      async () => { await rename(join(ws, 'sub'), join(base, 'sub-moved')); await symlink(outside, join(ws, 'sub')); },
      (t) => fx.list(t),
      async () => undefined,
    ],
    [
      'delete: file swapped for a symlink to a file outside',
      'f.txt', 'entry',
      async () => { await rm(join(ws, 'f.txt')); await symlink(join(outside, 'secret'), join(ws, 'f.txt')); },
      (t) => fx.delete(t),
      async () => { expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET\n'); expect(await exists(join(ws, 'f.txt'))).toBe(true); },
    ],
    [
      'delete (recursive): directory swapped for a symlink to outside',
      'sub', 'entry',
      async () => { await rename(join(ws, 'sub'), join(base, 'sub-moved')); await symlink(outside, join(ws, 'sub')); },
      (t) => fx.delete(t, { recursive: true }),
      async () => { expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET\n'); },
    ],
    [
      'move: a symlink to outside appears at the destination',
      'f.txt', 'entry',
      async () => { await symlink(join(outside, 'moved-here'), join(ws, 'dest.txt')); },
      async (t) => fx.move(t, await destination, { overwrite: false }),
      async () => { expect(await exists(join(outside, 'moved-here'))).toBe(false); expect(await readFile(join(ws, 'f.txt'), 'utf8')).toBe('original\n'); },
    ],
  ];
  // The move case resolves its destination before the swap, like the broker does.
  let destination: Promise<ResolvedPath>;

  it.each(swaps)('%s', async (_name, input, intent, swap, act, untouched) => {
    await mkdir(join(ws, 'nest', 'deep'), { recursive: true });
    await writeFile(join(ws, 'nest', 'deep', 'h.txt'), 'deep h\n');
    const t = await jail.resolve(input, { intent });
    expect(t.inWorkspace).toBe(true);
    destination = jail.resolve('dest.txt', { intent: 'entry' });
    await destination;
    await swap();
    const err = await errorOf(act(t));
    expect(err).toBeInstanceOf(PathChanged);
    expect(err.message).toMatch(/after it was checked; nothing was done/);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET\n');
    await untouched();
    const strays = (await readdir(outside, { recursive: true })).filter((n) => n.includes('PWNED') || n.startsWith('.tether-'));
    expect(strays).toEqual([]);
  });

  it('a write over a hard link to a file outside replaces the link and leaves the outside file untouched', async () => {
    await link(join(outside, 'secret'), join(ws, 'hl.txt'));
    const t = await jail.resolve('hl.txt', { intent: 'write' });
    expect(t.hardLinked).toBe(true);
    const r = await fx.writeText(t, 'new content\n');
    expect(r.preSha256).toBe(sha('TOP SECRET\n'));
    expect(await readFile(join(ws, 'hl.txt'), 'utf8')).toBe('new content\n');
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET\n');
    expect((await stat(join(outside, 'secret'))).nlink).toBe(1);
  });

  it('writes through an inside symlink to its target and leaves the link a link', async () => {
    await symlink('f.txt', join(ws, 'alias'));
    const t = await jail.resolve('alias', { intent: 'write' });
    await fx.writeText(t, 'via alias\n');
    expect(await readlink(join(ws, 'alias'))).toBe('f.txt');
    expect(await readFile(join(ws, 'f.txt'), 'utf8')).toBe('via alias\n');
  });
});

describe.each(['auto', 'thread-pool'] as const)('no write lands outside while another process keeps swapping the parent for a symlink (fd anchoring, io: %s)', (io) => {
  it.runIf(process.platform === 'linux')('holds over repeated writes', async () => {
    const jail = await WorkspaceJail.open(ws, { io });
    const fx = new FsEffects(jail, { durable: false });
    await mkdir(join(outside, 'sub'));
    // The swapper moves the real ws/sub away, puts a symlink to outside/sub in its place, then restores it; each step atomic.
    const script = `
      const fs = require('node:fs');
      const [ws, out] = process.argv.slice(1);
      let n = 0;
      // The host may recreate ws/sub while it is missing (a write creates missing parents): move that aside.
      const mv = (a, b) => {
        try { fs.renameSync(a, b); } catch (e) {
          if (!['EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EEXIST'].includes(e.code)) throw e;
          fs.renameSync(b, ws + '/.extra' + n++);
          fs.renameSync(a, b);
        }
      };
      fs.symlinkSync(out + '/sub', ws + '/.evil');
      const end = Date.now() + 10000;
      let first = true;
      while (Date.now() < end) {
        mv(ws + '/sub', ws + '/.hide');
        mv(ws + '/.evil', ws + '/sub');
        mv(ws + '/sub', ws + '/.evil');
        mv(ws + '/.hide', ws + '/sub');
        if (first) { fs.writeSync(1, 'ready\\n'); first = false; }
      }`;
    const child = spawn(process.execPath, ['-e', script, ws, outside], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    let written = 0;
    let refused = 0;
    const until = Date.now() + 8000;
    for (let i = 0; (i < 200 || written === 0 || refused === 0) && Date.now() < until; i++) {
      try {
        const t = await jail.resolve('sub/w.txt', { intent: 'write' });
        if (!t.inWorkspace) {
          refused++;
          continue;
        }
        await fx.writeText(t, 'x');
        written++;
      } catch {
        refused++;
      }
    }
    child.kill();
    await exited;
    await jail.close();
    expect(await readdir(join(outside, 'sub'))).toEqual([]);
    expect(written, `written ${written}, refused ${refused}`).toBeGreaterThan(0);
    expect(refused, `written ${written}, refused ${refused}`).toBeGreaterThan(0);
  });
});

describe.each(['auto', 'thread-pool'] as const)('file descriptors (io: %s)', (io) => {
  it.runIf(process.platform === 'linux')('closes every fd it opens, on success and on refusal', async () => {
    const jail = await WorkspaceJail.open(ws, { io });
    const fx = new FsEffects(jail);
    const count = async () => (await readdir('/proc/self/fd')).length;
    await fx.readText(await jail.resolve('sub/g.txt'));
    const before = await count();
    for (let i = 0; i < 20; i++) {
      await fx.readText(await jail.resolve('sub/g.txt'));
      await fx.writeText(await jail.resolve(`n/${i}/w.txt`, { intent: 'write' }), 'w');
      await fx.list(await jail.resolve('n'));
      await fx.stat(await jail.resolve('f.txt'));
      const t = await jail.resolve('sub/g.txt', { intent: 'write' });
      await rename(join(ws, 'sub'), join(ws, `sub-${i}`));
      await symlink(outside, join(ws, 'sub'));
      await errorOf(fx.writeText(t, 'x'));
      await rm(join(ws, 'sub'));
      await rename(join(ws, `sub-${i}`), join(ws, 'sub'));
    }
    await fx.delete(await jail.resolve('n', { intent: 'entry' }), { recursive: true });
    expect(await count()).toBe(before);
    await jail.close();
  });
});

describe.each(['auto', 'thread-pool'] as const)('FsEffects (io: %s)', (io) => {
  let jail: WorkspaceJail;
  let fx: FsEffects;
  beforeEach(async () => {
    jail = await WorkspaceJail.open(ws, { io });
    fx = new FsEffects(jail);
  });
  afterEach(async () => {
    await jail.close();
  });

  describe('readText', () => {
    it.each<[string, number | null, number | null, string]>([
      ['whole file', null, null, 'l1\nl2\nl3\nl4'],
      ['from line 2, two lines', 2, 2, 'l2\nl3\n'],
      ['the last line (no newline)', 4, null, 'l4'],
      ['a limit alone', null, 1, 'l1\n'],
      ['past the end', 10, 5, ''],
    ])('%s', async (_name, line, limit, want) => {
      await writeFile(join(ws, 'lines.txt'), 'l1\nl2\nl3\nl4');
      const r = await fx.readText(await jail.resolve('lines.txt'), { line, limit });
      expect(r.content).toBe(want);
      expect(r.sha256).toBe(sha('l1\nl2\nl3\nl4'));
    });

    it('reads a line range of a file over the read limit without reading it whole, and refuses it whole', async () => {
      const big = Buffer.alloc(LIMITS.maxReadBytes + 1024, 'a\n');
      await writeFile(join(ws, 'big.txt'), big);
      const t = await jail.resolve('big.txt');
      const err = await errorOf(fx.readText(t));
      expect(err).toMatchObject({ code: 'too-large' });
      const r = await fx.readText(t, { line: 3, limit: 2 });
      expect(r.content).toBe('a\na\n');
      expect(r.sha256).toBeUndefined();
      expect(r.bytes).toBeLessThan(big.length);
    });

    it.each<[string, () => Promise<string>, string]>([
      ['a binary file', async () => { await writeFile(join(ws, 'bin'), Buffer.from([1, 2, 0, 3])); return 'bin'; }, 'binary'],
      ['a directory', async () => 'sub', 'not-a-file'],
      ['a missing file', async () => 'missing.txt', 'not-found'],
      ['a file outside the workspace', async () => join(outside, 'secret'), 'outside'],
    ])('refuses %s', async (_name, setup, code) => {
      const err = await errorOf(fx.readText(await jail.resolve(await setup())));
      expect(err).toBeInstanceOf(FsEffectError);
      expect(err).toMatchObject({ code });
    });

    it('refuses a ResolvedPath the jail did not produce', async () => {
      const forged: ResolvedPath = { path: join(ws, 'f.txt'), relPath: 'f.txt', inWorkspace: true, exists: true, type: 'file' };
      expect(await errorOf(fx.readText(forged))).toMatchObject({ code: 'unresolved' });
    });
  });

  describe('writeText', () => {
    it('creates a file and reports its hash and no pre-hash', async () => {
      const { durable, ...r } = await fx.writeText(await jail.resolve('new.txt', { intent: 'write' }), 'héllo\n');
      await durable;
      expect(r).toEqual({ created: true, bytes: Buffer.byteLength('héllo\n'), postSha256: sha('héllo\n'), createdDirs: [] });
      expect(await readFile(join(ws, 'new.txt'), 'utf8')).toBe('héllo\n');
    });

    it('replaces a file, reports the hashes before and after, keeps its mode and leaves no temp file', async () => {
      await chmod(join(ws, 'f.txt'), 0o751);
      const r = await fx.writeText(await jail.resolve('f.txt', { intent: 'write' }), 'changed\n');
      expect(r).toMatchObject({ created: false, preSha256: sha('original\n'), postSha256: sha('changed\n'), bytes: 8 });
      expect((await stat(join(ws, 'f.txt'))).mode & 0o777).toBe(0o751);
      expect((await readdir(ws)).filter((n) => n.startsWith('.tether-'))).toEqual([]);
    });

    it('creates missing directories inside the workspace', async () => {
      const r = await fx.writeText(await jail.resolve('a/b/c/new.txt', { intent: 'write' }), 'deep');
      expect(r.createdDirs).toEqual([join(ws, 'a'), join(ws, 'a', 'b'), join(ws, 'a', 'b', 'c')]);
      expect(await readFile(join(ws, 'a', 'b', 'c', 'new.txt'), 'utf8')).toBe('deep');
    });

    it.each<[string, string, string]>([
      ['outside the workspace', '../outside/new', 'outside'],
      ['onto a directory', 'sub', 'not-a-file'],
      ['onto the workspace root', '.', 'root'],
    ])('refuses a write %s', async (_name, input, code) => {
      expect(await errorOf(fx.writeText(await jail.resolve(input, { intent: 'write' }), 'x'))).toMatchObject({ code });
    });

    describe('staged (content written beside the target first, renamed over it later)', () => {
      const temps = async (dir = ws) => (await readdir(dir)).filter((n) => n.startsWith('.tether-'));

      it('stages without touching the target, then commits: the target changes, the temp file is gone, the rename is made durable', async () => {
        const t = await jail.resolve('f.txt', { intent: 'write' });
        const staged = await fx.stageWrite(t, 'staged\n');
        expect(staged).toBeDefined();
        expect(await readFile(join(ws, 'f.txt'), 'utf8')).toBe('original\n');
        expect(await temps()).toHaveLength(1);
        const r = await fx.writeText(t, 'staged\n', staged);
        expect(r).toMatchObject({ created: false, preSha256: sha('original\n'), postSha256: sha('staged\n'), bytes: 7 });
        await r.durable;
        expect(await readFile(join(ws, 'f.txt'), 'utf8')).toBe('staged\n');
        expect(await temps()).toEqual([]);
      });

      it('discards: the temp file is removed and the target is as it was', async () => {
        const staged = await fx.stageWrite(await jail.resolve('f.txt', { intent: 'write' }), 'never\n');
        await fx.discardStaged(staged!);
        await fx.discardStaged(staged!); // twice is harmless
        expect(await readFile(join(ws, 'f.txt'), 'utf8')).toBe('original\n');
        expect(await temps()).toEqual([]);
      });

      it('refuses to commit when the target was replaced after staging, and leaves no temp file', async () => {
        const t = await jail.resolve('f.txt', { intent: 'write' });
        const staged = await fx.stageWrite(t, 'late\n');
        await rm(join(ws, 'f.txt'));
        await writeFile(join(ws, 'f.txt'), 'someone else\n');
        expect(await errorOf(fx.writeText(t, 'late\n', staged))).toBeInstanceOf(PathChanged);
        expect(await readFile(join(ws, 'f.txt'), 'utf8')).toBe('someone else\n');
        expect(await temps()).toEqual([]);
      });

      it('refuses to commit a staged write with other content or for another path', async () => {
        const t = await jail.resolve('f.txt', { intent: 'write' });
        const staged = await fx.stageWrite(t, 'one\n');
        expect(await errorOf(fx.writeText(t, 'two\n', staged))).toMatchObject({ code: 'unresolved' });
        const other = await fx.stageWrite(await jail.resolve('other.txt', { intent: 'write' }), 'one\n');
        expect(await errorOf(fx.writeText(t, 'one\n', other))).toMatchObject({ code: 'unresolved' });
        await fx.discardStaged(staged!);
        await fx.discardStaged(other!);
        expect(await readFile(join(ws, 'f.txt'), 'utf8')).toBe('original\n');
        expect(await temps()).toEqual([]);
      });

      it.runIf(process.platform === 'linux')('leaves no file descriptor open once a commit is durable, a staged write discarded, or a commit refused', async () => {
        const open = async () => (await readdir('/proc/self/fd')).length;
        const before = await open();
        const fresh = await jail.resolve('fresh.txt', { intent: 'write' });
        const r = await fx.writeText(fresh, 'new\n', await fx.stageWrite(fresh, 'new\n'));
        await r.durable;
        const replaced = await jail.resolve('f.txt', { intent: 'write' });
        await (await fx.writeText(replaced, 'again\n', await fx.stageWrite(replaced, 'again\n'))).durable;
        await fx.discardStaged((await fx.stageWrite(await jail.resolve('other.txt', { intent: 'write' }), 'x'))!);
        const late = await jail.resolve('late.txt', { intent: 'write' });
        const staged = await fx.stageWrite(late, 'late');
        await writeFile(join(ws, 'late.txt'), 'first');
        expect(await errorOf(fx.writeText(late, 'late', staged))).toBeInstanceOf(PathChanged);
        expect(await open()).toBe(before);
        expect(await readFile(join(ws, 'fresh.txt'), 'utf8')).toBe('new\n');
        expect(await temps()).toEqual([]);
      });

      it('does not stage a write whose directory does not exist yet (no directory is created before the commit)', async () => {
        expect(await fx.stageWrite(await jail.resolve('n/e/w.txt', { intent: 'write' }), 'x')).toBeUndefined();
        expect(await exists(join(ws, 'n'))).toBe(false);
      });

      it('refuses to stage what it would refuse to write', async () => {
        expect(await errorOf(fx.stageWrite(await jail.resolve('sub', { intent: 'write' }), 'x'))).toMatchObject({ code: 'not-a-file' });
        expect(await errorOf(fx.stageWrite(await jail.resolve('../outside/new', { intent: 'write' }), 'x'))).toMatchObject({ code: 'outside' });
        expect(await temps()).toEqual([]);
      });
    });

    it('refuses content over the write limit in bytes', async () => {
      const t = await jail.resolve('huge.txt', { intent: 'write' });
      expect(await errorOf(fx.writeText(t, 'é'.repeat(LIMITS.maxWriteBytes / 2 + 1)))).toMatchObject({ code: 'too-large' });
      expect(await exists(join(ws, 'huge.txt'))).toBe(false);
    });
  });

  describe('list', () => {
    it('lists entries sorted, with types, sizes for files, and symlinks not followed', async () => {
      await symlink(outside, join(ws, 'out-link'));
      const r = await fx.list(await jail.resolve('.'));
      expect(r).toEqual({
        path: ws,
        truncated: false,
        entries: [
          { name: 'f.txt', type: 'file', size: 9 },
          { name: 'out-link', type: 'symlink' },
          { name: 'sub', type: 'directory' },
        ],
      });
    });

    it('stops at LIMITS.maxListEntries and says it truncated', async () => {
      await mkdir(join(ws, 'many'));
      await Promise.all(Array.from({ length: LIMITS.maxListEntries + 5 }, (_, i) => writeFile(join(ws, 'many', `f${i}`), '')));
      const r = await fx.list(await jail.resolve('many'));
      expect(r.entries).toHaveLength(LIMITS.maxListEntries);
      expect(r.truncated).toBe(true);
    });

    it('refuses a file', async () => {
      expect(await errorOf(fx.list(await jail.resolve('f.txt')))).toMatchObject({ code: 'not-a-directory' });
    });
  });

  describe('stat', () => {
    it.each<[string, string, 'read' | 'entry', object]>([
      ['a file', 'f.txt', 'read', { exists: true, type: 'file', size: 9 }],
      ['a directory', 'sub', 'read', { exists: true, type: 'directory' }],
      ['the root', '.', 'read', { exists: true, type: 'directory' }],
      ['a missing file', 'nope.txt', 'read', { exists: false }],
      ['a missing file in missing directories', 'x/y/z', 'read', { exists: false }],
      ['a symlink entry (not followed)', 'link', 'entry', { exists: true, type: 'symlink' }],
    ])('%s', async (_name, input, intent, want) => {
      await symlink(join(outside, 'secret'), join(ws, 'link'));
      const r = await fx.stat(await jail.resolve(input, { intent }));
      expect(r).toMatchObject(want);
    });
  });

  describe('delete', () => {
    it('deletes a file and reports its hash', async () => {
      const r = await fx.delete(await jail.resolve('f.txt', { intent: 'entry' }));
      expect(r).toEqual({ preSha256: sha('original\n'), removed: 1 });
      expect(await exists(join(ws, 'f.txt'))).toBe(false);
    });

    it('refuses a non-empty directory without recursive, and deletes it all with recursive (symlinks inside removed, not followed)', async () => {
      await mkdir(join(ws, 'sub', 'deep'));
      await writeFile(join(ws, 'sub', 'deep', 'h.txt'), 'h');
      await symlink(outside, join(ws, 'sub', 'deep', 'out'));
      const t = await jail.resolve('sub', { intent: 'entry' });
      expect(await errorOf(fx.delete(t))).toMatchObject({ code: 'not-empty' });
      expect(await exists(join(ws, 'sub', 'g.txt'))).toBe(true);
      const r = await fx.delete(t, { recursive: true });
      expect(r.removed).toBe(5);
      expect(await exists(join(ws, 'sub'))).toBe(false);
      expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET\n');
    });

    it('deletes an empty directory without recursive', async () => {
      await mkdir(join(ws, 'empty'));
      expect(await fx.delete(await jail.resolve('empty', { intent: 'entry' }))).toEqual({ removed: 1 });
      expect(await exists(join(ws, 'empty'))).toBe(false);
    });

    it('deletes a symlink itself, not what it points to', async () => {
      await symlink(join(outside, 'secret'), join(ws, 'link'));
      await fx.delete(await jail.resolve('link', { intent: 'entry' }));
      expect(await exists(join(ws, 'link'))).toBe(false);
      expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET\n');
    });

    it.each<[string, string, string]>([
      ['the workspace root', '.', 'root'],
      ['a missing file', 'nope', 'not-found'],
      ['a file outside', '../outside/secret', 'outside'],
    ])('refuses %s', async (_name, input, code) => {
      expect(await errorOf(fx.delete(await jail.resolve(input, { intent: 'entry' }), { recursive: true }))).toMatchObject({ code });
    });
  });

  describe('move', () => {
    const entry = (p: string) => jail.resolve(p, { intent: 'entry' });

    it('renames a file', async () => {
      const r = await fx.move(await entry('f.txt'), await entry('renamed.txt'));
      expect(r).toEqual({ from: join(ws, 'f.txt'), to: join(ws, 'renamed.txt'), overwritten: false, createdDirs: [] });
      expect(await readFile(join(ws, 'renamed.txt'), 'utf8')).toBe('original\n');
      expect(await exists(join(ws, 'f.txt'))).toBe(false);
    });

    it('refuses an existing destination without overwrite and replaces it with overwrite', async () => {
      const from = await entry('f.txt');
      const to = await entry('sub/g.txt');
      expect(await errorOf(fx.move(from, to))).toMatchObject({ code: 'exists' });
      expect(await readFile(join(ws, 'sub', 'g.txt'), 'utf8')).toBe('in sub\n');
      const r = await fx.move(from, to, { overwrite: true });
      expect(r).toMatchObject({ overwritten: true, preSha256: sha('in sub\n') });
      expect(await readFile(join(ws, 'sub', 'g.txt'), 'utf8')).toBe('original\n');
      expect(await exists(join(ws, 'f.txt'))).toBe(false);
    });

    it('moves into new directories, and moves whole directories', async () => {
      const r = await fx.move(await entry('f.txt'), await entry('n1/n2/f.txt'));
      expect(r.createdDirs).toEqual([join(ws, 'n1'), join(ws, 'n1', 'n2')]);
      await fx.move(await entry('n1'), await entry('sub/n1'));
      expect(await readFile(join(ws, 'sub', 'n1', 'n2', 'f.txt'), 'utf8')).toBe('original\n');
    });

    it('moves a symlink as a link, leaving its target alone', async () => {
      await symlink(join(outside, 'secret'), join(ws, 'link'));
      await fx.move(await entry('link'), await entry('sub/link'));
      expect(await readlink(join(ws, 'sub', 'link'))).toBe(join(outside, 'secret'));
      expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET\n');
    });

    it('refuses to move a file onto another hard link of itself (rename would silently do nothing)', async () => {
      await link(join(ws, 'f.txt'), join(ws, 'f2.txt'));
      expect(await errorOf(fx.move(await entry('f.txt'), await entry('f2.txt'), { overwrite: true }))).toMatchObject({ code: 'exists' });
      expect(await exists(join(ws, 'f.txt'))).toBe(true);
    });

    it.each<[string, string, string, string]>([
      ['from outside', '../outside/secret', 'x.txt', 'outside'],
      ['to outside', 'f.txt', '../outside/moved', 'outside'],
      ['the root', '.', 'elsewhere', 'root'],
      ['a directory into itself', 'sub', 'sub/inner', 'io'],
    ])('refuses a move %s', async (_name, from, to, code) => {
      expect(await errorOf(fx.move(await entry(from), await entry(to)))).toMatchObject({ code });
      expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET\n');
    });
  });

  describe('search', () => {
    beforeEach(async () => {
      await mkdir(join(ws, 'src', 'deep'), { recursive: true });
      await mkdir(join(ws, '.git'), { recursive: true });
      await mkdir(join(ws, 'node_modules', 'pkg'), { recursive: true });
      await writeFile(join(ws, 'src', 'a.ts'), 'const needle = 1;\nno match\nNEEDLE again\n');
      await writeFile(join(ws, 'src', 'deep', 'b.ts'), 'x\nneedle in b\n');
      await writeFile(join(ws, 'src', 'c.md'), 'needle in markdown\n');
      await writeFile(join(ws, 'src', 'bin.dat'), Buffer.concat([Buffer.from('needle'), Buffer.from([0, 1, 2])]));
      await writeFile(join(ws, '.git', 'config'), 'needle in git\n');
      await writeFile(join(ws, 'node_modules', 'pkg', 'i.js'), 'needle in deps\n');
      await writeFile(join(outside, 'leak.ts'), 'needle outside\n');
      await symlink(outside, join(ws, 'src', 'outdir'));
      await symlink(join(outside, 'leak.ts'), join(ws, 'src', 'leak.ts'));
    });

    it('finds matching lines with paths and line numbers, skipping binary files, .git, node_modules and symlinks', async () => {
      const r = await fx.search(await jail.resolve('.'), 'needle');
      expect(r.matches).toEqual([
        { path: 'src/a.ts', line: 1, text: 'const needle = 1;' },
        { path: 'src/c.md', line: 1, text: 'needle in markdown' },
        { path: 'src/deep/b.ts', line: 2, text: 'needle in b' },
      ]);
      expect(r.truncated).toBe(false);
      expect(r.filesScanned).toBe(6);
    });

    it.each<[string, { include?: string; caseSensitive?: boolean; maxResults?: number }, string[], boolean]>([
      ['an include glob on the name', { include: '*.ts' }, ['src/a.ts', 'src/deep/b.ts'], false],
      ['an include glob on the path', { include: 'src/deep/**' }, ['src/deep/b.ts'], false],
      ['case-insensitive', { caseSensitive: false, include: 'a.ts' }, ['src/a.ts', 'src/a.ts'], false],
      ['maxResults, with truncation', { maxResults: 2 }, ['src/a.ts', 'src/c.md'], true],
    ])('%s', async (_name, opts, paths, truncated) => {
      const r = await fx.search(await jail.resolve('.'), 'needle', opts);
      expect(r.matches.map((m) => m.path)).toEqual(paths);
      expect(r.truncated).toBe(truncated);
    });

    it('searches a single file, and a subdirectory with workspace-relative paths', async () => {
      expect((await fx.search(await jail.resolve('src/a.ts'), 'again')).matches).toEqual([{ path: 'src/a.ts', line: 3, text: 'NEEDLE again' }]);
      expect((await fx.search(await jail.resolve('src/deep'), 'needle')).matches.map((m) => m.path)).toEqual(['src/deep/b.ts']);
    });

    it('searches node_modules when asked for it directly', async () => {
      expect((await fx.search(await jail.resolve('node_modules'), 'needle')).matches.map((m) => m.path)).toEqual(['node_modules/pkg/i.js']);
    });

    it('skips files over LIMITS.maxSearchFileBytes and says the result is incomplete', async () => {
      await writeFile(join(ws, 'src', 'huge.txt'), Buffer.alloc(LIMITS.maxSearchFileBytes + 1, 'needle\n'));
      const r = await fx.search(await jail.resolve('src'), 'needle', { include: 'huge.txt' });
      expect(r).toMatchObject({ matches: [], truncated: true });
    });

    it('stops at the file bound and says it truncated', () => {
      const job: SearchJob = {
        start: join(ws, 'src'), startRel: 'src', fdAnchoring: false, source: 'needle', flags: '', caseInsensitiveFs: false,
        maxResults: 100, maxFiles: 2, maxFileBytes: 1024, skipDirs: ['.git'], budgetMs: 5000,
      };
      const r = runSearch(job);
      expect(r.filesScanned).toBe(2);
      expect(r.truncated).toBe(true);
    });

    it.each<[string, string, RegExp]>([
      ['an invalid regex', 'a(b', /not a valid JavaScript regular expression/],
      ['a nested quantifier', '(a+)+$', /repeats a group that itself repeats \(\(a\+\)\+\)/],
      ['a nested quantifier in a non-capturing group with a range', '(?:\\w{2,}\\s)*x', /repeats a group/],
    ])('refuses %s', async (_name, pattern, reason) => {
      const err = await errorOf(fx.search(await jail.resolve('.'), pattern));
      expect(err).toMatchObject({ code: 'invalid-pattern' });
      expect(err.message).toMatch(reason);
    });

    it.each(['(foo|bar)+', 'a+b*c', '[(+]+', '\\(a+\\)+', 'x{2}', '(ab){3}'])('accepts the ordinary pattern %s', (p) => {
      expect(compileSearchPattern(p)).toBeInstanceOf(RegExp);
    });

    it('stops a catastrophically backtracking pattern at the time budget without blocking the host', async () => {
      const slow = new FsEffects(jail, { searchBudgetMs: 200 });
      await writeFile(join(ws, 'src', 'aaa.txt'), `${'a'.repeat(64)}!\n`);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 50);
      const started = Date.now();
      const err = await errorOf(slow.search(await jail.resolve('src/aaa.txt'), '(a|aa)+$'));
      clearInterval(timer);
      expect(err).toMatchObject({ code: 'timeout' });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(ticks).toBeGreaterThan(5);
    });
  });
});

describe('sliceLines', () => {
  it.each<[string, number, number, string]>([
    ['a\nb\nc', 1, Infinity, 'a\nb\nc'],
    ['a\nb\nc', 2, 1, 'b\n'],
    ['a\r\nb\r\n', 2, 5, 'b\r\n'],
    ['', 1, 3, ''],
  ])('%j from line %i, %i lines', (text, first, count, want) => {
    expect(sliceLines(text, first, count)).toBe(want);
  });
});
