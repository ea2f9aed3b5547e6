import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { chmod, cp, mkdir, readFile, readlink, realpath, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import isogit from 'isomorphic-git';
import { CheckpointError, CheckpointStore, RestoreConflictError } from '../../../src/host/checkpoints/checkpoint-store.ts';
import { encodeTree, writeObject } from '../../../src/host/checkpoints/git-objects.ts';
import { createShadowFs } from '../../../src/host/checkpoints/shadow-fs.ts';
import { CedarPolicyEngine } from '../../../src/host/policy/cedar-policy-engine.ts';
import { ForbiddenFiles } from '../../../src/host/policy/forbidden-files.ts';
import { cause, fsckShadow, git, picture, sleep, tempDir } from './helpers.ts';

async function setup(opts: Partial<Parameters<typeof CheckpointStore.open>[0]> = {}) {
  const ws = await tempDir('ws');
  const data = await tempDir('data');
  const store = await CheckpointStore.open({ workspace: ws, dataDir: data, ...opts });
  return { ws, data, store, gitdir: join(store.storeDir, 'git') };
}

const UNUSUAL = ['with space.txt', 'ünïcødé-名前.md', 'new\nline.txt', 'tab\there', 'quote"and\\back'.replace('\\', '_'), '-dash-first', ' leading-space'];

describe('CheckpointStore: taking checkpoints', () => {
  it('records session, turn, requests, audit seqs and changed paths in the shadow commit, and skips a checkpoint when nothing changed', async () => {
    const { ws, store, gitdir } = await setup();
    await writeFile(join(ws, 'a.txt'), 'one\n');
    await mkdir(join(ws, 'src'));
    await writeFile(join(ws, 'src/b.ts'), 'export {}\n');
    const first = await store.checkpoint({ sessionId: 's-9', turn: 3, requestIds: ['r-1', 'r-2'], auditSeqs: [11, 12] });
    expect(first).toMatchObject({ seq: 1, sessionId: 's-9', turn: 3, requestIds: ['r-1', 'r-2'], auditSeqs: [11, 12], fullScan: true, kind: 'change' });
    expect(first!.changed).toEqual([{ path: 'a.txt', status: 'added' }, { path: 'src/b.ts', status: 'added' }]);
    expect(await store.checkpoint(cause)).toBeUndefined();

    // Real git reads the record back from the commit message.
    const message = git(gitdir, ['--git-dir', gitdir, 'log', '-1', '--format=%B', first!.id]).stdout;
    expect(message).toMatch(/^Checkpoint 1 \(change\): 2 paths changed/);
    const trailer = JSON.parse(message.split('\n').find((l) => l.startsWith('Tether-Checkpoint: '))!.slice('Tether-Checkpoint: '.length));
    expect(trailer).toMatchObject({ v: 1, seq: 1, requestIds: ['r-1', 'r-2'], auditSeqs: [11, 12], changed: first!.changed });
    expect(git(gitdir, ['--git-dir', gitdir, 'ls-tree', '-r', '--name-only', first!.id]).stdout.split('\n').filter(Boolean)).toEqual(['a.txt', 'src/b.ts']);
    expect(fsckShadow(gitdir)).toEqual({ status: 0, problems: [] });
  });

  it('never copies a file policy keeps from the agent (its .env) into a checkpoint, and a restore leaves it alone', async () => {
    const files = new ForbiddenFiles(await CedarPolicyEngine.load());
    const ws = await realpath(await tempDir('ws'));
    const { store, gitdir } = await setup({ workspace: ws, neverCapture: (rel, isDir) => files.isForbidden(ws, rel, isDir ? 'directory' : 'file') });
    await writeFile(join(ws, 'a.txt'), 'one\n');
    await writeFile(join(ws, '.env'), 'API_KEY=first\n');
    await mkdir(join(ws, 'svc'));
    await writeFile(join(ws, 'svc/.env.production'), 'DB=first\n');
    await writeFile(join(ws, 'svc/.env.example'), 'DB=changeme\n');
    const cp1 = await store.checkpoint(cause);
    await writeFile(join(ws, 'a.txt'), 'two\n');
    const cp2 = await store.checkpoint({ ...cause, paths: ['a.txt', '.env'] });
    for (const cp of [cp1!, cp2!]) {
      expect(git(gitdir, ['--git-dir', gitdir, 'ls-tree', '-r', '--name-only', cp.id]).stdout.split('\n').filter(Boolean)).toEqual(['a.txt', 'svc/.env.example']);
    }
    // No object anywhere in the shadow repository, referenced or not, holds the secrets.
    const objects = git(gitdir, ['--git-dir', gitdir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objecttype)']).stdout.split('\n').filter(Boolean);
    const blobs = objects.filter((l) => l.endsWith(' blob')).map((l) => l.split(' ')[0]!);
    expect(blobs.length).toBeGreaterThanOrEqual(3); // a.txt twice, .env.example
    for (const blob of blobs) expect(git(gitdir, ['--git-dir', gitdir, 'cat-file', '-p', blob]).stdout).not.toMatch(/API_KEY|DB=first/);

    await writeFile(join(ws, '.env'), 'API_KEY=second\n');
    await store.restore(cp1!.id);
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('one\n');
    expect(await readFile(join(ws, '.env'), 'utf8')).toBe('API_KEY=second\n');
    expect(await readFile(join(ws, 'svc/.env.production'), 'utf8')).toBe('DB=first\n');
  });

  it('snapshots only the given paths on the fast path, including deletions and whole directories', async () => {
    const { ws, store, gitdir } = await setup();
    await writeFile(join(ws, 'keep.txt'), 'k');
    await mkdir(join(ws, 'dir/sub'), { recursive: true });
    await writeFile(join(ws, 'dir/sub/x.txt'), 'x');
    await store.checkpoint(cause);
    // An unrelated change the fast path must not pick up.
    await writeFile(join(ws, 'keep.txt'), 'changed behind our back');
    await writeFile(join(ws, 'new.txt'), 'n');
    await rm(join(ws, 'dir'), { recursive: true });
    const cp = await store.checkpoint({ ...cause, paths: [join(ws, 'new.txt'), 'dir'] });
    expect(cp!.changed).toEqual([{ path: 'dir/sub/x.txt', status: 'deleted' }, { path: 'new.txt', status: 'added' }]);
    expect(cp!.fullScan).toBe(false);
    expect(git(gitdir, ['--git-dir', gitdir, 'show', `${cp!.id}:keep.txt`]).stdout).toBe('k');
    // The full scan then finds what the fast path was not told about.
    expect((await store.checkpoint(cause))!.changed).toEqual([{ path: 'keep.txt', status: 'modified' }]);
  });

  it('refuses paths outside the workspace, and accepts ones that reach it through a symlink', async () => {
    const { ws, data, store } = await setup();
    await expect(store.checkpoint({ ...cause, paths: ['../elsewhere'] })).rejects.toThrow(/outside the workspace/);
    await expect(store.checkpoint({ ...cause, paths: ['/etc/passwd'] })).rejects.toThrow(/outside the workspace/);
    await expect(store.checkpoint({ ...cause, paths: ['a/../../x'] })).rejects.toThrow(/outside the workspace/);
    await writeFile(join(ws, '..dotdot-name'), 'inside');
    expect((await store.checkpoint({ ...cause, paths: ['..dotdot-name'] }))!.changed).toEqual([{ path: '..dotdot-name', status: 'added' }]);
    await store.close();
    // Opened through a link, given paths through the link: the same store, the same relative paths.
    const link = join(await tempDir('link'), 'ws-link');
    await symlink(ws, link);
    const viaLink = await CheckpointStore.open({ workspace: link, dataDir: data });
    expect(viaLink.workspace).toBe(ws);
    await writeFile(join(ws, 'f.txt'), 'f');
    expect((await viaLink.checkpoint({ ...cause, paths: [join(link, 'f.txt')] }))!.changed).toEqual([{ path: 'f.txt', status: 'added' }]);
    expect((await viaLink.list()).map((c) => c.seq)).toEqual([2, 1]);
  });

  it('notices a change of content with the same size and a change of the executable bit on a full scan', async () => {
    const { ws, store } = await setup();
    await writeFile(join(ws, 'f.txt'), 'aaaa');
    await writeFile(join(ws, 'g.sh'), 'echo');
    await store.checkpoint(cause);
    await writeFile(join(ws, 'f.txt'), 'bbbb');
    await chmod(join(ws, 'g.sh'), 0o755);
    expect((await store.checkpoint(cause))!.changed).toEqual([{ path: 'f.txt', status: 'modified' }, { path: 'g.sh', status: 'modified' }]);
  });

  it('leaves out .gitignored files by default, and includes them when told to', async () => {
    const { ws, data, store } = await setup();
    await writeFile(join(ws, '.gitignore'), 'dist/\n*.log\n!keep.log\n');
    await mkdir(join(ws, 'dist'));
    await writeFile(join(ws, 'dist/bundle.js'), 'built');
    await writeFile(join(ws, 'debug.log'), 'noise');
    await writeFile(join(ws, 'keep.log'), 'wanted');
    await mkdir(join(ws, 'pkg'));
    await writeFile(join(ws, 'pkg/.gitignore'), 'generated.ts\n');
    await writeFile(join(ws, 'pkg/generated.ts'), 'gen');
    await writeFile(join(ws, 'pkg/real.ts'), 'real');
    const cp = await store.checkpoint(cause);
    expect(cp!.changed.map((c) => c.path)).toEqual(['.gitignore', 'keep.log', 'pkg/.gitignore', 'pkg/real.ts']);
    // The fast path applies the same rules.
    await writeFile(join(ws, 'dist/bundle.js'), 'rebuilt');
    expect(await store.checkpoint({ ...cause, paths: ['dist/bundle.js'] })).toBeUndefined();
    await store.close();

    const all = await CheckpointStore.open({ workspace: ws, dataDir: await tempDir('data2'), respectGitignore: false });
    expect((await all.checkpoint(cause))!.changed.map((c) => c.path)).toContain('dist/bundle.js');
    void data;
  });

  it('leaves out extra exclude patterns and Tether\'s own data directory inside the workspace', async () => {
    const ws = await tempDir('ws');
    const store = await CheckpointStore.open({ workspace: ws, dataDir: join(ws, '.tether-data'), exclude: ['*.tmp', 'cache/'] });
    await writeFile(join(ws, 'x.tmp'), 't');
    await mkdir(join(ws, 'cache'));
    await writeFile(join(ws, 'cache/c'), 'c');
    await writeFile(join(ws, 'kept.txt'), 'k');
    await mkdir(join(ws, '.tether-data/audit'), { recursive: true });
    await writeFile(join(ws, '.tether-data/audit/audit.jsonl'), '{}\n');
    expect((await store.checkpoint(cause))!.changed.map((c) => c.path)).toEqual(['kept.txt']);
    expect(await store.checkpoint({ ...cause, paths: ['.tether-data/audit/audit.jsonl', 'x.tmp'] })).toBeUndefined();
    await expect(CheckpointStore.open({ workspace: join(ws, '.tether-data'), dataDir: join(ws, '.tether-data') })).rejects.toThrow(/inside Tether's data directory/);
  });

  it('skips files over the size limit and records them as skipped', async () => {
    const { ws, store } = await setup({ maxFileBytes: 1000 });
    await writeFile(join(ws, 'small.txt'), 'ok');
    await writeFile(join(ws, 'big.bin'), Buffer.alloc(5000, 1));
    const cp = await store.checkpoint(cause);
    expect(cp!.changed.map((c) => c.path)).toEqual(['small.txt']);
    expect(cp!.skipped).toEqual([{ path: 'big.bin', reason: 'too-large', detail: expect.stringMatching(/5000 bytes/) }]);
  });

  it('never snapshots a .git directory or file anywhere in the tree', async () => {
    const { ws, store, gitdir } = await setup();
    await mkdir(join(ws, '.git'));
    await writeFile(join(ws, '.git/config'), '[core]\n');
    await mkdir(join(ws, 'nested'));
    await writeFile(join(ws, 'nested/.git'), 'gitdir: ../.git/modules/nested\n');
    await writeFile(join(ws, 'nested/file.txt'), 'content');
    const cp = await store.checkpoint(cause);
    expect(cp!.changed.map((c) => c.path)).toEqual(['nested/file.txt']);
    await writeFile(join(ws, '.git/config'), '[core]\n\tbare = false\n');
    expect(await store.checkpoint({ ...cause, paths: ['.git/config', 'nested/.git'] })).toBeUndefined();
    expect(fsckShadow(gitdir).problems).toEqual([]);
  });
});

describe('CheckpointStore: diff and restore', () => {
  it('round-trips binary files, executable bits, symlinks, deletions, renames and unusual names', async () => {
    const { ws, store, gitdir } = await setup();
    await mkdir(join(ws, 'bin'));
    await writeFile(join(ws, 'bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
    await writeFile(join(ws, 'image.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0xff, 0xfe, 0, 1, 2, 3]));
    await mkdir(join(ws, 'src/lib'), { recursive: true });
    await writeFile(join(ws, 'src/lib/util.ts'), 'export const a = 1;\n');
    await symlink('src/lib/util.ts', join(ws, 'util-link'));
    await symlink('lib', join(ws, 'src/lib-alias'));
    await symlink('does-not-exist', join(ws, 'dangling'));
    for (const name of UNUSUAL) await writeFile(join(ws, name), `content of ${name}\n`);
    const original = picture(ws);
    const cp1 = await store.checkpoint(cause);
    expect(cp1!.changed).toHaveLength(6 + UNUSUAL.length);

    // Change everything the agent could.
    await writeFile(join(ws, 'image.png'), Buffer.from([0, 0, 0]));
    await chmod(join(ws, 'bin/tool'), 0o644);
    await rm(join(ws, 'util-link'));
    await symlink('image.png', join(ws, 'util-link'));
    await rm(join(ws, 'dangling'));
    await writeFile(join(ws, 'dangling'), 'now a file');
    await rename(join(ws, 'src/lib'), join(ws, 'src/library'));
    for (const name of UNUSUAL) await rm(join(ws, name));
    await writeFile(join(ws, 'added.txt'), 'new');
    await mkdir(join(ws, 'fresh/deep'), { recursive: true });
    await writeFile(join(ws, 'fresh/deep/file'), 'deep');
    const cp2 = await store.checkpoint({ ...cause, turn: 2 });
    expect(cp2!.changed.length).toBeGreaterThan(10);

    const plan = await store.planRestore(cp1!.id);
    expect(plan.conflicts).toEqual([]);
    expect(plan.files.find((f) => f.path === 'added.txt')).toEqual({ path: 'added.txt', action: 'delete' });
    expect(plan.files.find((f) => f.path === 'src/lib/util.ts')).toEqual({ path: 'src/lib/util.ts', action: 'create' });
    expect(plan.files.find((f) => f.path === 'image.png')).toEqual({ path: 'image.png', action: 'overwrite' });
    expect(plan.diff).toContain('Binary files a/image.png and b/image.png differ');
    expect(plan.diff).toContain('diff --git "a/new\\nline.txt" "b/new\\nline.txt"');
    expect(plan.diff).toMatch(/old mode 100644\nnew mode 100755/);

    const result = await store.restore(cp1!.id);
    expect(picture(ws)).toEqual(original);
    expect(result.after).toMatchObject({ kind: 'restore', restoredFrom: cp1!.id });
    // The restore itself can be undone: the undo point is the state just before it.
    expect(result.undoId).toBe(cp2!.id);
    expect(await readlink(join(ws, 'src/lib-alias'))).toBe('lib');
    expect((await stat(join(ws, 'bin/tool'))).mode & 0o111).toBe(0o111);
    await expect(stat(join(ws, 'fresh'))).rejects.toThrow(/ENOENT/);

    const afterRestore = picture(ws);
    await store.restore(result.undoId!);
    expect(picture(ws)).not.toEqual(afterRestore);
    expect(await readFile(join(ws, 'fresh/deep/file'), 'utf8')).toBe('deep');
    expect(await readlink(join(ws, 'util-link'))).toBe('image.png');
    expect(fsckShadow(gitdir)).toEqual({ status: 0, problems: [] });
  });

  it('restores single files, and a deleted directory as a path', async () => {
    const { ws, store } = await setup();
    await mkdir(join(ws, 'd'));
    await writeFile(join(ws, 'd/one'), '1');
    await writeFile(join(ws, 'd/two'), '2');
    await writeFile(join(ws, 'other'), 'o');
    const cp1 = await store.checkpoint(cause);
    await rm(join(ws, 'd'), { recursive: true });
    await writeFile(join(ws, 'other'), 'changed');
    await store.checkpoint(cause);
    const r = await store.restore(String(cp1!.seq), { paths: ['d'] });
    expect(r.plan.files.map((f) => f.path)).toEqual(['d/one', 'd/two']);
    expect(await readFile(join(ws, 'd/two'), 'utf8')).toBe('2');
    expect(await readFile(join(ws, 'other'), 'utf8')).toBe('changed');
    await expect(store.planRestore(cp1!.id, { paths: ['no/such/file'] })).rejects.toThrow(/neither in checkpoint 1 nor tracked/);
  });

  it('shows a diff against the workspace and between checkpoints that git apply accepts', async () => {
    const { ws, store } = await setup();
    await writeFile(join(ws, 'a.txt'), 'line 1\nline 2\nline 3\n');
    await writeFile(join(ws, 'gone.txt'), 'bye\n');
    const cp1 = await store.checkpoint(cause);
    await writeFile(join(ws, 'a.txt'), 'line 1\nline two\nline 3\nline 4');
    await rm(join(ws, 'gone.txt'));
    await writeFile(join(ws, 'new file.txt'), 'hi\n');
    const cp2 = await store.checkpoint(cause);
    const between = await store.diff(cp1!.id, { to: cp2!.id });
    const workspace = await store.diff(cp1!.id);
    expect(workspace.diff).toBe(between.diff);
    expect(between.files.map((f) => [f.path, f.status])).toEqual([['a.txt', 'modified'], ['gone.txt', 'deleted'], ['new file.txt', 'added']]);

    // Apply the checkpoint-1 → workspace diff in reverse to a copy: it must give back checkpoint 1.
    const copy = await tempDir('apply');
    await cp(ws, copy, { recursive: true });
    git(copy, ['init', '-q']);
    git(copy, ['apply', '-R', '--whitespace=nowarn'], { input: workspace.diff });
    await rm(join(copy, '.git'), { recursive: true });
    await store.restore(cp1!.id);
    expect(picture(copy)).toEqual(picture(ws));
  });

  it('refuses a restore over files changed outside Tether, and overwrites them when confirmed (undoably)', async () => {
    const { ws, store } = await setup();
    await writeFile(join(ws, 'a.txt'), 'v1');
    await writeFile(join(ws, 'b.txt'), 'b1');
    const cp1 = await store.checkpoint(cause);
    await writeFile(join(ws, 'a.txt'), 'v2 by the agent');
    await store.checkpoint({ ...cause, paths: ['a.txt'] });
    await writeFile(join(ws, 'a.txt'), 'v3 by the user in their editor');
    await writeFile(join(ws, 'b.txt'), 'b2 by the user');

    const plan = await store.planRestore(cp1!.id, { paths: ['a.txt'] });
    expect(plan.conflicts).toEqual([{ path: 'a.txt', action: 'overwrite', conflict: 'changed outside Tether since checkpoint 2' }]);
    const refused = await store.restore(cp1!.id, { paths: ['a.txt'] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RestoreConflictError);
    expect((refused as Error).message).toMatch(/1 file changed outside Tether since the latest checkpoint: a.txt .*confirm overwriting/);
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('v3 by the user in their editor');

    const done = await store.restore(cp1!.id, { paths: ['a.txt'], overwriteConflicts: true });
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('v1');
    expect(await readFile(join(ws, 'b.txt'), 'utf8')).toBe('b2 by the user');
    // The user's edit was checkpointed before being overwritten.
    await store.restore(done.undoId!, { paths: ['a.txt'] });
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('v3 by the user in their editor');
  });

  it('treats an ignored file in the way as a conflict it cannot undo', async () => {
    const { ws, store } = await setup();
    await writeFile(join(ws, 'out.txt'), 'tracked once');
    const cp1 = await store.checkpoint(cause);
    await writeFile(join(ws, '.gitignore'), 'out.txt\n');
    await writeFile(join(ws, 'out.txt'), 'now ignored, precious');
    await store.checkpoint(cause);
    const plan = await store.planRestore(cp1!.id, { paths: ['out.txt'] });
    expect(plan.conflicts[0]!.conflict).toMatch(/could not be undone/);
  });

  it('refuses a restore whose plan changed since the consent preview', async () => {
    const { ws, store } = await setup();
    await writeFile(join(ws, 'a.txt'), '1');
    const cp1 = await store.checkpoint(cause);
    await writeFile(join(ws, 'a.txt'), '2');
    await store.checkpoint(cause);
    const plan = await store.planRestore(cp1!.id);
    await writeFile(join(ws, 'b.txt'), 'appeared after the preview');
    await store.checkpoint(cause);
    await expect(store.restore(cp1!.id, { expectedFingerprint: plan.fingerprint })).rejects.toThrow(/changed since the preview/);
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('2');
    const again = await store.planRestore(cp1!.id);
    await store.restore(cp1!.id, { expectedFingerprint: again.fingerprint });
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('1');
  });

  it('never writes through a symlinked directory during a restore', async () => {
    const { ws, store } = await setup();
    const outside = await tempDir('outside');
    await mkdir(join(ws, 'd'));
    await writeFile(join(ws, 'd/f.txt'), 'inside');
    const cp1 = await store.checkpoint(cause);
    await rm(join(ws, 'd'), { recursive: true });
    await symlink(outside, join(ws, 'd'));
    await store.checkpoint(cause);
    // Restoring only d/f.txt would have to go through the link: refused.
    await expect(store.planRestore(cp1!.id, { paths: ['d/f.txt'] })).rejects.toThrow(/d is a symlink/);
    // Restoring d replaces the link with the directory.
    await store.restore(cp1!.id, { paths: ['d'] });
    expect((await stat(join(ws, 'd'))).isDirectory()).toBe(true);
    expect(await readFile(join(ws, 'd/f.txt'), 'utf8')).toBe('inside');
    expect(picture(outside)).toEqual({});
  });

  it.each(['..', '.git', 'a/b'])('refuses to restore from a tampered checkpoint whose tree holds the name %j', async (bad) => {
    const { ws, data, store, gitdir } = await setup();
    await writeFile(join(ws, 'f'), '1');
    const cp1 = await store.checkpoint(cause);
    await writeFile(join(ws, 'f'), '2');
    await store.checkpoint(cause);
    await store.close();
    // Forge checkpoint 1: same record, a tree with an entry that would escape or hit a .git.
    const repo = { fs: createShadowFs(gitdir, join(store.storeDir, 'tmp')), gitdir };
    const blob = await writeObject(repo, 'blob', Buffer.from('evil'));
    const inner = await writeObject(repo, 'tree', encodeTree([{ mode: '100644', name: 'x', oid: blob }]));
    const tree = await writeObject(repo, 'tree', encodeTree([{ mode: '40000', name: bad, oid: inner }]));
    const who = { name: 'x', email: 'x@x', timestamp: 0, timezoneOffset: 0 };
    const message = git(gitdir, ['--git-dir', gitdir, 'log', '-1', '--format=%B', cp1!.id]).stdout;
    const forged = await isogit.writeCommit({ fs: repo.fs, gitdir, commit: { tree, parent: [], author: who, committer: who, message } });
    await isogit.writeRef({ fs: repo.fs, gitdir, ref: 'refs/tether/checkpoints/0000000001', value: forged, force: true });
    const again = await CheckpointStore.open({ workspace: ws, dataDir: data });
    await expect(again.restore('1')).rejects.toThrow(/unsafe name/);
    expect(picture(ws)).toEqual({ f: expect.objectContaining({ type: 'file' }) });
  });

  it('resolves checkpoints by seq, id and id prefix, and names what it cannot find', async () => {
    const { ws, store } = await setup();
    await writeFile(join(ws, 'a'), '1');
    const cp = await store.checkpoint(cause);
    expect((await store.get('1')).id).toBe(cp!.id);
    expect((await store.get('#1')).id).toBe(cp!.id);
    expect((await store.get(cp!.id.slice(0, 8))).id).toBe(cp!.id);
    await expect(store.get('99')).rejects.toBeInstanceOf(CheckpointError);
    await expect(store.get('99')).rejects.toThrow(/no checkpoint 99/);
  });
});

describe('CheckpointStore: storage', () => {
  it('keeps at most maxCount checkpoints, prunes what they no longer reach, and reports the space used', async () => {
    const { ws, store, gitdir } = await setup({ retention: { maxCount: 3 }, pruneEvery: 2 });
    const blobs: string[] = [];
    for (let i = 0; i < 6; i++) {
      await writeFile(join(ws, 'f.txt'), `version ${i} ${'x'.repeat(200)}`);
      await store.checkpoint({ ...cause, turn: i, paths: ['f.txt'] });
      blobs.push(git(gitdir, ['--git-dir', gitdir, 'rev-parse', `HEAD:f.txt`]).stdout.trim());
    }
    expect((await store.list()).map((c) => c.seq)).toEqual([6, 5, 4]);
    const usedBefore = await store.usage();
    const pruned = await store.prune();
    const usedAfter = await store.usage();
    expect(usedAfter.checkpoints).toBe(3);
    expect(usedAfter.bytes).toBeLessThanOrEqual(usedBefore.bytes - pruned.freedBytes + 1000);
    // Versions 0-2 are gone from the repository, 3-5 are there.
    const has = (oid: string) => git(gitdir, ['--git-dir', gitdir, 'cat-file', '-e', oid], { allowFail: true }).status === 0;
    expect(blobs.map(has)).toEqual([false, false, false, true, true, true]);
    expect(fsckShadow(gitdir)).toEqual({ status: 0, problems: [] });
  });

  it('restores from the oldest checkpoint kept even when its own checkpoints push that one out', async () => {
    const { ws, store, gitdir } = await setup({ retention: { maxCount: 2 }, pruneEvery: 1 });
    await writeFile(join(ws, 'f'), 'oldest');
    await store.checkpoint(cause);
    await writeFile(join(ws, 'f'), 'newer');
    await store.checkpoint(cause);
    const [, oldest] = await store.list();
    await writeFile(join(ws, 'f'), 'edited outside');
    const r = await store.restore(oldest!.id, { overwriteConflicts: true });
    expect(await readFile(join(ws, 'f'), 'utf8')).toBe('oldest');
    // Its before/after checkpoints are the two kept now, and the undo point still works.
    expect((await store.list()).map((c) => c.kind)).toEqual(['restore', 'before-restore']);
    await store.restore(r.undoId!);
    expect(await readFile(join(ws, 'f'), 'utf8')).toBe('edited outside');
    expect(fsckShadow(gitdir)).toEqual({ status: 0, problems: [] });
  });

  it('drops checkpoints older than maxAgeDays but always keeps the latest', async () => {
    const { ws, store } = await setup({ retention: { maxAgeDays: 0.4 / 86400 } });
    await writeFile(join(ws, 'f'), '1');
    await store.checkpoint(cause);
    await writeFile(join(ws, 'f'), '2');
    await store.checkpoint(cause);
    await sleep(600);
    expect((await store.list()).map((c) => c.seq)).toEqual([2, 1]);
    await writeFile(join(ws, 'f'), '3');
    await store.checkpoint(cause);
    expect((await store.list()).map((c) => c.seq)).toEqual([3]);
    await sleep(600);
    expect((await store.list()).map((c) => c.seq)).toEqual([3]);
  });

  it('picks up after another process (another store instance) made checkpoints', async () => {
    const { ws, data, store } = await setup();
    await writeFile(join(ws, 'f'), '1');
    await store.checkpoint(cause);
    const other = await CheckpointStore.open({ workspace: ws, dataDir: data });
    await writeFile(join(ws, 'f'), '2');
    const cp2 = await other.checkpoint(cause);
    await other.close();
    // The first instance sees checkpoint 2 as the latest: the file is not "changed outside Tether".
    expect((await store.latest())!.id).toBe(cp2!.id);
    await writeFile(join(ws, 'f'), '3');
    expect((await store.checkpoint(cause))!.seq).toBe(3);
  });

  it('rebuilds its stat cache from the repository when the cache is missing or stale', async () => {
    const { ws, data, store } = await setup();
    await writeFile(join(ws, 'f'), '1');
    await writeFile(join(ws, 'g'), 'g');
    await store.checkpoint(cause);
    await store.close();
    await rm(join(store.storeDir, 'state.json'));
    const again = await CheckpointStore.open({ workspace: ws, dataDir: data });
    expect(await again.checkpoint(cause)).toBeUndefined();
    await writeFile(join(ws, 'f'), '2');
    expect((await again.checkpoint(cause))!.changed).toEqual([{ path: 'f', status: 'modified' }]);
    await again.close();
    await truncate(join(store.storeDir, 'state.json'), 10);
    const third = await CheckpointStore.open({ workspace: ws, dataDir: data });
    expect(await third.checkpoint(cause)).toBeUndefined();
  });

  it('reopens from its state log exactly as the repository says, and ignores a log that disagrees', async () => {
    const { ws, data, store } = await setup();
    await writeFile(join(ws, 'a'), 'a1');
    await writeFile(join(ws, 'b'), 'b1');
    await mkdir(join(ws, 'd'));
    await writeFile(join(ws, 'd/x'), 'x');
    await store.checkpoint(cause);
    await writeFile(join(ws, 'a'), 'a2');
    await store.checkpoint({ ...cause, paths: ['a'] });
    await rm(join(ws, 'd'), { recursive: true });
    await writeFile(join(ws, 'd'), 'd is a file now');
    await chmod(join(ws, 'b'), 0o755);
    await store.checkpoint({ ...cause, paths: ['d', 'b'] });
    await writeFile(join(ws, 'c'), 'c');
    const last = await store.checkpoint(cause);
    const expected = await store.diff('1', { to: last!.id });
    const log = (await readFile(join(store.storeDir, 'state.log'), 'utf8')).trim().split('\n');
    expect(log).toHaveLength(3);
    // No close(): as after a crash, state.json is from checkpoint 1 and the log carries the rest.
    const reopened = await CheckpointStore.open({ workspace: ws, dataDir: data });
    expect(await reopened.diff('1', { to: last!.id })).toEqual(expected);
    expect(await reopened.checkpoint(cause)).toBeUndefined();
    await reopened.close();

    // A log line that names the right commits but the wrong content is caught by hashing the tree.
    const third = await CheckpointStore.open({ workspace: ws, dataDir: data });
    await writeFile(join(ws, 'a'), 'a3');
    const cp = await third.checkpoint({ ...cause, paths: ['a'] });
    const good = await third.diff('1', { to: cp!.id });
    const lines = (await readFile(join(store.storeDir, 'state.log'), 'utf8')).trim().split('\n');
    const forged = JSON.parse(lines.at(-1)!) as { set: [string, string, string][] };
    forged.set[0]![2] = '0123456789012345678901234567890123456789';
    await writeFile(join(store.storeDir, 'state.log'), [...lines.slice(0, -1), JSON.stringify(forged)].join('\n') + '\n');
    const fourth = await CheckpointStore.open({ workspace: ws, dataDir: data });
    expect(await fourth.diff('1', { to: cp!.id })).toEqual(good);
    expect(await fourth.checkpoint(cause)).toBeUndefined();
  });

  it('drops a latest checkpoint whose objects were lost, and carries on from the one before', async () => {
    const { ws, data, store, gitdir } = await setup();
    await writeFile(join(ws, 'f'), '1');
    const cp1 = await store.checkpoint(cause);
    await writeFile(join(ws, 'f'), '2');
    const cp2 = await store.checkpoint(cause);
    await store.close();
    await rm(join(gitdir, 'objects', cp2!.id.slice(0, 2), cp2!.id.slice(2)));
    const again = await CheckpointStore.open({ workspace: ws, dataDir: data });
    expect(again.recovered.join('\n')).toMatch(/dropped checkpoint 2/);
    expect((await again.latest())!.id).toBe(cp1!.id);
    expect((await again.checkpoint(cause))!.seq).toBe(2);
    expect(fsckShadow(gitdir).problems).toEqual([]);
  });

  it('waits for, then refuses, a store held by another live process', async () => {
    const { store } = await setup({ lockTimeoutMs: 300 });
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    await writeFile(join(store.storeDir, 'lock'), `${holder.pid} ${hostname()}\n`);
    await expect(store.list()).rejects.toThrow(new RegExp(`in use by process ${holder.pid}`));
    // Its owner dies without unlocking (SIGKILL): the lock is stale and taken over.
    const exited = new Promise((r) => holder.once('exit', r));
    holder.kill('SIGKILL');
    await exited;
    await expect(store.list()).resolves.toEqual([]);
  });
});
