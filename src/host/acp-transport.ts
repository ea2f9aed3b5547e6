// Host side of the agent transport: newline-delimited JSON-RPC over a byte
// stream (a child's stdio), with the limits the host enforces on a hostile
// peer. A line over the size limit or that is not JSON is answered with a
// JSON-RPC error (id null) and dropped; the connection and the host go on.
// The SDK then validates the message shape and params.

import type { AnyMessage, Stream } from '@agentclientprotocol/sdk';
import { channel } from 'node:diagnostics_channel';
import type { Readable, Writable } from 'node:stream';
import { LIMITS } from '../common/limits.ts';

export interface FramingIssue {
  readonly kind: 'oversized' | 'malformed';
  readonly bytes: number;
}

export interface NdjsonOptions {
  readonly maxMessageBytes?: number;
  /** Told about every dropped line (for the audit log and diagnostics). */
  readonly onIssue?: (issue: FramingIssue) => void;
}

/** A message in or out: `at` is performance.now() when its bytes arrived (in) or before they are written (out). */
export interface TransportMessage {
  readonly dir: 'in' | 'out';
  readonly kind: 'request' | 'response' | 'notification';
  readonly at: number;
}
/** Every message through an ndjsonStream, for profilers; costs nothing without a subscriber. */
export const transportMessages = channel('tether.acp.message');

const kindOf = (m: object): TransportMessage['kind'] => ('method' in m ? ('id' in m ? 'request' : 'notification') : 'response');

function protocolError(code: number, message: string): AnyMessage {
  return { jsonrpc: '2.0', id: null, error: { code, message } } as unknown as AnyMessage;
}

export function ndjsonStream(input: Readable, output: Writable, opts: NdjsonOptions = {}): Stream {
  const max = opts.maxMessageBytes ?? LIMITS.maxMessageBytes;
  const send = (msg: AnyMessage) =>
    new Promise<void>((resolve, reject) => {
      if (output.destroyed || output.writableEnded) return reject(new Error('the agent connection is closed'));
      if (transportMessages.hasSubscribers) transportMessages.publish({ dir: 'out', kind: kindOf(msg), at: performance.now() } satisfies TransportMessage);
      output.write(JSON.stringify(msg) + '\n', (err) => (err ? reject(err) : resolve()));
    });

  // Set once the consumer cancels (the host closed the connection): late bytes
  // from a still-running agent are dropped instead of throwing into an event handler.
  let done = false;
  const readable = new ReadableStream<AnyMessage>({
    cancel() {
      done = true;
    },
    start(controller) {
      let parts: Buffer[] = [];
      let size = 0;
      let skipping = false; // inside an oversized line: drop bytes until its newline

      let arrived = 0; // when the chunk being split arrived (for transportMessages)
      const emitLine = (line: Buffer) => {
        if (line.length === 0 || (line.length === 1 && line[0] === 0x0d)) return;
        let msg: unknown;
        try {
          msg = JSON.parse(line.toString('utf8'));
        } catch {
          opts.onIssue?.({ kind: 'malformed', bytes: line.length });
          void send(protocolError(-32700, 'Parse error: the message is not valid JSON')).catch(() => {});
          return;
        }
        if (transportMessages.hasSubscribers && typeof msg === 'object' && msg !== null) transportMessages.publish({ dir: 'in', kind: kindOf(msg), at: arrived } satisfies TransportMessage);
        if (!done) controller.enqueue(msg as AnyMessage);
      };

      input.on('data', (chunk: Buffer) => {
        if (done) return;
        if (transportMessages.hasSubscribers) arrived = performance.now();
        let start = 0;
        for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
          const piece = chunk.subarray(start, nl);
          start = nl + 1;
          if (skipping) {
            skipping = false;
            continue;
          }
          if (size + piece.length > max) {
            opts.onIssue?.({ kind: 'oversized', bytes: size + piece.length });
            void send(protocolError(-32600, `Invalid request: message over the ${max}-byte limit`)).catch(() => {});
          } else {
            emitLine(parts.length === 0 ? piece : Buffer.concat([...parts, piece]));
          }
          parts = [];
          size = 0;
        }
        if (start < chunk.length && !skipping) {
          const rest = chunk.subarray(start);
          if (size + rest.length > max) {
            opts.onIssue?.({ kind: 'oversized', bytes: size + rest.length });
            void send(protocolError(-32600, `Invalid request: message over the ${max}-byte limit`)).catch(() => {});
            parts = [];
            size = 0;
            skipping = true;
          } else {
            parts.push(Buffer.from(rest));
            size += rest.length;
          }
        }
      });
      input.on('end', () => {
        if (!done) controller.close();
        done = true;
      });
      input.on('error', (e) => {
        if (!done) controller.error(e);
        done = true;
      });
    },
  });

  const writable = new WritableStream<AnyMessage>({ write: (msg) => send(msg) });
  return { readable, writable };
}
