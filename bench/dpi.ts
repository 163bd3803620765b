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
 *   server) with DpiBlocker on / off, default options. Once the first connection's
 *   HTTP request identified the server's port as plain HTTP, the later connections
 *   pass as a settled service (`settleServices`, on by default) without crossing
 *   userspace until the entry expires; `flows` in the detail counts the connections
 *   the workers saw. Goal ≥ 0.8.
 * - `dpi.new-connections.every-inspected`: the same with `settleServices: false`,
 *   every connection's first packets through the queue: what a connection to a
 *   service not seen before costs (no goal; 4 rounds).
 * - `dpi.throughput`: one TCP stream (iperf3, 3 s, 4 rounds) with DpiBlocker on / off:
 *   only a flow's first packets cross userspace, so it should stay near 1.
 * - Floors of the queue mechanism on this machine, same run, same rules (three
 *   figures without a goal, each against the same router without DpiBlocker):
 *   `dpi.new-connections.rules-only` (DpiBlocker's steering rules with the queue
 *   target replaced by the benign conntrack mark: what the rules cost),
 *   `dpi.new-connections.c-reader-1` (the rules, queues read by bench/lib/nfq-floor.c,
 *   a minimal C reader that judges each flow benign at its first queued packet,
 *   inspecting nothing: one queued packet per connection, as DpiBlocker queues where
 *   the kernel gives the readers conntrack attributes) and `dpi.new-connections.c-reader-2`
 *   (the same reader letting the SYN through and judging the next packet: two queued
 *   packets per connection, as DpiBlocker queues without them). `packetsQueuedPerFlow`
 *   in the DPI figure's detail says which applies. They say how much of the DPI figure the kernel's queue
 *   mechanism costs here whatever reads the queue. The reader is compiled with cc
 *   or clang at bench time; without a compiler these figures are not measured (said).
 * Offline classification against ndpiReader: bench/dpi-offline.ts.
 *
 * Run: npx tsx bench/dpi.ts   (lab namespaces only; about 2.5 min)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DpiBlocker } from '../src/dpi/dpi-blocker.js';
import { DEFAULT_FLOW_MARKS } from '../src/dpi/nfqueue/marks.js';
import { run } from '../src/host/run.js';
import { startProcess } from '../src/host/spawn.js';
import { withLab, type Lab, type LabHost } from '../src/lab/index.js';
import { apply } from '../src/plan/executor.js';
import type { Plan } from '../src/plan/types.js';
import { alternate, median, report } from './lib/harness.js';

const SERVERS = fileURLToPath(new URL('../test/kernel/dpi-servers.mjs', import.meta.url));
const FLOOR_C = fileURLToPath(new URL('./lib/nfq-floor.c', import.meta.url));
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
/** Compile bench/lib/nfq-floor.c into `dir`; the binary path, or why not. */
async function buildFloorReader(dir: string): Promise<{ bin?: string; why?: string }> {
  const bin = join(dir, 'nfq-floor');
  const tried: string[] = [];
  for (const cc of ['cc', 'clang']) {
    const r = await run([cc, '-O2', '-o', bin, FLOOR_C], { timeoutMs: 60_000 });
    if (r.ok) return { bin };
    tried.push(`${cc}: ${r.val.message.split('\n')[0]}`);
  }
  return { why: `no C compiler could build bench/lib/nfq-floor.c (${tried.join('; ')})` };
}

/** The plan with every xtables NFQUEUE target replaced by setting the benign conntrack mark (no queue). */
function withoutQueue(plan: Plan): Plan | undefined {
  const m = DEFAULT_FLOW_MARKS;
  const hex = (n: number): string => `0x${n.toString(16)}`;
  let replaced = 0;
  const steps = plan.steps.map((st) => ({
    ...st,
    do: st.do.map((a) => {
      if (a.kind !== 'exec' || typeof a.input !== 'string' || !a.input.includes('-j NFQUEUE')) return a;
      const input = a.input.replace(/-j NFQUEUE[^\n]*/g, () => {
        replaced++;
        return `-j CONNMARK --set-xmark ${hex(m.benign)}/${hex(m.mask)}`;
      });
      return { ...a, input };
    }),
  }));
  return replaced ? { ...plan, steps } : undefined;
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

  const tally = () => ({ packets: 0, flows: 0, bypassed: 0, detections: 0, settled: 0, failedOn: 0, failedOff: 0 });
  const queued = tally();
  /** Measure `fn` with a DpiBlocker applied on the router (default options unless `settleServices: false`), destroyed afterwards. */
  const withBlocker = async <T>(fn: () => Promise<T>, q = queued, settle = true): Promise<T> => {
    const dpi = new DpiBlocker({ netns: r.netns, queues: [90, 2], failOpen: true, ...(settle ? {} : { settleServices: false as const }) });
    (await dpi.apply()).unwrap();
    try {
      const v = await fn();
      const st = (await dpi.stats()).unwrap();
      q.packets += st.queues.reduce((n, x) => n + (x.reader?.packets ?? 0), 0);
      q.flows += st.flowsSeen;
      q.bypassed += st.bypassed;
      q.detections += st.detections;
      q.settled += st.settledServices?.added ?? 0;
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
      // the flows the workers saw (the others passed as a settled service, unqueued)
      flows: queued.flows,
      settledServicesAdded: queued.settled,
      bypassed: queued.bypassed,
      detections: queued.detections,
      failed: { on: queued.failedOn, off: queued.failedOff },
    },
  });

  // The same with every connection inspected (settleServices: false): what a connection to a service not seen before costs.
  const every = tally();
  const conn1 = await alternate(
    Math.max(2, Math.floor(ROUNDS / 2)),
    () =>
      withBlocker(
        async () => {
          const x = await connRate(c);
          every.failedOn += x.failed;
          return x.perSecond;
        },
        every,
        false,
      ),
    async () => {
      const x = await connRate(c);
      every.failedOff += x.failed;
      return x.perSecond;
    },
  );
  report({
    id: 'dpi.new-connections.every-inspected',
    figure: `new TCP connections/s through a router running DpiBlocker with settleServices: false, every connection inspected (HTTP/1.0, ${CONC} at once)`,
    ours: conn1.ours,
    baseline: conn1.baseline,
    baselineName: 'same router without DpiBlocker',
    unit: 'conn/s',
    goal: {},
    detail: {
      steering,
      oursSamples: conn1.oursSamples.map(Math.round),
      baselineSamples: conn1.baselineSamples.map(Math.round),
      packetsQueuedPerFlow: every.flows ? +(every.packets / every.flows).toFixed(2) : 0,
      flows: every.flows,
      failed: { on: every.failedOn, off: every.failedOff },
    },
  });

  // Floors: the same rules with a queue reader that does nothing (C), and the rules alone.
  {
    const dir = mkdtempSync(join(tmpdir(), 'netfence-bench-floor-'));
    try {
      const built = await buildFloorReader(dir);
      // the floors queue every connection, as DpiBlocker with settleServices: false
      const blocker = new DpiBlocker({ netns: r.netns, queues: [90, 2], failOpen: true, settleServices: false });
      const compiled = blocker.compile((await blocker.hostFacts()).unwrap()).unwrap();
      const [q0, qn] = compiled.queues;
      const queueArgs = Array.from({ length: qn }, (_, i) => String(q0 + i));
      const withRules = async (plan: Plan, fn: () => Promise<number>): Promise<number> => {
        const applied = (await apply(plan)).unwrap();
        try {
          return await fn();
        } finally {
          (await applied.rollback()).unwrap();
        }
      };
      const floorRun = (passSyn: boolean) => async (): Promise<number> => {
        const reader = startProcess([built.bin as string, '--mark', String(DEFAULT_FLOW_MARKS.benign), ...(passSyn ? ['--pass-syn'] : []), ...queueArgs], { netns: r.netns, stdout: 'ignore', stderr: 'pipe' });
        let err = '';
        reader.stderr?.on('data', (d: Buffer) => (err += d.toString()));
        for (let i = 0; i < 100 && !err.includes('bound') && reader.alive; i++) await sleep(20);
        if (!err.includes('bound')) throw new Error(`nfq-floor did not bind its queues: ${err.trim() || 'no output'}`);
        try {
          return await withRules(compiled.plan, async () => (await connRate(c)).perSecond);
        } finally {
          reader.kill('SIGTERM');
          await reader.exited;
        }
      };
      const off = async (): Promise<number> => (await connRate(c)).perSecond;
      const floors: { id: string; figure: string; fn?: () => Promise<number>; why?: string }[] = [
        {
          id: 'dpi.new-connections.rules-only',
          figure: "new TCP connections/s, DpiBlocker's steering rules with the queue target replaced by the benign mark (floor: the rules)",
          ...(compiled.steering === 'xtables'
            ? {
                fn: () => {
                  const noQueue = withoutQueue(compiled.plan);
                  if (!noQueue) throw new Error('the xtables steering plan has no NFQUEUE target to replace');
                  return withRules(noQueue, off);
                },
              }
            : { why: 'measured for the xtables steering form only' }),
        },
        {
          id: 'dpi.new-connections.c-reader-1',
          figure: 'new TCP connections/s, the same rules read by a minimal C NFQUEUE reader judging each flow at its first queued packet (floor: the queue, 1 packet per connection, as DpiBlocker with conntrack attributes)',
          ...(built.bin ? { fn: floorRun(false) } : { why: built.why }),
        },
        {
          id: 'dpi.new-connections.c-reader-2',
          figure: 'new TCP connections/s, the same C reader letting the SYN through and judging the next packet (floor: the queue, 2 packets per connection, as DpiBlocker without conntrack attributes)',
          ...(built.bin ? { fn: floorRun(true) } : { why: built.why }),
        },
      ];
      for (const f of floors) {
        if (!f.fn) {
          console.log(`not measured: ${f.id}: ${f.why}`);
          continue;
        }
        const x = await alternate(Math.max(2, Math.floor(ROUNDS / 2)), f.fn, off);
        report({
          id: f.id,
          figure: f.figure,
          ours: x.ours,
          baseline: x.baseline,
          baselineName: 'same router without DpiBlocker',
          unit: 'conn/s',
          goal: {},
          detail: { steering: compiled.steering, oursSamples: x.oursSamples.map(Math.round), baselineSamples: x.baselineSamples.map(Math.round), dpiRatio: +(conn.ours / conn.baseline).toFixed(3), medianOff: Math.round(median(x.baselineSamples)) },
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  let port = 5201;
  const tput = await alternate(
    4,
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
