/**
 * Input shapes of the Firewall builder, as zod schemas (the single source of
 * truth; TypeScript types are inferred from them). Everything a caller gives
 * the builder is parsed with these before it can reach nft.
 * @module
 */
import { z } from 'zod';
import { PlanOwner } from '../plan/ownership.js';
import { Comment, IfName, IfNamePattern, NftName, parsePrefix, Port } from '../validate.js';

/** Table families. */
export const FamilySchema = z.enum(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);

/** The characters of a rule id (see {@link RuleId}). */
export const RULE_ID_CHARS = /^[A-Za-z0-9_][A-Za-z0-9_.:@+=-]*$/;

/** A stable, caller-given id of a rule (carried in the rule's comment as `nf:<id>`). */
export const RuleId = z
  .string()
  .min(1, 'must not be empty')
  .max(96, 'must be at most 96 characters')
  .regex(RULE_ID_CHARS, 'must start with a letter, digit or _ and contain only letters, digits and _ . : @ + = -');

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
/** An Ethernet address `aa:bb:cc:dd:ee:ff`. */
export const MacAddress = z.string().regex(MAC, 'must be an Ethernet address like 02:00:00:00:00:01');

/** A reference to a named set, `@name`. */
export const SetRef = z.string().regex(/^@[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'must be @ followed by a set name');

/** An address, CIDR prefix, `a-b` range of the same family, or `@set`. */
export const AddrItem = z.string().refine((s) => {
  if (s.startsWith('@')) return SetRef.safeParse(s).success;
  const dash = s.indexOf('-');
  if (dash > 0) {
    const a = parsePrefix(s.slice(0, dash));
    const b = parsePrefix(s.slice(dash + 1));
    return !!a && !!b && !a.explicit && !b.explicit && a.family === b.family;
  }
  return parsePrefix(s) !== undefined;
}, 'must be an IPv4/IPv6 address, a CIDR prefix, a range a-b of one family, or @set');

/** One address match value or a list of them (a list becomes an anonymous set). */
export const AddrMatch = z.union([AddrItem, z.array(AddrItem).min(1, 'must not be empty')]);

/** A port range. */
export const PortRange = z
  .object({ from: Port, to: Port })
  .strict()
  .refine((r) => r.from <= r.to, { message: 'from must be <= to', path: ['to'] });

/** A port, a range, a list of both, or `@set`. */
export const PortMatch = z.union([Port, PortRange, SetRef, z.array(z.union([Port, PortRange])).min(1, 'must not be empty')]);

/** Layer-4 protocols for the `protocol` match. */
export const L4Proto = z.enum(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'udplite', 'esp', 'ah', 'gre']);

/** Connection tracking states. */
export const CtState = z.enum(['new', 'established', 'related', 'invalid', 'untracked']);

/** A mark match value: a number, or a value under a mask. */
export const MarkMatch = z.union([z.number().int().min(0).max(0xffffffff), z.object({ value: z.number().int().min(0).max(0xffffffff), mask: z.number().int().min(1).max(0xffffffff) }).strict()]);

/** Rate for `limit` and meters. */
export const Rate = z
  .object({
    /** Packets (or bytes with `unit`) per `per`. */
    rate: z.number().int().min(1),
    per: z.enum(['second', 'minute', 'hour', 'day', 'week']),
    /** Burst size (packets, or bytes with `unit`). */
    burst: z.number().int().min(0).optional(),
    /** Byte rates: `bytes`, `kbytes`, `mbytes`. Packets when absent. */
    unit: z.enum(['bytes', 'kbytes', 'mbytes']).optional(),
    /** Match when the rate is exceeded (`limit rate over`), instead of while under it. */
    over: z.boolean().optional(),
  })
  .strict();

/** Keys a meter or set update can use. */
export const MeterKey = z.enum(['saddr', 'daddr', 'ip saddr', 'ip daddr', 'ip6 saddr', 'ip6 daddr', 'ether saddr', 'iifname']);

const NatAddr = z.string().refine((s) => parsePrefix(s) !== undefined && !parsePrefix(s)?.explicit, 'must be an IPv4 or IPv6 address');

/** The actions written as one word (`action: 'drop'`). */
export const ActionWord = z.enum(['accept', 'drop', 'return', 'continue', 'masquerade']);

/** What a rule does when it matches. */
export const Action = z.union([
  ActionWord,
  z.object({ type: z.literal('accept') }).strict(),
  z.object({ type: z.literal('drop') }).strict(),
  z.object({ type: z.literal('return') }).strict(),
  z.object({
    type: z.literal('reject'),
    /** `tcp-reset`, or an ICMP family with `code` (e.g. `port-unreachable`, `admin-prohibited`). Default: icmpx port-unreachable. */
    with: z.enum(['tcp-reset', 'icmp', 'icmpv6', 'icmpx']).optional(),
    code: z.enum(['port-unreachable', 'host-unreachable', 'net-unreachable', 'prot-unreachable', 'admin-prohibited', 'no-route', 'addr-unreachable']).optional(),
  }).strict(),
  z.object({ type: z.literal('jump'), chain: NftName }).strict(),
  z.object({ type: z.literal('goto'), chain: NftName }).strict(),
  z.object({
    type: z.literal('dnat'),
    /** One address, or several to load-balance across (round robin, `numgen inc`). */
    to: z.union([NatAddr, z.array(NatAddr).min(1)]),
    port: z.union([Port, PortRange]).optional(),
  }).strict(),
  z.object({ type: z.literal('snat'), to: NatAddr, port: z.union([Port, PortRange]).optional() }).strict(),
  z.object({ type: z.literal('masquerade'), port: z.union([Port, PortRange]).optional() }).strict(),
  z.object({ type: z.literal('redirect'), port: Port.optional() }).strict(),
  z.object({
    type: z.literal('vmap'),
    key: z.enum(['saddr', 'daddr', 'sport', 'dport', 'iifname', 'oifname', 'l4proto', 'ether saddr']),
    map: SetRef,
  }).strict(),
]);

/** One rule of a Firewall, written with typed fields rather than nft text. */
export const RuleSpec = z
  .object({
    /** Stable id (unique within the firewall), kept in the rule's comment as `nf:<id>`. */
    id: RuleId,
    /** Free text appended to the comment after the id. */
    comment: Comment.optional(),
    iif: IfNamePattern.optional(),
    oif: IfNamePattern.optional(),
    iifname: z.union([IfNamePattern, z.array(IfNamePattern).min(1)]).optional(),
    oifname: z.union([IfNamePattern, z.array(IfNamePattern).min(1)]).optional(),
    etherSaddr: z.union([MacAddress, SetRef, z.array(MacAddress).min(1)]).optional(),
    etherDaddr: z.union([MacAddress, SetRef, z.array(MacAddress).min(1)]).optional(),
    /** Network family restriction (for `inet`/`bridge`/`netdev` tables); inferred from addresses otherwise. */
    nfproto: z.enum(['ipv4', 'ipv6']).optional(),
    saddr: AddrMatch.optional(),
    daddr: AddrMatch.optional(),
    /** Layer-4 protocol, or several (ports then match with the generic transport header `th`). */
    protocol: z.union([L4Proto, z.array(L4Proto).min(1)]).optional(),
    sport: PortMatch.optional(),
    dport: PortMatch.optional(),
    ctState: z.array(CtState).min(1).optional(),
    icmpType: z.array(z.string().regex(/^[a-z][a-z-]{0,31}$/, 'must be an ICMP type name like echo-request')).min(1).optional(),
    icmpv6Type: z.array(z.string().regex(/^[a-z][a-z-]{0,31}$/, 'must be an ICMPv6 type name like echo-request')).min(1).optional(),
    mark: MarkMatch.optional(),
    ctMark: MarkMatch.optional(),
    /** Further meta matches, e.g. `{ key: 'pkttype', value: 'broadcast' }`, `{ key: 'skuid', value: 1000 }`. */
    meta: z
      .array(
        z.object({
          key: z.enum(['length', 'protocol', 'nfproto', 'l4proto', 'priority', 'skuid', 'skgid', 'pkttype', 'cpu', 'iiftype', 'oiftype', 'cgroup', 'iifgroup', 'oifgroup', 'ibrname', 'obrname']),
          value: z.union([z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,31}$/, 'must be a meta value like broadcast (letters, digits, _ . : -, not starting with . or -)'), z.number().int().min(0)]),
          op: z.enum(['==', '!=']).optional(),
        }).strict(),
      )
      .optional(),
    /** `ct count over N`: match when the source has more than N connections (per rule). */
    ctCountOver: z.number().int().min(0).max(0xffffffff).optional(),
    /** Meter (dynamic set updated from the packet path), e.g. SSH brute-force guard. */
    meter: z
      .object({
        name: NftName,
        key: MeterKey,
        limit: Rate,
        /** Seconds an idle entry stays in the meter. */
        timeout: z.number().int().min(1).optional(),
        size: z.number().int().min(1).optional(),
      })
      .strict()
      .optional(),
    /** Add (or refresh) the packet's key in a named set from the packet path. */
    setUpdate: z.object({ set: SetRef, key: MeterKey, op: z.enum(['add', 'update']).optional() }).strict().optional(),
    limit: Rate.optional(),
    quota: z.object({ bytes: z.number().int().min(1), over: z.boolean().optional() }).strict().optional(),
    /** A counter on the rule (default true; `status()` reads it). */
    counter: z.boolean().optional(),
    log: z.object({ prefix: Comment.optional(), level: z.enum(['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug']).optional() }).strict().optional(),
    setMark: z.number().int().min(0).max(0xffffffff).optional(),
    setCtMark: z.number().int().min(0).max(0xffffffff).optional(),
    /** What to do on match; no verdict (continue) when absent. */
    action: Action.optional(),
  })
  .strict();

/** Input type of {@link RuleSpec}. */
export type RuleInput = z.input<typeof RuleSpec>;
/** Parsed rule. */
export type Rule = z.output<typeof RuleSpec>;
/** Rule action. */
export type RuleAction = z.output<typeof Action>;

/** Base-chain hooks. */
export const Hook = z.enum(['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress']);

/** A chain: base chain when `hook` is given, regular chain (for jump/goto) otherwise. */
export const ChainSpec = z
  .object({
    type: z.enum(['filter', 'nat', 'route']).optional(),
    hook: Hook.optional(),
    priority: z.number().int().min(-1000).max(1000).optional(),
    policy: z.enum(['accept', 'drop']).optional(),
    /** Device for netdev ingress/egress chains. */
    device: IfName.optional(),
  })
  .strict()
  .refine((c) => c.hook !== undefined || (c.type === undefined && c.policy === undefined && c.priority === undefined), {
    message: 'type, priority and policy need a hook (a regular chain has none)',
    path: ['hook'],
  });
/** Input type of {@link ChainSpec}. */
export type ChainInput = z.input<typeof ChainSpec>;

/** Data types usable as set keys and map values. */
export const SetType = z.enum(['ipv4_addr', 'ipv6_addr', 'inet_service', 'ether_addr', 'inet_proto', 'ifname', 'mark']);

/** One set element: a value, a concatenation (array), or one with a timeout in seconds. */
export const ElementValue = z.union([z.string().max(100), z.number().int().min(0), z.array(z.union([z.string().max(100), z.number().int().min(0)])).min(2)]);
/** A set element, optionally with its own timeout. */
export const SetElement = z.union([ElementValue, z.object({ value: ElementValue, timeout: z.number().int().min(1).optional() }).strict()]);

/** A named set. */
export const SetSpec = z
  .object({
    /** Key type, or several for a concatenation. */
    type: z.union([SetType, z.array(SetType).min(2)]),
    /** Holds CIDR prefixes and ranges. */
    interval: z.boolean().optional(),
    /** Default element lifetime in seconds (makes it a timeout set). */
    timeout: z.number().int().min(1).optional(),
    /** Per-element packet/byte counters (read by `status()`). */
    counter: z.boolean().optional(),
    size: z.number().int().min(1).optional(),
    elements: z.array(SetElement).optional(),
  })
  .strict();
/** Input type of {@link SetSpec}. */
export type SetInput = z.input<typeof SetSpec>;

/** A verdict in a verdict map. */
export const VerdictValue = z.union([z.enum(['accept', 'drop', 'return', 'continue']), z.object({ jump: NftName }).strict(), z.object({ goto: NftName }).strict()]);

/** A named map (data map or verdict map). */
export const MapSpec = z
  .object({
    type: z.union([SetType, z.array(SetType).min(2)]),
    /** `verdict` for a verdict map, else the data type. */
    map: z.union([z.literal('verdict'), SetType]),
    interval: z.boolean().optional(),
    timeout: z.number().int().min(1).optional(),
    elements: z.array(z.tuple([ElementValue, z.union([VerdictValue, z.string().max(100), z.number().int()])])).optional(),
  })
  .strict();
/** Input type of {@link MapSpec}. */
export type MapInput = z.input<typeof MapSpec>;

/**
 * The forwarding fast path of a Firewall: an nftables flowtable over
 * `devices`, and an offload rule for established TCP/UDP flows in a forward
 * chain of its own that runs after every forward chain of the firewall, so
 * only flows the firewall's forward rules accepted are offloaded. Offloaded
 * packets skip the whole netfilter forward path (every table's prerouting,
 * forward and postrouting chains) on the listed devices. Every `apply()` and
 * every live change (elements, rules) flushes the offloaded flows in the same
 * transaction, so a flow the new rules forbid never keeps forwarding. See
 * docs/firewall.md, "Fast path (flowtables)".
 */
export const FastPathSpec = z
  .object({
    /** Interfaces whose forwarded flows may be offloaded; a flow is offloaded only when it enters and leaves through listed devices. */
    devices: z
      .array(IfName)
      .min(1, 'must list at least one device')
      .max(256, 'must list at most 256 devices (the kernel limit of a flowtable)')
      .refine((d) => new Set(d).size === d.length, 'must not list a device twice'),
    /**
     * What to do when the kernel has no flowtables (capability
     * `nft.features.flowtable`): `auto` (default) compiles no fast path and
     * records why in `plan.decisions`; `required` refuses with an
     * `UnsupportedError` and nothing is applied.
     */
    mode: z.enum(['auto', 'required']).optional(),
    /** Name of the flowtable and of its offload chain (default `fastpath`). */
    name: NftName.optional(),
    /**
     * Priority of the offload chain in the forward hook (default 1001, after
     * any chain a Firewall can declare). Must be greater than the priority of
     * every forward chain of this firewall; chains of other tables at a
     * higher priority see only the first packets of an offloaded flow.
     */
    priority: z.number().int().min(-999).max(10_000).optional(),
  })
  .strict();
/** Input type of {@link FastPathSpec}. */
export type FastPathInput = z.input<typeof FastPathSpec>;
/** Parsed {@link FastPathSpec}. */
export type FastPath = z.output<typeof FastPathSpec>;

/** Firewall constructor options. */
export const FirewallOptions = z
  .object({
    /** Table name (netfence owns the table: it never touches tables it did not create). */
    table: NftName,
    family: FamilySchema.optional(),
    /** Network namespace (a name under /run/netns); the current one if absent. */
    netns: z.string().optional(),
    /** Plan owner recorded in the table (default `firewall:<table>`). */
    owner: PlanOwner.optional(),
  })
  .strict();
/** Input type of {@link FirewallOptions}. */
export type FirewallInit = z.input<typeof FirewallOptions>;
