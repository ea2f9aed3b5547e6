// Which workspace paths checkpoints leave out: every `.git` (the user's
// repository, submodules' and nested repositories' git files), the shadow
// store itself if it lives inside the workspace, Tether's extra patterns, and
// — unless turned off — what git would ignore: `.gitignore` files at every
// level (deeper wins, `!` re-includes) and `.git/info/exclude`, read only.
//
// Not here: the user's global `core.excludesFile`, and `.gitignore` rules
// inside a submodule applying only to it (here they apply to their subtree,
// which is the same paths).

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import ignoreModule, { type Ignore } from 'ignore';

// `ignore` is CommonJS with a `default` property pointing at itself; its types
// describe only that property, so call it through there.
const ignore = ignoreModule.default;

interface Cached {
  readonly key: string;
  readonly rules: Ignore | undefined;
  /** The pass in which the file was last checked by stat. */
  gen: number;
}

/** Names isomorphic-git refuses to read back from a tree (git's verify_path, NTFS/HFS aliases of .git). */
export function unstorableName(name: string): string | undefined {
  if (name.includes('\uFFFD')) return 'the name is not valid UTF-8';
  if (name.includes('\\')) return 'the name contains a backslash, which git trees cannot hold portably';
  const hfsClean = name.replace(/[\u200C-\u200F\u202A-\u202E\u206A-\u206F\uFEFF]/g, '');
  const normalized = hfsClean.split(':')[0]!.toLowerCase().replace(/[. ]+$/, '');
  if (hfsClean === '.' || hfsClean === '..') return 'reserved name';
  if (normalized === '.git' || /^\.?git~[1-9]$/.test(normalized)) return 'the name aliases .git';
  return undefined;
}

export interface IgnoreRulesOptions {
  readonly workspace: string;
  readonly respectGitignore: boolean;
  /** gitignore-style patterns always excluded (relative to the workspace). */
  readonly exclude: readonly string[];
  /** Workspace-relative directories always excluded (the shadow store when inside). */
  readonly excludeDirs: readonly string[];
  /** Also excluded when it says so (CheckpointStoreOptions.neverCapture). */
  readonly skip?: (rel: string, isDir: boolean) => boolean;
}

export class IgnoreRules {
  private readonly cache = new Map<string, Cached>();
  private readonly extra: Ignore | undefined;
  private infoExclude: Cached | undefined;
  private readonly opts: IgnoreRulesOptions;
  private gen = 0;

  constructor(opts: IgnoreRulesOptions) {
    this.opts = opts;
    this.extra = opts.exclude.length > 0 ? ignore().add([...opts.exclude]) : undefined;
  }

  /**
   * Starts a pass (a scan, a checkpoint): each ignore file is checked by stat
   * once per pass, so edits to `.gitignore` take effect at the next pass.
   */
  async beginPass(): Promise<void> {
    this.gen++;
    await this.loadInfoExclude();
  }

  /**
   * Loads the `.gitignore` of a directory for this pass. A scan that has just
   * listed the directory says whether the file is there, saving a stat.
   */
  async enterDir(dir: string, hasGitignore?: boolean): Promise<void> {
    const cached = this.cache.get(dir);
    if (cached?.gen === this.gen) return;
    if (hasGitignore === false || !this.opts.respectGitignore) {
      this.cache.set(dir, { key: 'none', rules: undefined, gen: this.gen });
      return;
    }
    this.cache.set(dir, await loadRules(join(this.opts.workspace, dir, '.gitignore'), cached, this.gen));
  }

  /**
   * Whether `rel` is excluded, assuming its ancestors are not. Every directory
   * above `rel` must have been entered in this pass (a full scan enters them
   * on the way down; `isExcludedPath` enters them itself).
   */
  isExcluded(rel: string, isDir: boolean): boolean {
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    if (name.toLowerCase() === '.git') return true;
    if (isDir && this.opts.excludeDirs.includes(rel)) return true;
    if (this.opts.skip?.(rel, isDir)) return true;
    const probe = isDir ? `${rel}/` : rel;
    if (this.extra?.ignores(probe)) return true;
    if (!this.opts.respectGitignore) return false;
    // Deepest .gitignore first; the first level with a matching rule decides.
    let dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    for (;;) {
      const cached = this.cache.get(dir);
      if (cached?.gen !== this.gen) throw new Error(`ignore rules for ${dir || 'the workspace root'} were not loaded before checking ${rel}`);
      if (cached.rules) {
        const verdict = cached.rules.test(dir === '' ? probe : probe.slice(dir.length + 1));
        if (verdict.ignored) return true;
        if (verdict.unignored) return false;
      }
      if (dir === '') break;
      dir = dir.includes('/') ? dir.slice(0, dir.lastIndexOf('/')) : '';
    }
    return this.infoExclude?.rules?.ignores(probe) ?? false;
  }

  /** Loads what is needed, then checks `rel` and every directory above it. */
  async isExcludedPath(rel: string, isDir: boolean): Promise<boolean> {
    const parts = rel.split('/');
    await this.enterDir('');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.isExcluded(dir, true)) return true;
      await this.enterDir(dir);
    }
    return this.isExcluded(rel, isDir);
  }

  /** Starts a pass: loads `.git/info/exclude` again if it changed. */
  private async loadInfoExclude(): Promise<void> {
    if (!this.opts.respectGitignore) return;
    this.infoExclude = await loadRules(join(this.opts.workspace, '.git', 'info', 'exclude'), this.infoExclude, this.gen);
  }
}

async function loadRules(file: string, cached: Cached | undefined, gen: number): Promise<Cached> {
  let key: string;
  try {
    const st = await fsp.lstat(file);
    if (!st.isFile()) return { key: 'none', rules: undefined, gen };
    key = `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
  } catch {
    return { key: 'none', rules: undefined, gen };
  }
  if (cached?.key === key) {
    cached.gen = gen;
    return cached;
  }
  try {
    const text = await fsp.readFile(file, 'utf8');
    return { key, rules: ignore().add(text), gen };
  } catch {
    return { key: 'none', rules: undefined, gen };
  }
}
