// Consent on a terminal: shows what will happen (a coloured unified diff for
// writes, the full command for exec) and asks allow once / allow for this
// session / deny. Anything but a clear yes is a deny.

import { createInterface } from 'node:readline/promises';
import type { ConsentPreview, ConsentQuestion } from '../common/consent.ts';
import type { ConsentAnswer } from '../common/decision.ts';
import { describeGrant } from '../common/grants.ts';
import type { ConsentPort } from '../host/consent.ts';

const color = (code: number) => (s: string) => (process.stdout.isTTY ? `\x1b[${code}m${s}\x1b[0m` : s);
export const paint = { red: color(31), green: color(32), yellow: color(33), cyan: color(36), dim: color(2), bold: color(1) };

export function renderPreview(p: ConsentPreview): string {
  switch (p.type) {
    case 'write':
      return `${p.created ? 'create' : 'change'} ${p.path} (${p.bytes} bytes)\n${colourDiff(p.diff)}`;
    case 'delete':
      return `delete ${p.path}${p.recursive ? ' and everything under it' : ''}${p.diff ? `\n${colourDiff(p.diff)}` : ''}`;
    case 'move':
      return `move ${p.from} → ${p.to}${p.overwrite ? ' (overwriting)' : ''}`;
    case 'read':
      return `read ${p.path}${p.note ? `\n${p.note}` : ''}`;
    case 'exec': {
      const sandbox = p.sandbox === 'unsandboxed'
        ? paint.red('WITHOUT the OS sandbox')
        : `sandbox: writable ${p.sandbox.writable.join(', ') || '(none)'}; network ${p.sandbox.network === 'none' ? 'off' : p.sandbox.network.allowedDomains.join(', ')}`;
      return `run ${paint.bold(p.command)}\n  in ${p.cwd}\n  ${sandbox}${p.notes.map((n) => `\n  ! ${n}`).join('')}`;
    }
    case 'net':
      return `${p.method} ${p.destination} (${p.bytes} bytes): ${p.summary}`;
    case 'restore': {
      const mark = { create: 'A', overwrite: 'M', delete: 'D' } as const;
      const files = p.files.map((f) => `  ${f.conflict ? paint.red('!') : ' '} ${mark[f.action]} ${f.path}${f.conflict ? paint.red(`  (${f.conflict})`) : ''}`);
      return `restore checkpoint #${p.checkpoint}: ${p.summary}\n${files.join('\n')}\n${colourDiff(p.diff)}`;
    }
  }
}

export function colourDiff(diff: string): string {
  return diff
    .split('\n')
    .map((l) => (l.startsWith('+') && !l.startsWith('+++') ? paint.green(l) : l.startsWith('-') && !l.startsWith('---') ? paint.red(l) : l.startsWith('@@') ? paint.cyan(l) : l))
    .join('\n');
}

export class TtyConsent implements ConsentPort {
  private queue: Promise<unknown> = Promise.resolve();

  ask(q: ConsentQuestion, signal: AbortSignal): Promise<ConsentAnswer> {
    // One question at a time on the terminal; the others wait their turn.
    const next = this.queue.then(() => this.askNow(q, signal));
    this.queue = next.catch(() => {});
    return next;
  }

  private async askNow(q: ConsentQuestion, signal: AbortSignal): Promise<ConsentAnswer> {
    if (signal.aborted) return 'deny';
    const why = q.ruleDescriptions.map((r) => `${r.id}: ${r.description}`).join('; ') || q.decision.reason;
    const out = [
      '',
      paint.yellow(`? The agent asks to ${q.request.action}`) + paint.dim(`  (policy asked: ${why})`),
      renderPreview(q.preview),
      `  [a] allow once${q.proposedGrant ? `   [s] allow for this session (${describeGrant(q.proposedGrant)})` : ''}   [d] deny` +
        paint.dim(`   (denied in ${Math.round(q.timeoutMs / 1000)} s without an answer)`),
    ].join('\n');
    process.stdout.write(out + '\n');
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      const answer = (await rl.question('> ', { signal })).trim().toLowerCase();
      if (answer === 'a' || answer === 'y' || answer === 'yes') return 'once';
      if ((answer === 's') && q.proposedGrant) return 'session';
      return 'deny';
    } catch {
      return 'deny';
    } finally {
      rl.close();
    }
  }
}
