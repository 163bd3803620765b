/**
 * DpiBlocker against BitTorrent clients as people run them (issue 12):
 * qBittorrent-nox (libtorrent) and transmission-daemon in their default
 * configuration — both prefer Message Stream Encryption — plus forced
 * encryption, forced TCP and forced uTP, downloading through a router
 * namespace that runs DpiBlocker on its forward hook. Nine swarms of two run
 * at once (dpi-clients-lab.ts): peers found through a tracker on each peer's
 * loopback (only the peer wire protocol crosses the router) or through a real
 * HTTP tracker behind the router; the clients' DHT (on by default) talks across
 * it too. With the blocker, no byte of any file reaches a leecher while HTTP,
 * TLS, SSH and DNS through the same router are untouched; monitor-only lets
 * every download finish and reports each swarm's flows with their reasons.
 * The steering form expected is the capability report's.
 */
import { describe, expect, it } from 'vitest';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { DpiBlocker, type Detection } from '../../src/dpi/dpi-blocker.js';
import { withLab, type Lab } from '../../src/lab/index.js';
import { timeScale } from '../lab/scale.js';
import { delivered, LEECHER_ADDR, makeSwarmTorrent, SEEDER_ADDR, startLeecher, startSeeder, startTrackers, swarmRoot, type SwarmSpec, type SwarmTorrent } from './dpi-clients-lab.js';
import { sleep, type Bg } from './dpi-lab.js';
import { ordinaryTraffic, SERVICE_PORTS, startServices } from './dpi-services.js';
import { topo, type Topo } from './nfqueue-lab.js';

const SWARMS: SwarmSpec[] = [
  { id: 'qbt-default', client: 'qbittorrent', encryption: 'default', discovery: 'local', port: 6881 },
  { id: 'qbt-tcp', client: 'qbittorrent', transport: 'tcp', encryption: 'default', discovery: 'local', port: 6882 },
  { id: 'qbt-utp', client: 'qbittorrent', transport: 'utp', encryption: 'default', discovery: 'local', port: 6883 },
  { id: 'qbt-forced', client: 'qbittorrent', encryption: 'forced', discovery: 'local', port: 6884 },
  { id: 'qbt-forced-tcp', client: 'qbittorrent', transport: 'tcp', encryption: 'forced', discovery: 'local', port: 6885 },
  { id: 'qbt-tracker', client: 'qbittorrent', encryption: 'default', discovery: 'remote', port: 6886, trackerPort: 6970 },
  { id: 'trn-default', client: 'transmission', encryption: 'default', discovery: 'local', port: 6887 },
  { id: 'trn-tcp', client: 'transmission', transport: 'tcp', encryption: 'default', discovery: 'local', port: 6888 },
  { id: 'trn-forced', client: 'transmission', encryption: 'forced', discovery: 'local', port: 6889 },
  { id: 'trn-tracker', client: 'transmission', encryption: 'default', discovery: 'remote', port: 6890, trackerPort: 6971 },
];
const SIZE = 1024 * 1024;
/** Without a blocker every swarm completes within this (transmission, the slower, in about 14 s here); stretched under emulation. */
const WINDOW_MS = 24_000 * timeScale;

/** Whether a detected flow belongs to a swarm: its peer port (either end) or its remote tracker. */
function ofSwarm(d: Detection, s: SwarmSpec): boolean {
  const ends = [d.flow.client, d.flow.server];
  const peers = new Set([LEECHER_ADDR, SEEDER_ADDR]);
  if (ends.every((e) => peers.has(e.addr)) && ends.some((e) => e.port === s.port)) return true;
  return s.trackerPort !== undefined && d.flow.server.addr === SEEDER_ADDR && d.flow.server.port === s.trackerPort;
}

const flowText = (d: Detection): string => `${d.flow.transport} ${d.flow.client.addr}:${d.flow.client.port} > ${d.flow.server.addr}:${d.flow.server.port} ${d.detection}: ${d.reason}`;

interface SwarmRun {
  torrents: SwarmTorrent[];
  outcome: Map<string, { bytes: number; complete: boolean; ms?: number }>;
}

/**
 * Start every swarm's seeder, then its leecher; poll the leechers' files until all are complete or
 * the window ends; `during` runs meanwhile (ordinary traffic). Everything is stopped before returning.
 */
async function runSwarms(t: Topo, root: string, tag: string, during?: () => Promise<void>): Promise<SwarmRun> {
  const torrents = SWARMS.map((s) => makeSwarmTorrent(s, root, SIZE));
  const procs: Bg[] = startTrackers(t.c, t.s, torrents, WINDOW_MS + 30_000 * timeScale);
  const outcome = new Map<string, { bytes: number; complete: boolean; ms?: number }>();
  try {
    procs.push(...torrents.map((x) => startSeeder(t.s, x, tag)));
    await sleep(2000 * timeScale);
    const t0 = Date.now();
    const leechers = torrents.map((x) => startLeecher(t.c, x, tag));
    procs.push(...leechers.map((l) => l.proc));
    const side = during?.();
    while (Date.now() - t0 < WINDOW_MS) {
      await sleep(500);
      torrents.forEach((x, i) => {
        if (outcome.get(x.spec.id)?.complete) return;
        const d = delivered(x, leechers[i]!.dir);
        outcome.set(x.spec.id, d.complete ? { ...d, ms: Date.now() - t0 } : d);
      });
      if ([...outcome.values()].filter((o) => o.complete).length === torrents.length) break;
    }
    await side;
    await Promise.all(procs.map((p) => p.kill()));
    // What is on disk after the clients are gone (a last flush included).
    torrents.forEach((x, i) => {
      if (!outcome.get(x.spec.id)?.complete) outcome.set(x.spec.id, delivered(x, leechers[i]!.dir));
    });
    return { torrents, outcome };
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
  }
}

async function expectedSteering(lab: Lab, t: Topo): Promise<'nft' | 'xtables'> {
  void lab;
  const caps = await detectCapabilities({ netns: t.r.netns });
  return caps.nft.features.queue.available ? 'nft' : 'xtables';
}

describe('DpiBlocker with real clients in their default configuration (qBittorrent-nox, transmission-daemon)', () => {
  it('blocking: no byte of any swarm reaches its leecher (TCP and uTP, encryption preferred or forced, local or remote tracker); HTTP, TLS, SSH and DNS through the same router are untouched', async () => {
    await withLab('dpicli', async (lab) => {
      const t = await topo(lab);
      const root = swarmRoot();
      const svc = await startServices(lab, t);
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [84, 2] });
      const seen: Detection[] = [];
      blocker.on('detection', (d) => seen.push(d));
      let ordinary: Record<string, boolean | string> = {};
      try {
        (await blocker.apply()).unwrap();
        const steering = await expectedSteering(lab, t);
        expect((await blocker.stats()).unwrap().steering).toBe(steering);
        // Ordinary traffic while the swarms run, once the clients are talking.
        const r = await runSwarms(t, root.root, 'block', async () => {
          await sleep(3000 * timeScale);
          ordinary = await ordinaryTraffic(t, svc);
        });
        await sleep(300);
        const st = (await blocker.stats()).unwrap();
        const rows = r.torrents.map((x) => {
          const mine = seen.filter((d) => ofSwarm(d, x.spec));
          return { swarm: x.spec.id, bytes: r.outcome.get(x.spec.id)!.bytes, of: SIZE, detections: mine.map((d) => `${d.flow.transport}/${d.detection}`) };
        });
        console.log(`[dpi clients, blocking, steering ${steering}] bytes delivered per swarm: ${JSON.stringify(rows)}`);
        for (const d of seen) console.log(`[dpi clients, blocking]   ${flowText(d)}`);
        console.log(`[dpi clients, blocking] ordinary traffic: ${JSON.stringify(ordinary)}, ssh: ${svc.sshd ? 'OpenSSH sshd' : 'stand-in only (no sshd installed)'}; stats: detections ${st.detections}, dropped ${st.dropped}, flows ${st.flowsSeen}`);
        // Not one byte of any file, and each swarm's clients were seen trying (the blocker caught them).
        expect(rows.map((x) => [x.swarm, x.bytes])).toEqual(rows.map((x) => [x.swarm, 0]));
        expect(rows.filter((x) => x.detections.length === 0).map((x) => x.swarm)).toEqual([]);
        expect(seen.every((d) => d.action === 'dropped')).toBe(true);
        // Ordinary services through the same router: answered, and none of their flows detected.
        expect(ordinary.http).toBe('hello over http');
        expect(ordinary.http6).toBe('hello over http');
        expect(ordinary.tls).toBe('hello over tls');
        expect(ordinary.dns).toBe('198.18.9.9');
        expect(ordinary.sshStandIn).toBe(true);
        if (svc.sshd) expect(ordinary.ssh).toBe('hello-over-ssh');
        const servicePorts = new Set<number>(Object.values(SERVICE_PORTS));
        expect(seen.filter((d) => servicePorts.has(d.flow.server.port)).map(flowText)).toEqual([]);
      } finally {
        await blocker.destroy();
        await Promise.all(svc.procs.map((p) => p.kill()));
        root.cleanup();
      }
    });
  });

  it('monitor-only: every swarm completes and each is reported with its flows and reasons', async () => {
    await withLab('dpiclim', async (lab) => {
      const t = await topo(lab);
      const root = swarmRoot();
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [86, 2], monitorOnly: true });
      const seen: Detection[] = [];
      blocker.on('detection', (d) => seen.push(d));
      try {
        (await blocker.apply()).unwrap();
        expect((await blocker.stats()).unwrap().steering).toBe(await expectedSteering(lab, t));
        const r = await runSwarms(t, root.root, 'monitor');
        await sleep(300);
        const st = (await blocker.stats()).unwrap();
        const rows = r.torrents.map((x) => ({ swarm: x.spec.id, ...r.outcome.get(x.spec.id)!, flows: seen.filter((d) => ofSwarm(d, x.spec)).map(flowText) }));
        for (const x of rows) console.log(`[dpi clients, monitor-only] ${x.swarm}: ${x.bytes}/${SIZE} bytes${x.complete ? ` complete in ${x.ms} ms` : ''}\n  ${x.flows.join('\n  ')}`);
        expect(rows.filter((x) => !x.complete).map((x) => x.swarm)).toEqual([]);
        expect(rows.filter((x) => x.flows.length === 0).map((x) => x.swarm)).toEqual([]);
        expect(seen.every((d) => d.action === 'monitored' && d.reason.length > 0)).toBe(true);
        expect(st.dropped).toBe(0);
      } finally {
        await blocker.destroy();
        root.cleanup();
      }
    });
  });
});
