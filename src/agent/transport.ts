// The agent's transport to the host: newline-delimited JSON on stdio (child
// process: CLI, tests) or JSON-RPC objects over a MessagePort (Electron
// utilityProcess). `openTransport()` picks one; both give an ACP Stream.

import { Readable, Writable } from 'node:stream';
import { ndJsonStream, type Stream } from '@agentclientprotocol/sdk';
import { LIMITS } from '../common/limits.ts';
import { portStream } from './port-stream.ts';

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
