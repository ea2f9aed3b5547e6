// Live output batching for the UI: one event per interval, bounded, with the
// amount left out said in the text.
import { describe, expect, it } from 'vitest';
import { OutputStream, type OutputChunk } from '../../../src/host/terminal/output-stream.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('OutputStream', () => {
  it('batches what arrives within an interval into one event', async () => {
    const got: OutputChunk[] = [];
    const s = new OutputStream((c) => got.push(c), { intervalMs: 30 });
    s.push('a');
    s.push('b');
    s.push('');
    expect(got).toEqual([]);
    await sleep(80);
    expect(got).toEqual([{ data: 'ab', dropped: 0 }]);
    s.push('c');
    await sleep(80);
    expect(got.map((c) => c.data)).toEqual(['ab', 'c']);
  });

  it('keeps the newest maxChunk characters of a burst and says how many it skipped', async () => {
    const got: OutputChunk[] = [];
    const s = new OutputStream((c) => got.push(c), { intervalMs: 10_000, maxChunk: 1024 });
    s.push('x'.repeat(1000));
    s.push('y'.repeat(1000));
    s.flush();
    expect(got).toHaveLength(1);
    expect(got[0]!.dropped).toBe(976);
    expect(got[0]!.data.startsWith('\x1b[0m\r\n[tether: 976 characters of output were skipped here because it came too fast]\r\n')).toBe(true);
    expect(got[0]!.data.endsWith(`${'x'.repeat(24)}${'y'.repeat(1000)}`)).toBe(true);
  });

  it('never splits a surrogate pair when it cuts', () => {
    const got: OutputChunk[] = [];
    const s = new OutputStream((c) => got.push(c), { intervalMs: 10_000, maxChunk: 1024 });
    // 'a' + 1024 emoji (2 UTF-16 units each): the cut lands inside a pair unless moved.
    s.push(`a${'😀'.repeat(1024)}`);
    s.close();
    const body = got[0]!.data.replace(/^[\s\S]*?skipped here[^\n]*\n/, '');
    expect(body.charCodeAt(0)).toBe('😀'.charCodeAt(0));
    expect(body.length % 2).toBe(0);
  });

  it('flushes on close and ignores output after it', async () => {
    const got: OutputChunk[] = [];
    const s = new OutputStream((c) => got.push(c), { intervalMs: 20 });
    s.push('last');
    s.close();
    s.push('late');
    await sleep(60);
    expect(got).toEqual([{ data: 'last', dropped: 0 }]);
  });
});
