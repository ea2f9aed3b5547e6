// Ships audit events to an HTTP collector as JSON batches: a generic endpoint
// (one JSON document per batch) or a Splunk HEC-style endpoint (newline-
// separated {"event": …} objects, "Authorization: Splunk <token>"). The token
// comes from a callback (the keychain in the app), read for every request so a
// rotated token is picked up.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { toOcsf } from '../../common/ocsf.ts';
import { SinkError, type AuditSink, type CheckpointShipment, type RecordBatch } from './audit-sink.ts';

export interface HttpCollectorSinkOptions {
  readonly url: string;
  readonly format?: 'generic' | 'splunk-hec';
  readonly token: () => Promise<string>;
  /** A request that takes longer is abandoned and retried. Default 15 s. */
  readonly timeoutMs?: number;
  readonly hostname?: string;
  readonly transformPath?: (path: string) => string;
  readonly name?: string;
}

export class HttpCollectorSink implements AuditSink {
  readonly name: string;
  private readonly opts: HttpCollectorSinkOptions;
  private readonly host: string;
  private readonly channel = crypto.randomUUID();

  constructor(opts: HttpCollectorSinkOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`collector URL must be http(s): ${opts.url}`);
    this.opts = opts;
    this.name = opts.name ?? `http-${createHash('sha256').update(opts.url).digest('hex').slice(0, 8)}`;
    this.host = opts.hostname ?? hostname();
  }

  async sendRecords(batch: RecordBatch, signal: AbortSignal): Promise<void> {
    const events = batch.records.map((r) =>
      toOcsf(r.record, { origin: batch.origin, leafHash: r.leafHash, line: r.line, hostname: this.host, ...(this.opts.transformPath ? { transformPath: this.opts.transformPath } : {}) }),
    );
    if (this.opts.format === 'splunk-hec') {
      const body = events.map((e) => JSON.stringify({ time: e.time / 1000, host: this.host, source: 'tether', sourcetype: `ocsf:${e.class_uid}`, event: e })).join('\n');
      await this.post(body, batch.idempotencyKey, signal);
    } else {
      await this.post(JSON.stringify({ type: 'tether.audit.records', origin: batch.origin, chain: batch.chain, idempotency_key: batch.idempotencyKey, events }), batch.idempotencyKey, signal);
    }
  }

  async sendCheckpoint(cp: CheckpointShipment, signal: AbortSignal): Promise<void> {
    const event = { type: 'tether.audit.checkpoint', origin: cp.origin, chain: cp.chain, size: cp.size, checkpoint: cp.note, consistency: cp.consistency ? { from_size: cp.consistency.fromSize, proof: cp.consistency.proof } : null, idempotency_key: cp.idempotencyKey };
    const body = this.opts.format === 'splunk-hec' ? JSON.stringify({ time: Date.now() / 1000, host: this.host, source: 'tether', sourcetype: 'tether:audit:checkpoint', event }) : JSON.stringify(event);
    await this.post(body, cp.idempotencyKey, signal);
  }

  private async post(body: string, idempotencyKey: string, signal: AbortSignal): Promise<void> {
    let token: string;
    try {
      token = await this.opts.token();
    } catch (e) {
      throw new SinkError(`cannot get the collector token: ${(e as Error).message}`, false, { cause: e });
    }
    const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 15_000);
    let res: Response;
    try {
      res = await fetch(this.opts.url, {
        method: 'POST',
        // A redirect could send the records (and the token) somewhere else, unencrypted: refuse it.
        redirect: 'error',
        body,
        signal: AbortSignal.any([signal, timeout]),
        headers: {
          'content-type': 'application/json',
          // No token, no header (a collector on loopback, or one that authenticates the connection).
          ...(token === '' ? {} : { authorization: this.opts.format === 'splunk-hec' ? `Splunk ${token}` : `Bearer ${token}` }),
          'idempotency-key': idempotencyKey,
          ...(this.opts.format === 'splunk-hec' ? { 'x-splunk-request-channel': this.channel } : {}),
        },
      });
      await res.arrayBuffer();
    } catch (e) {
      const why = timeout.aborted ? `no answer within ${this.opts.timeoutMs ?? 15_000} ms` : (e as Error).message;
      throw new SinkError(`collector ${this.opts.url} unreachable: ${why}`, true, { cause: e });
    }
    if (res.ok || res.status === 409) return; // 409: the collector already has this idempotency key
    const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    throw new SinkError(`collector ${this.opts.url} answered ${res.status}${retryable ? '' : ' (check the URL and the token)'}`, retryable);
  }
}
