import { describe, expect, it } from 'vitest';
import { formatTraceparent, parseTraceparent, traceFromMeta } from '../../src/common/trace.ts';

describe('W3C trace context', () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it('parses and formats a traceparent', () => {
    const t = parseTraceparent(tp)!;
    expect(t).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: '01' });
    expect(formatTraceparent(t)).toBe(tp);
  });
  it.each([
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    'garbage',
  ])('rejects %s', (bad) => expect(parseTraceparent(bad)).toBeUndefined());
  it('continues the caller trace in a child span, or starts a new one', () => {
    const child = traceFromMeta({ traceparent: tp });
    expect(child.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(child.spanId).not.toBe('00f067aa0ba902b7');
    expect(traceFromMeta(undefined).traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});
