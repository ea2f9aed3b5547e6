// Limits on what crosses the agent → host boundary. Anything over a limit is
// refused with a JSON-RPC error; nothing is truncated silently.
export const LIMITS = {
  /** One JSON-RPC message (a line on stdio, a message on a MessagePort). */
  maxMessageBytes: 16 * 1024 * 1024,
  /** A path string as sent by the agent. */
  maxPathChars: 4096,
  /** Content of one fs/write_text_file. */
  maxWriteBytes: 8 * 1024 * 1024,
  /** A file returned by fs/read_text_file. */
  maxReadBytes: 8 * 1024 * 1024,
  /** Entries returned by one _tether/list. */
  maxListEntries: 5000,
  /** _tether/search: pattern length, files scanned, matches returned, bytes per file. */
  maxSearchPatternChars: 1000,
  maxSearchFiles: 20_000,
  maxSearchMatches: 500,
  maxSearchFileBytes: 2 * 1024 * 1024,
  /** A command line for terminal/create. */
  maxCommandChars: 64 * 1024,
} as const;
