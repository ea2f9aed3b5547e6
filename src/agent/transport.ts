// The agent's transport to the host: newline-delimited JSON on stdio (child
// process: CLI, tests) or JSON-RPC objects over a MessagePort (Electron
// utilityProcess). `openTransport()` picks one; both give an ACP Stream.

import { Readable, Writable } from 'node:stream';
import { type AnyMessage, ndJsonStream, type Stream } from '@agentclientprotocol/sdk';
import { LIMITS } from '../common/limits.ts';

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
  const readable = new ReadableStream<AnyMessage>({
    start(controller) {
      controllerRef = controller;
      port.onMessage((data) => {
        if (isMessage(data)) controller.enqueue(data);
        else console.error('tether-agent: dropped a port message that is not a JSON-RPC object');
      });
    },
    cancel() {
      port.close?.();
    },
  });
  const writable = new WritableStream<AnyMessage>({
    write(message) {
      port.postMessage(message);
    },
    close() {
      port.close?.();
      try {
        controllerRef?.close();
      } catch {
        // Already closed.
      }
    },
  });
  return { readable, writable };
}

/** Electron's `process.parentPort` in a utilityProcess (typed here: src/agent may not import electron). */
interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
}

export function stdioStream(): Stream {
  const output = Writable.toWeb(process.stdout) as WritableStream<Uint8Array>;
  const input = Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>;
  return ndJsonStream(output, input, { maxMessageBytes: LIMITS.maxMessageBytes });
}

export function openTransport(): { stream: Stream; kind: 'stdio' | 'port' } {
  const parentPort = (process as unknown as { parentPort?: ElectronParentPort }).parentPort;
  if (parentPort) {
    return {
      kind: 'port',
      stream: portStream({ postMessage: (m) => parentPort.postMessage(m), onMessage: (l) => parentPort.on('message', (e) => l(e.data)) }),
    };
  }
  return { kind: 'stdio', stream: stdioStream() };
}
