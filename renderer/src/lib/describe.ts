// Words for what the UI shows: a request in one line, a decision in one line.

import { RESTORE_METHOD } from '../../../src/common/capability.ts';
import type { ActivityEntry, DecisionView, RequestView } from '../../../src/common/ipc-contract.ts';

const VERB: Readonly<Record<RequestView['action'], string>> = {
  read: 'Read', list: 'List', search: 'Search', stat: 'Inspect', write: 'Write', delete: 'Delete', move: 'Move',
  exec: 'Run', net: 'Connect to', model: 'Call model at',
};

export function requestTarget(r: RequestView): string {
  if (r.command !== undefined) return r.command;
  if (r.url !== undefined) return r.url;
  const path = r.relPath !== undefined && r.relPath !== '' ? r.relPath : (r.path ?? '');
  return r.destination !== undefined ? `${path} → ${r.destination}` : path;
}

export function requestSummary(r: RequestView): string {
  if (r.method === RESTORE_METHOD) return 'Undo: restore files from a checkpoint';
  return `${VERB[r.action]} ${requestTarget(r)}`;
}

export type DecisionTone = 'allowed' | 'asked-allowed' | 'asked-denied' | 'denied';

export function decisionTone(d: DecisionView): DecisionTone {
  if (d.effect === 'ask') return d.allowed ? 'asked-allowed' : 'asked-denied';
  return d.allowed ? 'allowed' : 'denied';
}

function rules(d: DecisionView): string {
  return d.policyIds.length > 0 ? d.policyIds.join(', ') : '';
}

/** "allowed by rule X", "asked → you allowed once", "denied by rule Y", … */
export function decisionLabel(d: DecisionView): string {
  switch (d.decidedBy) {
    case 'policy':
      if (d.allowed) return rules(d) ? `allowed by rule ${rules(d)}` : 'allowed by policy';
      return rules(d) ? `denied by rule ${rules(d)}` : 'denied: no rule permits it';
    case 'user':
      if (d.answer === 'session') return 'asked → you allowed it for this session';
      if (d.answer === 'once') return 'asked → you allowed it once';
      return d.answer === 'deny' ? 'asked → you denied it' : `asked → denied (${d.reason})`;
    case 'preset':
      return d.allowed ? 'asked → allowed by the preset answer' : 'asked → denied by the preset answer';
    case 'grant':
      return 'asked → covered by your session grant';
    case 'timeout':
      return 'asked → nobody answered in time, denied';
    case 'kill-switch':
      return 'denied: the agent was stopped';
    case 'host':
      return `refused by Tether: ${d.reason}`;
    case 'error':
      return `denied: ${d.reason}`;
  }
}

export type ActivityFilter = 'all' | 'allowed' | 'asked' | 'denied';

export function matchesFilter(e: ActivityEntry, filter: ActivityFilter, text: string): boolean {
  if (filter === 'allowed' && !e.decision.allowed) return false;
  if (filter === 'denied' && e.decision.allowed) return false;
  if (filter === 'asked' && e.decision.effect !== 'ask') return false;
  if (text.trim() === '') return true;
  const needle = text.trim().toLowerCase();
  return [requestSummary(e.request), decisionLabel(e.decision), e.request.path ?? '', ...e.decision.policyIds].some((s) => s.toLowerCase().includes(needle));
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}
