/**
 * XdpBlocklist on a FakeHost: the nftables fallback end to end (an owned
 * netdev table; entries as set elements; has/list/stats; destroy), and the
 * XDP backend's pieces that go through the Host seam: the maps (bpf(2):
 * create, pin, batch upserts, LPM lookups, flip, re-open) and the tools
 * (bpftool load/attach/detach, ip -j link). XdpBlocklist.apply() with the XDP
 * backend is not run here: its pin-swap step (src/plan/actions-xdp.ts) and
 * gatherXdpFacts still use node:fs directly, outside host.files.
 */
import './fake-setup.js';
import { resolve } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { parseEntries } from '../../src/xdp/entries.js';
import { attachProgram, detachProgram, loadProgram, xdpState } from '../../src/xdp/loader.js';
import { ALL_MAPS, BlocklistMaps } from '../../src/xdp/maps.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { primeFakeCapabilities } from './fake-caps.js';

const NS = 'xdp-fake';
// gatherXdpFacts checks the object with node:fs, not host.files: the package's own object (npm test builds it first), mirrored into the fake
const OBJ = resolve('bpf/build/xdp_blocklist.o');
let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS], links: { [NS]: [{ ifname: 'veth0' }] } });
  fake.files.put(OBJ, '(a BPF object)');
  primeFakeCapabilities(NS);
});

describe('XdpBlocklist on a FakeHost', () => {
  it('nft fallback: an owned netdev table on the interface; add, has, list, remove, stats, destroy', async () => {
    const bl = new XdpBlocklist({ iface: 'veth0', netns: NS, backend: 'nft', name: 'fk1' });
    await withHost(fake, async () => {
      const a = await bl.apply();
      expect(a.err ? a.val.message : a.val.backend).toBe('nft');
      const t = [...fake.nftOf(NS).state.tables.values()].find((x) => x.family === 'netdev');
      expect(t).toBeDefined();
      expect(t!.chains.get('ingress')?.spec).toMatchObject({ hook: 'ingress', dev: 'veth0' });
      expect((await bl.add(['198.18.0.1', '198.18.5.0/24', 'fd00::1'])).ok).toBe(true);
      expect(fake.nftOf(NS).elements('netdev', t!.name, 'v4')).toEqual(['198.18.0.1']);
      expect(fake.nftOf(NS).elements('netdev', t!.name, 'p4')).toEqual([{ prefix: { addr: '198.18.5.0', len: 24 } }]);
      expect((await bl.has('198.18.0.1')).unwrap()).toBe(true);
      expect((await bl.has('198.18.0.2')).unwrap()).toBe(false);
      expect((await bl.list()).unwrap().length).toBe(3);
      expect((await bl.remove('198.18.0.1')).ok).toBe(true);
      expect(fake.nftOf(NS).elements('netdev', t!.name, 'v4')).toEqual([]);
      const s = await bl.stats();
      expect(s.err ? s.val.message : s.val.backend).toBe('nft');
      expect((await bl.destroy()).ok).toBe(true);
    });
    expect([...fake.nftOf(NS).state.tables.values()].filter((x) => x.family === 'netdev')).toEqual([]);
  });

  it('XDP backend maps: created and pinned through bpf(2), entries upserted in batches, exact and longest-prefix lookups, list, flip, re-open from pins', () => {
    withHost(fake, () => {
      const dir = '/sys/fs/bpf/netfence/fk2';
      const m = BlocklistMaps.create(dir, 1024, 0);
      expect(fake.files.readdir(dir).sort()).toEqual([...ALL_MAPS].sort());
      const e = parseEntries(['198.18.0.1', '198.18.5.0/24', 'fd00::/64'], 'entries').unwrap();
      m.upsert(0, e, 0n, 'add');
      expect(m.lookup(0, parseEntries(['198.18.0.1'], 'q').unwrap()[0]!)?.entry.text).toBe('198.18.0.1');
      expect(m.lookup(0, parseEntries(['198.18.5.77'], 'q').unwrap()[0]!)?.entry.text).toBe('198.18.5.0/24');
      expect(m.lookup(0, parseEntries(['fd00::1:2'], 'q').unwrap()[0]!)?.entry.text).toBe('fd00::/64');
      expect(m.lookup(0, parseEntries(['198.18.6.1'], 'q').unwrap()[0]!)).toBeUndefined();
      expect(m.lookup(1, parseEntries(['198.18.0.1'], 'q').unwrap()[0]!)).toBeUndefined();
      expect(m.entries(0).map((x) => x.entry.text).sort()).toEqual(['198.18.0.1', '198.18.5.0/24', 'fd00::/64']);
      expect(m.delete(0, parseEntries(['198.18.0.1'], 'q').unwrap())).toBe(1);
      m.flip(1);
      expect(m.activeSide()).toBe(1);
      expect(m.counters().drop.packets).toBe(0n);
      m.close();
      const again = BlocklistMaps.open(dir);
      expect(again.activeSide()).toBe(1);
      expect(again.entries(0).map((x) => x.entry.text).sort()).toEqual(['198.18.5.0/24', 'fd00::/64']);
      again.close();
    });
    expect(fake.bpf.openFds()).toBe(0);
    expect(fake.bpf.calls.filter((c) => c === 'MAP_CREATE')).toHaveLength(ALL_MAPS.length);
  });

  it('XDP backend tools: bpftool loads the program bound to the pinned maps (outside the namespace) and attaches/detaches it in the namespace; ip -j link shows it', async () => {
    const dir = '/sys/fs/bpf/netfence/fk3';
    await withHost(fake, async () => {
      BlocklistMaps.create(dir, 64, 0).close();
      expect((await loadProgram(OBJ, dir, `${dir}/prog`)).ok).toBe(true);
      expect(fake.callsOf('bpftool', 'prog', 'load')[0]!.netns).toBeUndefined();
      expect((await attachProgram('veth0', NS, `${dir}/prog`, 'generic', false)).ok).toBe(true);
      const st = (await xdpState('veth0', NS)).unwrap();
      expect(st.prog?.mode).toBe('generic');
      // a second attach without replace is refused, with replace it swaps
      expect((await attachProgram('veth0', NS, `${dir}/prog`, 'generic', false)).err).toBe(true);
      expect((await attachProgram('veth0', NS, `${dir}/prog`, 'generic', true)).ok).toBe(true);
      expect((await detachProgram('veth0', NS, 'generic')).ok).toBe(true);
      expect((await xdpState('veth0', NS)).unwrap().prog).toBeUndefined();
      // loading against missing map pins fails like bpftool
      expect((await loadProgram(OBJ, '/sys/fs/bpf/netfence/nothing', '/sys/fs/bpf/netfence/nothing-prog')).err).toBe(true);
    });
    expect(fake.ns().links.get('veth0')).toBeUndefined(); // the host's own namespace has no such interface, nothing happened there
  });
});
