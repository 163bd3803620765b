/**
 * XdpBlocklist on a FakeHost: the nftables fallback end to end (an owned
 * netdev table; entries as set elements; has/list/stats; destroy), and the
 * XDP backend's pieces that go through the Host seam: the maps (bpf(2):
 * create, pin, batch upserts, LPM lookups, flip, re-open) and the tools
 * (bpftool load/attach/detach, ip -j link), and XdpBlocklist with the XDP
 * backend end to end: apply (maps, load, attach, pin swap through the
 * executor), entries, an atomic re-apply, refused attaches rolled back,
 * destroy. Pins, the object check and the bpffs check all go through the
 * host's files, so nothing of the machine is read or touched.
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
// the object lives in the fake host's files (gatherXdpFacts checks it there); the package's path for the loader tests
const OBJ = resolve('bpf/build/xdp_blocklist.o');
const FAKE_OBJ = '/opt/netfence/xdp_blocklist.o';
let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS], links: { [NS]: [{ ifname: 'veth0' }] } });
  fake.files.put(OBJ, '(a BPF object)');
  fake.files.put(FAKE_OBJ, '(a BPF object)');
  primeFakeCapabilities(NS);
});

/** The kernel id of the program pinned at `path` in the fake bpffs. */
const pinnedProg = (path: string): number | undefined => {
  const n = fake.files.node(path);
  return n?.type === 'pin' ? (n.object as { kind: string; id: number }).id : undefined;
};
const attached = (): { mode: number; prog: { id: number } } | undefined => fake.ns(NS).links.get('veth0')?.xdp;
const q = (ip: string) => parseEntries([ip], 'q').unwrap();

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

  it('XDP backend end to end: apply creates the maps, loads and attaches the program, swaps the pins; entries; destroy removes everything', async () => {
    const bl = new XdpBlocklist({ iface: 'veth0', netns: NS, backend: 'xdp', name: 'fk4', objectPath: FAKE_OBJ });
    const dir = '/sys/fs/bpf/netfence/fk4';
    await withHost(fake, async () => {
      const a = await bl.apply();
      expect(a.err ? a.val.message : a.val).toMatchObject({ backend: 'xdp', mode: 'native', reopened: false });
      expect(bl.backend).toBe('xdp');
      // maps created in the fake kernel and pinned; the program pinned as `prog`, no leftover pins
      expect(fake.bpf.calls.filter((c) => c === 'MAP_CREATE')).toHaveLength(ALL_MAPS.length);
      expect(fake.files.readdir(dir).sort()).toEqual([...ALL_MAPS, 'prog'].sort());
      // bpftool loaded it outside the namespace, bound to the pinned maps, then attached it in the namespace (native first)
      const load = fake.callsOf('bpftool', 'prog', 'load');
      expect(load).toHaveLength(1);
      expect(load[0]!.netns).toBeUndefined();
      expect(load[0]!.argv.slice(3, 5)).toEqual([FAKE_OBJ, `${dir}/prog_next`]);
      for (const m of ALL_MAPS) expect(load[0]!.argv.join(' ')).toContain(`map name ${m} pinned ${dir}/${m}`);
      const att = fake.callsOf('bpftool', 'net', 'attach');
      expect(att.map((c) => [c.netns, c.argv.join(' ')])).toEqual([[NS, `bpftool net attach xdpdrv pinned ${dir}/prog_next dev veth0`]]);
      expect(attached()).toEqual({ mode: 1, prog: { id: pinnedProg(`${dir}/prog`), name: 'xdp_blocklist' } });
      expect(fake.ns().links.get('veth0')).toBeUndefined();

      // entries: straight into the maps (bpf(2)), exact and prefix lookups
      expect((await bl.add(['198.18.0.1', '198.18.5.0/24', 'fd00::1'])).ok).toBe(true);
      expect((await bl.has('198.18.0.1')).unwrap()).toBe(true);
      expect((await bl.has('198.18.5.9')).unwrap()).toBe(true);
      expect((await bl.has('198.18.0.2')).unwrap()).toBe(false);
      expect((await bl.list()).unwrap().map((e) => e.entry).sort()).toEqual(['198.18.0.1', '198.18.5.0/24', 'fd00::1']);
      expect((await bl.remove('198.18.0.1')).ok).toBe(true);
      expect((await bl.has('198.18.0.1')).unwrap()).toBe(false);
      // another process's view: the pinned maps hold the entries
      const m = BlocklistMaps.open(dir);
      const side = m.activeSide();
      expect(m.lookup(side, q('198.18.5.77')[0]!)?.entry.text).toBe('198.18.5.0/24');
      expect(m.lookup(side, q('fd00::1')[0]!)?.entry.text).toBe('fd00::1');
      m.close();

      expect((await bl.destroy()).ok).toBe(true);
      expect(bl.backend).toBe('xdp');
    });
    // the program is off the interface (detached in its mode, in the namespace) and every pin is gone, the root too
    expect(attached()).toBeUndefined();
    expect(fake.callsOf('bpftool', 'net', 'detach').map((c) => [c.netns, c.argv[3]])).toEqual([[NS, 'xdpdrv']]);
    expect(fake.files.exists(dir)).toBe(false);
    expect(fake.files.exists('/sys/fs/bpf/netfence')).toBe(false);
    bl.close();
    expect(fake.bpf.openFds()).toBe(0);
  });

  it('XDP backend: a re-apply replaces our program atomically (overwrite, same mode), keeps the entries and drops the old program pin', async () => {
    const dir = '/sys/fs/bpf/netfence/fk5';
    const opts = { iface: 'veth0', netns: NS, backend: 'xdp', name: 'fk5', objectPath: FAKE_OBJ, mode: 'generic' } as const;
    await withHost(fake, async () => {
      const bl = new XdpBlocklist(opts);
      expect((await bl.apply()).unwrap()).toMatchObject({ mode: 'generic', reopened: false });
      expect((await bl.add(['198.18.9.9'])).ok).toBe(true);
      const first = pinnedProg(`${dir}/prog`)!;
      expect(attached()).toMatchObject({ mode: 2, prog: { id: first } });
      bl.close();
      // another instance (another process) with the same name: re-opens the maps, replaces the program
      const again = new XdpBlocklist({ ...opts, mode: 'auto' });
      const r = await again.apply();
      expect(r.err ? r.val.message : r.val).toMatchObject({ backend: 'xdp', mode: 'generic', reopened: true });
      const second = pinnedProg(`${dir}/prog`)!;
      expect(second).not.toBe(first);
      expect(attached()).toMatchObject({ mode: 2, prog: { id: second } });
      // one attach over the old program (overwrite, in its mode): never a moment without a program
      const att = fake.callsOf('bpftool', 'net', 'attach').map((c) => c.argv.join(' '));
      expect(att).toEqual([`bpftool net attach xdpgeneric pinned ${dir}/prog_next dev veth0`, `bpftool net attach xdpgeneric pinned ${dir}/prog_next dev veth0 overwrite`]);
      expect(fake.callsOf('bpftool', 'net', 'detach')).toEqual([]);
      expect(fake.bpf.calls.filter((c) => c === 'MAP_CREATE')).toHaveLength(ALL_MAPS.length); // maps re-opened, not created again
      expect(fake.files.readdir(dir).sort()).toEqual([...ALL_MAPS, 'prog'].sort());
      expect((await again.has('198.18.9.9')).unwrap()).toBe(true);
      expect((await again.destroy()).ok).toBe(true);
      again.close();
    });
    expect(attached()).toBeUndefined();
    expect(fake.files.exists(dir)).toBe(false);
    expect(fake.bpf.openFds()).toBe(0);
  });

  it('XDP backend: an interface that refuses the program (native and generic) rolls the apply back: no pins, no maps, nothing attached', async () => {
    const dir = '/sys/fs/bpf/netfence/fk6';
    const bl = new XdpBlocklist({ iface: 'veth0', netns: NS, backend: 'xdp', name: 'fk6', objectPath: FAKE_OBJ });
    await withHost(fake, async () => {
      fake.failRun(['bpftool', 'net', 'attach'], { stderr: 'Error: interface veth0 refused the program (fault injected)', exitCode: 255 }, 2);
      const r = await bl.apply();
      expect(r.err).toBe(true);
      expect(r.err && r.val.message).toMatch(/refused/);
      // both modes were tried, in order
      expect(fake.callsOf('bpftool', 'net', 'attach').map((c) => c.argv[3])).toEqual(['xdpdrv', 'xdpgeneric']);
      // the blocklist is not attached: the data plane says so
      const h = await bl.has('198.18.0.1');
      expect(h.err && h.val.code).toBe('NOT_ATTACHED');
    });
    expect(attached()).toBeUndefined();
    expect(fake.files.exists(dir)).toBe(false);
    expect(fake.files.exists('/sys/fs/bpf/netfence')).toBe(false);
    expect(fake.bpf.openFds()).toBe(0);
  });

  it('XDP backend: a refused re-apply leaves the previous program attached and pinned, with its entries', async () => {
    const dir = '/sys/fs/bpf/netfence/fk7';
    const opts = { iface: 'veth0', netns: NS, backend: 'xdp', name: 'fk7', objectPath: FAKE_OBJ } as const;
    await withHost(fake, async () => {
      const bl = new XdpBlocklist(opts);
      expect((await bl.apply()).unwrap().mode).toBe('native');
      expect((await bl.add(['198.18.1.1'])).ok).toBe(true);
      const first = pinnedProg(`${dir}/prog`)!;
      fake.failRun(['bpftool', 'net', 'attach'], { stderr: 'Error: refused (fault injected)', exitCode: 255 });
      const r = await bl.apply();
      expect(r.err).toBe(true);
      expect(attached()).toMatchObject({ mode: 1, prog: { id: first } });
      expect(pinnedProg(`${dir}/prog`)).toBe(first);
      expect(fake.files.readdir(dir).sort()).toEqual([...ALL_MAPS, 'prog'].sort());
      expect((await bl.has('198.18.1.1')).unwrap()).toBe(true);
      expect((await bl.destroy()).ok).toBe(true);
      bl.close();
    });
    expect(attached()).toBeUndefined();
    expect(fake.files.exists(dir)).toBe(false);
  });

  it('XDP backend: bpffs not mounted at /sys/fs/bpf is mounted first (mount -t bpf), then the apply proceeds', async () => {
    fake.files.put('/proc/self/mountinfo', '24 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n');
    const bl = new XdpBlocklist({ iface: 'veth0', netns: NS, backend: 'xdp', name: 'fk8', objectPath: FAKE_OBJ });
    await withHost(fake, async () => {
      const r = await bl.apply();
      expect(r.err ? r.val.message : r.val.backend).toBe('xdp');
      expect(fake.callsOf('mount').map((c) => c.argv)).toEqual([['mount', '-t', 'bpf', 'bpf', '/sys/fs/bpf']]);
      expect((await bl.destroy()).ok).toBe(true);
      bl.close();
    });
  });

  it('XDP backend: a missing object is refused before anything is touched (auto falls back to nft)', async () => {
    await withHost(fake, async () => {
      const forced = await new XdpBlocklist({ iface: 'veth0', netns: NS, backend: 'xdp', name: 'fk9', objectPath: '/opt/netfence/missing.o' }).apply();
      expect(forced.err && forced.val.code).toBe('UNSUPPORTED');
      const auto = new XdpBlocklist({ iface: 'veth0', netns: NS, name: 'fk9', objectPath: '/opt/netfence/missing.o' });
      const a = await auto.apply();
      expect(a.err ? a.val.message : a.val.backend).toBe('nft');
      expect((await auto.destroy()).ok).toBe(true);
    });
    expect(fake.callsOf('bpftool')).toEqual([]);
    expect(fake.files.exists('/sys/fs/bpf/netfence')).toBe(false);
  });
});
