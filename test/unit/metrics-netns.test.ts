/**
 * netnsMetrics() and the `netfence metrics` command on a FakeHost: what the
 * classes applied is read back from the fake kernel through the status
 * layer (counters set as if packets had passed), plus the set element
 * counters and per-entry hits read here, within their bounds; the command's
 * text parses strictly and its exit codes hold.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { metricsCommands } from '../../src/cli/commands/metrics.js';
import { Firewall } from '../../src/firewall/index.js';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { METRIC_DEFINITIONS } from '../../src/metrics/catalogue.js';
import { netnsMetrics, netnsMetricsSource } from '../../src/metrics/netns.js';
import { parsePrometheusText } from '../../src/metrics/parse.js';
import { collectMetrics } from '../../src/metrics/collect.js';
import { toPrometheusText } from '../../src/metrics/text.js';
import type { MetricFamily } from '../../src/metrics/types.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { primeFakeCapabilities } from './fake-caps.js';

const NS = 'metrics-fake';
let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS], links: { [NS]: [{ ifname: 'veth0' }, { ifname: 'veth1' }] } });
  primeFakeCapabilities(NS);
  fake.respond(['cat', '/proc/net/netfilter/nfnetlink_queue'], { stdout: '   91  12345     2 2  4096     5     7       42  1\n' });
});

function value(fams: MetricFamily[], name: string, labels: Record<string, string>): number | bigint | undefined {
  return fams.find((x) => x.name === name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** Apply a firewall (a counted set, a counted rule), two limits and a blocklist fallback in the fake namespace. */
async function setup(): Promise<{ quotaId: number; ruleHandle: number; blTable: string }> {
  const fw = new Firewall({ table: 'web', netns: NS })
    .set('seen', { type: 'ipv4_addr', counter: true, elements: ['198.18.0.1', '198.18.0.2'] })
    .chain('input', { hook: 'input', priority: 0, policy: 'accept' })
    .rule('input', { id: 'from-seen', saddr: '@seen', counter: true, action: 'accept' });
  expect((await fw.apply()).ok).toBe(true);
  const th = new Throttler({ netns: NS, name: 'app' });
  (await th.limit({ iface: 'veth0', direction: 'egress', rate: '10mbit' })).unwrap();
  const quota = (await th.limit({ iface: 'veth1', direction: 'ingress', quota: { bytes: 1_000_000, action: 'drop' } })).unwrap();
  const bl = new XdpBlocklist({ iface: 'veth1', netns: NS, name: 'fakebl', backend: 'nft' });
  expect((await bl.apply()).ok).toBe(true);
  expect((await bl.add(['198.18.5.5', '198.18.6.0/24'])).ok).toBe(true);
  const rule = fake.nftOf(NS).rules('inet', 'web', 'input')!.find((r) => r.comment?.includes('from-seen'))!;
  fake.nftOf(NS).setRuleCounter('inet', 'web', 'input', rule.handle, { packets: 12, bytes: 3400 });
  const qt = quota.plan.tables[0]!.name;
  fake.nftOf(NS).setObject('inet', qt, 'counter', `l${quota.id}_m`, { packets: 30, bytes: 9000 });
  fake.nftOf(NS).setObject('inet', qt, 'counter', `l${quota.id}_qd`, { packets: 4, bytes: 1200 });
  fake.nftOf(NS).setObject('netdev', bl.nftTable, 'counter', 'dropped', { packets: 5, bytes: 300 });
  return { quotaId: quota.id, ruleHandle: rule.handle, blTable: bl.nftTable };
}

describe('netnsMetrics on a FakeHost', () => {
  it('reads rule and named counters, set sizes, limits, the blocklist and queues from the fake kernel', async () => {
    await withHost(fake, async () => {
      const { quotaId, ruleHandle, blTable } = await setup();
      const m = (await netnsMetrics({ netns: NS })).unwrap();
      expect(m.warnings).toEqual([]);
      const f = m.families;
      const rule = { netns: NS, family: 'inet', table: 'web', chain: 'input', handle: String(ruleHandle), rule: 'from-seen' };
      expect(value(f, 'netfence_nft_rule_packets_total', rule)).toBe(12);
      expect(value(f, 'netfence_nft_rule_bytes_total', rule)).toBe(3400);
      expect(value(f, 'netfence_nft_set_elements', { table: 'web', set: 'seen' })).toBe(2);
      // the set was declared with counters: its element counters summed (0 here: the fake counts no packets)
      expect(value(f, 'netfence_nft_set_packets_total', { table: 'web', set: 'seen' })).toBe(0);
      // the quota limit: matched minus over-quota drops, from its named counters; its name from the table's owner
      const q = { netns: NS, throttler: 'app', limit: String(quotaId), iface: 'veth1', direction: 'ingress', backend: 'nft-limit' };
      expect(value(f, 'netfence_throttle_bytes_total', q)).toBe(7800);
      expect(value(f, 'netfence_throttle_dropped_packets_total', q)).toBe(4);
      expect(value(f, 'netfence_throttle_quota_exceeded', q)).toBe(0);
      expect(value(f, 'netfence_nft_counter_packets_total', { table: blTable, counter: 'dropped' })).toBe(5);
      // the blocklist running on veth1 (nft fallback), its entries one by one
      const xdp = { netns: NS, iface: 'veth1', blocklist: 'fakebl' };
      expect(value(f, 'netfence_xdp_dropped_packets_total', xdp)).toBe(5);
      expect(value(f, 'netfence_xdp_entries', xdp)).toBe(2);
      expect(value(f, 'netfence_xdp_blocklist_info', { ...xdp, backend: 'nft' })).toBe(1);
      expect(f.find((x) => x.name === 'netfence_xdp_entry_dropped_packets_total')!.samples.map((s) => s.labels.entry).sort()).toEqual(['198.18.5.5', '198.18.6.0/24']);
      // the kernel's NFQUEUE line
      const queue = { netns: NS, queue: '91' };
      expect([value(f, 'netfence_nfqueue_queued_packets_total', queue), value(f, 'netfence_nfqueue_queue_dropped_packets_total', queue), value(f, 'netfence_nfqueue_user_dropped_packets_total', queue), value(f, 'netfence_nfqueue_waiting_packets', queue)]).toEqual([42, 5, 7, 2]);
      // every family is in the catalogue and the text parses back strictly
      const parsed = parsePrometheusText(toPrometheusText(f));
      for (const p of parsed) expect(METRIC_DEFINITIONS.map((d) => d.name)).toContain(p.name);
    });
  });

  it('bounds: no set listing above maxSetElements, no per-entry series above maxEntries', async () => {
    await withHost(fake, async () => {
      await setup();
      const before = fake.calls.length;
      const m = (await netnsMetrics({ netns: NS, maxSetElements: 1, maxEntries: 1 })).unwrap();
      expect(value(m.families, 'netfence_nft_set_elements', { set: 'seen' })).toBe(2);
      expect(m.families.find((x) => x.name === 'netfence_nft_set_packets_total')).toBeUndefined();
      expect(m.families.find((x) => x.name === 'netfence_xdp_entry_dropped_packets_total')).toBeUndefined();
      // no full listing of the tables was asked for (set sizes come from the status layer)
      expect(fake.calls.slice(before).filter((c) => c.argv.join(' ').includes('list table'))).toEqual([]);
    });
  });

  it('as a collectMetrics source; an unreadable namespace is a failing source', async () => {
    await withHost(fake, async () => {
      await setup();
      const c = await collectMetrics([netnsMetricsSource({ netns: NS }), netnsMetricsSource({ netns: 'bad name' })]);
      expect(c.errors.map((e) => [e.source, e.error.code])).toEqual([['netns:bad name', 'VALIDATION']]);
      expect(value(c.families, 'netfence_metrics_source_up', { source: `netns:${NS}` })).toBe(1);
      expect(value(c.families, 'netfence_nft_set_elements', { set: 'seen' })).toBe(2);
    });
  });
});

describe('netfence metrics (the command) on a FakeHost', () => {
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const log = console.log;
    const error = console.error;
    const write = process.stdout.write.bind(process.stdout);
    console.log = (...a: unknown[]) => void out.push(a.join(' '));
    console.error = (...a: unknown[]) => void err.push(a.join(' '));
    process.stdout.write = ((s: string) => (out.push(s), true)) as typeof process.stdout.write;
    try {
      const code = await metricsCommands[0]!.run(args);
      return { code, out: out.join(''), err: err.join('\n') };
    } finally {
      console.log = log;
      console.error = error;
      process.stdout.write = write;
    }
  };

  it('prints the text format (and JSON with --json); exit 2 on bad arguments', async () => {
    await withHost(fake, async () => {
      await setup();
      // without --netns: the fake's own namespace (a --netns must exist under /run/netns on the machine; NS is covered through netnsMetrics above)
      const text = await run([]);
      expect(text.code).toBe(0);
      expect(() => parsePrometheusText(text.out)).not.toThrow();
      const json = await run(['--json']);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.out)).toMatchObject({ families: expect.any(Array), warnings: [] });
      expect((await run(['--bogus'])).code).toBe(2);
      expect((await run(['--max-entries', 'many'])).code).toBe(2);
      expect((await run(['--netns', 'bad name'])).code).toBe(2);
    });
  });
});
