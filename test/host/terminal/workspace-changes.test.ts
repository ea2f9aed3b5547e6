import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_ACCOUNTING, diffSnapshots, HashCache, snapshotWorkspace } from '../../../src/host/terminal/workspace-changes.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tether-changes-'));
  mkdirSync(join(root, 'src'));
  writeFileSync(join(root, 'src', 'a.ts'), 'a');
  writeFileSync(join(root, 'src', 'b.ts'), 'b');
  writeFileSync(join(root, 'keep.txt'), 'keep');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('workspace change accounting', () => {
  it('lists created, modified and deleted files and links with SHA-256 before (when cached) and after', async () => {
    const cache = new HashCache();
    const before = await snapshotWorkspace(root);
    expect(await cache.prime(before)).toBe(3);
    writeFileSync(join(root, 'src', 'a.ts'), 'a changed');
    unlinkSync(join(root, 'src', 'b.ts'));
    writeFileSync(join(root, 'new.txt'), 'new');
    mkdirSync(join(root, 'dist'));
    symlinkSync('../keep.txt', join(root, 'dist', 'link'));
    const after = await snapshotWorkspace(root);
    const report = await diffSnapshots(before, after, cache);
    expect(report.note).toBeUndefined();
    expect(report.changedFiles).toEqual([
      { path: join(root, 'dist'), change: 'created' },
      { path: join(root, 'dist', 'link'), change: 'created', postSha256: sha('../keep.txt') },
      { path: join(root, 'new.txt'), change: 'created', postSha256: sha('new') },
      { path: join(root, 'src', 'a.ts'), change: 'modified', preSha256: sha('a'), postSha256: sha('a changed') },
      { path: join(root, 'src', 'b.ts'), change: 'deleted', preSha256: sha('b') },
    ]);
  });

  it('sees a change that keeps size and mtime (ctime moves), and nothing when nothing changed', async () => {
    const before = await snapshotWorkspace(root);
    expect((await diffSnapshots(before, await snapshotWorkspace(root), new HashCache())).changedFiles).toEqual([]);
    const t = new Date('2020-01-01T00:00:00Z');
    utimesSync(join(root, 'keep.txt'), t, t);
    const mid = await snapshotWorkspace(root);
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(join(root, 'keep.txt'), 'KEEP');
    utimesSync(join(root, 'keep.txt'), t, t);
    const report = await diffSnapshots(mid, await snapshotWorkspace(root), new HashCache());
    expect(report.changedFiles.map((c) => [c.path, c.change])).toEqual([[join(root, 'keep.txt'), 'modified']]);
  });

  it('says when the list is incomplete instead of dropping changes silently', async () => {
    const before = await snapshotWorkspace(root);
    for (let i = 0; i < 5; i++) writeFileSync(join(root, `f${i}`), 'x'.repeat(100));
    const after = await snapshotWorkspace(root);
    const cut = await diffSnapshots(before, after, new HashCache(), { ...DEFAULT_ACCOUNTING, maxListed: 2, maxHashBytes: 50 });
    expect(cut.changedFiles).toHaveLength(2);
    expect(cut.changedFiles.every((c) => c.postSha256 === undefined)).toBe(true);
    expect(cut.note).toBe('3 more changed entries are not listed; 2 changed files were too large to hash');
    const small = await snapshotWorkspace(root, 3);
    expect(small.incomplete).toBe(true);
    expect((await diffSnapshots(small, small, new HashCache())).note).toBe('the workspace has more entries than the accounting walks (3); changes beyond those are not known');
  });

  it('finds .git entries anywhere, for read-only mounts of their hooks', async () => {
    mkdirSync(join(root, '.git', 'hooks'), { recursive: true });
    mkdirSync(join(root, 'vendor', 'x', '.git'), { recursive: true });
    mkdirSync(join(root, 'wt'));
    writeFileSync(join(root, 'wt', '.git'), 'gitdir: elsewhere');
    expect([...(await snapshotWorkspace(root)).gitDirs].sort()).toEqual(['.git', 'vendor/x/.git', 'wt/.git']);
  });
});
