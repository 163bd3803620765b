/**
 * A swarm that finds itself through DHT only, for the DpiBlocker client test
 * (dpi-clients-dht.test.ts): a DHT host behind the routers (dpi-dht-node.mjs:
 * 12 nodes, each on its own /24, since libtorrent keeps one node per /24 in a
 * search and Transmission calls its DHT "broken" below 4 good and 9 known
 * nodes), trackerless torrents, and qBittorrent-nox / transmission-daemon with
 * their defaults except local peer discovery (off, so DHT is the only way the
 * peers meet) and the DHT's starting nodes: qBittorrent 4.5 has no bootstrap
 * setting (its routers are compiled in), so the torrent's `nodes` key (BEP 5)
 * names the lab nodes; Transmission reads the nodes it knew at its last exit
 * from `dht.dat` in its config directory (`dht.bootstrap` exists too, but is
 * read at one host every 7.5–22.5 s).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/host/run.js';
import type { Lab, LabHost } from '../../src/lab/index.js';
import { bg, type Bg } from './dpi-lab.js';
import { qbittorrent, transmission, type SwarmTorrent } from './dpi-clients-lab.js';

const DHT_NODE = fileURLToPath(new URL('./dpi-dht-node.mjs', import.meta.url));
const CLIENT_API = fileURLToPath(new URL('./dpi-client-api.mjs', import.meta.url));
/** The lab DHT's nodes: 198.18.16.2 … 198.18.27.2, one per /24, all on the DHT host behind the router. */
export const DHT_NODES = Array.from({ length: 12 }, (_, i) => `198.18.${16 + i}.2`);
export const DHT_PORT = 6999;

/** Addresses of the two leechers. */
export const BLOCKED_LEECHER = '198.18.1.2';
export const CONTROL_LEECHER = '198.18.3.2';

/**
 * Two leechers behind two routers, run at once: `c1` (198.18.1.2) behind `r1` (the blocking
 * DpiBlocker), `c2` (198.18.3.2) behind `r2` (the monitor-only control); both routers reach
 * `core`, which serves the seeder host `s` (198.18.2.2) and the DHT host `d` (198.18.4.2, the
 * nodes' addresses routed to it).
 */
export async function dhtTopo(lab: Lab): Promise<{ c1: LabHost; r1: LabHost; c2: LabHost; r2: LabHost; core: LabHost; s: LabHost; d: LabHost }> {
  const [c1, r1, c2, r2, core, s, d] = await Promise.all(['c1', 'r1', 'c2', 'r2', 'core', 's', 'd'].map((n) => lab.host(n))) as [LabHost, LabHost, LabHost, LabHost, LabHost, LabHost, LabHost];
  await lab.link({ host: c1, addrs: ['198.18.1.2/24'] }, { host: r1, addrs: ['198.18.1.1/24'] });
  await lab.link({ host: r1, addrs: ['198.18.5.1/24'] }, { host: core, addrs: ['198.18.5.2/24'] });
  await lab.link({ host: c2, addrs: ['198.18.3.2/24'] }, { host: r2, addrs: ['198.18.3.1/24'] });
  await lab.link({ host: r2, addrs: ['198.18.6.1/24'] }, { host: core, addrs: ['198.18.6.2/24'] });
  await lab.link({ host: core, addrs: ['198.18.2.1/24'] }, { host: s, addrs: ['198.18.2.2/24'] });
  const { b } = await lab.link({ host: core, addrs: ['198.18.4.1/24'] }, { host: d, addrs: ['198.18.4.2/24'] });
  for (const a of DHT_NODES) await lab.addr(d, b, `${a}/32`);
  for (const h of [r1, r2, core]) await lab.forwarding(h);
  await lab.route(c1, 'default', '198.18.1.1');
  await lab.route(r1, 'default', '198.18.5.2');
  await lab.route(c2, 'default', '198.18.3.1');
  await lab.route(r2, 'default', '198.18.6.2');
  await lab.route(core, '198.18.1.0/24', '198.18.5.1');
  await lab.route(core, '198.18.3.0/24', '198.18.6.1');
  await lab.route(core, '198.18.16.0/20', '198.18.4.2');
  await lab.route(s, 'default', '198.18.2.1');
  await lab.route(d, 'default', '198.18.4.1');
  return { c1, r1, c2, r2, core, s, d };
}

/** The lab DHT's node on host `d` (dhtTopo). */
export function startDht(d: LabHost, lifetimeMs: number): Bg {
  return bg(d, [process.execPath, DHT_NODE, String(DHT_PORT), String(lifetimeMs), DHT_NODES.join(',')]);
}

/** Whether the DHT node has received an announce_peer from `addr:port` (its log names each first query kind per address and port). */
export function announced(dht: Bg, addr: string, port: number): boolean {
  return dht.out().includes(`"from":"${addr}:${port}","q":"announce_peer"`);
}

/** The torrent's file with a `nodes` key naming the lab DHT (the info dict, and so the info-hash, unchanged). */
function withLabNodes(t: SwarmTorrent): string {
  const tor = readFileSync(t.torrent);
  const info = tor.indexOf('4:infod');
  // A trackerless torrent's keys in order: created by, info, nodes; the info dict ends where `5:nodes` begins.
  const at = tor.lastIndexOf('5:nodes');
  if (info < 0 || at < info) throw new Error('torrent without nodes');
  const nodes = Buffer.from(`5:nodesl${DHT_NODES.map((a) => `l${a.length}:${a}i${DHT_PORT}ee`).join('')}ee`);
  const file = join(t.dir, `${t.spec.id}-lab-dht.torrent`);
  writeFileSync(file, Buffer.concat([tor.subarray(0, at), nodes]));
  return file;
}

/** A running DHT-only client. */
export interface DhtClient {
  proc: Bg;
  /** Directory the leecher downloads into (or the seeder's copy). */
  dir: string;
  /** The client's own count of payload bytes downloaded for the torrent since it started (its RPC/Web API). */
  downloaded(): Promise<number | undefined>;
  /**
   * qBittorrent: pause and resume the torrent once its DHT knows nodes (true when done). qBittorrent
   * 4.5 starts its DHT about 20 s after it starts here (its compiled-in routers do not resolve in
   * the lab) and announces the torrent then, before the torrent's `nodes` have answered: that
   * announce asks no node, and libtorrent's next is due after `dht_announce_interval` (15 min)
   * ("Force reannounce" only queues it). Resuming a torrent announces it at once.
   */
  restart(): Promise<boolean>;
}

/** transmission's `dht.dat`: a fresh id and the first 8 lab nodes (compact form), the nodes it would have remembered. */
function writeDhtDat(cfg: string): void {
  const compact = Buffer.concat(
    DHT_NODES.slice(0, 8).map((a) => {
      const b = Buffer.alloc(6);
      a.split('.').forEach((o, i) => (b[i] = Number(o)));
      b.writeUInt16BE(DHT_PORT, 4);
      return b;
    }),
  );
  writeFileSync(join(cfg, 'dht.dat'), Buffer.concat([Buffer.from('d2:id20:'), randomBytes(20), Buffer.from(`5:nodes${compact.length}:`), compact, Buffer.from('e')]));
}

/** Start a client for `t` on `h`: seeding from its seed directory, or leeching into `<dir>/<tag>/dl`. */
export function startDhtClient(h: LabHost, t: SwarmTorrent, role: 'seed' | 'leech', tag: string): DhtClient {
  const home = join(t.dir, `${role}-${tag}`);
  const dir = role === 'seed' ? t.seedDir : join(home, 'dl');
  // the clients' defaults except local peer discovery (off: DHT is the only way to meet) and the DHT's first nodes
  const torrentFile = withLabNodes(t);
  const proc =
    t.spec.client === 'qbittorrent'
      ? qbittorrent(h, t, dir, home, role === 'seed', { torrentFile, noLocalDiscovery: true })
      : transmission(h, t, dir, home, { torrentFile, noLocalDiscovery: true, prepareConfig: writeDhtDat, logFlag: '--log-info' });
  const api = async (mode: string): Promise<Record<string, unknown>> => {
    const r = await run([process.execPath, CLIENT_API, mode, t.spec.client, String(t.spec.port + 1000), t.infoHash], { netns: h.netns, timeoutMs: 10_000 });
    return r.ok ? (JSON.parse(r.val.stdout.trim() || '{}') as Record<string, unknown>) : {};
  };
  return {
    proc,
    dir,
    downloaded: async () => {
      const n = (await api('downloaded')).downloaded;
      return typeof n === 'number' ? n : undefined;
    },
    restart: async () => (await api('restart')).restarted === true,
  };
}
