// Every change the agent makes can be undone: checkpoints around brokered
// writes, and a restore that is itself consented, audited and undoable.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sequenceScript } from '../../src/host/scripted-model.ts';
import { fsDecisions, ScriptedUser, startTestHost, type TestHost } from '../support/test-host.ts';

let t: TestHost | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('undo', () => {
  it('checkpoints before the first change of a turn and after each write; a consented restore puts the file back', async () => {
    const user = new ScriptedUser(() => 'once');
    const workspace = await mkdtemp(join(tmpdir(), 'tether-ws-'));
    await writeFile(join(workspace, 'app.ts'), 'working\n');
    t = await startTestHost({
      provider: 'anthropic',
      user,
      workspace,
      script: sequenceScript(
        { toolCalls: [{ name: 'write_file', input: { path: 'app.ts', content: 'broken\n' } }] },
        { toolCalls: [{ name: 'write_file', input: { path: 'new.ts', content: 'x\n' } }] },
        { text: 'done' },
      ),
    });
    const { session } = t.host;
    await session.prompt('edit');
    expect(await readFile(join(t.workspace, 'app.ts'), 'utf8')).toBe('broken\n');

    const list = await session.listCheckpoints();
    // The session's baseline snapshot already matches the state before the turn's first
    // change, so the turn-start checkpoint adds nothing new and is skipped.
    expect(list.map((c) => [c.kind, c.turn, c.changed.map((f) => f.path)])).toEqual([
      ['change', 1, ['new.ts']],
      ['change', 1, ['app.ts']],
      ['turn-start', 0, ['app.ts']],
    ]);
    const before = list.at(-1)!;
    const afterWrite = list.find((c) => c.kind === 'change' && c.changed.some((f) => f.path === 'app.ts'))!;
    expect(afterWrite.requestIds).toHaveLength(1);
    expect(afterWrite.auditSeqs).toHaveLength(1);

    user.questions.length = 0;
    const result = await session.restoreCheckpoint(before.id);
    expect(await readFile(join(t.workspace, 'app.ts'), 'utf8')).toBe('working\n');
    await expect(readFile(join(t.workspace, 'new.ts'))).rejects.toThrow(/ENOENT/);
    // The restore asked, with the plan's diff, and can itself be undone.
    expect(user.questions).toHaveLength(1);
    const preview = user.questions[0]!.preview;
    expect(preview.type).toBe('restore');
    expect(preview.type === 'restore' && preview.diff).toContain('+working');
    expect(result.undoId).toBeTruthy();
    const decisions = fsDecisions(await t.audit(), t.workspace);
    expect(decisions.at(-1)).toEqual(['write', t.workspace, true, 'user']);
  });

  it('a denied restore changes nothing', async () => {
    let answer: 'once' | 'deny' = 'once';
    const user = new ScriptedUser(() => answer);
    t = await startTestHost({ provider: 'openai', user, script: sequenceScript({ toolCalls: [{ name: 'write_file', input: { path: 'a.txt', content: 'new' } }] }, { text: 'ok' }) });
    await writeFile(join(t.workspace, 'a.txt'), 'old');
    await t.host.session.prompt('edit');
    const first = (await t.host.session.listCheckpoints()).at(-1)!;
    answer = 'deny';
    await expect(t.host.session.restoreCheckpoint(first.id)).rejects.toThrow(/denied by the user/);
    expect(await readFile(join(t.workspace, 'a.txt'), 'utf8')).toBe('new');
  });
});
