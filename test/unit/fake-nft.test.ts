/**
 * The in-memory nft model behind FakeHost answers as nft 1.0.6 / Linux 6.x
 * were measured to answer (in a throwaway namespace, 2026-12-02): what fails,
 * with which text, and what a listing looks like afterwards.
 */
import { describe, expect, it } from 'vitest';
import { FakeNft, NFT_1_0_6 } from '../../src/host/fake-nft.js';
import { runNftArgv } from '../../src/host/fake-nft-cli.js';

const T = { family: 'inet', table: 't' } as const;
const base = (): unknown[] => [
  { add: { table: { family: 'inet', name: 't' } } },
  { add: { chain: { ...T, name: 'c', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } },
  { add: { chain: { ...T, name: 'r' } } },
  { add: { set: { ...T, name: 's', type: 'ipv4_addr', flags: ['interval'], elem: ['198.18.0.1', { prefix: { addr: '198.19.0.0', len: 16 } }] } } },
  { add: { map: { ...T, name: 'm', type: 'inet_service', map: 'verdict', elem: [[22, { accept: null }], [80, { jump: { target: 'r' } }]] } } },
  { add: { counter: { ...T, name: 'cn' } } },
  { add: { rule: { ...T, chain: 'c', comment: 'nf:a', expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '@s' } }, { counter: 'cn' }, { jump: { target: 'r' } }] } } },
  { add: { rule: { ...T, chain: 'r', expr: [{ counter: null }, { accept: null }] } } },
];

function fresh(opts = {}): FakeNft {
  const n = new FakeNft(opts);
  n.transact(base());
  return n;
}
function batch(n: FakeNft, cmds: unknown[], check = false): { exitCode: number; stderr: string; stdout: string } {
  return runNftArgv(n, check ? ['nft', '-c', '-j', '-f', '-'] : ['nft', '-j', '-f', '-'], JSON.stringify({ nftables: cmds }));
}
const listing = (n: FakeNft, ...words: string[]): unknown[] => (JSON.parse(runNftArgv(n, ['nft', '-j', 'list', ...words]).stdout) as { nftables: unknown[] }).nftables;

describe('FakeNft: transactions as nft answers them', () => {
  it('lists like nft -j list: metainfo first, handles from one counter per table, rules with handle and comment', () => {
    const n = fresh();
    const items = listing(n, 'table', 'inet', 't');
    expect(Object.keys(items[0] as object)).toEqual(['metainfo']);
    expect(items.slice(1).map((i) => Object.keys(i as object)[0])).toEqual(['table', 'counter', 'set', 'map', 'chain', 'chain', 'rule', 'rule']);
    expect(items[1]).toEqual({ table: { family: 'inet', name: 't', handle: 1 } });
    expect(items[2]).toEqual({ counter: { family: 'inet', name: 'cn', table: 't', handle: 5, packets: 0, bytes: 0 } });
    expect(items[7]).toMatchObject({ rule: { family: 'inet', table: 't', chain: 'c', handle: 6, comment: 'nf:a' } });
    // an anonymous counter lists its values
    expect(items[8]).toEqual({ rule: { family: 'inet', table: 't', chain: 'r', handle: 7, expr: [{ counter: { packets: 0, bytes: 0 } }, { accept: null }] } });
    // terse: no elements
    const terse = (JSON.parse(runNftArgv(n, ['nft', '-t', '-j', 'list', 'table', 'inet', 't']).stdout) as { nftables: Record<string, Record<string, unknown>>[] }).nftables;
    expect(terse.find((i) => i.set)?.set?.elem).toBeUndefined();
    expect(listing(n, 'set', 'inet', 't', 's')).toEqual([expect.anything(), { set: { family: 'inet', name: 's', table: 't', type: 'ipv4_addr', handle: 3, flags: ['interval'], elem: ['198.18.0.1', { prefix: { addr: '198.19.0.0', len: 16 } }] } }]);
    expect(listing(n, 'counters', 'table', 'inet', 't')).toHaveLength(2);
    expect(listing(n, 'chain', 'inet', 't', 'r').map((i) => Object.keys(i as object)[0])).toEqual(['metainfo', 'chain', 'rule']);
  });

  it.each([
    ['create of an existing table', [{ create: { table: { family: 'inet', name: 't' } } }], 'Could not process rule: File exists'],
    ['delete of a missing table', [{ delete: { table: { family: 'inet', name: 'zz' } } }], 'No such file or directory'],
    ['a chain still jumped to', [{ flush: { chain: { ...T, name: 'r' } } }, { delete: { chain: { ...T, name: 'r' } } }], 'Device or resource busy'],
    ['a chain a map element jumps to', [{ flush: { table: { family: 'inet', name: 't' } } }, { delete: { chain: { ...T, name: 'r' } } }], 'Device or resource busy'],
    ['a set still referenced', [{ delete: { set: { ...T, name: 's' } } }], 'Device or resource busy'],
    ['a counter still referenced', [{ delete: { counter: { ...T, name: 'cn' } } }], 'Device or resource busy'],
    ['create of an existing element', [{ create: { element: { ...T, name: 's', elem: ['198.18.0.1'] } } }], 'File exists'],
    ['delete of a missing element', [{ delete: { element: { ...T, name: 's', elem: ['198.18.0.77'] } } }], 'No such file or directory'],
    ['an overlapping interval', [{ add: { element: { ...T, name: 's', elem: ['198.19.0.5'] } } }], 'interval overlaps with an existing one'],
    ['another value for a map key', [{ add: { element: { ...T, name: 'm', elem: [[22, { drop: null }]] } } }], 'File exists'],
    ['another hook for a base chain', [{ add: { chain: { ...T, name: 'c', type: 'filter', hook: 'output', prio: 0 } } }], 'Operation not supported'],
    ['another key type for a set', [{ add: { set: { ...T, name: 's', type: 'ipv6_addr' } } }], 'File exists'],
    ['a rule in a missing chain', [{ add: { rule: { ...T, chain: 'zz', expr: [{ accept: null }] } } }], 'No such file or directory'],
    ['a jump to a missing chain', [{ add: { rule: { ...T, chain: 'r', expr: [{ jump: { target: 'zz' } }] } } }], 'No such file or directory'],
    ['a missing set', [{ add: { rule: { ...T, chain: 'r', expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '@zz' } }] } } }], 'No such file or directory'],
    ['delete of a missing rule handle', [{ delete: { rule: { ...T, chain: 'r', handle: 999 } } }], 'Could not process rule: No such file or directory'],
    ['replace of a missing rule', [{ replace: { rule: { ...T, chain: 'r', handle: 999, expr: [{ drop: null }] } } }], 'Could not process rule: No such file or directory'],
  ])('refuses %s, and the whole batch takes no effect', (_what, cmds, text) => {
    const n = fresh();
    const before = listing(n, 'ruleset');
    const all = [{ add: { table: { family: 'inet', name: 'other' } } }, ...cmds];
    const r = batch(n, all);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`Error: (Could not process rule: )?${text}`));
    expect(listing(n, 'ruleset')).toEqual(before);
    // check mode says the same and commits nothing either
    expect(batch(n, all, true).stderr).toContain(text);
    expect(listing(n, 'ruleset')).toEqual(before);
  });

  it('accepts what nft accepts: add of existing objects, identical elements, destroy of missing ones, chain deletion with its rules', () => {
    const n = fresh();
    const r = batch(n, [
      { add: { table: { family: 'inet', name: 't' } } },
      { add: { chain: { ...T, name: 'c', type: 'filter', hook: 'input', prio: 0, policy: 'drop' } } },
      { add: { set: { ...T, name: 's', type: 'ipv4_addr', flags: ['interval'] } } },
      { add: { element: { ...T, name: 's', elem: ['198.18.0.1'] } } },
      { add: { element: { ...T, name: 'm', elem: [[22, { accept: null }]] } } },
      { add: { counter: { ...T, name: 'cn' } } },
      { destroy: { table: { family: 'inet', name: 'absent' } } },
      { delete: { chain: { ...T, name: 'c' } } },
    ]);
    expect(r).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(n.table('inet', 't')?.chains.has('c')).toBe(false);
    // now nothing references the set or the counter any more
    expect(batch(n, [{ delete: { set: { ...T, name: 's' } } }, { delete: { counter: { ...T, name: 'cn' } } }]).exitCode).toBe(0);
  });

  it('places rules: insert before handle/index or first, add after index or last (JSON add ignores handle, as nft does)', () => {
    const n = fresh();
    const r = (v: string, extra: object): unknown => ({ [v]: { rule: { ...T, chain: 'r', expr: [{ drop: null }], ...extra } } });
    expect(batch(n, [r('insert', { index: 0, comment: 'i0' }), r('add', { index: 0, comment: 'a0' }), r('add', { handle: 8, comment: 'ah' }), r('insert', { handle: 7, comment: 'ih' }), r('insert', { comment: 'first' })]).exitCode).toBe(0);
    expect(n.rules('inet', 't', 'r')?.map((x) => x.comment ?? x.handle)).toEqual(['first', 'i0', 'a0', 'ih', 7, 'ah']);
    expect(batch(n, [r('insert', { handle: 999 })]).stderr).toContain('Could not process rule: No such file or directory');
  });

  it('names a command its parser refuses by index, as nft does', () => {
    const n = fresh();
    const r = batch(n, [{ add: { table: { family: 'inet', name: 'u' } } }, { add: { chain: { family: 'inet' } } }]);
    expect(r.stderr).toContain('Parsing command array at index 1 failed.');
    expect(batch(n, [{ add: { rule: { ...T, chain: 'r', expr: [{ frobnicate: 1 }] } } }]).stderr).toContain('Parsing command array at index 0 failed.');
  });

  it('imitates nft 1.0.6: no destroy, table comments dropped', () => {
    const n = new FakeNft(NFT_1_0_6);
    expect(batch(n, [{ add: { table: { family: 'inet', name: 'x', comment: 'netfence:me' } } }]).exitCode).toBe(0);
    expect(listing(n, 'table', 'inet', 'x')[1]).toEqual({ table: { family: 'inet', name: 'x', handle: 1 } });
    expect(batch(n, [{ destroy: { table: { family: 'inet', name: 'x' } } }]).stderr).toContain('Parsing command array at index 0 failed.');
    const m = new FakeNft();
    batch(m, [{ add: { table: { family: 'inet', name: 'x', comment: 'netfence:me' } } }]);
    expect(listing(m, 'table', 'inet', 'x')[1]).toEqual({ table: { family: 'inet', name: 'x', handle: 1, comment: 'netfence:me' } });
  });

  it('expires elements with a timeout on its clock and lists what is left', () => {
    let now = 1_000_000;
    const n = new FakeNft({ now: () => now });
    n.transact([{ add: { table: { family: 'netdev', name: 'b' } } }, { add: { set: { family: 'netdev', table: 'b', name: 'v4', type: 'ipv4_addr', flags: ['interval', 'timeout'] } } }]);
    n.transact([{ add: { element: { family: 'netdev', table: 'b', name: 'v4', elem: [{ elem: { val: '198.18.0.1', timeout: 60 } }, '198.18.0.2'] } } }]);
    now += 30_000;
    expect(n.elements('netdev', 'b', 'v4')).toHaveLength(2);
    expect(listing(n, 'set', 'netdev', 'b', 'v4')[1]).toMatchObject({ set: { elem: [{ elem: { val: '198.18.0.1', timeout: 60, expires: 30 } }, '198.18.0.2'] } });
    now += 31_000;
    expect(n.elements('netdev', 'b', 'v4')).toEqual(['198.18.0.2']);
  });

  it('answers the argv forms netfence runs: version, list words, nft text, flush/delete words', () => {
    const n = fresh();
    expect(runNftArgv(n, ['nft', '--version']).stdout).toMatch(/^nftables v1\.1\.6/);
    expect(runNftArgv(n, ['nft', '-j', 'list', 'table', 'inet', 'zz'])).toMatchObject({ exitCode: 1, stderr: expect.stringContaining('No such file or directory') });
    const text = runNftArgv(n, ['nft', '-f', '-'], 'add rule inet t r socket cgroupv2 level 2 "a/b" jump c\n');
    expect(text.exitCode).toBe(0);
    expect(n.rules('inet', 't', 'r')?.at(-1)).toMatchObject({ text: 'socket cgroupv2 level 2 "a/b" jump c', expr: [{ jump: { target: 'c' } }] });
    expect(runNftArgv(n, ['nft', 'flush', 'chain', 'inet', 't', 'r']).exitCode).toBe(0);
    expect(n.rules('inet', 't', 'r')).toEqual([]);
    expect(runNftArgv(n, ['nft', 'delete', 'table', 'inet', 'zz'])).toMatchObject({ exitCode: 1, stderr: expect.stringContaining('No such file or directory') });
    expect(runNftArgv(n, ['nft', 'list', 'ruleset']).exitCode).toBe(1); // text listings are not modelled: said, not faked
    // a JSON batch of list commands prints one document per command
    const many = runNftArgv(n, ['nft', '-j', '-f', '-'], JSON.stringify({ nftables: [{ list: { table: { family: 'inet', name: 't' } } }, { list: { counters: { family: 'inet', table: 't' } } }] }));
    expect(many.stdout.split('\n')).toHaveLength(2);
  });
});
