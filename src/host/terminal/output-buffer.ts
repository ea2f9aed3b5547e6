// The output a terminal keeps for `terminal/output`: the most recent
// `limit` bytes (ACP's outputByteLimit), cut at a UTF-8 character boundary,
// with a note at the top saying how much was cut so a model reading it knows.

export class OutputBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = 0;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = Math.max(0, limit);
  }

  append(text: string): void {
    const b = Buffer.from(text, 'utf8');
    this.chunks.push(b);
    this.size += b.length;
    if (this.size > this.limit * 2 + 65536) this.compact();
  }

  get truncated(): boolean {
    return this.dropped > 0 || this.size > this.limit;
  }

  /** The retained text; starts with a note when earlier output was cut. */
  text(): string {
    this.compact();
    const body = Buffer.concat(this.chunks).toString('utf8');
    if (this.dropped === 0) return body;
    return `[tether: ${this.dropped} earlier bytes of output were cut to stay within the ${this.limit}-byte limit]\n${body}`;
  }

  private compact(): void {
    if (this.size <= this.limit) return;
    let all = Buffer.concat(this.chunks);
    let cut = all.length - this.limit;
    // Never start inside a multi-byte character.
    while (cut < all.length && (all[cut]! & 0xc0) === 0x80) cut++;
    this.dropped += cut;
    all = all.subarray(cut);
    this.chunks = [all];
    this.size = all.length;
  }
}
