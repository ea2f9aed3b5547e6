import { describe, expect, it } from 'vitest';
import type { CapabilityRequest } from '../../src/common/capability.ts';
import { globToRegExp, grantCovers, proposeGrant } from '../../src/common/grants.ts';
import { newTrace } from '../../src/common/trace.ts';

const file = (relPath: string, inWorkspace = true) => ({ path: `/ws/${relPath}`, relPath, inWorkspace, exists: true });
function req(over: Partial<CapabilityRequest>): CapabilityRequest {
  return { id: 'r', sessionId: 's', action: 'write', kind: 'write', method: 'fs/write_text_file', workspace: '/ws', trace: newTrace(), ...over };
}

describe('globToRegExp', () => {
  it.each([
    ['src/*.ts', 'src/a.ts', true],
    ['src/*.ts', 'src/sub/a.ts', false],
    ['src/**', 'src/sub/a.ts', true],
    ['**/*.md', 'README.md', true],
    ['**/*.md', 'docs/x/y.md', true],
    ['a.ts', 'a.ts', true],
    ['a.ts', 'aXts', false],
  ])('%s vs %s → %s', (glob, path, expected) => {
    expect(globToRegExp(glob).test(path)).toBe(expected);
  });
});

describe('grants', () => {
  it('covers only the action and path it was given', () => {
    const scope = { actions: ['write' as const], pathPattern: 'src/a.ts' };
    expect(grantCovers(scope, req({ target: file('src/a.ts') }))).toBe(true);
    expect(grantCovers(scope, req({ target: file('src/b.ts') }))).toBe(false);
    expect(grantCovers(scope, req({ action: 'delete', target: file('src/a.ts') }))).toBe(false);
  });

  it('never covers a path outside the workspace, whatever the pattern', () => {
    expect(grantCovers({ actions: ['write'], pathPattern: '**' }, req({ target: { path: '/etc/passwd', inWorkspace: false, exists: true } }))).toBe(false);
  });

  it('grants a command exactly, never as a prefix', () => {
    const exec = (program: string, args: string[]) => req({ action: 'exec', kind: 'exec', command: { line: [program, ...args].join(' '), cwd: '/ws', program, args } });
    const scope = proposeGrant(exec('npm', ['test']))!;
    expect(grantCovers(scope, exec('npm', ['test']))).toBe(true);
    expect(grantCovers(scope, exec('npm', ['test', '--', 'x']))).toBe(false);
    expect(grantCovers(scope, exec('rm', ['test']))).toBe(false);
  });

  it('does not offer a session grant for names that would need a wider glob', () => {
    expect(proposeGrant(req({ target: file('src/*.ts') }))).toBeUndefined();
    expect(proposeGrant(req({ target: file('src/a.ts') }))).toEqual({ actions: ['write'], pathPattern: 'src/a.ts' });
  });
});
