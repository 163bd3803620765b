/**
 * The Prometheus text exposition format (version 0.0.4), rendered from
 * {@link MetricFamily} values: per family one `# HELP` and one `# TYPE`
 * line, then its samples; label values escaped (`\\`, `\"`, `\n`), help text
 * escaped (`\\`, `\n`); counters named `…_total`.
 * @module
 */
import { ValidationError, type ValidationIssue } from '../errors.js';
import type { MetricFamily, MetricLabels, MetricSample } from './types.js';

/** The HTTP `Content-Type` of {@link toPrometheusText}'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `\` and newline escaped, as HELP lines need. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `\`, `"` and newline escaped, as label values need. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value as the format writes it: integers exactly, `NaN`, `+Inf`, `-Inf`. */
export function formatValue(v: number | bigint): string {
  if (typeof v === 'bigint') return v.toString();
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '0';
  return String(v);
}

/** The name a family is rendered under: counters get `_total` when they lack it. */
export function familyName(f: Pick<MetricFamily, 'name' | 'type'>): string {
  return f.type === 'counter' && !f.name.endsWith('_total') ? `${f.name}_total` : f.name;
}

/** A stable key of a label set (order-independent), to find duplicate series. */
export function labelKey(labels: MetricLabels): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

function sampleIssues(f: MetricFamily, name: string, s: MetricSample, i: number, seen: Set<string>): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const path = `${name}.samples.${i}`;
  if (!s || typeof s !== 'object' || !s.labels || typeof s.labels !== 'object') return [{ path, message: 'a sample is { labels, value }' }];
  for (const [k, v] of Object.entries(s.labels)) {
    if (!LABEL_NAME.test(k) || k.startsWith('__')) out.push({ path: `${path}.labels`, message: `invalid label name ${JSON.stringify(k)} (want [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)` });
    if (typeof v !== 'string') out.push({ path: `${path}.labels.${k}`, message: 'label values are strings' });
  }
  const v = s.value;
  if (typeof v === 'bigint') {
    if (f.type === 'counter' && v < 0n) out.push({ path: `${path}.value`, message: 'a counter is >= 0' });
  } else if (typeof v !== 'number') out.push({ path: `${path}.value`, message: 'a value is a number or a bigint' });
  else if (f.type === 'counter' && !(v >= 0)) out.push({ path: `${path}.value`, message: `a counter is a number >= 0 (got ${String(v)})` });
  const key = labelKey(s.labels);
  if (seen.has(key)) out.push({ path: `${path}.labels`, message: `duplicate series ${name}${formatLabels(s.labels)}` });
  seen.add(key);
  return out;
}

function formatLabels(labels: MetricLabels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/**
 * Render metric families in the Prometheus text exposition format 0.0.4
 * (serve it with {@link PROMETHEUS_CONTENT_TYPE}). Families of the same
 * name are rendered as one (their help and type must agree); a counter's
 * name gets `_total` when it lacks it. The output ends with a newline;
 * an empty list renders as an empty string.
 *
 * Throws a {@link ValidationError} for what the format cannot carry (a bad
 * metric or label name, a negative or non-numeric counter, two series with
 * the same labels, one name with two types): those are programming errors.
 *
 * @example
 * ```ts
 * toPrometheusText([{ name: 'netfence_xdp_dropped_packets_total', help: 'Packets dropped.', type: 'counter',
 *   samples: [{ labels: { blocklist: 'edge' }, value: 42 }] }]);
 * // # HELP netfence_xdp_dropped_packets_total Packets dropped.
 * // # TYPE netfence_xdp_dropped_packets_total counter
 * // netfence_xdp_dropped_packets_total{blocklist="edge"} 42
 * ```
 */
export function toPrometheusText(families: readonly MetricFamily[]): string {
  const issues: ValidationIssue[] = [];
  const merged = new Map<string, { help: string; type: MetricFamily['type']; samples: { s: MetricSample; f: MetricFamily }[] }>();
  families.forEach((f, i) => {
    if (!f || typeof f.name !== 'string' || !METRIC_NAME.test(f.name)) {
      issues.push({ path: `families.${i}.name`, message: `invalid metric name ${JSON.stringify(f?.name)} (want [a-zA-Z_:][a-zA-Z0-9_:]*)` });
      return;
    }
    if (f.type !== 'counter' && f.type !== 'gauge') {
      issues.push({ path: `${f.name}.type`, message: `type must be counter or gauge (got ${JSON.stringify(f.type)})` });
      return;
    }
    const name = familyName(f);
    const help = typeof f.help === 'string' ? f.help : '';
    const m = merged.get(name);
    if (!m) merged.set(name, { help, type: f.type, samples: (f.samples ?? []).map((s) => ({ s, f })) });
    else if (m.type !== f.type) issues.push({ path: `${name}.type`, message: `${name} is given as ${m.type} and as ${f.type}` });
    else m.samples.push(...(f.samples ?? []).map((s) => ({ s, f })));
  });
  const lines: string[] = [];
  for (const [name, m] of merged) {
    lines.push(`# HELP ${name} ${escapeHelp(m.help)}`, `# TYPE ${name} ${m.type}`);
    const seen = new Set<string>();
    m.samples.forEach(({ s, f }, i) => {
      const bad = sampleIssues(f, name, s, i, seen);
      if (bad.length) issues.push(...bad);
      else lines.push(`${name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    });
  }
  if (issues.length) throw new ValidationError('metrics', issues.slice(0, 20));
  return lines.length ? `${lines.join('\n')}\n` : '';
}
