/**
 * Per-VM firewalls on a bridge: the rule model VM managers use, its
 * validation, and its compilation to chains in a `bridge` family table.
 *
 * Layout (all in the Firewall's bridge table, plus an `inet` companion table
 * when the br_netfilter backends are used):
 * - maps `vm_in` / `vm_out` (ifname : verdict) dispatch a frame to the chain
 *   of the VM whose tap it leaves through (IN, towards the VM) or arrives from
 *   (OUT, from the VM);
 * - base chains `vm_forward`, `vm_input`, `vm_output` (priority -200) hold only
 *   the dispatch lookups;
 * - per VM: chains `vm_<id>_in` and `vm_<id>_out`. An accepted frame `return`s
 *   from the OUT chain so that the destination VM's IN chain still runs.
 *
 * With native bridge REJECT the kernel allows `reject` only in the bridge
 * prerouting and input hooks, where the output port is not known yet. So the
 * layout moves the decisions to prerouting (`vm_prerouting`, priority -150,
 * after bridge conntrack): frames from a VM are judged by its OUT chain
 * (dispatched by input port), unicast frames to a VM by `vm_<id>_inp`, a copy
 * of its IN chain with real REJECTs, dispatched by the VM's MAC (`vm_in_mac`).
 * Frames prerouting has judged are accepted in forward (`vm_macs`); what is
 * left for the forward and output hooks (broadcast and multicast, which must
 * never be answered with an ICMP error, and frames the host itself sends) goes
 * through `vm_<id>_in`, where a REJECT drops — the plan's decisions say so.
 * @module
 */
import { isIPv4 } from 'node:net';
import type { z } from 'zod';
import type { ValidationIssue } from '../errors.js';
import { parsePrefix } from '../validate.js';
import * as x from '../nft/build.js';
import type { Command, Expression, Statement } from '../nft/schema/index.js';
import { ruleComment } from '../util/rule-comment.js';
import { companionTable, preroutingLayout, VM_NAMES, type ParsedVm, type VmBackends, type VmFirewallRule } from './vm-model.js';

export * from './vm-model.js';

type Dir = 'in' | 'out';

function policyOf(vm: ParsedVm, d: Dir): 'ACCEPT' | 'DROP' {
  const p = vm.defaultPolicy ?? 'ACCEPT';
  return typeof p === 'string' ? p : p[d];
}

const ND_TYPES = ['nd-neighbor-solicit', 'nd-neighbor-advert', 'nd-router-solicit', 'nd-router-advert'];

/** Commands creating the shared VM layout (idempotent: re-running it resets only the dispatch rules). */
export function vmBaseCommands(table: string, b: VmBackends): Command[] {
  const fam = 'bridge';
  const cmds: Command[] = [x.cmd.add({ table: { family: fam, name: table } })];
  for (const m of [VM_NAMES.inMap, VM_NAMES.outMap]) cmds.push(x.cmd.add({ map: { family: fam, table, name: m, type: 'ifname', map: 'verdict' } }));
  const vmapOn = (key: string, map: string): Statement[] => [x.vmap(x.meta(key), `@${map}`)];
  let base: [string, string, number, Statement[][]][];
  if (preroutingLayout(b)) {
    cmds.push(x.cmd.add({ map: { family: fam, table, name: VM_NAMES.inMacMap, type: 'ether_addr', map: 'verdict' } }));
    cmds.push(x.cmd.add({ set: { family: fam, table, name: VM_NAMES.macSet, type: 'ether_addr' } }));
    base = [
      // After bridge conntrack (-200); after br_netfilter (0) when it sets the established mark.
      [VM_NAMES.prerouting, 'prerouting', b.stateful === 'br_netfilter' ? 1 : -150, [vmapOn('iifname', VM_NAMES.outMap), [x.vmap(x.payload('ether', 'daddr'), `@${VM_NAMES.inMacMap}`)]]],
      [VM_NAMES.forward, 'forward', -200, [[x.eq(x.payload('ether', 'daddr'), `@${VM_NAMES.macSet}`), x.accept()], vmapOn('oifname', VM_NAMES.inMap)]],
      [VM_NAMES.output, 'output', -200, [vmapOn('oifname', VM_NAMES.inMap)]],
    ];
  } else {
    base = [
      [VM_NAMES.forward, 'forward', -200, [vmapOn('iifname', VM_NAMES.outMap), vmapOn('oifname', VM_NAMES.inMap)]],
      [VM_NAMES.input, 'input', -200, [vmapOn('iifname', VM_NAMES.outMap)]],
      [VM_NAMES.output, 'output', -200, [vmapOn('oifname', VM_NAMES.inMap)]],
    ];
  }
  for (const [name, hook, prio, rules] of base) {
    cmds.push(x.cmd.add({ chain: { family: fam, table, name, type: 'filter', hook, prio, policy: 'accept' } }));
    cmds.push(x.cmd.flush({ chain: { family: fam, table, name } }));
    for (const expr of rules) cmds.push(x.cmd.add({ rule: { family: fam, table, chain: name, expr } }));
  }
  if (b.reject === 'br_netfilter' || b.stateful === 'br_netfilter') {
    const ct = companionTable(table);
    const inet = 'inet';
    cmds.push(x.cmd.add({ table: { family: inet, name: ct } }));
    const chains: [string, string, number, Statement[][]][] = [];
    if (b.stateful === 'br_netfilter') {
      chains.push(['vm_state', 'prerouting', -150, [[x.match(x.ct('state'), 'in', ['established', 'related']), x.mangle(x.meta('mark'), x.or(x.meta('mark'), b.establishedMark))]]]);
    }
    if (b.reject === 'br_netfilter') {
      const marked = (): Statement => x.eq(x.and(x.meta('mark'), b.rejectMark), b.rejectMark);
      const rej: Statement[][] = [
        [marked(), x.eq(x.meta('l4proto'), 'tcp'), x.counter(), { reject: { type: 'tcp reset' } }],
        [marked(), x.counter(), { reject: { type: 'icmpx', expr: 'port-unreachable' } }],
      ];
      chains.push(['vm_reject_fwd', 'forward', 0, rej], ['vm_reject_in', 'input', 0, rej]);
    }
    for (const [name, hook, prio, rules] of chains) {
      cmds.push(x.cmd.add({ chain: { family: inet, table: ct, name, type: 'filter', hook, prio, policy: 'accept' } }));
      cmds.push(x.cmd.flush({ chain: { family: inet, table: ct, name } }));
      for (const expr of rules) cmds.push(x.cmd.add({ rule: { family: inet, table: ct, chain: name, expr } }));
    }
  }
  return cmds;
}

function ruleCmd(table: string, chain: string, comment: string, expr: Statement[]): Command {
  return x.cmd.add({ rule: { family: 'bridge', table, chain, comment, expr } });
}

function addrSet(items: string[]): Expression {
  return items.length === 1 ? x.addr(items[0] as string) : x.anonSet(items.map((i) => x.addr(i)));
}

/**
 * Verdict statements for ACCEPT/DROP/REJECT in direction `d`. `canReject` is
 * false for chains that run in the forward/output hooks of the native layout
 * (broadcast, multicast and host-sent frames: dropped, never answered).
 */
function verdicts(action: 'ACCEPT' | 'DROP' | 'REJECT', d: Dir, proto: string, b: VmBackends, canReject: boolean): Statement[][] {
  if (action === 'ACCEPT') return [[d === 'out' ? x.ret() : x.accept()]];
  if (action === 'DROP' || b.reject === 'drop' || (b.reject === 'native' && !canReject)) return [[x.drop()]];
  if (b.reject === 'br_netfilter') return [[x.mangle(x.meta('mark'), x.or(x.meta('mark'), b.rejectMark)), x.accept()]];
  // native bridge reject: TCP gets a reset, everything else an ICMP(v6) port unreachable.
  if (proto === 'tcp') return [[{ reject: { type: 'tcp reset' } }]];
  if (proto === 'all') return [[x.eq(x.meta('l4proto'), 'tcp'), { reject: { type: 'tcp reset' } }], [{ reject: { type: 'icmpx', expr: 'port-unreachable' } }]];
  return [[{ reject: { type: 'icmpx', expr: 'port-unreachable' } }]];
}

function ruleMatches(r: z.output<typeof VmFirewallRule>): Statement[] {
  const out: Statement[] = [];
  const fam = r.srcIpAddr ? parsePrefix(r.srcIpAddr)?.family : r.dstIpAddr ? parsePrefix(r.dstIpAddr)?.family : undefined;
  if (fam) out.push(x.eq(x.payload('ether', 'type'), fam === 4 ? 'ip' : 'ip6'));
  const p = fam === 6 ? 'ip6' : 'ip';
  if (r.srcIpAddr) out.push(x.eq(x.payload(p, 'saddr'), x.addr(r.srcIpAddr)));
  if (r.dstIpAddr) out.push(x.eq(x.payload(p, 'daddr'), x.addr(r.dstIpAddr)));
  if (r.protocol === 'icmp') {
    // ICMP for IPv4 addresses, ICMPv6 for IPv6 addresses, both without addresses.
    out.push(x.eq(x.meta('l4proto'), fam === 4 ? 'icmp' : fam === 6 ? 'ipv6-icmp' : x.anonSet(['icmp', 'ipv6-icmp'])));
  } else if (r.protocol === 'tcp' || r.protocol === 'udp') {
    out.push(x.eq(x.meta('l4proto'), r.protocol));
    if (r.srcPortStart !== undefined) out.push(x.eq(x.payload(r.protocol, 'sport'), r.srcPortEnd !== undefined && r.srcPortEnd !== r.srcPortStart ? x.range(r.srcPortStart, r.srcPortEnd) : r.srcPortStart));
    if (r.dstPortStart !== undefined) out.push(x.eq(x.payload(r.protocol, 'dport'), r.dstPortEnd !== undefined && r.dstPortEnd !== r.dstPortStart ? x.range(r.dstPortStart, r.dstPortEnd) : r.dstPortStart));
  }
  return out;
}

/** Comment of a VM rule: `nf:vm:<vmId>:<ruleId>:<in|out>` (ids stay unique per VM and direction). */
export function vmRuleId(vmId: string, ruleId: string, d: Dir): string {
  return `vm:${vmId}:${ruleId}:${d}`;
}

/**
 * The rules of one VM chain (without the `add chain`/`flush`). `pre` selects
 * the IN chain copy evaluated in prerouting (native REJECT layout).
 */
export function vmChainRules(table: string, vm: ParsedVm, d: Dir, b: VmBackends, pre = false): Command[] {
  const chain = d === 'out' ? VM_NAMES.chainOut(vm.vmId) : pre ? VM_NAMES.chainInPre(vm.vmId) : VM_NAMES.chainIn(vm.vmId);
  // OUT chains run in prerouting in the native layout, as do `_inp` chains.
  const canReject = d === 'out' || pre;
  const pass = (): Statement => (d === 'out' ? x.ret() : x.accept());
  const cmds: Command[] = [];
  const sys = (name: string, expr: Statement[]) => cmds.push(ruleCmd(table, chain, ruleComment(vmRuleId(vm.vmId, `_${name}`, d)), expr));
  const antiSpoof = vm.antiSpoof ?? (vm.mac !== undefined || vm.ips !== undefined);
  if (d === 'out' && antiSpoof) {
    if (vm.mac) {
      sys('spoof-mac', [x.match(x.payload('ether', 'saddr'), '!=', vm.mac), x.counter(), x.drop()]);
      sys('spoof-arp-mac', [x.eq(x.payload('ether', 'type'), 'arp'), x.match(x.payload('arp', 'saddr ether'), '!=', vm.mac), x.counter(), x.drop()]);
    }
    if (vm.ips) {
      const v4 = vm.ips.filter((i) => isIPv4(parsePrefix(i)?.address ?? ''));
      const v6 = vm.ips.filter((i) => !isIPv4(parsePrefix(i)?.address ?? ''));
      // ARP probes use 0.0.0.0 as sender; DHCP discovers come from 0.0.0.0.
      sys('spoof-arp-ip', [x.eq(x.payload('ether', 'type'), 'arp'), x.match(x.payload('arp', 'saddr ip'), '!=', addrSet([...v4, '0.0.0.0'])), x.counter(), x.drop()]);
      sys('dhcp', [x.eq(x.payload('ether', 'type'), 'ip'), x.eq(x.payload('ip', 'saddr'), '0.0.0.0'), x.eq(x.meta('l4proto'), 'udp'), x.eq(x.payload('udp', 'sport'), 68), x.eq(x.payload('udp', 'dport'), 67), x.counter(), pass()]);
      if (v4.length) sys('spoof-ip', [x.eq(x.payload('ether', 'type'), 'ip'), x.match(x.payload('ip', 'saddr'), '!=', addrSet(v4)), x.counter(), x.drop()]);
      else sys('spoof-ip', [x.eq(x.payload('ether', 'type'), 'ip'), x.counter(), x.drop()]);
      // Link-local (ND, RS) and the unspecified address (DAD) stay allowed.
      sys('spoof-ip6', [x.eq(x.payload('ether', 'type'), 'ip6'), x.match(x.payload('ip6', 'saddr'), '!=', addrSet([...v6, 'fe80::/10', '::'])), x.counter(), x.drop()]);
    }
  }
  if (b.stateful === 'native') {
    sys('established', [x.match(x.ct('state'), 'in', ['established', 'related']), x.counter(), pass()]);
  } else if (b.stateful === 'br_netfilter') {
    sys('established', [x.eq(x.and(x.meta('mark'), b.establishedMark), b.establishedMark), x.counter(), pass()]);
  }
  // Address resolution must work whatever the policy.
  sys('arp', [x.eq(x.payload('ether', 'type'), 'arp'), x.counter(), pass()]);
  sys('nd', [x.eq(x.payload('ether', 'type'), 'ip6'), x.eq(x.meta('l4proto'), 'ipv6-icmp'), x.eq(x.payload('icmpv6', 'type'), x.anonSet(ND_TYPES)), x.counter(), pass()]);

  const mine = vm.rules
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.direction === 'INOUT' || r.direction.toLowerCase() === d)
    .sort((a, b2) => a.r.priority - b2.r.priority || a.i - b2.i);
  for (const { r } of mine) {
    const m = ruleMatches(r);
    const vs = verdicts(r.action, d, r.protocol, b, canReject);
    vs.forEach((v, k) => {
      const id = vmRuleId(vm.vmId, r.id, d) + (vs.length > 1 && k === 0 ? ':tcp' : '');
      cmds.push(ruleCmd(table, chain, ruleComment(id), [...m, x.counter(), ...v]));
    });
  }
  const pol = policyOf(vm, d);
  sys('policy', [x.counter(), pol === 'ACCEPT' ? pass() : x.drop()]);
  return cmds;
}

/** True when a VM has rules that REJECT frames towards it. */
export function rejectsInbound(vm: ParsedVm): boolean {
  return vm.rules.some((r) => r.action === 'REJECT' && r.direction !== 'OUT');
}

/**
 * Why a VM cannot be compiled for these backends, or undefined. In the native
 * layout a REJECT towards a VM is answered from prerouting, where frames are
 * told apart by destination MAC: without `mac` it could only be dropped.
 */
export function vmLayoutIssue(vm: ParsedVm, b: VmBackends): ValidationIssue | undefined {
  if (preroutingLayout(b) && rejectsInbound(vm) && !vm.mac) {
    return {
      path: `vm ${vm.vmId}.mac`,
      message:
        'is required for REJECT rules towards the VM on this kernel: bridge reject works only in the prerouting hook, before the output port is known, so frames to the VM are recognised by its MAC (or choose reject: "br_netfilter" or "drop" in vmOptionsSet)',
    };
  }
  return undefined;
}

/** The transaction that installs or replaces one VM's chains (and only them). */
export function vmAttachCommands(table: string, vm: ParsedVm, b: VmBackends, previous?: { iface: string; mac?: string | undefined }): Command[] {
  const fam = 'bridge';
  const cmds: Command[] = [];
  const pre = preroutingLayout(b) && vm.mac !== undefined;
  const chains: [string, Dir, boolean][] = [
    [VM_NAMES.chainIn(vm.vmId), 'in', false],
    [VM_NAMES.chainOut(vm.vmId), 'out', false],
  ];
  if (pre) chains.push([VM_NAMES.chainInPre(vm.vmId), 'in', true]);
  for (const [chain, d, p] of chains) {
    cmds.push(x.cmd.add({ chain: { family: fam, table, name: chain } }));
    cmds.push(x.cmd.flush({ chain: { family: fam, table, name: chain } }));
    cmds.push(...vmChainRules(table, vm, d, b, p));
  }
  if (previous !== undefined && previous.iface !== vm.iface) {
    cmds.push(x.cmd.delete({ element: { family: fam, table, name: VM_NAMES.inMap, elem: [previous.iface] } }));
    cmds.push(x.cmd.delete({ element: { family: fam, table, name: VM_NAMES.outMap, elem: [previous.iface] } }));
  }
  if (preroutingLayout(b) && previous?.mac !== undefined && previous.mac !== vm.mac) {
    cmds.push(x.cmd.delete({ element: { family: fam, table, name: VM_NAMES.inMacMap, elem: [previous.mac] } }));
    cmds.push(x.cmd.delete({ element: { family: fam, table, name: VM_NAMES.macSet, elem: [previous.mac] } }));
  }
  cmds.push(x.cmd.add({ element: { family: fam, table, name: VM_NAMES.inMap, elem: [[vm.iface, x.jump(VM_NAMES.chainIn(vm.vmId))]] } }));
  cmds.push(x.cmd.add({ element: { family: fam, table, name: VM_NAMES.outMap, elem: [[vm.iface, x.jump(VM_NAMES.chainOut(vm.vmId))]] } }));
  if (pre) {
    const mac = vm.mac as string;
    cmds.push(x.cmd.add({ element: { family: fam, table, name: VM_NAMES.inMacMap, elem: [[mac, x.jump(VM_NAMES.chainInPre(vm.vmId))]] } }));
    cmds.push(x.cmd.add({ element: { family: fam, table, name: VM_NAMES.macSet, elem: [mac] } }));
  }
  return cmds;
}

/** The transaction that removes one VM's chains and dispatch entries. */
export function vmDetachCommands(table: string, vm: { vmId: string; iface: string; mac?: string | undefined }, b: VmBackends): Command[] {
  const fam = 'bridge';
  const cmds: Command[] = [
    x.cmd.delete({ element: { family: fam, table, name: VM_NAMES.inMap, elem: [vm.iface] } }),
    x.cmd.delete({ element: { family: fam, table, name: VM_NAMES.outMap, elem: [vm.iface] } }),
  ];
  const chains = [VM_NAMES.chainIn(vm.vmId), VM_NAMES.chainOut(vm.vmId)];
  if (preroutingLayout(b) && vm.mac !== undefined) {
    cmds.push(x.cmd.delete({ element: { family: fam, table, name: VM_NAMES.inMacMap, elem: [vm.mac] } }));
    cmds.push(x.cmd.delete({ element: { family: fam, table, name: VM_NAMES.macSet, elem: [vm.mac] } }));
    chains.push(VM_NAMES.chainInPre(vm.vmId));
  }
  for (const chain of chains) {
    cmds.push(x.cmd.flush({ chain: { family: fam, table, name: chain } }));
    cmds.push(x.cmd.delete({ chain: { family: fam, table, name: chain } }));
  }
  return cmds;
}
