// The verifier's fast path must agree with JSON.parse on every line it
// accepts, and refuse (hand back to JSON.parse) every line JSON.parse refuses.
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/common/canonical-json.ts';
import { headOf, scanRecordHead, type RecordHead } from '../../../src/host/audit/record-head.ts';

const PREV = 'ce5a298522d6117bbd43669e1cb907b168a6af6c5c4ba769a1961eef22668fb1';

function record(i: number): string {
  return canonicalJson({
    type: i % 2 ? 'decision' : 'outcome',
    session: `sess-${i}`,
    traceId: i.toString(16).padStart(32, '0'),
    actor: { user: 'alice', device: 'laptop', agent: 'tether-agent', model: 'm' },
    request: { id: `r${i}`, method: 'fs/write_text_file', action: 'write', kind: 'write', path: `/home/alice/é/😀/f${i}.ts`, sandbox: { seq: 9, prev: 'x', nested: [1, -2.5e3, true, null, { type: 'log.start' }] } },
    decision: { effect: 'ask', allowed: true, policyIds: ['p'], decidedBy: 'user', reason: 'said "yes" \\ ok\n' },
    v: 1,
    seq: i,
    time: '2026-01-01T00:00:00.000Z',
    prev: PREV,
  });
}

/** What JSON.parse says about the line, in the terms of a head (or 'invalid'). */
function viaJsonParse(bytes: Buffer): RecordHead | 'invalid' | 'not an object' {
  let r: unknown;
  try {
    r = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'invalid';
  }
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'not an object';
  return headOf(r as Record<string, unknown>);
}

function check(bytes: Buffer): RecordHead | undefined {
  const head = scanRecordHead(bytes, 0, bytes.length, PREV);
  const want = viaJsonParse(bytes);
  if (head !== undefined) {
    expect(want, bytes.toString('latin1')).not.toBeTypeOf('string');
    expect(head).toEqual(want);
    if (typeof head.v === 'number') expect(Object.is(head.v, (want as RecordHead).v)).toBe(true);
  }
  // (Refusing a valid line is allowed: the verifier then parses it whole.)
  return head;
}

describe('scanRecordHead', () => {
  it('reads v, seq, prev, type, unsigned and the string-ness of time and session of canonical records without parsing them whole', () => {
    const line = Buffer.from(record(12345));
    const head = check(line);
    expect(head).toEqual({ v: 1, seq: 12345, prev: PREV, type: 'decision', unsigned: undefined, timeIsString: true, sessionIsString: true });
    const unsigned = Buffer.from(canonicalJson({ ...JSON.parse(record(7)), unsigned: true, type: 'custom.type' }));
    expect(check(unsigned)).toMatchObject({ unsigned: true, type: 'custom.type', seq: 7 });
    // Inside a longer buffer, only [start, end) counts.
    const framed = Buffer.concat([Buffer.from('garbage\n'), line, Buffer.from('\n{"v":2}')]);
    expect(scanRecordHead(framed, 8, 8 + line.length, PREV)).toEqual(head);
  });

  it('agrees with JSON.parse on hand-made edge cases', () => {
    const cases = [
      '{}', '[]', '1', '"s"', 'null', ' {"v":1} ', '\t{"v":1}\r', '{"v":1,}', '{"v":1 "seq":2}', '{"v":01}', '{"v":1.0}', '{"v":1e0}', '{"v":-0}', '{"v":.5}', '{"v":1.}', '{"v":1e}', '{"v":-}',
      '{"seq":123456789012345}', '{"seq":1234567890123456789}', '{"seq":-3}', '{"seq":"3"}', '{"seq":3,"seq":4}', '{"v":1,"v":2}',
      '{"prev":"a\\u0062"}', '{"pr\\u0065v":"x"}', '{"type":"log.start"}', '{"type":"log.st\\u0061rt"}', '{"type":{"a":1}}', '{"unsigned":"true"}', '{"unsigned":true}', '{"unsigned":false,"unsigned":true}',
      '{"time":1,"session":"s"}', '{"time":"t","session":null}', '{"a":"\u0001"}', '{"a":"\\x"}', '{"a":"\\u12"}', '{"a":"\\u12g4"}', '{"a":tru}', '{"a":nul}', '{"a":[1,2,]}', '{"a":[,1]}', '{"a":{"b":}}',
      '{"a":"\ufeff"}', '\ufeff{}', '{"a":"\u2028"}', '{"a" : [ 1 , { } ] }', '{"a":1}x', '{"a":1}}', '{"a":"unterminated}', '{"a":[[[[]]]]}', `{"a":${'['.repeat(100)}${']'.repeat(100)}}`,
    ];
    const accepted = cases.filter((c) => check(Buffer.from(c)) !== undefined);
    expect(accepted).toContain(' {"v":1} ');
    expect(accepted).toContain('{"a" : [ 1 , { } ] }');
    expect(scanRecordHead(Buffer.from('{"v":1.0}'), 0, 9, PREV)).toMatchObject({ v: 1 });
    expect(scanRecordHead(Buffer.from('{"seq":3,"seq":4}'), 0, 17, PREV)).toMatchObject({ seq: 4 });
  });

  it('agrees with JSON.parse on malformed UTF-8 (refusing it) and well-formed multi-byte text', () => {
    const bad = [[0xc0, 0xa2], [0xc3], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf0, 0x9f, 0x98], [0xff], [0x80]];
    for (const seq of bad) {
      const line = Buffer.concat([Buffer.from('{"a":"x'), Buffer.from(seq), Buffer.from('","v":1}')]);
      expect(scanRecordHead(line, 0, line.length, PREV)).toBeUndefined();
      check(line);
      const asType = Buffer.concat([Buffer.from('{"type":"'), Buffer.from(seq), Buffer.from('"}')]);
      check(asType);
    }
    check(Buffer.from('{"type":"é😀€","session":"ü","v":1}'));
    expect(check(Buffer.from('{"type":"é😀€"}'))?.type).toBe('é😀€');
  });

  it('agrees with JSON.parse after every single-byte change of a record (and accepts the untouched one)', () => {
    const line = Buffer.from(record(42));
    expect(check(line)).toBeDefined();
    const values = [0x00, 0x09, 0x0a, 0x1f, 0x20, 0x22, 0x2c, 0x2d, 0x30, 0x3a, 0x5b, 0x5c, 0x5d, 0x65, 0x75, 0x7b, 0x7d, 0x7f, 0x80, 0xc3, 0xff];
    let accepted = 0;
    for (let pos = 0; pos < line.length; pos++) {
      const original = line[pos]!;
      for (const v of [original ^ 0x01, ...values]) {
        line[pos] = v;
        if (check(line)) accepted++;
      }
      line[pos] = original;
    }
    expect(accepted).toBeGreaterThan(line.length); // many flips keep the line valid JSON: those are the hashes' to catch
  });

  it('refuses nesting deeper than it follows, leaving it to JSON.parse', () => {
    const deep = Buffer.from(`{"a":${'['.repeat(65)}${']'.repeat(65)},"v":1}`);
    expect(scanRecordHead(deep, 0, deep.length, PREV)).toBeUndefined();
    expect(viaJsonParse(deep)).toMatchObject({ v: 1 });
  });
});
