/**
 * `netfence metrics` against a lab router running a Firewall (a counted rule
 * matching a set with counters), a Throttler limit, an XdpBlocklist (XDP or
 * the nft fallback, whichever apply chose from the capability report) and a
 * DpiBlocker (steering in the form the report allows). The CLI runs as its
 * own process; its output is read back by the strict parser, and every
 * counter must move by at least the traffic sent through the router. The
 * DpiBlocker's in-process counters are read with metricsOf() from this
 * process, after the same traffic.
 *
 * client c 198.18.1.2 (+ 198.18.1.3, blocked) — router r — server s 198.18.2.2
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { withLab } from '../../src/lab/index.js';
import { metricsOf } from '../../src/metrics/collect.js';
import { parsePrometheusText, type ParsedFamily } from '../../src/metrics/parse.js';
import { toPrometheusText } from '../../src/metrics/text.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { pair, routerTopo, traffic } from './nfqueue-lab.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('npx', ['tsx', MAIN, ...args], { reject: false, timeout: 120_000, env: { ...process.env } });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `netfence metrics --netns NS`, checked strictly and parsed. */
async function metrics(netns: string): Promise<ParsedFamily[]> {
  const r = await cli(['metrics', '--netns', netns]);
  expect(r.stderr, r.stderr).toBe('');
  expect(r.code).toBe(0);
  return parsePrometheusText(`${r.stdout}\n`.replace(/\n+$/, '\n'));
}

/** The value of the one sample of `name` whose labels include `labels` (undefined when there is none). */
function value(fams: readonly ParsedFamily[], name: string, labels: Record<string, string>): number | undefined {
  const f = fams.find((x) => x.name === name);
  const hits = f?.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)) ?? [];
  expect(hits.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return hits[0]?.value;
}


const SENT = 2 * 1024 * 1024;
const PINGS = 3;

describe('netfence metrics', () => {
  it('prints the counters of a router running all four classes; they move by at least the traffic sent', async () => {
    await withLab('climetrics', async (lab) => {
      const { t, toClient, toServer } = await routerTopo(lab);
      const ns = t.r.netns;
      const caps = await detectCapabilities({ netns: ns });

      const fw = new Firewall({ table: 'nf_metrics', netns: ns })
        .set('clients', { type: 'ipv4_addr', counter: true, elements: ['198.18.1.2'] })
        .chain('fwd', { hook: 'forward', priority: 10 })
        .rule('fwd', { id: 'from-client', saddr: '@clients', counter: true, action: 'accept' });
      const throttler = new Throttler({ netns: ns, name: 'mt' });
      const blName = `mt${process.pid.toString(36)}`;
      const bl = new XdpBlocklist({ iface: toClient, netns: ns, name: blName });
      const dpi = new DpiBlocker({ netns: ns, queues: [93, 1] });
      try {
        const fa = await fw.apply();
        if (fa.err) throw fa.val;
        const lim = await throttler.limit({ iface: toServer, direction: 'egress', rate: '500mbit' });
        if (lim.err) throw lim.val;
        const at = await bl.apply();
        if (at.err) throw at.val;
        expect((await bl.add(['198.18.1.3', '198.18.77.0/24', 'fd00:77::1'])).ok).toBe(true);
        const started = await dpi.apply();
        if (started.err) throw started.val;

        const rule = { netns: ns, family: 'inet', table: 'nf_metrics', chain: 'fwd', rule: 'from-client' };
        const set = { netns: ns, family: 'inet', table: 'nf_metrics', set: 'clients' };
        // The Throttler's name is in the kernel only for limits with an nft table, and a tc police action
        // records no interface or direction: those labels are matched only where the backend records them.
        const recorded: Record<string, string> = lim.val.backend === 'tc-police' ? {} : { iface: toServer, direction: 'egress' };
        const limit: Record<string, string> = { netns: ns, limit: String(lim.val.id), backend: lim.val.backend, ...recorded };
        const xdp = { netns: ns, iface: toClient, blocklist: blName };
        const queue = { netns: ns, queue: '93' };

        const before = await metrics(ns);
        // every object is there before any traffic
        for (const f of before) expect(f.help, f.name).toBeTruthy();
        expect(value(before, 'netfence_nft_rule_packets_total', rule)).toBeGreaterThanOrEqual(0);
        expect(value(before, 'netfence_nft_set_elements', set)).toBe(1);
        expect(value(before, 'netfence_nft_set_packets_total', set)).toBeGreaterThanOrEqual(0);
        expect(value(before, 'netfence_throttle_bytes_total', limit)).toBeGreaterThanOrEqual(0);
        expect(value(before, 'netfence_xdp_entries', xdp)).toBe(3);
        expect(value(before, 'netfence_xdp_blocklist_info', { ...xdp, backend: bl.backend })).toBe(1);
        expect(value(before, 'netfence_xdp_entry_dropped_packets_total', { ...xdp, entry: '198.18.1.3' })).toBe(0);
        expect(value(before, 'netfence_nfqueue_queued_packets_total', queue)).toBeGreaterThanOrEqual(0);
        const form = caps.nft.features.queue.available ? 'nft' : 'xtables';
        // both steering forms count their rules: the form the capability report allows is there
        const steered = (fams: ParsedFamily[]) => fams.find((f) => f.name === 'netfence_dpi_steered_packets_total')?.samples.filter((x) => x.labels.form === form && x.labels.netns === ns) ?? [];
        expect(steered(before).length, `steering counters of the ${form} form`).toBeGreaterThanOrEqual(1);

        // traffic: a TCP transfer client → server through the router, pings from the blocked address
        const sent = await pair(
          () => traffic<{ conns: { bytes: number }[] }>(t.s, ['tcp-sink', '5302', '20000', '1'], 40_000),
          () => traffic<{ error: string | null }>(t.c, ['tcp-send', '198.18.2.2', '5302', String(SENT), '15000'], 40_000),
        );
        expect(sent.send.error).toBeNull();
        expect(sent.recv.conns.reduce((a, c) => a + c.bytes, 0)).toBe(SENT);
        await lab.exec(t.c, ['ping', '-c', String(PINGS), '-i', '0.2', '-W', '1', '-I', '198.18.1.3', '198.18.1.1']);

        const after = await metrics(ns);
        const delta = (name: string, labels: Record<string, string>) => (value(after, name, labels) ?? NaN) - (value(before, name, labels) ?? NaN);
        // Firewall: every client packet crossed the counted rule and matched the set element (IP headers make bytes >= payload)
        expect(delta('netfence_nft_rule_bytes_total', rule)).toBeGreaterThanOrEqual(SENT);
        expect(delta('netfence_nft_rule_packets_total', rule)).toBeGreaterThan(0);
        expect(delta('netfence_nft_set_bytes_total', set)).toBeGreaterThanOrEqual(SENT);
        // Throttler: the transfer left through the limited interface under the rate
        expect(delta('netfence_throttle_bytes_total', limit)).toBeGreaterThanOrEqual(SENT);
        expect(delta('netfence_throttle_packets_total', limit)).toBeGreaterThan(0);
        // XdpBlocklist: each ping from the blocked address was dropped and counted on its entry
        expect(delta('netfence_xdp_dropped_packets_total', xdp)).toBeGreaterThanOrEqual(PINGS);
        expect(delta('netfence_xdp_entry_dropped_packets_total', { ...xdp, entry: '198.18.1.3' })).toBeGreaterThanOrEqual(PINGS);
        expect(delta('netfence_xdp_passed_packets_total', xdp)).toBeGreaterThan(0);
        // NFQUEUE: the flow's first packets went through queue 93
        expect(delta('netfence_nfqueue_queued_packets_total', queue)).toBeGreaterThan(0);
        const sum = (xs: { value: number }[]) => xs.reduce((a, x) => a + x.value, 0);
        expect(sum(steered(after)) - sum(steered(before))).toBeGreaterThanOrEqual(delta('netfence_nfqueue_queued_packets_total', queue));

        // in process: the blocker's verdicts and engine counters (the worker reports them within 250 ms)
        let dpiFams = (await metricsOf(dpi)).unwrap();
        for (let i = 0; i < 20 && !(value(parsePrometheusText(toPrometheusText(dpiFams)), 'netfence_dpi_inspected_packets_total', queue)! > 0); i++) {
          await new Promise((r) => setTimeout(r, 250));
          dpiFams = (await metricsOf(dpi)).unwrap();
        }
        const dp = parsePrometheusText(toPrometheusText(dpiFams));
        expect(value(dp, 'netfence_dpi_running', { netns: ns })).toBe(1);
        expect(value(dp, 'netfence_dpi_inspected_packets_total', queue)).toBeGreaterThan(0);
        expect(value(dp, 'netfence_dpi_received_packets_total', queue)).toBeGreaterThan(0);
        expect(value(dp, 'netfence_dpi_verdicts_total', { ...queue, verdict: 'accept' })! + value(dp, 'netfence_dpi_verdicts_total', { ...queue, verdict: 'bypass' })!).toBeGreaterThan(0);
        expect(value(dp, 'netfence_dpi_verdicts_total', { ...queue, verdict: 'drop' })).toBe(0);
        expect(value(dp, 'netfence_nfqueue_queued_packets_total', queue)).toBeGreaterThan(0);

        // JSON: the same families
        const json = await cli(['metrics', '--netns', ns, '--json']);
        expect(json.code).toBe(0);
        const j = JSON.parse(json.stdout) as { netns: string; families: { name: string }[]; warnings: string[] };
        expect(j.netns).toBe(ns);
        expect(j.warnings).toEqual([]);
        expect(j.families.map((f) => f.name)).toEqual(after.map((f) => f.name));
      } finally {
        await dpi.destroy();
        await bl.destroy();
        await throttler.destroy();
        await fw.destroy();
      }
      // nothing netfence owns is left: no series
      const empty = await metrics(ns);
      expect(empty.flatMap((f) => f.samples)).toEqual([]);
    });
  });

  it('exit codes: 2 for a namespace that does not exist and for bad arguments', async () => {
    const missing = await cli(['metrics', '--netns', 'nflab-does-not-exist-h2']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/ip netns add/);
    const bad = await cli(['metrics', '--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/usage: netfence metrics/);
    expect((await cli(['metrics', '--max-entries', '-1'])).code).toBe(2);
    expect((await cli(['metrics', '--netns', '../etc'])).code).toBe(2);
  });
});
