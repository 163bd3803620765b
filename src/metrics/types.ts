/**
 * The sample model of netfence's metrics: families of samples, each family a
 * name, a help text and a type (counter or gauge), each sample a label set
 * and a value. It is what every metrics source produces and what
 * {@link toPrometheusText} renders.
 * @module
 */

/** The two kinds of metric netfence produces. */
export type MetricType = 'counter' | 'gauge';

/** Label name → value of one sample. Label names: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`. */
export type MetricLabels = Readonly<Record<string, string>>;

/** One time series' current value. */
export interface MetricSample {
  /** Labels of this series (may be empty). */
  labels: MetricLabels;
  /** The value: a number, or a bigint for 64-bit kernel counters. Counters are >= 0. */
  value: number | bigint;
}

/** One metric family: every series of one name. */
export interface MetricFamily {
  /**
   * Metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`. Counters end in `_total`
   * (the renderer adds it when missing); values are in base units (bytes,
   * seconds) and the name says which (`_bytes_total`, `_seconds`).
   */
  name: string;
  /** One line saying what is counted (free text; escaped by the renderer). */
  help: string;
  /** `counter` (only goes up, reset when the object is re-created) or `gauge`. */
  type: MetricType;
  /** The series; a family may have none. */
  samples: MetricSample[];
}
