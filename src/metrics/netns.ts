/**
 * Metrics of everything netfence owns in one network namespace, read from
 * the kernel by the status layer ({@link readStatus}, src/status/): rule and
 * named counters and set sizes of owned tables, Throttler limits, XDP
 * blocklists running there, DpiBlocker steering counters and the kernel's
 * NFQUEUE statistics. Two counters the status layer does not read are read
 * here, each bounded so that a scrape never lists a large set:
 * {@link readSetCounters} (element counters of sets with counters, summed)
 * and {@link readEntryHits} (per-entry hits of small blocklists).
 * @module
 */
import type { NetfenceError } from '../errors.js';
import { nftList } from '../host/nft.js';
import { listingObjects } from '../nft/listing.js';
import { Ok, type Result } from '../result.js';
import { readStatus } from '../status/index.js';
import type { HostStatus, TableStatus, XdpBlocklistStatus } from '../status/types.js';
import { ruleIdOf } from '../util/rule-comment.js';
import { XdpBlocklist } from '../xdp/xdp-blocklist.js';
import type { XdpBlocklistEntry } from '../xdp/types.js';
import { FamilyBuilder } from './catalogue.js';
import type { CustomMetricsSource, MetricsOptions } from './collect.js';
import { DEFAULT_MAX_ENTRY_SERIES, nfqueueFamilies, xdpFamilies } from './sources.js';
import type { MetricFamily } from './types.js';

/** Options of {@link netnsMetrics}. */
export interface NetnsMetricsOptions extends MetricsOptions {
  /** The network namespace (a name under /run/netns); default: the caller's own. */
  netns?: string | undefined;
  /**
   * Sets' element counters are summed for tables whose sets hold at most this
   * many elements together (their table is listed once per scrape; nft 1.0.x
   * loads every element of a table for any listing of it). Default 10000; 0: never.
   */
  maxSetElements?: number | undefined;
}

/** Default of {@link NetnsMetricsOptions.maxSetElements}. */
export const DEFAULT_MAX_SET_ELEMENTS = 10_000;

/** Blocklists that run in the namespace: attached to one of its interfaces (xdp) or hooked by a table there (nft). */
function runningHere(st: HostStatus): XdpBlocklistStatus[] {
  return st.xdp.blocklists.filter((b) => b.interfaces.length > 0 && b.error === undefined);
}

/**
 * The metric families of a status read ({@link readStatus}; pure): owned
 * tables' rule and named counters and set sizes, limits, blocklists running
 * in the namespace, steering counters, NFQUEUE statistics.
 */
export function statusFamilies(st: HostStatus): MetricFamily[] {
  return addStatusFamilies(st, new FamilyBuilder()).families();
}

function addStatusFamilies(st: HostStatus, b: FamilyBuilder): FamilyBuilder {
  const netns = st.netns;
  for (const t of st.tables) {
    const base = { netns, family: t.family, table: t.name };
    for (const c of t.counters) {
      if (c.source === 'rule') {
        const handle = c.name.slice(c.name.lastIndexOf('#') + 1);
        const l = { ...base, chain: c.chain ?? c.name.slice(0, c.name.lastIndexOf('#')), handle, rule: ruleIdOf(c.comment) ?? c.comment ?? '' };
        b.add('rulePackets', l, c.packets).add('ruleBytes', l, c.bytes);
      } else {
        const l = { ...base, counter: c.name };
        b.add('counterPackets', l, c.packets).add('counterBytes', l, c.bytes);
      }
    }
    // a lower bound (a capped dump on kernels without the element counter) is no gauge value: left out
    for (const s of t.sets) if (s.elements !== undefined && !s.elementsAtLeast) b.add('setElements', { ...base, set: s.name }, s.elements);
  }
  for (const lim of st.limits) {
    const l = { netns, throttler: lim.owner?.replace(/^throttle:/, '') ?? '', limit: lim.id, iface: lim.interface, direction: lim.direction, backend: lim.backend };
    b.add('limitBytes', l, lim.bytes).add('limitPackets', l, lim.packets).add('limitDrops', l, lim.drops);
    if (lim.backlog !== undefined) b.add('limitBacklog', l, lim.backlog);
    if (lim.quotaUsed !== undefined) b.add('limitQuotaUsed', l, lim.quotaUsed);
    if (lim.quotaUsed !== undefined && lim.quotaBytes !== undefined) b.add('limitQuotaExceeded', l, lim.quotaUsed >= lim.quotaBytes ? 1 : 0);
  }
  for (const bl of runningHere(st)) {
    const mode = st.xdp.programs.find((p) => p.blocklist === bl.name)?.mode;
    xdpFamilies({ netns, iface: bl.interfaces.join(','), name: bl.name }, { backend: bl.backend, mode: mode === 'native' || mode === 'generic' ? mode : undefined, passed: bl.passed, dropped: bl.dropped, expired: bl.expired ?? 0, entries: bl.entries }, undefined, b);
  }
  for (const s of st.dpi.steering) {
    const l = { netns, form: s.form, table: s.table };
    if (s.packets !== undefined) b.add('dpiSteeredPackets', l, s.packets);
    if (s.bytes !== undefined) b.add('dpiSteeredBytes', l, s.bytes);
  }
  nfqueueFamilies(
    netns,
    st.dpi.queues.map((q) => ({ queue: q.queue, portid: q.portid, queueTotal: q.waiting, copyMode: 0, copyRange: 0, queueDropped: q.dropped, userDropped: q.userDropped, idSequence: q.queued })),
    b,
  );
  return b;
}

/**
 * Not in the status layer: the element counters of sets declared with
 * counters, summed per set. Lists each owned table whose sets hold at most
 * `max` elements together (one nft process per table); larger tables are
 * left out. Failures become warnings.
 */
export async function readSetCounters(netns: string | undefined, tables: readonly TableStatus[], max: number, b: FamilyBuilder, warnings: string[]): Promise<void> {
  for (const t of tables) {
    if (t.sets.length === 0 || t.kind === 'xdp-blocklist') continue; // blocklists: per-entry hits instead
    const total = t.sets.reduce((a, s) => (s.elements === undefined || s.elementsAtLeast ? Infinity : a + s.elements), 0);
    if (total > max) continue;
    const r = await nftList(['table', t.family, t.name], { netns });
    if (r.err) {
      warnings.push(`set counters of ${t.family} ${t.name}: ${r.val.message.split('\n')[0]}`);
      continue;
    }
    for (const { kind, value } of listingObjects(r.val)) {
      if (kind !== 'set' && kind !== 'map') continue;
      const stmt = (value as { stmt?: unknown }).stmt;
      let counted = Array.isArray(stmt) && stmt.some((x) => x && typeof x === 'object' && 'counter' in x);
      const agg = { packets: 0, bytes: 0 };
      for (const e of Array.isArray(value.elem) ? value.elem : []) {
        const c = (e as { elem?: { counter?: { packets?: number; bytes?: number } } })?.elem?.counter;
        if (c && typeof c === 'object') {
          counted = true;
          agg.packets += c.packets ?? 0;
          agg.bytes += c.bytes ?? 0;
        }
      }
      if (!counted) continue;
      const l = { netns, family: t.family, table: t.name, set: String(value.name) };
      b.add('setPackets', l, agg.packets).add('setBytes', l, agg.bytes);
    }
  }
}

/**
 * Not in the status layer: per-entry hits of the blocklists running in the
 * namespace that have at most `max` entries, read with
 * {@link XdpBlocklist.list} (pinned maps, or the nft fallback's table).
 * Failures become warnings.
 */
export async function readEntryHits(st: HostStatus, max: number, b: FamilyBuilder, warnings: string[]): Promise<void> {
  for (const bl of runningHere(st)) {
    if (bl.entries === undefined || bl.entries > max) continue;
    let list: Result<XdpBlocklistEntry[], NetfenceError>;
    const inst = new XdpBlocklist({ iface: bl.interfaces[0] as string, name: bl.name, backend: bl.backend, ...(st.netns !== undefined ? { netns: st.netns } : {}) });
    try {
      list = await inst.list();
    } finally {
      inst.close();
    }
    if (list.err) {
      warnings.push(`entries of blocklist ${bl.name}: ${list.val.message.split('\n')[0]}`);
      continue;
    }
    for (const e of list.val) b.add('xdpEntryDropped', { netns: st.netns, iface: bl.interfaces.join(','), blocklist: bl.name, entry: e.entry }, e.hits);
  }
}

/** What {@link netnsMetrics} returns. */
export interface NetnsMetrics {
  /** The namespace read (undefined: the caller's own). */
  netns: string | undefined;
  families: MetricFamily[];
  /** Parts that could not be read (the rest is still there). */
  warnings: string[];
}

/**
 * Every counter of what netfence owns in a network namespace, read from the
 * kernel (not from any process's memory: what every process put there).
 * In-process counters (DpiBlocker verdicts and detections) are not in the
 * kernel; read them with {@link metricsOf}. Err only when the namespace
 * cannot be read at all.
 *
 * @example
 * ```ts
 * const m = (await netnsMetrics({ netns: 'edge' })).unwrap();
 * console.log(toPrometheusText(m.families));
 * ```
 */
export async function netnsMetrics(options: NetnsMetricsOptions = {}): Promise<Result<NetnsMetrics, NetfenceError>> {
  const st = await readStatus(options.netns !== undefined ? { netns: options.netns } : {});
  if (st.err) return st;
  const warnings = [...st.val.warnings];
  const b = addStatusFamilies(st.val, new FamilyBuilder());
  const maxSet = options.maxSetElements ?? DEFAULT_MAX_SET_ELEMENTS;
  if (maxSet > 0) await readSetCounters(st.val.netns, st.val.tables, maxSet, b, warnings);
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRY_SERIES;
  if (maxEntries > 0) await readEntryHits(st.val, maxEntries, b, warnings);
  return Ok({ netns: st.val.netns, families: b.families(), warnings });
}

/**
 * {@link netnsMetrics} as a source for {@link collectMetrics} and the
 * prom-client adapter: `source` label `netns:<name>` (`netns:` for the
 * caller's own namespace).
 */
export function netnsMetricsSource(options: NetnsMetricsOptions = {}): CustomMetricsSource {
  return {
    name: `netns:${options.netns ?? ''}`,
    async collect() {
      const m = await netnsMetrics(options);
      return m.err ? m : Ok(m.val.families);
    },
  };
}
