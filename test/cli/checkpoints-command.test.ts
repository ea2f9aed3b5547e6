import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheckpointsCommand } from '../../src/cli/checkpoints-command.ts';
import { readAuditRecords } from '../../src/host/audit/read-records.ts';
import { CheckpointStore } from '../../src/host/checkpoints/checkpoint-store.ts';
import { cause, tempDir } from '../host/checkpoints/helpers.ts';
import { startSecretService, type SecretService } from '../host/keychain/secret-service.ts';

const fixture = join(import.meta.dirname, 'fixtures', 'checkpoints-cli.ts');

// Restores are audited with the signing key from the OS keychain: a real, private gnome-keyring.
let secrets: SecretService;
beforeAll(async () => {
  secrets = await startSecretService();
  process.env['DBUS_SESSION_BUS_ADDRESS'] = secrets.address;
});
afterAll(() => secrets?.stop());

async function run(args: string[], stdin?: PassThrough) {
  let stdout = '';
  let stderr = '';
  const code = await runCheckpointsCommand(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    ...(stdin ? { stdin } : {}),
  });
  return { code, stdout, stderr };
}

/** A workspace with two checkpoints: a.txt "one" → "two", b.txt added in the second. */
async function workspace() {
  const ws = await tempDir('cli-ws');
  const data = await tempDir('cli-data');
  const store = await CheckpointStore.open({ workspace: ws, dataDir: data });
  await writeFile(join(ws, 'a.txt'), 'one\n');
  const first = await store.checkpoint({ ...cause, turn: 1 });
  await writeFile(join(ws, 'a.txt'), 'two\n');
  await writeFile(join(ws, 'b.txt'), 'bee\n');
  const second = await store.checkpoint({ ...cause, turn: 2 });
  await store.close();
  return { ws, data, first: first!, second: second!, base: ['--workspace', ws, '--data-dir', data] };
}

/** Runs the command in a real pseudo-terminal, answering the y/N prompt. */
function runInTerminal(args: string[], answer: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const term = pty.spawn(process.execPath, [fixture, ...args], { cols: 200, rows: 50, env: { ...process.env, NO_COLOR: '1' } as Record<string, string> });
    let output = '';
    let answered = false;
    term.onData((d) => {
      output += d;
      if (!answered && output.includes('[y/N]')) {
        answered = true;
        term.write(`${answer}\r`);
      }
    });
    term.onExit(({ exitCode }) => resolve({ code: exitCode, output }));
  });
}

describe('tether checkpoints', () => {
  it('lists checkpoints newest first, as text and as JSON', async () => {
    const { base, first, second } = await workspace();
    const text = await run(['list', ...base]);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(new RegExp(`^#2  ${second.id.slice(0, 12)} .* session sess-1 turn 2  2 changed: a.txt, b.txt`));
    expect(text.stdout.split('\n')[1]).toMatch(/^#1 /);
    const json = await run(['list', '--json', ...base]);
    expect((JSON.parse(json.stdout) as { id: string }[]).map((c) => c.id)).toEqual([second.id, first.id]);
  });

  it('prints the diff between checkpoints, and from the latest to the workspace', async () => {
    const { ws, base } = await workspace();
    const between = await run(['diff', '1', '2', ...base]);
    expect(between.stdout).toContain('-one\n+two\n');
    expect(between.stdout).toContain('+++ b/b.txt');
    await writeFile(join(ws, 'a.txt'), 'three\n');
    const latest = await run(['diff', ...base, '--path', 'a.txt']);
    expect(latest.stdout).toContain('-two\n+three\n');
    expect(latest.stdout).not.toContain('b.txt');
  });

  it('refuses a restore without a terminal and without --yes, and changes nothing', async () => {
    const { ws, base } = await workspace();
    const r = await run(['restore', '1', ...base], new PassThrough());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('restore 2 files from checkpoint 1');
    expect(r.stdout).toContain('-two\n+one\n');
    expect(r.stderr).toMatch(/needs confirmation.*--yes/);
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('two\n');
  });

  it('restores with --yes, audits it in the signed log, and prints how to undo it', async () => {
    const { ws, data, base } = await workspace();
    const r = await run(['restore', '1', '--yes', ...base]);
    expect(r.code).toBe(0);
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('one\n');
    const undo = /To undo: tether checkpoints restore ([0-9a-f]{12})/.exec(r.stdout)![1]!;
    expect((await run(['restore', undo, '--yes', ...base])).code).toBe(0);
    expect(await readFile(join(ws, 'b.txt'), 'utf8')).toBe('bee\n');
    const decisions = await readAuditRecords(join(data, 'audit'), (rec) => rec.type === 'decision');
    expect(decisions.map((d) => [d.request!.method, d.decision!.allowed, d.decision!.decidedBy])).toEqual([
      ['tether/restore', true, 'preset'],
      ['tether/restore', true, 'preset'],
    ]);
  });

  it('asks y/N on a terminal and restores only on yes', async () => {
    const { ws, base } = await workspace();
    const no = await runInTerminal(['restore', '1', ...base], 'n');
    expect(no.code).toBe(1);
    expect(no.output).toContain('Restore 2 files from checkpoint 1? [y/N]');
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('two\n');
    const yes = await runInTerminal(['restore', '1', ...base], 'y');
    expect(yes.code).toBe(0);
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('one\n');
  }, 30_000);

  it('refuses to overwrite files changed outside Tether unless --force', async () => {
    const { ws, base } = await workspace();
    await writeFile(join(ws, 'a.txt'), 'edited by hand\n');
    const refused = await run(['restore', '1', '--yes', '--path', 'a.txt', ...base]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/! M a\.txt {2}\(changed outside Tether since checkpoint 2\)/);
    expect(refused.stderr).toMatch(/--force/);
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('edited by hand\n');
    const forced = await run(['restore', '1', '--yes', '--force', '--path', 'a.txt', ...base]);
    expect(forced.code).toBe(0);
    expect(await readFile(join(ws, 'a.txt'), 'utf8')).toBe('one\n');
  });

  it('explains usage errors with exit code 2 and unknown checkpoints with exit code 1', async () => {
    const { base } = await workspace();
    expect((await run(['frobnicate', ...base])).code).toBe(2);
    expect((await run(['restore', ...base])).code).toBe(2);
    expect((await run(['list'])).stderr).toMatch(/--workspace DIR is required/);
    const missing = await run(['restore', '42', '--yes', ...base]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no checkpoint 42/);
  });
});
