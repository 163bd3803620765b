// The fast paths of big sets (issue 14): each accepts a subset of what the general path
// accepts, with the same result; the streamed nft document equals the one-string one; a
// compiled plan skips the strict re-parse once and only once.
import { isIPv4, isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Firewall } from '../../src/firewall/firewall.js';
import { elementExpr } from '../../src/firewall/compile-sets.js';
import { ElementList, elementKey, isPlainIPv4, isPlainIPv6, plainElement, plainElements, uniqueElements } from '../../src/firewall/compile-elements.js';
import { documentChunks, documentSizeHint, documentText, documentTextUpTo } from '../../src/nft/document.js';
import { SetSpec } from '../../src/firewall/spec.js';
import { emptyPlan } from '../../src/plan/types.js';
import { markCompiled, validatePlan } from '../../src/plan/validate-plan.js';

/** Deterministic pseudo-random numbers (xorshift32). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

function randomText(r: () => number, alphabet: string, maxLen: number): string {
  const n = Math.floor(r() * (maxLen + 1));
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

describe('plain address fast path', () => {
  it('accepts only what net.isIPv4 / net.isIPv6 accept (random and structured strings)', () => {
    const r = rng(14);
    let v4 = 0;
    let v6 = 0;
    for (let i = 0; i < 200_000; i++) {
      const a = randomText(r, '0123456789.', 16);
      if (isPlainIPv4(a)) {
        v4++;
        expect(isIPv4(a), a).toBe(true);
      }
      const b = randomText(r, '0123456789abcdefABCDEF:::', 40);
      if (isPlainIPv6(b)) {
        v6++;
        expect(isIPv6(b), b).toBe(true);
      }
    }
    // structured candidates: 3-5 numbers of 0-3 digits
    for (let i = 0; i < 100_000; i++) {
      const s = Array.from({ length: 3 + Math.floor(r() * 3) }, () => randomText(r, '0123456789', 3)).join('.');
      if (isPlainIPv4(s)) {
        v4++;
        expect(isIPv4(s), s).toBe(true);
      } else expect(isIPv4(s), s).toBe(false);
    }
    // structured candidates: 1-9 groups of 0-5 hex digits, sometimes a "::" somewhere
    for (let i = 0; i < 100_000; i++) {
      const groups = Array.from({ length: 1 + Math.floor(r() * 9) }, () => randomText(r, '0123456789abcdefABCDEF', 5));
      if (r() < 0.6) groups.splice(Math.floor(r() * (groups.length + 1)), 0, '');
      let s = groups.join(':');
      if (r() < 0.2) s = `:${s}`;
      if (r() < 0.2) s = `${s}:`;
      if (isPlainIPv6(s)) {
        v6++;
        expect(isIPv6(s), s).toBe(true);
      } else if (isIPv6(s) && !s.includes('.')) expect(s.length > 39 || /::.*::/.test(s), s).toBe(true);
    }
    expect(v4).toBeGreaterThan(1000);
    expect(v6).toBeGreaterThan(1000);
  });

  it('takes the usual forms and leaves the unusual ones to the general path', () => {
    for (const a of ['198.18.0.1', '0.0.0.0', '255.255.255.255', '10.1.2.3']) expect(isPlainIPv4(a), a).toBe(true);
    for (const a of ['198.18.0.01', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1.2.3.4/32', ' 1.2.3.4', '1..2.3', '1.2.3.']) expect(isPlainIPv4(a), a).toBe(false);
    for (const a of ['fd00::1', '::', '::1', 'fd00::', 'FD00:0:0:0:0:0:0:1', '1:2:3:4:5:6:7:8', '1::8', 'fd00::1:ffff']) expect(isPlainIPv6(a), a).toBe(true);
    for (const a of ['fd00::1::2', ':1', '1:', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', '::ffff:1.2.3.4', 'fd00::1%eth0', 'fd00::/8', '12345::', ':::']) expect(isPlainIPv6(a), a).toBe(false);
  });

  it('builds the same element JSON as the general path', () => {
    const cases: [string | string[], unknown][] = [
      ['ipv4_addr', '198.18.0.1'],
      ['ipv6_addr', 'fd00::1:2'],
      ['inet_service', 443],
      [['ipv4_addr', 'inet_service'], ['198.18.1.1', 22]],
      [['ipv6_addr', 'ipv4_addr', 'inet_service'], ['fd00::9', '198.18.0.9', 0]],
    ];
    for (const [type, e] of cases) {
      const fast = plainElement(type, e);
      const slow = elementExpr(type, e, false);
      expect(slow.ok).toBe(true);
      expect(fast, JSON.stringify(e)).toEqual(slow.ok ? slow.value : undefined);
    }
    // not plain: left to the general path
    for (const [type, e] of [['ipv4_addr', '198.18.0.0/24'], ['ipv4_addr', 'fd00::1'], ['inet_service', '80-90'], ['inet_service', 70000], [['ipv4_addr', 'inet_service'], ['198.18.1.1']]] as [string | string[], unknown][]) {
      expect(plainElement(type, e), JSON.stringify(e)).toBeUndefined();
    }
  });
});

describe('set() element inputs', () => {
  it('plainElements gives what SetSpec gives, or defers to it', () => {
    const lists: unknown[][] = [
      ['198.18.0.1', 'fd00::1', 7, 0],
      [['198.18.0.1', 22], ['198.18.0.2', 23]],
      ['x'.repeat(100)],
    ];
    for (const l of lists) {
      const z = SetSpec.safeParse({ type: 'ipv4_addr', elements: l });
      expect(z.success).toBe(true);
      expect(plainElements(l)).toEqual(z.success ? z.data.elements : undefined);
    }
    for (const l of [['x'.repeat(101)], [-1], [1.5], [['a']], [{ value: '198.18.0.1', timeout: 3 }], [null], 'nope'] as unknown[]) {
      expect(plainElements(l), JSON.stringify(l)).toBeUndefined();
    }
    // concatenations are copied: the caller's later changes do not reach the builder
    const tuple: [string, number] = ['198.18.0.1', 22];
    const out = plainElements([tuple]) as unknown[][];
    tuple[1] = 99;
    expect(out[0]).toEqual(['198.18.0.1', 22]);
  });

  it('elementKey never confuses a string with a concatenation or a number', () => {
    const items: unknown[] = ['["198.18.0.1",22]', ['198.18.0.1', 22], '1', 1, '\u0001["a"]', '\u0001"x"', ['a'], { value: 'x', timeout: 1 }, '{"value":"x","timeout":1}'];
    const keys = new Set(items.map(elementKey));
    expect(keys.size).toBe(items.length);
  });

  it('uniqueElements keeps the first of equal elements (same keys as elementKey), in order', () => {
    const r = rng(7);
    for (let round = 0; round < 50; round++) {
      const pool: unknown[] = ['198.18.0.1', '1', 1, 0, -0, ['198.18.0.1', 22], ['198.18.0.1', 23], { value: 'x', timeout: 1 }, { value: 'x', timeout: 2 }, 'x', '\u0001x'];
      const list = Array.from({ length: 1 + Math.floor(r() * 60) }, () => {
        const e = pool[Math.floor(r() * pool.length)];
        return Array.isArray(e) ? [...e] : e && typeof e === 'object' ? { ...e } : e; // equal, not identical
      });
      const want: unknown[] = [];
      const seen = new Set<unknown>();
      for (const e of list) if (!seen.has(elementKey(e))) (seen.add(elementKey(e)), want.push(e));
      expect(uniqueElements(list)).toEqual(want);
    }
    const none = Array.from({ length: 5000 }, (_, i) => `fd00::${i.toString(16)}`);
    expect(uniqueElements(none)).toBe(none); // nothing repeats: the same array
  });

  it('ElementList turns into an index at the first live change and keeps the order', () => {
    const l = new ElementList(['a', 'b', 'a', ['c', 1]]);
    expect(l.size).toBe(3);
    expect([...l.values()]).toEqual(['a', 'b', ['c', 1]]);
    expect(l.has(elementKey(['c', 1]))).toBe(true);
    l.set(elementKey('d'), 'd');
    expect(l.delete(elementKey('a'))).toBe(true);
    expect(l.delete(elementKey('zz'))).toBe(false);
    expect(l.toArray()).toEqual(['b', ['c', 1], 'd']);
    expect(l.size).toBe(3);
  });

  it('a firewall compiles the same with plain and with zod-parsed element lists, duplicates removed', () => {
    const plain = ['198.18.0.1', '198.18.0.2', '198.18.0.1'];
    const a = new Firewall({ table: 't', family: 'inet' }).set('s', { type: 'ipv4_addr', timeout: 60, elements: plain }).compile();
    // an element with a timeout makes the whole list go through zod
    const b = new Firewall({ table: 't', family: 'inet' }).set('s', { type: 'ipv4_addr', timeout: 60, elements: [...plain, { value: '198.18.0.3', timeout: 5 }] }).compile();
    expect(a.ok && b.ok).toBe(true);
    const elemOf = (p: typeof a) => (p.ok ? (p.val.nft[3] as { add: { set: { elem: unknown[] } } }).add.set.elem : []);
    expect(elemOf(a)).toEqual(['198.18.0.1', '198.18.0.2']);
    expect(elemOf(b)).toEqual(['198.18.0.1', '198.18.0.2', { elem: { val: '198.18.0.3', timeout: 5 } }]);
    // a bad element is still named by zod's path
    const c = new Firewall({ table: 't', family: 'inet' }).set('s', { type: 'ipv4_addr', elements: ['198.18.0.1', 'x'.repeat(101)] }).compile();
    expect(c.err && c.val.message).toMatch(/set s\.elements\.1/);
    const d = new Firewall({ table: 't', family: 'inet' }).set('s', { type: 'ipv4_addr', elements: ['198.18.0.1', 'fd00::1'] }).compile();
    expect(d.err && d.val.message).toMatch(/set s\.elements\.1/);
  });
});

describe('streamed nft document', () => {
  it('joins to the same JSON value as one JSON.stringify, in small and big pieces', () => {
    const elem = Array.from({ length: 70_000 }, (_, i) => `fd00::${i.toString(16)}`); // more than one slice of 65,536
    const commands = [
      { add: { table: { family: 'inet', name: 't' } } },
      { add: { set: { family: 'inet', table: 't', name: 's', type: 'ipv6_addr', elem, flags: ['timeout'] } } },
      { add: { element: { family: 'inet', table: 't', name: 's', elem: elem.slice(0, 5000).map((e) => ({ elem: { val: e, timeout: 3 } })) } } },
      { add: { rule: { family: 'inet', table: 't', chain: 'c', expr: [{ accept: null }], comment: 'a "quoted" \\ comment' } } },
    ];
    const want = JSON.parse(JSON.stringify({ nftables: commands })) as unknown;
    for (const size of [1, 100, 65_536, 1 << 20]) {
      const parts = [...documentChunks(commands, size)];
      expect(JSON.parse(parts.join(''))).toEqual(want);
      if (size <= 65_536) expect(parts.length).toBeGreaterThan(2);
    }
    expect(JSON.parse(documentText([]))).toEqual({ nftables: [] });
    expect(JSON.parse(documentText(commands))).toEqual(want);
    const whole = documentText(commands);
    expect(documentTextUpTo(commands, whole.length)).toBe(whole);
    expect(documentTextUpTo(commands, whole.length - 1)).toBeUndefined();
    expect(documentTextUpTo(commands, 1000)).toBeUndefined();
    expect(documentTextUpTo([], 1000)).toBe('{"nftables":[]}');
    // the size estimate that decides streaming is close to the real size
    const hint = documentSizeHint(commands);
    expect(hint).toBeGreaterThan(whole.length * 0.8);
    expect(hint).toBeLessThan(whole.length * 1.25);
  });
});

describe('markCompiled', () => {
  it('skips the strict re-parse for the next validation of that plan only', () => {
    const plan = emptyPlan('firewall:t');
    plan.tables = [{ family: 'inet', name: 't' }];
    plan.nft = [{ add: { chain: { family: 'inet', table: 't', name: 'c', hook: 'nonsense' } } }] as unknown as typeof plan.nft;
    expect(validatePlan(plan).err).toBe(true);
    markCompiled(plan);
    expect(validatePlan(plan).ok).toBe(true);
    expect(validatePlan(plan).err).toBe(true); // the mark was consumed
    // shape and ownership are still checked for a marked plan
    const foreign = emptyPlan('firewall:t');
    foreign.tables = [{ family: 'inet', name: 't' }];
    foreign.nft = [{ add: { chain: { family: 'inet', table: 'other', name: 'c' } } }] as unknown as typeof foreign.nft;
    expect(validatePlan(markCompiled(foreign)).err).toBe(true);
  });
});
