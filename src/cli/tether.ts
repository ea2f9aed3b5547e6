#!/usr/bin/env node
// `tether`: the headless host and its tools.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SessionNotification } from '@agentclientprotocol/sdk';
import { sinkFor } from '../host/audit/ship-target.ts';
import type { DecisionEvent, OutcomeEvent } from '../host/broker.ts';
import { FixedConsent, type ConsentPort } from '../host/consent.ts';
import { startHeadlessHost, type HeadlessHost } from '../host/headless-host.ts';
import type { Provider } from '../host/session.ts';
import { paint, TtyConsent } from './tty-consent.ts';

const HELP = `tether — a brokered host for coding agents

Usage:
  tether run --workspace DIR [options] "task"   run the built-in agent on a task, headless
  tether demo [--workspace DIR]                  the same pipeline against a built-in scripted model
  tether policy test|explain|validate …          test and explain Cedar policy (tether policy --help)
  tether checkpoints list|diff|restore|usage …   undo the agent's changes (tether checkpoints --help)
  tether audit verify|prove|export|pubkey|ship … check, export and ship the signed audit log (tether audit --help)
  tether --help                                  this text

run options:
  --workspace DIR          the folder the agent works in (required)
  --provider P             anthropic (default) or openai (OpenAI-compatible: also Ollama, vLLM, LM Studio)
  --model M                model name (default per provider)
  --base-url URL           provider base URL (the egress gateway forwards only there)
  --policy FILE            add a user Cedar policy file (repeatable); it must parse and validate
  --managed-policy FILE    add a managed (MDM) policy file (repeatable); highest precedence
  --on-ask deny|allow      answer for "ask" decisions when there is no terminal (default deny)
  --audit-dir DIR          where the audit log goes (default: DATA_DIR/audit)
  --data-dir DIR           Tether's data directory, for checkpoints and the audit log (default: $TETHER_DATA_DIR or the platform's)
  --no-checkpoints         do not checkpoint the agent's changes (they cannot be undone)
  --no-commands            do not offer the agent shell commands at all
  --allow-domain D         a domain commands may reach through the sandbox proxy, if policy allows (repeatable)
  --ship URL               ship the audit log to a collector as it is written (repeatable): https://…,
                           splunk+https://… (token: $TETHER_SHIP_TOKEN), relp+tls://host:port (acknowledged),
                           syslog+tls://host:port; plain http/relp/syslog only to a collector on loopback
  --consent-timeout S      seconds a consent question waits before it is denied (default 300)
  --max-turns N            stop the agent after N model turns

The model API key comes from ANTHROPIC_API_KEY or OPENAI_API_KEY in the host's environment; the
agent process never sees it. Exit status: 0 when the task ended normally, 1 on an error, 2 on bad usage.
`;

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const io: Io = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      io.stdout(HELP);
      return command === undefined ? 2 : 0;
    case 'run':
      return runCommand(rest);
    case 'demo':
      return (await import('./demo-command.ts')).runDemo(rest, io);
    case 'policy':
      return (await import('./policy-command.ts')).runPolicyCommand(rest, io);
    case 'audit': {
      const { runAuditCommand } = await import('./audit-command.ts');
      const { defaultDataDir } = await import('../host/data-dir.ts');
      const { CedarPolicyEngine } = await import('../host/policy/cedar-policy-engine.ts');
      const { readFile } = await import('node:fs/promises');
      return runAuditCommand(rest, {
        stdout: process.stdout,
        stderr: process.stderr,
        auditDir: join(defaultDataDir(), 'audit'),
        // The built-in policy goes into evidence bundles unless --policy names others.
        policiesInForce: async () => {
          const engine = await CedarPolicyEngine.load();
          return Promise.all(engine.files.map(async (f) => ({ name: f.file, text: await readFile(f.file, 'utf8') })));
        },
      });
    }
    case 'checkpoints':
      return (await import('./checkpoints-command.ts')).runCheckpointsCommand(rest, { stdout: process.stdout, stderr: process.stderr });
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      workspace: { type: 'string' },
      provider: { type: 'string', default: 'anthropic' },
      model: { type: 'string' },
      'base-url': { type: 'string' },
      policy: { type: 'string', multiple: true },
      'managed-policy': { type: 'string', multiple: true },
      'on-ask': { type: 'string', default: 'deny' },
      'audit-dir': { type: 'string' },
      'data-dir': { type: 'string' },
      'no-checkpoints': { type: 'boolean' },
      'no-commands': { type: 'boolean' },
      'allow-domain': { type: 'string', multiple: true },
      ship: { type: 'string', multiple: true },
      'consent-timeout': { type: 'string' },
      'max-turns': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (!values.workspace) throw new UsageError('--workspace DIR is required');
  const task = positionals.join(' ').trim();
  if (!task) throw new UsageError('give the task as the last argument, e.g. tether run --workspace . "fix the failing test"');
  if (values.provider !== 'anthropic' && values.provider !== 'openai') throw new UsageError(`--provider must be anthropic or openai, not "${values.provider}"`);
  if (values['on-ask'] !== 'deny' && values['on-ask'] !== 'allow') throw new UsageError(`--on-ask must be deny or allow, not "${values['on-ask']}"`);
  for (const target of values.ship ?? []) {
    try {
      sinkFor(target);
    } catch (e) {
      throw new UsageError(`--ship ${(e as Error).message}`);
    }
  }
  const provider: Provider = values.provider;
  const consent: ConsentPort = process.stdin.isTTY && process.stdout.isTTY ? new TtyConsent() : new FixedConsent(values['on-ask'] === 'allow' ? 'once' : 'deny');
  const host = await startHeadlessHost({
    workspace: values.workspace,
    provider,
    ...(values.model ? { model: values.model } : {}),
    ...(values['base-url'] ? { baseUrl: values['base-url'] } : {}),
    policyFiles: values.policy ?? [],
    managedPolicyFiles: values['managed-policy'] ?? [],
    ...(values['audit-dir'] ? { auditDir: values['audit-dir'] } : {}),
    ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
    checkpoints: !values['no-checkpoints'],
    commands: !values['no-commands'],
    ...(values['allow-domain'] ? { networkDomains: values['allow-domain'] } : {}),
    ...(values.ship ? { ship: values.ship } : {}),
    consent,
    ...(values['consent-timeout'] ? { consentTimeoutMs: positiveInt(values['consent-timeout'], '--consent-timeout') * 1000 } : {}),
    ...(values['max-turns'] ? { maxTurns: positiveInt(values['max-turns'], '--max-turns') } : {}),
  });
  return runTask(host, task, io);
}

/** Runs one task on a started host, printing progress; closes the host. */
export async function runTask(host: HeadlessHost, task: string, out: Io): Promise<number> {
  const { session } = host;
  const stopProgress = printProgress(host, out);
  const onSigint = () => {
    out.stderr('\ntether: stopping the agent (Ctrl-C again to force)\n');
    process.off('SIGINT', onSigint);
    void session.stop();
  };
  process.on('SIGINT', onSigint);
  try {
    const result = await session.prompt(task);
    out.stdout(`\n${paint.dim(`— ${result.stopReason} · trace ${result.traceId} · audit log ${host.auditDir}`)}\n`);
    return result.stopReason === 'end_turn' || result.stopReason === 'cancelled' ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    stopProgress();
    await host.close();
  }
}

function printProgress(host: HeadlessHost, out: Io): () => void {
  const { session } = host;
  let midLine = false;
  const line = (s: string) => {
    out.stdout(`${midLine ? '\n' : ''}${s}\n`);
    midLine = false;
  };
  const subs = [
    session.onDidUpdate((n: SessionNotification) => {
      const u = n.update;
      if (u.sessionUpdate === 'agent_message_chunk' && u.content.type === 'text') {
        out.stdout(u.content.text);
        midLine = !u.content.text.endsWith('\n');
      } else if (u.sessionUpdate === 'tool_call') {
        line(paint.cyan(`→ ${u.title}`));
      }
    }),
    session.broker.onDidDecide((e: DecisionEvent) => {
      const d = e.decision;
      const target = e.request.target?.path ?? e.request.command?.line ?? e.request.url ?? '';
      const rules = d.policy.policyIds.length ? ` [${d.policy.policyIds.join(', ')}]` : '';
      const verdict = d.allowed ? paint.green(`allowed (${d.decidedBy})`) : paint.red(`denied (${d.decidedBy})`);
      line(`  ${verdict} ${e.request.action} ${target}${paint.dim(`${rules} #${e.seq}`)}${d.allowed ? '' : paint.dim(` — ${d.reason}`)}`);
    }),
    session.broker.onDidComplete((e: OutcomeEvent) => {
      if (!e.outcome.ok) line(paint.red(`  failed ${e.request.action}: ${e.outcome.error}`));
    }),
    session.onDidAgentExit((exit) => {
      if (exit.code !== 0 && exit.signal !== 'SIGKILL') line(paint.red(`the agent process exited (code ${exit.code}, signal ${exit.signal})`));
    }),
  ];
  return () => subs.forEach((s) => s());
}

function positiveInt(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive whole number, not "${s}"`);
  return n;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof UsageError) {
        io.stderr(`tether: ${e.message}\nRun "tether --help" for usage.\n`);
        process.exit(2);
      }
      io.stderr(`tether: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
