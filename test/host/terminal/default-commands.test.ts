// The command rules of the built-in policy (resources/policy/default-commands.cedar),
// checked with `tether policy test` on their example file.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPolicyCommand } from '../../../src/cli/policy-command.ts';

describe('default command policy', () => {
  it('decides every example in resources/policy/tests/default-commands.test.json as written', async () => {
    let out = '';
    const code = await runPolicyCommand(['test', join(import.meta.dirname, '..', '..', '..', 'resources', 'policy', 'tests', 'default-commands.test.json')], { stdout: (s) => (out += s), stderr: (s) => (out += s) });
    expect(out).not.toMatch(/FAIL {2}/);
    expect(code).toBe(0);
    expect(out).toMatch(/PASS: 23\/23 cases passed/);
  });
});
