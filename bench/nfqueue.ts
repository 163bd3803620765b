/**
 * NFQUEUE reader throughput: small UDP packets forwarded through a router
 * namespace where every UDP packet goes to the queue and a worker accepts it
 * (batch verdicts on), against the same flood with no queue, in one run.
 *
 * Figure: packets/s delivered with the queue / packets/s delivered without.
 * Also printed: the queue's own rate (packets/s the worker handled), the
 * kernel's drop counters, and the ping round-trip time with and without the
 * queue (latency added per queued packet).
 *
 * Sender: iperf3 UDP, 64-byte payloads, unlimited rate, 3 s, in the client
 * namespace; lab namespaces only. Run: npx tsx bench/nfqueue.ts
 */
import { openQueues } from '../src/dpi/nfqueue/index.js';
import { run } from '../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../src/lab/index.js';

const SECONDS = 3;

/** A 64-byte UDP flood for SECONDS; `sample` is called 1 s and 2.5 s in (to read the queue's counters mid-flood). */
async function flood(lab: Lab, c: LabHost, s: LabHost, port: number, sample?: () => Promise<number>): Promise<{ sent: number; received: number; rate?: number }> {
  const server = run(['iperf3', '-s', '-1', '-J', '-p', String(port)], { netns: s.netns, timeoutMs: (SECONDS + 15) * 1000 });
  await new Promise((r) => setTimeout(r, 400));
  const clientP = lab.exec(c, ['iperf3', '-c', '198.18.2.2', '-p', String(port), '-u', '-b', '0', '-l', '64', '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 15) * 1000 });
  let rate: number | undefined;
  if (sample) {
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = performance.now();
    const a = await sample();
    await new Promise((r) => setTimeout(r, 1500));
    const b = await sample();
    rate = ((b - a) / (performance.now() - t0)) * 1000;
  }
  const client = await clientP;
  const srv = await server;
  const parse = (r: typeof srv): Record<string, any> => JSON.parse(r.ok ? r.val.stdout : r.val.failure.stdout);
  const cj = parse(client);
  const sj = parse(srv);
  const sent = Number(cj.end?.sum?.packets ?? 0);
  const sum = sj.end?.sum ?? {};
  const received = Number(sum.packets ?? 0) - Number(sum.lost_packets ?? 0);
  return { sent, received, rate };
}

async function rtt(lab: Lab, c: LabHost): Promise<number> {
  const r = await lab.exec(c, ['ping', '-n', '-q', '-c', '50', '-i', '0.01', '198.18.2.2'], { timeoutMs: 20_000 });
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.ok ? r.val.stdout : r.val.failure.stdout);
  return m ? Number(m[1]) : NaN;
}

await withLab('nfqbench', async (lab) => {
  const c = await lab.host('c');
  const r = await lab.host('r');
  const s = await lab.host('s');
  await lab.link({ host: c, addrs: ['198.18.1.2/24'] }, { host: r, addrs: ['198.18.1.1/24'] });
  await lab.link({ host: r, addrs: ['198.18.2.1/24'] }, { host: s, addrs: ['198.18.2.2/24'] });
  await lab.forwarding(r);
  await lab.route(c, 'default', '198.18.1.1');
  await lab.route(s, 'default', '198.18.2.1');

  const base = await flood(lab, c, s, 5201);
  const baseRtt = await rtt(lab, c);

  // Queue all UDP (iperf3 control connection is TCP) and ICMP (for the RTT).
  for (const p of ['udp', 'icmp']) await lab.sh(r, ['iptables-nft', '-A', 'FORWARD', '-p', p, '-j', 'NFQUEUE', '--queue-num', '1']);
  const h = await openQueues({ netns: r.netns, queues: [1, 1], failOpen: false });
  if (h.err) throw h.val;
  try {
    const qRtt = await rtt(lab, c);
    const packets = async (): Promise<number> => (await h.val.stats())[0]?.reader?.packets ?? 0;
    const q = await flood(lab, c, s, 5202, packets);
    await new Promise((r) => setTimeout(r, 500));
    const st = (await h.val.stats())[0];
    const basePps = base.received / SECONDS;
    const qPps = q.rate ?? 0;
    const reader = st?.reader;
    console.log(`without queue: ${Math.round(basePps)} packets/s forwarded (${base.sent} sent in ${SECONDS} s)`);
    console.log(`with queue:    ${Math.round(qPps)} packets/s through the queue mid-flood (accept verdicts); ${q.received} of ${q.sent} delivered`);
    console.log(`               ${reader?.packets} packets handled with ${reader?.batchMessages} batch + ${reader?.verdictMessages} single verdict messages; kernel queue-dropped ${st?.kernel?.queueDropped}, user-dropped ${st?.kernel?.userDropped}, ENOBUFS ${reader?.enobufs}`);
    console.log(`ping RTT:      ${baseRtt.toFixed(3)} ms without queue, ${qRtt.toFixed(3)} ms with queue (+${(qRtt - baseRtt).toFixed(3)} ms for 2 queued packets per round trip)`);
    console.log(`figure: queue packets/s / forwarded packets/s without queue = ${(qPps / basePps).toFixed(3)}`);
  } finally {
    await h.val.close();
  }
});
