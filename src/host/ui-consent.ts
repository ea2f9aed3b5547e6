// The consent port for a UI (the desktop renderer, or a browser through the dev
// bridge). The broker asks; this holds the question until the user answers,
// the broker's signal aborts it (timeout, stop button, agent cancel), or the
// host denies everything pending. Every question ends in exactly one
// `onDidSettle`, so a UI can keep its queue without guessing.
//
// Not here: timeouts (the broker's), rendering, and ordering — questions are
// kept in arrival order and a UI shows them one at a time.

import type { ConsentQuestion } from '../common/consent.ts';
import type { ConsentAnswer } from '../common/decision.ts';
import { Emitter } from '../common/emitter.ts';
import type { ConsentPort } from './consent.ts';

export interface PendingConsent {
  readonly question: ConsentQuestion;
  /** Epoch ms at which the broker will deny it. */
  readonly deadline: number;
}

export type SettledBy = 'user' | 'timeout' | 'stopped' | 'cancelled';

export interface ConsentSettlement {
  readonly id: string;
  readonly answer: ConsentAnswer;
  readonly by: SettledBy;
  readonly reason: string;
}

interface Entry extends PendingConsent {
  readonly resolve: (answer: ConsentAnswer) => void;
}

export class UiConsent implements ConsentPort {
  private readonly didAsk = new Emitter<PendingConsent>();
  private readonly didSettle = new Emitter<ConsentSettlement>();
  readonly onDidAsk = this.didAsk.event;
  readonly onDidSettle = this.didSettle.event;

  private readonly entries = new Map<string, Entry>();
  private stopping: string | undefined;
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  ask(question: ConsentQuestion, signal: AbortSignal): Promise<ConsentAnswer> {
    if (this.entries.has(question.id)) return Promise.reject(new Error(`consent question ${question.id} is already pending`));
    if (signal.aborted) return Promise.resolve('deny');
    const deadline = this.now() + question.timeoutMs;
    return new Promise<ConsentAnswer>((resolve) => {
      const entry: Entry = { question, deadline, resolve };
      this.entries.set(question.id, entry);
      signal.addEventListener('abort', () => {
        // The broker decides what an abort means; the UI only needs to drop it and say why.
        const by: SettledBy = this.stopping !== undefined ? 'stopped' : isTimeout(signal.reason, this.now(), deadline) ? 'timeout' : 'cancelled';
        const reason = by === 'stopped' ? this.stopping! : by === 'timeout' ? 'nobody answered in time' : ((signal.reason as Error | undefined)?.message ?? 'withdrawn');
        this.settle(question.id, 'deny', by, reason);
      }, { once: true });
      this.didAsk.fire({ question, deadline });
    });
  }

  /** The user's answer. False when the question is no longer pending or the answer is not on offer. */
  answer(id: string, answer: ConsentAnswer): { accepted: boolean; reason?: string } {
    const entry = this.entries.get(id);
    if (!entry) return { accepted: false, reason: 'this request is no longer waiting for an answer' };
    if (answer === 'session' && !entry.question.proposedGrant) {
      return { accepted: false, reason: '"allow for this session" is not offered for this request; answer once or deny' };
    }
    this.settle(id, answer, 'user', answer === 'deny' ? 'you denied it' : answer === 'once' ? 'you allowed it once' : 'you allowed it for this session');
    return { accepted: true };
  }

  /**
   * Marks the port as stopping so aborts that follow are reported as the stop,
   * then denies whatever is still pending (the broker's halt aborts them too).
   */
  denyAll(reason: string): number {
    this.stopping = reason;
    const ids = [...this.entries.keys()];
    for (const id of ids) this.settle(id, 'deny', 'stopped', reason);
    return ids.length;
  }

  /** Leaves stopping mode (a new session). */
  reset(): void {
    this.stopping = undefined;
  }

  pending(): PendingConsent[] {
    return [...this.entries.values()].map(({ question, deadline }) => ({ question, deadline }));
  }

  private settle(id: string, answer: ConsentAnswer, by: SettledBy, reason: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    entry.resolve(answer);
    this.didSettle.fire({ id, answer, by, reason });
  }
}

// The broker aborts a timed-out question with its own (unexported) error class
// and starts its clock before building the preview, so its deadline is a
// little earlier than ours: either sign means a timeout.
function isTimeout(reason: unknown, now: number, deadline: number): boolean {
  return (reason as { constructor?: { name?: string } } | undefined)?.constructor?.name === 'ConsentTimeout' || now >= deadline - 250;
}
