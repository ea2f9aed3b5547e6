// Egress gateway overhead: the same model requests sent straight to the
// scripted model server and through the gateway (token check, JSON parse,
// secret scan, key injection, metered streaming), plus the secret scanner's
// cost on a large conversation. Loopback only; the scripted server's own time
// is in both columns.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgressGateway } from '../../src/host/egress/gateway.ts';
import { scanPayload } from '../../src/host/egress/payload-scan.ts';
import { startScriptedModel } from '../../src/host/scripted-model.ts';
import { ALLOW_ALL_MODEL_CALLS } from '../support/allow-all-model-calls.ts';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timeRequests(url: string, headers: Record<string, string>, body: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`bench request failed with HTTP ${r.status}: ${text.slice(0, 300)}`);
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

export default async function (): Promise<void> {
  const model = await startScriptedModel({ script: () => ({ text: 'ok '.repeat(50), usage: { inputTokens: 100, outputTokens: 50 } }) });
  const gateway = await EgressGateway.start({ getApiKey: () => ['sk-', 'bench-key-0123456789abcdef'].join('') , authorize: ALLOW_ALL_MODEL_CALLS });
  const s = gateway.openSession({ sessionId: 'bench', provider: 'anthropic', upstreamBaseUrl: model.url });
  // A realistic 40 KB conversation: source text as tool results.
  const source = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'host', 'egress', 'gateway.ts'), 'utf8');
  const messages = [{ role: 'user', content: 'refactor this' }, { role: 'user', content: source }, { role: 'user', content: source.slice(0, 10_000) }];
  for (const stream of [false, true]) {
    const body = JSON.stringify({ model: 'bench', max_tokens: 100, stream, messages });
    const n = 300;
    await timeRequests(`${model.url}/v1/messages`, {}, body, 30);
    await timeRequests(`${s.baseUrl}/v1/messages`, { authorization: `Bearer ${s.token}` }, body, 30);
    const direct = await timeRequests(`${model.url}/v1/messages`, {}, body, n);
    const via = await timeRequests(`${s.baseUrl}/v1/messages`, { authorization: `Bearer ${s.token}` }, body, n);
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    console.log(`${stream ? 'streaming' : 'non-streaming'}, ${(body.length / 1024).toFixed(0)} KB body, ${n} requests:`);
    console.log(`  direct        p50 ${pct(direct, 50).toFixed(2)} ms  p99 ${pct(direct, 99).toFixed(2)} ms`);
    console.log(`  via gateway   p50 ${pct(via, 50).toFixed(2)} ms  p99 ${pct(via, 99).toFixed(2)} ms`);
    console.log(`  overhead      p50 +${(pct(via, 50) - pct(direct, 50)).toFixed(2)} ms, total ratio ${(sum(via) / sum(direct)).toFixed(2)}x`);
  }
  const m = gateway.metrics('bench')!;
  console.log(`  metered: ${m.forwarded} requests, ${m.inputTokens} input / ${m.outputTokens} output tokens, ${(m.bytesSent / 1e6).toFixed(1)} MB sent`);
  await gateway.close();
  await model.close();

  const big = { messages: Array.from({ length: 25 }, () => ({ role: 'user', content: source })) };
  const bytes = JSON.stringify(big).length;
  scanPayload(big);
  const runs = 10;
  const t = performance.now();
  for (let i = 0; i < runs; i++) scanPayload(big);
  const ms = (performance.now() - t) / runs;
  console.log(`secret scan: ${(bytes / 1e6).toFixed(2)} MB conversation in ${ms.toFixed(1)} ms (${((bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s)`);
}
