// Entry of the built-in agent process: `node src/agent/main.ts` (stdio) or an
// Electron utilityProcess (MessagePort). It holds no secrets and reaches
// files, commands and the model only through the host.

import { createAgentApp } from './acp-agent.ts';
import { openTransport } from './transport.ts';

// stdout carries the protocol; anything logged goes to stderr.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { stream, kind } = openTransport();
const connection = createAgentApp().connect(stream);

connection.closed.then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`tether-agent: connection failed: ${(e as Error).message}`);
    process.exit(1);
  },
);

if (kind === 'stdio') {
  // The host closing our stdin ends the session.
  process.stdin.on('end', () => connection.close());
}
