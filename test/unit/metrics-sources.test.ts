/**
 * Metric families of each class, read through the instance's own stats() on
 * a FakeHost (counters set in the fake kernel, as if packets had passed), of
 * a DpiBlocker fed worker events, and collectMetrics' merging and failure
 * reporting. Every rendered text is read back by the strict parser.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import type { DpiHandlerDetection } from '../../src/dpi/blocker-handler.js';
import { NetfenceError } from '../../src/errors.js';
import { Firewall } from '../../src/firewall/index.js';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { METRIC_DEFINITIONS } from '../../src/metrics/catalogue.js';
import { collectMetrics, mergeFamilies, metricsOf } from '../../src/metrics/collect.js';
import { parsePrometheusText } from '../../src/metrics/parse.js';
import { nfqueueFamilies } from '../../src/metrics/sources.js';
import { toPrometheusText } from '../../src/metrics/text.js';
import type { MetricFamily } from '../../src/metrics/types.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { Err } from '../../src/result.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { primeFakeCapabilities } from './fake-caps.js';

const NS = 'met-fake';
let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS], links: { [NS]: [{ ifname: 'veth0' }] } });
  primeFakeCapabilities(NS);
});

/** The value of the sample of `name` whose labels include `labels`. */
function value(fams: MetricFamily[], name: string, labels: Record<string, string> = {}): number | bigint | undefined {
  const f = fams.find((x) => x.name === name);
  return f?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** Render, parse back strictly, and check every family is in the catalogue with its labels. */
function roundTrip(fams: MetricFamily[]): void {
  const parsed = parsePrometheusText(toPrometheusText(fams));
  for (const f of parsed) {
    const d = METRIC_DEFINITIONS.find((x) => x.name === f.name);
    expect(d, f.name).toBeDefined();
    expect(f.type).toBe(d!.type);
    for (const s of f.samples) expect(Object.keys(s.labels), f.name).toEqual([...d!.labels]);
  }
}

describe('metricsOf', () => {
  it('Firewall: per-rule packets and bytes by id, chain and handle; counted sets', async () => {
    const fw = new Firewall({ table: 'web', netns: NS });
    fw.chain('input', { type: 'filter', hook: 'input', priority: 0, policy: 'drop' });
    fw.set('seen', { type: 'ipv4_addr', counter: true, elements: ['198.18.0.1', '198.18.0.2'] });
    fw.rule('input', { id: 'ssh', protocol: 'tcp', dport: 22, counter: true, action: { type: 'accept' } });
    await withHost(fake, async () => {
      expect((await fw.apply()).ok).toBe(true);
      const ssh = fake.nftOf(NS).rules('inet', 'web', 'input')!.find((r) => r.comment?.includes('ssh'))!;
      fake.nftOf(NS).setRuleCounter('inet', 'web', 'input', ssh.handle, { packets: 7, bytes: 420 });
      const fams = (await metricsOf(fw)).unwrap();
      const l = { netns: NS, family: 'inet', table: 'web', chain: 'input', handle: String(ssh.handle), rule: 'ssh' };
      expect(value(fams, 'netfence_nft_rule_packets_total', l)).toBe(7);
      expect(value(fams, 'netfence_nft_rule_bytes_total', l)).toBe(420);
      expect(value(fams, 'netfence_nft_set_elements', { table: 'web', set: 'seen' })).toBe(2);
      roundTrip(fams);
    });
  });

  it('Throttler: bytes, packets and drops per limit from the nft counters (nft-limit backend)', async () => {
    const th = new Throttler({ netns: NS, name: 'app' });
    await withHost(fake, async () => {
      const h = (await th.limit({ iface: 'veth0', direction: 'ingress', rate: '5mbit', backend: 'nft-limit' })).unwrap();
      const table = h.plan.tables[0]!.name;
      fake.nftOf(NS).setObject('inet', table, 'counter', `l${h.id}_m`, { packets: 100, bytes: 150_000 });
      fake.nftOf(NS).setObject('inet', table, 'counter', `l${h.id}_d`, { packets: 10, bytes: 15_000 });
      const fams = (await metricsOf(th)).unwrap();
      const l = { netns: NS, throttler: 'app', limit: String(h.id), iface: 'veth0', direction: 'ingress', backend: 'nft-limit' };
      expect(value(fams, 'netfence_throttle_bytes_total', l)).toBe(135_000);
      expect(value(fams, 'netfence_throttle_packets_total', l)).toBe(90);
      expect(value(fams, 'netfence_throttle_dropped_packets_total', l)).toBe(10);
      roundTrip(fams);
      expect((await th.destroy()).ok).toBe(true);
    });
  });

  it('XdpBlocklist (nft backend): totals, entries, per-entry hits only up to maxEntries entries', async () => {
    const bl = new XdpBlocklist({ iface: 'veth0', netns: NS, backend: 'nft', name: 'edge' });
    await withHost(fake, async () => {
      expect((await bl.apply()).ok).toBe(true);
      expect((await bl.add(['198.18.0.1', '198.18.5.0/24', 'fd00::1'])).ok).toBe(true);
      fake.nftOf(NS).setObject('netdev', bl.nftTable, 'counter', 'dropped', { packets: 5, bytes: 300 });
      fake.nftOf(NS).setObject('netdev', bl.nftTable, 'counter', 'passed', { packets: 50, bytes: 3000 });
      const fams = (await metricsOf(bl)).unwrap();
      const l = { netns: NS, iface: 'veth0', blocklist: 'edge' };
      expect(value(fams, 'netfence_xdp_dropped_packets_total', l)).toBe(5);
      expect(value(fams, 'netfence_xdp_dropped_bytes_total', l)).toBe(300);
      expect(value(fams, 'netfence_xdp_passed_packets_total', l)).toBe(50);
      expect(value(fams, 'netfence_xdp_entries', l)).toBe(3);
      expect(value(fams, 'netfence_xdp_blocklist_info', { ...l, backend: 'nft' })).toBe(1);
      expect(fams.find((f) => f.name === 'netfence_xdp_entry_dropped_packets_total')!.samples.map((s) => s.labels.entry).sort()).toEqual(['198.18.0.1', '198.18.5.0/24', 'fd00::1']);
      roundTrip(fams);
      // more entries than maxEntries: totals only, no per-entry series
      const big = (await metricsOf(bl, { maxEntries: 2 })).unwrap();
      expect(big.find((f) => f.name === 'netfence_xdp_entry_dropped_packets_total')).toBeUndefined();
      expect(value(big, 'netfence_xdp_entries', l)).toBe(3);
      const none = (await metricsOf(bl, { maxEntries: 0 })).unwrap();
      expect(none.find((f) => f.name === 'netfence_xdp_entry_dropped_packets_total')).toBeUndefined();
      expect((await bl.destroy()).ok).toBe(true);
    });
  });

  it('DpiBlocker: verdicts, flows, detections by classifier and action, fail-open passes, the queues\' kernel lines', async () => {
    const b = new DpiBlocker({ netns: NS });
    type Feed = { onWorkerEvent(queue: number, data: unknown): void; failOpen: boolean; handle: unknown };
    const feed = b as unknown as Feed;
    const det = (over: Partial<DpiHandlerDetection>): DpiHandlerDetection => ({ kind: 'detection', transport: 'udp', family: 4, client: { addr: '198.18.2.2', port: 6881 }, server: { addr: '198.18.1.2', port: 6881 }, reason: 'uTP', detection: 'utp', classifier: 'bittorrent', peers: false, atPacket: 3, monitored: false, ...over });
    feed.onWorkerEvent(0, det({}));
    feed.onWorkerEvent(0, det({ detection: 'handshake' }));
    feed.onWorkerEvent(1, det({}));
    feed.onWorkerEvent(1, det({ monitored: true }));
    feed.onWorkerEvent(0, { kind: 'counters', counters: { packets: 20, undecodable: 1, flows: 4, detections: 2, cacheHits: 0, benign: 2, dropped: 3, accepted: 9 } });
    feed.onWorkerEvent(1, { kind: 'counters', counters: { packets: 5, undecodable: 0, flows: 2, detections: 2, cacheHits: 1, benign: 0, dropped: 1, accepted: 2 } });
    // a worker's reader and the kernel's line, as the queue handle reports them
    feed.failOpen = true;
    const reader = { queue: 0, packets: 21, bytes: 2100, accepted: 10, dropped: 0, repeated: 3, benign: 7, bad: 3, verdictMessages: 1, batchMessages: 1, enobufs: 2, kernelErrors: 0, handlerErrors: 1, gso: 0, truncated: 0, repeatLoops: 0, pending: 0, connmarkVia: 'ct' as const, rcvbuf: 1 };
    const kernel = { queue: 0, portid: 1, queueTotal: 0, copyMode: 2, copyRange: 65535, queueDropped: 4, userDropped: 6, idSequence: 23 };
    feed.handle = { stats: async () => [{ queue: 0, pid: 1, reader, kernel }], post: () => 1 };
    const fams = (await metricsOf(b)).unwrap();
    const q0 = { netns: NS, queue: '0' };
    expect(value(fams, 'netfence_dpi_verdicts_total', { ...q0, verdict: 'accept' })).toBe(10);
    expect(value(fams, 'netfence_dpi_verdicts_total', { ...q0, verdict: 'drop' })).toBe(3);
    expect(value(fams, 'netfence_dpi_verdicts_total', { ...q0, verdict: 'bypass' })).toBe(7);
    expect(value(fams, 'netfence_dpi_verdicts_total', { netns: NS, queue: '1', verdict: 'drop' })).toBe(1);
    expect(value(fams, 'netfence_dpi_flows_total', q0)).toBe(4);
    expect(value(fams, 'netfence_dpi_detections_total', { classifier: 'bittorrent', detection: 'utp', action: 'dropped' })).toBe(2);
    expect(value(fams, 'netfence_dpi_detections_total', { classifier: 'bittorrent', detection: 'utp', action: 'monitored' })).toBe(1);
    expect(value(fams, 'netfence_dpi_detections_total', { classifier: 'bittorrent', detection: 'handshake', action: 'dropped' })).toBe(1);
    expect(value(fams, 'netfence_dpi_fail_open_passes_total', q0)).toBe(1);
    expect(value(fams, 'netfence_dpi_socket_overruns_total', q0)).toBe(2);
    expect(value(fams, 'netfence_nfqueue_queue_dropped_packets_total', q0)).toBe(4);
    expect(value(fams, 'netfence_nfqueue_user_dropped_packets_total', q0)).toBe(6);
    expect(value(fams, 'netfence_nfqueue_queued_packets_total', q0)).toBe(23);
    expect(value(fams, 'netfence_dpi_running', { netns: NS })).toBe(0);
    roundTrip(fams);
  });
});

describe('collectMetrics', () => {
  it('merges sources, keeps the first of two equal series, and reports a failing source as source_up 0', async () => {
    const queues = nfqueueFamilies(NS, [{ queue: 3, portid: 1, queueTotal: 2, copyMode: 2, copyRange: 0xffff, queueDropped: 0, userDropped: 0, idSequence: 9 }]).families();
    const again = nfqueueFamilies(NS, [{ queue: 3, portid: 1, queueTotal: 2, copyMode: 2, copyRange: 0xffff, queueDropped: 0, userDropped: 0, idSequence: 10 }]).families();
    const c = await collectMetrics([
      { name: 'a', collect: async () => queues },
      { name: 'b', collect: async () => again },
      { name: 'c', collect: async () => Err(new NetfenceError('COMMAND_FAILED', 'nft is gone')) },
      { name: 'd', collect: async () => { throw new Error('boom'); } },
    ]);
    expect(c.errors.map((e) => [e.source, e.error.message])).toEqual([['c', 'nft is gone'], ['d', 'metrics source d: boom']]);
    expect(value(c.families, 'netfence_nfqueue_queued_packets_total', { queue: '3' })).toBe(9);
    expect(c.families.find((f) => f.name === 'netfence_nfqueue_queued_packets_total')!.samples).toHaveLength(1);
    expect(c.families.at(-1)!.samples.map((s) => [s.labels.source, s.value])).toEqual([['a', 1], ['b', 1], ['c', 0], ['d', 0]]);
    roundTrip(c.families);
    expect(mergeFamilies([...queues, ...again]).map((f) => f.samples.length)).toEqual([1, 1, 1, 1]);
  });

  it('an instance that was never applied is a failing source, not a failed scrape', async () => {
    const fw = new Firewall({ table: 'never', netns: NS });
    fw.chain('input', { type: 'filter', hook: 'input', priority: 0 });
    fw.rule('input', { id: 'x', action: { type: 'accept' } });
    const c = await withHost(fake, () => collectMetrics([fw]));
    expect(c.errors.map((e) => e.source)).toEqual([`firewall:inet/never@${NS}`]);
    expect(value(c.families, 'netfence_metrics_source_up', { source: `firewall:inet/never@${NS}` })).toBe(0);
  });
});
