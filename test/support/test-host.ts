// Starts a complete headless host for integration tests: the real agent
// process, broker, Cedar policy, workspace jail, audit log and egress gateway,
// against the scripted model server on loopback. The only stand-in is the
// user: `ScriptedUser` answers consent questions the way a test says.

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../../src/common/audit-record.ts';
import type { ConsentQuestion } from '../../src/common/consent.ts';
import type { ConsentAnswer } from '../../src/common/decision.ts';
import { readAuditRecords } from '../../src/host/audit/read-records.ts';
import { NoteSigningKey } from '../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../src/host/keychain/static-key-store.ts';
import type { ConsentPort } from '../../src/host/consent.ts';
import { startHeadlessHost, type HeadlessHost } from '../../src/host/headless-host.ts';
import { startScriptedModel, type ModelScript, type ScriptedModelServer } from '../../src/host/scripted-model.ts';

export class ScriptedUser implements ConsentPort {
  readonly questions: ConsentQuestion[] = [];
  private readonly decide: (q: ConsentQuestion) => ConsentAnswer | Promise<ConsentAnswer>;
  constructor(decide: (q: ConsentQuestion) => ConsentAnswer | Promise<ConsentAnswer>) {
    this.decide = decide;
  }
  async ask(q: ConsentQuestion, signal: AbortSignal): Promise<ConsentAnswer> {
    this.questions.push(q);
    const answer = this.decide(q);
    if (!(answer instanceof Promise)) return answer;
    return Promise.race([answer, new Promise<ConsentAnswer>((resolve) => signal.addEventListener('abort', () => resolve('deny')))]);
  }
}

export interface TestHost {
  readonly host: HeadlessHost;
  readonly model: ScriptedModelServer;
  readonly workspace: string;
  readonly user: ScriptedUser;
  audit(): Promise<AuditRecord[]>;
  close(): Promise<void>;
}

export async function startTestHost(opts: {
  provider: 'anthropic' | 'openai';
  script: ModelScript;
  user?: ScriptedUser;
  workspace?: string;
  policyFiles?: string[];
  consentTimeoutMs?: number;
}): Promise<TestHost> {
  const workspace = opts.workspace ?? (await mkdtemp(join(tmpdir(), 'tether-ws-')));
  const auditDir = await mkdtemp(join(tmpdir(), 'tether-audit-'));
  const user = opts.user ?? new ScriptedUser(() => 'deny');
  const model = await startScriptedModel({ script: opts.script });
  const host = await startHeadlessHost({
    workspace,
    provider: opts.provider,
    model: 'scripted',
    baseUrl: opts.provider === 'openai' ? `${model.url}/v1` : model.url,
    consent: user,
    auditDir,
    dataDir: await mkdtemp(join(tmpdir(), 'tether-data-')),
    apiKey: () => 'test-upstream-key',
    // The OS keychain has its own tests against a real gnome-keyring (test/host/keychain).
    keyStore: new StaticKeyStore(NoteSigningKey.generate('tether-test'), 'a key made for this test'),
    ...(opts.policyFiles ? { policyFiles: opts.policyFiles } : {}),
    ...(opts.consentTimeoutMs ? { consentTimeoutMs: opts.consentTimeoutMs } : {}),
  });
  return {
    host,
    model,
    workspace,
    user,
    audit: () => readAuditRecords(auditDir),
    async close() {
      await host.close();
      await model.close();
    },
  };
}

/** Decision records for fs requests, in order: [action, path relative to the workspace, allowed, decidedBy]. */
export function fsDecisions(records: AuditRecord[], workspace: string): [string, string, boolean, string][] {
  return records
    .filter((r) => r.type === 'decision' && r.request?.kind !== 'model')
    .map((r) => [r.request!.action, (r.request!.path ?? '').replace(`${workspace}/`, ''), r.decision!.allowed, r.decision!.decidedBy]);
}
