// An ACP Stream over a message channel (an Electron utilityProcess's own
// port). One JSON-RPC message per port message, sent as JSON text so the host
// can apply the same size limit as on stdio before parsing anything. Text that
// is too large or not JSON is answered with a JSON-RPC error and dropped; the
// connection goes on, as with the stdio transport.

import type { AnyMessage, Stream } from '@agentclientprotocol/sdk';
import { LIMITS } from '../common/limits.ts';

export interface MessagePortLike {
  post(message: string): void;
  /** Subscribes to incoming messages; returns an unsubscribe. */
  onMessage(listener: (message: unknown) => void): () => void;
  /** Resolves when the other side is gone. */
  readonly closed: Promise<void>;
}

export interface PortIssue {
  readonly kind: 'oversized' | 'malformed';
  readonly bytes: number;
}

function protocolError(code: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } });
}

export function messagePortStream(port: MessagePortLike, opts: { maxMessageBytes?: number; onIssue?: (issue: PortIssue) => void } = {}): Stream {
  const max = opts.maxMessageBytes ?? LIMITS.maxMessageBytes;
  const encoder = new TextEncoder();
  let closed = false;
  const readable = new ReadableStream<AnyMessage>({
    start(controller) {
      const off = port.onMessage((raw) => {
        const text = typeof raw === 'string' ? raw : undefined;
        if (text === undefined) {
          opts.onIssue?.({ kind: 'malformed', bytes: 0 });
          port.post(protocolError(-32700, 'Parse error: send each message as JSON text'));
          return;
        }
        // Cheap bound first (a UTF-16 unit is at most 3 UTF-8 bytes), exact count only near the limit.
        const bytes = text.length * 3 <= max ? text.length : encoder.encode(text).length;
        if (bytes > max) {
          opts.onIssue?.({ kind: 'oversized', bytes });
          port.post(protocolError(-32600, `Invalid request: message over the ${max}-byte limit`));
          return;
        }
        let msg: unknown;
        try {
          msg = JSON.parse(text);
        } catch {
          opts.onIssue?.({ kind: 'malformed', bytes });
          port.post(protocolError(-32700, 'Parse error: the message is not valid JSON'));
          return;
        }
        controller.enqueue(msg as AnyMessage);
      });
      void port.closed.then(() => {
        closed = true;
        off();
        try {
          controller.close();
        } catch {
          // already closed or errored
        }
      });
    },
  });
  const writable = new WritableStream<AnyMessage>({
    write(msg) {
      if (closed) throw new Error('the agent connection is closed');
      port.post(JSON.stringify(msg));
    },
  });
  return { readable, writable };
}
