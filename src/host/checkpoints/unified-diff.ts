// Git-style unified diffs for checkpoint previews (what `git diff` would
// print, so reviewers and `git apply` read it). Binary files (a NUL in the
// first 8000 bytes, git's rule) and very large files get a one-line summary
// instead of hunks. A change between a file and a symlink is shown as a
// deletion and an addition, as git does. Renames are not detected.

import { structuredPatch } from 'diff';
import type { FileMode } from './git-objects.ts';

export interface DiffSide {
  readonly mode: FileMode;
  readonly oid: string;
  readonly content: Uint8Array;
}

/** Above this many bytes (both sides together) a text diff is summarised. */
export const MAX_TEXT_DIFF_BYTES = 2 * 1024 * 1024;
const ZERO = '0000000';

export function isBinary(content: Uint8Array): boolean {
  return content.subarray(0, 8000).includes(0);
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what gets quoted
const SPECIAL = /["\\\x00-\x1f\x7f]/;

/** Git's C-style quoting for names with control characters, quotes or backslashes. */
export function quotePath(prefix: string, path: string): string {
  const full = prefix + path;
  if (!SPECIAL.test(full)) return full;
  const esc: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\t': '\\t', '\r': '\\r', '\b': '\\b', '\f': '\\f', '\v': '\\v', '\x07': '\\a' };
  const body = full.replace(new RegExp(SPECIAL.source, 'g'), (c) => esc[c] ?? `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return `"${body}"`;
}

export function fileDiff(path: string, before: DiffSide | undefined, after: DiffSide | undefined): string {
  if (before && after && (before.mode === '120000') !== (after.mode === '120000')) {
    return fileDiff(path, before, undefined) + fileDiff(path, undefined, after);
  }
  if (!before && !after) return '';
  const a = quotePath('a/', path);
  const b = quotePath('b/', path);
  let head = `diff --git ${a} ${b}\n`;
  if (!before) head += `new file mode ${after!.mode}\nindex ${ZERO}..${after!.oid.slice(0, 7)}\n`;
  else if (!after) head += `deleted file mode ${before.mode}\nindex ${before.oid.slice(0, 7)}..${ZERO}\n`;
  else {
    if (before.mode !== after.mode) head += `old mode ${before.mode}\nnew mode ${after.mode}\n`;
    if (before.oid === after.oid) return head;
    head += `index ${before.oid.slice(0, 7)}..${after.oid.slice(0, 7)}${before.mode === after.mode ? ` ${after.mode}` : ''}\n`;
  }
  const oldName = before ? a : '/dev/null';
  const newName = after ? b : '/dev/null';
  const oldBytes = before?.content ?? new Uint8Array();
  const newBytes = after?.content ?? new Uint8Array();
  if (isBinary(oldBytes) || isBinary(newBytes)) return `${head}Binary files ${oldName} and ${newName} differ\n`;
  if (oldBytes.byteLength + newBytes.byteLength > MAX_TEXT_DIFF_BYTES) {
    return `${head}Large file ${oldName} (${oldBytes.byteLength} bytes) and ${newName} (${newBytes.byteLength} bytes) differ; diff omitted\n`;
  }
  const decoder = new TextDecoder();
  const patch = structuredPatch(oldName, newName, decoder.decode(oldBytes), decoder.decode(newBytes), '', '', { context: 3 });
  let out = `${head}--- ${oldName}\n+++ ${newName}\n`;
  for (const h of patch.hunks) {
    out += `@@ -${range(h.oldStart, h.oldLines)} +${range(h.newStart, h.newLines)} @@\n`;
    for (const line of h.lines) out += `${line}\n`;
  }
  return out;
}

function range(start: number, lines: number): string {
  if (lines === 0) return `${start - 1},0`;
  return lines === 1 ? `${start}` : `${start},${lines}`;
}
