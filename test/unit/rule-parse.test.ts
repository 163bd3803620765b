import { describe, expect, it } from 'vitest';
import { parseRule } from '../../src/firewall/rule-parse.js';
import { RuleSpec } from '../../src/firewall/spec.js';

/** Values per field, valid and invalid, primitives mostly (the fast path's inputs) and a few of the other forms. */
const POOL: Record<string, unknown[]> = {
  id: ['r1', 'a.b:c@d+e=f-g', '_x', '', '-bad', 'x'.repeat(96), 'x'.repeat(97), 'sp ace', 7, true],
  comment: ['hello world', 'bad"quote', '', 'x'.repeat(129), 3],
  protocol: ['tcp', 'udp', 'gre', 'TCP', 'http', ['tcp', 'udp'], 6],
  dport: [0, 22, 65535, 65536, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '22', '@ports', '@bad name', { from: 1, to: 2 }, [1, 2]],
  sport: [1024, 70000, '@p', false],
  saddr: ['198.18.0.1', '198.18.0.0/15', 'fd00::1', 'fd00::/8', '198.18.0.1-198.18.0.9', '198.18.0.1-fd00::1', '@set', '@', 'not-an-ip', '198.18.0.256', ['198.18.0.1'], 5],
  daddr: ['198.19.0.1', '::', 'fd00::1/129'],
  action: ['accept', 'drop', 'return', 'continue', 'masquerade', 'reject', 'ACCEPT', { type: 'drop' }, { type: 'reject', with: 'tcp-reset' }, 1],
  counter: [true, false, 'yes', 0],
  nfproto: ['ipv4', 'ipv6', 'ip', 4],
  iifname: ['eth0', 'veth*', 'x'.repeat(16), 'a b', ['eth0']],
  oifname: ['wan0', '*'],
  setMark: [0, 0xffffffff, 0x100000000, -3, 2.5],
  ctCountOver: [0, 10, -1],
  unknownField: ['x'],
};
const FIELDS = Object.keys(POOL);

/** A small deterministic generator (xorshift). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

function same(spec: unknown): void {
  const a = parseRule(spec);
  const b = RuleSpec.safeParse(spec);
  expect(a.success, JSON.stringify(spec)).toBe(b.success);
  if (a.success && b.success) {
    expect(a.data).toEqual(b.data);
    expect(Object.keys(a.data)).toEqual(Object.keys(b.data)); // same field order
  } else if (!a.success && !b.success) {
    expect(a.error.issues).toEqual(b.error.issues);
  }
}

describe('parseRule (RuleSpec.safeParse with a fast path)', () => {
  it('gives what zod gives on 8,000 generated rules, valid and invalid', () => {
    const r = rng(14);
    let fastAccepted = 0;
    for (let n = 0; n < 8_000; n++) {
      const spec: Record<string, unknown> = {};
      const count = Math.floor(r() * 6);
      if (r() < 0.9) spec.id = r() < 0.9 ? `r${n}` : POOL.id![Math.floor(r() * POOL.id!.length)];
      for (let i = 0; i < count; i++) {
        const f = FIELDS[Math.floor(r() * (FIELDS.length - (r() < 0.97 ? 1 : 0)))] as string;
        const vals = POOL[f]!;
        spec[f] = vals[Math.floor(r() * vals.length)];
      }
      same(spec);
      if (RuleSpec.safeParse(spec).success) fastAccepted++;
    }
    expect(fastAccepted).toBeGreaterThan(800); // the generator reaches the valid side, not only errors
  });

  it('keeps zod on the unusual forms: non-objects, class instances, hidden and undefined fields', () => {
    for (const spec of [null, undefined, 'r1', 5, [], ['r1'], new Date(), { id: 'r1', saddr: undefined }]) same(spec);
    class R {
      id = 'r1';
    }
    same(new R());
    const hidden = { id: 'r1' };
    Object.defineProperty(hidden, 'saddr', { value: 'not-an-ip', enumerable: false });
    same(hidden);
    same(Object.assign(Object.create(null) as object, { id: 'r1', dport: 22 }));
    same(JSON.parse('{"id":"r1","__proto__":{"x":1}}'));
  });

  it('reads a getter once and keeps the value it validated', () => {
    let reads = 0;
    const spec = {
      id: 'r1',
      get saddr(): string {
        reads++;
        return reads === 1 ? '198.18.0.1' : 'not-an-ip';
      },
    };
    const r = parseRule(spec);
    expect(r.success && r.data.saddr).toBe('198.18.0.1');
  });
});
