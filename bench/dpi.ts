/**
 * DpiBlocker cost on forwarded traffic: client — router — server namespaces;
 * the router runs DpiBlocker (built-in BitTorrent classifier, default
 * options: steering form from the capability report, first packets of each
 * flow queued, fail-open).
 *
 * Figures (each a same-run ratio, rounds alternating which side goes first,
 * medians — bench/lib/harness.ts):
 * - `dpi.new-connections`: new connections per second (HTTP/1.0 GETs on fresh
 *   TCP connections, the same client — 4 at once for 1.5 s, 8 rounds — against the same
 *   server) with DpiBlocker on / off. Every new connection's first packets go
 *   through the queue, so this is what DPI costs a busy server. Goal ≥ 0.8.
 * - `dpi.throughput`: one TCP stream (iperf3, 3 s) with DpiBlocker on / off:
 *   only a flow's first packets cross userspace, so it should stay near 1.
 * Offline classification against ndpiReader: bench/dpi-offline.ts.
 *
 * Run: npx tsx bench/dpi.ts   (lab namespaces only; about 1 min)
 */
import { fileURLToPath } from 'node:url';
import { DpiBlocker } from '../src/dpi/dpi-blocker.js';
import { run } from '../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../src/lab/index.js';
import { alternate, report } from './lib/harness.js';

const SERVERS = fileURLToPath(new URL('../test/kernel/dpi-servers.mjs', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const CONC = Number(process.env.BENCH_CONC ?? 4);

async function iperf(lab: Lab, c: LabHost, s: LabHost, port: number): Promise<number> {
  const server = run(['iperf3', '-s', '-1', '-J', '-p', String(port)], { netns: s.netns, timeoutMs: 20_000 });
  await sleep(400);
  const client = await lab.exec(c, ['iperf3', '-c', '198.18.2.2', '-p', String(port), '-t', '3', '-J'], { timeoutMs: 20_000 });
  await server;
  const j = JSON.parse(client.ok ? client.val.stdout : client.val.failure.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
  return Number(j.end?.sum_received?.bits_per_second ?? 0);
}

interface Rate {
  done: number;
  failed: number;
  perSecond: number;
}
async function connRate(c: LabHost): Promise<Rate> {
  const r = await run([process.execPath, SERVERS, 'conn-rate', '198.18.2.2', '8080', '1500', String(CONC)], { netns: c.netns, timeoutMs: 20_000 });
  return JSON.parse(r.ok ? r.val.stdout.trim() : '{"done":0,"failed":0,"perSecond":0}') as Rate;
}

await withLab('dpibench', async (lab) => {
  const c = await lab.host('c');
  const r = await lab.host('r');
  const s = await lab.host('s');
  await lab.link({ host: c, addrs: ['198.18.1.2/24'] }, { host: r, addrs: ['198.18.1.1/24'] });
  await lab.link({ host: r, addrs: ['198.18.2.1/24'] }, { host: s, addrs: ['198.18.2.2/24'] });
  await lab.forwarding(r);
  await lab.route(c, 'default', '198.18.1.1');
  await lab.route(s, 'default', '198.18.2.1');
  const http = run([process.execPath, SERVERS, 'http', '8080', '170000', '0.0.0.0'], { netns: s.netns, timeoutMs: 180_000 });
  await sleep(500);

  const queued = { packets: 0, flows: 0, bypassed: 0, detections: 0, failedOn: 0, failedOff: 0 };
  /** Measure `fn` with a DpiBlocker applied on the router, destroyed afterwards. */
  const withBlocker = async <T>(fn: () => Promise<T>): Promise<T> => {
    const dpi = new DpiBlocker({ netns: r.netns, queues: [90, 2], failOpen: true });
    (await dpi.apply()).unwrap();
    try {
      const v = await fn();
      const st = (await dpi.stats()).unwrap();
      queued.packets += st.queues.reduce((n, q) => n + (q.reader?.packets ?? 0), 0);
      queued.flows += st.flowsSeen;
      queued.bypassed += st.bypassed;
      queued.detections += st.detections;
      return v;
    } finally {
      await dpi.destroy();
    }
  };
  let steering: string | undefined;
  {
    const probe = new DpiBlocker({ netns: r.netns, queues: [90, 2], failOpen: true });
    (await probe.apply()).unwrap();
    steering = (await probe.stats()).unwrap().steering;
    await probe.destroy();
  }

  const conn = await alternate(
    ROUNDS,
    () =>
      withBlocker(async () => {
        const x = await connRate(c);
        queued.failedOn += x.failed;
        return x.perSecond;
      }),
    async () => {
      const x = await connRate(c);
      queued.failedOff += x.failed;
      return x.perSecond;
    },
  );
  report({
    id: 'dpi.new-connections',
    figure: `new TCP connections/s through a router running DpiBlocker (HTTP/1.0, ${CONC} at once)`,
    ours: conn.ours,
    baseline: conn.baseline,
    baselineName: 'same router without DpiBlocker',
    unit: 'conn/s',
    goal: { ratioMin: 0.8 },
    detail: {
      steering,
      rounds: conn.rounds,
      oursSamples: conn.oursSamples.map(Math.round),
      baselineSamples: conn.baselineSamples.map(Math.round),
      packetsQueuedPerFlow: queued.flows ? +(queued.packets / queued.flows).toFixed(2) : 0,
      flows: queued.flows,
      bypassed: queued.bypassed,
      detections: queued.detections,
      failed: { on: queued.failedOn, off: queued.failedOff },
    },
  });

  let port = 5201;
  const tput = await alternate(
    2,
    () => withBlocker(() => iperf(lab, c, s, port++)),
    () => iperf(lab, c, s, port++),
  );
  report({
    id: 'dpi.throughput',
    figure: 'one TCP stream through a router running DpiBlocker (iperf3, 3 s)',
    ours: tput.ours / 1e9,
    baseline: tput.baseline / 1e9,
    baselineName: 'same router without DpiBlocker',
    unit: 'Gbit/s',
    goal: { ratioMin: 0.8 },
    detail: { steering, oursSamples: tput.oursSamples.map((x) => +(x / 1e9).toFixed(2)), baselineSamples: tput.baselineSamples.map((x) => +(x / 1e9).toFixed(2)) },
  });
  http.catch(() => undefined);
});
