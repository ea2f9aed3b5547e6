// `tether demo`: the real pipeline (agent process, broker, Cedar policy,
// consent, audit, egress gateway) against a built-in scripted model, so a new
// user sees Tether work without an API key. The model is canned and says so.

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FixedConsent } from '../host/consent.ts';
import { NoteSigningKey } from '../host/keychain/note-key.ts';
import { StaticKeyStore } from '../host/keychain/static-key-store.ts';
import { startHeadlessHost } from '../host/headless-host.ts';
import { createDemoScript, DEMO_LABEL, DEMO_MODEL, startScriptedModel } from '../host/scripted-model.ts';
import type { Io } from './tether.ts';
import { runTask } from './tether.ts';
import { paint, TtyConsent } from './tty-consent.ts';

export async function runDemo(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      workspace: { type: 'string' },
      provider: { type: 'string', default: 'anthropic' },
      'audit-dir': { type: 'string' },
      'on-ask': { type: 'string' },
    },
  });
  const provider = values.provider === 'openai' ? 'openai' : 'anthropic';
  const workspace = values.workspace ?? (await mkdtemp(join(tmpdir(), 'tether-demo-')));
  if (!values.workspace) {
    await writeFile(join(workspace, 'README.md'), '# demo project\n\nA tiny workspace created by `tether demo`.\n');
    await writeFile(join(workspace, '.env'), 'DATABASE_PASSWORD=not-a-real-secret\n');
  }
  const interactive = process.stdin.isTTY && process.stdout.isTTY && values['on-ask'] === undefined;
  io.stdout(paint.bold(`Tether demo ${DEMO_LABEL}\n`));
  io.stdout(`workspace: ${workspace}\n`);
  io.stdout(
    interactive
      ? 'The agent will read a file, ask to write one (you answer), and try to read .env (policy forbids it).\n\n'
      : `Not a terminal: "ask" decisions are answered "${values['on-ask'] === 'deny' ? 'deny' : 'allow once'}" automatically (--on-ask).\n\n`,
  );
  const model = await startScriptedModel({ script: createDemoScript() });
  const key = NoteSigningKey.generate('tether-demo');
  try {
    const host = await startHeadlessHost({
      workspace,
      provider,
      model: DEMO_MODEL,
      baseUrl: provider === 'openai' ? `${model.url}/v1` : model.url,
      consent: interactive ? new TtyConsent() : new FixedConsent(values['on-ask'] === 'deny' ? 'deny' : 'once'),
      ...(values['audit-dir'] ? { auditDir: values['audit-dir'] } : { auditDir: join(workspace, '..', `${workspace.split('/').pop()}-audit`) }),
      dataDir: join(workspace, '..', `${workspace.split('/').pop()}-data`),
      apiKey: () => 'demo-key-not-secret',
      // The demo must run anywhere, keychain or not: its audit log is signed with a throwaway key.
      keyStore: new StaticKeyStore(key, 'a throwaway key made for this demo (not the OS keychain)'),
    });
    const pubkey = `${host.auditDir}.pub`;
    await writeFile(pubkey, `${key.verifierKey}\n`);
    const code = await runTask(host, 'Look around this project, leave a short NOTES.md, and check its configuration.', io);
    io.stdout(`\nThe audit log is signed (demo key). Check it: tether audit verify ${host.auditDir} --pubkey ${pubkey}\n`);
    return code;
  } finally {
    await model.close();
  }
}
