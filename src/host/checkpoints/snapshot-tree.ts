// The latest checkpoint's tree, held in memory with a stat key per file so a
// scan can skip unchanged files and a checkpoint rewrites only the tree
// objects on the paths that changed.

import { TREE_MODE, encodeTree, type FileMode, type RawTreeEntry } from './git-objects.ts';

/** What a full scan compares to decide a file is unchanged without reading it. */
export interface StatKey {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
}

export interface FileEntry {
  readonly mode: FileMode;
  readonly oid: string;
  /** Absent when the file may have changed within the file system's timestamp granularity. */
  stat?: StatKey | undefined;
}

interface DirNode {
  readonly children: Map<string, DirNode | FileEntry>;
  /** Tree object id; undefined while the directory is dirty. */
  oid: string | undefined;
}

const isDir = (n: DirNode | FileEntry | undefined): n is DirNode => n !== undefined && 'children' in n;
const newDir = (): DirNode => ({ children: new Map(), oid: undefined });

export class SnapshotTree {
  private root: DirNode = newDir();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(path: string): FileEntry | undefined {
    const parts = path.split('/');
    let node: DirNode | FileEntry | undefined = this.root;
    for (const p of parts) {
      if (!isDir(node)) return undefined;
      node = node.children.get(p);
    }
    return isDir(node) ? undefined : node;
  }

  /** Whether `path` is a directory holding at least one file. */
  hasDir(path: string): boolean {
    return isDir(this.node(path));
  }

  /**
   * Sets a file, replacing whatever is in the way (a directory at `path`, a
   * file where a parent directory must be). Returns the files it displaced.
   */
  set(path: string, entry: FileEntry): string[] {
    const parts = path.split('/');
    const displaced: string[] = [];
    let dir = this.root;
    dir.oid = undefined;
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i]!;
      let next = dir.children.get(name);
      if (!isDir(next)) {
        if (next !== undefined) displaced.push(parts.slice(0, i + 1).join('/'));
        next = newDir();
        dir.children.set(name, next);
      }
      next.oid = undefined;
      dir = next;
    }
    const last = parts.at(-1)!;
    const existing = dir.children.get(last);
    if (isDir(existing)) displaced.push(...this.filesUnder(existing, path));
    this.count += 1 - displaced.length - (existing !== undefined && !isDir(existing) ? 1 : 0);
    dir.children.set(last, entry);
    return displaced;
  }

  /** Deletes a file or a whole directory; returns the files removed. */
  delete(path: string): string[] {
    const parts = path.split('/');
    const chain: DirNode[] = [this.root];
    for (const p of parts.slice(0, -1)) {
      const next = chain.at(-1)!.children.get(p);
      if (!isDir(next)) return [];
      chain.push(next);
    }
    const parent = chain.at(-1)!;
    const last = parts.at(-1)!;
    const node = parent.children.get(last);
    if (node === undefined) return [];
    const removed = isDir(node) ? [...this.filesUnder(node, path)] : [path];
    parent.children.delete(last);
    this.count -= removed.length;
    for (const d of chain) d.oid = undefined;
    // Git has no empty directories: drop the ones this emptied.
    for (let i = chain.length - 1; i > 0; i--) {
      if (chain[i]!.children.size > 0) break;
      chain[i - 1]!.children.delete(parts[i - 1]!);
    }
    return removed;
  }

  /** Every file as [path, entry], below `prefix` when given. */
  *files(prefix?: string): Generator<[string, FileEntry]> {
    if (prefix === undefined || prefix === '') {
      yield* this.walk(this.root, '');
      return;
    }
    const node = this.node(prefix);
    if (node === undefined) return;
    if (isDir(node)) yield* this.walk(node, prefix);
    else yield [prefix, node];
  }

  /** Writes the dirty tree objects bottom-up and returns the root tree id. */
  async writeTrees(write: (content: Buffer) => Promise<string>): Promise<string> {
    const visit = async (dir: DirNode): Promise<string> => {
      if (dir.oid !== undefined) return dir.oid;
      const entries: RawTreeEntry[] = [];
      for (const [name, child] of dir.children) {
        if (isDir(child)) entries.push({ mode: TREE_MODE, name, oid: await visit(child) });
        else entries.push({ mode: child.mode, name, oid: child.oid });
      }
      dir.oid = await write(encodeTree(entries));
      return dir.oid;
    };
    return visit(this.root);
  }

  /** Loads a tree from the store; every directory comes in clean (its oid known). */
  static async load(rootOid: string, readTree: (oid: string) => Promise<RawTreeEntry[]>): Promise<SnapshotTree> {
    const tree = new SnapshotTree();
    const fill = async (dir: DirNode, oid: string): Promise<void> => {
      for (const e of await readTree(oid)) {
        if (e.mode === TREE_MODE) {
          const child = newDir();
          dir.children.set(e.name, child);
          await fill(child, e.oid);
        } else if (e.mode === '100644' || e.mode === '100755' || e.mode === '120000') {
          dir.children.set(e.name, { mode: e.mode, oid: e.oid });
          tree.count++;
        } else {
          throw new Error(`unexpected mode ${e.mode} for ${e.name} in tree ${oid}`);
        }
      }
      dir.oid = oid;
    };
    await fill(tree.root, rootOid);
    return tree;
  }

  /** Serialisable form: the files with their stat keys, and the tree ids of clean directories. */
  toJSON(): SerializedTree {
    const files: SerializedFile[] = [];
    const dirs: [string, string][] = [];
    const visit = (dir: DirNode, prefix: string) => {
      if (dir.oid !== undefined) dirs.push([prefix, dir.oid]);
      for (const [name, child] of dir.children) {
        const path = prefix === '' ? name : `${prefix}/${name}`;
        if (isDir(child)) visit(child, path);
        else files.push(serializeFile(path, child));
      }
    };
    visit(this.root, '');
    return { files, dirs };
  }

  static fromJSON(data: SerializedTree): SnapshotTree {
    const tree = new SnapshotTree();
    for (const f of data.files) tree.set(f[0], deserializeFile(f));
    for (const [path, oid] of data.dirs) {
      const node = path === '' ? tree.root : tree.node(path);
      if (isDir(node)) node.oid = oid;
    }
    return tree;
  }

  private node(path: string): DirNode | FileEntry | undefined {
    let node: DirNode | FileEntry | undefined = this.root;
    for (const p of path.split('/')) {
      if (!isDir(node)) return undefined;
      node = node.children.get(p);
    }
    return node;
  }

  private *walk(dir: DirNode, prefix: string): Generator<[string, FileEntry]> {
    for (const [name, child] of dir.children) {
      const path = prefix === '' ? name : `${prefix}/${name}`;
      if (isDir(child)) yield* this.walk(child, path);
      else yield [path, child];
    }
  }

  private *filesUnder(dir: DirNode, prefix: string): Generator<string> {
    for (const [p] of this.walk(dir, prefix)) yield p;
  }
}

export type SerializedFile = [string, FileMode, string, number?, number?, number?, number?];

export function serializeFile(path: string, e: FileEntry): SerializedFile {
  return e.stat ? [path, e.mode, e.oid, e.stat.size, e.stat.mtimeMs, e.stat.ctimeMs, e.stat.ino] : [path, e.mode, e.oid];
}

export function deserializeFile(f: SerializedFile): FileEntry {
  const [, mode, oid, size, mtimeMs, ctimeMs, ino] = f;
  return { mode, oid, stat: size === undefined ? undefined : { size, mtimeMs: mtimeMs!, ctimeMs: ctimeMs!, ino: ino! } };
}
export interface SerializedTree {
  readonly files: SerializedFile[];
  readonly dirs: [string, string][];
}
