import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/common/audit-record.ts';
import { toOcsf, type OcsfEvent } from '../../src/common/ocsf.ts';

const base = { v: 1 as const, prev: 'ab', time: '2025-05-01T12:00:00.000Z', session: 'sess-1', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
const actor = { user: 'alice', device: 'laptop-7', agent: 'tether-agent', model: 'claude-x' };
const opts = { origin: 'tether.audit/abc', leafHash: 'ff'.repeat(32), line: '{"the":"line"}' };

function rec(r: Partial<AuditRecord> & { seq: number; type: AuditRecord['type'] }): AuditRecord {
  return { ...base, ...r } as AuditRecord;
}

const field = (e: OcsfEvent, path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], e);

describe('OCSF mapping', () => {
  it.each([
    ['a read allowed by policy', { kind: 'read', action: 'read', method: 'fs/read_text_file', path: '/w/a.ts' }, { effect: 'allow', allowed: true, decidedBy: 'policy', policyIds: ['read-workspace'] }, 1001, 2, 1],
    ['a listing', { kind: 'read', action: 'list', method: '_tether/list', path: '/w' }, { effect: 'allow', allowed: true, decidedBy: 'policy', policyIds: ['read-workspace'] }, 1001, 2, 1],
    ['a write the user denied', { kind: 'write', action: 'write', method: 'fs/write_text_file', path: '/w/a.ts' }, { effect: 'ask', allowed: false, decidedBy: 'user', policyIds: ['ask-writes'], answer: 'deny' }, 1001, 3, 2],
    ['a delete', { kind: 'write', action: 'delete', method: '_tether/delete', path: '/w/a.ts' }, { effect: 'ask', allowed: true, decidedBy: 'grant', policyIds: ['ask-writes'] }, 1001, 4, 1],
    ['a move', { kind: 'write', action: 'move', method: '_tether/move', path: '/w/a.ts', destination: '/w/b.ts' }, { effect: 'ask', allowed: true, decidedBy: 'user', policyIds: ['ask-writes'] }, 1001, 5, 1],
    ['a command denied by policy', { kind: 'exec', action: 'exec', method: 'terminal/create', command: 'rm -rf /', cwd: '/w' }, { effect: 'deny', allowed: false, decidedBy: 'policy', policyIds: ['forbid-rm'] }, 1007, 1, 2],
    ['a model call', { kind: 'model', action: 'model', method: '_tether/model', url: 'https://api.example.com/v1/messages' }, { effect: 'allow', allowed: true, decidedBy: 'policy', policyIds: ['models'] }, 4002, 6, 1],
    ['an HTTP fetch', { kind: 'net', action: 'net', method: '_tether/fetch', url: 'https://example.org:8443/x' }, { effect: 'allow', allowed: true, decidedBy: 'policy', policyIds: ['net'] }, 4002, 99, 1],
    ['a raw network connection', { kind: 'net', action: 'net', method: '_tether/connect', url: 'tcp://db.internal:5432' }, { effect: 'deny', allowed: false, decidedBy: 'kill-switch', policyIds: [] }, 4001, 6, 2],
  ] as const)('maps %s to class %i activity %i with action_id %i', (_, request, decision, classUid, activityId, actionId) => {
    const e = toOcsf(rec({ seq: 7, type: 'decision', actor, request: { id: 'r1', ...request } as AuditRecord['request'], decision: { reason: 'because', ...decision } as AuditRecord['decision'] }), opts);
    expect(e.class_uid).toBe(classUid);
    expect(e.activity_id).toBe(activityId);
    expect(e.type_uid).toBe(classUid * 100 + activityId);
    expect(e.action_id).toBe(actionId);
    expect(e.disposition_id).toBe(actionId === 1 ? 1 : 2);
    expect(field(e, 'metadata.profiles')).toEqual(['security_control']);
    expect(field(e, 'metadata.correlation_uid')).toBe(base.traceId);
    expect(field(e, 'metadata.uid')).toBe('tether.audit/abc/7');
    expect(e.time).toBe(Date.parse(base.time));
    const auths = e.authorizations as Array<{ decision: string; policy: { uid?: string; name: string } }>;
    expect(auths.length).toBeGreaterThan(0);
    expect(auths.every((a) => a.decision === (actionId === 1 ? 'allowed' : 'denied'))).toBe(true);
    if (decision.policyIds.length > 0) expect(auths.map((a) => a.policy.uid)).toEqual(decision.policyIds);
    else expect(auths[0]!.policy.name).toBe(`(${decision.decidedBy})`);
    expect(field(e, 'unmapped.tether.decided_by')).toBe(decision.decidedBy);
    expect(field(e, 'actor.user.name')).toBe('alice');
  });

  it('maps outcomes: created file with its hash, command exit code, bytes to a model endpoint', () => {
    const created = toOcsf(rec({ seq: 8, type: 'outcome', request: { id: 'r', method: 'fs/write_text_file', action: 'write', kind: 'write', path: '/w/new.ts' }, outcome: { ok: true, postSha256: 'aa'.repeat(32), bytes: 12, changedFiles: [{ path: '/w/new.ts', change: 'created' }] } }), opts);
    expect([created.class_uid, created.activity_id, created.type_uid]).toEqual([1001, 1, 100101]);
    expect(field(created, 'file.hashes')).toEqual([{ algorithm_id: 3, algorithm: 'SHA-256', value: 'aa'.repeat(32) }]);
    expect(field(created, 'file.name')).toBe('new.ts');
    expect(created.status_id).toBe(1);
    const exited = toOcsf(rec({ seq: 9, type: 'outcome', request: { id: 'r', method: 'terminal/create', action: 'exec', kind: 'exec', command: 'make', cwd: '/w' }, outcome: { ok: false, exitCode: 2, error: 'exit 2' } }), opts);
    expect([exited.class_uid, exited.exit_code, exited.status_id, exited.status_detail]).toEqual([1007, 2, 2, 'exit 2']);
    expect(field(exited, 'process.cmd_line')).toBe('make');
  });

  it('maps a sandboxed command\'s connection with the bytes both ways', () => {
    const e = toOcsf(rec({
      seq: 10, type: 'network.connection', actor,
      request: { id: 'c1', method: 'sandbox/connect', action: 'net', kind: 'net', url: 'tcp://registry.npmjs.org:443' },
      decision: { effect: 'allow', allowed: true, policyIds: [], decidedBy: 'policy', reason: 'opened for the command' },
      outcome: { ok: true, bytes: 812, durationMs: 40 },
      detail: { command: 'r9', via: 'connect', host: 'registry.npmjs.org', port: 443, status: 200, bytesOut: 812, bytesIn: 90_000 },
    }), opts);
    expect([e.class_uid, e.activity_id, e.action_id]).toEqual([4001, 6, 1]);
    expect(field(e, 'dst_endpoint')).toEqual({ hostname: 'registry.npmjs.org', port: 443 });
    expect(field(e, 'traffic')).toEqual({ bytes_out: 812, bytes_in: 90_000, bytes: 90_812 });
    expect(field(e, 'unmapped.tether.detail.command')).toBe('r9');
    // The same tunnel as it opened, before any traffic.
    const opened = toOcsf(rec({
      seq: 9, type: 'network.connection', actor,
      request: { id: 'c1', method: 'sandbox/connect', action: 'net', kind: 'net', url: 'tcp://registry.npmjs.org:443' },
      decision: { effect: 'allow', allowed: true, policyIds: [], decidedBy: 'policy', reason: 'opened for the command' },
      detail: { command: 'r9', phase: 'opened', via: 'connect', host: 'registry.npmjs.org', port: 443 },
    }), opts);
    expect([opened.class_uid, opened.activity_id, opened.activity_name, opened.type_uid, opened.action_id]).toEqual([4001, 1, 'Open', 400101, 1]);
    expect(field(opened, 'traffic')).toBeUndefined();
  });

  it('sends lifecycle records as base events so the SIEM still gets every leaf', () => {
    const e = toOcsf(rec({ seq: 0, type: 'log.start', session: '', detail: { origin: 'tether.audit/abc' } }), opts);
    expect([e.class_uid, e.activity_id, e.type_uid]).toEqual([0, 99, 99]);
    expect(field(e, 'unmapped.tether')).toMatchObject({ seq: 0, leaf_hash: opts.leafHash, type: 'log.start', record: opts.line });
  });

  it('hides paths behind the transform and then leaves out the raw record and detail', () => {
    const e = toOcsf(
      rec({ seq: 3, type: 'decision', request: { id: 'r', method: '_tether/move', action: 'move', kind: 'write', path: '/home/alice/secret-plan.md', destination: '/home/alice/x.md', cwd: '/home/alice' }, decision: { effect: 'ask', allowed: true, decidedBy: 'user', policyIds: ['p'], reason: 'ok' }, detail: { note: '/home/alice' } }),
      { ...opts, transformPath: (p) => `H(${p.length})` },
    );
    const text = JSON.stringify(e);
    expect(text).not.toContain('alice');
    expect(field(e, 'file.path')).toBe('H(26)');
    expect(field(e, 'unmapped.tether.record')).toBeUndefined();
    expect(field(e, 'unmapped.tether.leaf_hash')).toBe(opts.leafHash);
  });

  it('marks records of an unsigned log', () => {
    expect(field(toOcsf(rec({ seq: 1, type: 'session.start', unsigned: true }), opts), 'unmapped.tether.unsigned')).toBe(true);
  });
});
