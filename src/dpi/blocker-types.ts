/**
 * What a {@link DpiBlocker} reports and produces: detections, counters,
 * events, the compiled plan, and the host facts its compile takes.
 * @module
 */
import type { CapabilityReport } from '../capabilities/index.js';
import type { Plan } from '../plan/types.js';
import type { DpiHandlerCounters, DpiHandlerOptions } from './blocker-handler.js';
import type { QueueStats } from './nfqueue/queues.js';
import type { DetectionVerdict } from './blocker-handler.js';
import type { XtablesFilterFact } from './scaffolding.js';
import type { SettledServicesStats } from './settled-services.js';
import type { Endpoint, Transport } from './types.js';

/** One flow judged BitTorrent (or bad by a custom classifier): the classifier's verdict, and what was done. */
export interface Detection extends DetectionVerdict {
  /** When the main process learnt of it. */
  time: Date;
  /** Queue (worker) that saw it. */
  queue: number;
  /** The flow's 5-tuple: transport, initiator (client) and responder (server). */
  flow: { transport: Transport; family: 4 | 6; client: Endpoint; server: Endpoint };
  /** `dropped` (this and every later packet of the flow) or `monitored` (monitor-only: let through). */
  action: 'dropped' | 'monitored';
  /** Addresses handed to the blocklist (empty when none). */
  blocked: string[];
}

/** Counters of a {@link DpiBlocker}. */
export interface DpiBlockerStats {
  /** Whether apply() succeeded and destroy() was not called. */
  running: boolean;
  /** `nft` or `xtables` steering rules. */
  steering: 'nft' | 'xtables' | undefined;
  /** Flows seen by the engines (all workers). */
  flowsSeen: number;
  /** Flows judged BitTorrent. */
  detections: number;
  /** Flows judged benign: they bypass the queue from then on. */
  bypassed: number;
  /** Packets answered `bad` (the rules drop the rest of their flows without queueing them). */
  dropped: number;
  /** Packets inspected by the engines. */
  packetsInspected: number;
  /** Detections answered from the peer endpoint cache. */
  cacheHits: number;
  /** The blocker's one peer endpoint cache (undefined when disabled or before apply()). */
  peerCache: DpiPeerCacheStats | undefined;
  /** Addresses added to the blocklist. */
  blocklisted: number;
  /** Blocklist additions that failed. */
  blocklistErrors: number;
  /** Workers that exited unexpectedly (traffic then follows `failOpen`). */
  workerExits: number;
  /** Per queue: reader counters and the kernel's statistics. */
  queues: QueueStats[];
  /** Per queue: the engine's cumulative counters as last reported by its worker. */
  engines: { queue: number; counters: DpiHandlerCounters }[];
  /** Detections by classifier, detection family and action, since apply(). */
  detectionsBy: { classifier: string; detection: string; action: Detection['action']; count: number }[];
  /** The fail-open choice in force (undefined before apply()). */
  failOpen: boolean | undefined;
  /** Settled services (undefined when off, or before apply()); see the `settleServices` option. */
  settledServices: SettledServicesStats | undefined;
}

/**
 * The peer endpoint cache of a {@link DpiBlocker}: the main process's copy
 * (every worker's additions) and the workers' lookups.
 */
export interface DpiPeerCacheStats {
  /** Endpoints held now (both tiers; expired ones removed when stats are read). */
  size: number;
  /** Of those, learnt from tracker and DHT peer lists. */
  learnt: number;
  /** Bounds: detected and learnt tiers. */
  maxEntries: number;
  maxLearnt: number;
  /** Lifetimes (ms) of detected and learnt entries. */
  ttlMs: number;
  learntTtlMs: number;
  /** Additions, refreshes included (both tiers, all workers). */
  added: number;
  /** Of those, endpoints listed by tracker and DHT replies. */
  learntAdded: number;
  /** Entries pushed out by the bounds. */
  evictions: number;
  /** Flows judged at their first packet from the cache (all workers). */
  hits: number;
  /** Of those, from learnt entries (detection `peer-learnt`). */
  learntHits: number;
  /** Packets that listed peers and were let through after the wait for the other workers timed out. */
  syncTimeouts: number;
}

/** Events of a {@link DpiBlocker}. */
export interface DpiBlockerEvents {
  /** A flow was judged BitTorrent. */
  detection: [Detection];
  /** A worker exited unexpectedly; steered packets now follow `failOpen`. */
  'worker-exit': [{ queue: number; code: number | null; signal: NodeJS.Signals | null }];
  /** A problem that did not stop the blocker (a blocklist add failed, a worker warning). */
  warning: [Error];
}

/**
 * Host facts {@link DpiBlocker.compile} takes (it does no I/O itself).
 * `apply()` gathers them: the capability report when `nftQueue` is `auto`,
 * and for the xtables form the iptables-nft `filter` tables as they were.
 */
export interface DpiHostFacts {
  /** The namespace's capability report (`nft.features.queue`, `iptables.nfqueue`): chooses the form when `nftQueue` is `auto`. */
  capabilities?: Pick<CapabilityReport, 'nft' | 'iptables'> | undefined;
  /** Whether the kernel has the nft `queue` statement; when given, it decides the form (over options and report). */
  nftQueue?: boolean | undefined;
  /**
   * xtables form: which iptables-nft `filter` tables and built-in chains existed
   * before (`readXtablesFilter`, inside `apply()`). With it the plan removes, last, what
   * iptables-nft creates and nothing else uses; without it nothing of that is removed.
   */
  xtablesFilter?: readonly XtablesFilterFact[] | undefined;
  /**
   * The queue readers receive each packet with its conntrack attributes (direction, connection id;
   * known once the queues are bound, `apply()` sets it). With it TCP SYNs pass without crossing
   * userspace: one queued packet fewer per connection.
   */
  queueConntrack?: boolean | undefined;
}

/** What {@link DpiBlocker.compile} produces (pure): the steering plan and the workers' handler options. */
export interface DpiBlockerCompiled {
  /** The steering rules as a plan (applied through the executor by `apply()`). */
  plan: Plan;
  /** Queues `[first, count]` the rules steer to and the workers bind. */
  queues: [number, number];
  /** The fail-open choice shared by rules and readers. */
  failOpen: boolean;
  /** `nft` (queue statement) or `xtables` (NFQUEUE target through iptables-nft). */
  steering: 'nft' | 'xtables';
  /** What each worker's handler module receives. */
  handlerOptions: DpiHandlerOptions;
}
