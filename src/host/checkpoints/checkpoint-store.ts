// Checkpoints of a workspace in a shadow git repository, and restores from them.
//
// Layout: <dataDir>/checkpoints/<sha256(canonical workspace) prefix>/
//   git/         bare repository written by isomorphic-git (always an explicit
//                gitdir; the fs it gets refuses any path outside git/)
//   state.json   a checkpoint's tree with a stat key per file, and
//   state.log    the changes since, one JSON line per checkpoint
//   store.json   which workspace this store belongs to
//   tmp/         temporary files, renamed into git/ when complete
//   lock         the pid of the process working in the store
//
// Invariants:
//  1. Nothing here writes inside the workspace except `restore`, and nothing
//     ever reads or writes the workspace's `.git` (or any `.git` below it),
//     apart from reading `.git/info/exclude` for ignore rules.
//  2. A checkpoint is a root commit (no parent) named by the ref
//     refs/tether/checkpoints/<seq>. Objects are written before the ref, and
//     every file lands by rename, so a killed process leaves either a complete
//     checkpoint or none, plus unreachable objects that pruning removes.
//     Root commits keep ids stable when retention drops old checkpoints.
//  3. The highest seq is the latest checkpoint: the baseline for "changed
//     outside Tether" (restore conflicts). Retention never drops it.
//  4. state.json + state.log are a cache, used only when replaying the log
//     from state.json's commit ends at the latest commit (each line names the
//     commit it applies to); otherwise the tree is reloaded from the
//     repository (stat keys are lost, so the next full scan re-hashes).
//  5. Every operation holds the lock file and runs one at a time; another
//     process's checkpoints are noticed by comparing the latest ref.

import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import git from 'isomorphic-git';
import { Emitter } from '../../common/emitter.ts';
import { decodeMessage, encodeMessage, type CheckpointMetadata } from './checkpoint-metadata.ts';
import type {
  ChangedPath, CheckpointCause, CheckpointInfo, CheckpointKind, CheckpointRequest, DiffResult, FileChange, FileModeName,
  PruneResult, RestoreFile, RestoreOptions, RestorePlan, RestoreResult, SkippedPath, StoreUsage,
} from './checkpoint-types.ts';
import { TREE_MODE, commitMessage, commitTree, objectId, readBlob, readTree, writeObject, type FileMode, type GitDir } from './git-objects.ts';
import { TEMP_PREFIX, TEMP_SUFFIX } from '../fs-effects.ts';
import { IgnoreRules } from './ignore-rules.ts';
import { atomicWrite, createShadowFs, TMP_PREFIX } from './shadow-fs.ts';
import { SnapshotTree, deserializeFile, serializeFile, type FileEntry, type SerializedFile, type SerializedTree, type StatKey } from './snapshot-tree.ts';
import { acquireLock } from './store-lock.ts';
import { fileDiff, isBinary, type DiffSide } from './unified-diff.ts';
import { RACY_MS, WorkspaceScanner, isMissing, minimalRoots, sameStat, underRoot, type ScanResult } from './workspace-scanner.ts';

const WRITE_TEMP_PATTERN = `${TEMP_PREFIX}${'?'.repeat(16)}${TEMP_SUFFIX}`;

export interface CheckpointStoreOptions {
  /** The workspace directory (resolved to its canonical path). */
  readonly workspace: string;
  /** Tether's data directory; the store lives in `<dataDir>/checkpoints/<hash>`. */
  readonly dataDir: string;
  /** Files larger than this are not captured (recorded as skipped). Default 10 MiB. */
  readonly maxFileBytes?: number;
  /** Keep at most `maxCount` checkpoints (default 1000), none older than `maxAgeDays` (default 30). The latest is always kept. */
  readonly retention?: { readonly maxCount?: number; readonly maxAgeDays?: number };
  /** Leave out what git would ignore (.gitignore, .git/info/exclude). Default true. */
  readonly respectGitignore?: boolean;
  /** Extra gitignore-style patterns never captured. */
  readonly exclude?: readonly string[];
  /**
   * Paths never captured, asked per path (workspace-relative, '/'): the files
   * policy forbids the agent (a project's .env), which the agent can neither
   * change nor read, so copies in the shadow repository would only be more
   * copies of secrets. Left alone by restores, like ignored files.
   */
  readonly neverCapture?: (rel: string, isDir: boolean) => boolean;
  /** How long an operation waits for another process holding the store. Default 10 s. */
  readonly lockTimeoutMs?: number;
  /** Delete unreachable objects once this many checkpoints were dropped by retention. Default 50. */
  readonly pruneEvery?: number;
}

export class CheckpointError extends Error {
  override readonly name: string = 'CheckpointError';
}

/** Restore refused: files changed outside Tether since the latest checkpoint. */
export class RestoreConflictError extends CheckpointError {
  override readonly name = 'RestoreConflictError';
  readonly conflicts: readonly RestoreFile[];
  constructor(plan: RestorePlan) {
    const list = plan.conflicts.slice(0, 10).map((c) => `${c.path} (${c.conflict})`).join(', ');
    const more = plan.conflicts.length > 10 ? ` and ${plan.conflicts.length - 10} more` : '';
    super(`restore from checkpoint ${plan.checkpoint.seq} refused: ${plan.conflicts.length} file${plan.conflicts.length === 1 ? '' : 's'} changed outside Tether since the latest checkpoint: ${list}${more}. Restoring would overwrite those changes; review the diff and confirm overwriting them (overwriteConflicts, or --force in the CLI).`);
    this.conflicts = plan.conflicts;
  }
}

const REF_DIR = 'refs/tether/checkpoints';
const KINDS: readonly CheckpointKind[] = ['turn-start', 'change', 'before-restore', 'restore', 'manual'];
const refName = (seq: number) => `${REF_DIR}/${String(seq).padStart(10, '0')}`;
const STATE_VERSION = 1;
const DAY_MS = 86_400_000;
const AUTHOR = { name: 'Tether', email: 'checkpoints@tether.invalid', timezoneOffset: 0 };

interface Head {
  readonly seq: number;
  readonly id: string;
}

interface StateFile {
  readonly v: number;
  readonly seq: number;
  readonly id: string;
  readonly tree: SerializedTree;
  readonly skipped: SkippedPath[];
}

/** One line of state.log: turns the tree of checkpoint `prev` into the tree of `id` (equal for stat-only updates). */
interface StateLogLine {
  readonly prev: string;
  readonly id: string;
  readonly seq: number;
  readonly set: SerializedFile[];
  readonly del: string[];
  readonly skipped: SkippedPath[];
}

/** state.json is rewritten (and state.log emptied) past these; otherwise a checkpoint appends one line. */
const LOG_MAX_LINES = 500;
const LOG_MAX_BYTES = 4 * 1024 * 1024;
const LOG_MAX_LINE_FILES = 1000;

interface Entry {
  readonly mode: FileMode;
  readonly oid: string;
}

/** What is at a path in the workspace right now, as far as a restore is concerned. */
type Current =
  | { readonly kind: 'entry'; readonly mode: FileMode; readonly oid: string }
  | { readonly kind: 'absent' }
  | { readonly kind: 'untracked'; readonly what: string };

export class CheckpointStore {
  readonly workspace: string;
  readonly storeDir: string;
  /** What recovery did when the store was opened (empty normally). */
  readonly recovered: string[] = [];
  private readonly didCheckpoint = new Emitter<CheckpointInfo>();
  /** A checkpoint was recorded by this store object (not by another process). */
  readonly onDidCheckpoint = this.didCheckpoint.event;

  private readonly repo: GitDir;
  private readonly scanner: WorkspaceScanner;
  private readonly maxFileBytes: number;
  private readonly maxCount: number;
  private readonly maxAgeDays: number;
  private readonly lockTimeoutMs: number;
  private readonly pruneEvery: number;
  private readonly tmpDir: string;

  private head: Head | undefined;
  /** Every checkpoint ref, oldest first; valid while `head` is the latest on disk. */
  private refCache: Head[] | undefined;
  private tree = new SnapshotTree();
  private skipped: SkippedPath[] = [];
  /** Whether `head`/`tree` match the repository (false after a failed checkpoint). */
  private valid = false;
  private opened = false;
  /** Files changed since the last state write (null: deleted), not yet in state.json or state.log. */
  private unsaved = new Map<string, FileEntry | null>();
  private logLines = 0;
  private logBytes = 0;
  private dropped = 0;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly infos = new Map<string, CheckpointInfo>();
  private readonly trees = new Map<string, Map<string, Entry>>();

  private constructor(workspace: string, storeDir: string, opts: CheckpointStoreOptions, excludeDirs: string[]) {
    this.workspace = workspace;
    this.storeDir = storeDir;
    this.tmpDir = join(storeDir, 'tmp');
    const gitdir = join(storeDir, 'git');
    this.repo = { fs: createShadowFs(gitdir, this.tmpDir), gitdir };
    this.maxFileBytes = opts.maxFileBytes ?? 10 * 1024 * 1024;
    this.maxCount = Math.max(1, opts.retention?.maxCount ?? 1000);
    this.maxAgeDays = opts.retention?.maxAgeDays ?? 30;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;
    this.pruneEvery = Math.max(1, opts.pruneEvery ?? 50);
    // A write's temp file (staged while its decision is committed) is never captured.
    const rules = new IgnoreRules({
      workspace, respectGitignore: opts.respectGitignore ?? true, exclude: [WRITE_TEMP_PATTERN, ...(opts.exclude ?? [])], excludeDirs,
      ...(opts.neverCapture ? { skip: opts.neverCapture } : {}),
    });
    this.scanner = new WorkspaceScanner({ workspace, rules, maxFileBytes: this.maxFileBytes });
  }

  static async open(opts: CheckpointStoreOptions): Promise<CheckpointStore> {
    let workspace: string;
    try {
      workspace = await fsp.realpath(opts.workspace);
      if (!(await fsp.stat(workspace)).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new CheckpointError(`cannot open checkpoints for workspace ${opts.workspace}: ${(e as Error).message}`);
    }
    const key = createHash('sha256').update(workspace).digest('hex').slice(0, 24);
    await fsp.mkdir(resolve(opts.dataDir), { recursive: true, mode: 0o700 });
    const dataDir = await fsp.realpath(opts.dataDir);
    const storeDir = join(dataDir, 'checkpoints', key);
    if (dataDir === workspace || workspace.startsWith(dataDir + sep)) {
      throw new CheckpointError(`the workspace ${workspace} is inside Tether's data directory ${dataDir}; choose another data directory or workspace`);
    }
    // Tether's own data (this store, audit logs) is never captured, even when it lives in the workspace.
    const relData = relative(workspace, dataDir);
    const excludeDirs = relData === '' || relData === '..' || relData.startsWith(`..${sep}`) || isAbsolute(relData) ? [] : [relData.split(sep).join('/')];
    await fsp.mkdir(join(storeDir, 'tmp'), { recursive: true, mode: 0o700 });
    const store = new CheckpointStore(workspace, storeDir, opts, excludeDirs);
    await store.exclusive(() => store.recover());
    return store;
  }

  /**
   * Snapshots the workspace (or only `paths`) and records why. Returns
   * undefined, and records nothing, when nothing changed since the latest
   * checkpoint.
   */
  checkpoint(req: CheckpointRequest): Promise<CheckpointInfo | undefined> {
    return this.exclusive(() => this.snapshot(req, req.kind ?? 'change'));
  }

  /** Every checkpoint, newest first. */
  list(): Promise<CheckpointInfo[]> {
    return this.exclusive(async () => {
      const refs = await this.refs();
      const infos = await Promise.all(refs.map((r) => this.info(r.id)));
      return infos.reverse();
    });
  }

  /** A checkpoint by id, unique id prefix (≥ 4 hex digits) or seq number. */
  get(ref: string): Promise<CheckpointInfo> {
    return this.exclusive(async () => this.info(await this.resolveId(ref)));
  }

  /** The latest checkpoint, if any. */
  latest(): Promise<CheckpointInfo | undefined> {
    return this.exclusive(async () => (this.head ? this.info(this.head.id) : undefined));
  }

  /** Unified diff from checkpoint `id` to checkpoint `to`, or to the current workspace. */
  diff(id: string, options: { paths?: readonly string[]; to?: string } = {}): Promise<DiffResult> {
    return this.exclusive(async () => {
      const from = await this.info(await this.resolveId(id));
      const roots = this.roots(options.paths);
      const before = await this.entriesOf(from.id);
      let to: CheckpointInfo | 'workspace';
      let after: Map<string, Entry>;
      let afterContent: (path: string, e: Entry) => Promise<Uint8Array>;
      if (options.to !== undefined) {
        to = await this.info(await this.resolveId(options.to));
        after = await this.entriesOf(to.id);
        afterContent = (_p, e) => readBlob(this.repo, e.oid);
      } else {
        to = 'workspace';
        after = await this.currentEntries(await this.scan(roots));
        afterContent = async (p, e) => (await this.scanner.read(p, e.mode)).content;
      }
      const files: FileChange[] = [];
      let diff = '';
      for (const path of unionPaths(before, after, roots)) {
        const a = before.get(path);
        const b = after.get(path);
        if (a && b && a.mode === b.mode && a.oid === b.oid) continue;
        const aSide = a ? { ...a, content: await readBlob(this.repo, a.oid) } : undefined;
        const bSide = b ? { ...b, content: await afterContent(path, b) } : undefined;
        files.push(fileChange(path, aSide, bSide));
        diff += fileDiff(path, aSide, bSide);
      }
      return { from, to, files, diff };
    });
  }

  /** What `restore` would change, with conflicts; changes nothing. */
  planRestore(id: string, options: { paths?: readonly string[] } = {}): Promise<RestorePlan> {
    return this.exclusive(async () => (await this.plan(id, options.paths)).plan);
  }

  /**
   * Puts the files of checkpoint `id` (all, or `paths`) back into the
   * workspace: contents, executable bits, symlinks, deletions. Takes a
   * checkpoint of the files it is about to change first (the undo point),
   * refuses on conflicts unless `overwriteConflicts`, and checkpoints the
   * result.
   */
  restore(id: string, options: RestoreOptions = {}): Promise<RestoreResult> {
    return this.exclusive(async () => {
      const { plan, targets } = await this.plan(id, options.paths);
      if (options.expectedFingerprint !== undefined && options.expectedFingerprint !== plan.fingerprint) {
        throw new CheckpointError(`restore from checkpoint ${plan.checkpoint.seq} refused: the workspace changed since the preview was made; review the new preview and confirm again`);
      }
      if (plan.conflicts.length > 0 && !options.overwriteConflicts) throw new RestoreConflictError(plan);
      if (plan.files.length === 0) return { plan, undoId: this.head?.id, after: undefined };
      const cause: CheckpointCause = options.cause ?? { sessionId: 'restore', turn: 0, requestIds: [], auditSeqs: [] };
      const paths = plan.files.map((f) => f.path);
      // Retention waits until the end: it must not drop the checkpoint being restored from.
      const before = await this.snapshot({ ...cause, paths }, 'before-restore', undefined, false);
      const undoId = before?.id ?? this.head?.id;
      await this.apply(plan.files, targets);
      const after = await this.snapshot({ ...cause, paths }, 'restore', plan.checkpoint.id, false);
      await this.applyRetention();
      return { plan, undoId, after };
    });
  }

  /** Deletes objects no checkpoint reaches (left by retention or by a killed process). */
  prune(): Promise<PruneResult> {
    return this.exclusive(() => this.pruneObjects());
  }

  /** Space used by the store. */
  usage(): Promise<StoreUsage> {
    return this.exclusive(async () => {
      let bytes = 0;
      let allocatedBytes = 0;
      let objects = 0;
      for (const e of await fsp.readdir(this.storeDir, { withFileTypes: true, recursive: true })) {
        if (!e.isFile()) continue;
        const st = await fsp.lstat(join(e.parentPath, e.name));
        bytes += st.size;
        allocatedBytes += st.blocks * 512;
        if (/[\\/]objects[\\/][0-9a-f]{2}$/.test(e.parentPath)) objects++;
      }
      return { bytes, allocatedBytes, objects, checkpoints: (await this.refs()).length };
    });
  }

  /** Saves the stat cache and refuses further calls. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.exclusive(async () => {
      if (this.unsaved.size > 0 || this.logLines > 0) await this.saveState();
      this.closed = true;
    });
  }

  // ---------------------------------------------------------------- internals

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      if (this.closed) throw new CheckpointError('the checkpoint store is closed');
      const release = await acquireLock(join(this.storeDir, 'lock'), this.lockTimeoutMs);
      try {
        if (this.opened) await this.sync();
        return await fn();
      } finally {
        await release();
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** On open, under the lock: finish or discard what a killed process left. */
  private async recover(): Promise<void> {
    for (const name of await fsp.readdir(this.tmpDir)) {
      await fsp.rm(join(this.tmpDir, name), { force: true, recursive: true });
      this.recovered.push(`removed the unfinished temporary file ${name}`);
    }
    const marker = join(this.storeDir, 'store.json');
    let info: { workspace?: string } | undefined;
    try {
      info = JSON.parse(await fsp.readFile(marker, 'utf8')) as { workspace?: string };
    } catch (e) {
      if (!isMissing(e)) throw new CheckpointError(`the checkpoint store ${this.storeDir} is damaged (${(e as Error).message}); move it aside to start over`);
    }
    if (info && info.workspace !== this.workspace) {
      throw new CheckpointError(`the checkpoint store ${this.storeDir} belongs to ${String(info.workspace)}, not ${this.workspace}`);
    }
    if (!info) {
      await git.init({ fs: this.repo.fs, gitdir: this.repo.gitdir, bare: true, defaultBranch: 'main' });
      await fsp.mkdir(join(this.repo.gitdir, REF_DIR), { recursive: true });
      await atomicWrite(marker, JSON.stringify({ v: 1, workspace: this.workspace, created: new Date().toISOString() }) + '\n', { tmpDir: this.tmpDir });
    }
    // An interrupted init leaves config but no HEAD (git itself then refuses the directory).
    try {
      await fsp.access(join(this.repo.gitdir, 'HEAD'));
    } catch {
      await atomicWrite(join(this.repo.gitdir, 'HEAD'), 'ref: refs/heads/main\n', { tmpDir: this.tmpDir });
      this.recovered.push('rewrote the missing HEAD of the shadow repository');
    }
    await this.sync();
    await this.pointHead();
    this.opened = true;
  }

  /** HEAD names the latest checkpoint, for anyone inspecting the shadow repository with git. */
  private async pointHead(): Promise<void> {
    if (!this.head) return;
    const file = join(this.repo.gitdir, 'HEAD');
    const want = `${this.head.id}\n`;
    if ((await fsp.readFile(file, 'utf8').catch(() => '')) !== want) await atomicWrite(file, want, { tmpDir: this.tmpDir });
  }

  /** Brings the in-memory tree to the latest checkpoint on disk. */
  private async sync(): Promise<void> {
    for (;;) {
      const latest = await this.latestRef();
      if (this.valid && latest?.id === this.head?.id && latest?.seq === this.head?.seq) return;
      this.refCache = undefined;
      if (!latest) {
        this.head = undefined;
        this.tree = new SnapshotTree();
        this.skipped = [];
        this.valid = true;
        return;
      }
      try {
        await this.load(latest);
        this.valid = true;
        return;
      } catch (e) {
        // An I/O error (EACCES, EMFILE…) says nothing about the checkpoint: report it.
        if (/^E[A-Z]+$/.test(String((e as NodeJS.ErrnoException).code))) throw e;
        // The newest checkpoint cannot be read (e.g. objects lost in a power cut): drop it, fall back to the one before.
        await git.deleteRef({ fs: this.repo.fs, gitdir: this.repo.gitdir, ref: refName(latest.seq) });
        this.recovered.push(`dropped checkpoint ${latest.seq} (${latest.id}): ${(e as Error).message}`);
      }
    }
  }

  private async load(latest: Head): Promise<void> {
    // Read the commit and its root tree even with a matching cache: they are what a lost write would take.
    const info = await this.info(latest.id);
    const rootTree = await commitTree(this.repo, latest.id);
    await readTree(this.repo, rootTree);
    const cached = await this.readState(latest.id);
    // The cached tree must hash to the commit's tree (directories the log touched are re-hashed, nothing is written).
    if (cached && (await cached.tree.writeTrees(async (content) => objectId('tree', content))) === rootTree) {
      this.tree = cached.tree;
      this.skipped = cached.skipped;
    } else {
      this.tree = await SnapshotTree.load(rootTree, (oid) => readTree(this.repo, oid));
      this.skipped = [...info.skipped];
      this.logLines = LOG_MAX_LINES;
    }
    this.unsaved.clear();
    this.head = latest;
  }

  /** The cached tree of checkpoint `id`, from state.json and the lines of state.log that chain from it. */
  private async readState(id: string): Promise<{ tree: SnapshotTree; skipped: SkippedPath[] } | undefined> {
    let base: StateFile;
    try {
      base = JSON.parse(await fsp.readFile(join(this.storeDir, 'state.json'), 'utf8')) as StateFile;
      if (base.v !== STATE_VERSION) return undefined;
    } catch {
      return undefined;
    }
    const tree = SnapshotTree.fromJSON(base.tree);
    let skipped = base.skipped;
    let cur = base.id;
    const log = await fsp.readFile(join(this.storeDir, 'state.log'), 'utf8').catch(() => '');
    this.logLines = 0;
    this.logBytes = Buffer.byteLength(log);
    for (const text of log.split('\n')) {
      if (text === '') continue;
      let line: StateLogLine;
      try {
        line = JSON.parse(text) as StateLogLine;
      } catch {
        break; // a torn last line: what follows it (nothing) cannot be trusted either
      }
      this.logLines++;
      if (line.prev !== cur) continue;
      for (const p of line.del) tree.delete(p);
      for (const f of line.set) tree.set(f[0], deserializeFile(f));
      skipped = line.skipped;
      cur = line.id;
    }
    return cur === id ? { tree, skipped } : undefined;
  }

  /** Records what changed since `prev`: a line in state.log, or a fresh state.json when the log has grown. */
  private async saveChanges(prev: string): Promise<void> {
    if (!this.head) return;
    if (this.logLines >= LOG_MAX_LINES || this.logBytes >= LOG_MAX_BYTES || this.unsaved.size > LOG_MAX_LINE_FILES) {
      await this.saveState();
      return;
    }
    const set: SerializedFile[] = [];
    const del: string[] = [];
    for (const [path, e] of this.unsaved) {
      if (e) set.push(serializeFile(path, e));
      else del.push(path);
    }
    const line: StateLogLine = { prev, id: this.head.id, seq: this.head.seq, set, del, skipped: this.skipped };
    const text = `${JSON.stringify(line)}\n`;
    await fsp.appendFile(join(this.storeDir, 'state.log'), text, { mode: 0o600 });
    this.logLines++;
    this.logBytes += Buffer.byteLength(text);
    this.unsaved.clear();
  }

  private async saveState(): Promise<void> {
    if (!this.head) return;
    const state: StateFile = { v: STATE_VERSION, seq: this.head.seq, id: this.head.id, tree: this.tree.toJSON(), skipped: this.skipped };
    await atomicWrite(join(this.storeDir, 'state.json'), JSON.stringify(state), { tmpDir: this.tmpDir });
    await fsp.rm(join(this.storeDir, 'state.log'), { force: true });
    this.logLines = 0;
    this.logBytes = 0;
    this.unsaved.clear();
  }

  private async refs(): Promise<Head[]> {
    if (this.refCache) return this.refCache;
    const names = await git.listRefs({ fs: this.repo.fs, gitdir: this.repo.gitdir, filepath: REF_DIR });
    const out: Head[] = [];
    for (const name of names) {
      if (!/^\d{10}$/.test(name)) continue;
      const ref = `${REF_DIR}/${name}`;
      // A loose ref file is read directly (isomorphic-git's resolveRef costs a millisecond or more each).
      const loose = (await fsp.readFile(join(this.repo.gitdir, ref), 'utf8').catch(() => '')).trim();
      const id = /^[0-9a-f]{40}$/.test(loose) ? loose : await git.resolveRef({ fs: this.repo.fs, gitdir: this.repo.gitdir, ref });
      out.push({ seq: Number(name), id });
    }
    out.sort((a, b) => a.seq - b.seq);
    if (this.valid) this.refCache = out;
    return out;
  }

  private async latestRef(): Promise<Head | undefined> {
    const names = await git.listRefs({ fs: this.repo.fs, gitdir: this.repo.gitdir, filepath: REF_DIR });
    const seqs = names.filter((n) => /^\d{10}$/.test(n)).map(Number);
    if (seqs.length === 0) return undefined;
    const seq = seqs.reduce((a, b) => (b > a ? b : a));
    return { seq, id: await git.resolveRef({ fs: this.repo.fs, gitdir: this.repo.gitdir, ref: refName(seq) }) };
  }

  private async info(id: string): Promise<CheckpointInfo> {
    const cached = this.infos.get(id);
    if (cached) return cached;
    const info = decodeMessage(id, await commitMessage(this.repo, id));
    this.infos.set(id, info);
    return info;
  }

  private async resolveId(ref: string): Promise<string> {
    // Up to 6 digits is a seq number; otherwise an id or id prefix first, then a seq.
    const s = ref.trim().replace(/^#/, '').toLowerCase();
    const refs = await this.refs();
    const bySeq = /^\d{1,10}$/.test(s) ? refs.find((r) => r.seq === Number(s)) : undefined;
    if (/^\d{1,6}$/.test(s) && bySeq) return bySeq.id;
    if (/^[0-9a-f]{4,40}$/.test(s) && !/^\d{1,6}$/.test(s)) {
      const hits = refs.filter((r) => r.id.startsWith(s));
      if (hits.length === 1) return hits[0]!.id;
      if (hits.length > 1) throw new CheckpointError(`checkpoint id prefix ${s} is ambiguous (${hits.length} checkpoints); give more digits`);
    }
    if (bySeq) return bySeq.id;
    throw new CheckpointError(`no checkpoint ${ref} for workspace ${this.workspace}; \`tether checkpoints list\` shows the ones kept`);
  }

  /** Workspace-relative path ('' for the workspace) from a relative or absolute path; refuses escapes. */
  private rel(p: string): string {
    if (p.includes('\0')) throw new CheckpointError(`path ${JSON.stringify(p)} contains a NUL byte`);
    const inside = (abs: string): string | undefined => {
      const r = relative(this.workspace, abs);
      if (r === '..' || r.startsWith(`..${sep}`) || isAbsolute(r)) return undefined;
      return r.split(sep).join('/');
    };
    const abs = resolve(this.workspace, p);
    const direct = inside(abs);
    if (direct !== undefined) return direct;
    // An absolute path that reaches the workspace through a symlink (/tmp vs /private/tmp): canonicalise its directory.
    const viaLink = inside(canonicalDir(abs));
    if (viaLink !== undefined) return viaLink;
    throw new CheckpointError(`path ${p} is outside the workspace ${this.workspace}`);
  }

  private roots(paths: readonly string[] | undefined): string[] {
    if (paths === undefined || paths.length === 0) return [''];
    return minimalRoots(paths.map((p) => this.rel(p)));
  }

  private scan(roots: string[]): Promise<ScanResult> {
    return roots.includes('') ? this.scanner.scanAll() : this.scanner.scanPaths(roots);
  }

  /** Mode and blob id of each scanned file, hashing only files whose stat key changed. */
  private async currentEntries(scan: ScanResult): Promise<Map<string, Entry>> {
    const out = new Map<string, Entry>();
    await mapLimit([...scan.files], 8, async ([path, f]) => {
      const known = this.tree.get(path);
      if (known && known.mode === f.mode && sameStat(known.stat, f.stat)) {
        out.set(path, known);
        return;
      }
      try {
        const { content } = await this.scanner.read(path, f.mode);
        out.set(path, { mode: f.mode, oid: objectId('blob', content) });
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    });
    return out;
  }

  /** Files of a checkpoint's tree (the latest comes from memory). */
  private async entriesOf(id: string): Promise<Map<string, Entry>> {
    if (id === this.head?.id) return new Map([...this.tree.files()].map(([p, e]) => [p, { mode: e.mode, oid: e.oid }]));
    const cached = this.trees.get(id);
    if (cached) return cached;
    const tree = await SnapshotTree.load(await commitTree(this.repo, id), (oid) => readTree(this.repo, oid));
    const map = new Map([...tree.files()].map(([p, e]) => [p, { mode: e.mode, oid: e.oid }]));
    if (this.trees.size >= 4) this.trees.delete(this.trees.keys().next().value!);
    this.trees.set(id, map);
    return map;
  }

  private async snapshot(req: CheckpointRequest, kind: CheckpointKind, restoredFrom?: string, retain = true): Promise<CheckpointInfo | undefined> {
    const cause = checkCause(req);
    if (!KINDS.includes(kind)) throw new CheckpointError(`unknown checkpoint kind ${JSON.stringify(kind)}; use one of ${KINDS.join(', ')}`);
    if (req.paths !== undefined && req.paths.length === 0) return undefined;
    const roots = req.paths === undefined ? [''] : this.roots(req.paths);
    try {
      return await this.snapshotRoots(cause, roots, kind, restoredFrom, retain);
    } catch (e) {
      // The in-memory tree may be half-updated: reload it from disk next time.
      this.valid = false;
      throw e;
    }
  }

  private async snapshotRoots(cause: CheckpointCause, roots: string[], kind: CheckpointKind, restoredFrom: string | undefined, retain: boolean): Promise<CheckpointInfo | undefined> {
    const started = Date.now();
    const scan = await this.scan(roots);
    const changed = new Map<string, ChangedPath['status']>();
    const tree = this.tree;
    for (const root of scan.roots) {
      for (const [path] of [...tree.files(root)]) {
        if (!scan.files.has(path)) {
          for (const p of tree.delete(path)) {
            changed.set(p, 'deleted');
            this.unsaved.set(p, null);
          }
        }
      }
    }
    await mapLimit([...scan.files], 8, async ([path, f]) => {
      const prev = tree.get(path);
      if (prev && prev.mode === f.mode && sameStat(prev.stat, f.stat)) return;
      let read: { content: Buffer; stat: StatKey };
      try {
        read = await this.scanner.read(path, f.mode);
      } catch (e) {
        if (!isMissing(e)) scan.skipped.push({ path, reason: 'unreadable', detail: (e as Error).message });
        if (prev) {
          for (const p of tree.delete(path)) {
            changed.set(p, 'deleted');
            this.unsaved.set(p, null);
          }
        }
        return;
      }
      const oid = objectId('blob', read.content);
      const stat = read.content.byteLength === read.stat.size && started - read.stat.mtimeMs > RACY_MS && started - read.stat.ctimeMs > RACY_MS ? read.stat : undefined;
      if (prev && prev.oid === oid && prev.mode === f.mode) {
        if (stat === undefined ? prev.stat !== undefined : !sameStat(prev.stat, stat)) {
          prev.stat = stat;
          this.unsaved.set(path, prev);
        }
        return;
      }
      await writeObject(this.repo, 'blob', read.content);
      const entry = { mode: f.mode, oid, stat };
      for (const p of tree.set(path, entry)) {
        changed.set(p, 'deleted');
        this.unsaved.set(p, null);
      }
      changed.set(path, prev ? 'modified' : 'added');
      this.unsaved.set(path, entry);
    });
    const skipped = [...this.skipped.filter((s) => !scan.roots.some((r) => underRoot(s.path, r))), ...scan.skipped]
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    this.skipped = skipped;
    if (changed.size === 0) {
      // Nothing to commit; keep fresher stat keys so the next scan skips those files.
      if (this.unsaved.size > 0 && this.head) await this.saveChanges(this.head.id);
      return undefined;
    }
    const prevId = this.head?.id;
    const treeId = await tree.writeTrees((content) => writeObject(this.repo, 'tree', content));
    const seq = (this.head?.seq ?? 0) + 1;
    const now = new Date();
    const meta: CheckpointMetadata = {
      seq,
      time: now.toISOString(),
      kind,
      ...cause,
      changed: [...changed].map(([path, status]) => ({ path, status })).sort((a, b) => (a.path < b.path ? -1 : 1)),
      skipped,
      fullScan: roots.includes(''),
      ...(restoredFrom ? { restoredFrom } : {}),
    };
    const who = { ...AUTHOR, timestamp: Math.floor(now.getTime() / 1000) };
    const id = await git.writeCommit({
      fs: this.repo.fs,
      gitdir: this.repo.gitdir,
      commit: { tree: treeId, parent: [], author: who, committer: who, message: encodeMessage(meta) },
    });
    // The ref is the commit point: everything it reaches is already on disk.
    await git.writeRef({ fs: this.repo.fs, gitdir: this.repo.gitdir, ref: refName(seq), value: id, force: false });
    this.head = { seq, id };
    this.refCache?.push(this.head);
    await this.pointHead();
    const info: CheckpointInfo = { id, ...meta };
    this.infos.set(id, info);
    if (prevId === undefined) await this.saveState();
    else await this.saveChanges(prevId);
    if (retain) await this.applyRetention();
    this.didCheckpoint.fire(info);
    return info;
  }

  private async applyRetention(): Promise<void> {
    const refs = await this.refs();
    const latest = refs.at(-1);
    const cutoff = Date.now() - this.maxAgeDays * DAY_MS;
    const drop: Head[] = [];
    for (const [i, r] of refs.entries()) {
      if (r === latest) break;
      if (refs.length - i > this.maxCount) drop.push(r);
      else if (Date.parse((await this.info(r.id)).time) < cutoff) drop.push(r);
      else break;
    }
    for (const r of drop) {
      await git.deleteRef({ fs: this.repo.fs, gitdir: this.repo.gitdir, ref: refName(r.seq) });
      this.refCache = this.refCache?.filter((c) => c !== r);
      this.infos.delete(r.id);
      this.trees.delete(r.id);
    }
    this.dropped += drop.length;
    if (this.dropped >= this.pruneEvery) await this.pruneObjects();
  }

  private async pruneObjects(): Promise<PruneResult> {
    const objectsDir = join(this.repo.gitdir, 'objects');
    const reachable = new Set<string>();
    let sinceYield = 0;
    const walkTree = async (oid: string): Promise<void> => {
      if (reachable.has(oid)) return;
      reachable.add(oid);
      if (++sinceYield % 200 === 0) await new Promise<void>((r) => setImmediate(r));
      for (const e of await readTree(this.repo, oid)) {
        if (e.mode === TREE_MODE) await walkTree(e.oid);
        else reachable.add(e.oid);
      }
    };
    for (const r of await this.refs()) {
      reachable.add(r.id);
      let tree: string;
      try {
        tree = await commitTree(this.repo, r.id);
      } catch (e) {
        throw new CheckpointError(`checkpoint ${r.seq} (${r.id}) is not readable (${(e as Error).message}); pruning stopped so nothing reachable is lost`, { cause: e });
      }
      await walkTree(tree);
    }
    let removedObjects = 0;
    let freedBytes = 0;
    for (const dir of await fsp.readdir(objectsDir)) {
      if (!/^[0-9a-f]{2}$/.test(dir)) continue;
      for (const name of await fsp.readdir(join(objectsDir, dir))) {
        const stale = name.startsWith(TMP_PREFIX);
        if (!stale && reachable.has(dir + name)) continue;
        if (!stale && !/^[0-9a-f]{38}$/.test(name)) continue;
        const file = join(objectsDir, dir, name);
        const st = await fsp.lstat(file);
        await fsp.unlink(file);
        removedObjects++;
        freedBytes += st.size;
      }
    }
    this.dropped = 0;
    return { removedObjects, freedBytes };
  }

  private async plan(id: string, paths: readonly string[] | undefined): Promise<{ plan: RestorePlan; targets: Map<string, Entry> }> {
    const checkpoint = await this.info(await this.resolveId(id));
    const roots = this.roots(paths);
    const target = await this.entriesOf(checkpoint.id);
    const scan = await this.scan(roots);
    const current = await this.currentEntries(scan);
    const skippedThen = new Set(checkpoint.skipped.map((s) => s.path));
    const files: RestoreFile[] = [];
    const sides: [string, DiffSide | undefined, DiffSide | undefined][] = [];
    const fingerprint = createHash('sha256').update(checkpoint.id);
    const touched = new Set<string>();
    for (const path of unionPaths(target, current, roots)) {
      const t = target.get(path);
      const c = current.get(path);
      if (t && c && t.mode === c.mode && t.oid === c.oid) continue;
      if (!t && skippedThen.has(path)) continue;
      const now: Current = c ? { kind: 'entry', ...c } : await this.untracked(path);
      if (!t && now.kind === 'absent') continue;
      const latest = this.tree.get(path);
      const conflict = conflictOf(latest, now, this.head?.seq);
      const action: RestoreFile['action'] = !t ? 'delete' : now.kind === 'absent' ? 'create' : 'overwrite';
      files.push({ path, action, ...(conflict ? { conflict } : {}) });
      touched.add(path);
      fingerprint.update(`\0${path}\0${action}\0${t?.mode ?? '-'}${t?.oid ?? '-'}\0${now.kind === 'entry' ? now.mode + now.oid : now.kind}`);
      const before = c ? { ...c, content: (await this.scanner.read(path, c.mode)).content } : undefined;
      const after = t ? { ...t, content: await readBlob(this.repo, t.oid) } : undefined;
      sides.push([path, before, after]);
    }
    if (paths && paths.length > 0) {
      for (const r of roots) {
        const known = [...target.keys(), ...current.keys()].some((p) => underRoot(p, r)) || skippedThen.has(r);
        if (!known) throw new CheckpointError(`${r} is neither in checkpoint ${checkpoint.seq} nor tracked in the workspace`);
      }
    }
    await this.checkWritable(files, target);
    const diff = sides.map(([p, a, b]) => fileDiff(p, a, b)).join('');
    const conflicts = files.filter((f) => f.conflict !== undefined);
    const count = (a: RestoreFile['action']) => files.filter((f) => f.action === a).length;
    const summary = files.length === 0
      ? `nothing to restore: the workspace already matches checkpoint ${checkpoint.seq}`
      : `restore ${files.length} file${files.length === 1 ? '' : 's'} from checkpoint ${checkpoint.seq} (${checkpoint.time}): ${count('create')} created, ${count('overwrite')} overwritten, ${count('delete')} deleted${conflicts.length ? `; ${conflicts.length} changed outside Tether` : ''}`;
    return { plan: { checkpoint, files, conflicts, diff, summary, fingerprint: fingerprint.digest('hex') }, targets: target };
  }

  /** What is on disk at a path the scan did not report (ignored, too large, special, or nothing). */
  private async untracked(path: string): Promise<Current> {
    if (!(await this.scanner.reachable(path))) return { kind: 'absent' };
    try {
      const st = await fsp.lstat(this.scanner.abs(path));
      if (st.isDirectory()) return { kind: 'untracked', what: 'a directory' };
      return { kind: 'untracked', what: st.isFile() || st.isSymbolicLink() ? 'a file checkpoints do not capture (ignored or too large)' : 'a special file' };
    } catch (e) {
      if (isMissing(e)) return { kind: 'absent' };
      throw e;
    }
  }

  /** Refuses a plan whose writes would have to go through something it does not remove. */
  private async checkWritable(files: readonly RestoreFile[], target: Map<string, Entry>): Promise<void> {
    const deleted = new Set(files.filter((f) => f.action === 'delete').map((f) => f.path));
    for (const f of files) {
      if (f.action === 'delete' || !target.has(f.path)) continue;
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (deleted.has(dir)) break;
        let st;
        try {
          st = await fsp.lstat(this.scanner.abs(dir));
        } catch (e) {
          if (isMissing(e)) break;
          throw e;
        }
        if (!st.isDirectory()) {
          throw new CheckpointError(`cannot restore ${f.path}: ${dir} is ${st.isSymbolicLink() ? 'a symlink' : 'a file'} in the workspace and this restore does not remove it; restore ${dir} too`);
        }
      }
    }
  }

  private async apply(files: readonly RestoreFile[], target: Map<string, Entry>): Promise<void> {
    // Trees are checked when read; this is the last line before writing into the workspace.
    for (const f of files) {
      if (f.path.split('/').some((seg) => seg === '' || seg === '.' || seg === '..' || seg.toLowerCase() === '.git')) {
        throw new CheckpointError(`refusing to restore ${JSON.stringify(f.path)}: not a plain path inside the workspace`);
      }
    }
    const deletes = files.filter((f) => f.action === 'delete').sort((a, b) => depth(b.path) - depth(a.path));
    for (const f of deletes) {
      const abs = this.scanner.abs(f.path);
      const st = await fsp.lstat(abs).catch(() => undefined);
      if (st && !st.isDirectory()) await fsp.unlink(abs);
      await this.removeEmptyParents(f.path);
    }
    for (const f of files) {
      const t = target.get(f.path);
      if (f.action === 'delete' || !t) continue;
      await this.makeParents(f.path);
      const abs = this.scanner.abs(f.path);
      const st = await fsp.lstat(abs).catch(() => undefined);
      if (st?.isDirectory()) {
        try {
          await fsp.rmdir(abs);
        } catch (e) {
          throw new CheckpointError(`cannot restore ${f.path}: a directory with files checkpoints do not capture is in the way (${(e as Error).message})`);
        }
      }
      const content = await readBlob(this.repo, t.oid);
      // Written beside the target and renamed over it: a reader never sees half a file, and a link in the way is replaced, not followed.
      const tmp = join(abs, '..', `${TMP_PREFIX}restore-${randomBytes(6).toString('hex')}`);
      try {
        if (t.mode === '120000') {
          await fsp.symlink(Buffer.from(content), tmp);
        } else {
          const keep = st && st.isFile() ? st.mode & 0o777 : 0o644;
          const mode = t.mode === '100755' ? keep | ((keep & 0o444) >> 2) : keep & ~0o111;
          await fsp.writeFile(tmp, content, { flag: 'wx', mode });
          await fsp.chmod(tmp, mode);
        }
        await fsp.rename(tmp, abs);
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        throw new CheckpointError(`restoring ${f.path} failed: ${(e as Error).message}; the workspace is partly restored — restore the undo checkpoint to go back`);
      }
    }
  }

  private async makeParents(path: string): Promise<void> {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const abs = this.scanner.abs(parts.slice(0, i).join('/'));
      try {
        await fsp.mkdir(abs);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (!(await fsp.lstat(abs)).isDirectory()) throw new CheckpointError(`cannot restore ${path}: ${parts.slice(0, i).join('/')} is not a directory`);
      }
    }
  }

  private async removeEmptyParents(path: string): Promise<void> {
    const parts = path.split('/');
    for (let i = parts.length - 1; i > 0; i--) {
      try {
        await fsp.rmdir(this.scanner.abs(parts.slice(0, i).join('/')));
      } catch {
        return;
      }
    }
  }
}

/** `abs` with its deepest existing directory resolved through symlinks (the last component is left as is). */
function canonicalDir(abs: string): string {
  let dir = dirname(abs);
  let rest = basename(abs);
  for (;;) {
    try {
      return join(realpathSync(dir), rest);
    } catch {
      if (dirname(dir) === dir) return abs;
      rest = join(basename(dir), rest);
      dir = dirname(dir);
    }
  }
}

function checkCause(c: CheckpointCause): CheckpointCause {
  if (typeof c.sessionId !== 'string' || !Number.isInteger(c.turn) || !Array.isArray(c.requestIds) || !Array.isArray(c.auditSeqs)) {
    throw new CheckpointError('a checkpoint needs sessionId (string), turn (integer), requestIds and auditSeqs (arrays)');
  }
  return { sessionId: c.sessionId, turn: c.turn, requestIds: [...c.requestIds], auditSeqs: [...c.auditSeqs] };
}

function conflictOf(latest: Entry | undefined, now: Current, latestSeq: number | undefined): string | undefined {
  const since = latestSeq === undefined ? 'no checkpoint holds it' : `since checkpoint ${latestSeq}`;
  if (now.kind === 'untracked') return `${now.what} is there; restoring would replace it and could not be undone`;
  if (now.kind === 'absent') return latest ? `deleted outside Tether ${since}` : undefined;
  if (!latest) return `created outside Tether (${since})`;
  if (latest.mode !== now.mode || latest.oid !== now.oid) return `changed outside Tether ${since}`;
  return undefined;
}

function unionPaths(a: Map<string, Entry>, b: Map<string, Entry>, roots: readonly string[]): string[] {
  const all = new Set<string>();
  for (const m of [a, b]) for (const p of m.keys()) if (roots.some((r) => underRoot(p, r))) all.add(p);
  return [...all].sort();
}

const MODE_NAMES: Record<FileMode, FileModeName> = { '100644': 'file', '100755': 'executable', '120000': 'symlink' };

function fileChange(path: string, a: DiffSide | undefined, b: DiffSide | undefined): FileChange {
  return {
    path,
    status: !a ? 'added' : !b ? 'deleted' : 'modified',
    ...(a ? { oldMode: MODE_NAMES[a.mode] } : {}),
    ...(b ? { newMode: MODE_NAMES[b.mode] } : {}),
    binary: (a ? isBinary(a.content) : false) || (b ? isBinary(b.content) : false),
  };
}

function depth(p: string): number {
  return p.split('/').length;
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
