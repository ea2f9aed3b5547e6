// Live command output for a UI: what a terminal prints, batched into at most
// one event per `intervalMs`, each at most `maxChunk` characters. Output that
// arrives faster than that is cut from the middle of a batch (the oldest part)
// and replaced by a note saying how much was left out, so a command that
// floods its terminal cannot flood the UI. The agent's own copy (OutputBuffer,
// terminal/output) is separate and not affected.
//
// Not here: ANSI awareness. A cut can split an escape sequence; the note
// starts with a reset so the colours after it are sane again.

export interface OutputChunk {
  readonly data: string;
  /** Characters left out of this chunk because output came too fast. */
  readonly dropped: number;
}

export class OutputStream {
  private pending = '';
  private dropped = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly emit: (chunk: OutputChunk) => void;
  private readonly intervalMs: number;
  private readonly maxChunk: number;

  constructor(emit: (chunk: OutputChunk) => void, opts: { intervalMs?: number; maxChunk?: number } = {}) {
    this.emit = emit;
    this.intervalMs = opts.intervalMs ?? 50;
    this.maxChunk = Math.max(1024, opts.maxChunk ?? 64 * 1024);
  }

  push(text: string): void {
    if (this.closed || text === '') return;
    this.pending += text;
    if (this.pending.length > this.maxChunk) {
      let cut = this.pending.length - this.maxChunk;
      // Never leave half of a surrogate pair.
      if (isLowSurrogate(this.pending.charCodeAt(cut))) cut++;
      this.dropped += cut;
      this.pending = this.pending.slice(cut);
    }
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  }

  /** Emits what is pending now (used at exit, before the exit status). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === '' && this.dropped === 0) return;
    const note = this.dropped > 0 ? `\x1b[0m\r\n[tether: ${this.dropped} characters of output were skipped here because it came too fast]\r\n` : '';
    const chunk = { data: note + this.pending, dropped: this.dropped };
    this.pending = '';
    this.dropped = 0;
    this.emit(chunk);
  }

  /** Flushes and stops: later pushes are ignored. */
  close(): void {
    this.flush();
    this.closed = true;
  }
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
