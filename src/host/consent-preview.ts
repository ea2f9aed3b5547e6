// Consent previews for file-system effects: what a dialog shows before the user
// decides (DESIGN.md, "The spine", step 5). Paths are the canonical targets the
// effect will act on; current content is read through the same checked path as
// the effect (FsEffects), so a preview never reads through a swapped-in link.
//
// Diffs are for display: control characters (which could rewrite a terminal
// line or fake a diff line) and bidi controls are shown escaped, so the text
// is not always a patch that applies. Large diffs are cut with a note.

import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import path from 'node:path';
import type { ResolvedPath } from '../common/capability.ts';
import type { ConsentPreview } from '../common/consent.ts';
import { FsEffectError, type FsEffects } from './fs-effects.ts';
import { PathRefused } from './workspace-jail.ts';

export const PREVIEW_LIMITS = {
  /** Characters of diff shown; the rest is summarised in a note line. */
  maxDiffChars: 200_000,
  /** Time the diff algorithm may take before the preview falls back to showing the new content. */
  diffTimeoutMs: 2000,
  /** Entries listed for a recursive delete, and entries counted before giving up. */
  maxDeleteListed: 200,
  maxDeleteCounted: 10_000,
} as const;

/** Unified diff of the write (a/ b/ workspace-relative names; /dev/null for a new file). */
export async function previewWrite(effects: FsEffects, t: ResolvedPath, newContent: string): Promise<ConsentPreview> {
  const rel = displayRel(effects, t);
  const bytes = Buffer.byteLength(newContent, 'utf8');
  if (!t.exists) {
    return { type: 'write', path: t.path, created: true, bytes, diff: diff('/dev/null', `b/${rel}`, '', newContent) };
  }
  let old: string | undefined;
  let why = '';
  try {
    old = (await effects.readText(t)).content;
  } catch (e) {
    if (!(e instanceof FsEffectError) || (e.code !== 'binary' && e.code !== 'too-large')) throw e;
    why = e.code === 'binary' ? 'the current file is binary' : 'the current file is too large to diff';
  }
  const text = old === undefined
    ? `${note(`${why}; it is replaced entirely by the text below`)}${diff(`a/${rel}`, `b/${rel}`, '', newContent)}`
    : diff(`a/${rel}`, `b/${rel}`, old, newContent);
  return { type: 'write', path: t.path, created: false, bytes, diff: text };
}

/** A file's removal as a diff; a directory as a list of what goes with it. */
export async function previewDelete(effects: FsEffects, t: ResolvedPath, opts: { recursive?: boolean } = {}): Promise<ConsentPreview> {
  const recursive = opts.recursive ?? false;
  const rel = displayRel(effects, t);
  if (t.type === 'symlink') {
    return { type: 'delete', path: t.path, recursive, diff: note(`deletes the symbolic link ${rel} itself, not what it points to`) };
  }
  if (t.type === 'file') {
    try {
      const old = (await effects.readText(t)).content;
      return { type: 'delete', path: t.path, recursive, diff: diff(`a/${rel}`, '/dev/null', old, '') };
    } catch (e) {
      if (!(e instanceof FsEffectError) || (e.code !== 'binary' && e.code !== 'too-large')) throw e;
      return { type: 'delete', path: t.path, recursive, diff: note(`deletes ${rel} (${e.code === 'binary' ? 'a binary file' : 'a file too large to show'})`) };
    }
  }
  if (t.type === 'directory') {
    const listing = await listTree(effects, t);
    const head = `deletes the directory ${rel}${recursive ? ` and everything in it: ${listing.files} file(s), ${listing.dirs} directory(ies)${listing.complete ? '' : ' or more'}` : ' (only if it is empty)'}`;
    const shown = listing.paths.map((p) => `- ${sanitize(p, true)}\n`).join('');
    const more = listing.paths.length < listing.files + listing.dirs || !listing.complete ? note('…and more') : '';
    return { type: 'delete', path: t.path, recursive, diff: note(head) + shown + more };
  }
  return { type: 'delete', path: t.path, recursive };
}

/** `overwrite` is true only when the move would replace something that exists now. */
export function previewMove(from: ResolvedPath, to: ResolvedPath, opts: { overwrite?: boolean } = {}): ConsentPreview {
  return { type: 'move', from: from.path, to: to.path, overwrite: Boolean(opts.overwrite) && to.exists };
}

/** For reads policy asks about: says why the read is unusual (hard link, symlink). */
export function previewRead(t: ResolvedPath): ConsentPreview {
  const notes: string[] = [];
  if (t.hardLinked) notes.push('this file has more than one hard link: the same content may also be a file outside the workspace');
  if (t.requested !== undefined && t.requested !== t.path) notes.push(`asked for as ${t.requested}, which leads here through a symbolic link`);
  if (!t.inWorkspace) notes.push('this file is outside the workspace');
  return { type: 'read', path: t.path, ...(notes.length > 0 ? { note: notes.join('; ') } : {}) };
}

function diff(a: string, b: string, oldText: string, newText: string): string {
  const patch = createTwoFilesPatch(a, b, oldText, newText, undefined, undefined, { headerOptions: FILE_HEADERS_ONLY, timeout: PREVIEW_LIMITS.diffTimeoutMs });
  if (patch === undefined) {
    // Too slow to diff: show the new content whole instead.
    const whole = createTwoFilesPatch(a, b, '', newText, undefined, undefined, { headerOptions: FILE_HEADERS_ONLY });
    return note(`too many changes to diff in time (${Buffer.byteLength(oldText)} → ${Buffer.byteLength(newText)} bytes); the whole new content follows`) + cap(sanitize(whole));
  }
  return cap(sanitize(patch));
}

function cap(text: string): string {
  if (text.length <= PREVIEW_LIMITS.maxDiffChars) return text;
  const cut = text.lastIndexOf('\n', PREVIEW_LIMITS.maxDiffChars);
  const kept = text.slice(0, cut + 1);
  const total = countLines(text);
  return kept + note(`diff truncated: showing ${countLines(kept)} of ${total} lines (${text.length} characters)`);
}

function countLines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Escapes characters that could rewrite what a terminal shows (lone CR, ESC,
 * other C0/C1, bidi controls). `oneLine` escapes tabs and line breaks too (names).
 */
export function sanitize(text: string, oneLine = false): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ch = text[i]!;
    const crlf = !oneLine && c === 0x0d && text.charCodeAt(i + 1) === 0x0a;
    const layout = !oneLine && (c === 0x09 || c === 0x0a);
    const control = (c < 0x20 && !layout && !crlf) || (c >= 0x7f && c <= 0x9f);
    const bidi = c === 0x061c || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    out += control || bidi ? `\\u${c.toString(16).padStart(4, '0')}` : ch;
  }
  return out;
}

function note(text: string): string {
  return `\\ ${sanitize(text, true)}\n`;
}

function displayRel(effects: FsEffects, t: ResolvedPath): string {
  return effects.jail.relative(t.path) ?? t.path;
}

/** Breadth-first listing through the checked effects, bounded by PREVIEW_LIMITS. */
async function listTree(effects: FsEffects, t: ResolvedPath): Promise<{ paths: string[]; files: number; dirs: number; complete: boolean }> {
  const paths: string[] = [];
  let files = 0;
  let dirs = 0;
  let complete = true;
  const queue: ResolvedPath[] = [t];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    const listing = await effects.list(dir);
    if (listing.truncated) complete = false;
    for (const e of listing.entries) {
      if (files + dirs >= PREVIEW_LIMITS.maxDeleteCounted) return { paths, files, dirs, complete: false };
      const rel = `${effects.jail.relative(dir.path) ?? dir.path}/${e.name}`.replace(/^\//, '');
      if (paths.length < PREVIEW_LIMITS.maxDeleteListed) paths.push(e.type === 'directory' ? `${rel}/` : rel);
      if (e.type === 'directory') {
        dirs++;
        try {
          queue.push(await effects.jail.resolve(path.join(dir.path, e.name), { intent: 'entry' }));
        } catch (err) {
          if (!(err instanceof PathRefused)) throw err;
          complete = false; // a name the jail will not take (control characters): counted, not entered
        }
      } else files++;
    }
  }
  return { paths, files, dirs, complete };
}
