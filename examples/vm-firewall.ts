/**
 * A VM's firewall lifecycle on a real bridge, in a throwaway lab:
 * a "hypervisor" namespace with bridge br0 and two taps (veth pairs) leading
 * to two "VM" namespaces. Start: attachVm; change rules: updateVm; stop: detachVm.
 * What the peer VM reaches is checked after each step (✔/✘); the example exits
 * with status 1 on a ✘.
 *
 *   sudo npx tsx examples/vm-firewall.ts
 */
import { Firewall, type FirewallRule } from '../src/firewall/index.js';
import { withLab } from '../src/lab/index.js';
import { checkEqual } from './_check.js';

const rule = (r: Partial<FirewallRule> & Pick<FirewallRule, 'id' | 'action' | 'direction' | 'protocol'>): FirewallRule => ({ name: r.id, priority: 100, ...r });

await withLab('vmexample', async (lab) => {
  const hv = await lab.host('hv');
  const web = await lab.host('web');
  const peer = await lab.host('peer');
  await lab.link({ host: hv, iface: 'tap-web' }, { host: web, iface: 'eth0', addrs: ['198.18.7.10/24', 'fd00:7::10/64'] });
  await lab.link({ host: hv, iface: 'tap-peer' }, { host: peer, iface: 'eth0', addrs: ['198.18.7.20/24', 'fd00:7::20/64'] });
  await lab.sh(web, ['ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:07:10']);
  // The bridge has addresses so that REJECT via br_netfilter can route its answers back.
  await lab.bridge(hv, 'br0', ['tap-web', 'tap-peer'], ['198.18.7.1/24', 'fd00:7::1/64']);
  for (const p of [22, 80, 443]) await lab.serve(web, 'tcp', p);

  /** Probe 22, 80, 443 over IPv4 and 80 over IPv6 from the peer; check the results are `want` (in that order). */
  const show = async (what: string, want: string[]) => {
    const out: string[] = [];
    for (const [addr, port] of [['198.18.7.10', 22], ['198.18.7.10', 80], ['198.18.7.10', 443], ['fd00:7::10', 80]] as const) {
      out.push(`${addr.includes(':') ? `[${addr}]` : addr}:${port} ${(await lab.probe(peer, 'tcp', addr, port, { timeoutMs: 800 })).result}`);
    }
    checkEqual(what, out, ['198.18.7.10:22', '198.18.7.10:80', '198.18.7.10:443', '[fd00:7::10]:80'].map((p, i) => `${p} ${want[i]}`));
  };
  const allOpen = ['open', 'open', 'open', 'open'];

  const fw = new Firewall({ table: 'vmfw', family: 'bridge', netns: hv.netns });
  await show('before any firewall', allOpen);

  // VM start
  const started = await fw.attachVm({
    vmId: 'web', iface: 'tap-web', mac: '02:00:00:00:07:10', ips: ['198.18.7.10', 'fd00:7::10'],
    defaultPolicy: { in: 'DROP', out: 'ACCEPT' },
    rules: [
      rule({ id: 'ssh', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: 22, srcIpAddr: '198.18.7.0/24', priority: 10 }),
      rule({ id: 'http', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: 80 }),
      rule({ id: 'https', action: 'REJECT', direction: 'IN', protocol: 'tcp', dstPortStart: 443 }),
      rule({ id: 'ping', action: 'ACCEPT', direction: 'IN', protocol: 'icmp' }),
    ],
  });
  if (started.err) throw started.val;
  console.log('attachVm: backends chosen for this kernel:');
  for (const d of started.val.decisions) console.log(`   ${d.subject} = ${d.chosen}: ${d.reason}`);
  await show('after attachVm (22 from the LAN, 80 open, 443 REJECT → refused, rest DROP → timeout)', ['open', 'open', 'refused', 'open']);

  // Change rules: atomic swap of this VM's chains
  const updated = await fw.updateVm({
    vmId: 'web', iface: 'tap-web', mac: '02:00:00:00:07:10', ips: ['198.18.7.10', 'fd00:7::10'],
    defaultPolicy: { in: 'DROP', out: 'ACCEPT' },
    rules: [
      rule({ id: 'https', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: 443 }),
      rule({ id: 'http6-off', action: 'DROP', direction: 'IN', protocol: 'all', dstIpAddr: 'fd00:7::/64', priority: 1 }),
      rule({ id: 'http', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: 80 }),
    ],
  });
  if (updated.err) throw updated.val;
  await show('after updateVm (443 open, 22 closed, IPv6 dropped by an IPv6 "all" rule)', ['timeout', 'open', 'open', 'timeout']);

  const st = await fw.stats();
  if (st.ok) {
    console.log('counters by rule id:');
    for (const [id, c] of Object.entries(st.val.rules)) if (c.packets > 0) console.log(`   ${id.padEnd(28)} ${c.packets} packets, ${c.bytes} bytes`);
  }

  // VM stop
  const stopped = await fw.detachVm('web');
  if (stopped.err) throw stopped.val;
  await show('after detachVm (no firewall for this VM any more)', allOpen);
  await fw.destroy();
});
