// `tether checkpoints list|diff|restore|usage`: the checkpoint store from the
// command line. A restore shows its plan (files, conflicts, diff) and asks
// y/N on a terminal; `--yes` confirms non-interactively, `--force` also
// overwrites files changed outside Tether. Without a terminal and without
// `--yes`, a restore is refused: nothing is ever restored unconfirmed.
//
// A restore goes through the broker like the app's "undo to here": policy
// decides it, the y/N answer (or --yes, recorded as a preset) is the consent,
// and the decision and outcome are in the audit log (--audit-dir).

import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { CheckpointError, CheckpointStore } from '../host/checkpoints/checkpoint-store.ts';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SignedAuditLog } from '../host/audit/signed-audit-log.ts';
import { KeyringKeyStore } from '../host/keychain/keyring-key-store.ts';
import { Broker } from '../host/broker.ts';
import { restoreThroughBroker } from '../host/checkpoints/brokered-restore.ts';
import { FixedConsent, GrantStore } from '../host/consent.ts';
import { defaultDataDir } from '../host/data-dir.ts';
import { CedarPolicyEngine } from '../host/policy/cedar-policy-engine.ts';
import type { CheckpointInfo, RestorePlan } from '../host/checkpoints/checkpoint-types.ts';
import { colourDiff } from './tty-consent.ts';

export interface CheckpointsCommandIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** For the y/N prompt; defaults to process.stdin. Asked only when it is a TTY. */
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

const USAGE = `usage: tether checkpoints <command> --workspace DIR [--data-dir DIR] [options]

commands:
  list                      checkpoints of the workspace, newest first (--json for JSON)
  diff [ID [ID2]]           changes from checkpoint ID (default: the latest) to ID2 or the workspace
  restore ID                put the files of checkpoint ID back (asks y/N; --yes to confirm)
  usage                     space used by the workspace's checkpoints

options:
  --path P                  only this file or directory (repeatable; diff and restore)
  --yes                     restore without asking
  --force                   restore over files changed outside Tether since the latest checkpoint
  --data-dir DIR            Tether's data directory (default: $TETHER_DATA_DIR or the platform's)
  --audit-dir DIR           where a restore is audited (default: DATA_DIR/audit)

ID is a checkpoint number (as in \`list\`), an id or an id prefix.
`;

export async function runCheckpointsCommand(args: string[], io: CheckpointsCommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        workspace: { type: 'string', short: 'w' },
        'data-dir': { type: 'string' },
        'audit-dir': { type: 'string' },
        path: { type: 'string', multiple: true },
        yes: { type: 'boolean', short: 'y' },
        force: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    io.stderr.write(`tether checkpoints: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values: opts, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (opts.help || command === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  const maxArgs: Record<string, number> = { list: 0, diff: 2, restore: 1, usage: 0 };
  if (command === undefined || !(command in maxArgs)) {
    io.stderr.write(`tether checkpoints: ${command === undefined ? 'a command is needed' : `unknown command "${command}"`}\n\n${USAGE}`);
    return 2;
  }
  if (rest.length > maxArgs[command]!) {
    io.stderr.write(`tether checkpoints ${command}: too many arguments (${rest.join(' ')})\n\n${USAGE}`);
    return 2;
  }
  if (command === 'restore' && rest.length === 0) {
    io.stderr.write('tether checkpoints restore: which checkpoint? Give its number or id (see `tether checkpoints list`).\n');
    return 2;
  }
  if (!opts.workspace) {
    io.stderr.write('tether checkpoints: --workspace DIR is required\n');
    return 2;
  }

  let store: CheckpointStore | undefined;
  try {
    store = await CheckpointStore.open({ workspace: opts.workspace, dataDir: opts['data-dir'] ?? defaultDataDir() });
    for (const note of store.recovered) io.stderr.write(`note: ${note}\n`);
    const paths = opts.path ?? [];
    switch (command) {
      case 'list': {
        const all = await store.list();
        if (opts.json) io.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
        else if (all.length === 0) io.stdout.write(`no checkpoints for ${store.workspace}\n`);
        else for (const c of all) io.stdout.write(describe(c));
        return 0;
      }
      case 'diff': {
        const from = rest[0] ?? (await store.latest())?.id;
        if (from === undefined) {
          io.stderr.write(`no checkpoints for ${store.workspace} yet\n`);
          return 1;
        }
        const d = await store.diff(from, { paths, ...(rest[1] !== undefined ? { to: rest[1] } : {}) });
        io.stdout.write(d.diff === '' ? `no differences between checkpoint ${d.from.seq} and ${d.to === 'workspace' ? 'the workspace' : `checkpoint ${d.to.seq}`}\n` : colourDiff(d.diff));
        return 0;
      }
      case 'usage': {
        const u = await store.usage();
        io.stdout.write(`${u.checkpoints} checkpoints, ${u.objects} objects, ${mib(u.bytes)} (${mib(u.allocatedBytes)} on disk) in ${store.storeDir}\n`);
        return 0;
      }
      case 'restore':
        return await restore(store, rest[0]!, paths, {
          yes: opts.yes ?? false,
          force: opts.force ?? false,
          dataDir: opts['data-dir'],
          auditDir: opts['audit-dir'] ?? join(opts['data-dir'] ?? defaultDataDir(), 'audit'),
        }, io);
    }
    return 2;
  } catch (e) {
    const message = e instanceof CheckpointError || (e as Error).name === 'StoreBusyError' ? (e as Error).message : `${(e as Error).name}: ${(e as Error).message}`;
    io.stderr.write(`tether checkpoints ${command}: ${message}\n`);
    return 1;
  } finally {
    await store?.close().catch(() => {});
  }
}

interface RestoreFlags {
  readonly yes: boolean;
  readonly force: boolean;
  readonly dataDir: string | undefined;
  readonly auditDir: string;
}

async function restore(store: CheckpointStore, id: string, paths: string[], flags: RestoreFlags, io: CheckpointsCommandIo): Promise<number> {
  const plan = await store.planRestore(id, { paths });
  if (plan.files.length === 0) {
    io.stdout.write(`${plan.summary}\n`);
    return 0;
  }
  io.stdout.write(preview(plan));
  if (plan.conflicts.length > 0 && !flags.force) {
    io.stderr.write(`refused: ${plan.conflicts.length} file${plan.conflicts.length === 1 ? ' was' : 's were'} changed outside Tether since the latest checkpoint (marked ! above). Restoring would overwrite those changes; run again with --force to overwrite them.\n`);
    return 1;
  }
  if (!flags.yes) {
    const stdin = io.stdin ?? process.stdin;
    if (!stdin.isTTY) {
      io.stderr.write('refused: a restore needs confirmation; run it in a terminal to answer y/N, or pass --yes.\n');
      return 1;
    }
    const answer = await ask(stdin, io, `Restore ${plan.files.length} file${plan.files.length === 1 ? '' : 's'} from checkpoint ${plan.checkpoint.seq}? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) {
      io.stderr.write('not restored.\n');
      return 1;
    }
  }
  const audit = await SignedAuditLog.open({ dir: flags.auditDir, keyStore: new KeyringKeyStore() });
  let result;
  try {
    const broker = new Broker({
      policy: await CedarPolicyEngine.load({ protectedPaths: [flags.auditDir] }),
      consent: flags.yes ? new FixedConsent('once', '--yes') : { ask: async () => 'once' }, // the y/N above was the user's answer
      grants: new GrantStore(),
      audit,
      actor: { user: process.env['USER'] ?? 'unknown', device: hostname(), agent: 'tether-cli' },
      consentTimeoutMs: 60_000,
    });
    result = await restoreThroughBroker({ broker, store, sessionId: 'cli', checkpoint: id, paths, overwriteConflicts: flags.force });
  } finally {
    await audit.close();
  }
  io.stdout.write(`restored ${result.plan.files.length} file${result.plan.files.length === 1 ? '' : 's'} from checkpoint ${plan.checkpoint.seq}.`);
  const dataDir = flags.dataDir ? ` --data-dir ${quoteArg(flags.dataDir)}` : '';
  io.stdout.write(result.undoId ? ` To undo: tether checkpoints restore ${result.undoId.slice(0, 12)} --workspace ${quoteArg(store.workspace)}${dataDir}\n` : '\n');
  return 0;
}

function preview(plan: RestorePlan): string {
  const mark: Record<string, string> = { create: 'A', overwrite: 'M', delete: 'D' };
  let out = `${plan.summary}\n\n`;
  for (const f of plan.files) out += `  ${f.conflict ? '!' : ' '} ${mark[f.action]} ${JSON.stringify(f.path).slice(1, -1)}${f.conflict ? `  (${f.conflict})` : ''}\n`;
  return `${out}\n${colourDiff(plan.diff)}\n`;
}

function describe(c: CheckpointInfo): string {
  const shown = c.changed.slice(0, 3).map((p) => JSON.stringify(p.path).slice(1, -1)).join(', ');
  const more = c.changed.length > 3 ? `, +${c.changed.length - 3} more` : '';
  return `#${c.seq}  ${c.id.slice(0, 12)}  ${c.time}  ${c.kind.padEnd(14)}  session ${c.sessionId} turn ${c.turn}  ${c.changed.length} changed: ${shown}${more}${c.skipped.length ? `  (${c.skipped.length} skipped)` : ''}\n`;
}

function ask(stdin: NodeJS.ReadableStream, io: CheckpointsCommandIo, question: string): Promise<string> {
  io.stderr.write(question);
  const rl = createInterface({ input: stdin, terminal: false });
  return new Promise((resolve) => {
    let done = false;
    rl.once('line', (line) => {
      done = true;
      rl.close();
      resolve(line);
    });
    rl.once('close', () => {
      if (!done) resolve('');
    });
  });
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function quoteArg(s: string): string {
  return /^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
