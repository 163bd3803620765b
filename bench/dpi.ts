/**
 * DpiBlocker cost on forwarded traffic: client — router — server namespaces;
 * the router runs DpiBlocker (built-in BitTorrent classifier, xtables
 * steering on this kernel, first 24 packets of each flow queued, fail-open).
 *
 * Figure: TCP throughput with DpiBlocker on / off (iperf3, one stream, -t 3,
 * both in the same run). Only a flow's first packets cross userspace, so the
 * ratio should stay near 1.
 * Also printed: new connections per second (short HTTP/1.0 GETs on fresh
 * TCP connections, 4 at once, 3 s) with DpiBlocker on / off — every new
 * connection's handshake and first packets go through the queue.
 * (Offline classification packets/s against ndpiReader: bench/dpi-offline.ts.)
 *
 * Run: npx tsx bench/dpi.ts
 */
import { fileURLToPath } from 'node:url';
import { DpiBlocker } from '../src/dpi/dpi-blocker.js';
import { run } from '../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../src/lab/index.js';

const SERVERS = fileURLToPath(new URL('../test/kernel/dpi-servers.mjs', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function iperf(lab: Lab, c: LabHost, s: LabHost, port: number): Promise<number> {
  const server = run(['iperf3', '-s', '-1', '-J', '-p', String(port)], { netns: s.netns, timeoutMs: 20_000 });
  await sleep(400);
  const client = await lab.exec(c, ['iperf3', '-c', '198.18.2.2', '-p', String(port), '-t', '3', '-J'], { timeoutMs: 20_000 });
  await server;
  const j = JSON.parse(client.ok ? client.val.stdout : client.val.failure.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
  return Number(j.end?.sum_received?.bits_per_second ?? 0);
}

async function connRate(c: LabHost): Promise<{ done: number; failed: number; perSecond: number }> {
  const r = await run([process.execPath, SERVERS, 'conn-rate', '198.18.2.2', '8080', '3000', '4'], { netns: c.netns, timeoutMs: 20_000 });
  return JSON.parse(r.ok ? r.val.stdout.trim() : '{"done":0,"failed":0,"perSecond":0}') as { done: number; failed: number; perSecond: number };
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
  const http = run([process.execPath, SERVERS, 'http', '8080', '60000', '0.0.0.0'], { netns: s.netns, timeoutMs: 70_000 });
  await sleep(500);

  const offBps = await iperf(lab, c, s, 5201);
  const offConn = await connRate(c);

  const dpi = new DpiBlocker({ netns: r.netns, queues: [90, 2], failOpen: true });
  const st = await dpi.apply();
  if (st.err) throw st.val;
  let onBps = 0;
  let onConn = { done: 0, failed: 0, perSecond: 0 };
  let stats;
  try {
    onBps = await iperf(lab, c, s, 5202);
    onConn = await connRate(c);
    await sleep(300);
    stats = (await dpi.stats()).unwrap();
  } finally {
    await dpi.destroy();
  }
  const queued = stats.queues.reduce((n, q) => n + (q.reader?.packets ?? 0), 0);
  console.log(`TCP throughput (iperf3 -t 3): off ${(offBps / 1e9).toFixed(2)} Gbit/s, DpiBlocker on ${(onBps / 1e9).toFixed(2)} Gbit/s`);
  console.log(`new connections/s (HTTP/1.0 GET, 4 concurrent, 3 s): off ${offConn.perSecond.toFixed(0)}, on ${onConn.perSecond.toFixed(0)} (failed: off ${offConn.failed}, on ${onConn.failed}); ratio ${(onConn.perSecond / offConn.perSecond).toFixed(2)}`);
  console.log(`DpiBlocker: flows ${stats.flowsSeen}, packets queued ${queued}, detections ${stats.detections}, bypassed ${stats.bypassed}`);
  console.log(`figure: throughput ratio on/off = ${(onBps / offBps).toFixed(3)}`);
  void http;
});
