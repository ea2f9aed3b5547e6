// The Cedar implementation of the policy port (@cedar-policy/cedar-wasm,
// preparsed/stateful API).
//
// Decision rules (resources/policy/README.md):
//  - no matching permit → deny; any matching forbid, from any source → deny;
//  - otherwise the highest-precedence source (managed → user → default) with a
//    matching permit decides: "ask" if any of its matching permits is `@ask`,
//    else "allow";
//  - any evaluation error → deny, with the errors;
//  - a move is decided for its source and its destination; the stricter wins.
//
// Speed: a wasm call costs ~15 µs before any policy runs, each policy in the set
// ~1.5 µs and each entity attribute 2–4 µs. So the policy set is split per
// concrete action at load time (each part holds only the policies whose action
// scope can match, with that scope check removed — via Cedar's JSON form, except
// for policies with Longs beyond 2^53, which JSON would round), the entity carries only the
// attributes some policy in that part reads, and decisions are memoised by
// their exact Cedar input (the policies are immutable, Cedar is deterministic).
// `reference: true` turns all of that off — full set, full entities, schema —
// and the tests check both modes agree.

import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { readdir, realpath } from 'node:fs/promises';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { AuthorizationAnswer, CedarValueJson, EntityJson, EntityUidJson, Expr, PolicyJson, StatefulAuthorizationCall } from '@cedar-policy/cedar-wasm/nodejs';
import { ACTION_KIND, type CapabilityAction, type CapabilityRequest } from '../../common/capability.ts';
import type { PolicyDecision, PolicyEffect } from '../../common/decision.ts';
import {
  CONTEXT_ATTRS, NAMESPACE, RESOURCE_ATTRS, RESOURCE_TYPE, describeSubject, isInside, resourceId, subjectsOf,
  type AttrGetter, type RequestEnvironment, type ResourceType, type Role, type Subject,
} from './cedar-request.ts';
import { PolicyLoadError, type PolicyEngine, type PolicyRuleInfo, type PolicySourceKind } from './policy-engine.ts';
import { loadPolicyFile, loadSchema, readSource, type LoadedPolicy, type LoadedSchema, type PolicyFileSpec, type PolicyWarning } from './policy-loader.ts';

export const DEFAULT_POLICY_DIR = fileURLToPath(new URL('../../../resources/policy/', import.meta.url));
export const SCHEMA_FILE = 'tether.cedarschema';

export interface CedarPolicyEngineOptions {
  /** Directory of the built-in policy: every `*.cedar` in it, and `tether.cedarschema`. */
  readonly defaultDir?: string;
  /** User policy files (`--policy`). */
  readonly userFiles?: readonly string[];
  /** Managed (MDM) policy files. */
  readonly managedFiles?: readonly string[];
  /**
   * Paths no file action may touch (`resource.protected`): audit log, keys.
   * The policy files and directory themselves are always added.
   */
  readonly protectedPaths?: readonly string[];
  /** Base URLs of the configured model provider(s) (`resource.modelProvider`). */
  readonly modelProviders?: readonly string[];
  /** Case-insensitive path comparison (protected paths, cwd). Default: macOS and Windows. */
  readonly caseInsensitivePaths?: boolean;
  /** Evaluate without the speed-ups (see the file comment). For tests and cross-checks. */
  readonly reference?: boolean;
  /** Memoised decisions (LRU entries); 0 disables. Default 4096. */
  readonly cacheSize?: number;
}

/** One half of a decision (a move has two), with what `policy explain` shows. */
export interface PartExplanation {
  readonly role: Role;
  /** The path, command or URL this part was decided on. */
  readonly subject: string;
  readonly effect: PolicyEffect;
  readonly policyIds: readonly string[];
  readonly reason: string;
  /** Matching forbids (only reported when one matched). */
  readonly forbids: readonly string[];
  /** Matching permits, from every source (only reported when no forbid matched). */
  readonly permits: readonly string[];
  /** The source whose permits decided between allow and ask. */
  readonly decidingSource?: PolicySourceKind;
  readonly errors: readonly string[];
  /** The Cedar request, with every schema attribute filled in. */
  readonly cedar: {
    readonly principal: EntityUidJson;
    readonly action: EntityUidJson;
    readonly resource: EntityUidJson;
    readonly resourceAttrs: Record<string, CedarValueJson>;
    readonly context: Record<string, CedarValueJson>;
  };
}

export interface PolicyExplanation {
  readonly decision: PolicyDecision;
  readonly parts: readonly PartExplanation[];
}

interface Plan {
  readonly action: CapabilityAction;
  readonly policySetId: string;
  readonly resourceType: ResourceType;
  readonly resourceAttrs: readonly (readonly [string, AttrGetter])[];
  readonly contextAttrs: readonly (readonly [string, AttrGetter])[];
  /** Present when some policy reads `action` beyond its stripped scope (no schema is passed on the fast path). */
  readonly actionEntity: EntityJson | undefined;
  readonly schemaName: string | undefined;
}

interface PartResult {
  readonly effect: PolicyEffect;
  readonly policyIds: readonly string[];
  readonly reason: string;
  readonly errors: readonly string[];
  readonly forbids: readonly string[];
  readonly permits: readonly string[];
  readonly decidingSource: PolicySourceKind | undefined;
}

const SOURCE_ORDER: readonly PolicySourceKind[] = ['managed', 'user', 'default'];
const ACTIONS = Object.keys(ACTION_KIND) as CapabilityAction[];
const ACTION_TYPE = `${NAMESPACE}::Action`;
let instances = 0;

export class CedarPolicyEngine implements PolicyEngine {
  /** Validation warnings from loading (impossible policies and the like). */
  readonly warnings: readonly PolicyWarning[];
  /** Every file that was loaded, in precedence order. */
  readonly files: readonly { readonly file: string; readonly source: PolicySourceKind }[];

  private readonly policies: ReadonlyMap<string, LoadedPolicy>;
  /** Precedence-then-file order, so determining ids come out in a stable order. */
  private readonly order: ReadonlyMap<string, number>;
  private readonly plans: ReadonlyMap<CapabilityAction, Plan>;
  private readonly env: RequestEnvironment;
  private readonly cache = new Map<string, PartResult>();
  private readonly cacheSize: number;
  private hits = 0;
  private misses = 0;

  private constructor(init: {
    policies: ReadonlyMap<string, LoadedPolicy>;
    plans: ReadonlyMap<CapabilityAction, Plan>;
    env: RequestEnvironment;
    warnings: readonly PolicyWarning[];
    files: readonly { file: string; source: PolicySourceKind }[];
    cacheSize: number;
  }) {
    this.policies = init.policies;
    this.order = new Map([...init.policies.keys()].map((id, i) => [id, i]));
    this.plans = init.plans;
    this.env = init.env;
    this.warnings = init.warnings;
    this.files = init.files;
    this.cacheSize = init.cacheSize;
  }

  /** Loads, parses and strictly validates every source. Throws PolicyLoadError naming file:line:column. */
  static async load(options: CedarPolicyEngineOptions = {}): Promise<CedarPolicyEngine> {
    const defaultDir = resolve(options.defaultDir ?? DEFAULT_POLICY_DIR);
    const schemaFile = join(defaultDir, SCHEMA_FILE);
    const schema = loadSchema(schemaFile, await readSource(schemaFile, 'the policy schema'));
    const actions = checkSchema(schema);

    let defaultFiles: string[];
    try {
      defaultFiles = (await readdir(defaultDir)).filter((f) => f.endsWith('.cedar')).sort().map((f) => join(defaultDir, f));
    } catch (e) {
      throw new PolicyLoadError(`${defaultDir}: cannot read the default policy directory: ${(e as Error).message}`, defaultDir);
    }
    const specs: PolicyFileSpec[] = [
      ...(options.managedFiles ?? []).map((f) => ({ file: resolve(f), source: 'managed' as const })),
      ...(options.userFiles ?? []).map((f) => ({ file: resolve(f), source: 'user' as const })),
      ...defaultFiles.map((file) => ({ file, source: 'default' as const })),
    ];

    const seen = new Map<string, LoadedPolicy>();
    const warnings: PolicyWarning[] = [];
    for (const spec of specs) {
      const text = spec.text ?? (await readSource(spec.file, `${spec.source} policy`));
      loadPolicyFile({ ...spec, text }, schema, seen, warnings);
    }

    const fold = (options.caseInsensitivePaths ?? (process.platform === 'darwin' || process.platform === 'win32'))
      ? (p: string) => p.toLowerCase()
      : (p: string) => p;
    // Request paths are canonical: match both the given and the real form of each root.
    const roots = [...(options.protectedPaths ?? []), defaultDir, ...specs.map((s) => s.file)].map((p) => resolve(p));
    const protectedPaths = [...new Set([...roots, ...(await Promise.all(roots.map((p) => realpath(p).catch(() => p))))])].map(fold);
    const providers = (options.modelProviders ?? []).map(parseProvider);
    const env: RequestEnvironment = {
      fold,
      isProtected: (path) => {
        const p = fold(path);
        return protectedPaths.some((root) => isInside(p, root));
      },
      isModelProvider: (url) => providers.some((base) => underBase(url, base)),
    };

    const id = `tether-${process.pid}-${++instances}`;
    const plans = options.reference
      ? referencePlans(id, schema, seen, actions)
      : fastPlans(id, seen, actions);
    return new CedarPolicyEngine({
      policies: seen,
      plans,
      env,
      warnings,
      files: specs.map(({ file, source }) => ({ file, source })),
      cacheSize: options.reference ? 0 : options.cacheSize ?? 4096,
    });
  }

  decide(request: CapabilityRequest): PolicyDecision {
    try {
      return combine(this.evaluateAll(request).map((p) => p.result));
    } catch (e) {
      return failure(request, e);
    }
  }

  /** The decision plus what went into it, for `tether policy explain`. Never throws. */
  explain(request: CapabilityRequest): PolicyExplanation {
    let parts: { subject: Subject; plan: Plan; result: PartResult }[];
    try {
      parts = this.evaluateAll(request);
    } catch (e) {
      return { decision: failure(request, e), parts: [] };
    }
    return {
      decision: combine(parts.map((p) => p.result)),
      parts: parts.map(({ subject, plan, result }) => ({
        role: subject.role,
        subject: describeSubject(subject),
        effect: result.effect,
        policyIds: result.policyIds,
        reason: result.reason,
        forbids: result.forbids,
        permits: result.permits,
        ...(result.decidingSource ? { decidingSource: result.decidingSource } : {}),
        errors: result.errors,
        cedar: {
          principal: principalOf(subject),
          action: { type: ACTION_TYPE, id: plan.action },
          resource: { type: `${NAMESPACE}::${plan.resourceType}`, id: resourceId(subject, plan.resourceType) },
          resourceAttrs: buildRecord(Object.entries(RESOURCE_ATTRS[plan.resourceType]), subject),
          context: buildRecord(Object.entries(CONTEXT_ATTRS), subject),
        },
      })),
    };
  }

  /** Memo counters since load (each half of a move counts once). */
  memoStats(): { hits: number; misses: number; size: number } {
    return { hits: this.hits, misses: this.misses, size: this.cache.size };
  }

  rule(id: string): PolicyRuleInfo | undefined {
    const p = this.policies.get(id);
    return p ? ruleInfo(p) : undefined;
  }

  /** Every loaded policy, in precedence order then file order. */
  rules(): PolicyRuleInfo[] {
    return [...this.policies.values()].map(ruleInfo);
  }

  private evaluateAll(request: CapabilityRequest): { subject: Subject; plan: Plan; result: PartResult }[] {
    const plan = this.plans.get(request.action);
    if (!plan) throw new Error(`unknown action "${String(request.action)}"`);
    return subjectsOf(request, this.env).map((subject) => ({ subject, plan, result: this.evaluate(plan, subject) }));
  }

  private evaluate(plan: Plan, subject: Subject): PartResult {
    const resource = { type: `${NAMESPACE}::${plan.resourceType}`, id: resourceId(subject, plan.resourceType) };
    const entities: EntityJson[] = [];
    if (plan.resourceAttrs.length > 0) entities.push({ uid: resource, attrs: buildRecord(plan.resourceAttrs, subject), parents: [] });
    if (plan.actionEntity) entities.push(plan.actionEntity);
    const call: StatefulAuthorizationCall = {
      principal: principalOf(subject),
      action: { type: ACTION_TYPE, id: plan.action },
      resource,
      context: buildRecord(plan.contextAttrs, subject),
      preparsedPolicySetId: plan.policySetId,
      entities,
      ...(plan.schemaName ? { preparsedSchemaName: plan.schemaName, validateRequest: true } : {}),
    };

    let key: string | undefined;
    if (this.cacheSize > 0) {
      // The role only shapes the reason text unless a policy reads it; key on it anyway.
      key = `${subject.role}\n${JSON.stringify(call)}`;
      const hit = this.cache.get(key);
      if (hit) {
        this.hits++;
        this.cache.delete(key);
        this.cache.set(key, hit);
        return hit;
      }
    }
    this.misses++;
    const result = this.interpret(cedar.statefulIsAuthorized(call), subject);
    if (key !== undefined) {
      this.cache.set(key, result);
      if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    }
    return result;
  }

  private interpret(answer: AuthorizationAnswer, subject: Subject): PartResult {
    const what = describeSubject(subject);
    const action = subject.request.action;
    if (answer.type === 'failure') {
      const errors = answer.errors.map((e) => e.message);
      return part('deny', [], `the policy engine could not decide ${action} of ${what}: ${errors.join('; ')}`, errors);
    }
    const { decision, diagnostics } = answer.response;
    if (diagnostics.errors.length > 0) {
      const errors = diagnostics.errors.map((e) => `policy "${e.policyId}": ${e.error.message}`);
      const ids = [...new Set(diagnostics.errors.map((e) => e.policyId))];
      return part('deny', ids, `denied because a policy could not be evaluated for ${action} of ${what}: ${errors.join('; ')}`, errors);
    }
    const ids = [...diagnostics.reason].sort((a, b) => (this.order.get(a) ?? -1) - (this.order.get(b) ?? -1));
    if (decision === 'deny') {
      if (ids.length === 0) return part('deny', [], `no policy permits ${action} of ${what}`);
      return { ...part('deny', ids, this.describe(ids)), forbids: ids };
    }
    for (const source of SOURCE_ORDER) {
      const fromSource = ids.filter((id) => this.policies.get(id)?.source === source);
      if (fromSource.length === 0) continue;
      const asking = fromSource.filter((id) => this.policies.get(id)!.ask);
      const effect: PolicyEffect = asking.length > 0 ? 'ask' : 'allow';
      const determining = asking.length > 0 ? asking : fromSource;
      return { ...part(effect, determining, this.describe(determining)), permits: ids, decidingSource: source };
    }
    // Cedar allowed on a permit this engine does not know: cannot happen unless the sets diverged.
    return part('deny', ids, `policy set mismatch: Cedar allowed ${action} of ${what} by unknown policies ${ids.join(', ')}`, ['unknown determining policy']);
  }

  private describe(ids: readonly string[]): string {
    return ids.map((id) => this.policies.get(id)?.description ?? `policy "${id}"`).join(' ');
  }
}

function part(effect: PolicyEffect, policyIds: readonly string[], reason: string, errors: readonly string[] = []): PartResult {
  return { effect, policyIds, reason, errors, forbids: [], permits: [], decidingSource: undefined };
}

/** The stricter part wins: deny over ask over allow. */
function combine(parts: readonly PartResult[]): PolicyDecision {
  if (parts.length === 0) return { effect: 'deny', policyIds: [], reason: 'nothing to decide on', errors: ['request has no subject'] };
  const rank: Record<PolicyEffect, number> = { allow: 0, ask: 1, deny: 2 };
  const worst = Math.max(...parts.map((p) => rank[p.effect]));
  const effect = (['allow', 'ask', 'deny'] as const)[worst]!;
  const deciding = parts.filter((p) => p.effect === effect);
  const policyIds = [...new Set(deciding.flatMap((p) => p.policyIds))];
  const reason = [...new Set(deciding.map((p) => p.reason))].join(' ');
  const errors = parts.flatMap((p) => p.errors);
  return { effect, policyIds, reason, ...(errors.length > 0 ? { errors } : {}) };
}

function failure(request: CapabilityRequest, e: unknown): PolicyDecision {
  const message = e instanceof Error ? e.message : String(e);
  return { effect: 'deny', policyIds: [], reason: `the policy engine could not decide ${String(request?.action)}: ${message}`, errors: [message] };
}

function principalOf(s: Subject): EntityUidJson {
  return { type: `${NAMESPACE}::Agent`, id: s.request.sessionId };
}

function buildRecord(getters: readonly (readonly [string, AttrGetter])[], s: Subject): Record<string, CedarValueJson> {
  const out: Record<string, CedarValueJson> = {};
  for (const [name, get] of getters) out[name] = get(s);
  return out;
}

function ruleInfo(p: LoadedPolicy): PolicyRuleInfo {
  return { id: p.id, description: p.description ?? p.id, source: p.source, file: p.file, line: p.line, effect: p.effect, ask: p.ask };
}

// ── Load-time planning ─────────────────────────────────────────────────────

interface SchemaActions {
  /** Concrete action → itself and every group it is in. */
  readonly ancestors: ReadonlyMap<string, readonly string[]>;
}

/** The schema must declare exactly what the engine fills in, or decisions would silently miss data. */
function checkSchema(schema: LoadedSchema): SchemaActions {
  const ns = schema.json[NAMESPACE];
  const fail = (problem: string) => new PolicyLoadError(`${schema.file}: ${problem}; the schema and Tether's request mapping (src/host/policy/cedar-request.ts) must agree`, schema.file);
  if (!ns) throw fail(`the schema has no namespace ${NAMESPACE}`);
  const actions = ns.actions;
  const parentsOf = (a: string): string[] => (actions[a]?.memberOf ?? []).map((m) => m.id);
  const ancestors = new Map<string, string[]>();
  for (const action of ACTIONS) {
    const decl = actions[action];
    if (!decl) throw fail(`the schema does not declare action "${action}"`);
    const type = RESOURCE_TYPE[action];
    const applies = decl.appliesTo;
    if (!applies || applies.resourceTypes.length !== 1 || applies.resourceTypes[0] !== type) throw fail(`action "${action}" must apply to resource type ${type} only`);
    const all = new Set<string>([action]);
    const queue = parentsOf(action);
    while (queue.length > 0) {
      const a = queue.shift()!;
      if (all.has(a)) continue;
      all.add(a);
      queue.push(...parentsOf(a));
    }
    ancestors.set(action, [...all]);
  }
  for (const [type, getters] of Object.entries(RESOURCE_ATTRS)) {
    checkAttrs(fail, `entity ${type}`, recordAttrs(ns.entityTypes[type]), Object.keys(getters));
  }
  for (const action of ACTIONS) {
    checkAttrs(fail, `the context of action "${action}"`, contextAttrs(ns.actions[action]?.appliesTo?.context, ns.commonTypes), Object.keys(CONTEXT_ATTRS));
  }
  return { ancestors };
}

/** Attribute names of an action's context, following one common-type reference. */
function contextAttrs(type: unknown, common: Record<string, unknown> | undefined): string[] | undefined {
  const t = type as { type?: string; name?: string; attributes?: Record<string, unknown> } | undefined;
  if (!t) return undefined;
  if (t.attributes) return Object.keys(t.attributes);
  const ref = t.type === 'Record' ? undefined : t.type === 'EntityOrCommon' ? t.name : t.type;
  const named = ref ? (common?.[ref] as { attributes?: Record<string, unknown> } | undefined) : undefined;
  return named?.attributes ? Object.keys(named.attributes) : undefined;
}

function recordAttrs(entity: unknown): string[] | undefined {
  const shape = (entity as { shape?: { attributes?: Record<string, unknown> } } | undefined)?.shape;
  return shape?.attributes ? Object.keys(shape.attributes) : entity ? [] : undefined;
}

function checkAttrs(fail: (p: string) => PolicyLoadError, what: string, declared: string[] | undefined, built: string[]): void {
  if (!declared) throw fail(`the schema does not declare ${what}`);
  const missing = built.filter((a) => !declared.includes(a));
  const extra = declared.filter((a) => !built.includes(a));
  if (missing.length > 0 || extra.length > 0) {
    throw fail(`${what} attributes differ (schema lacks: ${missing.join(', ') || 'none'}; not filled in by Tether: ${extra.join(', ') || 'none'})`);
  }
}

/** The concrete actions a policy's action scope can match. */
function actionsInScope(policy: PolicyJson, ancestors: ReadonlyMap<string, readonly string[]>): CapabilityAction[] {
  const scope = policy.action;
  if (scope.op === 'All') return ACTIONS;
  const uids: EntityUidJson[] = scope.op === '==' ? ('entity' in scope ? [scope.entity] : []) : 'entity' in scope ? [scope.entity] : scope.entities;
  const ids = uids.map((u) => ('__entity' in u ? u.__entity : u)).filter((u) => u.type === ACTION_TYPE).map((u) => u.id);
  if (scope.op === '==') return ACTIONS.filter((a) => ids.includes(a));
  return ACTIONS.filter((a) => ancestors.get(a)!.some((x) => ids.includes(x)));
}

interface Usage {
  readonly resource: Set<string>;
  readonly context: Set<string>;
  wholeContext: boolean;
  action: boolean;
}

/** Which attributes the conditions read; `context` used as a whole record needs all of it. */
function collectUsage(expr: unknown, usage: Usage): void {
  if (Array.isArray(expr)) {
    for (const e of expr) collectUsage(e, usage);
    return;
  }
  if (expr === null || typeof expr !== 'object') return;
  const node = expr as Record<string, unknown>;
  for (const op of ['.', 'has'] as const) {
    const access = node[op] as { left?: Expr; attr?: string | string[] } | undefined;
    const left = access?.left as { Var?: string } | undefined;
    if (access && left && typeof left === 'object' && 'Var' in left && (left.Var === 'resource' || left.Var === 'context')) {
      const attr = Array.isArray(access.attr) ? access.attr[0] : access.attr;
      if (attr !== undefined) usage[left.Var].add(attr);
      return;
    }
  }
  if (node.Var === 'context') usage.wholeContext = true;
  if (node.Var === 'action') usage.action = true;
  for (const v of Object.values(node)) collectUsage(v, usage);
}

function hasUnsafeNumber(json: unknown): boolean {
  if (typeof json === 'number') return !Number.isSafeInteger(json);
  if (json === null || typeof json !== 'object') return false;
  return Object.values(json).some(hasUnsafeNumber);
}

function fastPlans(id: string, policies: ReadonlyMap<string, LoadedPolicy>, actions: SchemaActions): Map<CapabilityAction, Plan> {
  const plans = new Map<CapabilityAction, Plan>();
  for (const action of ACTIONS) {
    const set: Record<string, PolicyJson | string> = {};
    const usage: Usage = { resource: new Set(), context: new Set(), wholeContext: false, action: false };
    for (const p of policies.values()) {
      if (!actionsInScope(p.json, actions.ancestors).includes(action)) continue;
      if (hasUnsafeNumber(p.json)) {
        // The JSON form rounds Longs beyond 2^53: keep the text, scope and all,
        // and give Cedar the action's groups instead.
        set[p.id] = p.text;
        usage.action = true;
      } else {
        set[p.id] = { ...p.json, action: { op: 'All' } };
      }
      collectUsage(p.json.conditions, usage);
    }
    const policySetId = `${id}-${action}`;
    preparse(policySetId, set);
    const resourceType = RESOURCE_TYPE[action];
    const resourceGetters = RESOURCE_ATTRS[resourceType];
    plans.set(action, {
      action,
      policySetId,
      resourceType,
      resourceAttrs: Object.entries(resourceGetters).filter(([name]) => usage.resource.has(name)),
      contextAttrs: Object.entries(CONTEXT_ATTRS).filter(([name]) => usage.wholeContext || usage.context.has(name)),
      actionEntity: usage.action
        ? { uid: { type: ACTION_TYPE, id: action }, attrs: {}, parents: actions.ancestors.get(action)!.filter((a) => a !== action).map((a) => ({ type: ACTION_TYPE, id: a })) }
        : undefined,
      schemaName: undefined,
    });
  }
  return plans;
}

function referencePlans(id: string, schema: LoadedSchema, policies: ReadonlyMap<string, LoadedPolicy>, _actions: SchemaActions): Map<CapabilityAction, Plan> {
  const schemaName = `${id}-schema`;
  const loaded = cedar.preparseSchema(schemaName, schema.text);
  if (loaded.type === 'failure') throw new PolicyLoadError(`${schema.file}: ${loaded.errors.map((e) => e.message).join('; ')}`, schema.file);
  const policySetId = `${id}-all`;
  preparse(policySetId, Object.fromEntries([...policies.values()].map((p) => [p.id, p.text])));
  return new Map(ACTIONS.map((action) => {
    const resourceType = RESOURCE_TYPE[action];
    return [action, {
      action,
      policySetId,
      resourceType,
      resourceAttrs: Object.entries(RESOURCE_ATTRS[resourceType]),
      contextAttrs: Object.entries(CONTEXT_ATTRS),
      actionEntity: undefined,
      schemaName,
    }];
  }));
}

function preparse(id: string, set: Record<string, PolicyJson | string>): void {
  // Cannot fail for policies that validated, short of a Cedar bug: still refuse to run.
  const answer = cedar.preparsePolicySet(id, { staticPolicies: set });
  if (answer.type === 'failure') {
    throw new PolicyLoadError(`the validated policies could not be prepared for evaluation: ${answer.errors.map((e) => e.message).join('; ')}`, '(policy set)');
  }
}

function parseProvider(base: string): URL {
  try {
    return new URL(base);
  } catch {
    throw new PolicyLoadError(`model provider base URL "${base}" does not parse`, base);
  }
}

function underBase(url: URL, base: URL): boolean {
  if (url.protocol !== base.protocol || url.host.toLowerCase() !== base.host.toLowerCase()) return false;
  const root = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
  return root === '' || url.pathname === root || url.pathname.startsWith(`${root}/`);
}
