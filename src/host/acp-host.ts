// The host's ACP client: serves the agent's requests. Every handler follows
// the spine (DESIGN.md): validate (zod, limits) → resolve (workspace jail) →
// broker (policy, consent, durable audit, effect, outcome) → result.
// `session/request_permission` is refused: the host decides, not the agent.

import { randomUUID } from 'node:crypto';
import { client, RequestError, type ClientApp } from '@agentclientprotocol/sdk';
import type { z } from 'zod';
import { ACTION_KIND, type CapabilityAction, type CapabilityRequest, type ResolvedPath } from '../common/capability.ts';
import type { ConsentPreview } from '../common/consent.ts';
import {
  DeleteParams, ListParams, METHODS, MoveParams, ReadTextFileParams, SearchParams, StatParams, WriteTextFileParams,
  type SearchMatch, type SearchResult,
} from '../common/protocol.ts';
import { traceFromMeta } from '../common/trace.ts';
import { RequestDenied, type Broker, type EffectResult } from './broker.ts';
import { previewDelete, previewMove, previewRead, previewWrite } from './consent-preview.ts';
import type { FsEffects } from './fs-effects.ts';
import { ForbiddenFiles, forbiddenInside } from './policy/forbidden-files.ts';
import type { PolicyEngine } from './policy/policy-engine.ts';
import { PathRefused, type WorkspaceJail } from './workspace-jail.ts';

export interface AcpHostOptions {
  readonly broker: Broker;
  /** Also consulted per file for search results. */
  readonly policy: PolicyEngine;
  readonly jail: WorkspaceJail;
  readonly fs: FsEffects;
  /** The ACP session ids this host serves; requests for others are refused. */
  readonly sessions: ReadonlySet<string>;
  /** Agent → client notifications (`session/update`). */
  readonly onSessionUpdate?: (params: unknown) => void;
  /** The session's policy answers per workspace entry, shared with its terminal service; default: its own. */
  readonly forbiddenFiles?: ForbiddenFiles;
  /** Extra client handlers (terminal/* from the sandbox service). */
  readonly extend?: (app: ClientApp, helpers: AcpHostHelpers) => void;
}

export interface AcpHostHelpers {
  /** Validates params with a schema, turning failures into JSON-RPC invalid-params errors. */
  parse<S extends z.ZodType>(schema: S, params: unknown): z.infer<S>;
  /** Maps any error to the JSON-RPC error the agent should see. */
  toRequestError(e: unknown): RequestError;
  request(action: CapabilityAction, method: string, sessionId: string, meta: unknown, parts: Partial<CapabilityRequest>): CapabilityRequest;
}

export function createAcpHost(opts: AcpHostOptions): ClientApp {
  const { broker, jail, fs } = opts;

  const parse = <S extends z.ZodType>(schema: S, params: unknown): z.infer<S> => {
    const r = schema.safeParse(params);
    if (!r.success) {
      const issues = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`);
      throw RequestError.invalidParams({ issues }, issues.join('; '));
    }
    const sessionId = (r.data as { sessionId?: string }).sessionId;
    if (sessionId !== undefined && !opts.sessions.has(sessionId)) {
      throw RequestError.invalidParams({ sessionId }, `unknown session ${sessionId}`);
    }
    return r.data;
  };

  const request = (action: CapabilityAction, method: string, sessionId: string, meta: unknown, parts: Partial<CapabilityRequest>): CapabilityRequest => ({
    id: randomUUID(),
    sessionId,
    action,
    kind: ACTION_KIND[action],
    method,
    workspace: jail.root,
    trace: traceFromMeta(meta),
    ...parts,
  });

  /** Resolution failures become audited host refusals. */
  const resolve = async (action: CapabilityAction, method: string, p: { sessionId: string; _meta?: unknown }, input: string, intent: 'read' | 'write' | 'entry'): Promise<ResolvedPath> => {
    try {
      return await jail.resolve(input, { intent });
    } catch (e) {
      if (!(e instanceof PathRefused)) throw e;
      const unresolved: ResolvedPath = { path: input.replace(/\0/g, '\\0'), inWorkspace: false, exists: false };
      return broker.refuse(request(action, method, p.sessionId, p._meta, { target: unresolved }), e.message);
    }
  };

  // A search is decided on the folder, but its results quote files: each file
  // must also be one policy lets the agent read without asking, or its lines
  // are withheld (and the agent told how many).
  const readableMatchesOnly = (found: SearchResult, req: CapabilityRequest): SearchResult => {
    const verdict = new Map<string, boolean>();
    const readable = (m: SearchMatch & { hardLinked?: boolean }) => {
      let ok = verdict.get(m.path);
      if (ok === undefined) {
        const file: ResolvedPath = { path: `${jail.root}/${m.path}`, relPath: m.path, inWorkspace: true, exists: true, type: 'file', hardLinked: m.hardLinked === true };
        ok = opts.policy.decide({ ...req, id: randomUUID(), action: 'read', kind: 'read', method: METHODS.readTextFile, target: file }).effect === 'allow';
        verdict.set(m.path, ok);
      }
      return ok;
    };
    const matches = found.matches.filter(readable).map(({ path, line, text }) => ({ path, line, text }));
    const withheld = found.matches.length - matches.length;
    return { ...found, matches, ...(withheld > 0 ? { withheld, note: `${withheld} match(es) in files policy does not let the agent read were withheld` } : {}) };
  };

  const run = <T>(req: CapabilityRequest, preview: () => Promise<ConsentPreview>, effect: () => Promise<EffectResult<T>>, signal: AbortSignal) =>
    broker.execute(req, { preview, effect, signal });

  /** A read-only effect: done while its decision record is committed, released after (broker invariant 6). */
  const runRead = <T, R>(req: CapabilityRequest, preview: () => Promise<ConsentPreview>, read: () => Promise<R>, reply: (r: R) => EffectResult<T>, signal: AbortSignal) =>
    broker.execute(req, { preview, prepare: read, effect: async (r: R) => reply(r), signal });

  const handle = <P, R>(fn: (params: unknown, signal: AbortSignal) => Promise<R>) =>
    async ({ params, signal }: { params: P; signal: AbortSignal }): Promise<R> => {
      try {
        return await fn(params, signal);
      } catch (e) {
        throw toRequestError(e);
      }
    };

  const app = client({ name: 'tether-host' });

  app.onRequest(METHODS.readTextFile, handle(async (raw, signal) => {
    const p = parse(ReadTextFileParams, raw);
    const target = await resolve('read', METHODS.readTextFile, p, p.path, 'read');
    const req = request('read', METHODS.readTextFile, p.sessionId, p._meta, { target });
    return runRead(req, async () => previewRead(target),
      () => fs.readText(target, { ...(p.line ? { line: p.line } : {}), ...(p.limit ? { limit: p.limit } : {}) }),
      (r) => ({ result: { content: r.content }, outcome: { bytes: r.bytes, ...(r.sha256 ? { postSha256: r.sha256 } : {}) } }),
      signal);
  }));

  app.onRequest(METHODS.writeTextFile, handle(async (raw, signal) => {
    const p = parse(WriteTextFileParams, raw);
    const target = await resolve('write', METHODS.writeTextFile, p, p.path, 'write');
    const req = request('write', METHODS.writeTextFile, p.sessionId, p._meta, { target });
    // The new content is staged beside the target while the decision is committed (broker invariant 6).
    return broker.execute(req, {
      preview: () => previewWrite(fs, target, p.content),
      prepare: () => fs.stageWrite(target, p.content),
      overlapCommit: true,
      discard: async (staged) => { if (staged) await fs.discardStaged(staged); },
      effect: async (staged) => {
        const r = await fs.writeText(target, p.content, staged);
        return { result: {}, outcome: { bytes: r.bytes, postSha256: r.postSha256, ...(r.preSha256 ? { preSha256: r.preSha256 } : {}) }, durable: r.durable };
      },
      signal,
    });
  }));

  app.onRequest(METHODS.list, (raw: unknown) => raw, handle(async (raw, signal) => {
    const p = parse(ListParams, raw);
    const target = await resolve('list', METHODS.list, p, p.path, 'read');
    const req = request('list', METHODS.list, p.sessionId, p._meta, { target });
    return runRead(req, async () => previewRead(target), () => fs.list(target), (r) => ({ result: r, outcome: { bytes: r.entries.length } }), signal);
  }));

  app.onRequest(METHODS.search, (raw: unknown) => raw, handle(async (raw, signal) => {
    const p = parse(SearchParams, raw);
    const target = await resolve('search', METHODS.search, p, p.path ?? '.', 'read');
    const req = request('search', METHODS.search, p.sessionId, p._meta, { target });
    return run(req, async () => previewRead(target), async () => {
      const found = await fs.search(target, p.pattern, {
        ...(p.include ? { include: p.include } : {}),
        ...(p.maxResults ? { maxResults: p.maxResults } : {}),
        ...(p.caseSensitive !== undefined ? { caseSensitive: p.caseSensitive } : {}),
      });
      const r = readableMatchesOnly(found, req);
      return { result: r, outcome: { bytes: r.matches.length } };
    }, signal);
  }));

  app.onRequest(METHODS.stat, (raw: unknown) => raw, handle(async (raw, signal) => {
    const p = parse(StatParams, raw);
    const target = await resolve('stat', METHODS.stat, p, p.path, 'read');
    const req = request('stat', METHODS.stat, p.sessionId, p._meta, { target });
    return runRead(req, async () => previewRead(target), () => fs.stat(target), (r) => ({ result: r }), signal);
  }));

  // Files policy keeps from the agent are hidden from its commands, and the
  // folders holding them pinned there; a move or delete of such a folder would
  // carry them somewhere unchecked or destroy them, so it is refused here.
  const forbidden = opts.forbiddenFiles ?? new ForbiddenFiles(opts.policy);
  /** Why the agent may not move or delete `t` (it is, or holds, what policy keeps from it); undefined when it may. */
  const secretsIn = async (req: CapabilityRequest, t: ResolvedPath, verb: 'move' | 'delete' | 'replace'): Promise<string | undefined> => {
    if (!t.exists || !t.inWorkspace || t.path === jail.root || !t.relPath) return undefined;
    // The entry itself (policy may forbid only reading it, not moving it).
    if (forbidden.isForbidden(jail.root, t.relPath, t.type ?? 'other', req)) return `policy keeps ${t.relPath} from the agent, so the agent may not ${verb} it; ask the user to do it`;
    if (t.type !== 'directory') return undefined;
    const inside = await forbiddenInside(forbidden, jail.root, t.path, req);
    if (inside.found.length > 0) {
      const names = inside.found.slice(0, 3).map((f) => f.slice(jail.root.length + 1)).join(', ');
      const more = inside.found.length > 3 ? `, and ${inside.found.length - 3} more` : '';
      return `the folder ${t.relPath} holds files policy keeps from the agent (${names}${more}), so the agent may not ${verb} it; ask the user to do it`;
    }
    if (inside.incomplete) return `the folder ${t.relPath} is too large to check for files policy keeps from the agent, so the agent may not ${verb} it; ask the user to do it`;
    return undefined;
  };
  /** Refused (and audited) before anyone is asked; checked again when the effect runs, since the user may take a while to answer. */
  const refuseFolderWithSecrets = async (req: CapabilityRequest, t: ResolvedPath, verb: 'move' | 'delete' | 'replace'): Promise<void> => {
    const why = await secretsIn(req, t, verb);
    if (why) await broker.refuse(req, why);
  };
  const recheckFolder = async (req: CapabilityRequest, t: ResolvedPath, verb: 'move' | 'delete' | 'replace'): Promise<void> => {
    const why = await secretsIn(req, t, verb);
    if (why) throw new Error(`not done: ${why}`);
  };

  app.onRequest(METHODS.delete, (raw: unknown) => raw, handle(async (raw, signal) => {
    const p = parse(DeleteParams, raw);
    const target = await resolve('delete', METHODS.delete, p, p.path, 'entry');
    const req = request('delete', METHODS.delete, p.sessionId, p._meta, { target });
    if (p.recursive) await refuseFolderWithSecrets(req, target, 'delete');
    return run(req, () => previewDelete(fs, target, { recursive: p.recursive ?? false }), async () => {
      if (p.recursive) await recheckFolder(req, target, 'delete');
      const r = await fs.delete(target, { recursive: p.recursive ?? false });
      return { result: {}, outcome: r.preSha256 ? { preSha256: r.preSha256 } : {} };
    }, signal);
  }));

  app.onRequest(METHODS.move, (raw: unknown) => raw, handle(async (raw, signal) => {
    const p = parse(MoveParams, raw);
    const target = await resolve('move', METHODS.move, p, p.from, 'entry');
    const destination = await resolve('move', METHODS.move, p, p.to, 'entry');
    const req = request('move', METHODS.move, p.sessionId, p._meta, { target, destination });
    await refuseFolderWithSecrets(req, target, 'move');
    if (p.overwrite) await refuseFolderWithSecrets(req, destination, 'replace');
    return run(req, async () => previewMove(target, destination, { overwrite: p.overwrite ?? false }), async () => {
      await recheckFolder(req, target, 'move');
      if (p.overwrite) await recheckFolder(req, destination, 'replace');
      const r = await fs.move(target, destination, { overwrite: p.overwrite ?? false });
      return { result: {}, outcome: r.preSha256 ? { preSha256: r.preSha256 } : {} };
    }, signal);
  }));

  app.onRequest('session/request_permission', handle(async () => {
    throw RequestError.methodNotFound('session/request_permission') ;
  }));

  app.onNotification('session/update', ({ params }) => {
    opts.onSessionUpdate?.(params);
  });

  opts.extend?.(app, { parse, toRequestError, request });
  return app;
}

export function toRequestError(e: unknown): RequestError {
  if (e instanceof RequestError) return e;
  if (e instanceof RequestDenied) return new RequestError(e.code, e.message, e.data);
  const message = e instanceof Error ? e.message : String(e);
  return new RequestError(-32603, message, { error: message });
}
