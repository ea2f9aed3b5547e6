// Parses a unified diff (as the host's consent preview builds it) into rows a
// table can show with line numbers. It reads one file's patch; headers it does
// not know are kept as 'meta' rows rather than dropped, so nothing the host
// sent is hidden from the user.

export type DiffRowKind = 'add' | 'del' | 'ctx' | 'hunk' | 'meta' | 'note';

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
}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

export function parseUnifiedDiff(diff: string): ParsedDiff {
  const rows: DiffRow[] = [];
  let oldLine = 0;
  let newLine = 0;
  let inHunk = false;
  let added = 0;
  let removed = 0;
  const lines = diff.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    const h = HUNK.exec(line);
    if (h) {
      oldLine = Number(h[1]);
      newLine = Number(h[3]);
      inHunk = true;
      rows.push({ kind: 'hunk', text: line });
      continue;
    }
    if (!inHunk) {
      // Index:, ===, ---, +++ headers: the dialog shows the path itself.
      if (/^(Index: |={10,}|--- |\+\+\+ |diff --git )/.test(line)) continue;
      rows.push({ kind: 'meta', text: line });
      continue;
    }
    if (line.startsWith('+')) {
      rows.push({ kind: 'add', text: line.slice(1), newLine: newLine++ });
      added++;
    } else if (line.startsWith('-')) {
      rows.push({ kind: 'del', text: line.slice(1), oldLine: oldLine++ });
      removed++;
    } else if (line.startsWith('\\')) {
      rows.push({ kind: 'note', text: line.slice(1).trim() });
    } else if (line.startsWith(' ') || line === '') {
      rows.push({ kind: 'ctx', text: line.slice(1), oldLine: oldLine++, newLine: newLine++ });
    } else {
      rows.push({ kind: 'meta', text: line });
    }
  }
  return { rows, added, removed };
}
