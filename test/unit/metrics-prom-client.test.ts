/**
 * The prom-client adapter with the real prom-client: netfence's metrics in
 * an app's registry next to its own, one collection per scrape, the text
 * read back strictly, OpenMetrics output, JSON, a name clash, unregister.
 */
import './fake-setup.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Registry, type OpenMetricsContentType } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { Firewall } from '../../src/firewall/index.js';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { METRIC_DEFINITIONS, METRICS } from '../../src/metrics/catalogue.js';
import { parsePrometheusText } from '../../src/metrics/parse.js';
import { registerPromClient, type PromRegistryLike } from '../../src/metrics/prom-client.js';
import { nfqueueFamilies } from '../../src/metrics/sources.js';
import { toPrometheusText } from '../../src/metrics/text.js';
import type { MetricFamily } from '../../src/metrics/types.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';

const q = (idSequence: number): MetricFamily[] => nfqueueFamilies('r1', [{ queue: 3, portid: 1, queueTotal: 2, copyMode: 2, copyRange: 0xffff, queueDropped: 1, userDropped: 0, idSequence }]).families();

describe('registerPromClient', () => {
  it('serves the families through the registry, next to the app\'s own metrics, one collection per scrape', async () => {
    const reg = new Registry();
    const mine = new Counter({ name: 'app_requests_total', help: 'Requests.', registers: [reg] });
    mine.inc(2);
    let calls = 0;
    let seq = 10;
    const r = registerPromClient(reg satisfies PromRegistryLike, async () => (calls++, q(seq++)));
    expect(r.names).toEqual(METRIC_DEFINITIONS.map((d) => d.name));
    const text = await reg.metrics();
    expect(calls).toBe(1);
    const parsed = parsePrometheusText(text);
    expect(parsed.find((f) => f.name === 'app_requests_total')!.samples[0]!.value).toBe(2);
    const queued = parsed.find((f) => f.name === METRICS.queueQueued.name)!;
    expect(queued.type).toBe('counter');
    expect(queued.samples).toEqual([{ name: 'netfence_nfqueue_queued_packets_total', labels: { netns: 'r1', queue: '3' }, value: 10 }]);
    // the same lines netfence's own renderer writes for the family
    const own = toPrometheusText(q(10).filter((f) => f.name === METRICS.queueQueued.name));
    expect(text).toContain(own);
    // a family without samples is HELP and TYPE only; a second scrape collects again
    expect(parsed.find((f) => f.name === METRICS.xdpEntries.name)!.samples).toEqual([]);
    expect(await reg.getSingleMetricAsString(METRICS.queueQueued.name)).toContain('netfence_nfqueue_queued_packets_total{netns="r1",queue="3"} 11');
    expect(calls).toBe(2);
    const json = await reg.getMetricsAsJSON();
    expect(json.find((m) => m.name === METRICS.queueWaiting.name)).toMatchObject({ type: 'gauge', values: [{ labels: { netns: 'r1', queue: '3' }, value: 2 }] });
    reg.resetMetrics(); // the kernel's counters are not prom-client's to reset
    r.unregister();
    expect(reg.getMetricsAsArray().map((m) => m.name)).toEqual(['app_requests_total']);
  });

  it('reads instances on scrape (a Firewall on a FakeHost), with default labels and in OpenMetrics', async () => {
    clearNftBatchFeatures();
    const fake = new FakeHost({ netns: ['pc'] });
    const fw = new Firewall({ table: 'web', netns: 'pc' });
    fw.chain('input', { type: 'filter', hook: 'input', priority: 0 });
    fw.rule('input', { id: 'ssh', protocol: 'tcp', dport: 22, counter: true, action: { type: 'accept' } });
    await withHost(fake, async () => {
      expect((await fw.apply()).ok).toBe(true);
      const h = fake.nftOf('pc').rules('inet', 'web', 'input')![0]!.handle;
      fake.nftOf('pc').setRuleCounter('inet', 'web', 'input', h, { packets: 3, bytes: 180 });
      const reg = new Registry<OpenMetricsContentType>();
      reg.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      reg.setDefaultLabels({ host: 'r1' });
      const errors: string[] = [];
      registerPromClient(reg, [fw], { onError: (e) => errors.push(...e.map((x) => x.source)) });
      const text = await reg.metrics();
      expect(text).toContain('# TYPE netfence_nft_rule_bytes counter\n');
      expect(text).toContain(`netfence_nft_rule_bytes_total{netns="pc",family="inet",table="web",chain="input",handle="${h}",rule="ssh",host="r1"} 180\n`);
      expect(text).toContain('netfence_metrics_source_up{source="firewall:inet/web@pc",host="r1"} 1');
      expect(text.endsWith('# EOF\n')).toBe(true);
      expect(errors).toEqual([]);
    });
  });

  it('refuses a name that is already registered and leaves nothing of its own behind', () => {
    const reg = new Registry();
    new Counter({ name: METRICS.dpiFlows.name, help: 'taken', registers: [reg] });
    expect(() => registerPromClient(reg, async () => [])).toThrow(ValidationError);
    expect(reg.getMetricsAsArray().map((m) => m.name)).toEqual([METRICS.dpiFlows.name]);
    // a subset of definitions avoids the clash
    const r = registerPromClient(reg, async () => [], { definitions: [METRICS.queueQueued] });
    expect(r.names).toEqual([METRICS.queueQueued.name]);
  });
});

describe('prom-client stays optional', () => {
  it('no module under src/ imports it: the registry is passed in and typed structurally', () => {
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    const importers = files('src').filter((f) => /^(?:import|export)\b[^\n]*['"]prom-client['"]|^[^*\n]*(?:import|require)\(\s*['"]prom-client['"]/m.test(readFileSync(f, 'utf8')));
    expect(importers).toEqual([]);
  });
});
