/**
 * Bulk loads of the XDP blocklist: packEntries (the one-pass validation that
 * packs map keys) accepts and refuses exactly what parseEntries does, with
 * the same keys and the same messages; a load of more than one batch (the
 * parallel path) puts every entry in the maps, and a load that overfills a
 * map leaves nothing of itself behind (all-or-nothing across its batches).
 */
import './fake-setup.js';
import { describe, expect, it } from 'vitest';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { parseEntries } from '../../src/xdp/entries.js';
import { mapOpAsync } from '../../src/xdp/map-ops.js';
import { BATCH } from '../../src/xdp/maps-batch.js';
import { BlocklistMaps } from '../../src/xdp/maps.js';
import { fastIPv4Entry, packBlockEntries, packEntries } from '../../src/xdp/packed.js';

const TRICKY = [
  '198.18.0.1', '0.0.0.0', '255.255.255.255', '198.18.0.0/15', '0.0.0.0/0', '198.18.0.1/32', '198.18.0.1/032', '198.18.0.0/00',
  '01.2.3.4', '1.2.3.04', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.4/', '1.2.3.4/33', '1.2.3.4/0032', '1.2.3.4/-1',
  '198.18.1.5/24', '198.18.1.0/24', ' 198.18.0.9', '198.18.0.9 ', '198.18.0.9\n', '1.2.3.4/24x', '1.2.3.4x', '', '/', '1.2.3.4/2 ',
  'fd00::1', 'fd00::/8', 'fd00::1/64', '::ffff:1.2.3.4', '::', '1.2.3.4%eth0', 'fe80::1%eth0', 'x', '999.999.999.999',
];

function same(input: unknown[]): void {
  const p = parseEntries(input, 'blocklist entries', { dedupe: false });
  const k = packEntries(input, 'blocklist entries');
  expect(k.ok, JSON.stringify(input)).toBe(p.ok);
  if (p.err || k.err) {
    expect(k.err && k.val.issues).toEqual(p.err && p.val.issues);
    return;
  }
  const want = packBlockEntries(p.val);
  expect(k.val.count).toBe(want.count);
  for (const kind of ['v4', 'v6', 'p4', 'p6'] as const) {
    const ks = { v4: 4, v6: 16, p4: 8, p6: 20 }[kind];
    expect(k.val.lists[kind].n, `${kind} of ${JSON.stringify(input)}`).toBe(want.lists[kind].n);
    expect(k.val.lists[kind].keys.subarray(0, k.val.lists[kind].n * ks).equals(want.lists[kind].keys.subarray(0, want.lists[kind].n * ks))).toBe(true);
  }
}

describe('packEntries', () => {
  it('agrees with parseEntries on every tricky entry, one at a time and all together', () => {
    for (const t of TRICKY) same([t]);
    same(TRICKY.filter((t) => parseEntries([t]).ok));
    same(TRICKY);
    same([1, null, '198.18.0.1']);
    // more than the initial room of every list, through both parsers (the keys buffers grow)
    same(Array.from({ length: 100 }, (_, i) => [`198.18.${i}.0/24`, ` 198.19.0.${i}`, `fd00::${i.toString(16)}`, `fd00:${i.toString(16)}::/32`, `10.0.0.${i}`]).flat());
    expect(packEntries('198.18.0.1').unwrap().lists.v4.n).toBe(1);
    expect(packEntries({}).err).toBe(true);
  });

  it('agrees with parseEntries on 3,000 random strings of digits, dots and slashes', () => {
    let seed = 12345;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const chars = '0123456789..//';
    const inputs: string[] = [];
    for (let i = 0; i < 3_000; i++) {
      const octets = Array.from({ length: 4 }, () => String(rnd(300)).padStart(rnd(4) === 0 ? 2 : 1, '0'));
      let s = octets.join('.');
      if (rnd(3) === 0) s += `/${rnd(40)}`;
      if (rnd(5) === 0) s = s.slice(0, rnd(s.length + 1)) + chars[rnd(chars.length)] + s.slice(rnd(s.length + 1));
      inputs.push(s);
    }
    const disagree = inputs.filter((s) => {
      const p = parseEntries([s]);
      const k = packEntries([s]);
      return p.ok !== k.ok || (fastIPv4Entry(s) && !p.ok) || (p.err && k.err && JSON.stringify(p.val.issues) !== JSON.stringify(k.val.issues));
    });
    expect(disagree).toEqual([]);
    same(inputs.filter((s) => parseEntries([s]).ok)); // the same keys, in the same lists
    same(inputs); // the same issues (the first 100)
  });
});

describe('a load of several batches (FakeHost)', () => {
  const N = 2 * BATCH + 1_000;
  const ips = Array.from({ length: N }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

  it('puts every entry into the maps, with progress per batch', async () => {
    const fake = new FakeHost({});
    await withHost(fake, async () => {
      const m = BlocklistMaps.create('/sys/fs/bpf/netfence/pk1', N + 10, 0);
      const seen: number[] = [];
      await m.load(0, packEntries([...ips, '198.18.0.0/24']).unwrap(), 0n, 'add', (p) => seen.push(p.done));
      expect(m.liveEntryCount(0, 0n)).toBe(N + 1);
      expect(m.lookup(0, parseEntries(['10.2.3.231']).unwrap()[0]!)?.entry.text).toBe('10.2.3.231');
      expect(m.lookup(0, parseEntries(['198.18.0.77']).unwrap()[0]!)?.entry.text).toBe('198.18.0.0/24');
      expect(seen.at(-1)).toBe(N + 1);
      expect(seen.length).toBeGreaterThanOrEqual(3);
      m.close();
    });
  });

  it('a map that fills up mid-load is rolled back: the entries it held keep their values, the new ones are gone', async () => {
    const fake = new FakeHost({});
    await withHost(fake, async () => {
      const m = BlocklistMaps.create('/sys/fs/bpf/netfence/pk2', BATCH + 500, 0);
      m.upsert(0, parseEntries(['10.0.0.5', '10.0.0.6']).unwrap(), 7n, 'add');
      const r = await mapOpAsync(() => m.load(0, packEntries(ips).unwrap(), 0n, 'add'));
      expect(r.err && r.val.code).toBe('BLOCKLIST_FULL');
      expect(m.entries(0).map((e) => [e.entry.text, e.expiresNs])).toEqual([
        ['10.0.0.5', 7n],
        ['10.0.0.6', 7n],
      ]);
      m.close();
    });
  });
});
