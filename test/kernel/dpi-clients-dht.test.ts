/**
 * DpiBlocker against real clients whose peers meet through DHT only (issue 12):
 * qBittorrent-nox and transmission-daemon, each a swarm of two (seeder on
 * 198.18.2.2, leecher on 198.18.1.2, router between), trackerless torrents, local
 * peer discovery off, a DHT of 12 nodes on a host behind the router
 * (dpi-dht-lab.ts). Everything else is the clients' default: encryption
 * preferred, TCP and uTP.
 *
 * qBittorrent 4.5 needs one user action: its torrent paused and resumed once its
 * DHT knows nodes (DhtClient.restart in dpi-dht-lab.ts says why), for the seeder
 * and for each leecher alike; a leecher whose DHT never reaches a node is
 * never restarted.
 *
 * The seeders start first and announce themselves to the DHT (seen at the DHT
 * node) before any blocker runs. Then, with DpiBlocker blocking on the router's
 * forward hook, fresh leechers get WINDOW_MS: 0 bytes by the leecher's own count
 * (Web API / RPC) and on disk, and the swarm's flows detected. Then the control,
 * monitor-only, with new leechers: each download completes, within WINDOW_MS
 * (so the blocked window was long enough for a download that was not blocked),
 * and every flow of the swarm is reported with its reason, the leecher–seeder
 * connection among them. The steering form expected is the capability report's.
 * About 110 s on this 2-core machine (seeders' announce ~30 s, blocked window
 * 40 s, control ~30 s).
 */
import { describe, expect, it } from 'vitest';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { DpiBlocker, type Detection } from '../../src/dpi/dpi-blocker.js';
import { withLab } from '../../src/lab/index.js';
import { timeScale } from '../lab/scale.js';
import { delivered, LEECHER_ADDR, makeSwarmTorrent, SEEDER_ADDR, swarmRoot, type SwarmSpec, type SwarmTorrent } from './dpi-clients-lab.js';
import { DHT_NODES, DHT_PORT, announced, startDht, startDhtClient, type DhtClient } from './dpi-dht-lab.js';
import { sleep, until, type Bg } from './dpi-lab.js';
import { topo, type Topo } from './nfqueue-lab.js';

const SWARMS: SwarmSpec[] = [
  { id: 'qbt-dht', client: 'qbittorrent', encryption: 'default', discovery: 'dht', port: 6881 },
  { id: 'trn-dht', client: 'transmission', encryption: 'default', discovery: 'dht', port: 6882 },
];
const SIZE = 1024 * 1024;
/** How long a leecher gets in each phase; the control must complete within it. */
const WINDOW_MS = 40_000 * timeScale;
/** The seeders' first DHT announce (Transmission: about 20 s from start here). */
const ANNOUNCE_MS = 60_000 * timeScale;

const nodes = new Set(DHT_NODES);
/** A swarm's flows: between its leecher and seeder on its port, or its leecher's DHT traffic. */
function ofSwarm(d: Detection, s: SwarmSpec): boolean {
  const ends = [d.flow.client, d.flow.server];
  if (ends.every((e) => e.addr === LEECHER_ADDR || e.addr === SEEDER_ADDR) && ends.some((e) => e.port === s.port)) return true;
  return ends.some((e) => e.addr === LEECHER_ADDR && e.port === s.port) && ends.some((e) => nodes.has(e.addr) && e.port === DHT_PORT);
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

/** Start a leecher per swarm, wait until all complete or WINDOW_MS, read each client's own count, stop them. */
async function leechPhase(t: Topo, torrents: SwarmTorrent[], tag: string, seen: Detection[]): Promise<PhaseRow[]> {
  const t0 = Date.now();
  const leechers: DhtClient[] = torrents.map((x) => startDhtClient(t.c, x, 'leech', tag));
  const done = new Map<string, number>();
  const restarts = restarter(leechers, torrents, (i) => done.has(torrents[i]!.spec.id));
  try {
    await until(() => {
      torrents.forEach((x, i) => {
        if (!done.has(x.spec.id) && delivered(x, leechers[i]!.dir).complete) done.set(x.spec.id, Date.now() - t0);
      });
      return done.size === torrents.length;
    }, WINDOW_MS, 500);
    await restarts.stop();
    const counted = await Promise.all(leechers.map((l) => l.downloaded()));
    await Promise.all(leechers.map((l) => l.proc.kill()));
    return torrents.map((x, i) => {
      const d = delivered(x, leechers[i]!.dir);
      const mine = seen.filter((s) => ofSwarm(s, x.spec));
      const peerFlows = mine.filter((s) => s.flow.client.addr === SEEDER_ADDR || s.flow.server.addr === SEEDER_ADDR).length;
      return { swarm: x.spec.id, ...d, ms: done.get(x.spec.id), counted: counted[i], flows: mine.map(flowText), peerFlows };
    });
  } finally {
    await Promise.all(leechers.map((l) => l.proc.kill()));
  }
}

describe('DpiBlocker with real clients that find their peer through DHT only (qBittorrent-nox, transmission-daemon)', () => {
  it('blocking: 0 bytes reach each leecher (its own count and on disk); monitor-only: each download completes within the same window and its flows are reported with reasons', async () => {
    await withLab('dpidht', async (lab) => {
      const t = await topo(lab);
      const root = swarmRoot();
      const procs: Bg[] = [];
      const blockers: DpiBlocker[] = [];
      try {
        const steering = (await detectCapabilities({ netns: t.r.netns })).nft.features.queue.available ? 'nft' : 'xtables';
        const dht = await startDht(lab, t, ANNOUNCE_MS + 2 * WINDOW_MS + 30_000 * timeScale);
        procs.push(dht);
        const torrents = SWARMS.map((s) => makeSwarmTorrent(s, root.root, SIZE));
        const seeders = torrents.map((x) => startDhtClient(t.s, x, 'seed', 'seed'));
        procs.push(...seeders.map((s) => s.proc));
        // The seeders are in the DHT before any leecher looks (no blocker yet).
        const t0 = Date.now();
        const restarts = restarter(seeders, torrents, (i) => announced(dht, SEEDER_ADDR, SWARMS[i]!.port));
        const ready = await until(() => SWARMS.every((s) => announced(dht, SEEDER_ADDR, s.port)), ANNOUNCE_MS, 300);
        await restarts.stop();
        console.log(`[dpi dht] seeders announced to the lab DHT: ${ready} after ${Date.now() - t0} ms`);
        if (!ready) console.log(`[dpi dht] DHT node:\n${dht.out()}\n${seeders.map((s) => s.proc.out().slice(-3000)).join('\n')}`);
        expect(SWARMS.filter((s) => !announced(dht, SEEDER_ADDR, s.port)).map((s) => s.id)).toEqual([]);

        // Blocking.
        const seenB: Detection[] = [];
        const block = new DpiBlocker({ netns: t.r.netns, queues: [88, 2] });
        blockers.push(block);
        block.on('detection', (d) => seenB.push(d));
        (await block.apply()).unwrap();
        expect((await block.stats()).unwrap().steering).toBe(steering);
        const blocked = await leechPhase(t, torrents, 'block', seenB);
        await sleep(300);
        await block.destroy();
        for (const r of blocked) console.log(`[dpi dht, blocking] ${r.swarm}: ${r.bytes}/${SIZE} bytes on disk, client's count ${r.counted}\n  ${r.flows.join('\n  ')}`);

        // Control: monitor-only, fresh leechers.
        const seenM: Detection[] = [];
        const monitor = new DpiBlocker({ netns: t.r.netns, queues: [90, 2], monitorOnly: true });
        blockers.push(monitor);
        monitor.on('detection', (d) => seenM.push(d));
        (await monitor.apply()).unwrap();
        const control = await leechPhase(t, torrents, 'monitor', seenM);
        await sleep(300);
        const st = (await monitor.stats()).unwrap();
        for (const r of control) console.log(`[dpi dht, monitor-only] ${r.swarm}: ${r.bytes}/${SIZE} bytes${r.complete ? ` complete in ${r.ms} ms` : ''}, client's count ${r.counted}\n  ${r.flows.join('\n  ')}`);

        // Blocked: not one byte, by the client's count and on disk; each swarm's flows were caught.
        expect(blocked.map((r) => [r.swarm, r.bytes, r.counted])).toEqual(blocked.map((r) => [r.swarm, 0, 0]));
        expect(blocked.filter((r) => r.flows.length === 0).map((r) => r.swarm)).toEqual([]);
        expect(seenB.every((d) => d.action === 'dropped')).toBe(true);
        // Control: complete within the window the blocked leechers had, by disk and the client's count; reported.
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
