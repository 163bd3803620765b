/**
 * `netfence status` against a lab router running all four classes at once:
 * a Firewall with a 1,000-element set and counted rules, a Throttler limit,
 * an XdpBlocklist with entries, a DpiBlocker (steering in the form the
 * capability report allows). The CLI runs as its own process (`--json` and
 * the readable screen); every section must report what is there, and the
 * counters must move after traffic crosses the router.
 *
 * client c 198.18.1.2 (+ 198.18.1.3, blocked) — router r — server s 198.18.2.2
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { withLab } from '../../src/lab/index.js';
import { currentHost } from '../../src/host/host.js';
import { readStatus, type HostStatus } from '../../src/status/index.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { pair, routerTopo, traffic } from './nfqueue-lab.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('npx', ['tsx', MAIN, ...args], { reject: false, timeout: 120_000, env: { ...process.env } });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function status(netns: string): Promise<HostStatus> {
  const r = await cli(['status', '--netns', netns, '--json']);
  expect(r.stderr, r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as HostStatus;
}


const SET_SIZE = 1000;
/** A set the dump needs many netlink replies for (about 30 bytes per element, 32 KB per reply). */
const BIG = 20_000;
const setElements = Array.from({ length: SET_SIZE }, (_, i) => `198.19.${(i >> 8) & 255}.${i & 255}`);

describe('netfence status', () => {
  it('reports the tables, sets, limit, blocklist, steering, queues and journal of a router running all four classes; counters move with traffic', async () => {
    await withLab('clistatus', async (lab) => {
      const { t, toClient, toServer } = await routerTopo(lab);
      const caps = await detectCapabilities({ netns: t.r.netns });

      const fw = new Firewall({ table: 'nf_status', netns: t.r.netns })
        .set('blocked', { type: 'ipv4_addr', elements: setElements })
        .chain('fwd', { hook: 'forward', priority: 10 })
        .rule('fwd', { id: 'from-client', saddr: '198.18.1.2', action: 'accept' });
      const throttler = new Throttler({ netns: t.r.netns, name: 'st' });
      const bl = new XdpBlocklist({ iface: toClient, netns: t.r.netns, name: `st${process.pid.toString(36)}` });
      const dpi = new DpiBlocker({ netns: t.r.netns, queues: [91, 1] });
      try {
        expect((await fw.apply()).ok).toBe(true);
        const lim = await throttler.limit({ iface: toServer, direction: 'egress', rate: '200mbit' });
        if (lim.err) throw lim.val;
        const at = await bl.apply();
        if (at.err) throw at.val;
        expect((await bl.add(['198.18.1.3', '198.18.77.0/24', 'fd00:77::1'])).ok).toBe(true);
        const started = await dpi.apply();
        if (started.err) throw started.val;

        const before = await status(t.r.netns);
        // nft: the firewall's table, its set counted exactly (never listed), its rule counter with the rule id
        const fwTable = before.tables.find((x) => x.name === 'nf_status');
        expect(fwTable?.kind).toBe('firewall');
        expect(fwTable?.chains.find((c) => c.name === 'fwd')).toMatchObject({ hook: 'forward', priority: 10 });
        const set = fwTable?.sets.find((s) => s.name === 'blocked');
        expect(set?.elements).toBe(SET_SIZE);
        expect(['kernel-count', 'dump']).toContain(set?.countMethod);
        const ruleCounter = () => fwTable?.counters.find((c) => c.source === 'rule' && (c.comment ?? '').includes('from-client'));
        expect(ruleCounter()).toBeDefined();
        // Throttler: the limit with its interface, direction, backend and kernel rate
        const limit = before.limits.find((l) => l.id === lim.val.id);
        expect(limit).toMatchObject({ interface: toServer, direction: 'egress', backend: lim.val.backend });
        expect(Math.abs((limit?.rateBps ?? 0) - (lim.val.kernelRateBps ?? 0)) / (lim.val.kernelRateBps ?? 1)).toBeLessThan(0.01);
        // XDP: the blocklist (XDP program or the nft fallback, whichever apply chose) with its 3 entries on the client side
        const blocklist = () => before.xdp.blocklists.find((b) => b.backend === bl.backend && b.interfaces.includes(toClient));
        expect(blocklist()?.entries).toBe(3);
        if (bl.backend === 'xdp') expect(before.xdp.programs.find((p) => p.interface === toClient)?.blocklist).toBe(bl.name);
        // DPI: steering in the form the capability report allows, the bound queue
        const form = caps.nft.features.queue.available ? 'nft' : 'xtables';
        expect(before.dpi.steering.map((s) => s.form)).toContain(form);
        expect(before.dpi.steering.find((s) => s.form === form)?.rules).toBeGreaterThan(0);
        expect(before.dpi.steering.find((s) => s.form === form)?.queues).toEqual([91, 91]);
        expect(before.dpi.queues.find((q) => q.queue === 91)?.portid).toBeGreaterThan(0);
        // journal: the DpiBlocker's steering is an in-effect entry of a live process
        expect(before.journal.find((j) => j.phase === 'in-effect' && j.alive && j.pid === process.pid)).toBeDefined();

        // traffic: a TCP transfer client → server through the router, pings from the blocked address
        const sent = await pair(
          () => traffic<{ conns: { bytes: number }[] }>(t.s, ['tcp-sink', '5301', '20000', '1'], 40_000),
          () => traffic<{ error: string | null }>(t.c, ['tcp-send', '198.18.2.2', '5301', String(2 * 1024 * 1024), '15000'], 40_000),
        );
        expect(sent.send.error).toBeNull();
        await lab.exec(t.c, ['ping', '-c', '3', '-i', '0.2', '-W', '1', '-I', '198.18.1.3', '198.18.1.1']);

        const after = await status(t.r.netns);
        const fwAfter = after.tables.find((x) => x.name === 'nf_status');
        const rc = fwAfter?.counters.find((c) => c.source === 'rule' && (c.comment ?? '').includes('from-client'));
        expect(rc?.packets ?? 0).toBeGreaterThan(ruleCounter()?.packets ?? 0);
        const limAfter = after.limits.find((l) => l.id === lim.val.id);
        expect(limAfter?.bytes ?? 0).toBeGreaterThan((limit?.bytes ?? 0) + 1024 * 1024);
        const blAfter = after.xdp.blocklists.find((b) => b.backend === bl.backend && b.interfaces.includes(toClient));
        expect(blAfter?.dropped.packets ?? 0).toBeGreaterThanOrEqual((blocklist()?.dropped.packets ?? 0) + 3);
        const q = after.dpi.queues.find((x) => x.queue === 91);
        expect(q?.queued ?? 0).toBeGreaterThan(before.dpi.queues.find((x) => x.queue === 91)?.queued ?? 0);

        // the readable screen names every object
        const screen = await cli(['status', '--netns', t.r.netns]);
        expect(screen.code).toBe(0);
        for (const word of ['inet nf_status', 'blocked', '1,000', `l${lim.val.id}`, toServer, lim.val.backend, form, '91', 'in-effect']) expect(screen.stdout).toContain(word);
        expect(screen.stdout).toContain(bl.backend === 'xdp' ? bl.name : 'nft');
      } finally {
        await dpi.destroy();
        await bl.destroy();
        await throttler.destroy();
        await fw.destroy();
      }
      // nothing left: the status is empty again
      const empty = await status(t.r.netns);
      expect(empty.tables).toEqual([]);
      expect(empty.limits).toEqual([]);
      expect(empty.xdp.programs).toEqual([]);
      expect(empty.dpi.steering).toEqual([]);
    });
  });

  it('set sizes without listing: the kernel counter and the netlink dump agree with what was put in; interval sets count ranges', async () => {
    await withLab('stsets', async (lab) => {
      const h = await lab.host('a');
      const fw = new Firewall({ table: 'nf_status_sets', netns: h.netns })
        .set('plain', { type: 'ipv4_addr', elements: setElements })
        .set('ranges', { type: 'ipv4_addr', interval: true, elements: ['198.18.200.0/24', '198.18.201.5', '198.18.210.0/23'] })
        .map('ports', { type: 'inet_service', map: 'ipv4_addr', elements: [[80, '198.18.0.1'], [443, '198.18.0.2']] })
        .set('empty', { type: 'ipv6_addr' })
        .set('big', { type: 'ipv4_addr', elements: Array.from({ length: BIG }, (_, i) => `198.18.${128 + ((i >> 8) & 127)}.${i & 255}`) });
      expect((await fw.apply()).ok).toBe(true);
      try {
        const s = (await readStatus({ netns: h.netns })).unwrap();
        const sets = s.tables.find((x) => x.name === 'nf_status_sets')?.sets ?? [];
        const by = (n: string) => sets.find((x) => x.name === n);
        expect(by('plain')?.elements).toBe(SET_SIZE);
        expect(by('ranges')).toMatchObject({ elements: 3, countMethod: 'dump' });
        expect(by('ports')).toMatchObject({ kind: 'map', elements: 2 });
        expect(by('empty')?.elements).toBe(0);
        // the dump path (what kernels without NFTA_SET_COUNT use) counts the same
        const count = currentHost().nft.countElements!;
        for (const [name, want] of [['plain', SET_SIZE], ['ports', 2], ['empty', 0]] as const) {
          const d = await count('inet', 'nf_status_sets', name, { netns: h.netns, method: 'dump' });
          expect(d.ok && d.val).toMatchObject({ elements: want, method: 'dump' });
        }
        // without the kernel's counter a dump stops at its limit and says the count is a lower bound
        const capped = await count('inet', 'nf_status_sets', 'big', { netns: h.netns, method: 'dump', dumpLimit: 1000 });
        expect(capped.ok && capped.val.atLeast, JSON.stringify(capped.val)).toBe(true);
        expect(capped.ok && capped.val.elements).toBeGreaterThanOrEqual(1000);
        expect(capped.ok && capped.val.elements).toBeLessThan(BIG);
        const whole = await count('inet', 'nf_status_sets', 'big', { netns: h.netns, method: 'dump', dumpLimit: 0 });
        expect(whole.ok && whole.val).toMatchObject({ elements: BIG, atLeast: false });
        const missing = await count('inet', 'nf_status_sets', 'nope', { netns: h.netns });
        expect(missing.err && missing.val.code).toBe('NOT_FOUND');
      } finally {
        await fw.destroy();
      }
    });
  });

  it('exit codes: 2 for a namespace that does not exist and for bad arguments', async () => {
    const missing = await cli(['status', '--netns', 'nflab-does-not-exist-h1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/ip netns add/);
    const bad = await cli(['status', '--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/usage: netfence status/);
    const badNs = await cli(['status', '--netns', '../etc']);
    expect(badNs.code).toBe(2);
  });
});
