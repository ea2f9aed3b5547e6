// The host side of ACP `terminal/*`: a command line from the agent becomes
//
//   parse (shell-parse.ts) → one policy decision per part (each command, each
//   file it writes) → one consent question if anything asks → one durable
//   decision record → run in the sandbox, in a pty → output kept for
//   terminal/output; each network connection it makes, its own record as it
//   ends → on exit: the files it changed, exit code or signal, duration and
//   bytes, in the outcome record.
//
// Rules this keeps:
//  - Any part denied → the whole line is denied. An uncertain parse, agent
//    variables that load code, or an unsandboxed run always ask, and never
//    offer "allow for this session".
//  - The sandbox being unavailable denies with its reason and fix, unless
//    `allowUnsandboxed` (a policy setting) is on; then every such command is
//    its own question that says it runs without the sandbox. Never a retry
//    the model can choose, never a silent fallback.
//  - `releaseAll(sessionId)` (session end, agent exit) kills and releases
//    every terminal of the session; `dispose()` every terminal.
//
// The lead wires `create/output/waitForExit/kill/release` to the ACP client
// handlers of the same names; each takes the raw params and validates them.

import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { isAbsolute, relative, resolve } from 'node:path';
import { RequestError } from '@agentclientprotocol/sdk';
import type { AuditChangedFile } from '../../common/audit-record.ts';
import type { CapabilityRequest, ResolvedPath } from '../../common/capability.ts';
import type { ConsentPreview } from '../../common/consent.ts';
import { Emitter } from '../../common/emitter.ts';
import { METHODS, TerminalCreateParams, TerminalIdParams } from '../../common/protocol.ts';
import { parseShell, quoteShellWord, type ShellParse } from '../../common/shell-parse.ts';
import { newTrace, traceFromMeta, type TraceContext } from '../../common/trace.ts';
import type { Broker, CompoundPart, PartDecision } from '../broker.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import { auditProfile, DEFAULT_LIMITS, summarizeProfile, type Sandbox, type SandboxExit, type SandboxLimits, type SandboxProcess, type SandboxProfile } from '../sandbox/sandbox.ts';
import { buildCommandEnv } from '../sandbox/sandbox-env.ts';
import { UnsandboxedRunner } from '../sandbox/unsandboxed-runner.ts';
import { OutputBuffer } from './output-buffer.ts';
import { OutputStream } from './output-stream.ts';
import { canonicalDir, jailResolver, type PathResolver } from './resolve-path.ts';
import type { ForbiddenFiles } from '../policy/forbidden-files.ts';
import { WorkspaceSecrets, type WorkspaceSecretsOptions } from './workspace-secrets.ts';
import { DEFAULT_ACCOUNTING, diffSnapshots, HashCache, snapshotWorkspace, type AccountingLimits, type WorkspaceSnapshot } from './workspace-changes.ts';

export interface TerminalServiceOptions {
  readonly broker: Broker;
  readonly sandbox: Sandbox;
  /** The session's workspace root (the ACP session cwd), or a lookup by session id. */
  readonly workspace: string | ((sessionId: string) => string | undefined);
  /** Resolution of paths a line writes; default: a WorkspaceJail opened on the workspace. */
  readonly resolvePath?: (workspaceRoot: string) => PathResolver;
  /** Decides which `networkDomains` a command may reach (a `net` request per domain; only "allow" opens). */
  readonly policy?: PolicyEngine;
  /** Domains commands may reach when policy allows them outright (exact names, optional :port). */
  readonly networkDomains?: readonly string[];
  /** Policy setting: run commands without the sandbox where it is unavailable, each asked about. Default false. */
  readonly allowUnsandboxed?: boolean;
  readonly limits?: Partial<SandboxLimits>;
  /** The host environment to take allowlisted variables from (default process.env), and extra names to pass. */
  readonly hostEnv?: Readonly<Record<string, string | undefined>>;
  readonly envAllow?: readonly string[];
  /** Output kept per terminal when the agent sets no outputByteLimit (and the cap on one it sets). */
  readonly outputByteLimit?: number;
  readonly maxTerminalsPerSession?: number;
  /** Change accounting limits; `false` turns accounting off (benchmarks only). */
  readonly accounting?: Partial<AccountingLimits> | false;
  /** Live output (onDidOutput): at most one event per `intervalMs` per terminal, each at most `maxChunk` characters. */
  readonly liveOutput?: { readonly intervalMs?: number; readonly maxChunk?: number };
  /**
   * Hide from sandboxed commands the workspace files `policy` forbids the
   * agent to read (workspace-secrets.ts). Default true when `policy` is given.
   */
  readonly hideForbiddenFiles?: boolean | Omit<WorkspaceSecretsOptions, 'policy'>;
  /** The session's policy answers per workspace entry, shared with the ACP host (policy/forbidden-files.ts). */
  readonly forbiddenFiles?: ForbiddenFiles;
}

export interface TerminalContext {
  readonly signal?: AbortSignal;
  readonly trace?: TraceContext;
}

/** What a finished command changed (checkpoints snapshot these). */
export interface CommandChanges {
  readonly sessionId: string;
  readonly terminalId: string;
  readonly requestId: string;
  readonly line: string;
  readonly cwd: string;
  readonly changedFiles: readonly AuditChangedFile[];
  readonly note?: string;
}

/** Live output of one command, for a UI. */
export interface TerminalOutputEvent {
  readonly sessionId: string;
  readonly terminalId: string;
  /** The exec request that started it (joins the activity timeline). */
  readonly requestId: string;
  /** The command line; on the first event of a terminal only. */
  readonly command?: string;
  /** Terminal text (with escape sequences); '' on the first and last events when there is none. */
  readonly data: string;
  /** On the last event of a terminal only. */
  readonly exit?: { readonly exitCode: number | null; readonly signal: string | null };
}

export interface TerminalOutput {
  output: string;
  truncated: boolean;
  exitStatus?: { exitCode: number | null; signal: string | null } | null;
}

export interface TerminalExitStatus {
  exitCode: number | null;
  signal: string | null;
}

interface Terminal {
  readonly id: string;
  readonly sessionId: string;
  readonly requestId: string;
  readonly line: string;
  readonly cwd: string;
  readonly process: SandboxProcess;
  readonly output: OutputBuffer;
  exit: SandboxExit | undefined;
  changedFiles: readonly AuditChangedFile[];
  /** Resolves after the outcome (with the changed files) is durable in the audit log. */
  completed: Promise<void>;
}

const DEFAULT_OUTPUT_LIMIT = 1024 * 1024;
const MAX_OUTPUT_LIMIT = 16 * 1024 * 1024;

export class TerminalService {
  private readonly terminals = new Map<string, Terminal>();
  /** Outcomes not yet recorded, released terminals included: dispose waits for them. */
  private readonly pending = new Set<Promise<void>>();
  private readonly caches = new Map<string, HashCache>();
  private readonly resolvers = new Map<string, PathResolver & { close?: () => Promise<void> }>();
  private readonly didChangeFiles = new Emitter<CommandChanges>();
  /** Fired after each command that changed files in the workspace, once its outcome is recorded. */
  readonly onDidChangeFiles = this.didChangeFiles.event;
  private readonly didOutput = new Emitter<TerminalOutputEvent>();
  /** What commands print, while they run (batched, bounded). */
  readonly onDidOutput = this.didOutput.event;
  private readonly opts: TerminalServiceOptions;
  private readonly unsandboxed: UnsandboxedRunner;
  private readonly accounting: AccountingLimits | undefined;
  private readonly secrets: WorkspaceSecrets | undefined;
  /** Background scans started by prepareSession, per session, until they end. */
  private readonly preparing = new Map<string, Promise<void>>();

  constructor(opts: TerminalServiceOptions) {
    this.opts = opts;
    this.unsandboxed = new UnsandboxedRunner();
    this.accounting = opts.accounting === false ? undefined : { ...DEFAULT_ACCOUNTING, ...opts.accounting };
    const hide = opts.hideForbiddenFiles ?? true;
    this.secrets = opts.policy && hide !== false
      ? new WorkspaceSecrets({ policy: opts.policy, ...(opts.forbiddenFiles ? { files: opts.forbiddenFiles } : {}), ...(hide === true ? {} : hide) })
      : undefined;
  }

  /**
   * Starts, in the background, the check of the session's workspace for files
   * policy keeps from the agent, so its first command does not wait for it.
   */
  prepareSession(sessionId: string): void {
    if (!this.secrets || this.opts.sandbox.unavailable) return;
    const scan = this.workspaceOf(sessionId).then((workspace) => this.secrets!.scan(workspace, {
      id: `prepare-${sessionId}`, sessionId, action: 'exec', kind: 'exec', method: 'terminal/create', workspace, trace: newTrace(),
    })).then(() => undefined, () => undefined); // a failure here is met again, and reported, by the first command
    this.preparing.set(sessionId, scan);
    void scan.finally(() => this.preparing.delete(sessionId));
  }

  // ---- ACP methods ----

  async create(raw: unknown, ctx: TerminalContext = {}): Promise<{ terminalId: string }> {
    const parsed = TerminalCreateParams.safeParse(raw);
    if (!parsed.success) throw RequestError.invalidParams({ issues: parsed.error.issues }, `terminal/create: ${parsed.error.issues[0]?.message ?? 'invalid params'}`);
    const params = parsed.data;
    const sessionId = params.sessionId;
    const workspace = await this.workspaceOf(sessionId);
    const broker = this.opts.broker;
    const line = params.args && params.args.length > 0 ? [params.command, ...params.args].map(quoteShellWord).join(' ') : params.command;
    const requestedCwd = params.cwd ?? workspace;
    const base: CapabilityRequest = {
      id: randomUUID(),
      sessionId,
      action: 'exec',
      kind: 'exec',
      method: METHODS.terminalCreate,
      workspace,
      command: { line, cwd: requestedCwd },
      trace: ctx.trace ?? traceFromMeta(params._meta),
    };

    const open = [...this.terminals.values()].filter((t) => t.sessionId === sessionId).length;
    const maxOpen = this.opts.maxTerminalsPerSession ?? 16;
    if (open >= maxOpen) return broker.refuse(base, `this session already has ${open} terminals; release finished ones (terminal/release) before starting more`);
    if (!isAbsolute(requestedCwd)) return broker.refuse(base, `the working directory "${requestedCwd}" is not an absolute path`);
    const cwd = await canonicalDir(requestedCwd);
    if (!cwd) return broker.refuse(base, `the working directory "${requestedCwd}" does not exist or is not a directory`);
    const unavailable = this.opts.sandbox.unavailable;
    const sandboxed = unavailable === undefined;
    // Policy sees `resource.sandboxed == false` for every command of an unsandboxed run.
    const request: CapabilityRequest = { ...base, command: { line, cwd, ...(sandboxed ? {} : { sandboxed: false }) } };
    if (unavailable && !this.opts.allowUnsandboxed) {
      return broker.refuse(request, `commands run only in the sandbox, and it is unavailable: ${unavailable.reason}. ${unavailable.fix}`);
    }

    const env = buildCommandEnv({
      host: this.opts.hostEnv ?? process.env,
      ...(this.opts.envAllow ? { allow: this.opts.envAllow } : {}),
      requested: params.env ?? [],
      tmpDir: sandboxed ? '/tmp' : tmpdir(),
    });
    const shell = parseShell(line, { env: env.env });
    const parts = await this.partsOf(request, shell, cwd, workspace, sandboxed);
    if (parts.length === 0 && shell.uncertain.length === 0) return broker.refuse(request, 'the command line runs no program');

    const mustAsk: string[] = shell.uncertain.map((u) => `the command line cannot be fully analysed: ${u}`);
    if (shell.parts.some((p) => p.cwd === null)) mustAsk.push('a cd goes to a directory that is only known when the line runs');
    if (env.codeLoading.length > 0) mustAsk.push(`it sets ${env.codeLoading.join(', ')}, which make${env.codeLoading.length === 1 ? 's' : ''} programs run code the command line does not show`);
    if (!sandboxed) mustAsk.push(`it runs WITHOUT the sandbox (${unavailable!.reason}): it can read and change any of your files and reach the network`);

    const baseProfile = sandboxed ? this.opts.sandbox.profile(workspace, { allowedDomains: this.allowedDomains(request), ...(this.opts.limits ? { limits: this.opts.limits } : {}) }) : undefined;
    // Workspace files policy keeps from the agent are hidden from its commands too.
    // After the session's background scan, if one is running: its answers make this one quick.
    await this.preparing.get(sessionId);
    const secrets = baseProfile && this.secrets ? await this.secrets.scan(workspace, request) : undefined;
    if (secrets?.incomplete) mustAsk.push(secrets.incomplete);
    const profile = baseProfile && secrets && secrets.hidden.length > 0 ? { ...baseProfile, hidden: [...baseProfile.hidden, ...secrets.hidden], pinned: secrets.pinned } : baseProfile;
    const limits: SandboxLimits = profile?.limits ?? { ...DEFAULT_LIMITS, ...this.opts.limits };
    const single = shell.parts.filter((p) => p.program !== '');
    const topRequest: CapabilityRequest = single.length === 1 && shell.writes.length === 0
      ? { ...request, command: { ...request.command!, program: single[0]!.program, args: single[0]!.args } }
      : request;

    const notes: string[] = [
      ...shell.notes,
      ...env.refused.map((r) => `the variable ${r.name} is not passed: ${r.why}`),
    ];
    if (profile) notes.push('/tmp and /var/tmp are private to the command and emptied when it ends');
    if (secrets && secrets.hidden.length > 0) {
      const names = secrets.hidden.slice(0, 5).map((p) => relative(workspace, p));
      notes.push(`hidden from the command because policy keeps them from the agent: ${names.join(', ')}${secrets.hidden.length > 5 ? ` and ${secrets.hidden.length - 5} more` : ''}`);
      if (secrets.pinned.length > 0) {
        notes.push(`the folders holding them (${secrets.pinned.slice(0, 3).map((p) => relative(workspace, p)).join(', ')}${secrets.pinned.length > 3 ? ', …' : ''}) cannot be renamed or removed by the command, and renaming files into or out of them fails (a different mount)`);
      }
    }
    const outputLimit = Math.min(params.outputByteLimit ?? this.opts.outputByteLimit ?? DEFAULT_OUTPUT_LIMIT, this.opts.outputByteLimit ?? MAX_OUTPUT_LIMIT);

    const execution = await broker.executeCompound(topRequest, {
      parts,
      mustAsk,
      noSessionGrant: mustAsk.length > 0,
      auditSandbox: auditProfile(profile ?? 'unsandboxed', this.opts.sandbox.kind),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      preview: async (decided) => this.preview(line, cwd, profile, mustAsk, decided, notes),
      effect: async () => {
        const before = this.accounting ? await snapshotWorkspace(workspace, this.accounting.maxEntries) : undefined;
        const runOptions = { line, cwd, env: env.env, cols: 120, rows: 30 };
        const proc = profile
          ? await this.opts.sandbox.run({ ...runOptions, profile, readOnly: before ? gitReadOnly(before) : [], onConnection: (c) => broker.recordConnection(request, c), onTunnelOpened: (t) => broker.recordTunnelOpened(request, t) })
          : await this.unsandboxed.run({ ...runOptions, limits });
        const term: Terminal = {
          id: randomUUID(),
          sessionId,
          requestId: request.id,
          line,
          cwd,
          process: proc,
          output: new OutputBuffer(outputLimit),
          exit: undefined,
          changedFiles: [],
          completed: Promise.resolve(),
        };
        const ids = { sessionId, terminalId: term.id, requestId: request.id };
        const live = new OutputStream((c) => this.didOutput.fire({ ...ids, data: c.data }), this.opts.liveOutput);
        this.didOutput.fire({ ...ids, command: line, data: '' });
        proc.onData((text) => {
          term.output.append(text);
          live.push(text);
        });
        this.terminals.set(term.id, term);
        const outcome = proc.exited.then(async (exit) => {
          term.exit = exit;
          const note = exit.reason === 'timeout' ? `\r\n[tether: the command was killed after its ${Math.round(limits.timeoutMs / 1000)} s time limit]\r\n`
            : exit.reason === 'output-limit' ? `\r\n[tether: the command was killed after producing more than ${limits.maxOutputBytes} bytes of output]\r\n`
            : '';
          if (note) {
            term.output.append(note);
            live.push(note);
          }
          live.close();
          this.didOutput.fire({ ...ids, data: '', exit: { exitCode: exit.exitCode, signal: exit.signal } });
          const report = before && this.accounting ? await diffSnapshots(before, await snapshotWorkspace(workspace, this.accounting.maxEntries), this.cacheFor(workspace), this.accounting) : undefined;
          term.changedFiles = report?.changedFiles ?? [];
          const failed = exit.reason === 'timeout' || exit.reason === 'output-limit' || exit.reason === 'spawn-failed';
          return {
            ok: !failed,
            ...(failed ? { error: exit.reason === 'timeout' ? `killed after the ${limits.timeoutMs} ms time limit` : exit.reason === 'output-limit' ? `killed after more than ${limits.maxOutputBytes} bytes of output` : 'the command could not be started' } : {}),
            exitCode: exit.exitCode,
            signal: exit.signal,
            durationMs: exit.durationMs,
            bytes: exit.outputBytes,
            ...(report ? { changedFiles: report.changedFiles } : {}),
            ...(report?.note ? { changedFilesNote: report.note } : {}),
          };
        });
        return { result: term, outcome };
      },
    });
    const term = execution.result;
    term.completed = execution.completed.then(() => {
      if (term.changedFiles.length > 0) {
        this.didChangeFiles.fire({ sessionId, terminalId: term.id, requestId: request.id, line, cwd, changedFiles: term.changedFiles });
      }
    });
    this.pending.add(term.completed);
    void term.completed.finally(() => this.pending.delete(term.completed));
    return { terminalId: term.id };
  }

  output(raw: unknown): TerminalOutput {
    const term = this.terminalOf(raw);
    return {
      output: term.output.text(),
      truncated: term.output.truncated,
      exitStatus: term.exit ? { exitCode: term.exit.exitCode, signal: term.exit.signal } : null,
    };
  }

  async waitForExit(raw: unknown): Promise<TerminalExitStatus> {
    const term = this.terminalOf(raw);
    await term.process.exited;
    await term.completed;
    return { exitCode: term.exit?.exitCode ?? null, signal: term.exit?.signal ?? null };
  }

  kill(raw: unknown): Record<string, never> {
    this.terminalOf(raw).process.kill('killed');
    return {};
  }

  release(raw: unknown): Record<string, never> {
    const term = this.terminalOf(raw);
    term.process.kill('killed');
    this.terminals.delete(term.id);
    return {};
  }

  /** Kills and releases every terminal of a session (all sessions when omitted); resolves once their outcomes are recorded. */
  /**
   * Kills every running command of a session (the stop button) and waits for
   * their outcomes to be recorded. The terminals stay, so the agent can still
   * read their output and exit status.
   */
  async killAll(sessionId: string): Promise<void> {
    const mine = [...this.terminals.values()].filter((t) => t.sessionId === sessionId);
    for (const t of mine) if (t.exit === undefined) t.process.kill('killed');
    await Promise.allSettled(mine.map((t) => t.completed));
  }

  async releaseAll(sessionId?: string): Promise<void> {
    const mine = [...this.terminals.values()].filter((t) => sessionId === undefined || t.sessionId === sessionId);
    for (const t of mine) {
      t.process.kill('killed');
      this.terminals.delete(t.id);
    }
    await Promise.allSettled(mine.map((t) => t.completed));
    if (sessionId === undefined) await Promise.allSettled([...this.pending]);
  }

  /** Files a command changed, once it has exited (empty before). */
  changedFiles(terminalId: string): readonly AuditChangedFile[] {
    return this.terminals.get(terminalId)?.changedFiles ?? [];
  }

  async dispose(): Promise<void> {
    await this.releaseAll();
    await this.unsandboxed.dispose();
    for (const r of this.resolvers.values()) await r.close?.();
    this.resolvers.clear();
  }

  // ---- internals ----

  private async workspaceOf(sessionId: string): Promise<string> {
    const w = typeof this.opts.workspace === 'string' ? this.opts.workspace : this.opts.workspace(sessionId);
    if (w === undefined) throw RequestError.invalidParams({ sessionId }, `terminal/create: unknown session "${sessionId}"`);
    const real = await canonicalDir(w);
    if (!real) throw RequestError.internalError(undefined, `the workspace "${w}" does not exist`);
    if (!this.caches.has(real) && this.accounting) {
      const cache = new HashCache();
      this.caches.set(real, cache);
      // Background: hashes of small files, for the "before" hash of later changes.
      void snapshotWorkspace(real, this.accounting.maxEntries).then((s) => cache.prime(s)).catch(() => {});
    }
    return real;
  }

  private cacheFor(workspace: string): HashCache {
    let c = this.caches.get(workspace);
    if (!c) {
      c = new HashCache();
      this.caches.set(workspace, c);
    }
    return c;
  }

  private terminalOf(raw: unknown): Terminal {
    const parsed = TerminalIdParams.safeParse(raw);
    if (!parsed.success) throw RequestError.invalidParams({ issues: parsed.error.issues }, `terminal: ${parsed.error.issues[0]?.message ?? 'invalid params'}`);
    const term = this.terminals.get(parsed.data.terminalId);
    if (!term || term.sessionId !== parsed.data.sessionId) {
      throw RequestError.invalidParams({ terminalId: parsed.data.terminalId }, `no terminal "${parsed.data.terminalId}" in this session (it was released, or never existed)`);
    }
    return term;
  }

  /**
   * One exec part per command of the line, one write/delete part per file it
   * writes, one read part per file it reads by name — inside the workspace
   * only when sandboxed (outside, the sandbox decides what is readable: the
   * default policy's outside-workspace forbid would deny `cat /etc/os-release`),
   * everywhere when not.
   */
  private async partsOf(request: CapabilityRequest, shell: ShellParse, cwd: string, workspace: string, sandboxed: boolean): Promise<CompoundPart[]> {
    const parts: CompoundPart[] = [];
    const dirOf = async (rel: string | null): Promise<string> => {
      if (rel === null || rel === '') return cwd;
      const lexical = resolve(cwd, rel);
      return (await canonicalDir(lexical)) ?? lexical;
    };
    for (const p of shell.parts) {
      if (p.program === '') continue;
      parts.push({
        label: `\`${shorten(p.source)}\``,
        request: { ...request, id: `${request.id}/${p.index}`, command: { ...request.command!, line: p.source, cwd: await dirOf(p.cwd), program: p.program, args: p.args } },
      });
    }
    let resolver = this.resolvers.get(workspace);
    if (!resolver) {
      resolver = this.opts.resolvePath ? this.opts.resolvePath(workspace) : jailResolver(workspace);
      this.resolvers.set(workspace, resolver);
    }
    for (const [i, w] of shell.writes.entries()) {
      if (w.cwd === null && !isAbsolute(w.path)) continue; // already an uncertain reason
      const abs = isAbsolute(w.path) ? resolve(w.path) : resolve(await dirOf(w.cwd), w.path);
      let target: ResolvedPath;
      try {
        target = await resolver!(abs, w.access === 'delete' ? 'entry' : 'write');
      } catch (e) {
        return this.opts.broker.refuse(request, `${w.via} ${w.access === 'delete' ? 'deletes' : 'writes to'} "${w.path}", which cannot be resolved: ${(e as Error).message}`);
      }
      if (target.exists && target.type === 'other') {
        return this.opts.broker.refuse(request, `${w.via} writes to "${target.path}", which is a device, socket or FIFO, not a file`);
      }
      const action = w.access === 'delete' ? 'delete' : 'write';
      parts.push({
        label: `${action} ${target.path} (${w.via})`,
        request: { ...request, id: `${request.id}/w${i}`, action, kind: 'write', target, command: undefined },
      });
    }
    for (const [i, r] of shell.reads.entries()) {
      const abs = isAbsolute(r.path) ? resolve(r.path) : resolve(await dirOf(r.cwd), r.path);
      let target: ResolvedPath;
      try {
        target = await resolver!(abs, 'read');
      } catch {
        continue; // devices, /proc and the like: the sandbox decides
      }
      if (sandboxed && !target.inWorkspace) continue;
      parts.push({
        label: `read ${target.path} (${r.via})`,
        request: { ...request, id: `${request.id}/r${i}`, action: 'read', kind: 'read', target, command: undefined },
      });
    }
    return parts;
  }

  /** Configured domains that policy allows outright for this session. */
  private allowedDomains(request: CapabilityRequest): string[] {
    const policy = this.opts.policy;
    if (!policy) return [];
    const out: string[] = [];
    for (const domain of this.opts.networkDomains ?? []) {
      if (!/^[a-z0-9.-]+(:\d{1,5})?$/i.test(domain)) continue; // wildcards cannot be asked about
      const d = policy.decide({ ...request, id: `${request.id}/net:${domain}`, action: 'net', kind: 'net', url: `https://${domain}/`, command: undefined });
      if (d.effect === 'allow') out.push(domain);
    }
    return out;
  }

  private preview(line: string, cwd: string, profile: SandboxProfile | undefined, mustAsk: readonly string[], decided: readonly PartDecision[], notes: readonly string[]): ConsentPreview {
    const why = decided.filter((d) => d.decision.effect === 'ask' && (!d.grantId || mustAsk.length > 0)).map((d) => `${d.part.label}: ${d.decision.reason}`);
    return {
      type: 'exec',
      command: line,
      cwd,
      sandbox: profile ? summarizeProfile(profile) : 'unsandboxed',
      notes: [...mustAsk, ...why, ...notes],
    };
  }
}

/** `.git/hooks` and `.git/config` of every repository seen in the workspace stay read-only. */
function gitReadOnly(s: WorkspaceSnapshot): string[] {
  const out: string[] = [];
  for (const rel of s.gitDirs) {
    const meta = s.entries.get(rel);
    const abs = resolve(s.root, rel);
    if (meta?.type === 'dir') out.push(`${abs}/hooks`, `${abs}/config`);
    else if (meta?.type === 'file') out.push(abs);
  }
  return out;
}

function shorten(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > 120 ? `${one.slice(0, 117)}...` : one;
}
