/**
 * readStatus() and the `netfence status` screen on a FakeHost: what the
 * classes applied (an owned table with a set, Throttler limits, an XDP
 * blocklist's nft fallback, DPI steering) is read back from the fake kernel —
 * listings, tc, links, /proc — never from the instances.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { Firewall } from '../../src/firewall/index.js';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { readStatus } from '../../src/status/index.js';
import { renderStatus, statusCommands } from '../../src/cli/commands/status.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { primeFakeCapabilities } from './fake-caps.js';

const NS = 'status-fake';
let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS], links: { [NS]: [{ ifname: 'veth0' }, { ifname: 'veth1' }] } });
  primeFakeCapabilities(NS);
  fake.respond(['cat', '/proc/net/netfilter/nfnetlink_queue'], { stdout: '   91  12345     0 2  4096     0     7       42  1\n' });
});

describe('readStatus on a FakeHost', () => {
  it('reads the owned tables, set sizes, rule counters, limits, the blocklist fallback and queue statistics from the fake kernel', async () => {
    await withHost(fake, async () => {
      const fw = new Firewall({ table: 'web', netns: NS })
        .set('blocked', { type: 'ipv4_addr', elements: ['198.18.0.1', '198.18.0.2', '198.18.0.3'] })
        .chain('input', { hook: 'input', priority: 0, policy: 'accept' })
        .rule('input', { id: 'drop-blocked', saddr: '@blocked', action: 'drop' });
      expect((await fw.apply()).ok).toBe(true);
      const th = new Throttler({ netns: NS, name: 'app' });
      const shaped = (await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit' })).unwrap();
      const quota = (await th.limit({ iface: 'veth1', direction: 'ingress', quota: { bytes: 1_000_000, action: 'drop' } })).unwrap();
      const bl = new XdpBlocklist({ iface: 'veth1', netns: NS, name: 'fakebl', backend: 'nft' });
      expect((await bl.apply()).ok).toBe(true);
      expect((await bl.add(['198.18.5.5', '198.18.6.0/24'])).ok).toBe(true);

      const s = (await readStatus({ netns: NS })).unwrap();
      expect(s.netns).toBe(NS);
      const t = s.tables.find((x) => x.name === 'web');
      expect(t).toMatchObject({ family: 'inet', kind: 'firewall', rules: 1 });
      expect(t?.owner).toMatch(/^firewall:/);
      expect(t?.sets).toEqual([expect.objectContaining({ name: 'blocked', kind: 'set', type: 'ipv4_addr', elements: 3, countMethod: 'listing' })]);
      expect(t?.chains).toEqual([expect.objectContaining({ name: 'input', hook: 'input', priority: 0, policy: 'accept', rules: 1 })]);
      expect(t?.counters.find((c) => c.source === 'rule')?.comment).toMatch(/drop-blocked/);
      // the ownership mark is not reported as a counter
      expect(s.tables.flatMap((x) => x.counters).some((c) => c.name.startsWith('netfence_owner_'))).toBe(false);
      // limits: the shaped one from tc, the quota one from its nft table
      expect(s.limits.find((x) => x.id === shaped.id)).toMatchObject({ interface: 'veth0', direction: 'egress', backend: shaped.backend, device: 'veth0' });
      expect(s.limits.find((x) => x.id === quota.id)).toMatchObject({ interface: 'veth1', direction: 'ingress', backend: 'nft-limit', quotaBytes: 1_000_000, owner: 'throttle:app' });
      // the blocklist's nft fallback: entries counted, on its interface
      expect(s.xdp.blocklists).toEqual([expect.objectContaining({ backend: 'nft', interfaces: ['veth1'], entries: 2 })]);
      // NFQUEUE statistics of the namespace
      expect(s.dpi.queues).toEqual([{ queue: 91, portid: 12345, waiting: 0, queued: 42, dropped: 0, userDropped: 7 }]);
      expect(s.warnings).toEqual([]);

      const screen = renderStatus(s);
      for (const w of ['inet web', 'blocked', `l${shaped.id}`, 'veth0', 'egress', shaped.backend, 'nft-limit', 'netdev', '12345']) expect(screen).toContain(w);
      await bl.destroy();
      await th.destroy();
      await fw.destroy();
      const empty = (await readStatus({ netns: NS })).unwrap();
      expect(empty.tables).toEqual([]);
      expect(empty.limits).toEqual([]);
    });
  });

  it('fails as a whole only when the namespace cannot be read; bad options are a ValidationError', async () => {
    await withHost(fake, async () => {
      const missing = await readStatus({ netns: 'no-such-ns' });
      expect(missing.err).toBe(true);
      const bad = await readStatus({ netns: '../x' });
      expect(bad.err && bad.val.code).toBe('VALIDATION');
    });
  });

  it('the CLI: --json prints the HostStatus, exit 2 for a namespace that does not exist and on bad arguments', async () => {
    const cmd = statusCommands[0]!;
    const out: string[] = [];
    const err: string[] = [];
    const log = console.log;
    const error = console.error;
    console.log = (x: unknown) => out.push(String(x));
    console.error = (x: unknown) => err.push(String(x));
    try {
      await withHost(fake, async () => {
        expect(await cmd.run(['--netns', NS, '--json'])).toBe(0);
        expect(JSON.parse(out.join('\n'))).toMatchObject({ netns: NS, tables: [], limits: [] });
        expect(await cmd.run(['--netns', 'no-such-ns'])).toBe(2);
        expect(err.join('\n')).toMatch(/ip netns add/);
        expect(await cmd.run(['--bogus'])).toBe(2);
        expect(await cmd.run(['--netns', '../x'])).toBe(2);
        out.length = 0;
        expect(await cmd.run(['--netns', NS])).toBe(0);
        expect(out.join('\n')).toMatch(/nft tables \(0\)[\s\S]*Throttler limits \(0\)[\s\S]*XDP programs[\s\S]*DPI steering[\s\S]*NFQUEUE queues \(1\)[\s\S]*journal[\s\S]*locks/);
      });
    } finally {
      console.log = log;
      console.error = error;
    }
  });
});
