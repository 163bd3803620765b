/**
 * Shared by reliability-faults.test.ts and reliability-crash.test.ts: the host
 * state netfence can change, as comparable text, and a check that nothing is
 * orphaned.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Firewall } from '../../src/firewall/index.js';
import type { FirewallRule, VmSpec } from '../../src/firewall/vm.js';
import { createNfTablesRoute, type IRouteConfig } from '../../src/integrations/smartproxy.js';
import { run } from '../../src/host/run.js';
import { readJournal } from '../../src/plan/journal.js';
import type { Lab, LabHost } from '../../src/lab/index.js';

async function out(argv: string[], netns: string): Promise<string> {
  const r = await run(argv, { netns, what: argv.join(' ') });
  return r.ok ? r.val.stdout : `ERROR ${r.val.failure.stderr}`;
}

/** `ls -R /sys/fs/bpf/netfence` as a sorted list of paths. */
export function pinTree(root = '/sys/fs/bpf/netfence'): string[] {
  if (!existsSync(root)) return [];
  const acc: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      acc.push(p);
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return acc;
}

/** Everything the four classes can change in `netns`, as text (no statistics). */
export async function hostState(netns: string): Promise<Record<string, string>> {
  const links = JSON.parse(await out(['ip', '-j', 'link', 'show'], netns)) as { ifname: string }[];
  const [nft, qdiscs, dlinks, ifb, perLink] = await Promise.all([
    out(['nft', 'list', 'ruleset'], netns),
    out(['tc', 'qdisc', 'show'], netns),
    out(['ip', '-d', 'link', 'show'], netns),
    out(['ip', 'link', 'show', 'type', 'ifb'], netns),
    Promise.all(links.map(async (l) => [l.ifname, await out(['tc', 'class', 'show', 'dev', l.ifname], netns), (await out(['tc', 'filter', 'show', 'dev', l.ifname], netns)) + (await out(['tc', 'filter', 'show', 'dev', l.ifname, 'ingress'], netns))] as const)),
  ]);
  const st: Record<string, string> = {
    // rule counters are statistics (ARP/ND from the lab's hosts make them tick), not configuration
    nft: nft.replace(/counter packets \d+ bytes \d+/g, 'counter'),
    qdiscs,
    // bridge and bridge-port timers tick by themselves
    links: dlinks.replace(/^\d+: /gm, 'N: ').replace(/(\w+_timer)\s+[\d.]+/g, '$1 T'),
    ifb,
    // bpffs is global: only this suite's blocklists (other tests may run at the same time)
    pins: pinTree()
      .filter((p) => /^\/sys\/fs\/bpf\/netfence\/(crash_|relf_)/.test(p))
      .join('\n'),
  };
  for (const [name, classes, filters] of perLink) {
    st[`classes ${name}`] = classes;
    st[`filters ${name}`] = filters;
  }
  return st;
}

/** Journal entries of operations in progress written by `pid` (or any); a completed XdpBlocklist apply leaves none (it outlives its process by design). */
export function journalOf(pid?: number): string[] {
  return readJournal()
    .filter((e) => pid === undefined || e.pid === pid)
    .map((e) => `${e.kind}:${e.id}`);
}

/** The Firewall of the crash trials: old has 2 drop rules, new has 40. */
export function crashFirewall(netns: string, version: 'old' | 'new'): Firewall {
  const fw = new Firewall({ table: 'nf_crash', family: 'inet', netns }).chain('input', { hook: 'input', priority: 0, policy: 'accept' });
  const n = version === 'old' ? 2 : 40;
  for (let i = 0; i < n; i++) fw.rule('input', { id: `r${i}`, protocol: 'tcp', dport: 7000 + i, action: 'drop' });
  return fw;
}

/** The SmartProxy route of the crash and fault trials: old forwards port 8080, new port 8081, both to 198.18.2.2:80 (masqueraded). */
export function crashRoute(version: 'old' | 'new'): IRouteConfig {
  return createNfTablesRoute(`crash-${version}`, { host: '198.18.2.2', port: 80 }, { ports: version === 'old' ? 8080 : 8081 });
}

/** The bridge Firewall of the VM crash trials (table nf_crvm in the hypervisor namespace). */
export function crashVmFirewall(netns: string): Firewall {
  return new Firewall({ table: 'nf_crvm', family: 'bridge', netns });
}

/** The VM firewall the crash trials attach to `iface`: TCP 22 towards the VM dropped, everything else accepted. */
export function crashVmSpec(iface: string): VmSpec {
  const rules: FirewallRule[] = [{ id: 'no-ssh', name: 'no-ssh', priority: 10, action: 'DROP', direction: 'IN', protocol: 'tcp', dstPortStart: 22 }];
  return { vmId: 'vm1', iface, rules, defaultPolicy: { in: 'ACCEPT', out: 'ACCEPT' } };
}

/** a (the host under test) between b (198.18.1.2, the link `iface`) and c (198.18.2.2), forwarding, routes both ways. */
export async function lab3(lab: Lab): Promise<{ netns: string; iface: string; a: LabHost; b: LabHost; c: LabHost; bIface: string }> {
  const a = await lab.host('a');
  const b = await lab.host('b');
  const c = await lab.host('c');
  const l = await lab.link({ host: a, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] }, { host: b, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] });
  await lab.link({ host: a, addrs: ['198.18.2.1/24', 'fd00:2::1/64'] }, { host: c, addrs: ['198.18.2.2/24', 'fd00:2::2/64'] });
  await lab.forwarding(a);
  await lab.route(b, 'default', '198.18.1.1');
  await lab.route(c, 'default', '198.18.2.1');
  return { netns: a.netns, iface: l.a, a, b, c, bIface: l.b };
}
