/**
 * Every metric netfence produces: name, type, help and label names, written
 * once. Sources fill samples into these definitions ({@link FamilyBuilder});
 * the prom-client adapter registers them by name before the first scrape.
 * Names follow Prometheus conventions: `netfence_` prefix, base units in the
 * name (`_bytes`, `_packets`), counters end in `_total`.
 * @module
 */
import type { MetricFamily, MetricLabels, MetricType } from './types.js';

/** One metric's definition. */
export interface MetricDefinition {
  name: string;
  type: MetricType;
  help: string;
  /** The labels every sample carries, in this order. */
  labels: readonly string[];
}

const NFT = ['netns', 'family', 'table'] as const;
const RULE = [...NFT, 'chain', 'handle', 'rule'] as const;
const SET = [...NFT, 'set'] as const;
const COUNTER = [...NFT, 'counter'] as const;
const LIMIT = ['netns', 'throttler', 'limit', 'iface', 'direction', 'backend'] as const;
const XDP = ['netns', 'iface', 'blocklist'] as const;
const QUEUE = ['netns', 'queue'] as const;
const DPI = ['netns'] as const;

function def<const L extends readonly string[]>(name: string, type: MetricType, help: string, labels: L): MetricDefinition & { labels: L } {
  return { name, type, help, labels };
}

/** The catalogue, by short key. */
export const METRICS = {
  // nft objects in tables netfence owns
  rulePackets: def('netfence_nft_rule_packets_total', 'counter', 'Packets counted by a rule (its counter statement) in a table netfence owns; rule is the netfence rule id (nf:<id> comment) or the comment.', RULE),
  ruleBytes: def('netfence_nft_rule_bytes_total', 'counter', 'Bytes counted by a rule (its counter statement) in a table netfence owns.', RULE),
  setElements: def('netfence_nft_set_elements', 'gauge', 'Elements in a set or map of a table netfence owns.', SET),
  setPackets: def('netfence_nft_set_packets_total', 'counter', 'Packets counted by the elements of a set with counters (sum over its elements).', SET),
  setBytes: def('netfence_nft_set_bytes_total', 'counter', 'Bytes counted by the elements of a set with counters (sum over its elements).', SET),
  counterPackets: def('netfence_nft_counter_packets_total', 'counter', 'Packets of a named nft counter in a table netfence owns (ownership marks excluded).', COUNTER),
  counterBytes: def('netfence_nft_counter_bytes_total', 'counter', 'Bytes of a named nft counter in a table netfence owns (ownership marks excluded).', COUNTER),
  // Throttler limits
  limitBytes: def('netfence_throttle_bytes_total', 'counter', 'Bytes that passed a Throttler limit (throttler: its name, empty when read from tc objects alone, which carry no owner).', LIMIT),
  limitPackets: def('netfence_throttle_packets_total', 'counter', 'Packets that passed a Throttler limit.', LIMIT),
  limitDrops: def('netfence_throttle_dropped_packets_total', 'counter', 'Packets a Throttler limit dropped (shaper queue overflow, policer or quota).', LIMIT),
  limitOverlimits: def('netfence_throttle_overlimit_packets_total', 'counter', 'Packets the shaper delayed or the tc policer found over the rate (tc overlimits), where the backend reports it.', LIMIT),
  limitBacklog: def('netfence_throttle_backlog_bytes', 'gauge', 'Bytes waiting in a limit\'s shaper queue (0 for policers).', LIMIT),
  limitQuotaUsed: def('netfence_throttle_quota_used_bytes', 'gauge', 'Bytes counted against a limit\'s quota.', LIMIT),
  limitQuotaExceeded: def('netfence_throttle_quota_exceeded', 'gauge', '1 when a limit\'s quota is exhausted, else 0.', LIMIT),
  // XdpBlocklist
  xdpInfo: def('netfence_xdp_blocklist_info', 'gauge', 'An XdpBlocklist in force (always 1): its backend (xdp or nft) and XDP mode.', [...XDP, 'backend', 'mode'] as const),
  xdpPassedPackets: def('netfence_xdp_passed_packets_total', 'counter', 'Packets an XdpBlocklist let through.', XDP),
  xdpPassedBytes: def('netfence_xdp_passed_bytes_total', 'counter', 'Bytes an XdpBlocklist let through.', XDP),
  xdpDroppedPackets: def('netfence_xdp_dropped_packets_total', 'counter', 'Packets an XdpBlocklist dropped.', XDP),
  xdpDroppedBytes: def('netfence_xdp_dropped_bytes_total', 'counter', 'Bytes an XdpBlocklist dropped.', XDP),
  xdpExpired: def('netfence_xdp_expired_entries_total', 'counter', 'Expired entries the XDP program met and deleted (0 for the nft backend).', XDP),
  xdpEntries: def('netfence_xdp_entries', 'gauge', 'Live entries of an XdpBlocklist.', XDP),
  xdpEntryDropped: def('netfence_xdp_entry_dropped_packets_total', 'counter', 'Packets dropped because of one entry (its hit counter; restarts when the entry is re-added).', [...XDP, 'entry'] as const),
  // NFQUEUE, the kernel's view (/proc/net/netfilter/nfnetlink_queue)
  queueQueued: def('netfence_nfqueue_queued_packets_total', 'counter', 'Packets the kernel queued to a bound NFQUEUE since its socket bound (id_sequence).', QUEUE),
  queueDropped: def('netfence_nfqueue_queue_dropped_packets_total', 'counter', 'Packets dropped because the queue was full (kernel queue_dropped; with fail-open they are accepted and not counted).', QUEUE),
  queueUserDropped: def('netfence_nfqueue_user_dropped_packets_total', 'counter', 'Packets the kernel could not deliver to the reader socket (kernel queue_user_dropped; with fail-open they are accepted and not counted).', QUEUE),
  queueWaiting: def('netfence_nfqueue_waiting_packets', 'gauge', 'Packets waiting in an NFQUEUE for a verdict.', QUEUE),
  // DpiBlocker (in process)
  dpiRunning: def('netfence_dpi_running', 'gauge', '1 while a DpiBlocker is applied and not destroyed.', DPI),
  dpiReceivedPackets: def('netfence_dpi_received_packets_total', 'counter', 'Packets a DpiBlocker queue worker received from the kernel.', QUEUE),
  dpiReceivedBytes: def('netfence_dpi_received_bytes_total', 'counter', 'Payload bytes a DpiBlocker queue worker received from the kernel.', QUEUE),
  dpiInspected: def('netfence_dpi_inspected_packets_total', 'counter', 'Packets handed to the DPI engine.', QUEUE),
  dpiUndecodable: def('netfence_dpi_undecodable_packets_total', 'counter', 'Packets that were not TCP/UDP or could not be decoded (accepted).', QUEUE),
  dpiVerdicts: def('netfence_dpi_verdicts_total', 'counter', 'Packets by the DPI verdict given: accept (flow undecided or undecodable), bypass (flow judged benign, or monitored), drop (flow judged bad; the rules drop the rest).', [...QUEUE, 'verdict'] as const),
  dpiFlows: def('netfence_dpi_flows_total', 'counter', 'Flows the DPI engine saw.', QUEUE),
  dpiBenignFlows: def('netfence_dpi_benign_flows_total', 'counter', 'Flows judged benign (they bypass the queue from then on).', QUEUE),
  dpiDetections: def('netfence_dpi_detections_total', 'counter', 'Flows judged bad (BitTorrent or a custom classifier), by classifier, detection family and action (dropped or monitored).', [...DPI, 'classifier', 'detection', 'action'] as const),
  dpiCacheHits: def('netfence_dpi_cache_hit_detections_total', 'counter', 'Detections answered from the peer endpoint cache.', QUEUE),
  dpiLearntHits: def('netfence_dpi_peer_learnt_detections_total', 'counter', 'Of the cache-hit detections, flows to endpoints learnt from tracker and DHT peer lists (detection peer-learnt).', QUEUE),
  dpiPeerCacheEntries: def('netfence_dpi_peer_cache_entries', 'gauge', 'Endpoints in the DpiBlocker peer cache, by tier: detected (spoke BitTorrent) or learnt (listed by a tracker or DHT reply).', [...DPI, 'tier'] as const),
  dpiPeerCacheAdded: def('netfence_dpi_peer_cache_added_total', 'counter', 'Endpoints added to (or refreshed in) the peer cache, by tier, all workers.', [...DPI, 'tier'] as const),
  dpiPeerCacheEvictions: def('netfence_dpi_peer_cache_evictions_total', 'counter', 'Peer cache entries pushed out by its bounds.', DPI),
  dpiFailOpen: def('netfence_dpi_fail_open_passes_total', 'counter', 'Packets let through by the fail-open verdict because the handler failed (with failOpen; queue-full and worker-exit passes are not counted by the kernel).', QUEUE),
  dpiHandlerErrors: def('netfence_dpi_handler_errors_total', 'counter', 'Packets whose handler threw or rejected (the failOpen verdict was used).', QUEUE),
  dpiOverruns: def('netfence_dpi_socket_overruns_total', 'counter', 'Receive-buffer overruns a queue worker saw (ENOBUFS): queued packets whose message was lost.', QUEUE),
  dpiSteeredPackets: def('netfence_dpi_steered_packets_total', 'counter', 'Packets counted by DpiBlocker steering rules (the packets sent towards the queues), read from the kernel.', ['netns', 'form', 'table'] as const),
  dpiSteeredBytes: def('netfence_dpi_steered_bytes_total', 'counter', 'Bytes counted by DpiBlocker steering rules, read from the kernel.', ['netns', 'form', 'table'] as const),
  dpiBlocklisted: def('netfence_dpi_blocklisted_addresses_total', 'counter', 'Addresses a DpiBlocker added to its blocklist.', DPI),
  dpiBlocklistErrors: def('netfence_dpi_blocklist_errors_total', 'counter', 'Blocklist additions that failed.', DPI),
  dpiWorkerExits: def('netfence_dpi_worker_exits_total', 'counter', 'Queue workers that exited unexpectedly (traffic then follows failOpen).', DPI),
  // the collection itself
  sourceUp: def('netfence_metrics_source_up', 'gauge', '1 when a metrics source was read, 0 when reading it failed (the error is in the collector\'s result).', ['source'] as const),
} as const;

/** Key of a catalogue entry. */
export type MetricKey = keyof typeof METRICS;

/** Every definition, in catalogue order. */
export const METRIC_DEFINITIONS: readonly MetricDefinition[] = Object.values(METRICS);

type LabelsOf<K extends MetricKey> = { readonly [L in (typeof METRICS)[K]['labels'][number]]: string | number | undefined };

/**
 * Collects samples into catalogue families: `add('ruleBytes', labels, v)`.
 * Label values are strings (numbers are written in decimal, undefined as
 * ""); every catalogue label is set, in catalogue order. Counters are never
 * negative (a negative difference of kernel counters reads as 0).
 */
export class FamilyBuilder {
  private readonly byKey = new Map<MetricKey, MetricFamily>();

  /** Add one sample. */
  add<K extends MetricKey>(key: K, labels: LabelsOf<K>, value: number | bigint): this {
    const d = METRICS[key];
    let f = this.byKey.get(key);
    if (!f) this.byKey.set(key, (f = { name: d.name, help: d.help, type: d.type, samples: [] }));
    const l: Record<string, string> = {};
    for (const name of d.labels) {
      const v = (labels as Record<string, string | number | undefined>)[name];
      l[name] = v === undefined ? '' : String(v);
    }
    let v = value;
    if (d.type === 'counter') {
      if (typeof v === 'bigint') v = v < 0n ? 0n : v;
      else v = Number.isFinite(v) && v > 0 ? v : 0;
    }
    f.samples.push({ labels: l as MetricLabels, value: v });
    return this;
  }

  /** The families with at least one sample, in catalogue order. */
  families(): MetricFamily[] {
    return (Object.keys(METRICS) as MetricKey[]).flatMap((k) => {
      const f = this.byKey.get(k);
      return f ? [f] : [];
    });
  }
}
