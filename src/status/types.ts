/**
 * The types of {@link readStatus}: what netfence owns in one network
 * namespace, as plain data with numbers (counters are plain `number`s, so a
 * metrics exporter can map them one to one).
 * @module
 */

/** Which netfence class a table's owner names (`firewall:web` → `firewall`). */
export type OwnerKind = 'firewall' | 'throttle' | 'xdp-blocklist' | 'dpi' | 'smartproxy' | 'other';

/** One named counter, or the counter of one rule. */
export interface CounterStatus {
  /** `named`: a counter object; `rule`: a rule's `counter` statement. */
  source: 'named' | 'rule';
  /** The counter object's name, or for a rule its chain and handle (`input#12`). */
  name: string;
  /** The counter object's or the rule's comment. */
  comment?: string | undefined;
  /** Chain of a rule counter. */
  chain?: string | undefined;
  packets: number;
  bytes: number;
}

/** One chain of an owned table. */
export interface ChainStatus {
  name: string;
  /** Base chains: `filter`, `nat`, `route`. */
  type?: string | undefined;
  hook?: string | undefined;
  priority?: number | undefined;
  /** Base chains: `accept` or `drop`. */
  policy?: string | undefined;
  /** netdev chains: the interface. */
  device?: string | undefined;
  rules: number;
}

/** One set or map of an owned table. */
export interface SetStatus {
  name: string;
  kind: 'set' | 'map';
  /** Key type (`ipv4_addr`, or a concatenation joined by ` . `). */
  type: string;
  /** Map value type. */
  map?: string | undefined;
  flags: string[];
  /** Declared maximum size, when set. */
  size?: number | undefined;
  /** Elements as nft lists them; undefined when they could not be counted (see `countError`). */
  elements: number | undefined;
  /** How `elements` was obtained: the kernel's counter, a netlink dump counted in place, or an nft listing (hosts without netlink, e.g. FakeHost). */
  countMethod: 'kernel-count' | 'dump' | 'listing' | undefined;
  /**
   * True when `elements` is a lower bound: without the kernel's counter
   * (Linux < 6.16, interval sets) a dump stops after `dumpLimit` entries
   * rather than walk a million-element set.
   */
  elementsAtLeast?: boolean | undefined;
  /** Why counting failed. */
  countError?: string | undefined;
}

/** One table carrying a netfence ownership mark. */
export interface TableStatus {
  family: string;
  name: string;
  /** The owner recorded in the table's mark (`firewall:web`, `throttle:default`, ...). */
  owner: string;
  /** The class the owner names. */
  kind: OwnerKind;
  chains: ChainStatus[];
  /** Rules in all chains. */
  rules: number;
  sets: SetStatus[];
  /** Named counters (the ownership mark excluded) and rule counters. */
  counters: CounterStatus[];
  /** Named quotas. */
  quotas: { name: string; bytes: number; used: number }[];
}

/** One Throttler limit, read from its nft table and/or its tc objects. */
export interface LimitStatus {
  /** Limit number within its Throttler (`l<id>`). */
  id: number;
  /** The Throttler's owner (`throttle:<name>`), when the limit has an owned nft table. */
  owner?: string | undefined;
  /** `nft-limit`, `tc-htb`, `ifb-tc` or `tc-police`, as recognised in the kernel. */
  backend: 'nft-limit' | 'tc-htb' | 'ifb-tc' | 'tc-police';
  interface: string | undefined;
  direction: 'egress' | 'ingress' | undefined;
  /** The rate the kernel enforces, bits per second (after netfence's accounting factor). */
  rateBps: number | undefined;
  /** Device holding the tc objects (the interface, or the IFB for ingress). */
  device?: string | undefined;
  /** The limit's nft table, when it has one. */
  table?: string | undefined;
  /** Bytes and packets let through. */
  bytes: number;
  packets: number;
  /** Packets dropped (policed, over quota, or dropped by the shaper). */
  drops: number;
  /** Bytes queued in the shaper now (HTB). */
  backlog?: number | undefined;
  quotaBytes?: number | undefined;
  quotaUsed?: number | undefined;
}

/** An XDP program attached to an interface of the namespace. */
export interface XdpProgramStatus {
  interface: string;
  mode: 'native' | 'generic' | 'offload' | 'multi';
  programId: number;
  programName: string;
  /** The pinned netfence blocklist whose program this is, if any. */
  blocklist?: string | undefined;
}

/** A netfence XDP blocklist (pinned maps under /sys/fs/bpf/netfence/<name>/) or its nft fallback table. */
export interface XdpBlocklistStatus {
  name: string;
  backend: 'xdp' | 'nft';
  /** Where the maps are pinned (xdp backend). */
  pinDir?: string | undefined;
  /** Interfaces of this namespace running its program (xdp) or hooked by its table (nft). */
  interfaces: string[];
  /** Live (unexpired) entries. */
  entries: number | undefined;
  passed: { packets: number; bytes: number };
  dropped: { packets: number; bytes: number };
  /** Expired entries seen by the program (xdp). */
  expired?: number | undefined;
  /** How the entries were counted. */
  countMethod: 'map-batch' | 'kernel-count' | 'dump' | 'listing' | undefined;
  /** Why the maps could not be read. */
  error?: string | undefined;
}

/** DpiBlocker steering found in the namespace. */
export interface SteeringStatus {
  /** `nft`: an owned table with `queue` rules; `xtables`: a NETFENCE-* chain in iptables-nft's filter table. */
  form: 'nft' | 'xtables';
  /** `inet netfence_dpi`, `ip filter`, ... */
  table: string;
  owner?: string | undefined;
  chains: string[];
  rules: number;
  /** Queue numbers the rules send to (nft form), as `[first, last]`. */
  queues?: [number, number] | undefined;
  /** Packets and bytes counted by the steering rules' counters, when they have any. */
  packets?: number | undefined;
  bytes?: number | undefined;
}

/** One bound NFQUEUE queue (`/proc/net/netfilter/nfnetlink_queue` of the namespace). */
export interface QueueStatus {
  queue: number;
  portid: number;
  /** Packets waiting for a verdict now. */
  waiting: number;
  /** Packets queued since the socket bound (the last packet id). */
  queued: number;
  /** Dropped because the queue was full. */
  dropped: number;
  /** Not delivered to the socket (receive buffer full). */
  userDropped: number;
}

/** One journal entry. */
export interface JournalStatus {
  id: string;
  kind: string;
  owner: string;
  netns: string | undefined;
  pid: number;
  /** Whether the writing process still runs (pid and start time match). */
  alive: boolean;
  phase: string;
  createdAt: string;
  tables: string[];
  steps: number;
  stepsStarted: number;
}

/** One lock file, and whether a process holds it now. */
export interface LockStatus {
  path: string;
  /** The namespace the lock serialises (undefined: the machine's own or a named key). */
  netns: string | undefined;
  held: boolean;
  pid?: number | undefined;
  what?: string | undefined;
  since?: string | undefined;
}

/** Everything netfence owns in one network namespace, read from the kernel and the journal. */
export interface HostStatus {
  /** The namespace read (undefined: the caller's own). */
  netns: string | undefined;
  /** When it was read (ISO time). */
  readAt: string;
  /** The nft in use (from the listing's metainfo). */
  nftVersion?: string | undefined;
  /** Tables carrying a netfence ownership mark. */
  tables: TableStatus[];
  limits: LimitStatus[];
  xdp: { programs: XdpProgramStatus[]; blocklists: XdpBlocklistStatus[] };
  dpi: { steering: SteeringStatus[]; queues: QueueStatus[] };
  journal: JournalStatus[];
  locks: LockStatus[];
  /** Parts that could not be read, one line each (the rest is still reported). */
  warnings: string[];
  /** How long reading took, in ms. */
  tookMs: number;
}
