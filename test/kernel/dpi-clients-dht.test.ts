/**
 * DpiBlocker against real clients whose peers meet through DHT only (issue 12):
 * qBittorrent-nox and transmission-daemon, each a swarm with its seeder on
 * 198.18.2.2, trackerless torrents, local peer discovery off, a DHT of 12 nodes
 * on a host beside the seeder's (dpi-dht-lab.ts). Everything else is the
 * clients' default: encryption preferred, TCP and uTP.
 *
 * qBittorrent 4.5 needs one user action: its torrent paused and resumed once its
 * DHT knows nodes (DhtClient.restart in dpi-dht-lab.ts says why), for the seeder
 * and for each leecher alike; a leecher whose DHT never reaches a node is
 * never restarted.
 *
 * The seeders start first and announce themselves to the DHT (seen at the DHT
 * node). Then two fresh leechers per client start at once: one behind a router
 * running DpiBlocker blocking (198.18.1.2), one behind a router running it
 * monitor-only (198.18.3.2, the control). Blocked: 0 bytes by the leecher's own
 * count (Web API / RPC) and on disk, and its flows detected. Control: each
 * download completes (so the blocked leechers, started with it, had the time a
 * download takes), and every flow is reported with its reason, the
 * leecher–seeder one among them. The steering form expected is the capability
 * report's. About 90 s on this 2-core machine (seeders' announce ~30 s, then
 * until the control completes and the blocked qBittorrent is seen, ~40 s: its
 * DHT starts late behind the blocker, whose hostname rule drops its lookups of
 * the compiled-in DHT routers).
 */
import { describe, expect, it } from 'vitest';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { DpiBlocker, type Detection } from '../../src/dpi/dpi-blocker.js';
import { withLab, type LabHost } from '../../src/lab/index.js';
import { timeScale } from '../lab/scale.js';
import { delivered, makeSwarmTorrent, SEEDER_ADDR, swarmRoot, type SwarmSpec, type SwarmTorrent } from './dpi-clients-lab.js';
import { BLOCKED_LEECHER, CONTROL_LEECHER, DHT_NODES, DHT_PORT, announced, dhtTopo, startDht, startDhtClient, type DhtClient } from './dpi-dht-lab.js';
import { sleep, until, type Bg } from './dpi-lab.js';

const SWARMS: SwarmSpec[] = [
  { id: 'qbt-dht', client: 'qbittorrent', encryption: 'default', discovery: 'dht', port: 6881 },
  { id: 'trn-dht', client: 'transmission', encryption: 'default', discovery: 'dht', port: 6882 },
];
const SIZE = 1024 * 1024;
/** The most the leechers get; the control must complete within it (about 30 s here). */
const WINDOW_MS = 60_000 * timeScale;
/** The seeders' first DHT announce (Transmission: about 20 s from start here). */
const ANNOUNCE_MS = 60_000 * timeScale;

const nodes = new Set(DHT_NODES);
/** A swarm's flows: between its leecher (`leecher`) and seeder on its port, or its leecher's DHT traffic. */
function ofSwarm(d: Detection, s: SwarmSpec, leecher: string): boolean {
  const ends = [d.flow.client, d.flow.server];
  if (ends.every((e) => e.addr === leecher || e.addr === SEEDER_ADDR) && ends.some((e) => e.port === s.port)) return true;
  return ends.some((e) => e.addr === leecher && e.port === s.port) && ends.some((e) => nodes.has(e.addr) && e.port === DHT_PORT);
}
const flowText = (d: Detection): string => `${d.flow.transport} ${d.flow.client.addr}:${d.flow.client.port} > ${d.flow.server.addr}:${d.flow.server.port} ${d.detection}: ${d.reason}`;

interface PhaseRow {
  swarm: string;
  bytes: number;
  complete: boolean;
  ms?: number | undefined;
  counted: number | undefined;
  flows: string[];
  /** Reported flows between the leecher and the seeder (the peer wire, not DHT). */
  peerFlows: number;
}

/**
 * qBittorrent clients: each torrent restarted once, as soon as its client's DHT knows nodes (see
 * DhtClient.restart), polled every 2 s until `settled(i)` or stop().
 */
function restarter(clients: DhtClient[], torrents: SwarmTorrent[], settled: (i: number) => boolean): { stop(): Promise<void> } {
  let stopped = false;
  const loop = async (i: number): Promise<void> => {
    while (!stopped && !settled(i)) {
      if (await clients[i]!.restart()) return;
      await sleep(2000);
    }
  };
  const all = Promise.all(torrents.map((x, i) => (x.spec.client === 'qbittorrent' ? loop(i) : undefined)));
  return {
    stop: async () => {
      stopped = true;
      await all;
    },
  };
}

/** One phase's leechers: one per swarm on `host` (address `addr`), with the detections of its router. */
interface Phase {
  addr: string;
  leechers: DhtClient[];
  seen: Detection[];
  done: Map<string, number>;
}

/**
 * Both phases at once: a leecher per swarm behind each router (the last phase is the control).
 * Wait until every control leecher has completed and every other leecher has been detected (then
 * 3 s more), or WINDOW_MS; read each client's own count; stop them. The blocked leechers started
 * with the control ones, so they had at least the time the control needed.
 */
async function runPhases(torrents: SwarmTorrent[], phases: { host: LabHost; addr: string; tag: string; seen: Detection[] }[]): Promise<PhaseRow[][]> {
  const t0 = Date.now();
  const ps: Phase[] = phases.map((p) => ({ addr: p.addr, seen: p.seen, done: new Map(), leechers: torrents.map((x) => startDhtClient(p.host, x, 'leech', p.tag)) }));
  const restarts = ps.map((p) => restarter(p.leechers, torrents, (i) => p.done.has(torrents[i]!.spec.id)));
  const control = ps[ps.length - 1]!;
  try {
    await until(() => {
      for (const p of ps)
        torrents.forEach((x, i) => {
          if (!p.done.has(x.spec.id) && delivered(x, p.leechers[i]!.dir).complete) p.done.set(x.spec.id, Date.now() - t0);
        });
      // The control complete, and every other phase's leechers seen trying (qBittorrent's DHT starts late
      // behind the blocker: its lookups of its compiled-in DHT routers are dropped, by hostname, and time out).
      return control.done.size === torrents.length && ps.slice(0, -1).every((p) => torrents.every((x) => p.seen.some((d) => ofSwarm(d, x.spec, p.addr))));
    }, WINDOW_MS, 500);
    await sleep(3000);
    await Promise.all(restarts.map((r) => r.stop()));
    const counted = await Promise.all(ps.map((p) => Promise.all(p.leechers.map((l) => l.downloaded()))));
    await Promise.all(ps.flatMap((p) => p.leechers.map((l) => l.proc.kill())));
    return ps.map((p, k) =>
      torrents.map((x, i) => {
        const d = delivered(x, p.leechers[i]!.dir);
        const mine = p.seen.filter((s) => ofSwarm(s, x.spec, p.addr));
        const peerFlows = mine.filter((s) => s.flow.client.addr === SEEDER_ADDR || s.flow.server.addr === SEEDER_ADDR).length;
        return { swarm: x.spec.id, ...d, ms: p.done.get(x.spec.id), counted: counted[k]![i], flows: mine.map(flowText), peerFlows };
      }),
    );
  } finally {
    await Promise.all(ps.flatMap((p) => p.leechers.map((l) => l.proc.kill())));
  }
}

describe('DpiBlocker with real clients that find their peer through DHT only (qBittorrent-nox, transmission-daemon)', () => {
  it('blocking: 0 bytes reach each leecher (its own count and on disk); monitor-only: each download completes within the same window and its flows are reported with reasons', async () => {
    await withLab('dpidht', async (lab) => {
      const t = await dhtTopo(lab);
      const root = swarmRoot();
      const procs: Bg[] = [];
      const seenB: Detection[] = [];
      const seenM: Detection[] = [];
      const block = new DpiBlocker({ netns: t.r1.netns, queues: [88, 2] });
      const monitor = new DpiBlocker({ netns: t.r2.netns, queues: [90, 2], monitorOnly: true });
      const blockers = [block, monitor];
      block.on('detection', (d) => seenB.push(d));
      monitor.on('detection', (d) => seenM.push(d));
      try {
        const dht = startDht(t.d, ANNOUNCE_MS + WINDOW_MS + 30_000 * timeScale);
        procs.push(dht);
        const torrents = SWARMS.map((s) => makeSwarmTorrent(s, root.root, SIZE));
        const seeders = torrents.map((x) => startDhtClient(t.s, x, 'seed', 'seed'));
        procs.push(...seeders.map((s) => s.proc));
        // The seeders are in the DHT before any leecher looks (their DHT crosses neither router).
        const t0 = Date.now();
        const restarts = restarter(seeders, torrents, (i) => announced(dht, SEEDER_ADDR, SWARMS[i]!.port));
        for (const [b, r] of [[block, t.r1], [monitor, t.r2]] as const) {
          (await b.apply()).unwrap();
          const caps = await detectCapabilities({ netns: r.netns });
          expect((await b.stats()).unwrap().steering).toBe(caps.nft.features.queue.available ? 'nft' : 'xtables');
        }
        const ready = await until(() => SWARMS.every((s) => announced(dht, SEEDER_ADDR, s.port)), ANNOUNCE_MS, 300);
        await restarts.stop();
        console.log(`[dpi dht] seeders announced to the lab DHT: ${ready} after ${Date.now() - t0} ms`);
        if (!ready) console.log(`[dpi dht] DHT node:\n${dht.out()}\n${seeders.map((s) => s.proc.out().slice(-3000)).join('\n')}`);
        expect(SWARMS.filter((s) => !announced(dht, SEEDER_ADDR, s.port)).map((s) => s.id)).toEqual([]);

        // Both phases at once: a leecher behind the blocking router, another behind the monitor-only one.
        const [blocked, control] = (await runPhases(torrents, [
          { host: t.c1, addr: BLOCKED_LEECHER, tag: 'block', seen: seenB },
          { host: t.c2, addr: CONTROL_LEECHER, tag: 'monitor', seen: seenM },
        ])) as [PhaseRow[], PhaseRow[]];
        await sleep(300);
        const st = (await monitor.stats()).unwrap();
        for (const r of blocked) console.log(`[dpi dht, blocking] ${r.swarm}: ${r.bytes}/${SIZE} bytes on disk, client's count ${r.counted}\n  ${r.flows.join('\n  ')}`);
        const other = seenB.filter((d) => !SWARMS.some((x) => ofSwarm(d, x, BLOCKED_LEECHER)));
        console.log(`[dpi dht, blocking] other flows:\n  ${other.map(flowText).join('\n  ')}`);
        for (const r of control) console.log(`[dpi dht, monitor-only] ${r.swarm}: ${r.bytes}/${SIZE} bytes${r.complete ? ` complete in ${r.ms} ms` : ''}, client's count ${r.counted}\n  ${r.flows.join('\n  ')}`);

        // Blocked: not one byte, by the client's count and on disk; each swarm's flows were caught.
        expect(blocked.map((r) => [r.swarm, r.bytes, r.counted])).toEqual(blocked.map((r) => [r.swarm, 0, 0]));
        expect(blocked.filter((r) => r.flows.length === 0).map((r) => r.swarm)).toEqual([]);
        expect(seenB.every((d) => d.action === 'dropped')).toBe(true);
        // Control: complete (in the time the blocked leechers had too), by disk and the client's count; reported.
        expect(control.filter((r) => !r.complete).map((r) => r.swarm)).toEqual([]);
        expect(control.filter((r) => !((r.counted ?? 0) >= SIZE)).map((r) => [r.swarm, r.counted])).toEqual([]);
        expect(control.filter((r) => r.peerFlows === 0).map((r) => r.swarm)).toEqual([]);
        expect(seenM.every((d) => d.action === 'monitored' && d.reason.length > 0)).toBe(true);
        expect(st.dropped).toBe(0);
      } finally {
        for (const b of blockers) await b.destroy();
        await Promise.all(procs.map((p) => p.kill()));
        root.cleanup();
      }
    });
  });
});
