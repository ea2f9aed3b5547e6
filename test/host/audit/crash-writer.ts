// Child process for the crash suite: opens the signed log and appends under
// load from several concurrent writers, printing "<seq> <hash>" for every
// acknowledged record, until it is killed. Usage: node crash-writer.ts DIR
// (the signing key comes in TETHER_TEST_SIGNER_KEY). With `--once N` it
// appends N records, prints them, closes the log and exits instead.
import { SignedAuditLog } from '../../../src/host/audit/signed-audit-log.ts';
import { StaticKeyStore } from '../../../src/host/keychain/static-key-store.ts';

const dir = process.argv[2]!;
const log = await SignedAuditLog.open({ dir, keyStore: new StaticKeyStore(process.env.TETHER_TEST_SIGNER_KEY!), checkpointEvery: 40, segmentMaxBytes: 16_000 });
process.stdout.write('ready\n');
const once = process.argv[3] === '--once' ? Number(process.argv[4]) : undefined;
if (once !== undefined) {
  for (let i = 0; i < once; i++) {
    const r = await log.append({ type: 'session.start', session: `once-${i}` });
    process.stdout.write(`${r.seq} ${r.hash}\n`);
  }
  await log.close();
  process.exit(0);
}
for (let w = 0; w < 6; w++) {
  void (async () => {
    for (let i = 0; ; i++) {
      const r = await log.append({ type: 'decision', session: `w${w}`, request: { id: `${w}-${i}`, method: 'fs/write_text_file', action: 'write', kind: 'write', path: `/w/${'d/'.repeat(i % 7)}f${i}` }, decision: { effect: 'ask', allowed: true, policyIds: ['ask-writes'], decidedBy: 'user', reason: 'ok' } });
      process.stdout.write(`${r.seq} ${r.hash}\n`);
    }
  })();
}
