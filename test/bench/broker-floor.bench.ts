// This machine's floor for the broker benchmark: the same operation mix, from
// the same agent process (replay-agent.ts, ACP SDK) over the same transport,
// answered by a minimal host with the ACP SDK that does only the work the
// issue requires of each request, in three layers:
//
//   transport  answered from memory (no disk, no checks)
//   + audit    + the effect on real files, a lexical and lstat check of each
//              path component, and one hash-chained record (~460 bytes) per
//              op, written O_DSYNC before the effect
//   + Cedar    + the real policy engine (CedarPolicyEngine, its memo on)
//
// None of this is Tether: there is no jail (no O_NOFOLLOW anchors, identity
// checks or hard-link detection), no schema validation, no Merkle tree, no
// consent, no checkpoint hook. It measures what the machine allows, so the
// broker's figures can be read against it. One thing it does less cleverly
// than the broker: its steps run one after another (the broker stages a
// write, and reads a file, while the decision record is committed, and
// fsyncs a new file after its rename, off the reply), so on a slow disk its
// writes pay more than the broker's. With the workspace and the audit log on
// tmpfs (BENCH_WS_DIR, BENCH_AUDIT_DIR) that difference is gone.
import { closeSync, constants as FS, fstatSync, fsyncSync, lstatSync, openSync, readdirSync, readSync, renameSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, PROTOCOL_VERSION } from '@agentclientprotocol/sdk';
import type { CapabilityAction, CapabilityRequest } from '../../src/common/capability.ts';
import { ForkAgentStarter } from '../../src/host/agent-starter.ts';
import { CedarPolicyEngine } from '../../src/host/policy/cedar-policy-engine.ts';
import { f, FILES, measuredOps, type Op, pct, warmupOps } from './broker-ops.ts';

type Layer = 'transport' | '+ audit' | '+ Cedar';
type Replay = { _meta: { lat: Record<string, number[]>; cpuMs: number } };
interface FileParams { sessionId: string; path: string; content?: string }

const METHOD: Record<Op['kind'], string> = { read: 'fs/read_text_file', write: 'fs/write_text_file', list: '_tether/list' };
const ACTION: Record<Op['kind'], CapabilityAction> = { read: 'read', write: 'write', list: 'list' };

/** A hash-chained JSON-lines log in a preallocated O_DSYNC file: one durable write per record. */
class FloorAudit {
  private readonly fd: number;
  private pos = 0;
  private prev = '0'.repeat(64);
  constructor(file: string) {
    this.fd = openSync(file, FS.O_RDWR | FS.O_CREAT | (process.platform === 'linux' ? FS.O_DSYNC : 0), 0o600);
    writeSync(this.fd, Buffer.alloc(16 << 20)); // the runway: commits overwrite, they do not grow the file
  }
  append(record: object): void {
    const line = Buffer.from(`${JSON.stringify({ ...record, time: new Date().toISOString(), prev: this.prev })}\n`);
    this.prev = createHash('sha256').update(line).digest('hex');
    for (let at = 0; at < line.length; ) at += writeSync(this.fd, line, at, line.length - at, this.pos + at);
    if (process.platform !== 'linux') fsyncSync(this.fd);
    this.pos += line.length;
  }
  close(): void {
    closeSync(this.fd);
  }
}

function floorHost(layer: Layer, ws: string, audit: FloorAudit, policy: CedarPolicyEngine | undefined) {
  const content = 'y'.repeat(4096);
  const buf = Buffer.alloc(1 << 20);
  /** Lexical checks, then lstat of each component: no symlink is followed. */
  const resolve = (rel: string): string => {
    let at = ws;
    for (const part of rel.split('/')) {
      if (part === '' || part === '.' || part === '..' || part.includes('\0')) throw new Error(`refused path ${rel}`);
      at = join(at, part);
      const st = lstatSync(at, { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) throw new Error(`refused symlink ${rel}`);
    }
    return at;
  };
  return (kind: Op['kind'], p: FileParams, id: number): object => {
    if (layer === 'transport') return kind === 'read' ? { content } : kind === 'write' ? {} : { path: p.path, entries: [], truncated: false };
    const path = resolve(p.path);
    let effect = 'allow';
    let policyIds: readonly string[] = ['floor'];
    if (policy) {
      const request: CapabilityRequest = {
        id: String(id), sessionId: p.sessionId, action: ACTION[kind], kind: ACTION[kind], method: METHOD[kind], workspace: ws,
        trace: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) },
        target: { path, relPath: p.path, inWorkspace: true, exists: kind !== 'write', type: kind === 'list' ? 'directory' : 'file', hardLinked: false },
      } as CapabilityRequest;
      ({ effect, policyIds } = policy.decide(request));
    }
    audit.append({ v: 1, type: 'capability.decision', session: p.sessionId, request: { id, method: METHOD[kind], action: kind, target: { path: p.path, inWorkspace: true } }, decision: { effect, policyIds, decidedBy: 'policy' }, trace: '00-' + 'a'.repeat(32) + '-' + 'b'.repeat(16) + '-01' });
    if (effect !== 'allow') throw new Error(`denied: ${policyIds.join(', ')}`);
    if (kind === 'read') {
      const fd = openSync(path, FS.O_RDONLY | FS.O_NOFOLLOW);
      try {
        fstatSync(fd);
        const n = readSync(fd, buf, 0, buf.length, 0);
        return { content: buf.toString('utf8', 0, n) };
      } finally {
        closeSync(fd);
      }
    }
    if (kind === 'write') {
      const tmp = `${path}.floor-tmp`;
      const fd = openSync(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, 0o644);
      try {
        writeSync(fd, p.content ?? '');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      return {};
    }
    return { path: p.path, entries: readdirSync(path, { withFileTypes: true }).map((e) => ({ name: e.name, type: e.isFile() ? 'file' : 'directory' })), truncated: false };
  };
}

async function runLayer(layer: Layer, policyFile: string): Promise<string> {
  const ws = await mkdtemp(join(process.env['BENCH_WS_DIR'] ?? tmpdir(), 'tether-floor-ws-'));
  const auditDir = await mkdtemp(join(process.env['BENCH_AUDIT_DIR'] ?? tmpdir(), 'tether-floor-audit-'));
  for (const prefix of ['d', 'warm']) {
    for (let d = 0; d < 10; d++) await mkdir(join(ws, `${prefix}${d}`));
    for (let i = 0; i < FILES; i++) await writeFile(join(ws, `${prefix}${i % 10}`, `f${i}.txt`), 'y'.repeat(4096));
  }
  const audit = new FloorAudit(join(auditDir, 'log'));
  const policy = layer === '+ Cedar' ? await CedarPolicyEngine.load({ userFiles: [policyFile] }) : undefined;
  const answer = floorHost(layer, ws, audit, policy);
  const agent = await new ForkAgentStarter(join(import.meta.dirname, 'fixtures/replay-agent.ts')).start();
  let id = 0;
  const app = client({ name: 'tether-floor' });
  for (const kind of ['read', 'write', 'list'] as const) {
    app.onRequest(METHOD[kind], (raw: unknown) => raw as FileParams, async ({ params }: { params: FileParams }) => answer(kind, params, ++id));
  }
  const connection = app.connect(agent.stream);
  try {
    await connection.agent.request('initialize', { protocolVersion: PROTOCOL_VERSION, clientCapabilities: {} });
    const { sessionId } = await connection.agent.request('session/new', { cwd: ws, mcpServers: [] });
    const replay = (ops: Op[]) => connection.agent.request('session/prompt', { sessionId, prompt: [{ type: 'text', text: JSON.stringify(ops) }] }) as unknown as Promise<Replay>;
    await replay(warmupOps());
    const cpu0 = process.cpuUsage();
    const { _meta: m } = await replay(measuredOps());
    const cpu = process.cpuUsage(cpu0);
    const all = [...m.lat['read']!, ...m.lat['write']!, ...m.lat['list']!];
    const µs = (ms: number) => `${((ms * 1000) / all.length).toFixed(0)} µs`;
    const row = (k: string, xs: number[]) => `${k} ${f(pct(xs, 50))} / ${f(pct(xs, 99))}`;
    return `${layer.padEnd(10)} ${row('all', all)} · ${row('read', m.lat['read']!)} · ${row('write', m.lat['write']!)} · over 1 ms ${all.filter((x) => x > 1).length} · cpu per op: host ${µs((cpu.user + cpu.system) / 1000)}, agent ${µs(m.cpuMs)}`;
  } finally {
    connection.close();
    agent.kill();
    await agent.exited;
    audit.close();
    await Promise.all([ws, auditDir].map((d) => rm(d, { recursive: true, force: true })));
  }
}

export default async function bench(): Promise<void> {
  const policyDir = await mkdtemp(join(tmpdir(), 'tether-floor-policy-'));
  const policyFile = join(policyDir, 'bench.cedar');
  await writeFile(policyFile, '@id("bench-writes")\npermit (principal, action == Tether::Action::"write", resource is Tether::File) when { resource.inWorkspace };\n');
  console.log('the broker mix through a minimal host (not Tether: what this machine allows; p50 / p99 per op, same agent process and ACP SDK):');
  try {
    for (const layer of ['transport', '+ audit', '+ Cedar'] as const) console.log(await runLayer(layer, policyFile));
  } finally {
    await rm(policyDir, { recursive: true, force: true });
  }
}
