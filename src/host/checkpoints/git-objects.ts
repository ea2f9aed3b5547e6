// Loose git objects in the shadow repository. Hashing and compression use
// node:crypto and node:zlib (faster than isomorphic-git's portable code); the
// object is then handed to isomorphic-git already deflated, so the store is
// written and read by isomorphic-git only, always with an explicit `gitdir`.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflate as deflateCb, inflateSync } from 'node:zlib';
import git from 'isomorphic-git';
import { unstorableName } from './ignore-rules.ts';
import type { ShadowFs } from './shadow-fs.ts';

const deflate = promisify(deflateCb);

export type FileMode = '100644' | '100755' | '120000';
export const TREE_MODE = '40000';

export function objectId(type: 'blob' | 'tree' | 'commit', content: Uint8Array): string {
  return createHash('sha1').update(`${type} ${content.byteLength}\0`).update(content).digest('hex');
}

export interface GitDir {
  readonly fs: ShadowFs;
  readonly gitdir: string;
}

/** Writes an object (no-op when it exists) and returns its id. */
export async function writeObject(repo: GitDir, type: 'blob' | 'tree', content: Uint8Array): Promise<string> {
  const oid = objectId(type, content);
  const header = Buffer.from(`${type} ${content.byteLength}\0`);
  const wrapped = Buffer.concat([header, content]);
  const object = await deflate(wrapped);
  await git.writeObject({ fs: repo.fs, gitdir: repo.gitdir, type, object, format: 'deflated', oid });
  return oid;
}

export async function readBlob(repo: GitDir, oid: string): Promise<Uint8Array> {
  const { blob } = await git.readBlob({ fs: repo.fs, gitdir: repo.gitdir, oid });
  return blob;
}

export interface RawTreeEntry {
  readonly mode: string;
  readonly name: string;
  readonly oid: string;
}

/** Git tree order: byte order of the names, a tree's name compared as if it ended in '/'. */
export function encodeTree(entries: readonly RawTreeEntry[]): Buffer {
  const keyed = entries.map((e) => ({ e, key: Buffer.from(e.mode === TREE_MODE ? `${e.name}/` : e.name, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  for (const { e } of keyed) {
    parts.push(Buffer.from(`${e.mode} ${e.name}\0`, 'utf8'), Buffer.from(e.oid, 'hex'));
  }
  return Buffer.concat(parts);
}

export function decodeTree(buf: Uint8Array): RawTreeEntry[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: RawTreeEntry[] = [];
  let at = 0;
  while (at < b.length) {
    const space = b.indexOf(0x20, at);
    const nul = b.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > b.length) throw new Error('corrupt tree object');
    out.push({ mode: b.toString('latin1', at, space), name: b.toString('utf8', space + 1, nul), oid: b.toString('hex', nul + 1, nul + 21) });
    at = nul + 21;
  }
  return out;
}

/**
 * Reads an object, checking its type and hash. Loose objects (all that this
 * store writes) are read synchronously and inflated here: trees and commits
 * are small, and loading a 10,000-file tree through isomorphic-git's async
 * path is an order of magnitude slower. Packed objects (after someone ran
 * `git gc` on the shadow repository) go through isomorphic-git.
 */
export async function readObject(repo: GitDir, oid: string, type: 'tree' | 'commit'): Promise<Buffer> {
  let data: Buffer;
  try {
    data = readFileSync(join(repo.gitdir, 'objects', oid.slice(0, 2), oid.slice(2)));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    const r = await git.readObject({ fs: repo.fs, gitdir: repo.gitdir, oid, format: 'content' });
    if (r.type !== type) throw new CorruptObjectError(`object ${oid} is a ${r.type}, not a ${type}`);
    return Buffer.from(r.object as Uint8Array);
  }
  let raw: Buffer;
  try {
    raw = inflateSync(data);
  } catch (e) {
    throw new CorruptObjectError(`object ${oid} does not inflate: ${(e as Error).message}`);
  }
  const nul = raw.indexOf(0);
  const [kind, size] = raw.toString('latin1', 0, Math.max(nul, 0)).split(' ');
  const content = raw.subarray(nul + 1);
  if (nul < 0 || kind !== type || Number(size) !== content.length || objectId(type, content) !== oid) {
    throw new CorruptObjectError(`object ${oid} is corrupt or not a ${type}`);
  }
  return content;
}

export class CorruptObjectError extends Error {
  override readonly name = 'CorruptObjectError';
}

/** A tree's entries; refuses names that could reach outside the directory (the restore writes by them). */
export async function readTree(repo: GitDir, oid: string): Promise<RawTreeEntry[]> {
  const entries = decodeTree(await readObject(repo, oid, 'tree'));
  for (const e of entries) {
    if (e.name === '' || e.name.includes('/') || e.name.includes('\0') || unstorableName(e.name) !== undefined) {
      throw new CorruptObjectError(`tree ${oid} holds the unsafe name ${JSON.stringify(e.name)}`);
    }
  }
  return entries;
}

/** The root tree of a commit. */
export async function commitTree(repo: GitDir, oid: string): Promise<string> {
  const tree = /^tree ([0-9a-f]{40})$/m.exec((await readObject(repo, oid, 'commit')).toString('utf8'))?.[1];
  if (!tree) throw new CorruptObjectError(`commit ${oid} names no tree`);
  return tree;
}

/** A commit's message. */
export async function commitMessage(repo: GitDir, oid: string): Promise<string> {
  const text = (await readObject(repo, oid, 'commit')).toString('utf8');
  const body = text.indexOf('\n\n');
  return body < 0 ? '' : text.slice(body + 2);
}
