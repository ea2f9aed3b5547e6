// Real commands in the real sandbox (bubblewrap + the seccomp helper + the
// proxy of @anthropic-ai/sandbox-runtime). Needs bubblewrap and socat
// (.ci/run installs them).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BubblewrapSandbox, PIN_CHECK } from '../../../src/host/sandbox/bubblewrap-sandbox.ts';
import { SandboxUnavailableError } from '../../../src/host/sandbox/sandbox.ts';
import { envFor, makeSandbox, makeScratch, runIn, type Scratch } from './sandbox-fixture.ts';

let s: Scratch;
let sb: BubblewrapSandbox;

beforeAll(async () => {
  s = makeScratch();
  sb = await makeSandbox(s);
  expect(sb.unavailable).toBeUndefined();
});

afterAll(async () => {
  await sb?.dispose();
  s?.cleanup();
});

/** Host processes whose command line contains `marker`. */
function processesWith(marker: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(marker) && !l.includes('ps -eo'));
}

describe('bubblewrap sandbox: file system', () => {
  it('writes inside the workspace and nowhere else', async () => {
    const r = await runIn(sb, s, `echo inside > in.txt; echo x > ${s.outside}/new.txt; echo x >> ${s.outside}/keep.txt; touch /etc/tether-test; mkdir ${s.home}/made; echo done`);
    expect(readFileSync(join(s.workspace, 'in.txt'), 'utf8')).toBe('inside\n');
    expect(existsSync(join(s.outside, 'new.txt'))).toBe(false);
    expect(readFileSync(join(s.outside, 'keep.txt'), 'utf8')).toBe('outside\n');
    expect(existsSync('/etc/tether-test')).toBe(false);
    expect(existsSync(join(s.home, 'made'))).toBe(false);
    expect(r.output.match(/Read-only file system/g)?.length).toBe(4);
    expect(r.output).toContain('done');
  });

  it('hides credential stores, keychains and Tether\'s own files; the rest of home stays readable', async () => {
    const r = await runIn(sb, s, `cat ~/.ssh/id_rsa ~/.aws/credentials ~/.config/gcloud/credentials.db ~/.netrc ${s.state}/audit.jsonl; ls -A ~/.ssh ~/.aws; cat ~/notes.txt`);
    expect(r.output).not.toContain(s.canary);
    expect(r.output).toContain('ordinary file in home');
    const profile = sb.profile(s.workspace);
    for (const p of ['.ssh', '.aws', '.config/gcloud', '.netrc']) expect(profile.hidden).toContain(join(s.home, p));
    expect(profile.hidden).toContain(s.state);
  });

  it('rm -rf ~ is harmless', async () => {
    const r = await runIn(sb, s, 'rm -rf ~ 2>&1 | tail -1; echo survived');
    expect(r.output).toContain('survived');
    expect(readFileSync(join(s.home, 'notes.txt'), 'utf8')).toBe('ordinary file in home\n');
    expect(readFileSync(join(s.home, '.ssh', 'id_rsa'), 'utf8')).toContain(s.canary);
    expect(readFileSync(join(s.outside, 'keep.txt'), 'utf8')).toBe('outside\n');
  });

  it('gives the command a private /tmp: host files there are invisible and its own vanish', async () => {
    const hostFile = `/tmp/tether-host-${s.canary}`;
    writeFileSync(hostFile, 'host-only-content');
    const r = await runIn(sb, s, `cat ${hostFile}; echo sandbox > /tmp/tether-made-${s.canary}; cat /tmp/tether-made-${s.canary}`);
    expect(r.output).not.toContain('host-only-content');
    expect(r.output).toMatch(/No such file or directory/);
    expect(r.output).toContain('sandbox');
    expect(existsSync(`/tmp/tether-made-${s.canary}`)).toBe(false);
  });

  it('keeps git hooks and config read-only inside a writable workspace', async () => {
    mkdirSync(join(s.workspace, '.git', 'hooks'), { recursive: true });
    writeFileSync(join(s.workspace, '.git', 'config'), '[core]\n');
    mkdirSync(join(s.workspace, 'nested', '.git', 'hooks'), { recursive: true });
    const nested = [join(s.workspace, 'nested', '.git', 'hooks')];
    const r = await runIn(sb, s, 'echo evil > .git/hooks/pre-commit; echo "[core] hooksPath=/x" >> .git/config; echo evil > nested/.git/hooks/post-checkout; echo ok > .git/HEAD; echo end', { profile: sb.profile(s.workspace), readOnly: nested });
    expect(existsSync(join(s.workspace, '.git', 'hooks', 'pre-commit'))).toBe(false);
    expect(readFileSync(join(s.workspace, '.git', 'config'), 'utf8')).toBe('[core]\n');
    expect(existsSync(join(s.workspace, 'nested', '.git', 'hooks', 'post-checkout'))).toBe(false);
    expect(readFileSync(join(s.workspace, '.git', 'HEAD'), 'utf8')).toBe('ok\n');
    expect(r.output).toContain('end');
  });
});

describe('bubblewrap sandbox: pinned folders', () => {
  it('pins a folder: still writable, but it cannot be renamed or removed', async () => {
    mkdirSync(join(s.workspace, 'pinned-a'), { recursive: true });
    const profile = { ...sb.profile(s.workspace), pinned: [join(s.workspace, 'pinned-a')] };
    const r = await runIn(sb, s, 'echo hi > pinned-a/f.txt && echo wrote; mv pinned-a moved 2>/dev/null || echo no-move; rm -rf pinned-a 2>/dev/null; test -d pinned-a && echo kept', { profile });
    expect(r.output).toMatch(/wrote[\s\S]*no-move[\s\S]*kept/);
    expect(existsSync(join(s.workspace, 'pinned-a'))).toBe(true);
    expect(existsSync(join(s.workspace, 'moved'))).toBe(false);
  });

  it('runs nothing when a pinned folder was replaced by a link (a writable bind must not follow it out of the workspace)', async () => {
    mkdirSync(join(s.workspace, 'pinned-b'), { recursive: true });
    const profile = { ...sb.profile(s.workspace), pinned: [join(s.workspace, 'pinned-b')] };
    rmSync(join(s.workspace, 'pinned-b'), { recursive: true });
    symlinkSync(relative(s.workspace, s.outside), join(s.workspace, 'pinned-b'));
    await expect(runIn(sb, s, `echo pwned > pinned-b/x.txt`, { profile })).rejects.toThrow(/no longer a folder/);
    expect(existsSync(join(s.outside, 'x.txt'))).toBe(false);
    rmSync(join(s.workspace, 'pinned-b'));
  });

  it('checks inside the sandbox that each pinned mount is the folder the host saw, and runs nothing otherwise', () => {
    const dir = join(s.workspace);
    const st = statSync(dir, { bigint: true });
    const check = (id: string) => spawnSync('/bin/bash', ['-c', PIN_CHECK, 'tether-pins', '/usr/bin/stat', '/bin/bash', 'echo ran', dir, id], { encoding: 'utf8' });
    expect(check(`${st.dev}:${st.ino}`)).toMatchObject({ status: 0, stdout: 'ran\n' });
    const wrong = check(`${st.dev}:${st.ino + 1n}`);
    expect(wrong.status).toBe(126);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(/was replaced before the command started; nothing ran/);
  });
});

describe('bubblewrap sandbox: process and environment', () => {
  it('passes no secrets, agent sockets or code-loading variables from the host', async () => {
    const env = envFor(s, { ANTHROPIC_API_KEY: 'sk-ant-x', GITHUB_TOKEN: 'ghp_x', SSH_AUTH_SOCK: '/tmp/agent.sock', NODE_OPTIONS: '--require /x.js', LD_PRELOAD: '/x.so', AWS_SECRET_ACCESS_KEY: 'y', MY_PASSWORD: 'z' });
    const r = await runIn(sb, s, 'env', { env });
    for (const name of ['ANTHROPIC_API_KEY', 'GITHUB_TOKEN', 'SSH_AUTH_SOCK', 'NODE_OPTIONS', 'LD_PRELOAD', 'AWS_SECRET_ACCESS_KEY', 'MY_PASSWORD']) expect(r.output).not.toContain(`${name}=`);
    expect(r.output).toContain(`HOME=${s.home}`);
    expect(r.output).toContain('TETHER_SANDBOX=1');
  });

  it('runs in a real terminal and reports exit codes', async () => {
    const r = await runIn(sb, s, 'test -t 0 && test -t 1 && echo tty; exit 7');
    expect(r.output).toContain('tty');
    expect(r.exit).toMatchObject({ exitCode: 7, signal: null, reason: 'exit' });
  });

  it('refuses to create Unix sockets (seccomp), so host services stay out of reach', async () => {
    const r = await runIn(sb, s, `/usr/bin/python3 -c 'import socket; socket.socket(socket.AF_UNIX)' 2>&1 | tail -1`);
    expect(r.output).toMatch(/PermissionError|Operation not permitted/);
  });

  it('kills the whole tree when the time limit is reached, detached children included', async () => {
    const marker = `30${Math.floor(Math.random() * 1e6)}`;
    const profile = sb.profile(s.workspace, { limits: { timeoutMs: 1500 } });
    const started = Date.now();
    const r = await runIn(sb, s, `(sleep ${marker}.1 &); setsid sleep ${marker}.2 & nohup sleep ${marker}.3 >/dev/null 2>&1 & sleep ${marker}.4`, { profile });
    expect(r.exit).toMatchObject({ reason: 'timeout', signal: 'SIGKILL', exitCode: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    await new Promise((res) => setTimeout(res, 200));
    expect(processesWith(`sleep ${marker}`)).toEqual([]);
  });

  it('ends the tree on kill()', async () => {
    const marker = `40${Math.floor(Math.random() * 1e6)}`;
    const p = await sb.run({ line: `sleep ${marker} & sleep ${marker}`, cwd: s.workspace, env: envFor(s), profile: sb.profile(s.workspace) });
    await new Promise((res) => setTimeout(res, 300));
    expect(processesWith(`sleep ${marker}`).length).toBeGreaterThan(0);
    p.kill();
    expect((await p.exited).reason).toBe('killed');
    await new Promise((res) => setTimeout(res, 200));
    expect(processesWith(`sleep ${marker}`)).toEqual([]);
  });

  it('contains a fork bomb with the process limit, then the time limit ends it', async () => {
    expect(sb.enforced.maxProcesses).toBe(true);
    const marker = `bomb${Math.floor(Math.random() * 1e6)}`;
    const profile = sb.profile(s.workspace, { limits: { timeoutMs: 3000, maxProcesses: 64 } });
    const r = await runIn(sb, s, `${marker}() { ${marker} | ${marker} & }; ${marker}; sleep 60`, { profile });
    expect(r.exit.reason).toBe('timeout');
    expect(r.output).toMatch(/fork: (retry: )?Resource temporarily unavailable/);
    await new Promise((res) => setTimeout(res, 200));
    expect(processesWith(marker)).toEqual([]);
  });

  it('stops runaway output at the output limit and says why', async () => {
    const profile = sb.profile(s.workspace, { limits: { maxOutputBytes: 200_000 } });
    const r = await runIn(sb, s, 'yes tether', { profile });
    expect(r.exit).toMatchObject({ reason: 'output-limit', signal: 'SIGKILL' });
    expect(r.exit.outputBytes).toBeGreaterThan(200_000);
    // How far past the limit `yes` gets before the kill lands depends on machine load; it must
    // still be stopped, not run on (unbounded, this would be gigabytes within the test timeout).
    expect(r.exit.outputBytes).toBeLessThan(64_000_000);
  });

  it('leaves no cgroup behind after commands end', async () => {
    await runIn(sb, s, 'true');
    const root = '/sys/fs/cgroup/pids';
    const mine = join(root, `tether-${process.pid}`);
    if (existsSync(mine)) expect(readdirSync(mine, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)).toEqual([]);
  });
});

describe('bubblewrap sandbox: network', () => {
  let allowed: Server;
  let other: Server;
  const hits: string[] = [];
  beforeAll(async () => {
    const listen = (name: string) =>
      new Promise<Server>((resolve) => {
        const srv = createServer((req, res) => {
          hits.push(`${name} ${req.url}`);
          res.end(`hello from ${name}`);
        });
        srv.listen(0, '127.0.0.1', () => resolve(srv));
      });
    allowed = await listen('allowed');
    other = await listen('other');
  });
  afterAll(() => {
    allowed?.close();
    other?.close();
  });
  const port = (srv: Server) => (srv.address() as AddressInfo).port;

  it('is off: no route to the host, no DNS', async () => {
    const r = await runIn(sb, s, `curl -sS -m 5 http://127.0.0.1:${port(allowed)}/direct; getent hosts example.com || echo no-dns`);
    expect(r.output).toMatch(/Failed to connect|Couldn't connect|Connection refused/);
    expect(r.output).toContain('no-dns');
    expect(hits.filter((h) => h.includes('/direct'))).toEqual([]);
  });

  it('reaches a domain policy opened through the proxy, and nothing else', async () => {
    const profile = sb.profile(s.workspace, { allowedDomains: [`127.0.0.1:${port(allowed)}`] });
    expect(profile.network).toEqual({ allowedDomains: [`127.0.0.1:${port(allowed)}`] });
    // --noproxy '': the proxy variables say to go direct to 127.0.0.1, which has no route here.
    const r = await runIn(sb, s, `curl -sS -m 10 --noproxy '' http://127.0.0.1:${port(allowed)}/via-proxy; echo; curl -sS -m 10 --noproxy '' -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:${port(other)}/blocked`, { profile });
    expect(r.output).toContain('hello from allowed');
    expect(hits).toContain('allowed /via-proxy');
    expect(hits.filter((h) => h.startsWith('other'))).toEqual([]);
    expect(r.output).toMatch(/403/);
  });

  it('runs no command with network access that has nothing to record its tunnels', async () => {
    const profile = sb.profile(s.workspace, { allowedDomains: [`127.0.0.1:${port(allowed)}`] });
    await expect(sb.run({ line: 'true', cwd: s.workspace, env: envFor(s), profile, onConnection: () => {} })).rejects.toThrow(/needs onTunnelOpened/);
  });

  it('reports every connection the command makes, plain HTTP, CONNECT and SOCKS5 alike, allowed or refused', async () => {
    const a = `127.0.0.1:${port(allowed)}`;
    const o = `127.0.0.1:${port(other)}`;
    const profile = sb.profile(s.workspace, { allowedDomains: [a] });
    const curl = `curl -sS -m 10 --noproxy ''`;
    // SOCKS5 with the same credentials (the command's proxy id) on the SOCKS relay; the HTTP relay would serve it too.
    const socksUrl = 'S=${HTTP_PROXY/http:/socks5h:}; S=${S/3128/1080}';
    const r = await runIn(sb, s, [
      socksUrl,
      `${curl} http://${a}/plain?token=hunter2`,
      `${curl} --proxytunnel http://${a}/tunnel`,
      `${curl} -x "$S" http://${a}/socks`,
      `${curl} -o /dev/null -w '%{http_code}\\n' http://${o}/refused-plain`,
      `${curl} --proxytunnel http://${o}/refused-tunnel`,
      `${curl} -x "$S" http://${o}/refused-socks`,
      'echo; echo finished',
    ].join('; echo; '), { profile });
    expect(r.output).toContain('finished');
    expect(hits).toEqual(expect.arrayContaining(['allowed /plain?token=hunter2', 'allowed /tunnel', 'allowed /socks']));
    const seen = r.connections.map((c) => `${c.via} ${c.host}:${c.port} ${c.allowed ? 'allowed' : 'refused'}`);
    expect(seen).toEqual([
      `http ${a} allowed`, `connect ${a} allowed`, `socks5 ${a} allowed`,
      `http ${o} refused`, `connect ${o} refused`, `socks5 ${o} refused`,
    ]);
    const [plain, tunnel, socks, refusedPlain, refusedTunnel, refusedSocks] = r.connections;
    // The URL without its query (a token there stays out of the audit log), the method, the status.
    expect(plain).toMatchObject({ method: 'GET', url: `http://${a}/plain`, status: 200 });
    expect(tunnel).toMatchObject({ status: 200 });
    expect(socks).toMatchObject({ status: 0 });
    for (const c of [plain, tunnel, socks]) {
      expect(c!.reason).toBeUndefined();
      // What went out includes the request; what came back includes "hello from allowed" (18 bytes).
      expect(c!.bytesOut).toBeGreaterThan(40);
      expect(c!.bytesIn).toBeGreaterThan(18);
    }
    expect(refusedPlain).toMatchObject({ status: 403 });
    expect(refusedPlain!.reason).toMatch(/blocked|allowlist|not allowed/i);
    expect(refusedTunnel).toMatchObject({ status: 403 });
    expect(refusedTunnel!.reason).toMatch(/blocked|allowlist|not allowed/i);
    expect(refusedSocks!.status).not.toBe(0);
    expect(refusedSocks!.reason).toMatch(/not allowed|refused|failure/);
    expect(hits.filter((h) => h.startsWith('other'))).toEqual([]);
  });

  it('does not carry one command\'s allowance over to the next', async () => {
    const r = await runIn(sb, s, `curl -sS -m 5 --noproxy '' http://127.0.0.1:${port(allowed)}/later`);
    expect(hits).not.toContain('allowed /later');
    expect(r.output).not.toContain('hello from allowed');
  });
});

describe('bubblewrap sandbox: unavailable', () => {
  it('says why and how to fix it, and refuses to run anything', async () => {
    const broken = await BubblewrapSandbox.create({ bwrapPath: '/nonexistent/bwrap' });
    expect(broken.unavailable?.reason).toMatch(/bubblewrap \(bwrap\) is not installed/);
    expect(broken.unavailable?.fix).toMatch(/apt-get install bubblewrap/);
    await expect(broken.run({ line: 'true', cwd: s.workspace, env: {}, profile: sb.profile(s.workspace) })).rejects.toBeInstanceOf(SandboxUnavailableError);
  });
});
