// Loose git objects in the shadow repository. Hashing and compression use
// node:crypto and node:zlib (faster than isomorphic-git's portable code); the
// object is then handed to isomorphic-git already deflated, so the store is
// written and read by isomorphic-git only, always with an explicit `gitdir`.

import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { deflate as deflateCb, inflateSync } from 'node:zlib';
import git from 'isomorphic-git';
import type { ShadowFs } from './shadow-fs.ts';

const deflate = promisify(deflateCb);

export type FileMode = '100644' | '100755' | '120000';
export const TREE_MODE = '40000';
export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

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

/** Reads a tree through isomorphic-git (which checks the object's hash and refuses unsafe names). */
export async function readTree(repo: GitDir, oid: string): Promise<RawTreeEntry[]> {
  const { tree } = await git.readTree({ fs: repo.fs, gitdir: repo.gitdir, oid });
  return tree.map((e) => ({ mode: e.mode === '040000' ? TREE_MODE : e.mode, name: e.path, oid: e.oid }));
}

/**
 * Reads a loose object's raw bytes without isomorphic-git, for the reachability
 * walk in pruning (thousands of trees; only their entry lists are needed).
 * Returns undefined when the object is not loose.
 */
export function inflateLoose(data: Buffer): { type: string; content: Buffer } {
  const raw = inflateSync(data);
  const nul = raw.indexOf(0);
  const [type] = raw.toString('latin1', 0, nul).split(' ');
  return { type: type!, content: raw.subarray(nul + 1) };
}
