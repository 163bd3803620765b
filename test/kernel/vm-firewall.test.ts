import { describe, expect, it } from 'vitest';
import { Firewall } from '../../src/firewall/firewall.js';
import type { FirewallRule } from '../../src/firewall/vm.js';
import { readFileSync } from 'node:fs';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { nftList } from '../../src/host/nft.js';
import { run } from '../../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';

const MAC1 = '02:00:00:00:05:01';
const MAC2 = '02:00:00:00:05:02';

/** A "hypervisor" namespace with bridge br0 and taps tap1..tap3 (veth), each leading to a VM namespace. */
async function hypervisor(lab: Lab, bridgeAddrs = ['198.18.5.254/24', 'fd00:5::fe/64']) {
  const hv = await lab.host('hv');
  const vms: LabHost[] = [];
  for (const i of [1, 2, 3]) {
    const vm = await lab.host(`vm${i}`);
    await lab.link({ host: hv, iface: `tap${i}` }, { host: vm, iface: 'eth0', addrs: [`198.18.5.${i}/24`, `fd00:5::${i}/64`] });
    vms.push(vm);
  }
  await lab.sh(vms[0] as LabHost, ['ip', 'link', 'set', 'eth0', 'address', MAC1]);
  await lab.sh(vms[1] as LabHost, ['ip', 'link', 'set', 'eth0', 'address', MAC2]);
  await lab.bridge(hv, 'br0', ['tap1', 'tap2', 'tap3'], bridgeAddrs);
  const [vm1, vm2, vm3] = vms as [LabHost, LabHost, LabHost];
  return { hv, vm1, vm2, vm3 };
}

/** The kernel this test runs on (the matrix runs it on more than one). */
const release = (): string => readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();

/** What the backends must be on this kernel, from the capability report and the namespace's br_netfilter switch. */
async function expectedBackends(hv: LabHost): Promise<{ reject: 'native' | 'br_netfilter' | 'refused'; stateful: 'native' | 'br_netfilter' | 'off' }> {
  const report = await detectCapabilities({ netns: hv.netns });
  const s = await run(['cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'], { netns: hv.netns });
  const brnf = s.ok && s.val.stdout.trim() === '1';
  const f = report.nft.features;
  return {
    reject: f.bridgeReject.available ? 'native' : brnf ? 'br_netfilter' : 'refused',
    stateful: f.bridgeConntrack.available ? 'native' : brnf ? 'br_netfilter' : 'off',
  };
}

const rule = (r: Partial<FirewallRule> & Pick<FirewallRule, 'id' | 'action' | 'direction' | 'protocol'>): FirewallRule => ({ name: r.id, priority: 100, ...r });

function chainHandles(l: Awaited<ReturnType<typeof nftList>>): string {
  if (l.err) return `error: ${l.val.message}`;
  return JSON.stringify(l.val.nftables.filter((o) => 'rule' in (o as object)).map((o) => { const r = (o as { rule: { handle: number; comment?: string; expr: unknown[] } }).rule; return [r.handle, r.comment, JSON.stringify(r.expr).replace(/"packets":\d+,"bytes":\d+/g, '')]; }));
}

describe('per-VM firewalls on a real bridge', () => {
  it('direction by tap, priorities, TCP/UDP/ICMP over IPv4 and IPv6, REJECT vs DROP, stateful return traffic', async () => {
    await withLab('vmfw', async (lab) => {
      const { hv, vm1, vm3 } = await hypervisor(lab);
      for (const p of [22, 23, 24]) await lab.serve(vm1, 'tcp', p);
      for (const p of [53, 54, 55]) await lab.serve(vm1, 'udp', p);
      await lab.serve(vm3, 'tcp', 80);
      const fw = new Firewall({ table: 'nf_vm', family: 'bridge', netns: hv.netns });
      const rules: FirewallRule[] = [
        rule({ id: 'ssh', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: 22, priority: 10 }),
        rule({ id: 'ssh-block-vm3-v4', action: 'DROP', direction: 'IN', protocol: 'tcp', dstPortStart: 22, srcIpAddr: '198.18.5.3/32', priority: 5 }),
        rule({ id: 'telnet', action: 'REJECT', direction: 'IN', protocol: 'tcp', dstPortStart: 23, dstPortEnd: 23 }),
        rule({ id: 'dns', action: 'ACCEPT', direction: 'IN', protocol: 'udp', dstPortStart: 53 }),
        rule({ id: 'udp-reject', action: 'REJECT', direction: 'IN', protocol: 'udp', dstPortStart: 55 }),
        rule({ id: 'ping6-from-vm3', action: 'DROP', direction: 'IN', protocol: 'icmp', srcIpAddr: 'fd00:5::3', priority: 1 }),
        rule({ id: 'icmp', action: 'ACCEPT', direction: 'IN', protocol: 'icmp' }),
      ];
      const a = await fw.attachVm({ vmId: 'vm1', iface: 'tap1', mac: MAC1, rules, defaultPolicy: { in: 'DROP', out: 'ACCEPT' } });
      if (a.err) console.log(`attachVm on ${release()}: ${a.val.message}\nbridge capabilities: ${JSON.stringify((await detectCapabilities({ netns: hv.netns })).nft.features.bridgeReject)}`);
      expect(a.err ? a.val.message : 'ok').toBe('ok');
      // The backends follow what this kernel can do (capability report + br_netfilter), and say so.
      const want = await expectedBackends(hv);
      console.log(`VM backends on ${release()}:`, JSON.stringify(fw.vmDecisions()));
      expect(fw.vmDecisions().map((d) => d.chosen)).toEqual([want.reject, want.stateful]);
      expect(want.reject, 'this test needs a kernel that can REJECT on a bridge').not.toBe('refused');

      // IN: towards vm1
      expect((await lab.probe(vm3, 'tcp', 'fd00:5::1', 22)).result).toBe('open');
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 22, { timeoutMs: 1000 })).result).toBe('timeout'); // priority 5 DROP beats priority 10 ACCEPT
      for (const addr of ['198.18.5.1', 'fd00:5::1']) {
        expect((await lab.probe(vm3, 'tcp', addr, 23)).result).toBe('refused'); // REJECT: TCP reset
        expect((await lab.probe(vm3, 'tcp', addr, 24, { timeoutMs: 1000 })).result).toBe('timeout'); // default DROP: silent
        expect((await lab.probe(vm3, 'udp', addr, 53)).result).toBe('open');
        expect((await lab.probe(vm3, 'udp', addr, 54, { timeoutMs: 1000 })).result).toBe('timeout');
        expect((await lab.probe(vm3, 'udp', addr, 55)).result).toBe('refused'); // REJECT: ICMP(v6) port unreachable
      }
      // ICMP rule with an IPv6 source matches ICMPv6 (ping6 dropped), IPv4 ping still allowed.
      expect(await lab.ping(vm3, '198.18.5.1', 2)).toBe(2);
      expect(await lab.ping(vm3, 'fd00:5::1', 2)).toBe(0);
      // OUT: from vm1, replies come back through the IN chain as established traffic.
      expect((await lab.probe(vm1, 'tcp', '198.18.5.3', 80)).result).toBe('open');
      expect((await lab.probe(vm1, 'tcp', 'fd00:5::3', 80)).result).toBe('open');
      // vm3 has no firewall: traffic between other ports is untouched
      const st = await fw.status();
      expect(st.err ? st.val.message : 'ok').toBe('ok');
      if (st.ok) {
        expect(st.val.rules['vm:vm1:telnet:in']?.packets).toBeGreaterThan(0);
        expect(st.val.rules['vm:vm1:ssh-block-vm3-v4:in']?.packets).toBeGreaterThan(0);
        expect(st.val.rules['vm:vm1:ping6-from-vm3:in']?.packets).toBeGreaterThan(0);
      }
      expect((await fw.destroy()).ok).toBe(true);
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 24)).result).toBe('open');
    });
  });

  it('protocol all with an IPv6 address matches IPv6 only; OUT rules filter what a VM sends', async () => {
    await withLab('vmfwall', async (lab) => {
      const { hv, vm1, vm3 } = await hypervisor(lab);
      await lab.serve(vm3, 'tcp', 80);
      await lab.serve(vm3, 'udp', 80);
      const fw = new Firewall({ table: 'nf_vm', family: 'bridge', netns: hv.netns });
      const r = await fw.attachVm({
        vmId: 'vm1', iface: 'tap1',
        rules: [rule({ id: 'no-v6-to-vm3', action: 'DROP', direction: 'OUT', protocol: 'all', dstIpAddr: 'fd00:5::3/128' })],
      });
      expect(r.ok).toBe(true);
      expect((await lab.probe(vm1, 'tcp', '198.18.5.3', 80)).result).toBe('open');
      expect((await lab.probe(vm1, 'udp', '198.18.5.3', 80)).result).toBe('open');
      expect((await lab.probe(vm1, 'tcp', 'fd00:5::3', 80, { timeoutMs: 1000 })).result).toBe('timeout');
      expect((await lab.probe(vm1, 'udp', 'fd00:5::3', 80, { timeoutMs: 1000 })).result).toBe('timeout');
      expect(await lab.ping(vm1, 'fd00:5::3', 1)).toBe(0);
      expect(await lab.ping(vm1, '198.18.5.3', 1)).toBe(1);
      expect((await fw.destroy()).ok).toBe(true);
    });
  });

  it('updateVm swaps one VM atomically and detachVm removes it; the other VM\'s chains are untouched', async () => {
    await withLab('vmfwupd', async (lab) => {
      const { hv, vm1, vm2, vm3 } = await hypervisor(lab);
      for (const vm of [vm1, vm2]) for (const p of [22, 80]) await lab.serve(vm, 'tcp', p);
      const fw = new Firewall({ table: 'nf_vm', family: 'bridge', netns: hv.netns });
      const allow = (port: number) => rule({ id: `allow-${port}`, action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: port });
      expect((await fw.attachVm({ vmId: 'vm1', iface: 'tap1', rules: [allow(22)], defaultPolicy: 'DROP' })).ok).toBe(true);
      expect((await fw.attachVm({ vmId: 'vm2', iface: 'tap2', rules: [allow(22)], defaultPolicy: 'DROP' })).ok).toBe(true);
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 22)).result).toBe('open');
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 80, { timeoutMs: 800 })).result).toBe('timeout');
      const vm2Before = [chainHandles(await nftList(['chain', 'bridge', 'nf_vm', 'vm_vm2_in'], { netns: hv.netns })), chainHandles(await nftList(['chain', 'bridge', 'nf_vm', 'vm_vm2_out'], { netns: hv.netns }))];

      // Swap vm1 back and forth between two rule sets that both allow 22 while connections run: none fails.
      let stop = false;
      const outcomes: string[] = [];
      const prober = (async () => {
        while (!stop) outcomes.push((await lab.probe(vm3, 'tcp', '198.18.5.1', 22, { timeoutMs: 1500 })).result);
      })();
      for (let i = 0; i < 8; i++) {
        const u = await fw.updateVm({ vmId: 'vm1', iface: 'tap1', rules: i % 2 ? [allow(22)] : [allow(22), allow(80)], defaultPolicy: 'DROP' });
        expect(u.ok).toBe(true);
      }
      stop = true;
      await prober;
      console.log(`probes during 8 updates: ${outcomes.length}, all open: ${outcomes.every((o) => o === 'open')}`);
      expect(outcomes.length).toBeGreaterThan(0);
      expect(outcomes.every((o) => o === 'open')).toBe(true);
      // final state: the last update (i = 7) allows 22 only
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 80, { timeoutMs: 800 })).result).toBe('timeout');
      expect((await fw.updateVm({ vmId: 'vm1', iface: 'tap1', rules: [allow(80)], defaultPolicy: 'DROP' })).ok).toBe(true);
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 80)).result).toBe('open');
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 22, { timeoutMs: 800 })).result).toBe('timeout');

      expect((await fw.detachVm('vm1')).ok).toBe(true);
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 22)).result).toBe('open'); // no firewall on vm1 any more
      const gone = await nftList(['chain', 'bridge', 'nf_vm', 'vm_vm1_in'], { netns: hv.netns });
      expect(gone.err).toBe(true);
      const vm2After = [chainHandles(await nftList(['chain', 'bridge', 'nf_vm', 'vm_vm2_in'], { netns: hv.netns })), chainHandles(await nftList(['chain', 'bridge', 'nf_vm', 'vm_vm2_out'], { netns: hv.netns }))];
      expect(vm2After).toEqual(vm2Before);
      expect((await lab.probe(vm3, 'tcp', '198.18.5.2', 22)).result).toBe('open');
      expect((await lab.probe(vm3, 'tcp', '198.18.5.2', 80, { timeoutMs: 800 })).result).toBe('timeout');
      expect((await fw.destroy()).ok).toBe(true);
    });
  });

  it('anti-spoofing: only the VM\'s MAC and IPs leave its tap (ARP and IPv6 link-local keep working)', async () => {
    await withLab('vmspoof', async (lab) => {
      const { hv, vm2, vm3 } = await hypervisor(lab);
      const fw = new Firewall({ table: 'nf_vm', family: 'bridge', netns: hv.netns });
      expect((await fw.attachVm({ vmId: 'vm2', iface: 'tap2', mac: MAC2, ips: ['198.18.5.2', 'fd00:5::2'], rules: [] })).ok).toBe(true);
      expect(await lab.ping(vm2, '198.18.5.3', 2)).toBe(2);
      expect(await lab.ping(vm2, 'fd00:5::3', 2)).toBe(2);
      // IPv6 link-local (neighbour discovery) still works
      const ll = (await lab.sh(vm3, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'])).stdout.match(/fe80::[0-9a-f:]+/)?.[0];
      expect(ll).toBeTruthy();
      // link-local addresses go through DAD first: allow a few seconds
      let llReplies = 0;
      for (let i = 0; i < 6 && llReplies === 0; i++) llReplies = await lab.ping(vm2, `${ll}%eth0`, 1);
      expect(llReplies).toBe(1);
      // a spoofed source address does not get through
      await lab.sh(vm2, ['ip', 'addr', 'add', '198.18.5.99/32', 'dev', 'eth0']);
      await lab.sh(vm2, ['ip', '-6', 'addr', 'add', 'fd00:5::99/128', 'dev', 'eth0', 'nodad']);
      expect((await lab.exec(vm2, ['ping', '-n', '-c', '2', '-W', '1', '-i', '0.2', '-I', '198.18.5.99', '198.18.5.3'])).ok).toBe(false);
      expect((await lab.exec(vm2, ['ping', '-n', '-c', '2', '-W', '1', '-i', '0.2', '-I', 'fd00:5::99', 'fd00:5::3'])).ok).toBe(false);
      // a spoofed MAC does not get through
      await lab.sh(vm2, ['ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:05:99']);
      await lab.sh(vm2, ['ip', 'neigh', 'flush', 'dev', 'eth0']);
      expect(await lab.ping(vm2, '198.18.5.3', 2)).toBe(0);
      await lab.sh(vm2, ['ip', 'link', 'set', 'eth0', 'address', MAC2]);
      expect(await lab.ping(vm2, '198.18.5.3', 2)).toBe(2);
      const st = await fw.status();
      expect(st.ok && st.val.rules['vm:vm2:_spoof-ip:out']?.packets).toBeGreaterThan(0);
      expect(st.ok && st.val.rules['vm:vm2:_spoof-ip6:out']?.packets).toBeGreaterThan(0);
      expect(st.ok && st.val.rules['vm:vm2:_spoof-mac:out']?.packets).toBeGreaterThan(0);
      expect((await fw.destroy()).ok).toBe(true);
    });
  });

  it('REJECT becomes DROP only when asked for (reject: "drop"), and the decision says so', async () => {
    await withLab('vmdrop', async (lab) => {
      const { hv, vm1, vm3 } = await hypervisor(lab);
      await lab.serve(vm1, 'tcp', 23);
      const fw = new Firewall({ table: 'nf_vm', family: 'bridge', netns: hv.netns }).vmOptionsSet({ reject: 'drop', stateful: 'off' });
      const r = await fw.attachVm({ vmId: 'vm1', iface: 'tap1', rules: [rule({ id: 'telnet', action: 'REJECT', direction: 'IN', protocol: 'tcp', dstPortStart: 23 })] });
      expect(r.ok && r.val.decisions.find((d) => d.subject === 'vm.reject')?.chosen).toBe('drop');
      expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 23, { timeoutMs: 1000 })).result).toBe('timeout');
      expect((await fw.destroy()).ok).toBe(true);
    });
  });

  it('a REJECT is answered, or refused naming why — never silently dropped', async () => {
    await withLab('vmrej', async (lab) => {
      const { hv, vm1, vm3 } = await hypervisor(lab);
      await lab.serve(vm1, 'tcp', 23);
      const want = await expectedBackends(hv);
      const rules = [rule({ id: 'telnet', action: 'REJECT', direction: 'IN', protocol: 'tcp', dstPortStart: 23 })];
      const fw = new Firewall({ table: 'nf_vm', family: 'bridge', netns: hv.netns });
      // Without the VM's MAC: answered through br_netfilter, refused where only native (prerouting) reject exists or nothing can reject.
      const noMac = await fw.attachVm({ vmId: 'vm1', iface: 'tap1', rules });
      if (want.reject === 'br_netfilter') {
        expect(noMac.err ? noMac.val.message : 'ok').toBe('ok');
        expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 23)).result).toBe('refused');
      } else {
        expect(noMac.err).toBe(true);
        expect(noMac.err ? noMac.val.message : '').toMatch(want.reject === 'native' ? /vm1\.mac/ : /REJECT cannot be honoured/);
        const l = await nftList(['tables'], { netns: hv.netns });
        expect(JSON.stringify(l.ok ? l.val : '')).not.toContain('nf_vm');
        expect((await lab.probe(vm3, 'tcp', '198.18.5.1', 23)).result).toBe('open');
      }
      // With it: answered wherever the kernel can reject at all.
      const withMac = await fw.attachVm({ vmId: 'vm1', iface: 'tap1', mac: MAC1, rules });
      if (want.reject === 'refused') {
        expect(withMac.err).toBe(true);
      } else {
        expect(withMac.err ? withMac.val.message : 'ok').toBe('ok');
        expect(fw.vmDecisions().find((d) => d.subject === 'vm.reject')?.chosen).toBe(want.reject);
        for (const addr of ['198.18.5.1', 'fd00:5::1']) expect((await lab.probe(vm3, 'tcp', addr, 23)).result).toBe('refused');
      }
      expect((await fw.destroy()).ok).toBe(true);
    });
  });

  it('refuses invalid rules naming the rule id and the field, and changes nothing', async () => {
    await withLab('vmbad', async (lab) => {
      const { hv } = await hypervisor(lab);
      const fw = new Firewall({ table: 'nf_vm', family: 'bridge', netns: hv.netns });
      const bad = await fw.attachVm({
        vmId: 'vm1', iface: 'tap1',
        rules: [
          rule({ id: 'r-range', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: 90, dstPortEnd: 80 }),
          rule({ id: 'r-icmp', action: 'ACCEPT', direction: 'IN', protocol: 'icmp', dstPortStart: 80 }),
          rule({ id: 'r-cidr', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', srcIpAddr: '198.18.0.0/33' }),
          { ...rule({ id: 'r-action', action: 'ACCEPT', direction: 'IN', protocol: 'tcp' }), action: 'ALLOW' as 'ACCEPT' },
        ],
      });
      expect(bad.err).toBe(true);
      const msg = bad.err ? bad.val.message : '';
      expect(msg).toContain('rule r-range.dstPortStart');
      expect(msg).toContain('rule r-icmp.dstPortStart');
      expect(msg).toContain('rule r-cidr.srcIpAddr');
      expect(msg).toContain('rule r-action.action');
      const l = await nftList(['tables'], { netns: hv.netns });
      expect(JSON.stringify(l.ok ? l.val : '')).not.toContain('nf_vm');
    });
  });
});
