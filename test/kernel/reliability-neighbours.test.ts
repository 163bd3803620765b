/**
 * Neighbours: with foreign state present in the namespace — an iptables-nft
 * table (IPv4 and IPv6), a hand-made nft table with a set and a chain, a
 * foreign tc qdisc tree on another interface, a foreign XDP program on that
 * interface, a foreign IFB device with its own qdisc, a foreign bpffs pin
 * outside /sys/fs/bpf/netfence — every netfence operation of every class
 * (successful and failing) leaves all of it byte-identical.
 */
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { run } from '../../src/host/run.js';
import { createNfTablesRoute, NetfenceRouteManager as NFTablesManager } from '../../src/integrations/smartproxy.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';

const OBJ = fileURLToPath(new URL('../../bpf/build/xdp_blocklist.o', import.meta.url));

async function out(argv: string[], netns?: string): Promise<string> {
  const r = await run(argv, netns ? { netns } : {});
  if (r.err) throw r.val;
  return r.val.stdout;
}
/** iptables-nft-save without its "# Generated ... on <date>" comment lines. */
const save = async (tool: string, netns: string): Promise<string> =>
  (await out([tool], netns))
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');

interface Foreign {
  /** Every foreign object, as text. */
  snap(): Promise<Record<string, string>>;
  cleanup(): void;
}

async function foreignState(lab: Lab, n: LabHost, other: string): Promise<Foreign> {
  const sh = (argv: string[]) => lab.sh(n, argv);
  // iptables-nft (ip filter, ip6 filter)
  await sh(['iptables-nft', '-A', 'INPUT', '-s', '198.18.9.9', '-j', 'DROP']);
  await sh(['iptables-nft', '-A', 'FORWARD', '-p', 'tcp', '--dport', '25', '-j', 'REJECT']);
  await sh(['ip6tables-nft', '-A', 'INPUT', '-s', 'fd00:9::9', '-j', 'DROP']);
  // a hand-made table with a set and a chain
  await sh(['nft', 'add', 'table', 'inet', 'handmade']);
  await sh(['nft', 'add', 'set', 'inet', 'handmade', 'allow', '{ type ipv4_addr; flags interval; elements = { 198.18.7.0/24 }; }']);
  await sh(['nft', 'add', 'chain', 'inet', 'handmade', 'hm_fwd', '{ type filter hook forward priority 10; policy accept; }']);
  await sh(['nft', 'add', 'rule', 'inet', 'handmade', 'hm_fwd', 'ip', 'saddr', '@allow', 'counter', 'accept', 'comment', '"hand written"']);
  // a foreign tc tree on the other interface (root htb + class + filter) and an ingress qdisc
  await sh(['tc', 'qdisc', 'add', 'dev', other, 'root', 'handle', '7:', 'htb', 'default', '10']);
  await sh(['tc', 'class', 'add', 'dev', other, 'parent', '7:', 'classid', '7:10', 'htb', 'rate', '5mbit']);
  await sh(['tc', 'filter', 'add', 'dev', other, 'parent', '7:', 'protocol', 'ip', 'prio', '3', 'u32', 'match', 'ip', 'dst', '198.18.2.0/24', 'flowid', '7:10']);
  await sh(['tc', 'qdisc', 'add', 'dev', other, 'ingress']);
  // a foreign IFB with its own qdisc
  await sh(['ip', 'link', 'add', 'fifb0', 'type', 'ifb']);
  await sh(['ip', 'link', 'set', 'fifb0', 'up']);
  await sh(['tc', 'qdisc', 'add', 'dev', 'fifb0', 'root', 'tbf', 'rate', '1mbit', 'burst', '32kb', 'latency', '50ms']);
  // a foreign pinned program and map outside /sys/fs/bpf/netfence; the program attached (generic XDP) to the other interface
  const tag = lab.id.replace(/[^a-z0-9]/gi, '_');
  const progPin = `/sys/fs/bpf/nflab_nb_${tag}_prog`;
  const mapPin = `/sys/fs/bpf/nflab_nb_${tag}_map`;
  const cleanup = (): void => {
    for (const p of [progPin, mapPin]) if (existsSync(p)) rmSync(p);
  };
  await out(['bpftool', 'prog', 'load', OBJ, progPin, 'type', 'xdp']);
  await out(['bpftool', 'map', 'create', mapPin, 'type', 'hash', 'key', '4', 'value', '4', 'entries', '8', 'name', 'nb_foreign']);
  await out(['bpftool', 'map', 'update', 'pinned', mapPin, 'key', '1', '2', '3', '4', 'value', '5', '6', '7', '8']);
  await sh(['bpftool', 'net', 'attach', 'xdpgeneric', 'pinned', progPin, 'dev', other]);

  const snap = async (): Promise<Record<string, string>> => ({
    'nft ip filter': await out(['nft', 'list', 'table', 'ip', 'filter'], n.netns),
    'nft ip6 filter': await out(['nft', 'list', 'table', 'ip6', 'filter'], n.netns),
    'nft inet handmade': await out(['nft', 'list', 'table', 'inet', 'handmade'], n.netns),
    'nft -j inet handmade': await out(['nft', '-j', 'list', 'table', 'inet', 'handmade'], n.netns),
    'iptables-nft-save': await save('iptables-nft-save', n.netns),
    'ip6tables-nft-save': await save('ip6tables-nft-save', n.netns),
    [`tc qdisc ${other}`]: await out(['tc', 'qdisc', 'show', 'dev', other], n.netns),
    [`tc class ${other}`]: await out(['tc', 'class', 'show', 'dev', other], n.netns),
    [`tc filter ${other}`]: await out(['tc', 'filter', 'show', 'dev', other], n.netns),
    [`ip -d link ${other}`]: await out(['ip', '-d', 'link', 'show', 'dev', other], n.netns),
    'ip -d link fifb0': await out(['ip', '-d', 'link', 'show', 'dev', 'fifb0'], n.netns),
    'tc qdisc fifb0': await out(['tc', 'qdisc', 'show', 'dev', 'fifb0'], n.netns),
    'ifb devices (not netfence)': (await out(['ip', '-o', 'link', 'show', 'type', 'ifb'], n.netns))
      .split('\n')
      .filter((l) => l && !/^\d+: nfb/.test(l))
      .join('\n'),
    'pins': await out(['ls', '-l', '--time-style=full-iso', progPin, mapPin]),
    'foreign map': await out(['bpftool', 'map', 'dump', 'pinned', mapPin]),
  });
  return { snap, cleanup };
}

describe('neighbours: foreign state is never touched', () => {
  it('every operation of Firewall, NFTablesManager, Throttler, XdpBlocklist and DpiBlocker leaves foreign state byte-identical', async () => {
    let cleanup = (): void => undefined;
    try {
      await withLab('nbrs', async (lab) => {
        const n = await lab.host('n');
        const p = await lab.host('p');
        const l0 = await lab.link({ host: n, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] }, { host: p, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] });
        const l1 = await lab.link({ host: n, addrs: ['198.18.2.1/24'] }, { host: p, addrs: ['198.18.2.2/24'] });
        const l2 = await lab.link({ host: n }, { host: p, addrs: ['198.18.5.2/24'] });
        await lab.bridge(n, 'br0', [l2.a], ['198.18.5.1/24']);
        await lab.forwarding(n);
        const ours = l0.a;
        const other = l1.a;
        const f = await foreignState(lab, n, other);
        cleanup = f.cleanup;
        const before = await f.snap();
        expect(before['nft inet handmade']).toContain('hand written');
        expect(before['iptables-nft-save']).toContain('198.18.9.9');
        expect(before[`ip -d link ${other}`]).toMatch(/prog\/xdp id \d+/);
        expect(before[`tc class ${other}`]).toContain('7:10');

        const checked: string[] = [];
        /** Run an operation, assert its outcome, then the foreign state. */
        const op = async (label: string, expectOk: boolean, fn: () => Promise<{ ok: boolean; err: boolean; val: unknown }>): Promise<void> => {
          const r = await fn();
          const msg = r.err ? String((r.val as Error)?.message ?? r.val) : 'ok';
          expect(r.ok, `${label}: ${msg}`).toBe(expectOk);
          expect(await f.snap(), `foreign state after ${label}`).toEqual(before);
          checked.push(`${label}${expectOk ? '' : ' (fails)'}`);
        };

        // --- Firewall (inet)
        const mk = () =>
          new Firewall({ table: 'nb_fw', family: 'inet', netns: n.netns })
            .set('blocked', { type: 'ipv4_addr', interval: true, elements: ['198.18.9.0/24'] })
            .chain('input', { hook: 'input', priority: 0, policy: 'accept' })
            .rule('input', { id: 'blocked', saddr: '@blocked', action: 'drop' });
        const fw = mk();
        await op('Firewall.apply', true, () => fw.apply());
        await op('Firewall.addElements', true, () => fw.addElements('blocked', ['198.18.10.7']));
        await op('Firewall.addRule', true, () => fw.addRule('input', { id: 'tmp', protocol: 'udp', dport: 9000, action: 'accept' }));
        await op('Firewall.removeRule', true, () => fw.removeRule('tmp'));
        await op('Firewall.deleteElements', true, () => fw.deleteElements('blocked', ['198.18.10.7']));
        await op('Firewall.apply (health check fails)', false, () => mk().rule('input', { id: 'x', protocol: 'tcp', dport: 1, action: 'drop' }).apply({ healthCheck: async () => false }));
        await op('Firewall.addElements (bad element)', false, () => fw.addElements('blocked', ['198.18.1.1; flush ruleset']));
        await op('Firewall.apply into the hand-made table', false, () => new Firewall({ table: 'handmade', family: 'inet', netns: n.netns }).chain('c', { hook: 'input', priority: 0 }).apply());
        await op('Firewall.apply into iptables-nft ip filter', false, () => new Firewall({ table: 'filter', family: 'ip', netns: n.netns }).chain('c', { hook: 'input', priority: 0 }).apply());
        await op('Firewall.apply (again)', true, () => fw.apply());
        await op('Firewall.rollback', true, () => fw.rollback());
        await op('Firewall.destroy', true, () => fw.destroy());
        await op('Firewall.destroy of a foreign table', false, () => new Firewall({ table: 'handmade', family: 'inet', netns: n.netns }).destroy());

        // --- Firewall (bridge, per-VM)
        const vm = new Firewall({ table: 'nb_vm', family: 'bridge', netns: n.netns });
        const spec = { vmId: 'vm1', iface: l2.a, mac: '02:00:00:00:00:12', ips: ['198.18.5.2'], defaultPolicy: { in: 'DROP' as const, out: 'ACCEPT' as const }, rules: [{ id: 'ssh', name: 'SSH', action: 'ACCEPT' as const, direction: 'IN' as const, priority: 10, protocol: 'tcp' as const, dstPortStart: 22 }] };
        await op('Firewall.attachVm', true, () => vm.attachVm(spec));
        await op('Firewall.updateVm', true, () => vm.updateVm({ ...spec, rules: [{ ...spec.rules[0]!, dstPortStart: 2222 }] }));
        await op('Firewall.detachVm', true, () => vm.detachVm('vm1'));
        await op('Firewall.destroy (bridge)', true, () => vm.destroy());

        // --- SmartProxy NFTablesManager
        const m = new NFTablesManager({ tableName: 'nb_sp', netns: n.netns });
        const web = createNfTablesRoute('web', 8080, { host: '198.18.1.2', port: 80 });
        await op('NFTablesManager.provisionRoute', true, () => m.provisionRoute(web));
        await op('NFTablesManager.updateRoute', true, () => m.updateRoute(web, createNfTablesRoute('web', 8080, { host: '198.18.1.2', port: 81 })));
        await op('NFTablesManager.provisionRoute (second)', true, () => m.provisionRoute(createNfTablesRoute('dns', 5353, { host: '198.18.1.2', port: 53 }, { protocol: 'udp' })));
        await op('NFTablesManager.deprovisionRoute', true, () => m.deprovisionRoute(createNfTablesRoute('dns', 5353, { host: '198.18.1.2', port: 53 }, { protocol: 'udp' })));
        await op('NFTablesManager.provisionRoute into the hand-made table', false, () => new NFTablesManager({ tableName: 'handmade', netns: n.netns }).provisionRoute(web));
        await op('NFTablesManager.provisionRoute (refused option)', false, () => m.provisionRoute({ ...web, name: 'adv', action: { ...web.action, nftables: { ...(web.action as { nftables?: object }).nftables, useAdvancedNAT: true } } } as typeof web));
        await op('NFTablesManager.stop', true, () => m.stop());

        // --- Throttler (egress tc-htb, ingress ifb-tc, nft-limit)
        const t = new Throttler({ netns: n.netns, name: 'nb' });
        const up = await t.limit({ iface: ours, direction: 'egress', rate: '10mbit' });
        expect(up.ok, up.err ? up.val.message : '').toBe(true);
        expect(await f.snap(), 'after Throttler.limit egress').toEqual(before);
        checked.push('Throttler.limit (egress)');
        const down = await t.limit({ iface: ours, direction: 'ingress', rate: '20mbit' });
        expect(down.ok, down.err ? down.val.message : '').toBe(true);
        expect(await out(['ip', '-o', 'link', 'show', 'type', 'ifb'], n.netns)).toMatch(/nfb/); // netfence's own IFB exists now
        expect(await f.snap(), 'after Throttler.limit ingress').toEqual(before);
        checked.push('Throttler.limit (ingress)');
        const pol = await t.limit({ iface: ours, direction: 'ingress', rate: '5mbit', backend: 'nft-limit', match: { src: '198.18.1.2' } });
        expect(pol.ok, pol.err ? pol.val.message : '').toBe(true);
        expect(await f.snap(), 'after Throttler.limit nft-limit').toEqual(before);
        checked.push('Throttler.limit (nft-limit)');
        await op('Throttler.update (egress)', true, () => up.unwrap().update({ rate: '30mbit' }));
        await op('Throttler.update (ingress)', true, () => down.unwrap().update({ rate: '40mbit' }));
        await op('Throttler.update (nft-limit)', true, () => pol.unwrap().update({ rate: '6mbit' }));
        await op('Throttler.limit on the interface with a foreign root qdisc', false, () => t.limit({ iface: other, direction: 'egress', rate: '10mbit' }));
        await op('Throttler.limit ingress on the interface with a foreign ingress qdisc', false, () => t.limit({ iface: other, direction: 'ingress', rate: '10mbit' }));
        await op('Throttler.limit (unsupported backend)', false, () => t.limit({ iface: ours, direction: 'egress', rate: '10mbit', backend: 'tc-police' }));
        await op('Throttler.remove (egress)', true, () => up.unwrap().remove());
        await op('Throttler.remove (ingress)', true, () => down.unwrap().remove());
        await op('Throttler.clear', true, () => t.clear());
        expect(await out(['ip', '-o', 'link', 'show', 'type', 'ifb'], n.netns)).not.toMatch(/nfb/);

        // --- XdpBlocklist
        const bl = new XdpBlocklist({ iface: ours, netns: n.netns, name: `nb_${lab.id.replace(/[^a-z0-9]/gi, '_')}`.slice(0, 40) });
        await op('XdpBlocklist.attach', true, () => bl.attach());
        await op('XdpBlocklist.add', true, () => bl.add(['198.18.9.1', '198.19.0.0/16', 'fd00:bad::/32']));
        await op('XdpBlocklist.replace', true, () => bl.replace(['198.18.9.2', '198.18.9.3']));
        await op('XdpBlocklist.remove', true, () => bl.remove(['198.18.9.2']));
        await op('XdpBlocklist.add (bad entry)', false, () => bl.add(['198.18.1.5/24']));
        await op('XdpBlocklist.detach', true, () => bl.detach());
        const busy = new XdpBlocklist({ iface: other, netns: n.netns, name: `nbb_${lab.id.replace(/[^a-z0-9]/gi, '_')}`.slice(0, 40), backend: 'xdp' });
        await op('XdpBlocklist.attach over a foreign XDP program', false, () => busy.attach());
        busy.close();
        const nftBl = new XdpBlocklist({ iface: ours, netns: n.netns, name: 'nb_nft', backend: 'nft' });
        await op('XdpBlocklist.attach (nft backend)', true, () => nftBl.attach());
        await op('XdpBlocklist.add (nft backend)', true, () => nftBl.add(['198.18.9.4']));
        await op('XdpBlocklist.detach (nft backend)', true, () => nftBl.detach());

        // --- DpiBlocker: while running it owns a chain in the shared xtables table (when
        // the xtables NFQUEUE path is used), so there every foreign line must still be
        // present; everything else is compared exactly. After stop(): byte-identical.
        const dpi = new DpiBlocker({ netns: n.netns, queues: [91, 1] });
        const s = await dpi.start();
        expect(s.ok, s.err ? s.val.message : '').toBe(true);
        const during = await f.snap();
        for (const k of Object.keys(before)) {
          if (/filter|tables-nft-save/.test(k)) {
            const lines = during[k]!.split('\n');
            for (const line of before[k]!.split('\n')) if (line.trim()) expect(lines, `${k} while DPI runs`).toContain(line);
          } else expect(during[k], `${k} while DPI runs`).toBe(before[k]);
        }
        checked.push('DpiBlocker.start');
        await dpi.stop();
        // iptables-nft creates the built-in chains it needs (here FORWARD in the
        // foreign `filter` table) on first use; stop() must remove them again.
        const afterDpi = await f.snap();
        expect(afterDpi, 'foreign state after DpiBlocker.stop').toEqual(before);
        checked.push('DpiBlocker.stop');
        const busyQ = new DpiBlocker({ netns: n.netns, queues: [91, 1] });
        const q1 = await busyQ.start();
        const q2 = await new DpiBlocker({ netns: n.netns, queues: [91, 1] }).start(); // the queue is held: fails, leaves nothing
        expect(q2.err).toBe(true);
        await busyQ.stop();
        expect(q1.ok).toBe(true);
        const afterQ = await f.snap();
        expect(afterQ, 'after a DpiBlocker.start that failed').toEqual(before);
        checked.push('DpiBlocker.start (queue busy, fails)', 'DpiBlocker.stop (second)');

        console.log(`[neighbours] ${checked.length} operations, foreign state (${Object.keys(before).length} listings) byte-identical after each:\n  ${checked.join('\n  ')}`);
        expect(checked.length).toBeGreaterThanOrEqual(45);
      });
    } finally {
      cleanup();
    }
  });
});
