// Cedar decisions per second and per-decision latency over realistic mixed
// requests (target ≥ 25,000/s), in three settings:
//   session — an agent session's stream: a working set of files re-read and
//             re-written, repeated commands, one model endpoint (memo hits as
//             they come);
//   cold    — the same mix with every path, command and URL unique, so every
//             decision runs Cedar (the memo never hits);
//   reference — cold, without any speed-up (whole policy set, full entities,
//             schema validation per request).
// Requests are built beforehand in the shapes the broker passes (resolved
// paths), so only `decide` is timed.

import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { CapabilityAction, CapabilityRequest, ResolvedPath } from '../../src/common/capability.ts';
import { ACTION_KIND } from '../../src/common/capability.ts';
import { CedarPolicyEngine } from '../../src/host/policy/cedar-policy-engine.ts';

const WS = '/home/dev/work/acme-web';
const PROVIDER = 'https://api.anthropic.com/v1';
const TRACE = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: '01' };

// Weights per 100 requests, roughly what a coding agent's session looks like.
const MIX: readonly [CapabilityAction, number][] = [
  ['read', 50], ['stat', 8], ['list', 8], ['search', 4], ['write', 12], ['delete', 1], ['move', 1],
  ['exec', 6], ['model', 8], ['net', 2],
];

const DIRS = ['src', 'src/components', 'src/routes', 'src/lib', 'src/lib/server', 'test', 'test/unit', 'docs', 'scripts', 'public', '.github/workflows'];
const NAMES = ['index.ts', 'app.tsx', 'button.tsx', 'router.ts', 'db.ts', 'auth.ts', 'config.ts', 'utils.ts', 'README.md', 'package.json', 'styles.css', 'ci.yml'];
// A few requests hit rules that deny or ask, as a real session does.
const SPECIAL = ['.env', '.env.local', 'certs/dev.pem', '.git/hooks/pre-commit', '.npmrc', '.git/config', '../other-project/src/index.ts'];
const COMMANDS = ['npm test', 'npm run build', 'git status', 'git diff', 'ls -la', 'npx tsc --noEmit', 'npm run lint', 'git log --oneline -5'];
const HOSTS = ['https://registry.npmjs.org/zod', 'https://raw.githubusercontent.com/acme/x/main/a.json', 'http://169.254.169.254/latest/meta-data/'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function file(rel: string, opts: { exists?: boolean; hardLinked?: boolean } = {}): ResolvedPath {
  const outside = rel.startsWith('../');
  const path = outside ? `/home/dev/work/${rel.slice(3)}` : `${WS}/${rel}`;
  return {
    path,
    ...(outside ? {} : { relPath: rel }),
    inWorkspace: !outside,
    exists: opts.exists ?? true,
    ...(opts.exists === false ? {} : { type: rel.includes('.') ? 'file' as const : 'directory' as const }),
    hardLinked: opts.hardLinked ?? false,
  };
}

function makeStream(n: number, unique: boolean, seed: number): CapabilityRequest[] {
  const rand = rng(seed);
  const total = MIX.reduce((a, [, w]) => a + w, 0);
  // A repository of ~2,000 files; the agent keeps coming back to a skewed
  // working set (a few files touched again and again, a long tail once).
  const paths = DIRS.flatMap((d) => Array.from({ length: 15 }, (_, k) => NAMES.map((f) => `${d}/m${k}/${f}`)).flat());
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() ** 2 * xs.length)]!;
  const out: CapabilityRequest[] = [];
  for (let i = 0; i < n; i++) {
    let r = rand() * total;
    let action: CapabilityAction = 'read';
    for (const [a, w] of MIX) {
      if ((r -= w) < 0) {
        action = a;
        break;
      }
    }
    const u = unique ? `-${i}` : '';
    const base = { id: `req-${i}`, sessionId: 'sess-1', action, kind: ACTION_KIND[action], method: `bench/${action}`, workspace: WS, trace: TRACE };
    const rel = rand() < 0.03 ? pick(SPECIAL) : pick(paths);
    const relU = unique ? rel.replace(/(\.[a-z]+)?$/, `${u}$1`) : rel;
    if (action === 'exec') out.push({ ...base, command: { line: `${pick(COMMANDS)}${unique ? ` --run=${i}` : ''}`, cwd: WS } });
    else if (action === 'model') out.push({ ...base, url: `${PROVIDER}/messages${unique ? `?n=${i}` : ''}` });
    else if (action === 'net') out.push({ ...base, url: `${pick(HOSTS)}${unique ? `?n=${i}` : ''}` });
    else if (action === 'move') out.push({ ...base, target: file(relU), destination: file(`${relU}.bak`, { exists: false }) });
    else if (action === 'list' || action === 'search') out.push({ ...base, target: file(unique ? `${rel.slice(0, rel.lastIndexOf('/'))}${u}` : rel.slice(0, rel.lastIndexOf('/'))) });
    else out.push({ ...base, target: file(relU, { exists: action !== 'write' || rand() < 0.7, hardLinked: rand() < 0.005 }) });
  }
  return out;
}

interface Figures {
  perSecond: number;
  p50: number;
  p99: number;
  effects: Record<string, number>;
}

function measure(engine: CedarPolicyEngine, stream: readonly CapabilityRequest[]): Figures {
  const times = new Float64Array(stream.length);
  const effects: Record<string, number> = { allow: 0, ask: 0, deny: 0 };
  const start = performance.now();
  for (let i = 0; i < stream.length; i++) {
    const t = performance.now();
    const d = engine.decide(stream[i]!);
    times[i] = performance.now() - t;
    effects[d.effect]!++;
  }
  const elapsed = performance.now() - start;
  times.sort();
  return {
    perSecond: Math.round(stream.length / (elapsed / 1000)),
    p50: times[Math.floor(times.length * 0.5)]! * 1000,
    p99: times[Math.floor(times.length * 0.99)]! * 1000,
    effects,
  };
}

function line(label: string, n: number, f: Figures): string {
  const mix = `allow ${f.effects.allow} / ask ${f.effects.ask} / deny ${f.effects.deny}`;
  return `${label.padEnd(10)} ${String(n).padStart(6)} decisions  ${String(f.perSecond).padStart(7)} /s   p50 ${f.p50.toFixed(1).padStart(6)} µs   p99 ${f.p99.toFixed(1).padStart(6)} µs   (${mix})`;
}

export default async function (): Promise<void> {
  const t0 = performance.now();
  const engine = await CedarPolicyEngine.load({ modelProviders: [PROVIDER], protectedPaths: ['/home/dev/.local/share/tether'] });
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  const reference = await CedarPolicyEngine.load({ modelProviders: [PROVIDER], reference: true });
  const refLoadMs = performance.now() - t1;
  console.log(`policy: ${engine.rules().length} rules; load ${loadMs.toFixed(0)} ms (first load includes wasm start-up), reference engine ${refLoadMs.toFixed(0)} ms`);

  const N = 20_000;
  // Warm up the JIT and wasm tier-up on a separate stream.
  measure(engine, makeStream(2_000, true, 7));
  measure(reference, makeStream(500, true, 8));

  const before = engine.memoStats();
  const session = measure(engine, makeStream(N, false, 1));
  const after = engine.memoStats();
  const hitRate = (after.hits - before.hits) / (after.hits - before.hits + after.misses - before.misses);
  const cold = measure(engine, makeStream(N, true, 2));
  const ref = measure(reference, makeStream(N / 4, true, 3));
  console.log(line('session', N, session) + `  memo hits ${(hitRate * 100).toFixed(0)}%`);
  console.log(line('cold', N, cold));
  console.log(line('reference', N / 4, ref));
  console.log(`wasm floor: ${floorMicros().toFixed(1)} µs per call with an empty policy set and a 4-attribute File entity`);
  const verdict = (f: Figures) => (f.perSecond >= 25_000 ? 'meets' : 'misses');
  console.log(`target ≥ 25,000/s: session ${verdict(session)} it, cold ${verdict(cold)} it`);
}

/** What one statefulIsAuthorized call costs before any policy runs. */
function floorMicros(): number {
  cedar.preparsePolicySet('bench-empty', { staticPolicies: {} });
  const call = (i: number) => {
    const uid = { type: 'Tether::File', id: `${WS}/src/f${i}.ts` };
    return {
      principal: { type: 'Tether::Agent', id: 'sess-1' }, action: { type: 'Tether::Action', id: 'read' }, resource: uid, context: {},
      preparsedPolicySetId: 'bench-empty',
      entities: [{ uid, attrs: { inWorkspace: true, hardLinked: false, lowerPath: uid.id, protected: false }, parents: [] }],
    };
  };
  for (let i = 0; i < 2_000; i++) cedar.statefulIsAuthorized(call(i));
  const n = 10_000;
  const t = performance.now();
  for (let i = 0; i < n; i++) cedar.statefulIsAuthorized(call(i));
  return ((performance.now() - t) / n) * 1000;
}
