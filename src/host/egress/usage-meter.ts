// Reads token usage out of a model response as it streams past, without
// holding the stream up: Anthropic (`message_start.message.usage`,
// `message_delta.usage`, `usage` on a whole message) and OpenAI (`usage` on
// the completion or on the final stream chunk when `stream_options.include_usage`
// was asked for). A response without usage meters zero tokens, not a guess.

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

const MAX_JSON_BYTES = 16 * 1024 * 1024;
const MAX_SSE_LINE = 1024 * 1024;

export class UsageMeter {
  private readonly sse: boolean;
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private json: Uint8Array[] = [];
  private jsonBytes = 0;
  private input = 0;
  private output = 0;

  constructor(contentType: string | null) {
    this.sse = (contentType ?? '').includes('text/event-stream');
  }

  feed(chunk: Uint8Array): void {
    if (!this.sse) {
      this.jsonBytes += chunk.byteLength;
      if (this.jsonBytes <= MAX_JSON_BYTES) this.json.push(chunk);
      return;
    }
    this.buffer += this.decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      this.line(this.buffer.slice(0, nl).replace(/\r$/, ''));
      this.buffer = this.buffer.slice(nl + 1);
    }
    // A line this long is not usage data; drop it rather than grow without bound.
    if (this.buffer.length > MAX_SSE_LINE) this.buffer = '';
  }

  end(): TokenUsage {
    if (this.sse) {
      this.line(this.buffer + this.decoder.decode());
      this.buffer = '';
    } else if (this.jsonBytes <= MAX_JSON_BYTES && this.json.length > 0) {
      try {
        this.take(JSON.parse(Buffer.concat(this.json).toString('utf8')));
      } catch {
        // Not JSON: nothing to meter.
      }
      this.json = [];
    }
    return this.usage();
  }

  usage(): TokenUsage {
    return { inputTokens: this.input, outputTokens: this.output };
  }

  private line(line: string): void {
    if (!line.startsWith('data:')) return;
    const data = line.slice(5).trim();
    if (!data || data === '[DONE]' || !data.includes('usage')) return;
    try {
      this.take(JSON.parse(data));
    } catch {
      // A malformed event is the agent's problem to report; the meter skips it.
    }
  }

  private take(value: unknown): void {
    const v = value as { usage?: unknown; message?: { usage?: unknown } };
    for (const u of [v?.message?.usage, v?.usage]) {
      if (!u || typeof u !== 'object') continue;
      const r = u as Record<string, unknown>;
      const n = (k: string) => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? (r[k] as number) : 0);
      const input = n('input_tokens') + n('cache_creation_input_tokens') + n('cache_read_input_tokens') + n('prompt_tokens');
      const output = n('output_tokens') + n('completion_tokens');
      // Both providers report cumulative counts: keep the largest seen.
      if (input > this.input) this.input = input;
      if (output > this.output) this.output = output;
    }
  }
}
