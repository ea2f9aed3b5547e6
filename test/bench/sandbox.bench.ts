// Sandbox overhead: `true` and a 1,000-line `cat` run through the sandboxed
// path (pty + limits launcher + bubblewrap + seccomp helper + bash) against a
// plain child_process.spawn of the same `bash -c` line, median of many runs.
// Also shown: the pty alone (no sandbox), and the whole terminal/create →
// wait_for_exit path (parse, policy, durable audit, change accounting).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn as spawnPty } from 'node-pty';
import { parseShell } from '../../src/common/shell-parse.ts';
import { JsonlAuditWriter } from '../../src/host/audit/jsonl-audit-writer.ts';
import { Broker } from '../../src/host/broker.ts';
import { FixedConsent, GrantStore } from '../../src/host/consent.ts';
import { BubblewrapSandbox } from '../../src/host/sandbox/bubblewrap-sandbox.ts';
import { buildCommandEnv } from '../../src/host/sandbox/sandbox-env.ts';
import { TerminalService } from '../../src/host/terminal/terminal-service.ts';

const RUNS = 41;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function time(fn: () => Promise<void>, runs = RUNS): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

function plain(line: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('/bin/bash', ['-c', line], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout.resume();
    c.stderr.resume();
    c.on('error', reject);
    c.on('close', () => resolve());
  });
}

function ptyOnly(line: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve) => {
    const p = spawnPty('/bin/bash', ['--noprofile', '--norc', '-c', line], { cwd, env, cols: 120, rows: 30 });
    p.onData(() => {});
    p.onExit(() => resolve());
  });
}

export default async function (): Promise<void> {
  const base = mkdtempSync(join(import.meta.dirname, '..', '..', '.cache', 'bench-sandbox-'));
  mkdirSync(join(base, 'ws'));
  const ws = join(base, 'ws');
  writeFileSync(join(ws, 'lines.txt'), Array.from({ length: 1000 }, (_, i) => `line ${i} of the benchmark file`).join('\n') + '\n');
  const sb = await BubblewrapSandbox.create();
  if (sb.unavailable) {
    console.log(`sandbox unavailable: ${sb.unavailable.reason}`);
    return;
  }
  const env = buildCommandEnv({ host: process.env, tmpDir: '/tmp' }).env;
  const profile = sb.profile(ws);
  const sandboxed = async (line: string) => {
    const p = await sb.run({ line, cwd: ws, env, profile });
    p.onData(() => {});
    await p.exited;
  };

  const audit = await JsonlAuditWriter.open(join(base, 'audit'));
  const allow = { decide: () => ({ effect: 'allow' as const, policyIds: ['bench'], reason: 'bench' }), rule: () => undefined };
  const broker = new Broker({ policy: allow, consent: new FixedConsent('once'), grants: new GrantStore(), audit, actor: { user: 'b', device: 'b', agent: 'b' }, consentTimeoutMs: 1000 });
  const service = new TerminalService({ broker, sandbox: sb, workspace: ws });
  const full = async (line: string) => {
    const { terminalId } = await service.create({ sessionId: 'bench', command: line });
    await service.waitForExit({ sessionId: 'bench', terminalId });
    service.release({ sessionId: 'bench', terminalId });
  };

  console.log(`median of ${RUNS} runs, ms (machine: ${(await import('node:os')).cpus().length} cores, load ${(await import('node:os')).loadavg()[0]!.toFixed(2)})`);
  console.log('command              plain-spawn   pty-only   sandboxed   added   terminal/create→exit');
  for (const [name, line] of [['true', 'true'], ['cat 1000 lines', 'cat lines.txt']] as const) {
    const tPlain = await time(() => plain(line, ws, env));
    const tPty = await time(() => ptyOnly(line, ws, env));
    const tSandbox = await time(() => sandboxed(line));
    const tFull = await time(() => full(line), 21);
    console.log(`${name.padEnd(20)} ${tPlain.toFixed(1).padStart(11)} ${tPty.toFixed(1).padStart(10)} ${tSandbox.toFixed(1).padStart(11)} ${(tSandbox - tPlain).toFixed(1).padStart(7)} ${tFull.toFixed(1).padStart(22)}`);
  }
  const parseLine = 'cd src && npm ci --no-audit 2>&1 | tee ../build.log && git diff --stat > /dev/null; echo "done $(date)"';
  const t = performance.now();
  for (let i = 0; i < 2000; i++) parseShell(parseLine, { env });
  console.log(`parseShell of a compound line: ${(((performance.now() - t) / 2000) * 1000).toFixed(1)} µs`);

  await service.dispose();
  await audit.close();
  await sb.dispose();
  rmSync(base, { recursive: true, force: true });
}
