// The renderer end to end: real headless Chromium, over http, through the dev
// bridge, to a real headless host (Cedar policy, broker, audit log, egress
// gateway) and a real agent process driven by a scripted model. Screenshots
// of each step go to test-results/renderer/.
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CapabilityRequest } from '../../src/common/capability.ts';
import { newTrace } from '../../src/common/trace.ts';
import { readAuditRecords } from '../../src/host/audit/read-records.ts';
import { SHIP_TOKEN_ENV } from '../../src/host/audit/ship-target.ts';
import { startDevHost, type DevHost } from '../../src/host/dev-bridge/dev-host.ts';
import { NoteSigningKey } from '../../src/host/keychain/note-key.ts';
import { StaticKeyStore } from '../../src/host/keychain/static-key-store.ts';
import { toolHistory, type ModelScript, type ScriptedConversation } from '../../src/host/scripted-model.ts';
import { LoopbackCollector } from '../host/audit/loopback-collector.ts';
import { buildRenderer, contrastFailures, keyboardReach, launchChromium, overflowing, screenshot, unlabelledControls, watchProblems } from './support/browser.ts';

const APP_TS = `export function greet(name: string): string {\n  // Say hello.\n  return 'Hello ' + name;\n}\n`;
const LIVE_COMMAND = "printf 'tick %s\\n' 1; sleep 4; printf 'tick %s\\n' 2";
const CONFIG_TS = 'export const retries = 3;\n';
const LIMITS_TS = 'export const limit = 10;\n';

let tmp: string;
let workspace: string;
let dev: DevHost;
let collector: LoopbackCollector;
let context: BrowserContext;
let page: Page;
let problems: string[];
const gates = new Map<string, () => void>();
const gate = (name: string) => new Promise<void>((resolve) => gates.set(name, resolve));
let waitingForRevoke: Promise<void> | undefined;

function lastTask(conv: ScriptedConversation): string {
  return [...conv.messages].reverse().find((m) => m.role === 'user')?.text ?? '';
}

// One scripted model for all flows; the task text picks the scenario.
const script: ModelScript = async (conv) => {
  const task = lastTask(conv);
  const done = toolHistory(conv).filter((h) => h.result !== undefined);
  const calls = done.length;
  if (task.includes('flow:write')) {
    if (calls === 0) return { text: 'I will make the greeting friendlier.', toolCalls: [{ name: 'edit_file', input: { path: 'src/app.ts', old_string: "return 'Hello ' + name;", new_string: 'return `Hello, ${name}! Welcome to Tether.`;' } }] };
    return { text: `Done: ${done.at(-1)!.result!.isError ? 'the edit was refused' : 'edited src/app.ts'}.` };
  }
  if (task.includes('flow:secret')) {
    if (calls === 0) return { text: 'Let me check the configuration.', toolCalls: [{ name: 'read_file', input: { path: '.env' } }] };
    return { text: 'I could not read .env; policy forbids it.' };
  }
  if (task.includes('flow:grant')) {
    if (calls === 0) return { toolCalls: [{ name: 'write_file', input: { path: 'NOTES.md', content: '# Notes\n\nfirst\n' } }] };
    if (calls === 1) return { toolCalls: [{ name: 'write_file', input: { path: 'NOTES.md', content: '# Notes\n\nsecond\n' } }] };
    if (calls === 2) {
      await waitingForRevoke;
      return { toolCalls: [{ name: 'write_file', input: { path: 'NOTES.md', content: '# Notes\n\nthird\n' } }] };
    }
    return { text: 'Finished the notes.' };
  }
  if (task.includes('flow:command')) return { text: 'I will run the cleanup commands.' };
  if (task.includes('flow:terminal')) {
    if (calls === 0) return { toolCalls: [{ name: 'run_command', input: { command: 'echo hello from the sandbox && ls src' } }] };
    return { text: 'The command ran.' };
  }
  if (task.includes('flow:live')) {
    if (calls === 0) return { toolCalls: [{ name: 'run_command', input: { command: LIVE_COMMAND } }] };
    return { text: 'The slow script finished.' };
  }
  if (task.includes('flow:deny-command')) {
    if (calls === 0) return { text: 'Cleaning the build folder.', toolCalls: [{ name: 'run_command', input: { command: 'rm -rf build' } }] };
    return { text: done.at(-1)!.result!.isError ? 'The command was denied.' : 'Cleaned.' };
  }
  if (task.includes('flow:undo-conflict')) {
    if (calls === 0) return { toolCalls: [{ name: 'write_file', input: { path: 'src/limits.ts', content: 'export const limit = 99;\n' } }] };
    return { text: 'Raised the limit.' };
  }
  if (task.includes('flow:undo')) {
    if (calls === 0) return { toolCalls: [{ name: 'write_file', input: { path: 'src/config.ts', content: 'export const retries = 0; // no retries\n' } }] };
    return { text: 'Turned retries off.' };
  }
  if (task.includes('flow:zoom')) {
    if (calls === 0) return { toolCalls: [{ name: 'write_file', input: { path: 'ZOOM.md', content: '# Zoom\n\nReadable at 200%.\n' } }] };
    return { text: 'Wrote the note.' };
  }
  if (task.includes('flow:stop')) {
    if (calls === 0) return { text: 'Writing a large file.', toolCalls: [{ name: 'write_file', input: { path: 'big.txt', content: 'x\n'.repeat(100) } }] };
    return { text: 'The write was stopped.' };
  }
  return { text: 'Nothing to do.' };
};

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tether-flows-'));
  workspace = join(tmp, 'workspace');
  await mkdir(join(workspace, 'src'), { recursive: true });
  await writeFile(join(workspace, 'src', 'app.ts'), APP_TS);
  await writeFile(join(workspace, 'src', 'config.ts'), CONFIG_TS);
  await writeFile(join(workspace, 'src', 'limits.ts'), LIMITS_TS);
  await writeFile(join(workspace, '.env'), 'API_TOKEN=never-shown\n');
  const staticRoot = await buildRenderer(join(tmp, 'renderer'));
  // A SIEM collector on loopback the audit log is shipped to (the audit view shows how it stands).
  const key = NoteSigningKey.generate('tether-test');
  collector = new LoopbackCollector('flows-token', [key.verifier()]);
  await collector.start();
  process.env[SHIP_TOKEN_ENV] = 'flows-token';
  dev = await startDevHost({
    workspace, dataDir: join(tmp, 'data'), staticRoot, demoScript: script, consentTimeoutMs: 120_000,
    // The OS keychain has its own tests against a real gnome-keyring (test/host/keychain).
    keyStore: new StaticKeyStore(key, 'a key made for this test'),
    ship: [collector.url],
    auditRecheckMs: 3000, // how soon an open audit view verifies records that landed after its last verification
  });
  context = await launchChromium(join(tmp, 'chromium-profile'));
}, 120_000);

afterAll(async () => {
  await context?.close();
  await dev?.close();
  await collector?.stop();
  delete process.env[SHIP_TOKEN_ENV];
  await rm(tmp, { recursive: true, force: true });
});

afterEach(async () => {
  // Each flow ends its session so the next one starts clean.
  await dev.host.service.endSession();
  if (page && !page.isClosed()) await page.close();
});

async function openApp(): Promise<Page> {
  page = await context.newPage();
  problems = watchProblems(page);
  await page.goto(dev.bridge.pageUrl);
  await page.getByRole('heading', { name: 'Session', exact: true }).waitFor();
  return page;
}

async function startSession(p: Page, task: string, shot?: string): Promise<void> {
  // Flows after the first one find the disclosure acknowledged; run alone, they acknowledge it here.
  const ack = p.getByRole('button', { name: 'I understand' });
  if (await ack.isVisible().catch(() => false)) await ack.click();
  await p.getByRole('button', { name: 'Choose…' }).click();
  await poll(() => p.getByLabel('Workspace folder').inputValue()).toBe(workspace);
  await p.getByLabel('Provider').selectOption('scripted');
  await p.getByLabel('Task').fill(task);
  if (shot) await screenshot(p, shot);
  await p.getByRole('button', { name: 'Start session' }).click();
}

/** Polls for up to 15 s (a session start spawns the agent process; the machine is shared). */
const poll = <T>(f: () => T | Promise<T>) => expect.poll(f, { timeout: 15_000, interval: 50 });
const dialog = (p: Page) => p.locator('dialog.consent[open]');
const timelineEntry = (p: Page, text: RegExp) => p.locator('.timeline .entry').filter({ hasText: text });

describe('renderer flows against a real host', () => {
  it('shows the first-run disclosure from the policy in force and audits the acknowledgement', async () => {
    const p = await openApp();
    const disclosure = p.getByRole('dialog', { name: /what the agent can access/ });
    await disclosure.waitFor();
    await poll(() => disclosure.getByRole('row', { name: /Read secrets in the workspace/ }).textContent()).toMatch(/Never.*secret-env-files/s);
    await poll(() => disclosure.getByRole('row', { name: /Create or change files in the workspace/ }).textContent()).toMatch(/Asks you first.*workspace-write/s);
    await screenshot(p, '01-first-run-disclosure');
    expect(await contrastFailures(p, 'dialog')).toEqual([]);
    await p.getByRole('button', { name: 'I understand' }).click();
    await disclosure.waitFor({ state: 'detached' });
    const ack = (await readAuditRecords(dev.host.auditDir)).find((r) => r.type === 'consent.disclosure') as { detail?: { acknowledged?: boolean } } | undefined;
    expect(ack?.detail?.acknowledged).toBe(true);
    // A reload does not ask again for the same policy.
    await p.reload();
    await p.getByRole('heading', { name: 'Session', exact: true }).waitFor();
    await p.waitForTimeout(300);
    expect(await p.getByRole('dialog', { name: /what the agent can access/ }).count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it('starts a session and approves a write after reading its diff', async () => {
    const p = await openApp();
    await startSession(p, 'flow:write make the greeting friendlier', '02-start-session');
    const d = dialog(p);
    await d.waitFor();
    await poll(() => d.getByRole('heading').first().textContent()).toMatch(/change a file/);
    const diff = d.getByTestId('diff');
    await poll(() => diff.locator('tr.del').textContent()).toContain("return 'Hello ' + name;");
    await poll(() => diff.locator('tr.add').textContent()).toContain('Welcome to Tether');
    expect(await diff.locator('tr.del .tok-kw').first().textContent()).toBe('return');
    expect(await diff.locator('tr.add .tok-str').count()).toBeGreaterThan(0);
    expect(await d.textContent()).toContain('workspace-write');
    expect(await d.textContent()).toMatch(/grants exactly: write the file src\/app\.ts/);
    await poll(() => d.getByRole('timer').textContent()).toMatch(/Denied automatically in 1:5\d/);
    // Focus starts on what will happen (the preview), not on a button a stray Enter would press.
    expect(await d.evaluate((el) => el.contains(document.activeElement) && !(document.activeElement instanceof HTMLButtonElement))).toBe(true);
    await screenshot(p, '03-consent-write-diff');
    expect(await contrastFailures(p, 'dialog.consent')).toEqual([]);
    expect(await unlabelledControls(p)).toEqual([]);
    await d.getByRole('button', { name: /Allow once/ }).click();
    await d.waitFor({ state: 'detached' });
    await poll(() => timelineEntry(p, /Write src\/app\.ts/).textContent()).toContain('asked → you allowed it once');
    await poll(() => readFile(join(workspace, 'src', 'app.ts'), 'utf8')).toContain('Welcome to Tether');
    await poll(() => p.locator('.pill').textContent()).toMatch(/Ready for a task/);
    await screenshot(p, '04-timeline-after-write');
    expect(await contrastFailures(p)).toEqual([]);
    expect(await unlabelledControls(p)).toEqual([]);
    // The terminal mirror loads xterm.js on demand, under the same CSP, read-only.
    await p.getByRole('tab', { name: 'Terminal' }).click();
    await p.locator('.xterm').waitFor();
    expect(await p.locator('.xterm-helper-textarea').count()).toBeLessThanOrEqual(1);
    await p.getByRole('tab', { name: 'Audit' }).click();
    await poll(() => p.getByTestId('audit-verification').textContent()).toMatch(/Log verifies/);
    await poll(async () => {
      await p.getByRole('button', { name: 'Refresh' }).click();
      return p.getByTestId('audit-shipping').textContent();
    }).toMatch(/Shipping to http-127\.0\.0\.1-\d+-[0-9a-f]{8}: up to date/);
    expect(collector.seqs.size).toBeGreaterThan(0);
    await screenshot(p, '05-audit-view');
    expect(problems).toEqual([]);
  });

  it('keeps an open audit view verified while records land, on its own timer: no refresh, no further event', async () => {
    const p = await openApp();
    // Run alone, this flow finds the first-run disclosure still open.
    const understood = p.getByRole('button', { name: 'I understand' });
    if (await understood.isVisible().catch(() => false)) await understood.click();
    await p.getByRole('tab', { name: 'Audit' }).click();
    const verification = () => p.getByTestId('audit-verification').textContent();
    await poll(verification).toMatch(/Log verifies/);
    // Two records land while the view is open: the first is verified at once (or just was), the second
    // falls in the window after it, so the view says it is pending and when the host will verify it.
    const ack = async () => dev.host.service.acknowledgeDisclosure({ fingerprint: (await dev.host.service.getDisclosure({})).fingerprint });
    await ack();
    await ack();
    await poll(verification).toMatch(/Log verifies.*records written since are verified within 3 s/);
    // Nothing else happens now: only the view's own timer can ask again, and then the host verifies them.
    await poll(verification).toMatch(/^✓ Log verifies: (?!.*written since)/);
    expect(problems).toEqual([]);
  });

  it('shows a denial by policy with the rule that decided it', async () => {
    const p = await openApp();
    await startSession(p, 'flow:secret read the config');
    const entry = timelineEntry(p, /Read \.env/);
    await poll(() => entry.textContent()).toContain('denied by rule secret-env-files');
    expect(await dialog(p).count()).toBe(0);
    await entry.getByRole('button').click();
    await poll(() => entry.textContent()).toMatch(/Environment files \(\.env, \.env\.\*\) usually hold API keys/);
    expect(await p.textContent('body')).not.toContain('never-shown');
    await p.getByLabel('Show').selectOption('denied');
    await poll(() => p.locator('.timeline .entry').count()).toBe(1);
    await screenshot(p, '06-denied-by-policy');
    expect(problems).toEqual([]);
  });

  it('grants a write for the session, stops asking, and asks again once the grant is revoked', async () => {
    waitingForRevoke = gate('revoked');
    const p = await openApp();
    await startSession(p, 'flow:grant keep notes');
    const d = dialog(p);
    await d.waitFor();
    await d.getByRole('button', { name: /Allow for this session/ }).click();
    await d.waitFor({ state: 'detached' });
    await poll(() => timelineEntry(p, /Write NOTES\.md/).count()).toBe(2);
    await poll(() => timelineEntry(p, /Write NOTES\.md/).nth(1).textContent()).toContain('covered by your session grant');
    await poll(() => readFile(join(workspace, 'NOTES.md'), 'utf8')).toContain('second');
    const grant = p.locator('[data-grant]');
    await poll(() => grant.textContent()).toContain('write NOTES.md');
    await screenshot(p, '07-session-grant');
    await p.getByRole('button', { name: /Revoke: write NOTES\.md/ }).click();
    await poll(() => grant.count()).toBe(0);
    gates.get('revoked')!();
    await d.waitFor();
    await d.getByRole('button', { name: /Deny/ }).click();
    await poll(() => timelineEntry(p, /Write NOTES\.md/).nth(2).textContent()).toContain('asked → you denied it');
    expect(await readFile(join(workspace, 'NOTES.md'), 'utf8')).toContain('second');
    expect(problems).toEqual([]);
  });

  it('denies a command after reading it: full command line, working directory and sandbox profile', async () => {
    await mkdir(join(workspace, 'build'), { recursive: true });
    await writeFile(join(workspace, 'build', 'keep.txt'), 'still here\n');
    const p = await openApp();
    await startSession(p, 'flow:deny-command clean the build folder');
    const d = dialog(p);
    await d.waitFor();
    await poll(() => d.getByRole('heading').first().textContent()).toMatch(/run a command/);
    await poll(() => d.getByTestId('command').textContent()).toBe('rm -rf build');
    const text = (await d.textContent())!;
    expect(text).toContain(workspace); // working directory and writable path
    expect(text).toMatch(/Network: off/);
    expect(text).toMatch(/Hidden:/);
    expect(text).toMatch(/command\s*Running a command needs your consent/);
    await screenshot(p, '08-consent-command');
    expect(await contrastFailures(p, 'dialog.consent')).toEqual([]);
    await p.waitForTimeout(450); // the shortcut guard: keys typed before the dialog appeared do not answer it
    await p.keyboard.press('d');
    await d.waitFor({ state: 'detached' });
    await poll(() => timelineEntry(p, /Run rm -rf build/).textContent()).toContain('asked → you denied it');
    expect(await readFile(join(workspace, 'build', 'keep.txt'), 'utf8')).toBe('still here\n');
    expect(problems).toEqual([]);
  });

  // The agent runs its tools one after another, so several pending questions
  // are produced here by sending requests straight into the real session's
  // broker, the way the ACP handlers do: policy, consent, UI and audit are real.
  it('queues several requests one dialog at a time, in order', async () => {
    const p = await openApp();
    await startSession(p, 'flow:command clean up');
    await poll(() => p.locator('.pill').textContent()).toMatch(/Ready for a task/);
    const session = dev.host.sessions()[0]!;
    const exec = (line: string): Promise<string> => {
      const [program, ...args] = line.split(' ');
      const request: CapabilityRequest = {
        id: randomUUID(), sessionId: session.id, action: 'exec', kind: 'exec', method: 'terminal/create', workspace,
        command: { line, cwd: workspace, program: program!, args }, trace: newTrace(),
      };
      const sandbox = { writable: [workspace], hidden: ['~/.ssh', '~/.aws', '~/.config/gcloud'], network: 'none' as const };
      return session.broker.execute(request, {
        preview: async () => ({ type: 'exec', command: line, cwd: workspace, sandbox, notes: [] }),
        effect: async () => ({ result: 'ran' }),
      }).then((r) => r, (e: Error) => `refused: ${e.message}`);
    };
    const results = [exec('rm -rf build'), exec('npm test'), exec('git status')];
    const d = dialog(p);
    await d.waitFor();
    await poll(() => d.textContent()).toMatch(/Request 1 of 3 waiting · next: Run npm test/);
    expect(await p.locator('dialog').count()).toBe(1);
    await poll(() => d.getByTestId('command').textContent()).toBe('rm -rf build');
    expect(await d.textContent()).toMatch(/grants exactly: exec exactly `rm -rf build`/);
    await screenshot(p, '08b-consent-queue');
    await p.waitForTimeout(450);
    await p.keyboard.press('d');
    expect(await results[0]).toMatch(/^refused: denied by the user/);
    await poll(() => d.getByTestId('command').textContent()).toBe('npm test');
    await poll(() => d.textContent()).toMatch(/Request 1 of 2 waiting/);
    await d.getByRole('button', { name: /Allow once/ }).click();
    expect(await results[1]).toBe('ran');
    await poll(() => d.getByTestId('command').textContent()).toBe('git status');
    await d.getByRole('button', { name: /^Deny/ }).click();
    expect(await results[2]).toMatch(/^refused/);
    await d.waitFor({ state: 'detached' });
    await poll(() => timelineEntry(p, /Run rm -rf build/).textContent()).toContain('asked → you denied it');
    await poll(() => timelineEntry(p, /Run npm test/).textContent()).toContain('asked → you allowed it once');
    expect(problems).toEqual([]);
  });

  it('mirrors command output read-only in the terminal view', async () => {
    const p = await openApp();
    await startSession(p, 'flow:terminal run the tests');
    const d = dialog(p);
    await d.waitFor();
    await poll(() => d.getByTestId('command').textContent()).toBe('echo hello from the sandbox && ls src');
    await d.getByRole('button', { name: /Allow once/ }).click();
    await poll(() => p.locator('.pill').textContent()).toMatch(/Ready for a task/);
    await p.getByRole('tab', { name: 'Terminal' }).click();
    const rows = p.locator('.xterm-rows');
    await rows.waitFor();
    await poll(() => rows.textContent()).toContain('$ echo hello from the sandbox && ls src');
    await poll(() => rows.textContent()).toContain('hello from the sandbox');
    await poll(() => rows.textContent()).toContain('app.ts');
    await poll(() => timelineEntry(p, /Run echo hello/).textContent()).toContain('asked → you allowed it once');
    await screenshot(p, '09-terminal');
    expect(problems).toEqual([]);
  });

  it('streams command output into the terminal view while the command is still running', async () => {
    const p = await openApp();
    await startSession(p, 'flow:live run the slow script');
    const d = dialog(p);
    await d.waitFor();
    await poll(() => d.getByTestId('command').textContent()).toBe(LIVE_COMMAND);
    await d.getByRole('button', { name: /Allow once/ }).click();
    await d.waitFor({ state: 'detached' });
    await p.getByRole('tab', { name: 'Terminal' }).click();
    const rows = p.locator('.xterm-rows');
    await rows.waitFor();
    await poll(() => rows.textContent()).toContain('tick 1');
    // The command sleeps before its second line: it is still running.
    const now = (await rows.textContent())!;
    expect(now).toContain(`$ ${LIVE_COMMAND}`);
    expect(now).not.toContain('tick 2');
    expect(now).not.toContain('[exited');
    expect(await p.locator('.pill').textContent()).toMatch(/Agent working/);
    await screenshot(p, '17-terminal-live');
    await poll(() => rows.textContent()).toContain('tick 2');
    await poll(() => rows.textContent()).toContain('[exited with code 0]');
    await poll(() => p.locator('.pill').textContent()).toMatch(/Ready for a task/);
    expect(problems).toEqual([]);
  });

  it('stops the agent: the pending request is denied at once and nothing is written', async () => {
    const p = await openApp();
    await startSession(p, 'flow:stop write a big file');
    const d = dialog(p);
    await d.waitFor();
    // The page behind the modal is inert, so the dialog carries its own stop button.
    await d.getByRole('button', { name: /Stop the agent/ }).click();
    await d.waitFor({ state: 'detached' });
    await poll(() => timelineEntry(p, /Write big\.txt/).textContent()).toMatch(/stopped|denied/);
    await poll(() => p.locator('.pill').textContent()).toMatch(/Stopped/);
    await expect(readFile(join(workspace, 'big.txt'), 'utf8')).rejects.toThrow(/ENOENT/);
    await screenshot(p, '10-stopped');
    expect(problems).toEqual([]);
  });

  /** Starts a session whose agent writes one file, and approves that write. */
  async function approvedWrite(p: Page, task: string, file: string): Promise<void> {
    await startSession(p, task);
    const d = dialog(p);
    await d.waitFor();
    await poll(() => d.getByRole('heading').first().textContent()).toMatch(/change a file/);
    await d.getByRole('button', { name: /Allow once/ }).click();
    await d.waitFor({ state: 'detached' });
    await poll(() => readFile(join(workspace, file), 'utf8')).not.toBe(file === 'src/config.ts' ? CONFIG_TS : LIMITS_TS);
    await poll(() => p.locator('.pill').textContent()).toMatch(/Ready for a task/);
  }

  it('undoes an approved write from the timeline after the user reads the restore diff and approves it', async () => {
    const p = await openApp();
    await approvedWrite(p, 'flow:undo turn retries off', 'src/config.ts');
    const entry = timelineEntry(p, /Write src\/config\.ts/);
    const undo = entry.getByRole('button', { name: /^Undo to here/ });
    await poll(() => undo.isEnabled()).toBe(true);
    await screenshot(p, '12-undo-to-here');
    await undo.click();
    const d = dialog(p);
    await d.waitFor();
    await poll(() => d.getByRole('heading').first().textContent()).toMatch(/^Undo: put 1 file back as at checkpoint \d+\?$/);
    expect(await d.textContent()).toMatch(/Overwrite\s*src\/config\.ts/);
    const diff = d.getByTestId('diff');
    await poll(() => diff.locator('tr.del').textContent()).toContain('retries = 0');
    await poll(() => diff.locator('tr.add').textContent()).toContain('retries = 3');
    expect(await d.getByTestId('restore-conflicts').count()).toBe(0);
    // The file is untouched until the user allows it.
    expect(await readFile(join(workspace, 'src', 'config.ts'), 'utf8')).toContain('retries = 0');
    await screenshot(p, '13-undo-consent-diff');
    expect(await contrastFailures(p, 'dialog.consent')).toEqual([]);
    await d.getByRole('button', { name: /Allow once/ }).click();
    await d.waitFor({ state: 'detached' });
    await poll(() => readFile(join(workspace, 'src', 'config.ts'), 'utf8')).toBe(CONFIG_TS);
    await poll(() => p.locator('.banner.ok').textContent()).toMatch(/Restored 1 file to checkpoint \d+/);
    const restore = timelineEntry(p, /Undo: restore files from a checkpoint/);
    await poll(() => restore.textContent()).toContain('asked → you allowed it once');
    // The undo is undoable too, and every checkpoint is listed under Undo.
    await poll(() => restore.getByRole('button', { name: /^Undo to here/ }).count()).toBe(1);
    await p.getByRole('tab', { name: 'Undo' }).click();
    await poll(() => p.locator('[data-checkpoint]').filter({ hasText: 'After an undo' }).count()).toBeGreaterThan(0);
    await screenshot(p, '14-after-undo');
    expect(await contrastFailures(p)).toEqual([]);
    expect(await unlabelledControls(p)).toEqual([]);
    // Usable at 1280×800: nothing cut off, every control reachable by keyboard and in view.
    expect(await overflowing(p)).toEqual([]);
    const reach = await keyboardReach(p, 'body');
    expect([reach.unreached, reach.hidden]).toEqual([[], []]);
    expect(problems).toEqual([]);
  });

  it('tells the user when an undo would overwrite a file changed outside Tether, and overwrites only after an explicit second choice', async () => {
    const p = await openApp();
    await approvedWrite(p, 'flow:undo-conflict raise the limit', 'src/limits.ts');
    const mine = 'export const limit = 42; // edited by hand\n';
    await writeFile(join(workspace, 'src', 'limits.ts'), mine);
    const undo = timelineEntry(p, /Write src\/limits\.ts/).getByRole('button', { name: /^Undo to here/ });
    await poll(() => undo.isEnabled()).toBe(true);
    await undo.click();
    const warning = p.getByRole('alertdialog', { name: /changed outside Tether/ });
    await warning.waitFor();
    await poll(() => warning.textContent()).toMatch(/src\/limits\.ts\s*changed outside Tether since checkpoint \d+/);
    expect(await dialog(p).count()).toBe(0); // nothing was asked yet
    await screenshot(p, '15-undo-conflict');
    expect(await contrastFailures(p, 'dialog.conflict')).toEqual([]);
    // The safe choice has focus; keeping changes leaves the file alone.
    await p.keyboard.press('Enter');
    await warning.waitFor({ state: 'detached' });
    expect(await readFile(join(workspace, 'src', 'limits.ts'), 'utf8')).toBe(mine);
    await poll(() => undo.isEnabled()).toBe(true);
    await undo.click();
    await warning.waitFor();
    await warning.getByRole('button', { name: /Overwrite it and continue/ }).click();
    const d = dialog(p);
    await d.waitFor();
    await poll(() => d.getByTestId('restore-conflicts').textContent()).toMatch(/1 file marked below was changed outside Tether/);
    await poll(() => d.getByTestId('diff').locator('tr.del').textContent()).toContain('limit = 42');
    await poll(() => d.getByTestId('diff').locator('tr.add').textContent()).toContain('limit = 10');
    await screenshot(p, '16-undo-conflict-consent');
    await d.getByRole('button', { name: /Allow once/ }).click();
    await poll(() => readFile(join(workspace, 'src', 'limits.ts'), 'utf8')).toBe(LIMITS_TS);
    expect(problems).toEqual([]);
  });

  // Chromium at 200% zoom lays a 1280×800 window out as 640×400 CSS pixels at
  // devicePixelRatio 2; that is emulated exactly here, in its own browser profile.
  it('is usable at 200% zoom of a 1280×800 window: every control reachable by keyboard and in view, nothing spilling over', async () => {
    const zoomed = await launchChromium(join(tmp, 'chromium-zoom'), { width: 640, height: 400 }, 2);
    try {
      const z = await zoomed.newPage();
      page = z;
      problems = watchProblems(z);
      await z.goto(dev.bridge.pageUrl);
      await z.getByRole('heading', { name: 'Session', exact: true }).waitFor();
      expect(await z.evaluate(() => [window.innerWidth, window.innerHeight, window.devicePixelRatio])).toEqual([640, 400, 2]);
      const ack = z.getByRole('button', { name: 'I understand' });
      if (await ack.isVisible().catch(() => false)) await ack.click();
      const usable = async (scope: string, what: string) => {
        expect(await overflowing(z, scope), what).toEqual([]);
        const reach = await keyboardReach(z, scope);
        expect(reach.controls, what).toBeGreaterThan(0);
        expect(reach.unreached, what).toEqual([]);
        expect(reach.hidden, what).toEqual([]);
      };
      await usable('body', 'the start form');

      await startSession(z, 'flow:zoom write a note');
      const d = dialog(z);
      await d.waitFor();
      await poll(() => d.getByTestId('diff').locator('tr.add').count()).toBeGreaterThan(0);
      await usable('dialog.consent', 'the consent dialog');
      await screenshot(z, '11-zoom-200-consent');
      await d.getByRole('button', { name: /Allow once/ }).click();
      await d.waitFor({ state: 'detached' });
      await poll(() => z.locator('.pill').textContent()).toMatch(/Ready for a task/);
      await poll(() => timelineEntry(z, /Write ZOOM\.md/).getByRole('button', { name: /^Undo to here/ }).isEnabled()).toBe(true);

      for (const tab of ['Grants', 'Undo', 'Terminal', 'Audit']) {
        await z.getByRole('tab', { name: new RegExp(`^${tab}`) }).click();
        if (tab === 'Terminal') await z.locator('.xterm').waitFor();
        if (tab === 'Audit') await poll(() => z.getByTestId('audit-verification').textContent()).toMatch(/Log verifies/);
        await usable('body', `the main screen with the ${tab} tab`);
      }
      await z.evaluate(() => window.scrollTo(0, 0));
      await screenshot(z, '11-zoom-200');
      expect(await contrastFailures(z)).toEqual([]);

      await timelineEntry(z, /Write ZOOM\.md/).getByRole('button', { name: /^Undo to here/ }).click();
      await d.waitFor();
      await poll(() => d.getByRole('heading').first().textContent()).toMatch(/^Undo:/);
      await usable('dialog.consent', 'the undo dialog');
      await screenshot(z, '11-zoom-200-undo');
      await d.getByRole('button', { name: /^Deny/ }).click();
      await d.waitFor({ state: 'detached' });
      expect(problems).toEqual([]);
    } finally {
      await zoomed.close();
    }
  });
});
