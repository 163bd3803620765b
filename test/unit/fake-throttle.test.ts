/**
 * Throttler orchestration on a FakeHost: with a given capability report, a limit becomes the tc objects and nft table its
 * backend compiles to (in the namespace, nowhere else), stats read them back,
 * a failing step rolls the whole limit back, and destroy removes everything.
 * Per-process limits too: the process's cgroup is read from the fake /proc,
 * the group is created and the process moved in the fake cgroup2 tree (host
 * files), and both are undone by remove() or a refused step.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { primeFakeCapabilities } from './fake-caps.js';

const NS = 'thr-fake';
let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS], links: { [NS]: [{ ifname: 'veth0' }, { ifname: 'veth1' }] } });
  // no kernel to probe: the capability report is given (everything available)
  primeFakeCapabilities(NS);
});

const tcKeys = (): string[] => fake.ns(NS).tc.map((t) => t.key).sort();

describe('Throttler on a FakeHost', () => {
  it('egress limit: HTB qdisc, class and filters on the interface, an owned nft table; stats; remove; destroy', async () => {
    const th = new Throttler({ netns: NS, name: 'app' });
    await withHost(fake, async () => {
      const caps = await th.capabilities();
      expect(caps.tcHtb.available && caps.tcU32.available && caps.nftLimit.available).toBe(true);
      const l = await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit', match: { dst: '198.18.0.0/15', dport: 443, protocol: 'tcp' } });
      expect(l.err ? l.val.message : 'ok').toBe('ok');
      const h = l.unwrap();
      expect(h.backend).toMatch(/htb|tc/);
      // what was applied, in the namespace only
      expect(tcKeys().some((k) => k.startsWith('qdisc veth0 root'))).toBe(true);
      expect(tcKeys().some((k) => k.startsWith('class veth0 '))).toBe(true);
      expect(tcKeys().some((k) => k.startsWith('filter veth0 '))).toBe(true);
      const rate = fake.ns(NS).tc.find((t) => t.kind === 'class')!.argv;
      expect(rate).toContain('rate');
      expect(fake.ns().tc).toEqual([]);
      expect(fake.calls.filter((c) => c.argv[0] === 'tc' && !/^nfcap-/.test(c.netns ?? '')).every((c) => c.netns === NS)).toBe(true);
      // what the kernel was told, in order: root HTB, the class at the rate, its leaf queue, the u32 filter of the match
      const tcCalls = fake.calls.filter((c) => c.argv[0] === 'tc' && c.netns === NS).map((c) => c.argv.join(' '));
      expect(tcCalls[0]).toBe('tc qdisc add dev veth0 root handle 1: htb default 0');
      expect(tcCalls[1]).toMatch(/^tc class add dev veth0 parent 1: classid 1:\d+ htb rate \d+bit/);
      expect(tcCalls[2]).toMatch(/^tc qdisc add dev veth0 parent 1:\d+ /);
      expect(tcCalls[3]).toMatch(/^tc filter add dev veth0 parent 1: protocol ip prio \d+ u32 match ip dst 198\.18\.0\.0\/15 .*match ip dport 443 0xffff flowid 1:\d+$/);
      expect(tcKeys()).toHaveLength(4);
      // stats read the tc class and nft counters of the fake
      const s = await th.stats();
      expect(s.err ? s.val.message : 'ok').toBe('ok');
      expect(s.unwrap().limits).toHaveLength(1);
      // a second limit on the other interface, then remove the first by its handle
      const l2 = (await th.limit({ iface: 'veth1', direction: 'egress', rate: '1mbit' })).unwrap();
      expect((await h.remove()).ok).toBe(true);
      expect(tcKeys().some((k) => k.startsWith('class veth0 '))).toBe(false);
      expect(tcKeys().some((k) => k.includes('veth1'))).toBe(true);
      expect(l2.id).not.toBe(h.id);
      expect((await th.destroy()).ok).toBe(true);
    });
    expect(tcKeys()).toEqual([]);
    expect(fake.nftOf(NS).state.tables.size).toBe(0);
  });

  it('nft-limit backend: the limit lives in its own owned nft table, removed with the limit', async () => {
    const th = new Throttler({ netns: NS, name: 'app' });
    await withHost(fake, async () => {
      const l = await th.limit({ iface: 'veth0', direction: 'ingress', rate: '5mbit', backend: 'nft-limit' });
      expect(l.err ? l.val.message : 'ok').toBe('ok');
      const h = l.unwrap();
      expect(h.backend).toBe('nft-limit');
      expect(h.plan.tables.length).toBe(1);
      const t = fake.nftOf(NS).table('inet', h.plan.tables[0]!.name);
      expect(t).toBeDefined();
      expect([...t!.objects.keys()].some((k) => k.startsWith('counter netfence_owner_'))).toBe(true);
      expect(JSON.stringify(fake.nftOf(NS).list('table', { family: 'inet', name: h.plan.tables[0]!.name }))).toContain('"limit"');
      expect(tcKeys()).toEqual([]);
      const s = await th.stats();
      expect(s.err ? s.val.message : 'ok').toBe('ok');
      expect((await h.remove()).ok).toBe(true);
    });
    expect(fake.nftOf(NS).state.tables.size).toBe(0);
  });

  it('a step the kernel refuses rolls the whole limit back: no tc object, no table left', async () => {
    const th = new Throttler({ netns: NS, name: 'app' });
    await withHost(fake, async () => {
      await th.capabilities();
      fake.failRun((req) => req.netns === NS && req.argv[0] === 'tc' && req.argv[1] === 'filter' && req.argv[2] === 'add', { stderr: 'RTNETLINK answers: Invalid argument', exitCode: 2 });
      const l = await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit', match: { dport: 443, protocol: 'tcp' } });
      expect(l.err).toBe(true);
      expect(l.err && l.val.message).toMatch(/Invalid argument/);
    });
    expect(tcKeys()).toEqual([]);
    expect(fake.nftOf(NS).state.tables.size).toBe(0);
    expect(fake.ns(NS).links.get('veth0')).toBeDefined();
  });

  it('refuses an interface the namespace does not have, naming the field', async () => {
    const th = new Throttler({ netns: NS, name: 'app' });
    const l = await withHost(fake, () => th.limit({ iface: 'nope0', direction: 'egress', rate: '10mbit' }));
    expect(l.err && l.val.message).toMatch(/nope0/);
    expect(tcKeys()).toEqual([]);
  });

  describe('per-process (cgroup) limits', () => {
    const PID = 4242;
    const FROM = '/sys/fs/cgroup/user.slice/app.scope';
    beforeEach(() => {
      // a process in a cgroup of the fake host
      fake.files.put(`/proc/${PID}/cgroup`, '0::/user.slice/app.scope\n');
      fake.files.mkdir(FROM, { recursive: true });
      fake.files.write(`${FROM}/cgroup.procs`, `${PID}\n`);
    });
    const groups = (): string[] => (fake.files.exists('/sys/fs/cgroup/netfence') ? fake.files.readdir('/sys/fs/cgroup/netfence').filter((n) => fake.files.isDirectory(`/sys/fs/cgroup/netfence/${n}`)) : []);
    const procsWrites = (): [string, string][] => fake.files.writes.filter((w) => w.path.endsWith('/cgroup.procs')).map((w) => [w.path, w.data]);

    it('match.pid: a group of its own under netfence/, the process moved in, its sockets matched in the namespace; remove() moves it back and removes the group', async () => {
      const th = new Throttler({ netns: NS, name: 'app' });
      await withHost(fake, async () => {
        const l = await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit', match: { pid: PID } });
        expect(l.err ? l.val.message : 'ok').toBe('ok');
        const h = l.unwrap();
        const [group] = groups();
        expect(group).toMatch(new RegExp(`^app-${process.pid}-\\d+$`));
        const abs = `/sys/fs/cgroup/netfence/${group}`;
        // the process was moved into it (cgroup.procs written on the host, not in the namespace)
        expect(procsWrites().slice(1)).toEqual([[`${abs}/cgroup.procs`, String(PID)]]);
        expect(fake.files.read(`${abs}/cgroup.procs`)).toBe(String(PID));
        expect(fake.calls.some((c) => c.argv[0] === 'tee' && c.argv.some((w) => w.includes('cgroup')))).toBe(false);
        // its sockets are matched by cgroup in the limit's table, in the namespace
        const sock = fake.callsOf('nft', '-f', '-').filter((c) => (c.input ?? '').includes('socket cgroupv2'));
        expect(sock.map((c) => c.netns)).toEqual([NS]);
        expect(sock[0]!.input).toContain(`socket cgroupv2 level 2 "netfence/${group}"`);
        expect(h.plan.tables.length).toBeGreaterThan(0);
        expect(tcKeys().some((k) => k.startsWith('class veth0 '))).toBe(true);

        expect((await h.remove()).ok).toBe(true);
        // moved back into the cgroup it came from; the group and netfence/ are gone
        expect(procsWrites().at(-1)).toEqual([`${FROM}/cgroup.procs`, String(PID)]);
        expect(fake.files.exists(abs)).toBe(false);
        expect(fake.files.exists('/sys/fs/cgroup/netfence')).toBe(false);
        expect((await th.destroy()).ok).toBe(true);
      });
      expect(tcKeys()).toEqual([]);
      expect(fake.nftOf(NS).state.tables.size).toBe(0);
    });

    it('a step the kernel refuses rolls a per-process limit back: the process back in its cgroup, no group, no tc object, no table', async () => {
      const th = new Throttler({ netns: NS, name: 'app' });
      await withHost(fake, async () => {
        await th.capabilities();
        fake.failRun((req) => req.netns === NS && req.argv[0] === 'tc' && req.argv[1] === 'filter' && req.argv[2] === 'add', { stderr: 'RTNETLINK answers: Invalid argument', exitCode: 2 });
        const l = await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit', match: { pid: PID } });
        expect(l.err && l.val.message).toMatch(/Invalid argument/);
      });
      const moves = procsWrites().slice(1);
      expect(moves).toHaveLength(2);
      expect(moves[0]![0]).toMatch(/^\/sys\/fs\/cgroup\/netfence\/app-\d+-\d+\/cgroup\.procs$/);
      expect(moves[1]).toEqual([`${FROM}/cgroup.procs`, String(PID)]);
      expect(groups()).toEqual([]);
      expect(tcKeys()).toEqual([]);
      expect(fake.nftOf(NS).state.tables.size).toBe(0);
    });

    it('refuses a process or a cgroup the host does not have, naming the field, before anything is created', async () => {
      const th = new Throttler({ netns: NS, name: 'app' });
      await withHost(fake, async () => {
        const p = await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit', match: { pid: 999_999 } });
        expect(p.err && p.val.message).toMatch(/match\.pid|no process 999999/);
        const g = await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit', match: { cgroup: 'no/such/group' } });
        expect(g.err && g.val.message).toMatch(/no cgroup no\/such\/group/);
        // an existing group is used as it is (not created, nothing moved)
        fake.files.mkdir('/sys/fs/cgroup/svc.slice', { recursive: true });
        const ok = await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit', match: { cgroup: 'svc.slice' } });
        expect(ok.err ? ok.val.message : 'ok').toBe('ok');
        expect(groups()).toEqual([]);
        expect((await th.destroy()).ok).toBe(true);
      });
      expect(procsWrites().slice(1)).toEqual([]);
      expect(fake.files.exists('/sys/fs/cgroup/svc.slice')).toBe(true);
      expect(tcKeys()).toEqual([]);
    });
  });
});
