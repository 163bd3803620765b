/**
 * Collecting metrics from instances of netfence's classes (each read through
 * its own `stats()`) and from other sources, and merging them into one list
 * of families.
 * @module
 */
import { DpiBlocker } from '../dpi/dpi-blocker.js';
import { NetfenceError } from '../errors.js';
import { Firewall } from '../firewall/firewall.js';
import { Err, Ok, type Result } from '../result.js';
import { Throttler } from '../throttle/throttler.js';
import { XdpBlocklist } from '../xdp/xdp-blocklist.js';
import { FamilyBuilder } from './catalogue.js';
import { DEFAULT_MAX_ENTRY_SERIES, dpiFamilies, firewallFamilies, throttlerFamilies, xdpFamilies } from './sources.js';
import { familyName, labelKey } from './text.js';
import type { MetricFamily } from './types.js';

/** Options of {@link metricsOf} and {@link collectMetrics}. */
export interface MetricsOptions {
  /**
   * XdpBlocklist: per-entry series (`netfence_xdp_entry_dropped_packets_total`) for blocklists
   * of at most this many entries, none for larger ones (reading every entry of a huge list at
   * each scrape costs too much). 0 turns them off. Default 1000.
   */
  maxEntries?: number | undefined;
}

/** Something {@link collectMetrics} can read: an instance of a netfence class, or any named collection function. */
export type MetricsSource = Firewall | Throttler | XdpBlocklist | DpiBlocker | CustomMetricsSource;

/** A named collection function (e.g. {@link netnsMetricsSource}, or an app's own). */
export interface CustomMetricsSource {
  /** Names the source in `netfence_metrics_source_up{source=…}` and in errors. */
  name: string;
  /** Read the families (may fail with an Err or by throwing). */
  collect(): Promise<Result<MetricFamily[], NetfenceError> | MetricFamily[]>;
}

/** The name of a source in `netfence_metrics_source_up`. */
export function sourceName(s: MetricsSource): string {
  const at = (netns: string | undefined) => (netns ? `@${netns}` : '');
  if (s instanceof Firewall) return `firewall:${s.family}/${s.table}${at(s.netns)}`;
  if (s instanceof Throttler) return `throttler:${s.name}${at(s.netns)}`;
  if (s instanceof XdpBlocklist) return `xdp:${s.name}`;
  if (s instanceof DpiBlocker) return `dpi${at(s.options.netns)}`;
  return s.name;
}

const asError = (e: unknown, what: string): NetfenceError => (e instanceof NetfenceError ? e : new NetfenceError('COMMAND_FAILED', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));

/**
 * The metric families of one Firewall, Throttler, XdpBlocklist or
 * DpiBlocker, read through its own `stats()` (and, for a blocklist,
 * `list()` for per-entry hits): the same kernel reads, as Prometheus
 * samples. Err when the read fails (e.g. not applied).
 *
 * @example
 * ```ts
 * const fams = (await metricsOf(firewall)).unwrap();
 * res.end(toPrometheusText(fams));
 * ```
 */
export async function metricsOf(instance: Firewall | Throttler | XdpBlocklist | DpiBlocker, options: MetricsOptions = {}): Promise<Result<MetricFamily[], NetfenceError>> {
  try {
    if (instance instanceof Firewall) {
      const s = await instance.stats();
      return s.err ? s : Ok(firewallFamilies(instance, s.val).families());
    }
    if (instance instanceof Throttler) {
      const s = await instance.stats();
      return s.err ? s : Ok(throttlerFamilies(instance, s.val).families());
    }
    if (instance instanceof XdpBlocklist) {
      const s = await instance.stats();
      if (s.err) return s;
      let entries;
      if (s.val.entries <= (options.maxEntries ?? DEFAULT_MAX_ENTRY_SERIES)) {
        const l = await instance.list();
        if (l.err) return l;
        entries = l.val;
      }
      const o = instance.options;
      return Ok(xdpFamilies({ netns: o.netns, iface: o.iface, name: instance.name }, s.val, entries).families());
    }
    if (instance instanceof DpiBlocker) {
      const s = await instance.stats();
      return s.err ? s : Ok(dpiFamilies(instance.options.netns, s.val).families());
    }
  } catch (e) {
    return Err(asError(e, 'reading metrics'));
  }
  return Err(new NetfenceError('VALIDATION', 'metricsOf() takes a Firewall, Throttler, XdpBlocklist or DpiBlocker'));
}

/**
 * Families of the same name merged into one (the first one's help and
 * type); a series whose labels an earlier one already had is left out
 * (the first source wins), so overlapping sources render cleanly.
 */
export function mergeFamilies(families: readonly MetricFamily[]): MetricFamily[] {
  const out = new Map<string, { f: MetricFamily; seen: Set<string> }>();
  for (const f of families) {
    const name = familyName(f);
    let m = out.get(name);
    if (!m) out.set(name, (m = { f: { name, help: f.help, type: f.type, samples: [] }, seen: new Set() }));
    if (m.f.type !== f.type) continue;
    for (const s of f.samples) {
      const k = labelKey(s.labels);
      if (m.seen.has(k)) continue;
      m.seen.add(k);
      m.f.samples.push(s);
    }
  }
  return [...out.values()].map((m) => m.f);
}

/** What {@link collectMetrics} returns. */
export interface CollectedMetrics {
  /** Merged families, `netfence_metrics_source_up` last. */
  families: MetricFamily[];
  /** Sources that failed, with their errors (their `source_up` sample is 0). */
  errors: { source: string; error: NetfenceError }[];
}

/**
 * Read every source (concurrently) and merge the families. A source that
 * fails does not fail the collection: its `netfence_metrics_source_up` is 0
 * and its error is in `errors`.
 */
export async function collectMetrics(sources: readonly MetricsSource[], options: MetricsOptions = {}): Promise<CollectedMetrics> {
  const results = await Promise.all(
    sources.map(async (s): Promise<Result<MetricFamily[], NetfenceError>> => {
      try {
        if (s instanceof Firewall || s instanceof Throttler || s instanceof XdpBlocklist || s instanceof DpiBlocker) return await metricsOf(s, options);
        const r = await s.collect();
        return Array.isArray(r) ? Ok(r) : r;
      } catch (e) {
        return Err(asError(e, `metrics source ${sourceName(s)}`));
      }
    }),
  );
  const all: MetricFamily[] = [];
  const errors: CollectedMetrics['errors'] = [];
  const up = new FamilyBuilder();
  results.forEach((r, i) => {
    const source = sourceName(sources[i] as MetricsSource);
    if (r.ok) all.push(...r.val);
    else errors.push({ source, error: r.val });
    up.add('sourceUp', { source }, r.ok ? 1 : 0);
  });
  return { families: mergeFamilies([...all, ...up.families()]), errors };
}
