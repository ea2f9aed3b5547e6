// The renderer's pure helpers: diff parsing, syntax colouring, decision words.
import { createTwoFilesPatch } from 'diff';
import { describe, expect, it } from 'vitest';
import type { CheckpointView, DecisionView } from '../../src/common/ipc-contract.ts';
import { decisionLabel, decisionTone } from '../../renderer/src/lib/describe.ts';
import { parseUnifiedDiff } from '../../renderer/src/lib/diff.ts';
import { languageFor, tokenize } from '../../renderer/src/lib/highlight.ts';
import { changedSummary, undoPoints } from '../../renderer/src/lib/undo.ts';

describe('parseUnifiedDiff', () => {
  it('numbers old and new lines of an edit', () => {
    const d = parseUnifiedDiff(createTwoFilesPatch('a.ts', 'a.ts', 'one\ntwo\nthree\n', 'one\nTWO\nthree\nfour\n'));
    expect(d.added).toBe(2);
    expect(d.removed).toBe(1);
    expect(d.files).toBe(1);
    expect(d.rows.map((r) => [r.kind, r.oldLine ?? null, r.newLine ?? null, r.text])).toEqual([
      ['file', null, null, 'a.ts'],
      ['hunk', null, null, '@@ -1,3 +1,4 @@'],
      ['ctx', 1, 1, 'one'],
      ['del', 2, null, 'two'],
      ['add', null, 2, 'TWO'],
      ['ctx', 3, 3, 'three'],
      ['add', null, 4, 'four'],
    ]);
  });

  it('shows a new file as all additions and a deletion as all removals', () => {
    expect(parseUnifiedDiff(createTwoFilesPatch('/dev/null', 'n.ts', '', 'a\nb\n')).rows.filter((r) => r.kind === 'add')).toHaveLength(2);
    const del = parseUnifiedDiff(createTwoFilesPatch('d.ts', '/dev/null', 'x\ny\nz\n', ''));
    expect([del.added, del.removed]).toEqual([0, 3]);
  });

  it('reads hunks by their counts: a removed "-- x" line is a line, and several files get a row each', () => {
    const two = createTwoFilesPatch('a.sql', 'a.sql', '-- old comment\nselect 1;\n', 'select 1;\n') + createTwoFilesPatch('b.ts', 'b.ts', 'x\n', 'y\n');
    const d = parseUnifiedDiff(two);
    expect(d.files).toBe(2);
    expect(d.rows.filter((r) => r.kind === 'file').map((r) => r.text)).toEqual(['a.sql', 'b.ts']);
    expect(d.rows.filter((r) => r.kind === 'del').map((r) => r.text)).toEqual(['-- old comment', 'x']);
    expect([d.added, d.removed]).toEqual([1, 2]);
  });

  it('keeps the "no newline at end of file" note and unknown lines instead of hiding them', () => {
    const d = parseUnifiedDiff(createTwoFilesPatch('a', 'a', 'x', 'y'));
    expect(d.rows.some((r) => r.kind === 'note' && /No newline/.test(r.text))).toBe(true);
    expect(parseUnifiedDiff('something odd\n').rows).toEqual([{ kind: 'meta', text: 'something odd' }]);
  });
});

describe('highlight', () => {
  it('picks a language family from the file name', () => {
    expect([languageFor('src/a.ts'), languageFor('x/y.py'), languageFor('.env'), languageFor('README.md'), languageFor('Makefile')]).toEqual(['c', 'py', 'sh', 'text', 'sh']);
  });

  it('colours keywords, strings, numbers and comments and keeps every character', () => {
    const line = `const x = "a // b" + 42; // done`;
    const toks = tokenize(line, 'c');
    expect(toks.map((t) => t.text).join('')).toBe(line);
    expect(toks.filter((t) => t.type !== 'plain').map((t) => [t.type, t.text])).toEqual([
      ['kw', 'const'], ['str', '"a // b"'], ['num', '42'], ['com', '// done'],
    ]);
  });

  it('does not treat # inside a word as a comment in shell', () => {
    expect(tokenize('echo a#b # c', 'sh').filter((t) => t.type === 'com').map((t) => t.text)).toEqual(['# c']);
  });

  it('leaves markup-looking text as text (it is rendered as text, never HTML)', () => {
    const toks = tokenize('<img src=x onerror=alert(1)>', 'text');
    expect(toks).toEqual([{ type: 'plain', text: '<img src=x onerror=alert(1)>' }]);
  });
});

describe('decision words', () => {
  const d = (over: Partial<DecisionView>): DecisionView => ({ allowed: true, effect: 'allow', policyIds: [], rules: [], decidedBy: 'policy', reason: 'r', ...over });
  it.each<[Partial<DecisionView>, string, string]>([
    [{ policyIds: ['read-ws'] }, 'allowed by rule read-ws', 'allowed'],
    [{ allowed: false, effect: 'deny', policyIds: ['forbid-secrets'] }, 'denied by rule forbid-secrets', 'denied'],
    [{ allowed: false, effect: 'deny' }, 'denied: no rule permits it', 'denied'],
    [{ effect: 'ask', decidedBy: 'user', answer: 'once' }, 'asked → you allowed it once', 'asked-allowed'],
    [{ effect: 'ask', decidedBy: 'user', answer: 'session' }, 'asked → you allowed it for this session', 'asked-allowed'],
    [{ allowed: false, effect: 'ask', decidedBy: 'user', answer: 'deny' }, 'asked → you denied it', 'asked-denied'],
    [{ effect: 'ask', decidedBy: 'grant' }, 'asked → covered by your session grant', 'asked-allowed'],
    [{ allowed: false, effect: 'ask', decidedBy: 'timeout' }, 'asked → nobody answered in time, denied', 'asked-denied'],
    [{ allowed: false, effect: 'ask', decidedBy: 'kill-switch' }, 'denied: the agent was stopped', 'asked-denied'],
  ])('%o reads "%s"', (over, label, tone) => {
    expect(decisionLabel(d(over))).toBe(label);
    expect(decisionTone(d(over))).toBe(tone);
  });
});

describe('undoPoints', () => {
  const cp = (seq: number, kind: CheckpointView['kind'], requestIds: string[], changed: string[] = ['a.txt']): CheckpointView => ({
    id: seq.toString(16).padStart(40, '0'), seq, time: '2026-01-01T00:00:00Z', kind, sessionId: 's', turn: 1, requestIds,
    changed: changed.map((path) => ({ path, status: 'modified' as const })), changedCount: changed.length,
  });

  it('undoes a request to the checkpoint just before its own, and a restore to the one before the restore', () => {
    // Newest first, as listCheckpoints returns them.
    const list = [cp(6, 'restore', ['undo']), cp(5, 'before-restore', ['undo']), cp(4, 'change', ['w2']), cp(3, 'change', ['w1']), cp(2, 'turn-start', ['w1']), cp(1, 'turn-start', [])];
    const points = undoPoints(list);
    expect(points.get('w1')?.seq).toBe(2);
    expect(points.get('w2')?.seq).toBe(3);
    expect(points.get('undo')?.seq).toBe(5);
    expect(points.size).toBe(3);
  });

  it('offers no undo for a request without a checkpoint of its own, or whose earlier checkpoint was dropped', () => {
    const points = undoPoints([cp(9, 'change', ['kept']), cp(8, 'turn-start', ['failed'])]);
    expect(points.get('failed')).toBeUndefined();
    expect(undoPoints([cp(9, 'change', ['oldest'])]).size).toBe(0);
  });

  it('summarises changed files with a count of the rest', () => {
    expect(changedSummary(cp(1, 'change', [], ['a', 'b', 'c', 'd']))).toBe('4 files: a, b, c and 1 more');
    expect(changedSummary(cp(1, 'change', [], []))).toBe('no files changed');
  });
});
