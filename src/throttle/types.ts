/**
 * Input shapes of the Throttler (zod schemas, the single source of truth) and the
 * types inferred from them.
 * @module
 */
import { z } from 'zod';
import { IfName, IpPrefix, NetnsName, Port, parsePrefix } from '../validate.js';
import { BurstSize, QuotaSize, Rate } from './rate.js';

/** Which way the traffic flows through the interface: sent (upload) or received (download). */
export type Direction = 'egress' | 'ingress';

/** Names of the throttling backends. */
export const BACKEND_NAMES = ['tc-htb', 'ifb-tc', 'nft-limit', 'tc-police'] as const;
/** A throttling backend name. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** A cgroup v2 path relative to the cgroup2 root, e.g. `system.slice/app.service`. */
export const CgroupPath = z
  .string()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(/^[A-Za-z0-9_@:+=.-]+(\/[A-Za-z0-9_@:+=.-]+)*$/, 'must be a relative cgroup path (letters, digits, _ @ : + = . -, separated by /)')
  .refine((s) => !s.split('/').some((p) => p === '.' || p === '..'), 'must not contain . or .. components')
  .refine((s) => !s.split('/').some((p) => p.startsWith('-')), 'components must not start with -');

/** What traffic a limit applies to. Addresses and ports are those in the packet headers. */
export const MatchSchema = z
  .strictObject({
    /** Source address or CIDR prefix (IPv4 or IPv6). */
    src: IpPrefix.optional(),
    /** Destination address or CIDR prefix (IPv4 or IPv6). */
    dst: IpPrefix.optional(),
    /** Source port (TCP/UDP). */
    sport: Port.optional(),
    /** Destination port (TCP/UDP). */
    dport: Port.optional(),
    /** Transport protocol. */
    protocol: z.enum(['tcp', 'udp', 'icmp', 'icmpv6']).optional(),
    /** A process id: netfence moves it into its own cgroup v2 group and limits that group. */
    pid: z.number().int('must be an integer').min(1, 'must be a positive pid').max(4_194_304, 'must be a pid (<= 4194304)').optional(),
    /** An existing cgroup v2 path (relative to the cgroup2 root) whose sockets are limited. */
    cgroup: CgroupPath.optional(),
  })
  .superRefine((m, ctx) => {
    const fams = [m.src, m.dst].filter((a): a is string => a !== undefined).map((a) => parsePrefix(a)?.family);
    if (fams.length === 2 && fams[0] !== fams[1]) ctx.addIssue({ code: 'custom', path: ['dst'], message: 'src and dst must be the same address family' });
    if (m.pid !== undefined && m.cgroup !== undefined) ctx.addIssue({ code: 'custom', path: ['cgroup'], message: 'give either pid or cgroup, not both' });
    if ((m.sport !== undefined || m.dport !== undefined) && (m.protocol === 'icmp' || m.protocol === 'icmpv6'))
      ctx.addIssue({ code: 'custom', path: ['protocol'], message: 'ports need protocol tcp or udp (or no protocol: both)' });
    if (m.protocol === 'icmp' && fams.includes(6)) ctx.addIssue({ code: 'custom', path: ['protocol'], message: 'icmp does not go with IPv6 addresses (use icmpv6)' });
    if (m.protocol === 'icmpv6' && fams.includes(4)) ctx.addIssue({ code: 'custom', path: ['protocol'], message: 'icmpv6 does not go with IPv4 addresses (use icmp)' });
  });
/** What traffic a limit applies to (input form). */
export type MatchInput = z.input<typeof MatchSchema>;
/** What traffic a limit applies to (validated). */
export type Match = z.output<typeof MatchSchema>;

/** A byte quota: after `bytes`, matching traffic is dropped (default) or only counted and logged. */
export const QuotaSchema = z.union([
  QuotaSize.transform((bytes) => ({ bytes, action: 'drop' as const })),
  z.strictObject({ bytes: QuotaSize, action: z.enum(['drop', 'log']).default('drop') }),
]);

/** The request passed to {@link Throttler.limit}. */
export const LimitSchema = z
  .strictObject({
    /** Interface the traffic passes (in the Throttler's netns). */
    iface: IfName,
    /** `egress` = sent through the interface (upload), `ingress` = received (download). */
    direction: z.enum(['egress', 'ingress']),
    /** Target rate: `'10mbit'`, `'1.5MB/s'` or bits per second. Optional only when a quota is given. */
    rate: Rate.optional(),
    /** Token bucket size; derived from the rate when omitted (recommended). */
    burst: BurstSize.optional(),
    /** Which traffic; omit for the whole interface. */
    match: MatchSchema.optional(),
    /** Force a backend instead of the automatic choice. */
    backend: z.enum(BACKEND_NAMES).optional(),
    /** A byte quota for the matched traffic (nftables quota). */
    quota: QuotaSchema.optional(),
    /**
     * What the rate counts. `tcp-payload` (default): TCP payload throughput of
     * full-size segments — what iperf3 or a download shows; for shapers netfence
     * raises the kernel rate by the header overhead for the interface MTU (policers
     * need no compensation, measured). `packets`: the rate is given to the kernel as
     * is (tc counts Ethernet frames, nftables IP packets).
     */
    accounting: z.enum(['tcp-payload', 'packets']).default('tcp-payload'),
  })
  .superRefine((l, ctx) => {
    if (l.rate === undefined && l.quota === undefined) ctx.addIssue({ code: 'custom', path: ['rate'], message: 'give a rate, a quota, or both' });
  });
/** The request passed to {@link Throttler.limit} (input form). */
export type LimitRequest = z.input<typeof LimitSchema>;
/** A validated, normalized limit request (rates in bits/s, sizes in bytes). */
export type LimitSpec = z.output<typeof LimitSchema>;

/** Options of `new Throttler()`. */
export const ThrottlerOptionsSchema = z
  .strictObject({
    /** Network namespace to work in (name under /run/netns); the current one when omitted. */
    netns: NetnsName.optional(),
    /** Name of this throttler: its nft table is `netfence_throttle_<name>`. Default `default`. */
    name: z.string().regex(/^[a-z0-9_]{1,24}$/, 'must be 1-24 characters a-z 0-9 _').default('default'),
  })
  .prefault({});
/** Options of `new Throttler()`. */
export type ThrottlerOptions = z.input<typeof ThrottlerOptionsSchema>;

/** Input of {@link LimitHandle.update}. */
export const UpdateSchema = z.strictObject({ rate: Rate, burst: BurstSize.optional() });
/** Input of {@link LimitHandle.update}. */
export type UpdateRequest = z.input<typeof UpdateSchema>;

/** Counters of one limit. */
export interface ThrottleStats {
  /** Bytes that passed the limit. */
  bytes: number;
  /** Packets that passed the limit. */
  packets: number;
  /** Packets dropped by the limit (shaper queue overflow, policer or quota). */
  drops: number;
  /** Bytes waiting in the shaper queue right now (0 for policers). */
  backlog: number;
  /** Packets the shaper delayed (HTB overlimits), when known. */
  overlimits?: number | undefined;
  /** For quotas: bytes counted against the quota so far. */
  quotaUsed?: number | undefined;
  /** For quotas: whether the quota is exhausted. */
  quotaExceeded?: boolean | undefined;
}

/** One row of {@link Throttler.listBackends}. */
export interface BackendInfo {
  name: BackendName;
  /** Higher wins when several are available. */
  priority: number;
  /** Directions it can limit. */
  directions: Direction[];
  /** Kind of limiting: shaping (queues, smooth) or policing (drops above the rate). */
  kind: 'shaping' | 'policing';
  /** Whether it can be used on this host / netns. */
  available: boolean;
  /** Why it is (un)available. */
  reason: string;
  /** Matches it supports. */
  matches: string;
  /** What it cannot do, said plainly. */
  limitations: string[];
}
