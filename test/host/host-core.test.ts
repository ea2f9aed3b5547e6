// The assembly the desktop app and the CLI share, against real parts: Cedar
// policy, the signed audit log, the egress gateway, forked agent processes,
// checkpoint stores and the scripted model on loopback.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditRecords } from '../../src/host/audit/read-records.ts';
import { SHIP_TOKEN_ENV } from '../../src/host/audit/ship-target.ts';
import { verifyAuditDir } from '../../src/host/audit/audit-verifier.ts';
import { HostCore } from '../../src/host/host-core.ts';
import { NoteSigningKey } from '../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../src/host/keychain/static-key-store.ts';
import { startScriptedModel, toolHistory, type ScriptedModelServer } from '../../src/host/scripted-model.ts';
import { ScriptedUser } from '../support/test-host.ts';
import { LoopbackCollector } from './audit/loopback-collector.ts';

let tmp: string;
let model: ScriptedModelServer;
const key = NoteSigningKey.generate('tether-test');

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tether-core-'));
  // Each session writes one file named after its task, then ends its turn.
  model = await startScriptedModel({
    script: (conv) => {
      const task = conv.messages.find((m) => m.role === 'user')?.text ?? '';
      return toolHistory(conv).length === 0 ? { toolCalls: [{ name: 'write_file', input: { path: `${task}.txt`, content: `${task}\n` } }] } : { text: 'done' };
    },
  });
});
afterAll(async () => {
  await model.close();
  await rm(tmp, { recursive: true, force: true });
});

async function workspace(name: string): Promise<string> {
  const ws = await mkdtemp(join(tmp, `${name}-`));
  await writeFile(join(ws, 'README.md'), `# ${name}\n`);
  return ws;
}

describe('HostCore', () => {
  it('runs sessions on one policy, audit log and gateway; each brokers its own model calls and checkpoints; close ends all and seals the log', async () => {
    const dataDir = await mkdtemp(join(tmp, 'data-'));
    const core = await HostCore.start({
      dataDir, modelProviders: [model.url], getApiKey: () => 'upstream-key', commands: false,
      keyStore: new StaticKeyStore(key, 'a key made for this test'),
    });
    const user = new ScriptedUser(() => 'once');
    const start = async (ws: string) => core.startSession({ workspace: ws, provider: 'anthropic', model: 'scripted', upstreamBaseUrl: model.url, consent: user });
    const [wsA, wsB] = [await workspace('a'), await workspace('b')];
    const a = await start(wsA);
    const b = await start(wsB);
    expect(core.sessions()).toHaveLength(2);
    await a.session.prompt('alpha');
    await b.session.prompt('beta');
    expect(await readFile(join(wsA, 'alpha.txt'), 'utf8')).toBe('alpha\n');
    expect(await readFile(join(wsB, 'beta.txt'), 'utf8')).toBe('beta\n');
    // Each session's store holds its own workspace's checkpoints.
    expect((await a.session.listCheckpoints()).flatMap((c) => c.changed.map((f) => f.path))).toContain('alpha.txt');
    expect((await b.session.listCheckpoints()).flatMap((c) => c.changed.map((f) => f.path))).not.toContain('alpha.txt');

    await a.close();
    expect(core.sessions()).toEqual([b]);
    await expect(a.session.prompt('again')).rejects.toThrow(/closed/);
    await core.close();
    expect(core.sessions()).toEqual([]);

    const records = await readAuditRecords(core.auditDir);
    const modelDecisions = records.filter((r) => r.type === 'decision' && r.request?.kind === 'model');
    // Model calls were decided by each session's broker, in the shared log.
    expect(new Set(modelDecisions.map((r) => r.session))).toEqual(new Set([a.session.id, b.session.id]));
    expect(records.filter((r) => r.type === 'session.end').map((r) => r.session).sort()).toEqual([a.session.id, b.session.id].sort());
    const report = await verifyAuditDir(core.auditDir, { trustedKeys: [key.verifierKey] });
    expect(report.ok).toBe(true);
  });

  it('ships the audit log to a collector while sessions run, and hands it the rest on close', async () => {
    const collector = new LoopbackCollector('ship-token', [key.verifier()]);
    await collector.start();
    process.env[SHIP_TOKEN_ENV] = 'ship-token';
    try {
      const core = await HostCore.start({
        dataDir: await mkdtemp(join(tmp, 'data-')), modelProviders: [model.url], getApiKey: () => 'upstream-key', commands: false,
        keyStore: new StaticKeyStore(key, 'a key made for this test'), ship: [collector.url],
      });
      const s = await core.startSession({ workspace: await workspace('shipped'), provider: 'anthropic', model: 'scripted', upstreamBaseUrl: model.url, consent: new ScriptedUser(() => 'once') });
      await s.session.prompt('gamma');
      await core.close();
      const records = await readAuditRecords(core.auditDir);
      expect([...collector.seqs.keys()].sort((x, y) => x - y)).toEqual(records.map((r) => r.seq));
      expect(collector.checkpointsAccepted).toBeGreaterThanOrEqual(1);
      expect(core.shipping()[0]).toMatchObject({ backlogRecords: 0, nextSeq: records.length });
    } finally {
      delete process.env[SHIP_TOKEN_ENV];
      await collector.stop();
    }
  });

  it('refuses to start with a collector it cannot ship to safely, saying why', async () => {
    await expect(HostCore.start({
      dataDir: await mkdtemp(join(tmp, 'data-')), modelProviders: [model.url], commands: false,
      keyStore: new StaticKeyStore(key, 'a key made for this test'), ship: ['http://siem.example/in'],
    })).rejects.toThrow(/records would leave this machine unencrypted; use https/);
  });

  it('a session that cannot start leaves nothing open, and the host keeps working', async () => {
    const core = await HostCore.start({
      dataDir: await mkdtemp(join(tmp, 'data-')), modelProviders: [model.url], getApiKey: () => 'upstream-key', commands: false,
      keyStore: new StaticKeyStore(key, 'a key made for this test'),
    });
    try {
      const user = new ScriptedUser(() => 'once');
      await expect(core.startSession({ workspace: join(tmp, 'no-such-folder'), provider: 'anthropic', model: 'scripted', upstreamBaseUrl: model.url, consent: user })).rejects.toThrow(/no-such-folder/);
      expect(core.sessions()).toEqual([]);
      const ok = await core.startSession({ workspace: await workspace('c'), provider: 'anthropic', model: 'scripted', upstreamBaseUrl: model.url, consent: user });
      expect(core.sessions()).toEqual([ok]);
    } finally {
      await core.close();
    }
  });
});
