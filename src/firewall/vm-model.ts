/**
 * The VM managers' firewall model: rules, a VM's spec, its validation
 * (issues name the VM, the rule id and the field), the backends that
 * implement REJECT and connection state, and the names of the layout. The
 * compilation to chains is vm.ts.
 * @module
 */

import { z } from 'zod';
import { fromZodIssues, type ValidationIssue } from '../errors.js';
import { IfName, IpPrefix, parsePrefix, Port } from '../validate.js';
import { MacAddress, RuleId } from './spec.js';

/** One rule in the VM managers' model. IN = towards the VM, OUT = from the VM. */
export const VmFirewallRule = z
  .object({
    id: RuleId,
    /** Free text for people (never sent to a tool): no control characters, quotes, backslash, `;`, `$` or backticks. */
    name: z.string().max(200).regex(/^[^\x00-\x1f\x7f"'`;$\\]*$/, 'must not contain control characters, quotes, backslash, ; $ or backticks'),
    action: z.enum(['ACCEPT', 'DROP', 'REJECT']),
    direction: z.enum(['IN', 'OUT', 'INOUT']),
    /** Lower runs first. */
    priority: z.number().int(),
    protocol: z.enum(['tcp', 'udp', 'icmp', 'all']),
    srcPortStart: Port.optional(),
    srcPortEnd: Port.optional(),
    dstPortStart: Port.optional(),
    dstPortEnd: Port.optional(),
    /** Address or CIDR, IPv4 or IPv6. */
    srcIpAddr: IpPrefix.optional(),
    dstIpAddr: IpPrefix.optional(),
  })
  .strict();
/** A VM firewall rule (input type). */
export type FirewallRule = z.input<typeof VmFirewallRule>;

/** A VM's firewall. */
export const VmSpecSchema = z
  .object({
    /** Stable VM id; becomes part of chain names (letters, digits, `_ -`, at most 32). */
    vmId: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_-]{0,31}$/, 'must be 1-32 letters, digits, _ or - (not starting with -)'),
    /** The VM's tap interface on the bridge. */
    iface: IfName,
    /** The VM's MAC address (anti-spoofing). */
    mac: MacAddress.optional(),
    /** The VM's addresses or prefixes (anti-spoofing). */
    ips: z.array(IpPrefix).optional(),
    rules: z.array(z.unknown()),
    /** What happens to traffic no rule decides: one policy, or one per direction. Default ACCEPT. */
    defaultPolicy: z.union([z.enum(['ACCEPT', 'DROP']), z.object({ in: z.enum(['ACCEPT', 'DROP']), out: z.enum(['ACCEPT', 'DROP']) }).strict()]).optional(),
    /** Only the VM's MAC/IPs may leave its tap (default: on when `mac` or `ips` is given). */
    antiSpoof: z.boolean().optional(),
  })
  .strict();
/** Input of `attachVm` / `updateVm`. */
export interface VmSpec {
  vmId: string;
  iface: string;
  mac?: string;
  ips?: string[];
  rules: FirewallRule[];
  defaultPolicy?: 'ACCEPT' | 'DROP' | { in: 'ACCEPT' | 'DROP'; out: 'ACCEPT' | 'DROP' };
  antiSpoof?: boolean;
}
/** A validated VM spec. */
export interface ParsedVm extends Omit<VmSpec, 'rules'> {
  rules: z.output<typeof VmFirewallRule>[];
}

/** How REJECT and connection state are implemented on this kernel. */
export interface VmBackends {
  /**
   * `native`: `reject` in the bridge table (needs CONFIG_NFT_BRIDGE_REJECT);
   * `br_netfilter`: the bridge rule marks the frame and an inet companion table
   * rejects it in the IP forward/input hook (needs bridge-nf-call-iptables=1 and a
   * route from the host back to the sender); `drop`: REJECT is compiled as DROP.
   */
  reject: 'native' | 'br_netfilter' | 'drop';
  /**
   * `native`: `ct state` in the bridge table (needs nf_conntrack_bridge);
   * `br_netfilter`: an inet prerouting chain marks established/related packets
   * and the VM chains accept them; `off`: stateless.
   */
  stateful: 'native' | 'br_netfilter' | 'off';
  /** Mark bit used for REJECT by the br_netfilter backend. */
  rejectMark: number;
  /** Mark bit used for established/related by the br_netfilter backend. */
  establishedMark: number;
}

/** Names used by the VM layout. */
export const VM_NAMES = {
  inMap: 'vm_in',
  outMap: 'vm_out',
  /** MAC : verdict, native REJECT layout: unicast frames to a VM, judged in prerouting. */
  inMacMap: 'vm_in_mac',
  /** MACs judged in prerouting (native REJECT layout). */
  macSet: 'vm_macs',
  prerouting: 'vm_prerouting',
  forward: 'vm_forward',
  input: 'vm_input',
  output: 'vm_output',
  chainIn: (vmId: string) => `vm_${vmId}_in`,
  /** IN chain evaluated in prerouting, where REJECT works (native REJECT layout, VMs with a MAC). */
  chainInPre: (vmId: string) => `vm_${vmId}_inp`,
  chainOut: (vmId: string) => `vm_${vmId}_out`,
};

/** True when the layout judges VM traffic in the bridge prerouting hook (native REJECT). */
export function preroutingLayout(b: VmBackends): boolean {
  return b.reject === 'native';
}

/** The inet companion table of a bridge table (br_netfilter backends). */
export function companionTable(table: string): string {
  return `${table}_br`.slice(0, 64);
}

/** Validate a VM spec; issues name the VM, the rule id and the field. */
export function parseVm(input: unknown): { ok: true; vm: ParsedVm } | { ok: false; issues: ValidationIssue[] } {
  const top = VmSpecSchema.safeParse(input);
  const issues: ValidationIssue[] = [];
  if (!top.success) {
    return { ok: false, issues: fromZodIssues('VM', top.error.issues).issues };
  }
  const vm = top.data;
  const rules: z.output<typeof VmFirewallRule>[] = [];
  const seen = new Set<string>();
  vm.rules.forEach((raw, i) => {
    const rid = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : `#${i}`;
    const base = `vm ${vm.vmId}.rule ${rid}`;
    const r = VmFirewallRule.safeParse(raw);
    if (!r.success) {
      for (const iss of r.error.issues) {
        const field = iss.path.map(String).join('.');
        const msg = iss.code === 'invalid_value' && field === 'action' ? `unknown action ${typeof (raw as { action?: unknown }).action === 'string' ? JSON.stringify((raw as { action: string }).action) : `(a ${typeof (raw as { action?: unknown }).action})`} (ACCEPT, DROP or REJECT)` : iss.message;
        if (iss.code === 'unrecognized_keys') for (const u of fromZodIssues('', [iss]).issues) issues.push({ path: `${base}.${u.path}`, message: u.message });
        else issues.push({ path: `${base}.${field}`, message: msg });
      }
      return;
    }
    const rule = r.data;
    if (seen.has(rule.id)) issues.push({ path: `${base}.id`, message: 'duplicate rule id' });
    seen.add(rule.id);
    for (const side of ['src', 'dst'] as const) {
      const s = rule[`${side}PortStart`];
      const e = rule[`${side}PortEnd`];
      if (e !== undefined && s === undefined) issues.push({ path: `${base}.${side}PortEnd`, message: `needs ${side}PortStart` });
      if (s !== undefined && e !== undefined && s > e) issues.push({ path: `${base}.${side}PortStart`, message: `start ${s} is greater than end ${e}` });
      if ((s !== undefined || e !== undefined) && (rule.protocol === 'icmp' || rule.protocol === 'all')) {
        issues.push({ path: `${base}.${side}PortStart`, message: `ports cannot be used with protocol ${rule.protocol}` });
      }
    }
    const fs = rule.srcIpAddr ? parsePrefix(rule.srcIpAddr)?.family : undefined;
    const fd = rule.dstIpAddr ? parsePrefix(rule.dstIpAddr)?.family : undefined;
    if (fs && fd && fs !== fd) issues.push({ path: `${base}.dstIpAddr`, message: `IPv${fd} destination with an IPv${fs} source: one rule matches one address family` });
    rules.push(rule);
  });
  if (issues.length) return { ok: false, issues };
  const out: ParsedVm = { vmId: vm.vmId, iface: vm.iface, rules };
  if (vm.mac) out.mac = vm.mac.toLowerCase();
  if (vm.ips) out.ips = vm.ips;
  if (vm.defaultPolicy) out.defaultPolicy = vm.defaultPolicy;
  if (vm.antiSpoof !== undefined) out.antiSpoof = vm.antiSpoof;
  return { ok: true, vm: out };
}

/** Default mark bits of the br_netfilter backends. */
export const DEFAULT_REJECT_MARK = 0x00400000;
/** Default mark bit for established/related (br_netfilter stateful backend). */
export const DEFAULT_ESTABLISHED_MARK = 0x00800000;
