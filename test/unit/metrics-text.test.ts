/**
 * The Prometheus text renderer against the format's rules: HELP/TYPE lines,
 * escapes, one family per name, `_total` for counters, values; its output
 * read back by a strict parser and compared line for line with what
 * prom-client renders for the same metrics.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { parsePrometheusText, PrometheusTextError } from '../../src/metrics/parse.js';
import { PROMETHEUS_CONTENT_TYPE, toPrometheusText } from '../../src/metrics/text.js';
import type { MetricFamily } from '../../src/metrics/types.js';

const nasty = 'a\\b "quoted"\nnext line';

const fams: MetricFamily[] = [
  {
    name: 'netfence_nft_rule_bytes_total',
    help: 'Bytes counted by a rule.\nSecond line with a \\ backslash.',
    type: 'counter',
    samples: [
      { labels: { table: 'web', chain: 'input', rule: 'ssh' }, value: 420 },
      { labels: { table: 'web', chain: 'input', rule: nasty }, value: 0 },
    ],
  },
  { name: 'netfence_xdp_entries', help: 'Live entries.', type: 'gauge', samples: [{ labels: { blocklist: 'edge' }, value: 3 }, { labels: {}, value: 1.5 }] },
];

describe('toPrometheusText', () => {
  it('writes HELP and TYPE once per family, then its samples; escapes help and label values; ends with a newline', () => {
    const text = toPrometheusText(fams);
    expect(text).toBe(
      [
        '# HELP netfence_nft_rule_bytes_total Bytes counted by a rule.\\nSecond line with a \\\\ backslash.',
        '# TYPE netfence_nft_rule_bytes_total counter',
        'netfence_nft_rule_bytes_total{table="web",chain="input",rule="ssh"} 420',
        'netfence_nft_rule_bytes_total{table="web",chain="input",rule="a\\\\b \\"quoted\\"\\nnext line"} 0',
        '# HELP netfence_xdp_entries Live entries.',
        '# TYPE netfence_xdp_entries gauge',
        'netfence_xdp_entries{blocklist="edge"} 3',
        'netfence_xdp_entries 1.5',
        '',
      ].join('\n'),
    );
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('parses back strictly to the same families, label values and help unescaped', () => {
    const parsed = parsePrometheusText(toPrometheusText(fams));
    expect(parsed.map((f) => [f.name, f.type, f.help])).toEqual(fams.map((f) => [f.name, f.type, f.help]));
    expect(parsed[0]!.samples.map((s) => [s.labels, s.value])).toEqual(fams[0]!.samples.map((s) => [s.labels, s.value]));
    expect(parsed[1]!.samples.map((s) => s.value)).toEqual([3, 1.5]);
  });

  it('renders what prom-client renders for the same counters and gauges (blank lines between families aside)', async () => {
    const reg = new Registry();
    const c = new Counter({ name: 'netfence_nft_rule_bytes_total', help: fams[0]!.help, labelNames: ['table', 'chain', 'rule'], registers: [reg] });
    for (const s of fams[0]!.samples) c.inc(s.labels as Record<string, string>, Number(s.value));
    const g = new Gauge({ name: 'netfence_xdp_entries', help: 'Live entries.', labelNames: ['blocklist'], registers: [reg] });
    g.set({ blocklist: 'edge' }, 3);
    g.set(1.5);
    const theirs = (await reg.metrics()).replace(/\n\n/g, '\n');
    expect(toPrometheusText(fams)).toBe(theirs);
  });

  it('names counters …_total, merges families of one name, keeps integers exact, writes NaN and infinities', () => {
    const text = toPrometheusText([
      { name: 'netfence_x_bytes', help: 'h', type: 'counter', samples: [{ labels: { a: '1' }, value: 2n ** 64n - 1n }] },
      { name: 'netfence_x_bytes_total', help: 'h', type: 'counter', samples: [{ labels: { a: '2' }, value: 2 ** 53 }] },
      { name: 'netfence_g', help: '', type: 'gauge', samples: [{ labels: { k: 'nan' }, value: NaN }, { labels: { k: 'inf' }, value: Infinity }, { labels: { k: '-inf' }, value: -Infinity }, { labels: { k: 'neg' }, value: -0.25 }] },
      { name: 'netfence_empty', help: 'no series yet', type: 'gauge', samples: [] },
    ]);
    expect(text.split('\n').filter((l) => l.startsWith('# TYPE'))).toEqual(['# TYPE netfence_x_bytes_total counter', '# TYPE netfence_g gauge', '# TYPE netfence_empty gauge']);
    expect(text).toContain('netfence_x_bytes_total{a="1"} 18446744073709551615\n');
    expect(text).toContain('netfence_x_bytes_total{a="2"} 9007199254740992\n');
    expect(text).toContain('netfence_g{k="nan"} NaN\nnetfence_g{k="inf"} +Inf\nnetfence_g{k="-inf"} -Inf\nnetfence_g{k="neg"} -0.25\n');
    const parsed = parsePrometheusText(text);
    expect(parsed.map((f) => `${f.name}:${f.samples.length}`)).toEqual(['netfence_x_bytes_total:2', 'netfence_g:4', 'netfence_empty:0']);
    expect(Number.isNaN(parsed[1]!.samples[0]!.value)).toBe(true);
    expect(toPrometheusText([])).toBe('');
  });

  it('refuses what the format cannot carry, with a ValidationError naming each problem', () => {
    const bad = (f: Partial<MetricFamily>) => () => toPrometheusText([{ name: 'netfence_ok', help: '', type: 'gauge', samples: [], ...f } as MetricFamily]);
    expect(bad({ name: '1bad' })).toThrow(ValidationError);
    expect(bad({ name: 'bad-name' })).toThrow(/invalid metric name/);
    expect(bad({ type: 'histogram' as never })).toThrow(/counter or gauge/);
    expect(bad({ samples: [{ labels: { 'bad-label': 'x' }, value: 1 }] })).toThrow(/invalid label name/);
    expect(bad({ samples: [{ labels: { __reserved: 'x' }, value: 1 }] })).toThrow(/invalid label name/);
    expect(bad({ samples: [{ labels: { a: 1 as never }, value: 1 }] })).toThrow(/strings/);
    expect(bad({ samples: [{ labels: { a: 'x', b: 'y' }, value: 1 }, { labels: { b: 'y', a: 'x' }, value: 2 }] })).toThrow(/duplicate series/);
    expect(bad({ type: 'counter', name: 'netfence_c_total', samples: [{ labels: {}, value: -1 }] })).toThrow(/>= 0/);
    expect(bad({ type: 'counter', name: 'netfence_c_total', samples: [{ labels: {}, value: NaN }] })).toThrow(/>= 0/);
    expect(bad({ samples: [{ labels: {}, value: '3' as never }] })).toThrow(/number or a bigint/);
    expect(() => toPrometheusText([{ name: 'netfence_t_total', help: '', type: 'gauge', samples: [] }, { name: 'netfence_t', help: '', type: 'counter', samples: [] }])).toThrow(/given as gauge and as counter/);
  });
});

describe('parsePrometheusText (the strict reader the tests use)', () => {
  const bad = (text: string, re: RegExp) => expect(() => parsePrometheusText(text), text).toThrow(re);

  it('refuses broken exposition text, naming the line', () => {
    bad('a 1', /newline/);
    bad('a{b="c} 1\n', /unterminated/);
    bad('a{b="\\x"} 1\n', /invalid escape/);
    bad('a{b=c} 1\n', /expected ="/);
    bad('a{b="1",b="2"} 1\n', /twice/);
    bad('a 1\na 2\n', /given twice/);
    bad('a 1\nb 1\na{x="1"} 1\n', /not one group/);
    bad('a one\n', /invalid value/);
    bad('# TYPE a counter\n# TYPE a counter\n', /given twice/);
    bad('a 1\n# TYPE a counter\n', /after its samples/);
    bad('# TYPE a countr\n', /invalid type/);
    bad('# HELP a x\n# HELP a y\n', /second HELP/);
    bad('# TYPE a_total counter\na_total -1\n', /negative/);
    bad('a{__x="1"} 1\n', /reserved/);
    bad('a1\n', /blank before the value/);
    expect(() => parsePrometheusText('a 1\r\n')).toThrow(PrometheusTextError);
  });

  it('reads comments, timestamps, trailing commas and histogram suffixes', () => {
    const p = parsePrometheusText('# a comment\n# HELP h x\n# TYPE h histogram\nh_bucket{le="1",} 2\nh_sum 3\nh_count 2\nc{a="1"} 5 1700000000000\n');
    expect(p.map((f) => [f.name, f.type, f.samples.length])).toEqual([
      ['h', 'histogram', 3],
      ['c', 'untyped', 1],
    ]);
    expect(p[1]!.samples[0]).toEqual({ name: 'c', labels: { a: '1' }, value: 5, timestamp: 1700000000000 });
  });
});
