// run_command end to end: the real agent asks for a terminal, the host parses
// and decides the line, asks once, runs it in the real bubblewrap sandbox,
// accounts for the files it changed, audits, and checkpoints them.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sequenceScript, toolHistory } from '../../src/host/scripted-model.ts';
import { ScriptedUser, startTestHost, type TestHost } from '../support/test-host.ts';

let t: TestHost | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('shell commands through the agent', () => {
  it('asks once for a compound command, runs it sandboxed, and audits and checkpoints what it changed', async () => {
    const user = new ScriptedUser(() => 'once');
    t = await startTestHost({
      provider: 'anthropic',
      user,
      script: sequenceScript({ toolCalls: [{ name: 'run_command', input: { command: 'echo built > out.txt && cat out.txt' } }] }, { text: 'done' }),
    });
    await t.host.session.prompt('build');
    expect(await readFile(join(t.workspace, 'out.txt'), 'utf8')).toBe('built\n');
    expect(user.questions).toHaveLength(1);
    const q = user.questions[0]!;
    expect(q.preview.type).toBe('exec');
    expect(q.preview.type === 'exec' && q.preview.command).toBe('echo built > out.txt && cat out.txt');
    expect(q.preview.type === 'exec' && q.preview.sandbox !== 'unsandboxed' && q.preview.sandbox.network).toBe('none');
    const [first] = toolHistory(t.model.requests.at(-1)!.conversation!);
    expect(first!.result!.content).toContain('built');

    const records = await t.audit();
    const outcome = records.find((r) => r.type === 'outcome' && r.request?.kind === 'exec')!;
    expect(outcome.outcome).toMatchObject({ ok: true, exitCode: 0 });
    expect(outcome.outcome!.changedFiles).toEqual([expect.objectContaining({ path: join(t.workspace, 'out.txt'), change: 'created' })]);
    const checkpoints = await t.host.session.listCheckpoints();
    expect(checkpoints[0]!.changed.map((c) => c.path)).toContain('out.txt');
  });

  it('denies a command that writes to a secret, whatever the user would say', async () => {
    const user = new ScriptedUser(() => 'once');
    const ws = await mkdtemp(join(tmpdir(), 'tether-ws-'));
    await writeFile(join(ws, '.env'), 'A=1\n');
    t = await startTestHost({
      provider: 'openai',
      user,
      workspace: ws,
      script: sequenceScript({ toolCalls: [{ name: 'run_command', input: { command: 'echo B=2 >> .env' } }] }, { text: 'done' }),
    });
    await t.host.session.prompt('edit env');
    expect(await readFile(join(ws, '.env'), 'utf8')).toBe('A=1\n');
    expect(user.questions).toEqual([]);
    const [first] = toolHistory(t.model.requests.at(-1)!.conversation!);
    expect(first!.result!.content).toMatch(/secret-env-files/);
  });
});
