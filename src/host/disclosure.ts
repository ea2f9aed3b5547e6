// The first-run disclosure: what the agent can and cannot reach under the
// policy in force, found by asking the policy engine about typical requests
// (so it can never drift from what policy actually decides). It describes
// policy only; the sandbox's own limits on commands are stated as notes.

import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ACTION_KIND, type CapabilityAction, type CapabilityRequest, type ResolvedPath } from '../common/capability.ts';
import type { PolicyEffect } from '../common/decision.ts';
import type { RuleInfo } from '../common/ipc-contract.ts';
import { newTrace } from '../common/trace.ts';
import type { PolicyEngine } from './policy/policy-engine.ts';

export interface DisclosureItem {
  readonly capability: string;
  readonly example: string;
  readonly effect: PolicyEffect;
  readonly rules: RuleInfo[];
  readonly reason: string;
}

interface Probe {
  readonly capability: string;
  readonly action: CapabilityAction;
  readonly method: string;
  readonly target?: (ws: string, home: string) => ResolvedPath;
  readonly command?: (ws: string) => CapabilityRequest['command'];
  readonly url?: string;
}

const inWs = (rel: string, exists = true) => (ws: string): ResolvedPath => ({ path: join(ws, rel), relPath: rel, inWorkspace: true, exists, type: 'file' });
const outside = (abs: (home: string) => string) => (_ws: string, home: string): ResolvedPath => ({ path: abs(home), inWorkspace: false, exists: true, type: 'file' });

const PROBES: readonly Probe[] = [
  { capability: 'Read files in the workspace', action: 'read', method: 'fs/read_text_file', target: inWs('src/index.ts') },
  { capability: 'Create or change files in the workspace', action: 'write', method: 'fs/write_text_file', target: inWs('src/index.ts') },
  { capability: 'Delete files in the workspace', action: 'delete', method: '_tether/delete', target: inWs('src/old.ts') },
  { capability: 'Run commands in the workspace', action: 'exec', method: 'terminal/create', command: (ws) => ({ line: 'npm test', cwd: ws, program: 'npm', args: ['test'] }) },
  { capability: 'Read secrets in the workspace (.env)', action: 'read', method: 'fs/read_text_file', target: inWs('.env') },
  { capability: 'Read your SSH keys', action: 'read', method: 'fs/read_text_file', target: outside((h) => join(h, '.ssh', 'id_ed25519')) },
  { capability: 'Read your cloud credentials', action: 'read', method: 'fs/read_text_file', target: outside((h) => join(h, '.aws', 'credentials')) },
  { capability: 'Read files outside the workspace', action: 'read', method: 'fs/read_text_file', target: outside((h) => join(h, 'Documents', 'notes.txt')) },
  { capability: 'Change files outside the workspace', action: 'write', method: 'fs/write_text_file', target: outside((h) => join(h, '.bashrc')) },
  { capability: 'Reach the network', action: 'net', method: '_tether/net', url: 'https://example.com/' },
];

export function probeRequest(p: Probe, workspace: string, home: string): CapabilityRequest {
  return {
    id: `disclosure:${p.action}:${p.capability}`,
    sessionId: 'disclosure',
    action: p.action,
    kind: ACTION_KIND[p.action],
    method: p.method,
    workspace,
    ...(p.target ? { target: p.target(workspace, home) } : {}),
    ...(p.command ? { command: p.command(workspace) } : {}),
    ...(p.url ? { url: p.url } : {}),
    trace: newTrace(),
  };
}

/** Asks the engine about each probe; an engine failure shows as "never" (it would deny). */
export function discloseAccess(engine: PolicyEngine, workspace: string, home: string = homedir()): DisclosureItem[] {
  return PROBES.map((p) => {
    const req = probeRequest(p, workspace, home);
    const example = req.target?.relPath ?? req.target?.path ?? req.command?.line ?? req.url ?? '';
    try {
      const d = engine.decide(req);
      return {
        capability: p.capability,
        example,
        effect: d.effect,
        rules: d.policyIds.map((id) => ({ id, description: engine.rule(id)?.description ?? id })),
        reason: d.reason,
      };
    } catch (e) {
      return { capability: p.capability, example, effect: 'deny' as const, rules: [], reason: `the policy engine failed: ${(e as Error).message}` };
    }
  });
}

/** Changes when any decision in the disclosure changes, so a new policy asks again. */
export function disclosureFingerprint(items: readonly DisclosureItem[]): string {
  const basis = items.map((i) => [i.capability, i.effect, i.rules.map((r) => r.id).join(',')].join('|')).join('\n');
  return createHash('sha256').update(basis).digest('hex').slice(0, 32);
}
