// An ACP Stream over a message channel (an Electron utilityProcess's own
// port, which the agent reads as `process.parentPort`). One JSON-RPC message
// per port message, as a plain object (structured clone), which is what the
// agent's port transport sends and expects. The host still applies the size
// limit it applies on stdio (measured as JSON text) and answers anything that
// is not a JSON-RPC object, or is too large, with a JSON-RPC error; the
// connection goes on.

import type { AnyMessage, Stream } from '@agentclientprotocol/sdk';
import type { FramingIssue } from '../host/acp-transport.ts';
import { LIMITS } from '../common/limits.ts';

export interface MessagePortLike {
  post(message: unknown): void;
  /** Subscribes to incoming messages; returns an unsubscribe. */
  onMessage(listener: (message: unknown) => void): () => void;
  /** Resolves when the other side is gone. */
  readonly closed: Promise<void>;
}

function protocolError(code: number, message: string): AnyMessage {
  return { jsonrpc: '2.0', id: null, error: { code, message } } as unknown as AnyMessage;
}

function isMessage(v: unknown): v is AnyMessage {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && (v as { jsonrpc?: unknown }).jsonrpc === '2.0';
}

export function messagePortStream(port: MessagePortLike, opts: { maxMessageBytes?: number; onIssue?: (issue: FramingIssue) => void } = {}): Stream {
  const max = opts.maxMessageBytes ?? LIMITS.maxMessageBytes;
  let closed = false;
  const readable = new ReadableStream<AnyMessage>({
    start(controller) {
      const off = port.onMessage((raw) => {
        let bytes: number;
        try {
          bytes = JSON.stringify(raw)?.length ?? 0;
        } catch {
          bytes = -1; // cycles or BigInt: not JSON
        }
        if (bytes < 0 || !isMessage(raw)) {
          opts.onIssue?.({ kind: 'malformed', bytes: Math.max(0, bytes) });
          port.post(protocolError(-32600, 'Invalid request: each port message must be one JSON-RPC 2.0 object'));
          return;
        }
        if (bytes > max) {
          opts.onIssue?.({ kind: 'oversized', bytes });
          port.post(protocolError(-32600, `Invalid request: message over the ${max}-byte limit`));
          return;
        }
        controller.enqueue(raw);
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
      port.post(msg);
    },
  });
  return { readable, writable };
}
