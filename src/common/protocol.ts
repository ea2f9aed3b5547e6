// Agent → host protocol: the ACP client methods Tether serves and its `_tether/…`
// extension methods, as zod schemas. The host validates every inbound request
// with these before anything else happens (DESIGN.md, "The spine", step 2);
// the agent imports the same names and result types.

import { z } from 'zod';
import { LIMITS } from './limits.ts';

export const METHODS = {
  readTextFile: 'fs/read_text_file',
  writeTextFile: 'fs/write_text_file',
  list: '_tether/list',
  search: '_tether/search',
  stat: '_tether/stat',
  delete: '_tether/delete',
  move: '_tether/move',
  terminalCreate: 'terminal/create',
  terminalOutput: 'terminal/output',
  terminalWaitForExit: 'terminal/wait_for_exit',
  terminalKill: 'terminal/kill',
  terminalRelease: 'terminal/release',
} as const;

const meta = z.record(z.string(), z.unknown()).optional().nullable();
const sessionId = z.string().min(1).max(200);
const path = z.string().min(1).max(LIMITS.maxPathChars);

export const ReadTextFileParams = z.object({
  sessionId,
  path,
  line: z.number().int().min(1).optional().nullable(),
  limit: z.number().int().min(1).optional().nullable(),
  _meta: meta,
});
export type ReadTextFileParams = z.infer<typeof ReadTextFileParams>;

export const WriteTextFileParams = z.object({
  sessionId,
  path,
  content: z.string().refine((s) => s.length <= LIMITS.maxWriteBytes, `content is over ${LIMITS.maxWriteBytes} characters`),
  _meta: meta,
});
export type WriteTextFileParams = z.infer<typeof WriteTextFileParams>;

export const ListParams = z.object({ sessionId, path, _meta: meta });
export type ListParams = z.infer<typeof ListParams>;

export const SearchParams = z.object({
  sessionId,
  pattern: z.string().min(1).max(LIMITS.maxSearchPatternChars),
  path: path.optional(),
  /** Glob over workspace-relative paths, e.g. "**\/*.ts". */
  include: z.string().max(500).optional(),
  maxResults: z.number().int().min(1).max(LIMITS.maxSearchMatches).optional(),
  caseSensitive: z.boolean().optional(),
  _meta: meta,
});
export type SearchParams = z.infer<typeof SearchParams>;

export const StatParams = z.object({ sessionId, path, _meta: meta });
export type StatParams = z.infer<typeof StatParams>;

export const DeleteParams = z.object({ sessionId, path, recursive: z.boolean().optional(), _meta: meta });
export type DeleteParams = z.infer<typeof DeleteParams>;

export const MoveParams = z.object({ sessionId, from: path, to: path, overwrite: z.boolean().optional(), _meta: meta });
export type MoveParams = z.infer<typeof MoveParams>;

export const EnvVar = z.object({ name: z.string().min(1).max(256), value: z.string().max(32 * 1024) });

export const TerminalCreateParams = z.object({
  sessionId,
  command: z.string().min(1).max(LIMITS.maxCommandChars),
  args: z.array(z.string().max(LIMITS.maxCommandChars)).max(1000).optional(),
  cwd: path.optional().nullable(),
  env: z.array(EnvVar).max(200).optional(),
  outputByteLimit: z.number().int().min(0).optional().nullable(),
  _meta: meta,
});
export type TerminalCreateParams = z.infer<typeof TerminalCreateParams>;

export const TerminalIdParams = z.object({ sessionId, terminalId: z.string().min(1).max(200), _meta: meta });
export type TerminalIdParams = z.infer<typeof TerminalIdParams>;

// ---- results (host → agent) ----

export interface DirEntry { name: string; type: 'file' | 'directory' | 'symlink' | 'other'; size?: number }
export interface ListResult { path: string; entries: DirEntry[]; truncated: boolean }
export interface SearchMatch { path: string; line: number; text: string }
export interface SearchResult {
  matches: SearchMatch[];
  truncated: boolean;
  filesScanned: number;
  /** Matches dropped because policy does not let the agent read their file. */
  withheld?: number;
  note?: string;
}
export interface StatResult { path: string; exists: boolean; type?: DirEntry['type']; size?: number; mtimeMs?: number }
