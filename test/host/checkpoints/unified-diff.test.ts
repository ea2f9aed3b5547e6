import { describe, expect, it } from 'vitest';
import { objectId } from '../../../src/host/checkpoints/git-objects.ts';
import { fileDiff, quotePath } from '../../../src/host/checkpoints/unified-diff.ts';

const side = (text: string | Uint8Array, mode: '100644' | '100755' | '120000' = '100644') => {
  const content = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  return { mode, oid: objectId('blob', content), content };
};

describe('unified diffs for checkpoint previews', () => {
  it.each([
    ['plain/path.txt', 'a/plain/path.txt'],
    ['with space.txt', 'a/with space.txt'],
    ['ünïcødé.md', 'a/ünïcødé.md'],
    ['new\nline', '"a/new\\nline"'],
    ['tab\tand"quote', '"a/tab\\tand\\"quote"'],
    ['back\\slash', '"a/back\\\\slash"'],
    ['bell\x07', '"a/bell\\a"'],
    ['esc\x1b', '"a/esc\\033"'],
  ])('quotes %j the way git does', (path, quoted) => {
    expect(quotePath('a/', path)).toBe(quoted);
  });

  it('writes new, deleted and modified files with git headers and hunks', () => {
    expect(fileDiff('n.txt', undefined, side('a\nb\n'))).toBe(
      `diff --git a/n.txt b/n.txt\nnew file mode 100644\nindex 0000000..${side('a\nb\n').oid.slice(0, 7)}\n--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n`,
    );
    expect(fileDiff('d.txt', side('x\n'), undefined)).toContain('deleted file mode 100644\n');
    expect(fileDiff('d.txt', side('x\n'), undefined)).toContain('@@ -1 +0,0 @@\n-x\n');
    const modified = fileDiff('m.txt', side('1\n2\n3\n'), side('1\ntwo\n3'));
    expect(modified).toContain('@@ -1,3 +1,3 @@\n 1\n-2\n-3\n+two\n+3\n\\ No newline at end of file\n');
  });

  it('shows a mode-only change without hunks, and binary and symlink changes as git does', () => {
    expect(fileDiff('s.sh', side('echo\n'), side('echo\n', '100755'))).toBe('diff --git a/s.sh b/s.sh\nold mode 100644\nnew mode 100755\n');
    expect(fileDiff('b.bin', side(new Uint8Array([1, 0, 2])), side(new Uint8Array([1, 0, 3])))).toMatch(/Binary files a\/b\.bin and b\/b\.bin differ\n$/);
    const toLink = fileDiff('l', side('file content\n'), side('target', '120000'));
    expect(toLink).toMatch(/^diff --git a\/l b\/l\ndeleted file mode 100644\n[^]*diff --git a\/l b\/l\nnew file mode 120000\n[^]*\+target\n\\ No newline at end of file\n$/);
  });
});
