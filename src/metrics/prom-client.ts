/**
 * The prom-client adapter: netfence's metrics inside an app's existing
 * prom-client registry. prom-client is an optional peer dependency and is
 * never imported here: the registry is passed in and used through the small
 * structural type {@link PromRegistryLike}, so netfence's types do not need
 * prom-client installed.
 * @module
 */
import { ValidationError } from '../errors.js';
import { METRIC_DEFINITIONS, type MetricDefinition } from './catalogue.js';
import { collectMetrics, type CollectedMetrics, type MetricsOptions, type MetricsSource } from './collect.js';
import { familyName } from './text.js';
import type { MetricFamily } from './types.js';

/** The part of a prom-client `Registry` the adapter uses (prom-client >= 14). */
export interface PromRegistryLike {
  /** Registers a metric object (prom-client: `registry.registerMetric`). */
  registerMetric(metric: object): void;
  /** Removes one by name (prom-client: `registry.removeSingleMetric`). */
  removeSingleMetric(name: string): void;
}

/** What prom-client reads from a registered metric at scrape time. */
export interface PromMetricObject {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  aggregator: 'sum';
  /** Called by the registry on every scrape. */
  get(): Promise<{ name: string; help: string; type: 'counter' | 'gauge'; aggregator: 'sum'; values: { labels: Record<string, string>; value: number }[] }>;
  /** Called by `registry.resetMetrics()`: the kernel's counters are not reset; nothing happens. */
  reset(): void;
}

/** Options of {@link registerPromClient}. */
export interface PromClientOptions extends MetricsOptions {
  /**
   * The metrics to register, by definition; default every netfence metric.
   * Add your own definitions for families a custom source produces: a family
   * whose name is not registered does not reach the registry.
   */
  definitions?: readonly MetricDefinition[] | undefined;
  /** Called after each collection that had failing sources (their `netfence_metrics_source_up` is 0). */
  onError?: ((errors: CollectedMetrics['errors']) => void) | undefined;
}

/** What {@link registerPromClient} returns. */
export interface PromClientRegistration {
  /** The metric names registered. */
  readonly names: readonly string[];
  /** Remove them from the registry. */
  unregister(): void;
}

/**
 * Register netfence's metrics in a prom-client registry: one metric object
 * per definition, whose `get()` reads `sources` (one collection per scrape,
 * shared by every metric of that scrape) and returns that family's samples.
 * Counters are read from the kernel and the classes as they are: never
 * incremented or reset by prom-client. Throws a {@link ValidationError} when
 * a name is already registered (nothing stays registered then).
 *
 * @example
 * ```ts
 * import client from 'prom-client';
 * import { registerPromClient } from 'netfence';
 * registerPromClient(client.register, [firewall, throttler, blocklist, dpi]);
 * // GET /metrics: res.type(client.register.contentType).send(await client.register.metrics());
 * ```
 */
export function registerPromClient(registry: PromRegistryLike, sources: readonly MetricsSource[] | (() => Promise<MetricFamily[]>), options: PromClientOptions = {}): PromClientRegistration {
  let inflight: Promise<Map<string, MetricFamily>> | undefined;
  const collect = (): Promise<Map<string, MetricFamily>> => {
    // Every registered metric's get() of one scrape starts in the same tick: they share one collection.
    inflight ??= (async () => {
      let families: MetricFamily[];
      if (typeof sources === 'function') families = await sources();
      else {
        const c = await collectMetrics(sources, options);
        if (c.errors.length && options.onError) options.onError(c.errors);
        families = c.families;
      }
      const byName = new Map<string, MetricFamily>();
      for (const f of families) {
        const name = familyName(f);
        const prev = byName.get(name);
        if (prev) prev.samples.push(...f.samples);
        else byName.set(name, { ...f, samples: [...f.samples] });
      }
      return byName;
    })().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };
  const defs = options.definitions ?? METRIC_DEFINITIONS;
  const registered: string[] = [];
  for (const d of defs) {
    const name = familyName(d);
    const metric: PromMetricObject = {
      name,
      help: d.help,
      type: d.type,
      aggregator: 'sum',
      async get() {
        const f = (await collect()).get(name);
        const values = (f?.samples ?? []).map((s) => ({ labels: { ...s.labels }, value: Number(s.value) }));
        // `metric.name`: prom-client renames counters (drops `_total`) for OpenMetrics output.
        return { name: metric.name, help: d.help, type: d.type, aggregator: 'sum' as const, values };
      },
      reset() {},
    };
    try {
      registry.registerMetric(metric);
    } catch (e) {
      for (const n of registered) registry.removeSingleMetric(n);
      throw new ValidationError('prom-client registration', [{ path: name, message: e instanceof Error ? e.message : String(e) }], { hint: 'each metric name can be registered once per registry; unregister() the earlier registration first' });
    }
    registered.push(name);
  }
  return {
    names: registered,
    unregister() {
      for (const n of registered) registry.removeSingleMetric(n);
    },
  };
}
