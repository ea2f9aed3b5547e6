// Broker overhead (issue: the brokered agent): 5,000 reads of 4 KB files, 500
// writes and 50 lists sent from a real agent process over ACP through schema
// validation, the workspace jail, Cedar and a durable (fsync'd) audit log,
// compared with the same operations done directly in one process. Also: CPU
// per operation on each side (robust to a loaded machine, unlike latency) and
// Cedar decisions/s over this run's own requests.
//
// The measured run follows a warm-up of WARMUP_OPS operations of the same mix
// on other files (JIT and wasm tier-up; the policy memo stays cold for the
// measured paths), as a host that has been running a while would be.
//
// Where the time goes: each op's round trip is split at the host's transport
// (request bytes in, response out) and at each step of Broker.execute (their
// diagnostics channels: brokerSteps, transportMessages), and checked against
// GC pauses in either process (both report on the monotonic clock).
//
// BENCH_AUDIT_DIR=/dev/shm puts the audit log on tmpfs, BENCH_WS_DIR=/dev/shm
// the workspace (together: the floor without any disk at all);
// BENCH_CPU_PROF=DIR writes CPU profiles of the measured run only: the host's
// (host.cpuprofile) and the agent process's.
import { closeSync, constants as FS, openSync, readdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver } from 'node:perf_hooks';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CapabilityRequest } from '../../src/common/capability.ts';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type AgentStarter, ForkAgentStarter } from '../../src/host/agent-starter.ts';
import { transportMessages, type TransportMessage } from '../../src/host/acp-transport.ts';
import { SignedAuditLog } from '../../src/host/audit/signed-audit-log.ts';
import { NoteSigningKey } from '../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../src/host/keychain/static-key-store.ts';
import { FixedConsent } from '../../src/host/consent.ts';
import { CedarPolicyEngine } from '../../src/host/policy/cedar-policy-engine.ts';
import { brokerSteps, type BrokerStep } from '../../src/host/broker.ts';
import { TetherSession } from '../../src/host/session.ts';
import { f, FILES, LISTS, measuredOps, type Op, pct, READS, WARMUP_OPS, warmupOps, WRITES } from './broker-ops.ts';

/**
 * What the disks under the run cost by themselves (they vary a lot between
 * machines, and on this project's CI VM between directories): creating a 4 KB
 * file and renaming it into place in `ws`, and a 700-byte O_DSYNC overwrite in
 * `audit`, 300 of each.
 */
function diskProbe(ws: string, audit: string): string {
  const data = Buffer.alloc(4096, 120);
  const create: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    const fd = openSync(join(ws, `.probe-${i}.tmp`), 'wx');
    writeSync(fd, data);
    closeSync(fd);
    renameSync(join(ws, `.probe-${i}.tmp`), join(ws, `.probe-${i}`));
    create.push(performance.now() - t);
  }
  const sync: number[] = [];
  const fd = openSync(join(audit, '.probe'), FS.O_RDWR | FS.O_CREAT | (process.platform === 'linux' ? FS.O_DSYNC : 0));
  writeSync(fd, Buffer.alloc(300 * 700));
  const rec = Buffer.alloc(700, 120);
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    writeSync(fd, rec, 0, rec.length, i * 700);
    sync.push(performance.now() - t);
  }
  closeSync(fd);
  return `disks: creating a file in the workspace ${f(pct(create, 50))} / ${f(pct(create, 99))}, an O_DSYNC record write in the audit directory ${f(pct(sync, 50))} / ${f(pct(sync, 99))} (p50 / p99)`;
}

/** Milliseconds on CLOCK_MONOTONIC, as the replay agent reports them. */
const toClock = Number(process.hrtime.bigint()) / 1e6 - performance.now();
type Pause = [start: number, ms: number];
/** GC pause time of `pauses` inside [start, start + ms]. */
const pausedIn = (pauses: readonly Pause[], start: number, ms: number) =>
  pauses.reduce((sum, [s, d]) => (s < start + ms && s + d > start ? sum + d : sum), 0);
const gcSummary = (pauses: readonly Pause[]) =>
  `${pauses.length} pauses, ${pauses.reduce((a, [, d]) => a + d, 0).toFixed(1)} ms in all, longest ${Math.max(0, ...pauses.map(([, d]) => d)).toFixed(1)} ms`;

/** Per thread of `pid`: its name, CPU time and run-queue time (runnable, waiting for a CPU), in ms; Linux only (/proc schedstat). */
function threadTimes(pid: number): Map<number, { name: string; ran: number; waited: number }> {
  const out = new Map<number, { name: string; ran: number; waited: number }>();
  if (process.platform !== 'linux') return out;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [ran, waited] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map((n) => Number(n) / 1e6);
      out.set(Number(tid), { name: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(), ran: ran!, waited: waited! });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/**
 * How each process's main thread and its other threads shared the CPUs over
 * the measured run: time run, and time runnable but waiting for a CPU (a
 * request or a reply that has arrived is not handled while its thread waits).
 */
function schedulingSummary(label: string, pid: number, before: ReturnType<typeof threadTimes>, after: ReturnType<typeof threadTimes>): string {
  let main = { ran: 0, waited: 0 };
  const others = new Map<string, number>();
  for (const [tid, t] of after) {
    const b = before.get(tid) ?? { ran: 0, waited: 0 };
    const d = { ran: t.ran - b.ran, waited: t.waited - b.waited };
    if (tid === pid) main = d;
    else others.set(t.name, (others.get(t.name) ?? 0) + d.ran);
  }
  const rest = [...others].filter(([, ms]) => ms >= 1).map(([name, ms]) => `${name} ${ms.toFixed(0)}`).join(', ');
  return `${label} main thread ran ${main.ran.toFixed(0)} ms and waited ${main.waited.toFixed(0)} ms for a CPU${rest ? `; its other threads ran (ms) ${rest}` : ''}`;
}

export default async function bench(): Promise<void> {
  const ws = await mkdtemp(join(process.env['BENCH_WS_DIR'] ?? tmpdir(), 'tether-bench-ws-'));
  for (const prefix of ['d', 'warm']) {
    for (let d = 0; d < 10; d++) await mkdir(join(ws, `${prefix}${d}`));
    for (let i = 0; i < FILES; i++) await writeFile(join(ws, `${prefix}${i % 10}`, `f${i}.txt`), 'y'.repeat(4096));
  }
  const ops = measuredOps();
  const warmup = warmupOps();

  const profDir = process.env['BENCH_CPU_PROF'];
  // Writes are allowed by a user policy here so the benchmark measures the machinery, not a person.
  const policyDir = await mkdtemp(join(tmpdir(), 'tether-bench-policy-'));
  const userPolicy = join(policyDir, 'bench.cedar');
  await writeFile(userPolicy, '@id("bench-writes")\n@description("benchmark: writes in the workspace without asking")\npermit (principal, action == Tether::Action::"write", resource is Tether::File) when { resource.inWorkspace };\n');
  const policy = await CedarPolicyEngine.load({ userFiles: [userPolicy] });
  const auditDir = await mkdtemp(join(process.env['BENCH_AUDIT_DIR'] ?? tmpdir(), 'tether-bench-audit-'));
  const probeDirs = [join(ws, '.probe'), join(auditDir, '.probe')] as const;
  for (const d of probeDirs) await mkdir(d);
  const probe = diskProbe(...probeDirs);
  for (const d of probeDirs) await rm(d, { recursive: true });
  // The signed Merkle log sessions use (key given to the process: the keychain is not what is measured).
  // Commits as the headless CLI makes them (on the event loop's thread), or as
  // the desktop app does (libuv's thread pool) with BENCH_AUDIT_COMMIT=pool.
  const commitInPlace = process.env['BENCH_AUDIT_COMMIT'] !== 'pool';
  const audit = await SignedAuditLog.open({ dir: auditDir, keyStore: new StaticKeyStore(NoteSigningKey.generate('bench')), commitInPlace });
  const fork = new ForkAgentStarter(join(import.meta.dirname, 'fixtures/replay-agent.ts'), profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
  let agentPid = 0;
  const starter: AgentStarter = {
    start: async (o) => {
      const p = await fork.start(o);
      agentPid = p.pid ?? 0;
      return p;
    },
  };
  const session = await TetherSession.start({
    workspace: ws,
    policy,
    audit,
    consent: new FixedConsent('deny'),
    model: { provider: 'anthropic', model: 'none', baseUrl: 'http://127.0.0.1:9', token: 'x' },
    starter,
  });
  const hostGc: Pause[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) hostGc.push([toClock + e.startTime, e.duration]);
  });
  const decided: CapabilityRequest[] = [];
  session.broker.onDidDecide((e) => decided.push(e.request));
  type Replay = { _meta: { lat: Record<string, number[]>; totalMs: number; cpuMs: number; starts: number[]; gcPauses: Pause[] } };
  const agent = (session as unknown as { connection: { agent: { request: (m: string, p: unknown) => Promise<Replay>; notify: (m: string, p: unknown) => Promise<void> } } }).connection.agent;
  const replay = (list: Op[]) => agent.request('session/prompt', { sessionId: session.id, prompt: [{ type: 'text', text: JSON.stringify(list) }] });
  await replay(warmup);
  decided.length = 0;
  // The measured run's timeline, in order (one request in flight at a time).
  const inAt: number[] = [];
  const outAt: number[] = [];
  const steps: Record<BrokerStep['step'], number[]> = { decided: [], submitted: [], recorded: [], ready: [], done: [] };
  const onMessage = (m: unknown) => {
    const { dir, kind, at } = m as TransportMessage;
    if (dir === 'in' && kind === 'request') inAt.push(at);
    else if (dir === 'out' && kind === 'response') outAt.push(at);
  };
  const onStep = (m: unknown) => steps[(m as BrokerStep).step].push((m as BrokerStep).at);
  subscribe(transportMessages.name, onMessage);
  subscribe(brokerSteps.name, onStep);

  const inspector = profDir ? new Session() : undefined;
  if (inspector) {
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.start');
  }
  gcObserver.observe({ entryTypes: ['gc'] });
  const threads0 = [threadTimes(process.pid), threadTimes(agentPid)] as const;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const res = await replay(ops);
  const wall = performance.now() - started;
  unsubscribe(transportMessages.name, onMessage);
  unsubscribe(brokerSteps.name, onStep);
  const hostCpu = process.cpuUsage(cpu0);
  const threads1 = [threadTimes(process.pid), threadTimes(agentPid)] as const;
  gcObserver.disconnect();
  if (inspector) {
    const { profile } = await inspector.post('Profiler.stop');
    await writeFile(join(profDir!, 'host.cpuprofile'), JSON.stringify(profile));
    inspector.disconnect();
    await agent.notify('session/cancel', { sessionId: session.id }); // the profiled agent exits on it and writes its profile
    await new Promise((r) => setTimeout(r, 3000));
  }
  await session.close();
  await audit.close();

  // The same operations directly, in one process.
  const direct: Record<string, number[]> = { read: [], write: [], list: [] };
  const content = 'x'.repeat(4096);
  const d0 = performance.now();
  for (const op of ops) {
    const s = performance.now();
    if (op.kind === 'read') await readFile(join(ws, op.path), 'utf8');
    else if (op.kind === 'write') await writeFile(join(ws, op.path), content);
    else await readdir(join(ws, op.path), { withFileTypes: true });
    direct[op.kind]!.push(performance.now() - s);
  }
  const directTotal = performance.now() - d0;

  const { lat, totalMs, cpuMs } = res._meta;
  const all = [...lat['read']!, ...lat['write']!, ...lat['list']!];
  console.log(`ops: ${READS} reads (4 KB), ${WRITES} writes (4 KB), ${LISTS} lists after ${WARMUP_OPS} warm-up ops on other files; agent process → ACP → validate → jail → Cedar → fsync'd audit → effect → audit → back`);
  console.log(`audit commits ${commitInPlace ? "on the event loop's thread, as the headless CLI makes them (BENCH_AUDIT_COMMIT=pool: on the thread pool, as the desktop app)" : "on libuv's thread pool, as the desktop app makes them"}`);
  console.log(probe);
  console.log('kind    brokered p50 / p99          direct p50 / p99');
  for (const k of ['read', 'write', 'list']) {
    console.log(`${k.padEnd(7)} ${f(pct(lat[k]!, 50))} / ${f(pct(lat[k]!, 99))}      ${f(pct(direct[k]!, 50))} / ${f(pct(direct[k]!, 99))}`);
  }
  console.log(`all     ${f(pct(all, 50))} / ${f(pct(all, 99))}   (target: brokered p99 ≤ 1 ms per op)`);
  console.log('        (what this machine allows for the same mix: broker-floor, above)');
  // Where the tail is: the first request for a path (policy memo miss, first resolution of
  // that file) against repeats, and the slowest ops by position in the run.
  const seen = new Set<string>();
  const index: Record<string, number> = { read: 0, write: 0, list: 0 };
  const firstTouch: number[] = [];
  const repeat: number[] = [];
  const slowest: { ms: number; at: number; kind: string; first: boolean }[] = [];
  ops.forEach((op, at) => {
    const ms = lat[op.kind]![index[op.kind]!++]!;
    const first = !seen.has(`${op.kind}:${op.path}`);
    seen.add(`${op.kind}:${op.path}`);
    (first ? firstTouch : repeat).push(ms);
    slowest.push({ ms, at, kind: op.kind, first });
  });
  console.log(`first touch of a path (${firstTouch.length} ops) ${f(pct(firstTouch, 50))} / ${f(pct(firstTouch, 99))}; repeats (${repeat.length}) ${f(pct(repeat, 50))} / ${f(pct(repeat, 99))}`);
  slowest.sort((a, b) => b.ms - a.ms);
  const top = slowest.slice(0, Math.ceil(all.length / 100));
  console.log(`the slowest 1% (${top.length} ops): ${top.filter((t) => t.first).length} first touches, ${top.filter((t) => t.kind === 'write').length} writes; positions ${top.slice(0, 12).map((t) => t.at).sort((a, b) => a - b).join(' ')}…`);
  console.log(`total: brokered ${totalMs.toFixed(0)} ms (${(all.length / (totalMs / 1000)).toFixed(0)} ops/s, wall ${wall.toFixed(0)} ms), direct ${directTotal.toFixed(0)} ms; ratio ${(totalMs / directTotal).toFixed(1)}×`);
  // Each op's round trip = the host's share + the rest (agent process, its SDK, two pipe hops).
  // One request in flight at a time: the i-th of each list belongs to the i-th op, and each op's marks are in order.
  const counts = [inAt.length, outAt.length, ...Object.values(steps).map((x) => x.length)];
  if (counts.some((n) => n !== ops.length)) throw new Error(`timeline: ${counts.join(', ')} marks (requests in, responses out, ${Object.keys(steps).join(', ')}) for ${ops.length} ops`);
  const seen2: Record<string, number> = { read: 0, write: 0, list: 0 };
  const trips = ops.map((op, i) => {
    const ms = lat[op.kind]![seen2[op.kind]!++]!;
    const start = res._meta.starts[i]!; // monotonic clock
    const marks = [start - toClock, inAt[i]!, steps.decided[i]!, steps.submitted[i]!, steps.recorded[i]!, steps.ready[i]!, steps.done[i]!, outAt[i]!, start - toClock + ms];
    if (marks.slice(2, -1).some((t, j) => t < marks[j + 1]!)) throw new Error(`timeline: the marks of op ${i} are out of order`);
    return { kind: op.kind, ms, host: outAt[i]! - inAt[i]!, start, legs: marks.slice(1).map((t, j) => t - marks[j]!) };
  });
  const host = trips.map((t) => t.host);
  const rest = trips.map((t) => t.ms - t.host);
  console.log(`host share (request bytes in → response out): p50 ${f(pct(host, 50))} / p99 ${f(pct(host, 99))}; the rest (agent process, SDKs, pipes): p50 ${f(pct(rest, 50))} / p99 ${f(pct(rest, 99))}`);
  // Each leg's p50 / p99 by kind, and its mean over the slowest 1% of all ops.
  const LEGS = ['agent→host', 'validate+resolve+policy', 'audit record', 'commit wait', 'groundwork', 'effect', 'reply (after-hooks included)', 'host→agent'];
  const legRow = (label: string, ts: typeof trips, stat: (xs: number[]) => string) => console.log(`  ${label.padEnd(14)}${LEGS.map((l, j) => `${l} ${stat(ts.map((t) => t.legs[j]!))}`).join(' · ')}`);
  const p5099 = (xs: number[]) => `${pct(xs, 50).toFixed(3)}/${pct(xs, 99).toFixed(3)}`;
  console.log('where the time goes (ms, p50/p99; "audit record" includes its write when the commit is in place):');
  legRow('reads', trips.filter((t) => t.kind === 'read'), p5099);
  legRow('writes', trips.filter((t) => t.kind === 'write'), p5099);
  legRow('slowest 1%', [...trips].sort((a, b) => b.ms - a.ms).slice(0, Math.ceil(trips.length / 100)), (xs) => `${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3)} mean`);
  const agentGc = res._meta.gcPauses;
  console.log(`GC during the run: host ${gcSummary(hostGc)}; agent ${gcSummary(agentGc)}`);
  const slow = trips.filter((t) => t.ms > 1);
  const inGc = slow.filter((t) => pausedIn(hostGc, t.start, t.ms) + pausedIn(agentGc, t.start, t.ms) > 0.1);
  const slowReads = slow.filter((t) => t.kind !== 'write' && !inGc.includes(t));
  console.log(`ops over 1 ms: ${slow.length} (${(100 * slow.length / trips.length).toFixed(1)}%): ${slow.filter((t) => t.kind === 'write').length} writes, ${inGc.length} overlapping a GC pause, ${slowReads.length} other reads/lists of which ${slowReads.filter((t) => t.host > t.ms / 2).length} spent most of it in the host`);
  const µs = (ms: number) => `${((ms * 1000) / all.length).toFixed(0)} µs`;
  console.log(`cpu per op: host ${µs((hostCpu.user + hostCpu.system) / 1000)} (all its threads), agent ${µs(cpuMs)}`);
  if (process.platform === 'linux') {
    console.log(`scheduling over the ${totalMs.toFixed(0)} ms run (/proc schedstat, ${availableParallelism()} CPUs): ${schedulingSummary('host', process.pid, threads0[0], threads1[0])}; ${schedulingSummary('agent', agentPid, threads0[1], threads1[1])}`);
  }
  console.log(`policy memo: ${JSON.stringify(policy.memoStats())}`);

  // Cedar alone over the requests this run decided: as the broker sees them
  // (memo on, fresh engine) and with every decision going to Cedar (memo off).
  const rate = (engine: CedarPolicyEngine) => {
    for (const r of decided.slice(0, 500)) engine.decide(r); // warm-up (JIT, wasm tier-up)
    const t = performance.now();
    for (const r of decided) engine.decide(r);
    return Math.round(decided.length / ((performance.now() - t) / 1000));
  };
  const memo = rate(await CedarPolicyEngine.load({ userFiles: [userPolicy] }));
  const cold = rate(await CedarPolicyEngine.load({ userFiles: [userPolicy], cacheSize: 0 }));
  console.log(`cedar decisions/s over this run's ${decided.length} requests: ${memo} with the memo, ${cold} without (target ≥ 25,000/s)`);
  await Promise.all([ws, policyDir, auditDir].map((d) => rm(d, { recursive: true, force: true })));
}
