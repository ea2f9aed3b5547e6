// Matching of session grants. A grant covers a request only if the action is
// listed and every constraint in the scope matches exactly; a scope with no
// constraint for the request's target never matches (no accidental wildcards).

import type { CapabilityRequest } from './capability.ts';
import type { GrantScope } from './consent.ts';

/** Glob over '/'-separated relative paths: `*` within a segment, `**` across segments. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

export function grantCovers(scope: GrantScope, req: CapabilityRequest): boolean {
  if (!scope.actions.includes(req.action)) return false;
  if (req.kind === 'exec') {
    if (!scope.command || !req.command?.program) return false;
    const args = req.command.args ?? [];
    return scope.command.program === req.command.program &&
      scope.command.args.length === args.length &&
      scope.command.args.every((a, i) => a === args[i]);
  }
  if (req.kind === 'net' || req.kind === 'model') {
    if (!scope.host || !req.url) return false;
    try {
      return new URL(req.url).host === scope.host;
    } catch {
      return false;
    }
  }
  const targets = [req.target, req.destination].filter((t) => t !== undefined);
  if (!scope.pathPattern || targets.length === 0) return false;
  const re = globToRegExp(scope.pathPattern);
  return targets.every((t) => t.inWorkspace && t.relPath !== undefined && re.test(t.relPath));
}

/** The narrowest scope that would have covered this request: the exact path, or the exact command. */
export function proposeGrant(req: CapabilityRequest): GrantScope | undefined {
  if (req.kind === 'exec') {
    return req.command?.program ? { actions: [req.action], command: { program: req.command.program, args: [...(req.command.args ?? [])] } } : undefined;
  }
  if (req.kind === 'net' || req.kind === 'model') {
    try {
      return req.url ? { actions: [req.action], host: new URL(req.url).host } : undefined;
    } catch {
      return undefined;
    }
  }
  if (req.destination) return undefined; // moves are asked one by one
  const rel = req.target?.relPath;
  // A name with glob characters in it could only be granted by a wider pattern: ask each time.
  return rel !== undefined && rel !== '' && req.target?.inWorkspace && !/[*?]/.test(rel) ? { actions: [req.action], pathPattern: rel } : undefined;
}

export function describeGrant(scope: GrantScope): string {
  const what = scope.actions.join('/');
  if (scope.command) return `${what}: exactly \`${[scope.command.program, ...scope.command.args].join(' ')}\``;
  if (scope.host) return `${what} to ${scope.host}`;
  return `${what} ${scope.pathPattern ?? '(nothing)'}`;
}
