// Consent latency: from the moment the agent's write request reaches the host
// to the moment the consent dialog for it is on screen and interactive in the
// browser (open, its buttons enabled, focus inside it, at the next animation
// frame), over N requests. Real path: agent process → ACP → jail → Cedar →
// diff preview → broker → UI consent → dev bridge WebSocket → renderer.
// Also: the renderer bundle size (raw and gzip).
//
// Clocks: the host stamps with performance.timeOrigin + now(); the page does
// the same, and the offset between the two is measured with round trips and
// subtracted (error ≤ half the best round trip, printed).

import { gzipSync } from 'node:zlib';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyMessage } from '@agentclientprotocol/sdk';
import { ForkAgentStarter, type AgentProcess, type AgentStarter, type AgentStartOptions } from '../../src/host/agent-starter.ts';
import { startDevHost } from '../../src/host/dev-bridge/dev-host.ts';
import { NoteSigningKey } from '../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../src/host/keychain/static-key-store.ts';
import { toolHistory, type ModelScript } from '../../src/host/scripted-model.ts';
import { buildRenderer, launchChromium } from '../renderer/support/browser.ts';

const N = Number(process.env['TETHER_BENCH_CONSENT_N'] ?? 100);
const now = () => performance.timeOrigin + performance.now();

/** Stamps each write request the agent sends, keyed by its path, as it arrives at the host. */
class StampingStarter implements AgentStarter {
  readonly arrivals = new Map<string, number>();
  private readonly inner = new ForkAgentStarter();
  async start(opts?: AgentStartOptions): Promise<AgentProcess> {
    const p = await this.inner.start(opts);
    const arrivals = this.arrivals;
    const tap = new TransformStream<AnyMessage, AnyMessage>({
      transform(msg, controller) {
        const m = msg as { method?: string; params?: { path?: string } };
        if (m.method === 'fs/write_text_file' && m.params?.path) arrivals.set(m.params.path, now());
        controller.enqueue(msg);
      },
    });
    return { ...p, stream: { readable: p.stream.readable.pipeThrough(tap), writable: p.stream.writable } };
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

interface Asset { name: string; raw: number; gzip: number; initial: boolean }

/** Every asset, and whether index.html loads it up front (the rest load on demand). */
async function bundleSize(dir: string): Promise<Asset[]> {
  const html = await readFile(join(dir, 'index.html'), 'utf8');
  const files: Asset[] = [{ name: 'index.html', raw: (await stat(join(dir, 'index.html'))).size, gzip: gzipSync(html, { level: 9 }).length, initial: true }];
  for (const name of await readdir(join(dir, 'assets'))) {
    const buf = await readFile(join(dir, 'assets', name));
    files.push({ name, raw: buf.length, gzip: gzipSync(buf, { level: 9 }).length, initial: html.includes(`assets/${name}`) });
  }
  return files;
}

function kib(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

export default async function consentLatency(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'tether-bench-consent-'));
  const workspace = join(tmp, 'workspace');
  await mkdir(workspace);
  await writeFile(join(workspace, 'README.md'), '# bench\n');
  const starter = new StampingStarter();
  // The model asks for one write per turn step; each gets its own dialog.
  const script: ModelScript = (conv) => {
    const i = toolHistory(conv).length;
    if (i >= N) return { text: 'done' };
    const content = Array.from({ length: 40 }, (_, k) => `export const v${k} = ${i * 100 + k}; // line ${k}`).join('\n') + '\n';
    return { toolCalls: [{ name: 'write_file', input: { path: `bench/file-${i}.ts`, content } }] };
  };
  const staticRoot = await buildRenderer(join(tmp, 'renderer'));
  const size = await bundleSize(staticRoot);
  const dev = await startDevHost({ workspace, dataDir: join(tmp, 'data'), staticRoot, demoScript: script, starter: () => starter, consentTimeoutMs: 60_000, maxTurns: N + 5,
    keyStore: new StaticKeyStore(NoteSigningKey.generate('tether-bench'), 'a key made for this benchmark'),
  });
  // When the host hands each question to the UI transport: splits the latency into host and UI parts.
  const asked = new Map<string, number>();
  dev.host.service.onDidEmit((e) => {
    if (e.name === 'consentAsked') asked.set((e.payload as { request: { relPath?: string } }).request.relPath ?? '', now());
  });
  const context = await launchChromium(join(tmp, 'profile'));
  try {
    const page = await context.newPage();
    // In the page: when a consent dialog is open and interactive, stamp it at the next frame, then allow it.
    await page.addInitScript(() => {
      const seen = new Set<string>();
      const w = window as unknown as { __shown: Record<string, number> };
      w.__shown = {};
      const check = () => {
        const d = document.querySelector<HTMLDialogElement>('dialog.consent[open]');
        if (!d) return;
        const id = d.dataset['question'] ?? '';
        const target = d.querySelector('.target code')?.textContent ?? '';
        const allow = [...d.querySelectorAll('button')].find((b) => b.textContent?.includes('Allow once'));
        if (!id || seen.has(id) || !allow || allow.disabled || !d.contains(document.activeElement)) return;
        seen.add(id);
        requestAnimationFrame(() => {
          w.__shown[target] = performance.timeOrigin + performance.now();
          allow.click();
        });
      };
      new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true });
      document.addEventListener('focusin', check);
    });
    await page.goto(dev.bridge.pageUrl);
    await page.getByRole('button', { name: 'I understand' }).click();
    await page.getByRole('button', { name: 'Choose…' }).click();
    await page.getByLabel('Provider').selectOption('scripted');
    await page.getByLabel('Task').fill('bench: write files');
    // Clock offset page − host, from the round trip with the smallest delay.
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < 30; i++) {
      const t0 = now();
      const pageNow = await page.evaluate(() => performance.timeOrigin + performance.now());
      const t1 = now();
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: pageNow - (t0 + t1) / 2 };
    }
    const started = now();
    await page.getByRole('button', { name: 'Start session' }).click();
    await page.waitForFunction((n) => Object.keys((window as unknown as { __shown: Record<string, number> }).__shown).length >= n, N, { timeout: 300_000, polling: 200 });
    const total = now() - started;
    const shown = await page.evaluate(() => (window as unknown as { __shown: Record<string, number> }).__shown);
    const byIndex: number[] = [];
    const hostPart: number[] = [];
    const uiPart: number[] = [];
    for (const [path, at] of Object.entries(shown)) {
      const arrived = [...starter.arrivals].find(([p]) => p.endsWith(path) || path.endsWith(p))?.[1];
      const i = Number(/file-(\d+)\.ts$/.exec(path)?.[1]);
      if (arrived !== undefined && Number.isInteger(i)) byIndex[i] = at - best.offset - arrived;
      const handed = asked.get(path);
      if (arrived !== undefined && handed !== undefined) {
        hostPart.push(handed - arrived);
        uiPart.push(at - best.offset - handed);
      }
    }
    hostPart.sort((a, b) => a - b);
    uiPart.sort((a, b) => a - b);
    const half = (xs: number[]) => percentile([...xs].filter((x) => x !== undefined).sort((a, b) => a - b), 0.5);
    const latencies = byIndex.filter((x) => x !== undefined).sort((a, b) => a - b);
    const f = (ms: number) => `${ms.toFixed(1)} ms`;
    console.log(`consent latency, agent request → dialog visible and interactive (${latencies.length} of ${N} requests matched):`);
    console.log(`  p50 ${f(percentile(latencies, 0.5))}  p95 ${f(percentile(latencies, 0.95))}  max ${f(latencies.at(-1)!)}  min ${f(latencies[0]!)}  (target p95 ≤ 100 ms)`);
    console.log(`  host (request → question handed to the UI): p50 ${f(percentile(hostPart, 0.5))} p95 ${f(percentile(hostPart, 0.95))}; UI (→ visible and interactive): p50 ${f(percentile(uiPart, 0.5))} p95 ${f(percentile(uiPart, 0.95))}`);
    console.log(`  p50 of the first half ${f(half(byIndex.slice(0, N / 2)))}, of the second half ${f(half(byIndex.slice(N / 2)))} (the timeline grows meanwhile)`);
    console.log(`  clock offset page−host ${f(best.offset)} ± ${f(best.rtt / 2)}; ${N} consented writes in ${(total / 1000).toFixed(1)} s`);
    const sum = (xs: Asset[], k: 'raw' | 'gzip') => xs.reduce((a, x) => a + x[k], 0);
    const initial = size.filter((x) => x.initial);
    const lazy = size.filter((x) => !x.initial);
    console.log(`renderer bundle: loaded at start ${kib(sum(initial, 'raw'))} raw / ${kib(sum(initial, 'gzip'))} gzip; on demand ${kib(sum(lazy, 'raw'))} / ${kib(sum(lazy, 'gzip'))}`);
    for (const x of size) console.log(`  ${x.name.padEnd(28)} ${kib(x.raw).padStart(10)} ${kib(x.gzip).padStart(10)} gzip${x.initial ? '' : '  (on demand)'}`);
  } finally {
    await context.close();
    await dev.close();
    await rm(tmp, { recursive: true, force: true });
  }
}
