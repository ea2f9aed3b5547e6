import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { describe, expect, it } from 'vitest';
import { createShadowFs, ShadowFsViolation } from '../../../src/host/checkpoints/shadow-fs.ts';
import { tempDir } from './helpers.ts';

describe('the file system isomorphic-git gets', () => {
  it('refuses to read or write anywhere outside the shadow git directory', async () => {
    const root = await tempDir('shadowfs');
    const gitdir = join(root, 'git');
    const tmp = join(root, 'tmp');
    await mkdir(gitdir);
    await mkdir(tmp);
    await mkdir(join(root, 'workspace/.git'), { recursive: true });
    await writeFile(join(root, 'workspace/.git/HEAD'), 'ref: refs/heads/main\n');
    const fs = createShadowFs(gitdir, tmp);
    await expect(fs.promises.readFile(join(root, 'workspace/.git/HEAD'))).rejects.toBeInstanceOf(ShadowFsViolation);
    await expect(fs.promises.writeFile(join(root, 'workspace/.git/HEAD'), 'x')).rejects.toThrow(/outside the shadow repository/);
    await expect(fs.promises.writeFile(join(gitdir, '../workspace/x'), 'x')).rejects.toBeInstanceOf(ShadowFsViolation);
    // isomorphic-git called with a working directory instead of a gitdir hits the wall, not the user's repository.
    await expect(git.init({ fs, dir: join(root, 'workspace') })).rejects.toBeInstanceOf(ShadowFsViolation);
    expect(await readFile(join(root, 'workspace/.git/HEAD'), 'utf8')).toBe('ref: refs/heads/main\n');
    expect(await readdir(join(root, 'workspace/.git'))).toEqual(['HEAD']);
  });

  it('lands every write by rename, leaving no temporary files behind', async () => {
    const root = await tempDir('shadowfs');
    const gitdir = join(root, 'git');
    const tmp = join(root, 'tmp');
    await mkdir(tmp);
    const fs = createShadowFs(gitdir, tmp);
    await git.init({ fs, gitdir, bare: true });
    const oid = await git.writeBlob({ fs, gitdir, blob: new TextEncoder().encode('hello') });
    expect(oid).toBe('b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0');
    expect((await git.readBlob({ fs, gitdir, oid })).blob).toEqual(new TextEncoder().encode('hello'));
    expect(await readdir(tmp)).toEqual([]);
  });
});
