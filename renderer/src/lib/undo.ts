// Which checkpoint "undo to here" goes back to for a timeline entry, and words
// for checkpoints. A change's own checkpoint is taken right after it; the
// checkpoint just before that one is the workspace as it was before the change
// (checkpoints are whole snapshots, so one step back is exact). A request that
// changed nothing has no checkpoint, and so no undo.

import type { CheckpointView } from '../../../src/common/ipc-contract.ts';

/** Request id → the checkpoint that undoes that request and everything after it. Input newest first. */
export function undoPoints(checkpoints: readonly CheckpointView[]): Map<string, CheckpointView> {
  const points = new Map<string, CheckpointView>();
  checkpoints.forEach((c, i) => {
    if (c.kind !== 'change' && c.kind !== 'restore') return;
    const before = checkpoints[i + 1];
    if (!before) return;
    // Newest first: the first checkpoint seen for a request is its last one.
    for (const id of c.requestIds) if (!points.has(id)) points.set(id, before);
  });
  return points;
}

const KIND_WORDS: Readonly<Record<CheckpointView['kind'], string>> = {
  'turn-start': 'Before the agent changed anything',
  change: 'After a change by the agent',
  'before-restore': 'Before an undo',
  restore: 'After an undo',
  manual: 'Saved by hand',
};

export function checkpointLabel(c: CheckpointView): string {
  if (c.kind === 'turn-start') return c.turn === 0 ? 'When the session started' : `Before task ${c.turn} changed anything`;
  return KIND_WORDS[c.kind];
}

/** "3 files: a.ts, b.ts and 1 more" */
export function changedSummary(c: CheckpointView, show = 3): string {
  if (c.changedCount === 0) return 'no files changed';
  const names = c.changed.slice(0, show).map((f) => `${f.path}${f.status === 'deleted' ? ' (deleted)' : f.status === 'added' ? ' (new)' : ''}`);
  const more = c.changedCount - names.length;
  return `${c.changedCount} file${c.changedCount === 1 ? '' : 's'}: ${names.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}
