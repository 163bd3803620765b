/**
 * netfence's metrics: every counter it has, as Prometheus metric families —
 * from instances ({@link metricsOf}, {@link collectMetrics}), from what
 * netfence owns in a network namespace ({@link netnsMetrics}), rendered by
 * {@link toPrometheusText} or served through a prom-client registry
 * ({@link registerPromClient}).
 * @module
 */
export type { MetricFamily, MetricLabels, MetricSample, MetricType } from './types.js';
export { toPrometheusText, PROMETHEUS_CONTENT_TYPE } from './text.js';
export { METRIC_DEFINITIONS, type MetricDefinition } from './catalogue.js';
export { metricsOf, collectMetrics, mergeFamilies, type MetricsOptions, type MetricsSource, type CustomMetricsSource, type CollectedMetrics } from './collect.js';
export { netnsMetrics, netnsMetricsSource, statusFamilies, DEFAULT_MAX_SET_ELEMENTS, type NetnsMetrics, type NetnsMetricsOptions } from './netns.js';
export { registerPromClient, type PromRegistryLike, type PromMetricObject, type PromClientOptions, type PromClientRegistration } from './prom-client.js';
export { parsePrometheusText, PrometheusTextError, type ParsedFamily, type ParsedSample } from './parse.js';
