/**
 * Metric families from the statistics netfence already reads: pure
 * functions from a class's `stats()` result (and the kernel's NFQUEUE lines)
 * to catalogue samples. {@link metricsOf} calls the instance's own readers;
 * nothing here reads the kernel a second way.
 * @module
 */
import type { DpiBlockerStats } from '../dpi/blocker-types.js';
import type { ProcQueueStats } from '../dpi/nfqueue/proc.js';
import type { FirewallStatus } from '../firewall/builder.js';
import type { ThrottlerStats } from '../throttle/handle.js';
import type { XdpBlocklistEntry, XdpBlocklistStats } from '../xdp/types.js';
import { FamilyBuilder } from './catalogue.js';

/** Where a Firewall's table is. */
export interface FirewallRef {
  netns?: string | undefined;
  family: string;
  table: string;
}

/** Rule and set counters of one Firewall table ({@link FirewallStatus}, from `Firewall.stats()`). */
export function firewallFamilies(ref: FirewallRef, s: FirewallStatus, b = new FamilyBuilder()): FamilyBuilder {
  const base = { netns: ref.netns, family: ref.family, table: ref.table };
  for (const [rule, r] of Object.entries(s.rules)) {
    const l = { ...base, chain: r.chain, handle: r.handle, rule };
    b.add('rulePackets', l, r.packets).add('ruleBytes', l, r.bytes);
  }
  for (const [set, c] of Object.entries(s.sets)) {
    const l = { ...base, set };
    b.add('setElements', l, c.elements).add('setPackets', l, c.packets).add('setBytes', l, c.bytes);
  }
  return b;
}

/** Where a Throttler's limits are. */
export interface ThrottlerRef {
  netns?: string | undefined;
  /** The Throttler's name (its tables are `netfence_throttle_<name>_l<id>`). */
  name: string;
}

/** Bytes, packets, drops, backlog and quota of every limit ({@link ThrottlerStats}, from `Throttler.stats()`). */
export function throttlerFamilies(ref: ThrottlerRef, s: ThrottlerStats, b = new FamilyBuilder()): FamilyBuilder {
  for (const lim of s.limits) {
    const l = { netns: ref.netns, throttler: ref.name, limit: lim.id, iface: lim.iface, direction: lim.direction, backend: lim.backend };
    const st = lim.stats;
    b.add('limitBytes', l, st.bytes).add('limitPackets', l, st.packets).add('limitDrops', l, st.drops).add('limitBacklog', l, st.backlog);
    if (st.overlimits !== undefined) b.add('limitOverlimits', l, st.overlimits);
    if (st.quotaUsed !== undefined) b.add('limitQuotaUsed', l, st.quotaUsed);
    if (st.quotaExceeded !== undefined) b.add('limitQuotaExceeded', l, st.quotaExceeded ? 1 : 0);
  }
  return b;
}

/** Which blocklist, on which interface. */
export interface XdpRef {
  netns?: string | undefined;
  iface: string;
  name: string;
}

/** Per-entry series are given for blocklists of at most this many entries (default of {@link MetricsOptions.maxEntries}). */
export const DEFAULT_MAX_ENTRY_SERIES = 1000;

/**
 * Totals of one blocklist ({@link XdpBlocklistStats}) and, when `entries`
 * is given, one drop counter per entry (the caller reads entries only for
 * blocklists small enough, see {@link DEFAULT_MAX_ENTRY_SERIES}).
 */
export function xdpFamilies(ref: XdpRef, s: Omit<XdpBlocklistStats, 'entries'> & { entries: number | undefined }, entries?: readonly XdpBlocklistEntry[], b = new FamilyBuilder()): FamilyBuilder {
  const l = { netns: ref.netns, iface: ref.iface, blocklist: ref.name };
  b.add('xdpInfo', { ...l, backend: s.backend, mode: s.mode }, 1);
  b.add('xdpPassedPackets', l, s.passed.packets).add('xdpPassedBytes', l, s.passed.bytes);
  b.add('xdpDroppedPackets', l, s.dropped.packets).add('xdpDroppedBytes', l, s.dropped.bytes);
  b.add('xdpExpired', l, s.expired);
  if (s.entries !== undefined) b.add('xdpEntries', l, s.entries);
  for (const e of entries ?? []) b.add('xdpEntryDropped', { ...l, entry: e.entry }, e.hits);
  return b;
}

/** The kernel's counters of bound NFQUEUEs (/proc/net/netfilter/nfnetlink_queue of `netns`). */
export function nfqueueFamilies(netns: string | undefined, queues: readonly ProcQueueStats[], b = new FamilyBuilder()): FamilyBuilder {
  for (const q of queues) {
    const l = { netns, queue: q.queue };
    b.add('queueQueued', l, q.idSequence).add('queueDropped', l, q.queueDropped).add('queueUserDropped', l, q.userDropped).add('queueWaiting', l, q.queueTotal);
  }
  return b;
}

/**
 * A DpiBlocker's counters ({@link DpiBlockerStats}, from `DpiBlocker.stats()`):
 * verdicts, flows, detections by classifier, fail-open passes, what its
 * workers saw of queue drops, and the kernel's line of each of its queues.
 */
export function dpiFamilies(netns: string | undefined, s: DpiBlockerStats, b = new FamilyBuilder()): FamilyBuilder {
  b.add('dpiRunning', { netns }, s.running ? 1 : 0);
  const readers = new Map(s.queues.map((q) => [q.queue, q.reader]));
  const queues = [...new Set([...s.engines.map((e) => e.queue), ...s.queues.map((q) => q.queue)])].sort((x, y) => x - y);
  for (const queue of queues) {
    const l = { netns, queue };
    const r = readers.get(queue);
    const e = s.engines.find((x) => x.queue === queue)?.counters;
    if (r) {
      b.add('dpiReceivedPackets', l, r.packets).add('dpiReceivedBytes', l, r.bytes);
      b.add('dpiHandlerErrors', l, r.handlerErrors).add('dpiFailOpen', l, s.failOpen ? r.handlerErrors : 0).add('dpiOverruns', l, r.enobufs);
    }
    if (e) {
      b.add('dpiInspected', l, e.packets).add('dpiUndecodable', l, e.undecodable);
      b.add('dpiVerdicts', { ...l, verdict: 'accept' }, e.accepted + e.undecodable);
      if (r) b.add('dpiVerdicts', { ...l, verdict: 'bypass' }, r.benign);
      b.add('dpiVerdicts', { ...l, verdict: 'drop' }, e.dropped);
      b.add('dpiFlows', l, e.flows).add('dpiBenignFlows', l, e.benign).add('dpiCacheHits', l, e.cacheHits);
      b.add('dpiLearntHits', l, e.learntHits ?? 0);
    }
  }
  const pc = s.peerCache;
  if (pc) {
    b.add('dpiPeerCacheEntries', { netns, tier: 'detected' }, pc.size - pc.learnt).add('dpiPeerCacheEntries', { netns, tier: 'learnt' }, pc.learnt);
    b.add('dpiPeerCacheAdded', { netns, tier: 'detected' }, pc.added - pc.learntAdded).add('dpiPeerCacheAdded', { netns, tier: 'learnt' }, pc.learntAdded);
    b.add('dpiPeerCacheEvictions', { netns }, pc.evictions);
  }
  for (const d of s.detectionsBy) b.add('dpiDetections', { netns, classifier: d.classifier, detection: d.detection, action: d.action }, d.count);
  b.add('dpiBlocklisted', { netns }, s.blocklisted).add('dpiBlocklistErrors', { netns }, s.blocklistErrors).add('dpiWorkerExits', { netns }, s.workerExits);
  nfqueueFamilies(
    netns,
    s.queues.flatMap((q) => (q.kernel ? [q.kernel] : [])),
    b,
  );
  return b;
}
