// The UI consent port: every question ends in exactly one settlement, and
// nothing but the user's answer allows anything.
import { describe, expect, it } from 'vitest';
import type { ConsentQuestion } from '../../src/common/consent.ts';
import { newTrace } from '../../src/common/trace.ts';
import { UiConsent, type ConsentSettlement } from '../../src/host/ui-consent.ts';

function question(id: string, withGrant = true, timeoutMs = 60_000): ConsentQuestion {
  return {
    id,
    request: {
      id, sessionId: 's', action: 'write', kind: 'write', method: 'fs/write_text_file', workspace: '/w',
      target: { path: `/w/${id}.ts`, relPath: `${id}.ts`, inWorkspace: true, exists: false }, trace: newTrace(),
    },
    decision: { effect: 'ask', policyIds: ['ask-writes'], reason: 'writes ask' },
    ruleDescriptions: [{ id: 'ask-writes', description: 'Writes ask' }],
    preview: { type: 'write', path: `${id}.ts`, created: true, bytes: 1, diff: '' },
    ...(withGrant ? { proposedGrant: { actions: ['write'], pathPattern: `${id}.ts` } } : {}),
    timeoutMs,
  };
}

function setup() {
  const c = new UiConsent();
  const settled: ConsentSettlement[] = [];
  c.onDidSettle((s) => settled.push(s));
  return { c, settled };
}

describe('UiConsent', () => {
  it('resolves with the user answer and reports it once', async () => {
    const { c, settled } = setup();
    const p = c.ask(question('a'), new AbortController().signal);
    expect(c.pending().map((x) => x.question.id)).toEqual(['a']);
    expect(c.answer('a', 'once')).toEqual({ accepted: true });
    expect(await p).toBe('once');
    expect(c.answer('a', 'session').accepted).toBe(false);
    expect(settled).toEqual([{ id: 'a', answer: 'once', by: 'user', reason: 'you allowed it once' }]);
    expect(c.pending()).toEqual([]);
  });

  it('keeps several questions in arrival order and answers each on its own', async () => {
    const { c } = setup();
    const pa = c.ask(question('a'), new AbortController().signal);
    const pb = c.ask(question('b'), new AbortController().signal);
    expect(c.pending().map((x) => x.question.id)).toEqual(['a', 'b']);
    c.answer('b', 'deny');
    c.answer('a', 'session');
    expect(await Promise.all([pa, pb])).toEqual(['session', 'deny']);
  });

  it('refuses "allow for this session" when no grant was offered', async () => {
    const { c } = setup();
    const p = c.ask(question('a', false), new AbortController().signal);
    expect(c.answer('a', 'session')).toEqual({ accepted: false, reason: expect.stringMatching(/not offered/) });
    expect(c.pending()).toHaveLength(1);
    c.answer('a', 'deny');
    expect(await p).toBe('deny');
  });

  it('denies and reports "cancelled" when the broker aborts a question', async () => {
    const { c, settled } = setup();
    const ctl = new AbortController();
    const p = c.ask(question('a'), ctl.signal);
    ctl.abort(new Error('the agent cancelled the request'));
    expect(await p).toBe('deny');
    expect(settled).toEqual([{ id: 'a', answer: 'deny', by: 'cancelled', reason: 'the agent cancelled the request' }]);
    expect(c.answer('a', 'once').accepted).toBe(false);
  });

  it('reports a timeout when the abort comes at the deadline', async () => {
    let now = 1000;
    const c = new UiConsent(() => now);
    const settled: ConsentSettlement[] = [];
    c.onDidSettle((s) => settled.push(s));
    const ctl = new AbortController();
    const p = c.ask(question('a', true, 5000), ctl.signal);
    expect(c.pending()[0]!.deadline).toBe(6000);
    now = 5990;
    ctl.abort(new Error(''));
    expect(await p).toBe('deny');
    expect(settled[0]!.by).toBe('timeout');
  });

  it('denies everything pending on stop, and aborts that follow count as the stop', async () => {
    const { c, settled } = setup();
    const ctl = new AbortController();
    const pa = c.ask(question('a'), ctl.signal);
    const pb = c.ask(question('b'), new AbortController().signal);
    expect(c.denyAll('stopped by you')).toBe(2);
    ctl.abort(new Error('halted'));
    expect(await Promise.all([pa, pb])).toEqual(['deny', 'deny']);
    expect(settled.map((s) => [s.id, s.by])).toEqual([['a', 'stopped'], ['b', 'stopped']]);
    const late = new AbortController();
    const pc = c.ask(question('c'), late.signal);
    late.abort(new Error('halted'));
    expect(await pc).toBe('deny');
    expect(settled.at(-1)).toMatchObject({ id: 'c', by: 'stopped', reason: 'stopped by you' });
  });

  it('answers an already-aborted question with deny without showing it', async () => {
    const { c } = setup();
    const asked: string[] = [];
    c.onDidAsk((p) => asked.push(p.question.id));
    const ctl = new AbortController();
    ctl.abort();
    expect(await c.ask(question('a'), ctl.signal)).toBe('deny');
    expect(asked).toEqual([]);
  });
});
