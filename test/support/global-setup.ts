// Every test run gets a temporary directory of its own, used as TMPDIR by the
// test processes (and whatever they start), and removed when the run ends, so
// the temp workspaces, logs and homes tests make (about 400 per run) do not
// pile up in the machine's /tmp. A test that needs a file to outlive the run
// has no business in a temp directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'tether-test-run-'));
  const previous = process.env['TMPDIR'];
  process.env['TMPDIR'] = root;
  return () => {
    if (previous === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = previous;
    try {
      rmSync(root, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      // Not a test failure (a process a killed test left behind may still be writing there).
      console.warn(`tether tests: could not remove the run's temporary directory ${root}: ${(e as Error).message}`);
    }
  };
}
