// A checkpoint's record lives in its shadow commit's message: a readable
// subject line, then one `Tether-Checkpoint: {json}` trailer (JSON escapes
// newlines in file names, so the trailer stays one line). Read back through a
// schema: a message that does not parse makes the checkpoint unreadable,
// never silently empty.

import { z } from 'zod';
import type { CheckpointInfo } from './checkpoint-types.ts';

export const TRAILER = 'Tether-Checkpoint: ';

const Metadata = z.object({
  v: z.literal(1),
  seq: z.number().int().positive(),
  time: z.string(),
  kind: z.enum(['turn-start', 'change', 'before-restore', 'restore', 'manual']),
  sessionId: z.string(),
  turn: z.number().int(),
  requestIds: z.array(z.string()),
  auditSeqs: z.array(z.number().int()),
  changed: z.array(z.object({ path: z.string(), status: z.enum(['added', 'modified', 'deleted']) })),
  skipped: z.array(z.object({ path: z.string(), reason: z.enum(['too-large', 'special-file', 'unstorable-name', 'unreadable']), detail: z.string().optional() })),
  fullScan: z.boolean(),
  restoredFrom: z.string().optional(),
});

export type CheckpointMetadata = Omit<CheckpointInfo, 'id'>;

export function encodeMessage(meta: CheckpointMetadata): string {
  const n = meta.changed.length;
  const subject = `Checkpoint ${meta.seq} (${meta.kind}): ${n} path${n === 1 ? '' : 's'} changed — session ${oneLine(meta.sessionId)}, turn ${meta.turn}`;
  return `${subject}\n\n${TRAILER}${JSON.stringify({ v: 1, ...meta })}\n`;
}

export function decodeMessage(id: string, message: string): CheckpointInfo {
  const line = message.split('\n').find((l) => l.startsWith(TRAILER));
  if (line === undefined) throw new Error(`shadow commit ${id} has no ${TRAILER.trim()} trailer; it was not written by Tether`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(line.slice(TRAILER.length));
  } catch (e) {
    throw new Error(`shadow commit ${id} has a malformed checkpoint record: ${(e as Error).message}`, { cause: e });
  }
  const r = Metadata.safeParse(parsed);
  if (!r.success) throw new Error(`shadow commit ${id} has an invalid checkpoint record: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const { v: _v, ...meta } = r.data;
  return { id, ...meta };
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 80);
}
