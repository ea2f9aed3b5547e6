// Broker overhead (issue: the brokered agent): 5,000 reads of 4 KB files, 500
// writes and 50 lists sent from a real agent process over ACP through schema
// validation, the workspace jail, Cedar and a durable (fsync'd) audit log,
// compared with the same operations done directly in one process.
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForkAgentStarter } from '../../src/host/agent-starter.ts';
import { JsonlAuditWriter } from '../../src/host/audit/jsonl-audit-writer.ts';
import { FixedConsent } from '../../src/host/consent.ts';
import { CedarPolicyEngine } from '../../src/host/policy/cedar-policy-engine.ts';
import { TetherSession } from '../../src/host/session.ts';

const READS = 5000;
const WRITES = 500;
const LISTS = 50;
const FILES = 500;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const f = (ms: number) => `${ms.toFixed(3)} ms`;

export default async function bench(): Promise<void> {
  const ws = await mkdtemp(join(tmpdir(), 'tether-bench-ws-'));
  for (let d = 0; d < 10; d++) await mkdir(join(ws, `d${d}`));
  for (let i = 0; i < FILES; i++) await writeFile(join(ws, `d${i % 10}`, `f${i}.txt`), 'y'.repeat(4096));
  const ops: { kind: 'read' | 'write' | 'list'; path: string }[] = [];
  for (let i = 0; i < READS; i++) ops.push({ kind: 'read', path: `d${i % 10}/f${i % FILES}.txt` });
  for (let i = 0; i < WRITES; i++) ops.splice(i * 11, 0, { kind: 'write', path: `d${i % 10}/w${i}.txt` });
  for (let i = 0; i < LISTS; i++) ops.splice(i * 100, 0, { kind: 'list', path: `d${i % 10}` });

  // Writes are allowed by a user policy here so the benchmark measures the machinery, not a person.
  const policyDir = await mkdtemp(join(tmpdir(), 'tether-bench-policy-'));
  const userPolicy = join(policyDir, 'bench.cedar');
  await writeFile(userPolicy, '@id("bench-writes")\n@description("benchmark: writes in the workspace without asking")\npermit (principal, action == Tether::Action::"write", resource is Tether::File) when { resource.inWorkspace };\n');
  const policy = await CedarPolicyEngine.load({ userFiles: [userPolicy] });
  const audit = await JsonlAuditWriter.open(await mkdtemp(join(process.env['BENCH_AUDIT_DIR'] ?? tmpdir(), 'tether-bench-audit-')));
  const session = await TetherSession.start({
    workspace: ws,
    policy,
    audit,
    consent: new FixedConsent('deny'),
    model: { provider: 'anthropic', model: 'none', baseUrl: 'http://127.0.0.1:9', token: 'x' },
    starter: new ForkAgentStarter(join(import.meta.dirname, 'fixtures/replay-agent.ts')),
  });
  const started = performance.now();
  const res = (await (session as unknown as { connection: { agent: { request: (m: string, p: unknown) => Promise<{ _meta: { lat: Record<string, number[]>; totalMs: number } }> } } }).connection.agent.request('session/prompt', {
    sessionId: session.id,
    prompt: [{ type: 'text', text: JSON.stringify(ops) }],
  }));
  const wall = performance.now() - started;
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

  const { lat, totalMs } = res._meta;
  const all = [...lat['read']!, ...lat['write']!, ...lat['list']!];
  console.log(`ops: ${READS} reads (4 KB), ${WRITES} writes (4 KB), ${LISTS} lists; agent process → ACP → validate → jail → Cedar → fsync'd audit → effect → audit → back`);
  console.log('kind    brokered p50 / p99          direct p50 / p99');
  for (const k of ['read', 'write', 'list']) {
    console.log(`${k.padEnd(7)} ${f(pct(lat[k]!, 50))} / ${f(pct(lat[k]!, 99))}      ${f(pct(direct[k]!, 50))} / ${f(pct(direct[k]!, 99))}`);
  }
  console.log(`all     ${f(pct(all, 50))} / ${f(pct(all, 99))}   (target: brokered p99 ≤ 1 ms per op)`);
  console.log(`total: brokered ${totalMs.toFixed(0)} ms (${(all.length / (totalMs / 1000)).toFixed(0)} ops/s, wall ${wall.toFixed(0)} ms), direct ${directTotal.toFixed(0)} ms; ratio ${(totalMs / directTotal).toFixed(1)}×`);
  console.log(`policy memo: ${JSON.stringify(policy.memoStats())}`);
}
