// The import matrix (DESIGN.md, "Layout"), checked over the source text so it
// holds even if the lint config is changed: where code runs decides what it
// may import.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  const abs = join(root, dir);
  try {
    statSync(abs);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const entry of readdirSync(abs, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.(ts|js|mjs|svelte)$/.test(entry.name)) continue;
    const full = join(entry.parentPath, entry.name);
    if (full.includes('node_modules') || full.includes(`${join(root, 'renderer', 'dist')}`)) continue;
    out.push(relative(root, full));
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[^.\w])import\s*\(\s*['"]([^'"]+)['"]\s*\)|require\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

export function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(IMPORT)) found.push((m[1] ?? m[2] ?? m[3] ?? m[4])!);
  return found;
}

const bare = (spec: string) => spec.replace(/^node:/, '').split('/')[0]!;
const AGENT_FORBIDDEN = new Set(['fs', 'child_process', 'net', 'http', 'https', 'http2', 'worker_threads', 'dgram', 'tls', 'cluster', 'vm']);

interface Violation { file: string; spec: string; rule: string }

export function violations(files: { file: string; text: string }[]): Violation[] {
  const out: Violation[] = [];
  for (const { file, text } of files) {
    for (const spec of importsOf(text)) {
      const inElectronZone = file.startsWith('src/main/') || file.startsWith('src/preload/');
      if (spec === 'electron' && !inElectronZone) out.push({ file, spec, rule: "'electron' only in src/main and src/preload" });
      if (file.startsWith('src/common/') && (spec.startsWith('node:') || spec === 'electron')) out.push({ file, spec, rule: 'src/common is pure' });
      if (file.startsWith('src/agent/') && (spec.startsWith('node:') || !spec.startsWith('.')) && AGENT_FORBIDDEN.has(bare(spec))) {
        out.push({ file, spec, rule: 'src/agent reaches the OS only through the host' });
      }
      if (file.startsWith('src/agent/') && spec.startsWith('.') && /\/(host|main|preload|cli)\//.test(`/${spec}/`)) {
        out.push({ file, spec, rule: 'src/agent imports src/common only' });
      }
      if (file.startsWith('renderer/') && (spec.startsWith('node:') || /src\/(host|main|agent|cli)\//.test(spec))) {
        out.push({ file, spec, rule: 'renderer imports src/common only' });
      }
      if (file.startsWith('src/host/') && /\/(main|preload)\//.test(spec)) out.push({ file, spec, rule: 'src/host never depends on Electron glue' });
    }
  }
  return out;
}

describe('architecture: import matrix', () => {
  it('holds for every source file in the tree', () => {
    const files = [...sources('src'), ...sources('renderer')].map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') }));
    expect(files.length).toBeGreaterThan(10);
    expect(violations(files)).toEqual([]);
  });

  it.each([
    ['src/host/x.ts', "import { app } from 'electron';"],
    ['src/common/x.ts', "import { readFile } from 'node:fs/promises';"],
    ['src/agent/x.ts', "import * as fs from 'node:fs';"],
    ['src/agent/x.ts', "import { spawn } from 'child_process';"],
    ['src/agent/x.ts', "const net = await import('node:net');"],
    ['src/agent/x.ts', "import { Broker } from '../host/broker.ts';"],
    ['renderer/src/x.ts', "import { Broker } from '../../src/host/broker.ts';"],
    ['src/host/x.ts', "import { win } from '../main/window.ts';"],
  ])('catches a violation in %s: %s', (file, text) => {
    expect(violations([{ file, text }])).toHaveLength(1);
  });

  it('allows what the matrix allows', () => {
    expect(violations([
      { file: 'src/main/x.ts', text: "import { app } from 'electron';" },
      { file: 'src/agent/x.ts', text: "import { z } from 'zod';\nimport { LIMITS } from '../common/limits.ts';" },
      { file: 'src/host/x.ts', text: "import { spawn } from 'node:child_process';" },
    ])).toEqual([]);
  });
});
