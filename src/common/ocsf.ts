// Audit records as OCSF 1.3 events for the SIEM:
//   file reads/writes      → File System Activity (1001)
//   shell commands         → Process Activity (1007)
//   HTTP(S) and model calls→ HTTP Activity (4002); other network → Network Activity (4001)
//   everything else        → Base Event (0), so the SIEM still receives every leaf
// Decisions carry the security-control profile (action_id 1 allowed / 2 denied,
// disposition) and authorizations[] naming the determining policies; the trace
// id goes to metadata.correlation_uid. `unmapped.tether` keeps the seq, the
// Merkle leaf hash (so a collector can check the signed tree) and, unless
// paths are transformed, the exact record line.
//
// Pure. What it does not do: map to vendor-specific schemas (Splunk CIM etc.),
// or hide command lines (paths inside a command stay as typed).

import type { AuditRecord, AuditRequest } from './audit-record.ts';

export const OCSF_VERSION = '1.3.0';

export interface OcsfOptions {
  readonly product?: { readonly name: string; readonly vendor_name: string; readonly version?: string };
  readonly hostname?: string;
  /** The log's origin (chain), for metadata.log_name and the event uid. */
  readonly origin: string;
  /** Hex Merkle leaf hash of the record. */
  readonly leafHash: string;
  /** The record's exact line; sent in unmapped unless paths are transformed. */
  readonly line?: string;
  /** Replaces every file path (e.g. a keyed HMAC, for exports that must not reveal paths). */
  readonly transformPath?: (path: string) => string;
}

export type OcsfEvent = Record<string, unknown> & {
  readonly class_uid: number;
  readonly activity_id: number;
  readonly type_uid: number;
  readonly time: number;
  readonly metadata: Record<string, unknown> & { readonly uid: string };
};

const CLASSES = {
  file: { uid: 1001, name: 'File System Activity', category_uid: 1, category_name: 'System Activity' },
  process: { uid: 1007, name: 'Process Activity', category_uid: 1, category_name: 'System Activity' },
  network: { uid: 4001, name: 'Network Activity', category_uid: 4, category_name: 'Network Activity' },
  http: { uid: 4002, name: 'HTTP Activity', category_uid: 4, category_name: 'Network Activity' },
  base: { uid: 0, name: 'Base Event', category_uid: 0, category_name: 'Uncategorized' },
} as const;

const FILE_ACTIVITY: Record<string, [number, string]> = {
  read: [2, 'Read'], list: [2, 'Read'], search: [2, 'Read'], stat: [8, 'Get Attributes'],
  write: [3, 'Update'], delete: [4, 'Delete'], move: [5, 'Rename'],
};

/** OCSF fingerprint algorithm_id 3 = SHA-256. */
const sha256Fingerprint = (value: string) => [{ algorithm_id: 3, algorithm: 'SHA-256', value }];

function classOf(req: AuditRequest): { cls: (typeof CLASSES)[keyof typeof CLASSES]; activity: [number, string] } {
  switch (req.kind) {
    case 'read':
    case 'write':
      return { cls: CLASSES.file, activity: FILE_ACTIVITY[req.action] ?? [99, 'Other'] };
    case 'exec':
      return { cls: CLASSES.process, activity: [1, 'Launch'] };
    case 'model':
      return { cls: CLASSES.http, activity: [6, 'Post'] };
    case 'net':
      return req.url && /^https?:/i.test(req.url) ? { cls: CLASSES.http, activity: [99, 'Other'] } : { cls: CLASSES.network, activity: [6, 'Traffic'] };
    default:
      return { cls: CLASSES.base, activity: [99, 'Other'] };
  }
}

function urlObject(url: string): Record<string, unknown> {
  try {
    const u = new URL(url);
    return { url_string: url, scheme: u.protocol.replace(/:$/, ''), hostname: u.hostname, path: u.pathname, ...(u.port ? { port: Number(u.port) } : {}) };
  } catch {
    return { url_string: url };
  }
}

export function toOcsf(record: AuditRecord, opts: OcsfOptions): OcsfEvent {
  const path = (p: string) => (opts.transformPath ? opts.transformPath(p) : p);
  const req = record.request;
  const classified = req ? classOf(req) : { cls: CLASSES.base, activity: [99, 'Other'] as [number, string] };
  const { cls } = classified;
  // A sandboxed command's tunnel is recorded as it opens (before any traffic), then with its traffic once it ends.
  const activity: [number, string] = cls === CLASSES.network && record.type === 'network.connection' && record.detail?.['phase'] === 'opened' ? [1, 'Open'] : classified.activity;
  const time = Date.parse(record.time);
  const d = record.decision;
  const o = record.outcome;

  const event: Record<string, unknown> = {
    class_uid: cls.uid,
    class_name: cls.name,
    category_uid: cls.category_uid,
    category_name: cls.category_name,
    activity_id: activity[0],
    activity_name: activity[1],
    type_uid: cls.uid * 100 + activity[0],
    type_name: `${cls.name}: ${activity[1]}`,
    time,
    severity_id: d && !d.allowed ? 3 : o && !o.ok ? 2 : 1,
    severity: d && !d.allowed ? 'Medium' : o && !o.ok ? 'Low' : 'Informational',
    metadata: {
      version: OCSF_VERSION,
      product: opts.product ?? { name: 'Tether', vendor_name: 'Tether' },
      uid: `${opts.origin}/${record.seq}`,
      sequence: record.seq,
      log_name: opts.origin,
      event_code: record.type,
      original_time: record.time,
      ...(d ? { profiles: ['security_control'] } : {}),
      ...(record.traceId ? { correlation_uid: record.traceId } : {}),
    },
    ...(opts.hostname ? { device: { hostname: opts.hostname, type_id: 0 } } : {}),
  };

  if (record.actor) {
    event.actor = {
      user: { name: record.actor.user },
      app_name: record.actor.agent,
      session: { uid: record.session },
    };
    if (opts.hostname === undefined) event.device = { hostname: record.actor.device, type_id: 0 };
  } else if (record.session) {
    event.actor = { session: { uid: record.session } };
  }

  if (d) {
    event.action_id = d.allowed ? 1 : 2;
    event.action = d.allowed ? 'Allowed' : 'Denied';
    event.disposition_id = d.allowed ? 1 : 2;
    event.disposition = d.allowed ? 'Allowed' : 'Blocked';
    event.status_id = d.allowed ? 1 : 2;
    event.status = d.allowed ? 'Success' : 'Failure';
    event.message = d.reason;
    const decision = d.allowed ? 'allowed' : 'denied';
    event.authorizations = d.policyIds.length > 0 ? d.policyIds.map((id) => ({ decision, policy: { uid: id, name: id, desc: d.reason } })) : [{ decision, policy: { name: `(${d.decidedBy})`, desc: d.reason } }];
  } else if (o) {
    event.action_id = 1;
    event.action = 'Allowed';
    event.status_id = o.ok ? 1 : 2;
    event.status = o.ok ? 'Success' : 'Failure';
    if (o.error) event.status_detail = o.error;
  }

  if (req && cls === CLASSES.file) {
    const change = o?.changedFiles?.[0]?.change;
    if (change === 'created') Object.assign(event, { activity_id: 1, activity_name: 'Create', type_uid: cls.uid * 100 + 1, type_name: `${cls.name}: Create` });
    event.file = {
      type_id: 1,
      ...(req.path ? { path: path(req.path), name: path(req.path).split('/').pop() } : {}),
      ...(o?.postSha256 ? { hashes: sha256Fingerprint(o.postSha256) } : o?.preSha256 ? { hashes: sha256Fingerprint(o.preSha256) } : {}),
      ...(o?.bytes !== undefined ? { size: o.bytes } : {}),
    };
    if (req.destination) event.file_result = { type_id: 1, path: path(req.destination), name: path(req.destination).split('/').pop() };
  } else if (req && cls === CLASSES.process) {
    event.process = { cmd_line: req.command ?? '', ...(req.cwd ? { working_directory: path(req.cwd) } : {}) };
    if (o && o.exitCode !== undefined && o.exitCode !== null) event.exit_code = o.exitCode;
  } else if (req && (cls === CLASSES.http || cls === CLASSES.network)) {
    const url = req.url ?? req.path;
    if (url) {
      const u = urlObject(url);
      if (cls === CLASSES.http) event.http_request = { url: u, http_method: req.kind === 'model' ? 'POST' : undefined };
      event.dst_endpoint = { hostname: u.hostname ?? url, ...(u.port ? { port: u.port } : {}) };
    }
    // A sandboxed command's connection also says what came back (network-tap.ts).
    const bytesIn = record.type === 'network.connection' ? record.detail?.['bytesIn'] : undefined;
    if (o?.bytes !== undefined) event.traffic = { bytes_out: o.bytes, ...(typeof bytesIn === 'number' ? { bytes_in: bytesIn, bytes: o.bytes + bytesIn } : {}) };
  }

  const tether: Record<string, unknown> = {
    seq: record.seq,
    leaf_hash: opts.leafHash,
    type: record.type,
    ...(record.spanId ? { span_id: record.spanId } : {}),
    ...(record.actor?.model ? { model: record.actor.model } : {}),
    ...(req ? { request_id: req.id, method: req.method, capability: req.action } : {}),
    ...(d ? { effect: d.effect, decided_by: d.decidedBy, ...(d.answer ? { answer: d.answer } : {}), ...(d.grantId ? { grant_id: d.grantId } : {}) } : {}),
    ...(o?.durationMs !== undefined ? { duration_ms: o.durationMs } : {}),
    ...(record.unsigned ? { unsigned: true } : {}),
    ...(record.detail && !opts.transformPath ? { detail: record.detail } : {}),
    ...(opts.line !== undefined && !opts.transformPath ? { record: opts.line } : {}),
  };
  event.unmapped = { tether };
  return dropUndefined(event) as OcsfEvent;
}

function dropUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropUndefined);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = dropUndefined(x);
    return out;
  }
  return v;
}
