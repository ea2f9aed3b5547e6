// Parses a unified diff (as the host's consent preview builds it) into rows a
// table can show with line numbers. Hunks are read by their line counts, so a
// removed line that starts with "--" is never taken for a file header, and a
// diff of several files gets a 'file' row per file. Lines it does not know are
// kept as 'meta' rows rather than dropped: nothing the host sent is hidden.

export type DiffRowKind = 'add' | 'del' | 'ctx' | 'hunk' | 'meta' | 'note' | 'file';

export interface DiffRow {
  readonly kind: DiffRowKind;
  readonly text: string;
  readonly oldLine?: number;
  readonly newLine?: number;
}

export interface ParsedDiff {
  readonly rows: DiffRow[];
  readonly added: number;
  readonly removed: number;
  /** Files in the diff (from its +++ headers). */
  readonly files: number;
}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

function headerPath(line: string): string {
  const p = line.slice(4).split('\t')[0]!.trim();
  return p.replace(/^[ab]\//, '');
}

export function parseUnifiedDiff(diff: string): ParsedDiff {
  const rows: DiffRow[] = [];
  let oldLine = 0;
  let newLine = 0;
  let oldLeft = 0;
  let newLeft = 0;
  let added = 0;
  let removed = 0;
  let files = 0;
  let oldHeader = '';
  const lines = diff.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    const inHunk = oldLeft > 0 || newLeft > 0;
    if (inHunk) {
      if (line.startsWith('+')) {
        rows.push({ kind: 'add', text: line.slice(1), newLine: newLine++ });
        newLeft--;
        added++;
      } else if (line.startsWith('-')) {
        rows.push({ kind: 'del', text: line.slice(1), oldLine: oldLine++ });
        oldLeft--;
        removed++;
      } else if (line.startsWith('\\')) {
        rows.push({ kind: 'note', text: line.slice(1).trim() });
      } else if (line.startsWith(' ') || line === '') {
        rows.push({ kind: 'ctx', text: line.slice(1), oldLine: oldLine++, newLine: newLine++ });
        oldLeft--;
        newLeft--;
      } else {
        rows.push({ kind: 'meta', text: line });
        oldLeft = newLeft = 0;
      }
      continue;
    }
    const h = HUNK.exec(line);
    if (h) {
      oldLine = Number(h[1]);
      newLine = Number(h[3]);
      oldLeft = h[2] === undefined ? 1 : Number(h[2]);
      newLeft = h[4] === undefined ? 1 : Number(h[4]);
      rows.push({ kind: 'hunk', text: line });
    } else if (line.startsWith('\\')) {
      rows.push({ kind: 'note', text: line.slice(1).trim() });
    } else if (line.startsWith('--- ')) {
      oldHeader = headerPath(line);
    } else if (line.startsWith('+++ ')) {
      const path = headerPath(line);
      files++;
      rows.push({ kind: 'file', text: path === '/dev/null' ? oldHeader : path });
    } else if (!/^(Index: |={10,}|diff --git )/.test(line)) {
      rows.push({ kind: 'meta', text: line });
    }
  }
  return { rows, added, removed, files };
}
