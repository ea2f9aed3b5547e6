// An ACP Stream over a MessagePort-like channel: JSON-RPC messages travel as
// plain objects (structured clone), one per message, no framing. Pure (no
// node:*), so the host side of an Electron utilityProcess can use it too:
//   portStream({ postMessage: (m) => child.postMessage(m), onMessage: (l) => child.on('message', l) })

import type { AnyMessage, Stream } from '@agentclientprotocol/sdk';

/** The part of a MessagePort the adapter needs. Electron's parentPort and Node's MessagePort both fit via a small shim. */
export interface PortLike {
  postMessage(message: unknown): void;
  /** Registers the single message listener; receives the message data (not the event). */
  onMessage(listener: (data: unknown) => void): void;
  /** Optional: called when the stream is closed from this side. */
  close?(): void;
}

function isMessage(v: unknown): v is AnyMessage {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && (v as { jsonrpc?: unknown }).jsonrpc === '2.0';
}

/**
 * An ACP Stream over a message port. Messages are plain JSON-RPC objects
 * (structured clone); anything else is dropped with a note on stderr, since a
 * port peer cannot be sent a parse error the way a stdio peer can.
 */
export function portStream(port: PortLike): Stream {
  let controllerRef: ReadableStreamDefaultController<AnyMessage> | undefined;
  // Messages that arrive after either side closed are dropped, never enqueued
  // into a closed stream (that would throw from the port's event handler).
  let closed = false;
  const shut = () => {
    if (closed) return;
    closed = true;
    port.close?.();
  };
  const readable = new ReadableStream<AnyMessage>({
    start(controller) {
      controllerRef = controller;
      port.onMessage((data) => {
        if (closed) return;
        if (isMessage(data)) controller.enqueue(data);
        else console.error('tether: dropped a port message that is not a JSON-RPC object');
      });
    },
    cancel() {
      shut();
    },
  });
  const writable = new WritableStream<AnyMessage>({
    write(message) {
      if (closed) throw new Error('the port is closed');
      port.postMessage(message);
    },
    close() {
      if (closed) return;
      shut();
      controllerRef?.close();
    },
  });
  return { readable, writable };
}
