import { link, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsEffects } from '../../src/host/fs-effects.ts';
import { PREVIEW_LIMITS, previewDelete, previewMove, previewRead, previewWrite, sanitize } from '../../src/host/consent-preview.ts';
import { PathChanged, WorkspaceJail } from '../../src/host/workspace-jail.ts';

let base: string;
let ws: string;
let jail: WorkspaceJail;
let fx: FsEffects;

beforeEach(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'tether-preview-')));
  ws = join(base, 'ws');
  await mkdir(join(ws, 'src'), { recursive: true });
  await mkdir(join(base, 'outside'));
  await writeFile(join(ws, 'src', 'a.ts'), 'one\ntwo\nthree\n');
  await writeFile(join(base, 'outside', 'secret'), 'TOP SECRET\n');
  jail = await WorkspaceJail.open(ws);
  fx = new FsEffects(jail);
});

afterEach(async () => {
  await jail.close();
  await rm(base, { recursive: true, force: true });
});

describe('previewWrite', () => {
  it('shows a unified diff with a/ and b/ workspace-relative names', async () => {
    const t = await jail.resolve('src/a.ts', { intent: 'write' });
    const p = await previewWrite(fx, t, 'one\n2\nthree\n');
    expect(p).toEqual({
      type: 'write',
      path: join(ws, 'src', 'a.ts'),
      created: false,
      bytes: 12,
      diff: '--- a/src/a.ts\n+++ b/src/a.ts\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n',
    });
  });

  it('shows a new file as created, against /dev/null', async () => {
    const t = await jail.resolve('new/b.ts', { intent: 'write' });
    const p = await previewWrite(fx, t, 'hello\n');
    expect(p).toMatchObject({ type: 'write', created: true, bytes: 6 });
    expect(p.type === 'write' && p.diff).toBe('--- /dev/null\n+++ b/new/b.ts\n@@ -0,0 +1,1 @@\n+hello\n');
  });

  it('caps a huge diff and says how much it left out', async () => {
    const t = await jail.resolve('big.txt', { intent: 'write' });
    const content = Array.from({ length: 50_000 }, (_, i) => `line ${i}\n`).join('');
    const p = await previewWrite(fx, t, content);
    if (p.type !== 'write') throw new Error('not a write preview');
    expect(p.diff.length).toBeLessThan(PREVIEW_LIMITS.maxDiffChars + 200);
    expect(p.diff).toMatch(/\n\\ diff truncated: showing \d+ of 50003 lines \(\d+ characters\)\n$/);
    expect(p.bytes).toBe(Buffer.byteLength(content));
  });

  it('escapes terminal control and bidi characters so new content cannot fake diff lines', async () => {
    const t = await jail.resolve('src/a.ts', { intent: 'write' });
    const p = await previewWrite(fx, t, 'one\ntwo\nthree\nok\r-  fake removed line\x1b[2K\u202Egnp.exe\r\n');
    if (p.type !== 'write') throw new Error('not a write preview');
    expect(p.diff).toContain('+ok\\u000d-  fake removed line\\u001b[2K\\u202egnp.exe\r\n');
    expect(p.diff).not.toContain('\x1b');
  });

  it('notes a binary file being replaced, and still shows the new text', async () => {
    await writeFile(join(ws, 'blob'), Buffer.from([0, 1, 2, 3]));
    const p = await previewWrite(fx, await jail.resolve('blob', { intent: 'write' }), 'text now\n');
    if (p.type !== 'write') throw new Error('not a write preview');
    expect(p.diff).toMatch(/^\\ the current file is binary; it is replaced entirely by the text below\n/);
    expect(p.diff).toContain('+text now\n');
  });

  it('fails instead of previewing a file swapped for a symlink to outside after resolution', async () => {
    const t = await jail.resolve('src/a.ts', { intent: 'write' });
    await rm(join(ws, 'src', 'a.ts'));
    await symlink(join(base, 'outside', 'secret'), join(ws, 'src', 'a.ts'));
    await expect(previewWrite(fx, t, 'x')).rejects.toBeInstanceOf(PathChanged);
  });
});

describe('previewDelete', () => {
  it('shows a file being removed as a diff to /dev/null', async () => {
    const p = await previewDelete(fx, await jail.resolve('src/a.ts', { intent: 'entry' }));
    expect(p).toEqual({ type: 'delete', path: join(ws, 'src', 'a.ts'), recursive: false, diff: '--- a/src/a.ts\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-one\n-two\n-three\n' });
  });

  it('lists what a recursive delete of a directory takes with it', async () => {
    await mkdir(join(ws, 'src', 'deep'));
    await writeFile(join(ws, 'src', 'deep', 'b.ts'), 'b');
    const p = await previewDelete(fx, await jail.resolve('src', { intent: 'entry' }), { recursive: true });
    expect(p).toEqual({
      type: 'delete',
      path: join(ws, 'src'),
      recursive: true,
      diff: '\\ deletes the directory src and everything in it: 2 file(s), 1 directory(ies)\n- src/a.ts\n- src/deep/\n- src/deep/b.ts\n',
    });
  });

  it('shows names with control characters escaped, and still previews the directory they are in', async () => {
    await mkdir(join(ws, 'src', 'evil\ndir'));
    await writeFile(join(ws, 'src', 'evil\ndir', 'x'), 'x');
    await writeFile(join(ws, 'src', 'bell\u0007.txt'), 'x');
    const p = await previewDelete(fx, await jail.resolve('src', { intent: 'entry' }), { recursive: true });
    if (p.type !== 'delete') throw new Error('not a delete preview');
    expect(p.diff).toContain('- src/bell\\u0007.txt\n');
    expect(p.diff).toContain('- src/evil\\u000adir/\n');
    expect(p.diff).toContain('or more');
  });

  it('says a symlink is deleted itself, not its target', async () => {
    await symlink(join(base, 'outside', 'secret'), join(ws, 'link'));
    const p = await previewDelete(fx, await jail.resolve('link', { intent: 'entry' }));
    expect(p).toMatchObject({ type: 'delete', diff: '\\ deletes the symbolic link link itself, not what it points to\n' });
  });
});

describe('previewMove', () => {
  it.each<[string, string, boolean, boolean]>([
    ['to a new name with overwrite asked', 'b.ts', true, false],
    ['onto an existing file with overwrite', 'src/a2.ts', true, true],
    ['onto an existing file without overwrite', 'src/a2.ts', false, false],
  ])('%s', async (_name, to, overwrite, shown) => {
    await writeFile(join(ws, 'src', 'a2.ts'), 'x');
    const from = await jail.resolve('src/a.ts', { intent: 'entry' });
    const dest = await jail.resolve(to, { intent: 'entry' });
    expect(previewMove(from, dest, { overwrite })).toEqual({ type: 'move', from: join(ws, 'src', 'a.ts'), to: join(ws, to), overwrite: shown });
  });
});

describe('previewRead', () => {
  it('warns about a hard-linked file', async () => {
    await link(join(base, 'outside', 'secret'), join(ws, 'hl'));
    const p = previewRead(await jail.resolve('hl'));
    expect(p).toMatchObject({ type: 'read', path: join(ws, 'hl') });
    expect(p.type === 'read' && p.note).toMatch(/more than one hard link/);
  });

  it('says when the file was reached through a symlink', async () => {
    await symlink('src/a.ts', join(ws, 'alias'));
    const p = previewRead(await jail.resolve('alias'));
    expect(p).toEqual({ type: 'read', path: join(ws, 'src', 'a.ts'), note: `asked for as ${join(ws, 'alias')}, which leads here through a symbolic link` });
  });

  it('has no note for an ordinary file', async () => {
    expect(previewRead(await jail.resolve('src/a.ts'))).toEqual({ type: 'read', path: join(ws, 'src', 'a.ts') });
  });
});

describe('sanitize', () => {
  it.each<[string, string]>([
    ['plain\ttext\n', 'plain\ttext\n'],
    ['crlf\r\n', 'crlf\r\n'],
    ['lone\rcr', 'lone\\u000dcr'],
    ['\x1b[31mred', '\\u001b[31mred'],
    ['\u0085next-line', '\\u0085next-line'],
    ['\u2067isolate', '\\u2067isolate'],
  ])('%j', (input, want) => {
    expect(sanitize(input)).toBe(want);
  });
});
