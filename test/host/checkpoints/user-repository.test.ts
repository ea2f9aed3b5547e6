// The workspace is the user's own git repository, in the middle of work:
// staged and unstaged changes to the same file, untracked and ignored files,
// a submodule, LFS pointer files. Many checkpoints and restores later, their
// repository must be byte-for-byte what it was, and git must say so too.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../../src/host/checkpoints/checkpoint-store.ts';
import { cause, fsckShadow, git, picture, tempDir } from './helpers.ts';

const LFS_POINTER = (n: number) => `version https://git-lfs.github.com/spec/v1\noid sha256:${String(n).repeat(64).slice(0, 64)}\nsize ${1000 + n}\n`;

async function userRepository(): Promise<string> {
  const sub = await tempDir('sub');
  git(sub, ['init', '-q', '-b', 'main']);
  await writeFile(join(sub, 'lib.c'), 'int lib(void) { return 1; }\n');
  git(sub, ['add', '.']);
  git(sub, ['commit', '-q', '-m', 'sub']);

  const repo = await tempDir('user-repo');
  git(repo, ['init', '-q', '-b', 'main']);
  await writeFile(join(repo, 'README.md'), '# project\n');
  await mkdir(join(repo, 'src'));
  await writeFile(join(repo, 'src/app.js'), 'console.log(1);\n');
  await writeFile(join(repo, 'src/lib.js'), 'export const x = 1;\n');
  await writeFile(join(repo, '.gitignore'), 'dist/\n*.log\n');
  await writeFile(join(repo, '.gitattributes'), '*.psd filter=lfs diff=lfs merge=lfs -text\n');
  await mkdir(join(repo, 'assets'));
  await writeFile(join(repo, 'assets/design.psd'), LFS_POINTER(1));
  git(repo, ['add', '.']);
  git(repo, ['commit', '-q', '-m', 'initial']);
  git(repo, ['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub, 'vendor/sub']);
  git(repo, ['commit', '-q', '-m', 'add submodule']);

  // Work in progress: staged, then changed again (index differs from HEAD and from the work tree).
  await writeFile(join(repo, 'src/app.js'), 'console.log(2);\n');
  git(repo, ['add', 'src/app.js']);
  await writeFile(join(repo, 'src/app.js'), 'console.log(3);\n');
  await writeFile(join(repo, 'staged-new.txt'), 'staged only\n');
  git(repo, ['add', 'staged-new.txt']);
  await writeFile(join(repo, 'src/lib.js'), 'export const x = 2;\n');
  await writeFile(join(repo, 'assets/other.psd'), LFS_POINTER(2));
  git(repo, ['add', 'assets/other.psd']);
  await writeFile(join(repo, 'untracked.txt'), 'not added\n');
  await mkdir(join(repo, 'dist'));
  await writeFile(join(repo, 'dist/bundle.js'), 'built output\n');
  await writeFile(join(repo, 'debug.log'), 'log\n');
  await writeFile(join(repo, 'vendor/sub/lib.c'), 'int lib(void) { return 2; }\n');
  await writeFile(join(repo, '.git/info/exclude'), 'private-notes.txt\n');
  await writeFile(join(repo, 'private-notes.txt'), 'excluded through .git/info/exclude\n');
  return repo;
}

function gitView(repo: string) {
  const ro = ['--no-optional-locks', '-c', 'core.fsmonitor=false'];
  return {
    status: git(repo, [...ro, 'status', '--porcelain=v2', '--branch', '--untracked-files=all', '--ignored']).stdout,
    cached: git(repo, [...ro, 'diff', '--cached', '--binary']).stdout,
    worktree: git(repo, [...ro, 'diff', '--binary']).stdout,
    stash: git(repo, [...ro, 'stash', 'list']).stdout,
    fsck: git(repo, [...ro, 'fsck', '--strict', '--no-dangling'], { allowFail: true }),
    submodule: git(join(repo, 'vendor/sub'), [...ro, 'status', '--porcelain=v2']).stdout,
  };
}

describe('checkpoints in a workspace that is a git repository', () => {
  it('leave the user repository (.git, index, refs, status, staged diff, fsck) exactly as it was after many checkpoints and restores', async () => {
    const repo = await userRepository();
    const dotGitBefore = picture(join(repo, '.git'), { mtime: true });
    expect(Object.keys(dotGitBefore)).toEqual(expect.arrayContaining(['index', 'HEAD', 'config', 'refs/heads/main', 'modules/vendor/sub/index']));
    const viewBefore = gitView(repo);
    expect(viewBefore.cached).toContain('console.log(2)');
    expect(viewBefore.worktree).toContain('console.log(3)');
    expect(viewBefore.status).toContain('? untracked.txt');
    expect(viewBefore.fsck.status).toBe(0);
    const filesBefore = picture(repo, { skip: (r) => r === '.git' || r.startsWith('.git/') });

    const data = await tempDir('data');
    const store = await CheckpointStore.open({ workspace: repo, dataDir: data });
    const gitdir = join(store.storeDir, 'git');
    const base = await store.checkpoint(cause);
    const captured = git(gitdir, ['--git-dir', gitdir, 'ls-tree', '-r', '--name-only', base!.id]).stdout.split('\n').filter(Boolean);
    expect(captured).toEqual(expect.arrayContaining(['README.md', 'src/app.js', 'untracked.txt', 'staged-new.txt', 'assets/design.psd', 'vendor/sub/lib.c', '.gitmodules']));
    expect(captured.filter((p) => p.split('/').includes('.git'))).toEqual([]);
    expect(captured).not.toContain('dist/bundle.js');
    expect(captured).not.toContain('debug.log');
    expect(captured).not.toContain('private-notes.txt');

    for (let round = 0; round < 4; round++) {
      await writeFile(join(repo, 'src/app.js'), `console.log('agent ${round}');\n`);
      await store.checkpoint({ ...cause, turn: round, paths: ['src/app.js'] });
      await writeFile(join(repo, `agent-${round}.txt`), 'new file\n');
      await rm(join(repo, 'untracked.txt'), { force: true });
      await writeFile(join(repo, 'assets/design.psd'), LFS_POINTER(round + 3));
      await writeFile(join(repo, 'vendor/sub/lib.c'), `int lib(void) { return ${round + 10}; }\n`);
      await mkdir(join(repo, 'src/generated'), { recursive: true });
      await writeFile(join(repo, 'src/generated/out.js'), `// ${round}\n`);
      await store.checkpoint({ ...cause, turn: round });
      const undo = await store.restore(base!.id, { cause: { ...cause, turn: round } });
      expect(picture(repo, { skip: (r) => r === '.git' || r.startsWith('.git/') })).toEqual(filesBefore);
      // Undo the restore, then restore again.
      await store.restore(undo.undoId!);
      expect(await readFile(join(repo, 'src/app.js'), 'utf8')).toBe(`console.log('agent ${round}');\n`);
      await store.restore(base!.id);
    }
    await store.close();

    expect(picture(repo, { skip: (r) => r === '.git' || r.startsWith('.git/') })).toEqual(filesBefore);
    expect(picture(join(repo, '.git'), { mtime: true })).toEqual(dotGitBefore);
    const viewAfter = gitView(repo);
    expect(viewAfter).toEqual(viewBefore);
    expect(fsckShadow(gitdir)).toEqual({ status: 0, problems: [] });
  });
});
