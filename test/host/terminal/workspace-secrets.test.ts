// Workspace files policy keeps from the agent (a project's .env, its keys) are
// hidden from its sandboxed commands too: with the default policy, the real
// Cedar engine and the real bubblewrap sandbox, `cat`, `grep -r`, a symlink
// and a copy all find nothing there, while the rest of the workspace reads as
// usual. A workspace too large to check makes the command ask.
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BubblewrapSandbox } from '../../../src/host/sandbox/bubblewrap-sandbox.ts';
import { useScratchSandbox, type Scratch } from '../sandbox/sandbox-fixture.ts';
import { makeHost, runCommand, type Host } from './terminal-fixture.ts';

const SECRET = 'sk-live-0123456789abcdef';

const env = useScratchSandbox();
let s: Scratch;
let sb: BubblewrapSandbox;
let h: Host;

beforeAll(() => {
  s = env.scratch;
  sb = env.sandbox;
});
beforeEach(() => {
  writeFileSync(join(s.workspace, '.env'), `API_KEY=${SECRET}\n`);
  mkdirSync(join(s.workspace, 'svc'), { recursive: true });
  writeFileSync(join(s.workspace, 'svc', '.env.production'), `DB_PASSWORD=${SECRET}\n`);
  writeFileSync(join(s.workspace, 'svc', '.env.example'), 'DB_PASSWORD=changeme\n');
  writeFileSync(join(s.workspace, 'svc', 'app.js'), 'console.log(process.env.DB_PASSWORD);\n');
});
afterEach(async () => {
  await h?.close();
  for (const f of ['.env', 'svc', 'env-link', 'copy.txt', 'many', 'node_modules']) rmSync(join(s.workspace, f), { recursive: true, force: true });
});

describe('terminal service: workspace files policy forbids the agent are hidden from its commands', () => {
  it('grep -r, find -exec, python and a symlink find nothing in them; the other files read as usual; the dialog and the audit say what was hidden', async () => {
    h = await makeHost(s, sb);
    symlinkSync('.env', join(s.workspace, 'env-link'));
    // Reads the line parser cannot name: each is decided on the command alone.
    const r = await runCommand(h, [
      'grep -r -h -e API_KEY -e DB_PASSWORD . | sort',
      "find . -name '.env*' -exec cat {} +",
      'python3 -c "import os; print(open(os.path.join(\'svc\', \'.env.\' + \'production\')).read())" 2>&1',
      'for f in env-*; do cat "$f"; done',
      'echo done',
    ].join('; '));
    expect(r.output).not.toContain(SECRET);
    expect(r.output).toContain('DB_PASSWORD=changeme'); // a template is not a secret
    expect(r.output).toContain('console.log(process.env.DB_PASSWORD)');
    expect(r.output).toContain('done');

    const notes = h.consent.notes(0).join('\n');
    expect(notes).toMatch(/hidden from the command because policy keeps them from the agent: .*\.env/);
    const decision = h.records().find((rec) => rec.type === 'decision' && rec.request?.command?.startsWith('grep -r'));
    const hidden = (decision?.request as { sandbox?: { hidden?: string[] } }).sandbox?.hidden ?? [];
    expect(hidden).toEqual(expect.arrayContaining([join(s.workspace, '.env'), join(s.workspace, 'svc', '.env.production')]));
    expect(hidden).not.toContain(join(s.workspace, 'svc', '.env.example'));
  });

  it('hides a whole directory policy forbids, and what is in it', async () => {
    h = await makeHost(s, sb, { userPolicy: '@id("no-private")\nforbid (principal, action in Tether::Action::"fs", resource is Tether::File) when { resource.lowerPath like "*/private" || resource.lowerPath like "*/private/*" };\n' });
    mkdirSync(join(s.workspace, 'svc', 'private'));
    writeFileSync(join(s.workspace, 'svc', 'private', 'token.txt'), SECRET);
    const r = await runCommand(h, 'ls -R svc; grep -r sk-live . ; find svc -type f -exec cat {} +; echo done');
    expect(r.output).not.toContain(SECRET);
    expect(r.output).not.toContain('token.txt');
    expect(r.output).toContain('done');
  });

  it('checks the workspace in the background when a session starts, so its first command asks policy about no file again', async () => {
    h = await makeHost(s, sb);
    const decide = vi.spyOn(h.policy, 'decide');
    const fileChecks = () => decide.mock.calls.filter(([r]) => r.id.includes('/read:')).length;
    h.service.prepareSession('s1');
    let seen = -1;
    await vi.waitFor(() => {
      const now = fileChecks();
      const settled = now > 0 && now === seen;
      seen = now;
      expect(settled).toBe(true);
    }, { timeout: 10_000, interval: 100 });
    decide.mockClear();
    const r = await runCommand(h, 'cat svc/app.js');
    expect(r.output).toContain('console.log');
    expect(fileChecks()).toBe(0);
  });

  it('does not walk node_modules, and pins the folders holding hidden files so a command cannot carry them there', async () => {
    h = await makeHost(s, sb);
    mkdirSync(join(s.workspace, 'node_modules', 'pkg', 'lib'), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(join(s.workspace, 'node_modules', 'pkg', 'lib', `m${i}.js`), '');
    const decide = vi.spyOn(h.policy, 'decide');
    const r = await runCommand(h, 'mv svc node_modules/svc; echo "mv=$?"; echo new > svc/new.txt; echo "write=$?"; ls node_modules/pkg/lib | wc -l');
    expect(r.output).toMatch(/mv=[1-9]/);
    expect(r.output).toMatch(/write=0/); // a pinned folder stays writable
    expect(r.output).toContain('50');
    expect(decide.mock.calls.filter(([q]) => q.id.includes('/read:node_modules/'))).toEqual([]);
    const decision = h.records().find((rec) => rec.type === 'decision' && rec.request?.command?.startsWith('mv svc'));
    expect((decision?.request as { sandbox?: { pinned?: string[] } }).sandbox?.pinned).toEqual([join(s.workspace, 'svc')]);
  });

  it('asks, saying why, when the workspace is too large to check', async () => {
    h = await makeHost(s, sb, { service: { hideForbiddenFiles: { maxEntries: 20 } } });
    mkdirSync(join(s.workspace, 'many'));
    for (let i = 0; i < 30; i++) writeFileSync(join(s.workspace, 'many', `f${i}`), '');
    h.consent.answers = ['deny'];
    const before = h.consent.questions.length;
    await expect(h.service.create({ sessionId: 's1', command: 'ls' })).rejects.toThrow(/denied/);
    expect(h.consent.questions.length).toBe(before + 1);
    expect(h.consent.notes().join('\n')).toMatch(/more than 20 entries, so Tether could not check all of them/);
  });
});
